//! The shared predicate form.

use crate::matcher::Matcher;
use std::sync::Arc;
use unithunt_event::{FieldPath, Value};

/// Whether a string comparison folds case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fold {
    Sensitive,
    Insensitive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    /// Division; integer operands divide with the result rounded down (Python, the legacy dialect).
    Div,
    /// Division; integer operands divide truncating toward zero (Java, Elasticsearch).
    TruncDiv,
    /// Remainder with the sign of the dividend (Java, Elasticsearch).
    Rem,
    /// Remainder with the sign of the divisor (Python, the legacy dialect).
    FloorRem,
}

/// The process relations of the legacy dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineageKind {
    /// The event's own process matched the subquery.
    EventOf,
    /// The event's parent process matched.
    ChildOf,
    /// Some ancestor matched.
    DescendantOf,
}

/// Functions the engine implements. Case-insensitive variants take [`Fold::Insensitive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Add,
    Between,
    CidrMatch,
    Concat,
    Divide,
    EndsWith,
    IndexOf,
    Length,
    Modulo,
    Multiply,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    Subtract,
    /// Elasticsearch's `between`: empty string when a delimiter is missing, and an empty delimiter
    /// stands for the string's edge.
    EsBetween,
    /// A part of a timestamp (`minute`, `hour`, `day`, `week`, `month`, `year`; UTC), as Sigma's
    /// time modifiers read it. Not an EQL function.
    TimePart,
    /// Values as a mapping type indexes them (`crate::typed`), for EQL under `--mapping`; each
    /// maps the elements of an array value. Not EQL functions.
    /// A `version` value in version order ([`crate::typed::version_key`]).
    AsVersion,
    /// An `ip` value in address order ([`crate::typed::ip_key`]); null when not an address.
    AsIp,
    /// A `date` value (argument 1: the field's `format`) as epoch milliseconds.
    AsDate,
    /// A `date` value as a join key: `1970-01-01T00:00:00.000Z`, whatever the format.
    DateKey,
    /// A number from a number or numeric string.
    AsNumber,
    /// A boolean from a boolean or `"true"`/`"false"`.
    AsBool,
    /// A `keyword` value, null when longer than argument 1 (`ignore_above`: not indexed).
    IgnoreAbove,
    // Legacy dialect only.
    ArrayContains,
    ArrayCount,
    ArraySearch,
    Match,
    MatchLite,
    Safe,
    Wildcard,
}

/// A predicate or value expression. Evaluates to a [`Value`]; a predicate holds when it evaluates to
/// `true` (null and false do not hold).
#[derive(Clone, Debug)]
pub enum Expr {
    Lit(Value<'static>),
    /// The field's value with its structure (arrays stay arrays); null when missing.
    Field(FieldPath),
    /// A field value bound by the enclosing [`Expr::AnyOf`].
    Slot(usize),
    /// A variable bound by `arraySearch` (`depth` 0 is the innermost), then a path inside it.
    Var {
        depth: usize,
        path: Option<FieldPath>,
    },
    /// Holds when some combination of the fields' values makes `pred` true. Each field contributes its
    /// flattened values (or a single null when missing). This is how Elasticsearch evaluates a leaf
    /// query or script over multi-valued fields; it turns null into false.
    AnyOf {
        fields: Vec<FieldPath>,
        pred: Box<Expr>,
    },
    /// The field has at least one non-null value (`field != null`, Query DSL `exists`).
    Exists(FieldPath),
    /// Two-valued negation: true unless the inner predicate is true (Query DSL `must_not`).
    MustNot(Box<Expr>),
    /// Three-valued negation: `not null` is null (legacy EQL).
    Not(Box<Expr>),
    /// Kleene conjunction: false wins, then null.
    And(Vec<Expr>),
    /// Kleene disjunction: true wins, then null.
    Or(Vec<Expr>),
    Cmp {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        fold: Fold,
    },
    /// Membership: true if `needle` equals one of `items`; null when the needle is null.
    In {
        needle: Box<Expr>,
        items: Vec<Expr>,
        fold: Fold,
    },
    /// String patterns (wildcards, regular expressions, exact sets) compiled once.
    Match {
        subject: Box<Expr>,
        matcher: Arc<Matcher>,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    Call {
        func: Func,
        args: Vec<Expr>,
        fold: Fold,
    },
    /// `descendant of [..]` and friends: `query` indexes the runner's lineage subqueries.
    Lineage {
        kind: LineageKind,
        query: usize,
    },
}

impl Expr {
    pub fn any_of(fields: Vec<FieldPath>, pred: Expr) -> Expr {
        Expr::AnyOf {
            fields,
            pred: Box::new(pred),
        }
    }

    pub fn cmp(op: CmpOp, lhs: Expr, rhs: Expr, fold: Fold) -> Expr {
        Expr::Cmp {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            fold,
        }
    }

    pub fn lit(v: Value<'_>) -> Expr {
        Expr::Lit(v.into_owned())
    }

    /// True when the expression is a constant.
    pub fn is_lit(&self) -> bool {
        matches!(self, Expr::Lit(_))
    }

    /// Every field the expression reads from the event, or `None` when it reads more than named
    /// fields (lineage looks at process tables built from whole events).
    pub fn referenced_fields(&self) -> Option<Vec<FieldPath>> {
        let mut out = Vec::new();
        self.for_each_field(&mut |p| out.push(p.clone()))
            .then_some(out)
    }

    /// Calls `f` on every field the expression reads (repeats included); false when it reads
    /// more than named fields, as [`Expr::referenced_fields`] says with `None`.
    pub fn for_each_field<'a>(&'a self, f: &mut dyn FnMut(&'a FieldPath)) -> bool {
        fn walk<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a FieldPath), ok: &mut bool) {
            match e {
                Expr::Field(p) | Expr::Exists(p) => f(p),
                Expr::AnyOf { fields, .. } => fields.iter().for_each(&mut *f),
                Expr::Lineage { .. } => *ok = false,
                _ => {}
            }
            e.for_each_child(&mut |c| walk(c, f, ok));
        }
        let mut ok = true;
        walk(self, f, &mut ok);
        ok
    }

    /// Calls `f` on every direct child.
    pub fn for_each_child<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        match self {
            Expr::Lit(_)
            | Expr::Field(_)
            | Expr::Slot(_)
            | Expr::Var { .. }
            | Expr::Exists(_)
            | Expr::Lineage { .. } => {}
            Expr::AnyOf { pred, .. } => f(pred),
            Expr::MustNot(e) | Expr::Not(e) | Expr::Neg(e) => f(e),
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(f),
            Expr::Cmp { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
                f(lhs);
                f(rhs);
            }
            Expr::In { needle, items, .. } => {
                f(needle);
                items.iter().for_each(f);
            }
            Expr::Match { subject, .. } => f(subject),
            Expr::Call { args, .. } => args.iter().for_each(f),
        }
    }
}

//! Semantic checks and lowering from the syntax tree to the engine's predicate form.

use crate::ast::*;
use crate::error::{EqlError, Span};
use crate::mapping::FieldType;
use crate::{Dialect, EqlOptions};
use std::sync::Arc;
use unithunt_engine::{
    ArithOp, CmpOp, Expr, Fold, Func, FuncSig, LineageKind, Matcher, PatternKind, Pipe, Query,
    QueryKind, SampleSpec, SequenceSpec, Stage,
};
use unithunt_event::{FieldPath, Segment, Value};

pub struct Lower<'o> {
    opts: &'o EqlOptions,
    lineage: Vec<Expr>,
    vars: Vec<String>,
}

type R<T> = Result<T, EqlError>;

fn err<T>(msg: impl Into<String>, span: Span) -> R<T> {
    Err(EqlError::new(msg, span))
}

fn has_field(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Field { .. } => true,
        NodeKind::Lit(_) => false,
        NodeKind::Not(a) | NodeKind::Neg(a) => has_field(a),
        NodeKind::And(items) | NodeKind::Or(items) => items.iter().any(has_field),
        NodeKind::Cmp { lhs, rhs, .. } | NodeKind::Arith { lhs, rhs, .. } => {
            has_field(lhs) || has_field(rhs)
        }
        NodeKind::In { needle, items, .. } => has_field(needle) || items.iter().any(has_field),
        NodeKind::Pattern {
            subject, patterns, ..
        } => has_field(subject) || patterns.iter().any(has_field),
        NodeKind::Call { args, .. } => args.iter().any(has_field),
        NodeKind::Lineage { .. } => false,
    }
}

fn str_lit(n: &Node) -> Option<&str> {
    match &n.kind {
        NodeKind::Lit(Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// Elasticsearch's negated operators (`!=`, `not in`, `!:`) are the positive query under `must_not`.
fn must_not_if(negated: bool, positive: Expr) -> Expr {
    if negated {
        Expr::MustNot(Box::new(positive))
    } else {
        positive
    }
}

/// A number literal and its string spelling, or a numeric string and its number.
fn both_spellings(n: &Node) -> Option<Vec<Node>> {
    let alt = match &n.kind {
        NodeKind::Lit(Value::Int(i)) => Value::Str(i.to_string().into()),
        NodeKind::Lit(Value::Float(f)) => Value::Str(Value::Float(*f).render()?.into()),
        NodeKind::Lit(Value::Str(s)) => match s.trim().parse::<i64>() {
            Ok(i) if i.to_string() == s.as_ref() => Value::Int(i),
            _ => return None,
        },
        _ => return None,
    };
    Some(vec![
        n.clone(),
        Node {
            kind: NodeKind::Lit(alt),
            span: n.span,
        },
    ])
}

fn fold_of(insensitive: bool) -> Fold {
    if insensitive {
        Fold::Insensitive
    } else {
        Fold::Sensitive
    }
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The signature of the function called `name`, or an error naming the nearest known function
/// (Elasticsearch EQL knows fewer functions than the legacy dialect).
fn lookup_function(name: &str, name_span: Span, es: bool) -> R<&'static FuncSig> {
    match FuncSig::lookup(name) {
        Some(s) if s.elasticsearch || !es => Ok(s),
        _ => {
            let known: Vec<&str> = unithunt_engine::FUNCTION_NAMES
                .iter()
                .copied()
                .filter(|f| !es || FuncSig::lookup(f).is_some_and(|s| s.elasticsearch))
                .collect();
            let near = known
                .iter()
                .min_by_key(|k| edit_distance(&k.to_ascii_lowercase(), &name.to_ascii_lowercase()));
            let hint = match near {
                Some(k)
                    if edit_distance(&k.to_ascii_lowercase(), &name.to_ascii_lowercase()) <= 3 =>
                {
                    format!("; did you mean `{k}`?")
                }
                _ => String::new(),
            };
            err(format!("unknown function `{name}`{hint}"), name_span)
        }
    }
}

/// Checks the number of arguments of a call against the function's signature.
fn check_arity(sig: &FuncSig, name_span: Span, args: &[Node]) -> R<()> {
    let arity_ok = args.len() >= sig.min_args && sig.max_args.is_none_or(|m| args.len() <= m);
    if !arity_ok {
        let expected = match sig.max_args {
            Some(m) if m == sig.min_args => format!("exactly {m}"),
            Some(m) => format!("{} to {m}", sig.min_args),
            None => format!("at least {}", sig.min_args),
        };
        let span = args
            .first()
            .map(|a| a.span.to(args[args.len() - 1].span))
            .unwrap_or(name_span);
        return err(
            format!(
                "`{}` takes {expected} argument{}, found {}",
                sig.name,
                if expected.ends_with('1') && !expected.contains("least") {
                    ""
                } else {
                    "s"
                },
                args.len()
            ),
            span,
        );
    }
    Ok(())
}

/// Checks that literal arguments have the types the function's signature asks for.
fn check_literal_args(sig: &FuncSig, args: &[Node]) -> R<()> {
    for (i, a) in args.iter().enumerate() {
        let bad = match &a.kind {
            NodeKind::Lit(Value::Null) => None,
            NodeKind::Lit(Value::Str(_)) if sig.number_args.contains(&i) => Some("a number"),
            NodeKind::Lit(v) if sig.string_args.contains(&i) && !matches!(v, Value::Str(_)) => {
                Some("a string")
            }
            _ => None,
        };
        if let Some(want) = bad {
            return err(
                format!("argument {} of `{}` must be {want}", i + 1, sig.name),
                a.span,
            );
        }
    }
    Ok(())
}

impl<'o> Lower<'o> {
    pub fn new(opts: &'o EqlOptions) -> Lower<'o> {
        Lower {
            opts,
            lineage: Vec::new(),
            vars: Vec::new(),
        }
    }

    fn es(&self) -> bool {
        self.opts.dialect == Dialect::Elasticsearch
    }

    fn legacy_fold(&self) -> Fold {
        fold_of(!self.opts.case_sensitive)
    }

    pub fn query(mut self, q: &QueryAst) -> R<Query> {
        let kind = match &q.body {
            QueryBody::Event(eq) => QueryKind::Events(self.event_query(eq)?),
            QueryBody::Sequence {
                word,
                by,
                maxspan,
                stages,
                until,
            } => {
                let mut lowered = Vec::new();
                let mut key_count = None;
                for st in stages {
                    let stage = self.stage(by, st, &mut key_count)?;
                    for _ in 0..st.runs {
                        lowered.push(stage.clone());
                    }
                }
                if lowered.len() > unithunt_engine::MAX_STAGES_PUB {
                    return err(
                        format!(
                            "too many queries in the sequence (at most {})",
                            unithunt_engine::MAX_STAGES_PUB
                        ),
                        stages[0].span,
                    );
                }
                let until = match until {
                    Some(u) => Some(self.stage(by, u, &mut key_count)?),
                    None => None,
                };
                match word {
                    SeqWord::Sample => QueryKind::Sample(SampleSpec { stages: lowered }),
                    SeqWord::Join => QueryKind::Join(SequenceSpec {
                        stages: lowered,
                        until,
                        maxspan: maxspan.map(|m| m.0),
                    }),
                    SeqWord::Sequence => QueryKind::Sequence(SequenceSpec {
                        stages: lowered,
                        until,
                        maxspan: maxspan.map(|m| m.0),
                    }),
                }
            }
        };
        let mut pipes = Vec::new();
        for p in &q.pipes {
            pipes.push(self.pipe(p)?);
        }
        Ok(Query {
            kind,
            pipes,
            lineage: self.lineage,
            pid_field: FieldPath::parse(&self.opts.pid_field),
            ppid_field: FieldPath::parse(&self.opts.ppid_field),
        })
    }

    fn stage(&mut self, top_by: &[Node], st: &StageAst, key_count: &mut Option<usize>) -> R<Stage> {
        let filter = self.event_query(&st.query)?;
        let mut keys = Vec::new();
        let mut nullable = Vec::new();
        for k in top_by.iter().chain(st.by.iter()) {
            keys.push(self.key(k)?);
            // An optional field in no mapping is the literal null: its key is null.
            let optional = matches!(
                k.kind,
                NodeKind::Field { optional: true, .. } | NodeKind::Lit(Value::Null)
            );
            nullable.push(optional || !self.es());
        }
        match key_count {
            Some(n) if *n != keys.len() => {
                return err(format!("every query of a sequence needs the same number of join keys: this one has {}, the first had {n}", keys.len()), st.span)
            }
            _ => *key_count = Some(keys.len()),
        }
        Ok(Stage {
            filter,
            keys,
            nullable,
            missing: st.missing,
            fork: st.fork,
            multi_valued_keys: self.es(),
        })
    }

    fn event_query(&mut self, eq: &EventQuery) -> R<Expr> {
        let cond = self.pred(&eq.condition)?;
        let Some((cat, _)) = &eq.category else {
            return Ok(cond);
        };
        let cat_path = match self.opts.mapping.as_ref().filter(|_| self.es()) {
            Some(m) => m
                .resolve(&self.opts.category_field)
                .map(|(target, _)| target)
                .unwrap_or_else(|| self.opts.category_field.clone()),
            None => self.opts.category_field.clone(),
        };
        let cat_field = FieldPath::parse(&cat_path);
        let lit = Expr::Lit(Value::Str(cat.clone().into()));
        let cat_pred = if self.es() {
            Expr::any_of(
                vec![cat_field],
                Expr::cmp(CmpOp::Eq, Expr::Slot(0), lit, Fold::Sensitive),
            )
        } else {
            Expr::cmp(CmpOp::Eq, Expr::Field(cat_field), lit, Fold::Insensitive)
        };
        Ok(match cond {
            Expr::Lit(Value::Bool(true)) => cat_pred,
            Expr::And(mut items) => {
                items.insert(0, cat_pred);
                Expr::And(items)
            }
            other => Expr::And(vec![cat_pred, other]),
        })
    }

    fn pipe(&mut self, p: &PipeAst) -> R<Pipe> {
        let count_arg = |args: &[Node]| -> R<usize> {
            match args {
                [Node {
                    kind: NodeKind::Lit(Value::Int(n)),
                    ..
                }] if *n >= 0 => Ok(*n as usize),
                [] if !self.es() => Ok(1),
                _ => err(
                    format!("`{}` takes one non-negative whole number", p.name),
                    p.span,
                ),
            }
        };
        match p.name.as_str() {
            "head" => return Ok(Pipe::Head(count_arg(&p.args)?)),
            "tail" => return Ok(Pipe::Tail(count_arg(&p.args)?)),
            _ => {}
        }
        if self.es() {
            return err(format!("unknown pipe `{}`: Elasticsearch EQL has `head` and `tail` (the legacy dialect has more)", p.name), p.span);
        }
        let mut exprs = Vec::new();
        for a in &p.args {
            exprs.push(self.value(a, &mut None)?);
        }
        Ok(match p.name.as_str() {
            "filter" => match exprs.len() {
                1 => Pipe::Filter(exprs.remove(0)),
                _ => return err("`filter` takes one condition", p.span),
            },
            "unique" => Pipe::Unique(exprs),
            "unique_count" => Pipe::UniqueCount(exprs),
            "count" => Pipe::Count(exprs),
            "sort" => Pipe::Sort(exprs, self.legacy_fold()),
            other => return err(format!("unknown pipe `{other}`: expected head, tail, filter, unique, unique_count, count or sort"), p.span),
        })
    }

    /// Lowers a condition.
    fn pred(&mut self, n: &Node) -> R<Expr> {
        if !self.es() {
            return self.value(n, &mut None);
        }
        match &n.kind {
            NodeKind::And(operands) => {
                let mut items = Vec::with_capacity(operands.len());
                for side in operands {
                    match self.pred(side)? {
                        Expr::And(inner) => items.extend(inner),
                        e => items.push(e),
                    }
                }
                Ok(Expr::And(items))
            }
            NodeKind::Or(operands) => {
                let mut items = Vec::with_capacity(operands.len());
                for side in operands {
                    match self.pred(side)? {
                        Expr::Or(inner) => items.extend(inner),
                        e => items.push(e),
                    }
                }
                Ok(Expr::Or(items))
            }
            NodeKind::Not(inner) => Ok(Expr::MustNot(Box::new(self.pred(inner)?))),
            NodeKind::Lit(Value::Bool(b)) => Ok(Expr::Lit(Value::Bool(*b))),
            // An optional field in no mapping as the whole condition: null, which filters
            // nothing in (PruneFilters).
            NodeKind::Lit(Value::Null) => Ok(Expr::Lit(Value::Bool(false))),
            NodeKind::Lit(_) => err("expected a condition, found a constant", n.span),
            NodeKind::Cmp { op, lhs, rhs } => self.es_cmp(n, *op, lhs, rhs),
            NodeKind::In {
                needle,
                items,
                insensitive,
                negated,
            } => self.es_in(n, needle, items, *insensitive, *negated),
            NodeKind::Pattern {
                op,
                subject,
                patterns,
                insensitive,
                negated,
            } => {
                let what = match op {
                    PatternOp::Colon => ":",
                    PatternOp::Like => "like",
                    PatternOp::Regex => "regex",
                };
                self.es_type_check(subject, what, &[])?;
                let positive = Node {
                    kind: NodeKind::Pattern {
                        op: *op,
                        subject: subject.clone(),
                        patterns: patterns.clone(),
                        insensitive: *insensitive,
                        negated: false,
                    },
                    span: n.span,
                };
                Ok(must_not_if(*negated, self.leaf(&positive)?))
            }
            NodeKind::Call { .. } => self.leaf(n),
            NodeKind::Field { .. } => self.es_bare_field(n),
            NodeKind::Arith { .. } | NodeKind::Neg(_) => {
                err("expected a condition, found arithmetic", n.span)
            }
            NodeKind::Lineage { .. } => {
                err("lineage operators are only in the legacy dialect", n.span)
            }
        }
    }

    /// An Elasticsearch comparison: `field == null` tests existence, a field compared with a
    /// number accepts both spellings, and `!=` is the positive comparison under `must_not`.
    fn es_cmp(&mut self, n: &Node, op: CmpKind, lhs: &Node, rhs: &Node) -> R<Expr> {
        let null_side = |x: &Node| matches!(x.kind, NodeKind::Lit(Value::Null));
        // `?x == ?y` with neither field mapped is `null == null`, which Elasticsearch's
        // optimizer rewrites to `IsNull(null)` (ReplaceNullChecks) and folds to true; `!=` to
        // `IsNotNull(null)`, false; an ordering of nulls is null, which filters out.
        if null_side(lhs) && null_side(rhs) {
            return Ok(Expr::Lit(Value::Bool(matches!(
                op,
                CmpKind::Eq | CmpKind::Assign
            ))));
        }
        if has_field(lhs) && has_field(rhs) {
            let optional = |x: &Node| matches!(x.kind, NodeKind::Field { optional: true, .. });
            if optional(lhs) && optional(rhs) && self.opts.mapping.is_none() {
                return self.es_optional_pair(op, lhs, rhs);
            }
            return err("comparisons between fields are not supported in Elasticsearch EQL (compare a field with a value, or use --dialect legacy)", n.span);
        }
        let bare = |x: &Node| match &x.kind {
            NodeKind::Field { path, .. } => Some(FieldPath::parse(path)),
            _ => None,
        };
        let exists = match (bare(lhs), bare(rhs)) {
            (Some(f), None) if null_side(rhs) => Some(f),
            (None, Some(f)) if null_side(lhs) => Some(f),
            _ => None,
        };
        if let Some(f) = exists {
            return match op {
                CmpKind::Eq | CmpKind::Assign => Ok(Expr::MustNot(Box::new(Expr::Exists(f)))),
                CmpKind::Ne => Ok(Expr::Exists(f)),
                _ => Ok(Expr::Lit(Value::Bool(false))),
            };
        }
        if let Some(e) = self.es_typed_cmp(op, lhs, rhs)? {
            return Ok(e);
        }
        // Elasticsearch converts a term's value to the field's type: `event.code == 4624`
        // matches the keyword "4624" and `process.pid == "42"` the long 42. Without mappings,
        // a field compared with a number (or a numeric string) accepts both spellings.
        let coerced = match (bare(lhs), bare(rhs)) {
            (Some(_), None) => both_spellings(rhs).map(|alts| (lhs, alts)),
            (None, Some(_)) => both_spellings(lhs).map(|alts| (rhs, alts)),
            _ => None,
        };
        let positive = match coerced {
            Some((field, items)) if matches!(op, CmpKind::Eq | CmpKind::Ne) => Node {
                kind: NodeKind::In {
                    needle: Box::new(field.clone()),
                    items,
                    insensitive: false,
                    negated: false,
                },
                span: n.span,
            },
            _ => Node {
                kind: NodeKind::Cmp {
                    op: if op == CmpKind::Ne { CmpKind::Eq } else { op },
                    lhs: Box::new(lhs.clone()),
                    rhs: Box::new(rhs.clone()),
                },
                span: n.span,
            },
        };
        Ok(must_not_if(op == CmpKind::Ne, self.leaf(&positive)?))
    }

    /// `?x == ?y` (and `!=`, orderings) between two optional fields, without a mapping: a field an
    /// event lacks stands for one no index maps, so both missing is `null == null` (true), one
    /// missing is `IsNull` of the other (false), and two present values are compared (a case
    /// Elasticsearch refuses when both are mapped; with `--mapping` unithunt refuses it too).
    fn es_optional_pair(&mut self, op: CmpKind, lhs: &Node, rhs: &Node) -> R<Expr> {
        let bare = |x: &Node| match &x.kind {
            NodeKind::Field { path, .. } => Some(FieldPath::parse(path)),
            _ => None,
        };
        let (Some(a), Some(b)) = (bare(lhs), bare(rhs)) else {
            return err(
                "comparisons between fields are not supported in Elasticsearch EQL",
                lhs.span.to(rhs.span),
            );
        };
        let cmp = |op: CmpKind| Node {
            kind: NodeKind::Cmp {
                op,
                lhs: Box::new(lhs.clone()),
                rhs: Box::new(rhs.clone()),
            },
            span: lhs.span.to(rhs.span),
        };
        let both_missing = Expr::And(vec![
            Expr::MustNot(Box::new(Expr::Exists(a))),
            Expr::MustNot(Box::new(Expr::Exists(b))),
        ]);
        let mut values = Some(Vec::new());
        Ok(match op {
            CmpKind::Eq | CmpKind::Assign | CmpKind::Ne => {
                let eq = self.value(&cmp(CmpKind::Eq), &mut values)?;
                let eq = Expr::Or(vec![
                    both_missing,
                    Expr::any_of(values.unwrap_or_default(), eq),
                ]);
                must_not_if(op == CmpKind::Ne, eq)
            }
            _ => {
                let e = self.value(&cmp(op), &mut values)?;
                Expr::any_of(values.unwrap_or_default(), e)
            }
        })
    }

    /// The mapping type of a resolved field (Elasticsearch dialect with `--mapping` only).
    fn mapped_type(&self, path: &str) -> Option<&'o FieldType> {
        if !self.es() {
            return None;
        }
        self.opts.mapping.as_deref()?.type_of(path)
    }

    /// A field compared with a literal under the field's mapping type, as the field's mapper
    /// parses the term (`x-pack/plugin/eql` passes the literal to a term or range query as is):
    /// versions in version order, addresses as addresses (a CIDR under `==`), dates through the
    /// field's formats (`==` covers the unit the literal writes), numbers and booleans from
    /// their strings. A literal the type cannot read is the error Elasticsearch gives.
    /// `None`: not a typed comparison.
    fn es_typed_cmp(&mut self, op: CmpKind, lhs: &Node, rhs: &Node) -> R<Option<Expr>> {
        use unithunt_engine::typed;
        let (field, lit, op) = match (&lhs.kind, &rhs.kind) {
            (NodeKind::Field { path, .. }, NodeKind::Lit(v)) => ((path, lhs), (v, rhs), op),
            (NodeKind::Lit(v), NodeKind::Field { path, .. }) => {
                let flipped = match op {
                    CmpKind::Lt => CmpKind::Gt,
                    CmpKind::Le => CmpKind::Ge,
                    CmpKind::Gt => CmpKind::Lt,
                    CmpKind::Ge => CmpKind::Le,
                    o => o,
                };
                ((path, rhs), (v, lhs), flipped)
            }
            _ => return Ok(None),
        };
        let ((path, field_node), (lit, lit_node)) = (field, lit);
        let Some(ty) = self.mapped_type(path) else {
            return Ok(None);
        };
        let shown = |v: &Value| v.render().unwrap_or_default();
        let mut slots = Some(Vec::new());
        let base = self.field_expr(path, &mut slots);
        let call = |func: Func, args: Vec<Expr>| Expr::Call {
            func,
            args,
            fold: Fold::Sensitive,
        };
        let cop = |op: CmpKind| match op {
            CmpKind::Eq | CmpKind::Assign | CmpKind::Ne => CmpOp::Eq,
            CmpKind::Lt => CmpOp::Lt,
            CmpKind::Le => CmpOp::Le,
            CmpKind::Gt => CmpOp::Gt,
            CmpKind::Ge => CmpOp::Ge,
        };
        let simple = |conv: Expr, key: Value<'static>| {
            Expr::cmp(cop(op), conv, Expr::Lit(key), Fold::Sensitive)
        };
        let positive = match ty {
            FieldType::Integer | FieldType::Float => {
                let Some(num) = typed::number_of(lit) else {
                    return err(
                        format!("For input string: \"{}\"", shown(lit)),
                        lit_node.span,
                    );
                };
                simple(base, num)
            }
            FieldType::Boolean => {
                let Some(b) = typed::bool_of(lit) else {
                    return err(
                        format!(
                            "Can't parse boolean value [{}], expected [true] or [false]",
                            shown(lit)
                        ),
                        lit_node.span,
                    );
                };
                simple(base, Value::Bool(b))
            }
            FieldType::Version => {
                let Value::Str(text) = lit else {
                    return err(
                        format!(
                            "Illegal value type for the version field [{path}]: {}",
                            shown(lit)
                        ),
                        lit_node.span,
                    );
                };
                simple(
                    call(Func::AsVersion, vec![base]),
                    Value::Str(typed::version_key(text).into()),
                )
            }
            FieldType::Ip => {
                let Value::Str(text) = lit else {
                    return err(
                        format!("'{}' is not an IP string literal.", shown(lit)),
                        lit_node.span,
                    );
                };
                if text.contains('/') && matches!(op, CmpKind::Eq | CmpKind::Ne) {
                    // The address in its canonical spelling: an IPv4-mapped address is in an
                    // IPv4 block, as in Lucene's 16-byte prefix query.
                    let canonical = call(Func::AsIp, vec![base, Expr::Lit(Value::Bool(true))]);
                    call(Func::CidrMatch, vec![canonical, Expr::Lit(lit.clone())])
                } else {
                    let Some(key) = typed::ip_key(text) else {
                        return err(
                            format!("'{text}' is not an IP string literal."),
                            lit_node.span,
                        );
                    };
                    simple(call(Func::AsIp, vec![base]), Value::Str(key.into()))
                }
            }
            FieldType::Date { format } => {
                let formats = typed::DateFormats::parse(format)
                    .map_err(|e| EqlError::new(e, field_node.span))?;
                let Some((lo, unit)) = formats.read(lit) else {
                    return err(
                        format!(
                            "failed to parse date field [{}] with format [{format}]",
                            shown(lit)
                        ),
                        lit_node.span,
                    );
                };
                // Elasticsearch's date math rounds the upper end of `==`, `<=` and `>` up to the
                // unit the literal writes (`2020-01-01` is the whole day).
                let hi = lo.saturating_add(unit - 1);
                let conv = call(
                    Func::AsDate,
                    vec![base, Expr::Lit(Value::Str(format.clone().into()))],
                );
                let at = |op: CmpOp, ms: i64| {
                    Expr::cmp(op, conv.clone(), Expr::Lit(Value::Int(ms)), Fold::Sensitive)
                };
                match op {
                    CmpKind::Eq | CmpKind::Assign | CmpKind::Ne => {
                        Expr::And(vec![at(CmpOp::Ge, lo), at(CmpOp::Le, hi)])
                    }
                    CmpKind::Lt => at(CmpOp::Lt, lo),
                    CmpKind::Le => at(CmpOp::Le, hi),
                    CmpKind::Gt => at(CmpOp::Gt, hi),
                    CmpKind::Ge => at(CmpOp::Ge, lo),
                }
            }
            _ => return Ok(None),
        };
        let positive = Expr::any_of(slots.unwrap_or_default(), positive);
        Ok(Some(must_not_if(op == CmpKind::Ne, positive)))
    }

    /// A join key: the field's value, in the form Elasticsearch fetches it under its mapping
    /// type (a date as `1970-01-01T00:00:00.000Z`, an address in its canonical spelling, a
    /// number from a numeric string).
    fn key(&mut self, k: &Node) -> R<Expr> {
        let e = self.value(k, &mut None)?;
        let NodeKind::Field { path, .. } = &k.kind else {
            return Ok(e);
        };
        let call = |func: Func, args: Vec<Expr>| Expr::Call {
            func,
            args,
            fold: Fold::Sensitive,
        };
        Ok(match self.mapped_type(path) {
            Some(FieldType::Date { format }) => call(
                Func::DateKey,
                vec![e, Expr::Lit(Value::Str(format.clone().into()))],
            ),
            Some(FieldType::Ip) => call(Func::AsIp, vec![e, Expr::Lit(Value::Bool(true))]),
            _ => e,
        })
    }

    /// Elasticsearch's type checks of a mapped field used where its type does not fit: a
    /// pattern (`:`, `like`, `regex`) on a non-string field, an `in` list of strings for a
    /// version, address, date, number or boolean.
    fn es_type_check(&self, subject: &Node, what: &str, items: &[Node]) -> R<()> {
        let NodeKind::Field { path, .. } = &subject.kind else {
            return Ok(());
        };
        let Some(ty) = self.mapped_type(path) else {
            return Ok(());
        };
        let stringy = matches!(ty, FieldType::Keyword { .. } | FieldType::Text { .. });
        if what != "in" {
            if !stringy && !matches!(ty, FieldType::Other(_)) {
                return err(
                    format!(
                        "first argument of [{what}] must be [string], found value [{path}] type [{}]; consider using [==] instead",
                        ty.name()
                    ),
                    subject.span,
                );
            }
            return Ok(());
        }
        for (i, item) in items.iter().enumerate() {
            let bad = match (&item.kind, ty) {
                (
                    NodeKind::Lit(Value::Str(_)),
                    FieldType::Keyword { .. } | FieldType::Text { .. },
                ) => false,
                (NodeKind::Lit(Value::Str(_)), FieldType::Other(_)) => false,
                (NodeKind::Lit(Value::Str(_)), _) => true,
                (NodeKind::Lit(Value::Bool(_)), t) => !matches!(t, FieldType::Boolean),
                (NodeKind::Lit(Value::Int(_) | Value::Float(_)), t) => {
                    matches!(t, FieldType::Version | FieldType::Ip | FieldType::Boolean)
                }
                _ => false,
            };
            if bad {
                let ordinal = match i + 2 {
                    2 => "2nd".to_string(),
                    3 => "3rd".to_string(),
                    n => format!("{n}th"),
                };
                let value = match &item.kind {
                    NodeKind::Lit(Value::Str(s)) => format!("\"{s}\""),
                    NodeKind::Lit(v) => v.render().unwrap_or_default(),
                    _ => String::new(),
                };
                return err(
                    format!(
                        "{ordinal} argument of [{path} in (...)] must be [{}], found value [{value}] type [{}]",
                        ty.name(),
                        match &item.kind {
                            NodeKind::Lit(Value::Str(_)) => "keyword",
                            NodeKind::Lit(Value::Bool(_)) => "boolean",
                            _ => "number",
                        }
                    ),
                    item.span,
                );
            }
        }
        Ok(())
    }

    /// An Elasticsearch `in`: the list holds values only, each number in both spellings.
    fn es_in(
        &mut self,
        n: &Node,
        needle: &Node,
        items: &[Node],
        insensitive: bool,
        negated: bool,
    ) -> R<Expr> {
        if let Some(bad) = items.iter().find(|i| has_field(i)) {
            return err(
                "the list of `in` must hold values, not fields, in Elasticsearch EQL",
                bad.span,
            );
        }
        self.es_type_check(needle, "in", items)?;
        let items: Vec<Node> = items
            .iter()
            .flat_map(|i| both_spellings(i).unwrap_or_else(|| vec![i.clone()]))
            .collect();
        let positive = Node {
            kind: NodeKind::In {
                needle: Box::new(needle.clone()),
                items,
                insensitive,
                negated: false,
            },
            span: n.span,
        };
        Ok(must_not_if(negated, self.leaf(&positive)?))
    }

    /// A bare field as a condition: the field is true.
    fn es_bare_field(&mut self, n: &Node) -> R<Expr> {
        let t = Node {
            kind: NodeKind::Lit(Value::Bool(true)),
            span: n.span,
        };
        let eq = Node {
            kind: NodeKind::Cmp {
                op: CmpKind::Eq,
                lhs: Box::new(n.clone()),
                rhs: Box::new(t),
            },
            span: n.span,
        };
        self.leaf(&eq)
    }

    /// An Elasticsearch leaf: its fields are bound one value at a time.
    fn leaf(&mut self, n: &Node) -> R<Expr> {
        let mut fields = Some(Vec::new());
        let e = self.value(n, &mut fields)?;
        let fields = fields.unwrap_or_default();
        Ok(Expr::any_of(fields, e))
    }

    fn field_expr(&self, path: &str, slots: &mut Option<Vec<FieldPath>>) -> Expr {
        let fp = FieldPath::parse(path);
        if let Some(Segment::Key(first)) = fp.segments().first() {
            if let Some(depth) = self.vars.iter().rev().position(|v| v == first) {
                let rest = (fp.segments().len() > 1).then(|| fp.tail(1));
                return Expr::Var { depth, path: rest };
            }
        }
        let base = match slots {
            Some(list) => {
                let i = match list.iter().position(|f| *f == fp) {
                    Some(i) => i,
                    None => {
                        list.push(fp);
                        list.len() - 1
                    }
                };
                Expr::Slot(i)
            }
            None => Expr::Field(fp),
        };
        // Under a mapping, a value is what the field's type indexes: numbers and booleans from
        // their strings, a keyword past `ignore_above` not at all.
        let call = |func: Func, args: Vec<Expr>| Expr::Call {
            func,
            args,
            fold: Fold::Sensitive,
        };
        match self.mapped_type(path) {
            Some(FieldType::Integer | FieldType::Float) => call(Func::AsNumber, vec![base]),
            Some(FieldType::Boolean) => call(Func::AsBool, vec![base]),
            Some(FieldType::Keyword {
                ignore_above: Some(n),
            }) => call(
                Func::IgnoreAbove,
                vec![base, Expr::Lit(Value::Int(*n as i64))],
            ),
            _ => base,
        }
    }

    fn matcher(&self, kind: PatternKind, patterns: &[Node], fold: Fold) -> R<Arc<Matcher>> {
        let mut texts = Vec::new();
        for p in patterns {
            match str_lit(p) {
                Some(s) => texts.push(s.to_string()),
                None => return err("a pattern must be a string literal", p.span),
            }
        }
        Matcher::new(kind, &texts, fold).map(Arc::new).map_err(|e| {
            let span = patterns
                .iter()
                .find(|p| str_lit(p) == Some(e.pattern.as_str()))
                .map(|p| p.span)
                .unwrap_or_default();
            EqlError::new(e.to_string(), span)
        })
    }

    /// Lowers an expression as a value. With `slots`, fields become slots of an enclosing `AnyOf`.
    fn value(&mut self, n: &Node, slots: &mut Option<Vec<FieldPath>>) -> R<Expr> {
        let es = self.es();
        Ok(match &n.kind {
            NodeKind::Lit(v) => Expr::Lit(v.clone()),
            NodeKind::Field { path, .. } => self.field_expr(path, slots),
            NodeKind::Not(inner) => Expr::Not(Box::new(self.value(inner, slots)?)),
            NodeKind::And(items) => Expr::And(
                items
                    .iter()
                    .map(|n| self.value(n, slots))
                    .collect::<R<_>>()?,
            ),
            NodeKind::Or(items) => Expr::Or(
                items
                    .iter()
                    .map(|n| self.value(n, slots))
                    .collect::<R<_>>()?,
            ),
            NodeKind::Cmp { op, lhs, rhs } => {
                let fold = if es {
                    Fold::Sensitive
                } else {
                    self.legacy_fold()
                };
                if !es && matches!(op, CmpKind::Eq | CmpKind::Assign | CmpKind::Ne) {
                    // Legacy: `==` against a string literal with `*` is a wildcard match.
                    let wild = |x: &Node| str_lit(x).is_some_and(|s| s.contains('*'));
                    let pair = if wild(rhs) && str_lit(lhs).is_none() {
                        Some((lhs, rhs))
                    } else if wild(lhs) && str_lit(rhs).is_none() {
                        Some((rhs, lhs))
                    } else {
                        None
                    };
                    if let Some((subject, pattern)) = pair {
                        let m = self.matcher(
                            PatternKind::LegacyWildcard,
                            std::slice::from_ref(pattern),
                            fold,
                        )?;
                        let e = Expr::Match {
                            subject: Box::new(self.value(subject, slots)?),
                            matcher: m,
                        };
                        return Ok(if *op == CmpKind::Ne {
                            Expr::Not(Box::new(e))
                        } else {
                            e
                        });
                    }
                }
                let cop = match op {
                    CmpKind::Eq | CmpKind::Assign => CmpOp::Eq,
                    CmpKind::Ne => CmpOp::Ne,
                    CmpKind::Lt => CmpOp::Lt,
                    CmpKind::Le => CmpOp::Le,
                    CmpKind::Gt => CmpOp::Gt,
                    CmpKind::Ge => CmpOp::Ge,
                };
                Expr::cmp(cop, self.value(lhs, slots)?, self.value(rhs, slots)?, fold)
            }
            NodeKind::In {
                needle,
                items,
                insensitive,
                negated,
            } => {
                let fold = if es {
                    fold_of(*insensitive)
                } else {
                    self.legacy_fold()
                };
                let mut lowered = Vec::new();
                for i in items {
                    lowered.push(self.value(i, slots)?);
                }
                let e = Expr::In {
                    needle: Box::new(self.value(needle, slots)?),
                    items: lowered,
                    fold,
                };
                if *negated {
                    Expr::Not(Box::new(e))
                } else {
                    e
                }
            }
            NodeKind::Pattern {
                op,
                subject,
                patterns,
                insensitive,
                negated,
            } => {
                let kind = match op {
                    PatternOp::Colon | PatternOp::Like => PatternKind::Wildcard,
                    PatternOp::Regex => PatternKind::Lucene,
                };
                let fold = fold_of(*insensitive);
                let m = self.matcher(kind, patterns, fold)?;
                let e = Expr::Match {
                    subject: Box::new(self.value(subject, slots)?),
                    matcher: m,
                };
                if *negated {
                    Expr::Not(Box::new(e))
                } else {
                    e
                }
            }
            NodeKind::Arith { op, lhs, rhs } => {
                let aop = match (op, es) {
                    (ArithKind::Add, _) => ArithOp::Add,
                    (ArithKind::Sub, _) => ArithOp::Sub,
                    (ArithKind::Mul, _) => ArithOp::Mul,
                    (ArithKind::Div, true) => ArithOp::TruncDiv,
                    (ArithKind::Div, false) => ArithOp::Div,
                    (ArithKind::Mod, true) => ArithOp::Rem,
                    (ArithKind::Mod, false) => ArithOp::FloorRem,
                };
                Expr::Arith {
                    op: aop,
                    lhs: Box::new(self.value(lhs, slots)?),
                    rhs: Box::new(self.value(rhs, slots)?),
                }
            }
            NodeKind::Neg(inner) => Expr::Neg(Box::new(self.value(inner, slots)?)),
            NodeKind::Call {
                name,
                name_span,
                insensitive,
                args,
            } => self.call(name, *name_span, *insensitive, args, slots)?,
            NodeKind::Lineage { kind, query } => {
                let sub = self.event_query(query)?;
                self.lineage.push(sub);
                let kind = match kind {
                    LineageWord::Descendant => LineageKind::DescendantOf,
                    LineageWord::Child => LineageKind::ChildOf,
                    LineageWord::Event => LineageKind::EventOf,
                };
                Expr::Lineage {
                    kind,
                    query: self.lineage.len() - 1,
                }
            }
        })
    }

    fn call(
        &mut self,
        name: &str,
        name_span: Span,
        insensitive: bool,
        args: &[Node],
        slots: &mut Option<Vec<FieldPath>>,
    ) -> R<Expr> {
        if name.eq_ignore_ascii_case("cidrMatch") {
            if let Some(
                first @ Node {
                    kind: NodeKind::Field { path, .. },
                    ..
                },
            ) = args.first()
            {
                if let Some(ty) = self.mapped_type(path) {
                    if *ty != FieldType::Ip {
                        return err(
                            format!(
                                "first argument of [cidrMatch] must be [ip], found value [{path}] type [{}]",
                                ty.name()
                            ),
                            first.span,
                        );
                    }
                }
            }
        }
        let es = self.es();
        let sig = lookup_function(name, name_span, es)?;
        if insensitive && !sig.insensitive_variant {
            return err(
                format!("`{}` has no case-insensitive `~` form", sig.name),
                name_span,
            );
        }
        check_arity(sig, name_span, args)?;
        check_literal_args(sig, args)?;
        let fold = if es {
            fold_of(insensitive)
        } else {
            self.legacy_fold()
        };
        let mut vals = |me: &mut Self, from: usize| -> R<Vec<Expr>> {
            let mut v = Vec::new();
            for a in &args[from..] {
                v.push(me.value(a, slots)?);
            }
            Ok(v)
        };
        Ok(match sig.func {
            Func::Wildcard | Func::Match | Func::MatchLite => {
                let kind = if sig.func == Func::Wildcard {
                    PatternKind::LegacyWildcard
                } else {
                    PatternKind::PythonMatch
                };
                let m = self.matcher(kind, &args[1..], fold)?;
                let subject = self.value(&args[0], slots)?;
                Expr::Match {
                    subject: Box::new(subject),
                    matcher: m,
                }
            }
            Func::ArraySearch | Func::ArrayCount => {
                let var = match &args[1].kind {
                    NodeKind::Field { path, .. } if !path.contains(['.', '[']) => path.clone(),
                    _ => return err("the second argument must be a variable name", args[1].span),
                };
                let array = self.value(&args[0], slots)?;
                self.vars.push(var.clone());
                let pred = self.value(&args[2], slots);
                self.vars.pop();
                Expr::Call {
                    func: sig.func,
                    args: vec![array, Expr::Lit(Value::Str(var.into())), pred?],
                    fold,
                }
            }
            Func::Modulo | Func::Divide | Func::Add | Func::Subtract | Func::Multiply => {
                let mut v = vals(self, 0)?;
                let rhs = v.pop().expect("arity checked");
                let lhs = v.pop().expect("arity checked");
                let op = match (sig.func, es) {
                    (Func::Add, _) => ArithOp::Add,
                    (Func::Subtract, _) => ArithOp::Sub,
                    (Func::Multiply, _) => ArithOp::Mul,
                    (Func::Divide, true) => ArithOp::TruncDiv,
                    (Func::Divide, false) => ArithOp::Div,
                    (_, true) => ArithOp::Rem,
                    (_, false) => ArithOp::FloorRem,
                };
                Expr::Arith {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                }
            }
            Func::Between if es => Expr::Call {
                func: Func::EsBetween,
                args: vals(self, 0)?,
                fold,
            },
            f => Expr::Call {
                func: f,
                args: vals(self, 0)?,
                fold,
            },
        })
    }
}

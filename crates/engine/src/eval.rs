//! The evaluator of the shared predicate form.

use crate::expr::{ArithOp, CmpOp, Expr, Fold, Func, LineageKind};
use crate::funcs;
use std::borrow::Cow;
use std::cmp::Ordering;
use unithunt_event::{lookup_all, lookup_one, FieldPath, Json, Value};

/// Answers `descendant of`/`child of`/`event of` for the event being evaluated.
pub type LineageFn<'a> = &'a dyn Fn(LineageKind, usize) -> bool;

/// Upper bound on the value combinations an [`Expr::AnyOf`] tries when several multi-valued fields
/// meet in one predicate; past it the predicate is false rather than exponential.
const MAX_BINDINGS: usize = 4096;

/// What an expression is evaluated against.
pub struct EvalCtx<'a> {
    pub doc: &'a Json,
    slots: Vec<Value<'a>>,
    slot_pool: Vec<Value<'a>>,
    vars: Vec<Value<'a>>,
    lineage: Option<LineageFn<'a>>,
    scratch: Vec<&'a Json>,
}

impl<'a> EvalCtx<'a> {
    pub fn new(doc: &'a Json) -> EvalCtx<'a> {
        EvalCtx {
            doc,
            slots: Vec::new(),
            slot_pool: Vec::new(),
            vars: Vec::new(),
            lineage: None,
            scratch: Vec::new(),
        }
    }

    pub fn with_lineage(mut self, lineage: LineageFn<'a>) -> EvalCtx<'a> {
        self.lineage = Some(lineage);
        self
    }
}

/// True when the predicate holds (evaluates to boolean true).
pub fn is_true<'a>(expr: &'a Expr, ctx: &mut EvalCtx<'a>) -> bool {
    matches!(eval(expr, ctx), Value::Bool(true))
}

fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::Json(j) => Value::Json(Cow::Borrowed(j.as_ref())),
        other => other.clone(),
    }
}

fn field<'a>(doc: &'a Json, path: &FieldPath) -> Value<'a> {
    lookup_one(doc, path)
        .map(Value::from_json)
        .unwrap_or(Value::Null)
}

/// Evaluates an expression to a value.
pub fn eval<'a>(expr: &'a Expr, ctx: &mut EvalCtx<'a>) -> Value<'a> {
    match expr {
        Expr::Lit(v) => borrow(v),
        Expr::Field(path) => field(ctx.doc, path),
        Expr::Slot(i) => ctx.slots.get(*i).cloned().unwrap_or(Value::Null),
        Expr::Var { depth, path } => {
            let n = ctx.vars.len();
            let Some(v) = n.checked_sub(depth + 1).and_then(|i| ctx.vars.get(i)) else {
                return Value::Null;
            };
            match (path, v) {
                (None, v) => v.clone(),
                (Some(p), Value::Json(Cow::Borrowed(j))) => field(j, p),
                (Some(p), Value::Json(Cow::Owned(j))) => field(j, p).into_owned(),
                _ => Value::Null,
            }
        }
        Expr::AnyOf { fields, pred } => Value::Bool(any_of(fields, pred, ctx)),
        Expr::Exists(path) => {
            ctx.scratch.clear();
            let mut buf = std::mem::take(&mut ctx.scratch);
            lookup_all(ctx.doc, path, &mut buf);
            let found = !buf.is_empty();
            buf.clear();
            ctx.scratch = buf;
            Value::Bool(found)
        }
        Expr::MustNot(inner) => Value::Bool(!is_true(inner, ctx)),
        Expr::Not(inner) => match eval(inner, ctx).truthy() {
            None => Value::Null,
            Some(b) => Value::Bool(!b),
        },
        Expr::And(items) => {
            let mut saw_null = false;
            for item in items {
                match eval(item, ctx).truthy() {
                    Some(false) => return Value::Bool(false),
                    None => saw_null = true,
                    Some(true) => {}
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Bool(true)
            }
        }
        Expr::Or(items) => {
            let mut saw_null = false;
            for item in items {
                match eval(item, ctx).truthy() {
                    Some(true) => return Value::Bool(true),
                    None => saw_null = true,
                    Some(false) => {}
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Bool(false)
            }
        }
        Expr::Cmp { op, lhs, rhs, fold } => {
            let l = eval(lhs, ctx);
            let r = eval(rhs, ctx);
            compare(*op, &l, &r, *fold)
        }
        Expr::In {
            needle,
            items,
            fold,
        } => {
            let n = eval(needle, ctx);
            if n.is_null() {
                return Value::Null;
            }
            for item in items {
                let v = eval(item, ctx);
                if values_equal(&n, &v, *fold) {
                    return Value::Bool(true);
                }
            }
            Value::Bool(false)
        }
        Expr::Match { subject, matcher } => match eval(subject, ctx) {
            Value::Null => Value::Null,
            Value::Str(s) => Value::Bool(matcher.is_match(&s)),
            // Patterns apply to strings only (Elasticsearch rejects `:` on numbers); this also keeps
            // the literal prefilter sound, since a number's rendering need not match its JSON text.
            _ => Value::Null,
        },
        Expr::Arith { op, lhs, rhs } => {
            let l = eval(lhs, ctx);
            let r = eval(rhs, ctx);
            arith(*op, &l, &r)
        }
        Expr::Neg(inner) => match eval(inner, ctx) {
            Value::Int(i) => i.checked_neg().map(Value::Int).unwrap_or(Value::Null),
            Value::Float(f) => Value::Float(-f),
            _ => Value::Null,
        },
        Expr::Call { func, args, fold } => match func {
            Func::ArraySearch | Func::ArrayCount => array_iter(*func, args, ctx),
            _ => {
                let vals: Vec<Value<'a>> = args.iter().map(|a| eval(a, ctx)).collect();
                funcs::call(*func, vals, *fold)
            }
        },
        Expr::Lineage { kind, query } => match ctx.lineage {
            Some(f) => Value::Bool(f(*kind, *query)),
            None => Value::Bool(false),
        },
    }
}

fn any_of<'a>(fields: &'a [FieldPath], pred: &'a Expr, ctx: &mut EvalCtx<'a>) -> bool {
    // Slots are swapped with a pooled vector rather than reallocated: this runs for every leaf.
    let pooled = std::mem::take(&mut ctx.slot_pool);
    let saved = std::mem::replace(&mut ctx.slots, pooled);
    ctx.slots.clear();
    let result = if fields.len() == 1 {
        // The common case, without the combination machinery.
        let mut buf = std::mem::take(&mut ctx.scratch);
        buf.clear();
        lookup_all(ctx.doc, &fields[0], &mut buf);
        let mut hit = false;
        if buf.is_empty() {
            ctx.slots.push(Value::Null);
            hit = is_true(pred, ctx);
        } else {
            ctx.slots.push(Value::Null);
            for j in buf.iter() {
                ctx.slots[0] = Value::from_json(j);
                if is_true(pred, ctx) {
                    hit = true;
                    break;
                }
            }
        }
        buf.clear();
        ctx.scratch = buf;
        hit
    } else {
        let mut columns: Vec<Vec<Value<'a>>> = Vec::with_capacity(fields.len());
        let mut combos: usize = 1;
        for f in fields {
            let mut buf = Vec::new();
            lookup_all(ctx.doc, f, &mut buf);
            let col: Vec<Value<'a>> = if buf.is_empty() {
                vec![Value::Null]
            } else {
                buf.into_iter().map(Value::from_json).collect()
            };
            combos = combos.saturating_mul(col.len());
            columns.push(col);
        }
        if combos > MAX_BINDINGS {
            false
        } else {
            let mut idx = vec![0usize; columns.len()];
            let mut hit = false;
            'outer: loop {
                ctx.slots = idx
                    .iter()
                    .zip(&columns)
                    .map(|(i, c)| c[*i].clone())
                    .collect();
                if is_true(pred, ctx) {
                    hit = true;
                    break;
                }
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < columns[k].len() {
                        continue 'outer;
                    }
                    idx[k] = 0;
                }
                break;
            }
            hit
        }
    };
    let mut used = std::mem::replace(&mut ctx.slots, saved);
    used.clear();
    ctx.slot_pool = used;
    result
}

fn array_iter<'a>(func: Func, args: &'a [Expr], ctx: &mut EvalCtx<'a>) -> Value<'a> {
    let (Some(array), Some(pred)) = (args.first(), args.get(2)) else {
        return Value::Null;
    };
    let items: Vec<Value<'a>> = match eval(array, ctx) {
        Value::Json(Cow::Borrowed(Json::Array(a))) => a.iter().map(Value::from_json).collect(),
        Value::Json(Cow::Owned(Json::Array(a))) => {
            a.iter().map(|j| Value::from_json(j).into_owned()).collect()
        }
        Value::Null => return Value::Null,
        _ => return Value::Null,
    };
    let mut count = 0i64;
    for item in items {
        ctx.vars.push(item);
        let hit = is_true(pred, ctx);
        ctx.vars.pop();
        if hit {
            if func == Func::ArraySearch {
                return Value::Bool(true);
            }
            count += 1;
        }
    }
    match func {
        Func::ArraySearch => Value::Bool(false),
        _ => Value::Int(count),
    }
}

/// Equality with optional case folding (strings only); numbers compare across int and float.
pub(crate) fn values_equal(a: &Value<'_>, b: &Value<'_>, fold: Fold) -> bool {
    match (a, b, fold) {
        (Value::Str(x), Value::Str(y), Fold::Insensitive) => str_eq_fold(x, y),
        _ => a == b,
    }
}

pub(crate) fn str_eq_fold(x: &str, y: &str) -> bool {
    if x.is_ascii() && y.is_ascii() {
        x.eq_ignore_ascii_case(y)
    } else {
        x.to_lowercase() == y.to_lowercase()
    }
}

pub(crate) fn fold_str(s: &str, fold: Fold) -> Cow<'_, str> {
    match fold {
        Fold::Sensitive => Cow::Borrowed(s),
        Fold::Insensitive => Cow::Owned(s.to_lowercase()),
    }
}

/// Comparison with EQL's null rules: `==`/`!=` treat null as a value (`null == null`), ordering
/// against null is null, values of different kinds are unequal and unordered.
pub fn compare<'a>(op: CmpOp, l: &Value<'_>, r: &Value<'_>, fold: Fold) -> Value<'a> {
    match op {
        CmpOp::Eq => Value::Bool(values_equal(l, r, fold)),
        CmpOp::Ne => Value::Bool(!values_equal(l, r, fold)),
        _ => {
            let ord = match (l, r) {
                (Value::Null, _) | (_, Value::Null) => return Value::Null,
                (Value::Str(a), Value::Str(b)) => {
                    Some(fold_str(a, fold).as_ref().cmp(fold_str(b, fold).as_ref()))
                }
                _ => l.partial_order(r),
            };
            let Some(ord) = ord else { return Value::Null };
            Value::Bool(match op {
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::Le => ord != Ordering::Greater,
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::Ge => ord != Ordering::Less,
                CmpOp::Eq | CmpOp::Ne => unreachable!(),
            })
        }
    }
}

/// Arithmetic; null or non-numbers give null, as does division by zero.
pub fn arith<'a>(op: ArithOp, l: &Value<'_>, r: &Value<'_>) -> Value<'a> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            let v = match op {
                ArithOp::Add => a.checked_add(b),
                ArithOp::Sub => a.checked_sub(b),
                ArithOp::Mul => a.checked_mul(b),
                ArithOp::Div => (b != 0).then(|| a.div_euclid(b)).map(|q| {
                    // Floor division: div_euclid rounds toward -inf only for positive divisors.
                    if b < 0 && a % b != 0 {
                        (a as f64 / b as f64).floor() as i64
                    } else {
                        q
                    }
                }),
                ArithOp::TruncDiv => a.checked_div(b),
                ArithOp::Rem => a.checked_rem(b),
                ArithOp::FloorRem => {
                    if b == 0 {
                        None
                    } else {
                        let m = a % b;
                        Some(if m != 0 && ((m < 0) != (b < 0)) {
                            m + b
                        } else {
                            m
                        })
                    }
                }
            };
            v.map(Value::Int).unwrap_or(Value::Null)
        }
        (a, b) if a.is_number() && b.is_number() => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            let v = match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div | ArithOp::TruncDiv if y == 0.0 => return Value::Null,
                ArithOp::Div | ArithOp::TruncDiv => x / y,
                ArithOp::Rem | ArithOp::FloorRem if y == 0.0 => return Value::Null,
                ArithOp::Rem => x % y,
                ArithOp::FloorRem => x - y * (x / y).floor(),
            };
            Value::Float(v)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(v: Value<'static>) -> Expr {
        Expr::Lit(v)
    }

    #[test]
    fn any_of_matches_any_element_and_must_not_needs_none() {
        let eq_enable = Expr::any_of(
            vec![FieldPath::parse("process.args")],
            Expr::cmp(
                CmpOp::Eq,
                Expr::Slot(0),
                lit(Value::str("enable")),
                Fold::Sensitive,
            ),
        );
        let doc = json!({"process": {"args": ["systemctl", "enable", "x"]}});
        let missing = json!({});
        assert!(is_true(&eq_enable, &mut EvalCtx::new(&doc)));
        assert!(!is_true(&eq_enable, &mut EvalCtx::new(&missing)));
        let neg = Expr::MustNot(Box::new(eq_enable));
        assert!(!is_true(&neg, &mut EvalCtx::new(&doc)));
        assert!(
            is_true(&neg, &mut EvalCtx::new(&missing)),
            "must_not holds on missing"
        );
    }

    #[test]
    fn legacy_not_is_three_valued() {
        let cmp = Expr::cmp(
            CmpOp::Lt,
            Expr::Field(FieldPath::parse("exit_code")),
            lit(Value::Int(1)),
            Fold::Sensitive,
        );
        let not = Expr::Not(Box::new(cmp));
        let doc = json!({});
        assert!(eval(&not, &mut EvalCtx::new(&doc)).is_null());
    }

    #[test]
    fn arithmetic_floors_and_remainders_follow_each_dialect() {
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(83), &Value::Int(2)),
            Value::Int(41)
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(-7), &Value::Int(2)),
            Value::Int(-4)
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(7), &Value::Int(-2)),
            Value::Int(-4)
        );
        assert_eq!(
            arith(ArithOp::Rem, &Value::Int(-7), &Value::Int(3)),
            Value::Int(-1)
        );
        assert_eq!(
            arith(ArithOp::FloorRem, &Value::Int(-7), &Value::Int(3)),
            Value::Int(2)
        );
        assert!(arith(ArithOp::Div, &Value::Int(1), &Value::Int(0)).is_null());
    }
}

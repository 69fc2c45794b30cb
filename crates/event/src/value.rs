//! Values produced while evaluating a rule.

use crate::Json;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// A value during evaluation. Strings borrow from the event where they can; arrays and objects stay
/// JSON (only the legacy EQL dialect looks inside them).
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An array or an object.
    Json(Cow<'a, Json>),
}

impl<'a> Value<'a> {
    /// A borrowed string value.
    pub fn str(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    /// Views a JSON value without copying.
    pub fn from_json(json: &'a Json) -> Value<'a> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Value::Str(Cow::Borrowed(s)),
            other => Value::Json(Cow::Borrowed(other)),
        }
    }

    /// Converts back to JSON (for output and for keys).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Str(s) => Json::String(s.to_string()),
            Value::Json(j) => j.clone().into_owned(),
        }
    }

    /// Detaches the value from the event it borrows from.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Json(j) => Value::Json(Cow::Owned(j.into_owned())),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_))
    }

    /// Python-style truthiness (the legacy dialect's `where field`): null is `None`.
    pub fn truthy(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::Float(f) => Some(*f != 0.0),
            Value::Str(s) => Some(!s.is_empty()),
            Value::Json(j) => Some(match j.as_ref() {
                Json::Array(a) => !a.is_empty(),
                Json::Object(o) => !o.is_empty(),
                _ => true,
            }),
        }
    }

    /// Total order used for sorting and for range comparisons between values of the same kind:
    /// numbers numerically, strings by code point. `None` when the kinds cannot be compared.
    pub fn partial_order(&self, other: &Value<'_>) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (a, b) if a.is_number() && b.is_number() => a.as_f64()?.partial_cmp(&b.as_f64()?),
            (Value::Str(a), Value::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Sort order for the legacy `sort` pipe: null first, then booleans, numbers, strings, others.
    pub fn sort_order(&self, other: &Value<'_>) -> Ordering {
        fn rank(v: &Value<'_>) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Int(_) | Value::Float(_) => 2,
                Value::Str(_) => 3,
                Value::Json(_) => 4,
            }
        }
        self.partial_order(other)
            .unwrap_or_else(|| rank(self).cmp(&rank(other)))
    }

    /// The string form used by `string()` and `concat()`: integers plainly, floats like Python's
    /// `repr` (`21.0`), booleans as `true`/`false`.
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(render_float(*f)),
            Value::Str(s) => Some(s.to_string()),
            Value::Json(j) => Some(j.to_string()),
        }
    }
}

fn render_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Equality as EQL means it for `==` (case-sensitive): numbers compare numerically across int and
/// float; other kinds must match.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (a, b) if a.is_number() && b.is_number() => a.as_f64() == b.as_f64(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Json(a), Value::Json(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.render() {
            Some(s) => f.write_str(&s),
            None => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_kinds() {
        assert_eq!(Value::Int(21), Value::Float(21.0));
        assert_ne!(Value::Int(21), Value::str("21"));
        assert_eq!(
            Value::Int(2).partial_order(&Value::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::str("a").partial_order(&Value::Int(1)), None);
    }

    #[test]
    fn floats_render_like_python() {
        assert_eq!(Value::Float(21.0).render().unwrap(), "21.0");
        assert_eq!(Value::Float(2.1828).render().unwrap(), "2.1828");
        assert_eq!(Value::Int(5).render().unwrap(), "5");
        assert_eq!(Value::Null.render(), None);
    }
}

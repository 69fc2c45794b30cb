//! Scalar functions over evaluated values.

use crate::eval::{arith, fold_str, values_equal};
use crate::expr::{ArithOp, Fold, Func};
use crate::typed;
use std::borrow::Cow;
use std::net::IpAddr;
use unithunt_event::{Json, Value};

/// What a function accepts, for semantic checks in the front ends.
#[derive(Clone, Copy, Debug)]
pub struct FuncSig {
    pub func: Func,
    /// The name as written in EQL.
    pub name: &'static str,
    pub min_args: usize,
    /// `None` for variadic functions.
    pub max_args: Option<usize>,
    /// Whether `name~` (case-insensitive) exists in Elasticsearch EQL.
    pub insensitive_variant: bool,
    /// Whether Elasticsearch EQL has it (otherwise it is legacy-only).
    pub elasticsearch: bool,
    /// Argument positions that must be strings when given as literals.
    pub string_args: &'static [usize],
    /// Argument positions that must be numbers when given as literals.
    pub number_args: &'static [usize],
}

const ALL: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

macro_rules! sig {
    ($f:ident, $name:literal, $min:expr, $max:expr, $ci:expr, $es:expr, $s:expr, $n:expr) => {
        FuncSig {
            func: Func::$f,
            name: $name,
            min_args: $min,
            max_args: $max,
            insensitive_variant: $ci,
            elasticsearch: $es,
            string_args: $s,
            number_args: $n,
        }
    };
}

/// Every function, by EQL name.
pub const FUNCTIONS: &[FuncSig] = &[
    sig!(Add, "add", 2, Some(2), false, true, &[], &[0, 1]),
    sig!(Between, "between", 3, Some(4), true, true, &[0, 1, 2], &[]),
    sig!(CidrMatch, "cidrMatch", 2, None, false, true, ALL, &[]),
    sig!(Concat, "concat", 1, None, false, true, &[], &[]),
    sig!(Divide, "divide", 2, Some(2), false, true, &[], &[0, 1]),
    sig!(EndsWith, "endsWith", 2, Some(2), true, true, &[0, 1], &[]),
    sig!(IndexOf, "indexOf", 2, Some(3), true, true, &[0, 1], &[2]),
    sig!(Length, "length", 1, Some(1), false, true, &[], &[]),
    sig!(Modulo, "modulo", 2, Some(2), false, true, &[], &[0, 1]),
    sig!(Multiply, "multiply", 2, Some(2), false, true, &[], &[0, 1]),
    sig!(Number, "number", 1, Some(2), false, true, &[0], &[1]),
    sig!(
        StartsWith,
        "startsWith",
        2,
        Some(2),
        true,
        true,
        &[0, 1],
        &[]
    ),
    sig!(String, "string", 1, Some(1), false, true, &[], &[]),
    sig!(
        StringContains,
        "stringContains",
        2,
        Some(2),
        true,
        true,
        &[0, 1],
        &[]
    ),
    sig!(
        Substring,
        "substring",
        2,
        Some(3),
        false,
        true,
        &[0],
        &[1, 2]
    ),
    sig!(Subtract, "subtract", 2, Some(2), false, true, &[], &[0, 1]),
    sig!(
        ArrayContains,
        "arrayContains",
        2,
        None,
        false,
        false,
        &[],
        &[]
    ),
    sig!(ArrayCount, "arrayCount", 3, Some(3), false, false, &[], &[]),
    sig!(
        ArraySearch,
        "arraySearch",
        3,
        Some(3),
        false,
        false,
        &[],
        &[]
    ),
    sig!(Match, "match", 2, None, false, false, ALL, &[]),
    sig!(MatchLite, "matchLite", 2, None, false, false, ALL, &[]),
    sig!(Safe, "safe", 1, Some(1), false, false, &[], &[]),
    sig!(Wildcard, "wildcard", 2, None, false, false, ALL, &[]),
];

impl FuncSig {
    /// Looks a function up by name, case-insensitively as both EQL dialects do.
    pub fn lookup(name: &str) -> Option<&'static FuncSig> {
        FUNCTIONS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

fn s<'v>(v: &'v Value<'_>) -> Option<&'v str> {
    v.as_str()
}

/// Applies a scalar function. Functions that need their arguments unevaluated (`arraySearch`,
/// `arrayCount`) or compiled (`match`, `wildcard`) are handled by the evaluator and lowering.
pub fn call<'a>(func: Func, args: Vec<Value<'a>>, fold: Fold) -> Value<'a> {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    match func {
        Func::Add => arith(ArithOp::Add, arg(0), arg(1)),
        Func::Subtract => arith(ArithOp::Sub, arg(0), arg(1)),
        Func::Multiply => arith(ArithOp::Mul, arg(0), arg(1)),
        Func::Divide => arith(ArithOp::Div, arg(0), arg(1)),
        Func::Modulo => arith(ArithOp::Rem, arg(0), arg(1)),
        Func::Between => {
            let (Some(src), Some(left), Some(right)) = (s(arg(0)), s(arg(1)), s(arg(2))) else {
                return Value::Null;
            };
            let greedy = arg(3).as_bool().unwrap_or(false);
            between(src, left, right, greedy, fold)
                .map(|x| Value::Str(Cow::Owned(x)))
                .unwrap_or(Value::Null)
        }
        Func::EsBetween => {
            let (Some(src), Some(left), Some(right)) = (s(arg(0)), s(arg(1)), s(arg(2))) else {
                return Value::Null;
            };
            let greedy = arg(3).as_bool().unwrap_or(false);
            let out = if left.is_empty() || right.is_empty() {
                src.to_string()
            } else {
                between(src, left, right, greedy, fold).unwrap_or_default()
            };
            Value::Str(Cow::Owned(out))
        }
        Func::CidrMatch => {
            let Some(ip) = s(arg(0)).and_then(|x| x.trim().parse::<IpAddr>().ok()) else {
                return if arg(0).is_null() {
                    Value::Null
                } else {
                    Value::Bool(false)
                };
            };
            Value::Bool(
                args[1..]
                    .iter()
                    .any(|c| s(c).is_some_and(|c| cidr_contains(c, ip))),
            )
        }
        Func::Concat => {
            let mut out = String::new();
            for a in &args {
                match a.render() {
                    Some(x) => out.push_str(&x),
                    None => return Value::Null,
                }
            }
            Value::Str(Cow::Owned(out))
        }
        Func::EndsWith | Func::StartsWith | Func::StringContains => {
            let (Some(a), Some(b)) = (s(arg(0)), s(arg(1))) else {
                return Value::Null;
            };
            let (a, b) = (fold_str(a, fold), fold_str(b, fold));
            Value::Bool(match func {
                Func::EndsWith => a.ends_with(b.as_ref()),
                Func::StartsWith => a.starts_with(b.as_ref()),
                _ => a.contains(b.as_ref()),
            })
        }
        Func::IndexOf => {
            let (Some(a), Some(b)) = (s(arg(0)), s(arg(1))) else {
                return Value::Null;
            };
            let start = match arg(2) {
                Value::Null => 0,
                Value::Int(i) => (*i).max(0) as usize,
                Value::Float(f) => f.max(0.0) as usize,
                _ => return Value::Null,
            };
            index_of(&fold_str(a, fold), &fold_str(b, fold), start)
                .map(|i| Value::Int(i as i64))
                .unwrap_or(Value::Null)
        }
        Func::Length => match arg(0) {
            Value::Str(x) => Value::Int(x.chars().count() as i64),
            Value::Json(j) => match j.as_ref() {
                Json::Array(a) => Value::Int(a.len() as i64),
                Json::Object(o) => Value::Int(o.len() as i64),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Func::Number => {
            let Some(text) = s(arg(0)) else {
                return Value::Null;
            };
            let base = match arg(1) {
                Value::Int(b) => Some(*b as u32),
                Value::Null => None,
                _ => return Value::Null,
            };
            number(text, base).unwrap_or(Value::Null)
        }
        Func::String => match arg(0).render() {
            Some(x) => Value::Str(Cow::Owned(x)),
            None => Value::Null,
        },
        Func::Substring => {
            let Some(text) = s(arg(0)) else {
                return Value::Null;
            };
            let as_idx = |v: &Value<'_>| match v {
                Value::Int(i) => Some(*i),
                Value::Float(f) => Some(*f as i64),
                _ => None,
            };
            Value::Str(Cow::Owned(substring(text, as_idx(arg(1)), as_idx(arg(2)))))
        }
        Func::ArrayContains => match arg(0) {
            Value::Json(j) => match j.as_ref() {
                Json::Array(items) => Value::Bool(items.iter().any(|item| {
                    let item = Value::from_json(item);
                    args[1..]
                        .iter()
                        .any(|needle| values_equal(&item, needle, fold))
                })),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Func::Safe => args.into_iter().next().unwrap_or(Value::Null),
        Func::TimePart => time_part(arg(0), arg(1)),
        Func::AsVersion
        | Func::AsIp
        | Func::AsDate
        | Func::DateKey
        | Func::AsNumber
        | Func::AsBool
        | Func::IgnoreAbove => typed::call(func, arg(0), arg(1)),
        // Compiled by lowering or evaluated lazily; reaching here means a bare call with no
        // predicate, which is null.
        Func::ArrayCount | Func::ArraySearch | Func::Match | Func::MatchLite | Func::Wildcard => {
            Value::Null
        }
    }
}

/// A part of a timestamp (an ISO-8601 text or epoch milliseconds), in UTC; null when unreadable.
fn time_part(value: &Value<'_>, part: &Value<'_>) -> Value<'static> {
    use chrono::{Datelike, Timelike};
    let Some(ns) =
        unithunt_event::parse_timestamp(&value.to_json(), unithunt_event::TimestampFormat::Auto)
    else {
        return Value::Null;
    };
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    let n = match part.as_str() {
        Some("minute") => t.minute() as i64,
        Some("hour") => t.hour() as i64,
        Some("day") => t.day() as i64,
        Some("week") => t.iso_week().week() as i64,
        Some("month") => t.month() as i64,
        Some("year") => t.year() as i64,
        _ => return Value::Null,
    };
    Value::Int(n)
}

/// `between`: the text after the first `left` and before the next (or, greedy, the last) `right`.
/// Offsets are found in the folded text and applied to the original, so case is kept.
pub fn between(src: &str, left: &str, right: &str, greedy: bool, fold: Fold) -> Option<String> {
    let hay = fold_str(src, fold);
    let (l, r) = (fold_str(left, fold), fold_str(right, fold));
    let start = hay.find(l.as_ref())? + l.len();
    let rest = &hay[start..];
    let end = if greedy {
        rest.rfind(r.as_ref())?
    } else {
        rest.find(r.as_ref())?
    };
    // Folding may change byte lengths for non-ASCII text; then answer from the folded text.
    if hay.len() == src.len() {
        src.get(start..start + end).map(str::to_string)
    } else {
        Some(rest[..end].to_string())
    }
}

fn index_of(hay: &str, needle: &str, start_chars: usize) -> Option<usize> {
    let start_byte = match hay.char_indices().nth(start_chars) {
        Some((b, _)) => b,
        None if start_chars == hay.chars().count() => hay.len(),
        None => return None,
    };
    let found = hay[start_byte..].find(needle)? + start_byte;
    Some(hay[..found].chars().count())
}

fn number(text: &str, base: Option<u32>) -> Option<Value<'static>> {
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let hex = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"));
    let (base, digits) = match (base, hex) {
        (None | Some(16), Some(h)) => (16, h),
        (None, None) => (10, digits),
        (Some(b), _) if (2..=36).contains(&b) => (b, digits),
        _ => return None,
    };
    if base == 10 && digits.contains(['.', 'e', 'E']) {
        let f: f64 = digits.parse().ok()?;
        return Some(Value::Float(if neg { -f } else { f }));
    }
    let n = i64::from_str_radix(digits, base).ok()?;
    Some(Value::Int(if neg { -n } else { n }))
}

/// Python slicing on characters: negative indices count from the end, out-of-range clamps.
pub fn substring(text: &str, start: Option<i64>, end: Option<i64>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let a = start.map(norm).unwrap_or(0);
    let b = end.map(norm).unwrap_or(len);
    if a >= b {
        return String::new();
    }
    chars[a as usize..b as usize].iter().collect()
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.trim().parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_and_substring_follow_the_reference() {
        let w = "welcome to the planet";
        assert_eq!(
            between(w, "welcome", "e", false, Fold::Sensitive).as_deref(),
            Some(" to th")
        );
        assert_eq!(
            between(w, "welcome", "e", true, Fold::Sensitive).as_deref(),
            Some(" to the plan")
        );
        assert_eq!(
            between(w, "", "", true, Fold::Sensitive).as_deref(),
            Some(w)
        );
        assert_eq!(between(w, "x", "e", true, Fold::Sensitive), None);
        assert_eq!(substring("hello world", Some(-5), Some(-1)), "worl");
        assert_eq!(substring("hello world", Some(-60), Some(5)), "hello");
    }

    #[test]
    fn numbers_in_bases_and_cidrs() {
        assert_eq!(number("0x1337", None), Some(Value::Int(4919)));
        assert_eq!(number("052403", Some(8)), Some(Value::Int(21763)));
        assert_eq!(number("-2.5", Some(10)), Some(Value::Float(-2.5)));
        assert_eq!(number("zz", None), None);
        assert!(cidr_contains("10.6.48.157/8", "10.1.2.3".parse().unwrap()));
        assert!(!cidr_contains(
            "192.168.0.0/16",
            "10.1.2.3".parse().unwrap()
        ));
        assert!(cidr_contains("0.0.0.0/0", "10.1.2.3".parse().unwrap()));
        assert!(cidr_contains("fe80::/10", "fe80::1".parse().unwrap()));
    }
}

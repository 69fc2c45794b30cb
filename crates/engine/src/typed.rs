//! Values as Elasticsearch indexes them under a mapping type: `version` strings in version order,
//! `ip` addresses in address order, `date` strings through the field's formats, numbers and
//! booleans from their string spellings. Each conversion yields a plain [`Value`] whose ordinary
//! comparison is the typed one, so the evaluator needs no types of its own: the EQL front end
//! wraps a typed field in [`Func::AsVersion`](crate::Func::AsVersion) and friends and converts
//! the literal it is compared with once, at compile time.

use crate::expr::Func;
use std::borrow::Cow;
use std::net::IpAddr;
use unithunt_event::{Json, Value};

/// A `version` value as a string whose code-point order is Elasticsearch's version order
/// (`x-pack/plugin/mapper-version` `VersionEncoder`): numeric groups by value, a pre-release
/// before its release (numeric identifiers before alphanumeric ones, those in ASCII order), the
/// build suffix compared as text, and every string that is not a valid version after every valid
/// one, in its own order. Two versions are equal exactly when their strings are.
pub fn version_key(s: &str) -> String {
    match encode_version(s) {
        Some(k) => k,
        None if s.is_empty() => "\u{3}".into(),
        None => s.to_string(),
    }
}

fn digit_group(out: &mut String, digits: &str) -> Option<()> {
    // Groups longer than 127 digits are refused by Elasticsearch; so is a leading zero.
    if digits.is_empty() || digits.len() > 127 || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    out.push('\u{1}');
    out.push(char::from_u32(0x80 + digits.len() as u32)?);
    out.push_str(digits);
    Some(())
}

fn encode_version(s: &str) -> Option<String> {
    let (rest, build) = match s.find('+') {
        Some(i) if i > 0 => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    let (main, pre) = match rest.find('-') {
        Some(i) if i > 0 => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in main.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digit_group(&mut out, part)?;
    }
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    match pre {
        None => out.push('\u{3}'),
        Some(pre) => {
            out.push('\u{2}');
            out.push('-');
            for (i, id) in pre.split('.').enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if id.is_empty() || !id.bytes().all(ident) {
                    return None;
                }
                if id.bytes().all(|b| b.is_ascii_digit()) {
                    digit_group(&mut out, id)?;
                } else {
                    out.push_str(id);
                }
            }
        }
    }
    if let Some(build) = build {
        if build
            .split('.')
            .any(|id| id.is_empty() || !id.bytes().all(ident))
        {
            return None;
        }
        out.push('+');
        out.push_str(build);
    }
    Some(out)
}

/// An address as 32 hex digits of its IPv6 form (IPv4 as `::ffff:a.b.c.d`), so equal addresses
/// are equal strings however written and string order is Lucene's `InetAddressPoint` order.
pub fn ip_key(s: &str) -> Option<String> {
    let ip: IpAddr = s.trim().parse().ok()?;
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Some(format!("{:032x}", u128::from(v6)))
}

/// An address as Elasticsearch fetches it (`InetAddresses.toAddrString`): IPv4 (also when written
/// IPv4-mapped) dotted, IPv6 in its shortest form.
pub fn ip_canonical(s: &str) -> Option<String> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    })
}

/// A number from a number or a numeric string, as number fields index `"123"` (`coerce`).
pub fn number_of(v: &Value<'_>) -> Option<Value<'static>> {
    match v {
        Value::Int(i) => Some(Value::Int(*i)),
        Value::Float(f) => Some(Value::Float(*f)),
        Value::Str(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                Some(Value::Int(i))
            } else {
                t.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| {
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        Value::Int(f as i64)
                    } else {
                        Value::Float(f)
                    }
                })
            }
        }
        _ => None,
    }
}

/// A boolean from `true`/`false` or their strings, as boolean fields index them.
pub fn bool_of(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Str(s) if s.as_ref() == "true" => Some(true),
        Value::Str(s) if s.as_ref() == "false" => Some(false),
        _ => None,
    }
}

/// One format of a `date` field's `format` (`yyyy/MM/dd HH:mm:ss`, `epoch_millis`, ...).
#[derive(Clone, Debug, PartialEq)]
pub enum DateFormat {
    EpochMillis,
    EpochSecond,
    /// The ISO-8601 family (`strict_date_optional_time` and the other ISO names).
    Iso,
    /// A Java `DateTimeFormatter` pattern, as a chrono format; `has_zone`, `has_time`, and the
    /// finest unit written, in milliseconds (for Elasticsearch's rounding of `==`).
    Pattern {
        chrono: String,
        has_zone: bool,
        has_time: bool,
        unit_ms: i64,
    },
}

const ISO_NAMES: &[&str] = &[
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_optional_time_nanos",
    "iso8601",
    "strict_date_time",
    "date_time",
    "strict_date_time_no_millis",
    "date_time_no_millis",
    "strict_date",
    "date",
    "strict_date_hour_minute_second",
    "date_hour_minute_second",
    "strict_date_hour_minute_second_millis",
    "date_hour_minute_second_millis",
    "strict_date_hour_minute_second_fraction",
    "date_hour_minute_second_fraction",
    "strict_date_hour_minute",
    "date_hour_minute",
    "strict_year_month_day",
    "year_month_day",
];

impl DateFormat {
    /// Reads one format (Elasticsearch joins several with `||`). Patterns take the letters
    /// `y u M d H h a m s S Z X x E`, quoted text and punctuation; anything else is refused
    /// rather than guessed.
    pub fn parse(spec: &str) -> Result<DateFormat, String> {
        let spec = spec.trim();
        match spec {
            "epoch_millis" => return Ok(DateFormat::EpochMillis),
            "epoch_second" => return Ok(DateFormat::EpochSecond),
            _ => {}
        }
        if ISO_NAMES.contains(&spec) {
            return Ok(DateFormat::Iso);
        }
        if spec.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(format!(
                "date format {spec:?} is not supported (named formats: epoch_millis, epoch_second and the ISO-8601 ones such as strict_date_optional_time; or a pattern such as yyyy/MM/dd HH:mm:ss)"
            ));
        }
        let mut chrono = String::new();
        let (mut has_zone, mut has_time, mut unit_ms) = (false, false, i64::MAX);
        let chars: Vec<char> = spec.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '\'' {
                    push_literal(&mut chrono, chars[j]);
                    j += 1;
                }
                if j == i + 1 && j < chars.len() {
                    push_literal(&mut chrono, '\'');
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                push_literal(&mut chrono, c);
                i += 1;
                continue;
            }
            let mut n = 1;
            while i + n < chars.len() && chars[i + n] == c {
                n += 1;
            }
            let (piece, unit): (&str, i64) = match (c, n) {
                ('y' | 'u', 2) => ("%y", 31_536_000_000),
                ('y' | 'u', _) => ("%Y", 31_536_000_000),
                ('M', 1 | 2) => ("%m", 2_592_000_000),
                ('M', 3) => ("%b", 2_592_000_000),
                ('M', _) => ("%B", 2_592_000_000),
                ('d', 1 | 2) => ("%d", 86_400_000),
                ('E', 1..=3) => ("%a", 86_400_000),
                ('E', _) => ("%A", 86_400_000),
                ('H', 1 | 2) => ("%H", 3_600_000),
                ('h', 1 | 2) => ("%I", 3_600_000),
                ('a', 1) => ("%p", 3_600_000),
                ('m', 1 | 2) => ("%M", 60_000),
                ('s', 1 | 2) => ("%S", 1_000),
                ('S', 1..=9) => ("%f", 1),
                ('Z', 1..=3) | ('x', 1 | 2) => ("%z", i64::MAX),
                ('X', _) | ('x', _) | ('Z', _) => ("%:z", i64::MAX),
                _ => {
                    return Err(format!(
                        "date format {spec:?}: the pattern letter {:?} is not supported",
                        c.to_string().repeat(n)
                    ))
                }
            };
            if matches!(c, 'Z' | 'X' | 'x') {
                has_zone = true;
            }
            if matches!(c, 'H' | 'h' | 'm' | 's' | 'S') {
                has_time = true;
            }
            // A fraction after a dot: chrono's `%.f` reads the dot and any number of digits.
            if c == 'S' && chrono.ends_with('.') {
                chrono.pop();
                chrono.push_str("%.f");
            } else {
                chrono.push_str(piece);
            }
            unit_ms = unit_ms.min(unit);
            i += n;
        }
        Ok(DateFormat::Pattern {
            chrono,
            has_zone,
            has_time,
            unit_ms: if unit_ms == i64::MAX { 1 } else { unit_ms },
        })
    }

    /// Milliseconds since the epoch and the span the text covers (a date without a time covers
    /// its whole day), or `None` when the text is not in this format.
    pub fn read(&self, text: &str) -> Option<(i64, i64)> {
        use chrono::{DateTime, NaiveDate, NaiveDateTime};
        let text = text.trim();
        match self {
            DateFormat::EpochMillis => {
                let ms: f64 = text.parse().ok()?;
                ms.is_finite().then_some((ms.floor() as i64, 1))
            }
            DateFormat::EpochSecond => {
                let s: f64 = text.parse().ok()?;
                (s.is_finite() && s.abs() < 9.0e12).then_some(((s * 1000.0).floor() as i64, 1000))
            }
            DateFormat::Iso => {
                if text.is_empty() || !text.as_bytes()[0].is_ascii_digit() || !text.contains('-') {
                    return None;
                }
                let ns = unithunt_event::parse_timestamp(
                    &Json::String(text.to_string()),
                    unithunt_event::TimestampFormat::Auto,
                )?;
                Some((ns.div_euclid(1_000_000), iso_unit(text)))
            }
            DateFormat::Pattern {
                chrono,
                has_zone,
                has_time,
                unit_ms,
            } => {
                let ms = if *has_zone {
                    DateTime::parse_from_str(text, chrono)
                        .ok()?
                        .timestamp_millis()
                } else if *has_time {
                    NaiveDateTime::parse_from_str(text, chrono)
                        .ok()?
                        .and_utc()
                        .timestamp_millis()
                } else {
                    NaiveDate::parse_from_str(text, chrono)
                        .ok()?
                        .and_hms_opt(0, 0, 0)?
                        .and_utc()
                        .timestamp_millis()
                };
                Some((ms, *unit_ms))
            }
        }
    }
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// The finest unit an ISO-8601 text writes: a day, an hour, a minute, a second or finer.
fn iso_unit(text: &str) -> i64 {
    let Some(t) = text.find(['T', ' ']) else {
        return 86_400_000;
    };
    let time = &text[t + 1..];
    let time = time.split(['Z', '+']).next().unwrap_or(time);
    if time.contains('.') || time.contains(',') {
        return 1;
    }
    match time.matches(':').count() {
        0 => 3_600_000,
        1 => 60_000,
        _ => 1_000,
    }
}

/// The formats of one `date` field, tried in order.
#[derive(Clone, Debug, PartialEq)]
pub struct DateFormats(pub Vec<DateFormat>);

impl DateFormats {
    /// Reads a `format` value: formats joined by `||`.
    pub fn parse(spec: &str) -> Result<DateFormats, String> {
        spec.split("||")
            .map(DateFormat::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(DateFormats)
    }

    /// A value of the field: numbers are epoch milliseconds, strings go through the formats.
    pub fn read(&self, v: &Value<'_>) -> Option<(i64, i64)> {
        match v {
            Value::Int(i) => Some((*i, 1)),
            Value::Float(f) if f.is_finite() => Some((f.floor() as i64, 1)),
            Value::Str(s) => self.0.iter().find_map(|f| f.read(s)),
            _ => None,
        }
    }
}

/// Applies `f` to a value, or to each element of an array value (join keys take every value of
/// a multi-valued field); `None` results become nulls.
pub(crate) fn map_values<'a>(
    v: &Value<'a>,
    f: &dyn Fn(&Value<'_>) -> Option<Value<'static>>,
) -> Value<'a> {
    match v {
        Value::Json(j) => match j.as_ref() {
            Json::Array(items) => Value::Json(Cow::Owned(Json::Array(
                items
                    .iter()
                    .map(|x| {
                        f(&Value::from_json(x))
                            .map(|y| y.to_json())
                            .unwrap_or(Json::Null)
                    })
                    .collect(),
            ))),
            _ => Value::Null,
        },
        Value::Null => Value::Null,
        other => f(other).unwrap_or(Value::Null),
    }
}

/// The typed conversions ([`Func::AsVersion`] and the others): `value` converted, `param` the
/// conversion's argument (a date field's formats, `ignore_above`, `true` for an address's
/// canonical spelling).
pub(crate) fn call<'a>(func: Func, value: &Value<'a>, param: &Value<'_>) -> Value<'a> {
    match func {
        Func::AsVersion => map_values(value, &|v| {
            v.as_str().map(|s| Value::Str(Cow::Owned(version_key(s))))
        }),
        Func::AsIp => {
            // Argument 1 `true`: the canonical spelling (join keys), not the sort key.
            let canonical = matches!(param, Value::Bool(true));
            map_values(value, &|v| {
                let text = v.as_str()?;
                let key = if canonical {
                    ip_canonical(text)?
                } else {
                    ip_key(text)?
                };
                Some(Value::Str(Cow::Owned(key)))
            })
        }
        Func::AsDate | Func::DateKey => {
            let Some(formats) = param.as_str().and_then(|f| DateFormats::parse(f).ok()) else {
                return Value::Null;
            };
            let key = func == Func::DateKey;
            map_values(value, &|v| {
                formats.read(v).map(|(ms, _)| {
                    if key {
                        Value::Str(Cow::Owned(unithunt_event::format_iso_ms(ms)))
                    } else {
                        Value::Int(ms)
                    }
                })
            })
        }
        Func::AsNumber => map_values(value, &number_of),
        Func::AsBool => map_values(value, &|v| bool_of(v).map(Value::Bool)),
        Func::IgnoreAbove => {
            let limit = match param {
                Value::Int(n) => *n as usize,
                _ => usize::MAX,
            };
            map_values(value, &|v| match v {
                Value::Str(s) if s.chars().count() > limit => None,
                other => Some(other.clone().into_owned()),
            })
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders from `VersionEncoder` (x-pack/plugin/mapper-version) and the EQL QA data
    /// (`test_extra.toml` sequenceWithVersionRangeCheck*: 1.11.3 > 1.5.0, 1.2.4-SNAPSHOT < 1.5.0).
    #[test]
    fn versions_sort_in_version_order_and_invalid_strings_last() {
        let ordered = [
            "1.2-x",
            "1.2",
            "1.2.0-alpha",
            "1.2.0",
            "1.2.4-SNAPSHOT",
            "1.2.4",
            "1.5.0",
            "1.11.3",
            "2.0.0-alpha",
            "2.0.0-alpha.1",
            "2.0.0-alpha.beta",
            "2.0.0",
            "10.0.0",
            "",
            "bad",
        ];
        for w in ordered.windows(2) {
            assert!(
                version_key(w[0]) < version_key(w[1]),
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
        assert!(version_key("1.0.0-alpha.2") < version_key("1.0.0-alpha.10"));
        assert!(version_key("1.0.0-SNAPSHOT") < version_key("1.0.0-alpha"));
        assert!(version_key("1.2.3") < version_key("1.2.3+b"));
        assert_ne!(version_key("1.2.3"), version_key("1.2.3+b"));
        // Leading zeros and empty parts are not versions.
        for bad in ["01.2.3", "1..2", "1.2.3-", "1.2.3+", "v1.2", "1.2.3-01"] {
            assert_eq!(version_key(bad), bad, "{bad:?} is invalid, kept as is");
        }
    }

    #[test]
    fn addresses_compare_as_addresses() {
        assert_eq!(ip_key("1.2.3.4"), ip_key("::ffff:1.2.3.4"));
        assert_eq!(ip_key("2001:db8::1"), ip_key("2001:0db8:0:0::0001"));
        assert!(ip_key("::1") < ip_key("0.0.0.1"));
        assert!(ip_key("9.255.255.255") < ip_key("10.0.0.0"));
        assert!(ip_key("255.255.255.255") < ip_key("2001:db8::"));
        assert_eq!(ip_key("bad"), None);
    }

    #[test]
    fn dates_read_through_their_formats() {
        let f = DateFormats::parse("yyyy/MM/dd HH:mm:ss||epoch_millis").unwrap();
        assert_eq!(
            f.read(&Value::str("1970/01/02 00:00:01")),
            Some((86_401_000, 1000))
        );
        assert_eq!(f.read(&Value::str("86401000")), Some((86_401_000, 1)));
        assert_eq!(f.read(&Value::Int(5)), Some((5, 1)));
        assert_eq!(f.read(&Value::str("1970-01-02T00:00:01Z")), None);
        let iso = DateFormats::parse("strict_date_optional_time||epoch_millis").unwrap();
        assert_eq!(
            iso.read(&Value::str("1970-01-02")),
            Some((86_400_000, 86_400_000))
        );
        assert_eq!(
            iso.read(&Value::str("1970-01-01T00:00:01.5Z")),
            Some((1_500, 1))
        );
        let d = DateFormats::parse("dd.MM.yyyy").unwrap();
        assert_eq!(
            d.read(&Value::str("02.01.1970")),
            Some((86_400_000, 86_400_000))
        );
        let z = DateFormats::parse("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(
            z.read(&Value::str("1970-01-01T01:00:00.250+01:00")),
            Some((250, 1))
        );
        assert!(DateFormats::parse("week_date").is_err());
        assert!(DateFormats::parse("yyyy-QQ").is_err());
    }
}

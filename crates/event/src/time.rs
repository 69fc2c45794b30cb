//! Timestamps: the sort key of events and the clock of sequences.

use crate::Json;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// How a timestamp field is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampFormat {
    /// What `_eql/search` accepts: an ISO-8601 string, epoch milliseconds as a number, or a numeric
    /// string of epoch milliseconds.
    #[default]
    Auto,
    /// Windows FILETIME (100 ns ticks since 1601), as in endgame's legacy test data.
    FileTime,
}

const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// Parses a timestamp into nanoseconds since the Unix epoch. `None` when absent or unreadable.
pub fn parse_timestamp(value: &Json, format: TimestampFormat) -> Option<i64> {
    match (format, value) {
        (TimestampFormat::FileTime, Json::Number(n)) => {
            let ticks = n.as_i64()?;
            ticks.checked_sub(FILETIME_UNIX_EPOCH)?.checked_mul(100)
        }
        (TimestampFormat::FileTime, _) => None,
        (TimestampFormat::Auto, Json::Number(n)) => match n.as_i64() {
            Some(ms) => ms.checked_mul(1_000_000),
            None => millis_to_nanos(n.as_f64()?),
        },
        (TimestampFormat::Auto, Json::String(s)) => parse_text(s.trim()),
        _ => None,
    }
}

fn millis_to_nanos(ms: f64) -> Option<i64> {
    let ns = ms * 1_000_000.0;
    if ns.is_finite() && ns.abs() < i64::MAX as f64 {
        Some(ns as i64)
    } else {
        None
    }
}

fn parse_text(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        if let Ok(ms) = s.parse::<i64>() {
            return ms.checked_mul(1_000_000);
        }
        if let Ok(ms) = s.parse::<f64>() {
            return millis_to_nanos(ms);
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return dt.timestamp_nanos_opt();
    }
    // ISO-8601 without an offset is UTC in Elasticsearch; also accept a space separator and a
    // bare date.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return dt.and_utc().timestamp_nanos_opt();
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return dt.timestamp_nanos_opt();
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt();
    }
    None
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), the way alerts print times.
pub fn format_iso_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_shapes_eql_search_accepts() {
        let iso = parse_timestamp(&json!("2024-05-01T10:00:00.250Z"), TimestampFormat::Auto);
        let ms = parse_timestamp(&json!(1714557600250i64), TimestampFormat::Auto);
        let text = parse_timestamp(&json!("1714557600250"), TimestampFormat::Auto);
        let offset = parse_timestamp(
            &json!("2024-05-01T12:00:00.250+02:00"),
            TimestampFormat::Auto,
        );
        let naive = parse_timestamp(&json!("2024-05-01T10:00:00.250"), TimestampFormat::Auto);
        assert_eq!(iso, Some(1_714_557_600_250_000_000));
        assert_eq!(iso, ms);
        assert_eq!(iso, text);
        assert_eq!(iso, offset);
        assert_eq!(iso, naive);
        assert_eq!(
            parse_timestamp(&json!("yesterday"), TimestampFormat::Auto),
            None
        );
        assert_eq!(parse_timestamp(&json!(null), TimestampFormat::Auto), None);
    }

    #[test]
    fn filetime_counts_from_1601() {
        assert_eq!(
            parse_timestamp(&json!(116444736000000000i64), TimestampFormat::FileTime),
            Some(0)
        );
        assert_eq!(
            parse_timestamp(&json!(116444736000000010i64), TimestampFormat::FileTime),
            Some(1000)
        );
    }
}

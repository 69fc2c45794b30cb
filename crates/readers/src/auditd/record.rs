//! One line of an audit log: `[node=H ]type=T msg=audit(SEC.MSEC:SERIAL): k=v ...[\x1dK=V ...]`.
//!
//! Kernel records carry `k=v` pairs; user-space records carry theirs inside `msg='...'`; the
//! ENRICHED format appends, after a `\x1d` (group separator), the translations auditd made
//! (`ARCH=x86_64 SYSCALL=openat AUID="root"`). Values are quoted (`"..."`, never holding a quote),
//! bare (`pid=42`, `tty=(none)`), or hex-encoded when the kernel found them unsafe to print (spaces,
//! quotes, control or non-ASCII bytes): which fields may be hex-encoded is known per record type.

/// A parsed record, borrowing the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub node: Option<&'a str>,
    pub rtype: &'a str,
    /// `SEC.MSEC` as written, and its value in milliseconds since the epoch.
    pub stamp: &'a str,
    pub time_ms: i64,
    pub serial: u64,
    /// The fields in order: (key, value as written, without quotes; quoted?).
    pub fields: Vec<Field<'a>>,
    /// The ENRICHED translations, same shape.
    pub enriched: Vec<Field<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub quoted: bool,
}

impl<'a> Record<'a> {
    /// The raw value of `key` (first occurrence).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.field(key).map(|f| f.value)
    }

    pub fn field(&self, key: &str) -> Option<Field<'a>> {
        self.fields.iter().find(|f| key_eq(f.key, key)).copied()
    }

    /// The ENRICHED translation of `key` (auditd writes them uppercase: `UID="root"`).
    pub fn enriched(&self, key: &str) -> Option<&'a str> {
        self.enriched
            .iter()
            .find(|f| key_eq(f.key, key))
            .map(|f| f.value)
    }

    /// A field that may be hex-encoded, decoded (lossily to UTF-8 for display and matching).
    pub fn text(&self, key: &str) -> Option<String> {
        self.field(key).map(decode_field)
    }

    pub fn num(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }
}

/// Field names are short: compared inline rather than by a call to `memcmp` per candidate.
#[inline]
fn key_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// A quoted value as is; a bare value that is all hex digits (even length) decoded; `(null)` and
/// other bare words as written.
pub fn decode_field(f: Field<'_>) -> String {
    if f.quoted {
        return f.value.to_string();
    }
    match decode_hex(f.value) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => f.value.to_string(),
    }
}

/// Hex text to bytes; `None` unless it is non-empty, of even length and all hex digits.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// The part of a record line before its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header<'a> {
    pub node: Option<&'a str>,
    pub rtype: &'a str,
    pub stamp: &'a str,
    pub time_ms: i64,
    pub serial: u64,
    /// `SEC.MSEC:SERIAL` as written: with the node, what groups records into events.
    pub id: &'a str,
    /// The rest of the line: the fields (and, after `\x1d`, the ENRICHED ones).
    pub body: &'a str,
}

/// Reads and checks a record's header (everything that can be wrong with a record line is
/// there: fields are read leniently), or says why the line is not a record.
pub fn parse_header(line: &str) -> Result<Header<'_>, String> {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    let mut node = None;
    if let Some(r) = rest.strip_prefix("node=") {
        let end = find_near(r, b' ').ok_or("`node=` without a record after it")?;
        node = Some(&r[..end]);
        rest = &r[end + 1..];
    }
    let r = rest
        .strip_prefix("type=")
        .ok_or("not an audit record (no `type=`)")?;
    let end = find_near(r, b' ').ok_or("record without `msg=audit(...)`")?;
    let rtype = &r[..end];
    let r = r[end + 1..]
        .strip_prefix("msg=audit(")
        .ok_or("record without `msg=audit(...)`")?;
    // auditd's own DAEMON_* records omit the colon: `msg=audit(1490239800.477:34) config changed`.
    let close = find_near(r, b')').ok_or("unterminated `msg=audit(`")?;
    let stamp_serial = &r[..close];
    let colon = find_near(stamp_serial, b':').ok_or("`msg=audit(...)` without a serial")?;
    let (stamp, serial) = (&stamp_serial[..colon], &stamp_serial[colon + 1..]);
    let serial: u64 = serial
        .parse()
        .map_err(|_| format!("bad serial `{serial}`"))?;
    let time_ms = parse_stamp(stamp).ok_or_else(|| format!("bad timestamp `{stamp}`"))?;
    let after = &r[close + 1..];
    let body = after.strip_prefix(':').unwrap_or(after).trim_start();
    Ok(Header {
        node,
        rtype,
        stamp,
        time_ms,
        serial,
        id: stamp_serial,
        body,
    })
}

/// Why a line is not a record.
pub fn parse_record(line: &str) -> Result<Record<'_>, String> {
    let h = parse_header(line)?;
    Ok(Record::from_body(
        h.node, h.rtype, h.stamp, h.time_ms, h.serial, h.body,
    ))
}

impl<'a> Record<'a> {
    /// The record whose header said `node`, `rtype`, `stamp`, `time_ms` and `serial`, its fields
    /// split from `body` (what follows the header).
    pub fn from_body(
        node: Option<&'a str>,
        rtype: &'a str,
        stamp: &'a str,
        time_ms: i64,
        serial: u64,
        body: &'a str,
    ) -> Record<'a> {
        let (body, enriched) = match find_byte(body, 0x1d) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let mut fields = Vec::with_capacity(24);
        split_fields(body, &mut fields);
        let mut enriched_fields = Vec::new();
        if let Some(e) = enriched {
            split_fields(e, &mut enriched_fields);
        }
        Record {
            node,
            rtype,
            stamp,
            time_ms,
            serial,
            fields,
            enriched: enriched_fields,
        }
    }
}

fn parse_stamp(s: &str) -> Option<i64> {
    let (sec, frac) = match find_near(s, b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, "0"),
    };
    let sec: i64 = sec.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Milliseconds from the first three digits of the fraction (auditd writes exactly three);
    // fewer digits are padded with zeros.
    let ms = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    sec.checked_mul(1000)?.checked_add(ms)
}

/// Splits `k=v k="v v" msg='k=v ...'` into fields; the inside of `msg='...'` is split too (user-space
/// records put their fields there). Text that is not `k=v` is skipped.
/// The first `b` in `s`, by memchr (`str::find(char)` checks every candidate with a memcmp).
/// Splitting at an ASCII byte always falls on a char boundary.
/// The first `b` in `s` when it is expected within a few dozen bytes (header parts, quoted
/// values): a byte walk, which beats a memchr call at such distances (measured: memchr calls were a
/// tenth of the audit scan).
#[inline]
fn find_near(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

fn find_byte(s: &str, b: u8) -> Option<usize> {
    memchr::memchr(b, s.as_bytes())
}

fn split_fields<'a>(mut s: &'a str, out: &mut Vec<Field<'a>>) {
    loop {
        let blanks = s.bytes().take_while(|&b| b == b' ').count();
        s = &s[blanks..];
        if s.is_empty() {
            return;
        }
        // The key: a short run up to `=`, walked byte by byte (a memchr call per key costs more
        // than the walk). A word without `=` (a space comes first) is not a field: skip it.
        let b = s.as_bytes();
        let mut eq = 0;
        while eq < b.len() && b[eq] != b'=' && b[eq] != b' ' {
            eq += 1;
        }
        if eq == b.len() {
            return;
        }
        if b[eq] == b' ' {
            s = &s[eq..];
            continue;
        }
        let key = &s[..eq];
        let after = &s[eq + 1..];
        let (value, quoted, rest) = match after.as_bytes().first() {
            Some(b'"') => match find_near(&after[1..], b'"') {
                Some(end) => (&after[1..1 + end], true, &after[end + 2..]),
                // Cut off: take the rest as the value.
                None => (&after[1..], true, ""),
            },
            Some(b'\'') => {
                let (inner, rest) = match find_byte(&after[1..], b'\'') {
                    Some(end) => (&after[1..1 + end], &after[end + 2..]),
                    None => (&after[1..], ""),
                };
                if key == "msg" {
                    split_fields(inner, out);
                } else {
                    out.push(Field {
                        key,
                        value: inner,
                        quoted: true,
                    });
                }
                s = rest;
                continue;
            }
            _ => {
                // Bare values are short (numbers, hex, `(none)`): a byte walk beats a memchr call.
                let end = after.bytes().position(|b| b == b' ').unwrap_or(after.len());
                (&after[..end], false, &after[end..])
            }
        };
        if !key.is_empty() {
            out.push(Field { key, value, quoted });
        }
        s = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_record_with_enrichment() {
        let line = "type=SYSCALL msg=audit(1795806430.136:6393): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c items=2 ppid=22829 pid=22865 tty=(none) comm=\"bash\" exe=\"/usr/bin/bash\" key=\"systemd\"\x1dARCH=x86_64 SYSCALL=openat AUID=\"unset\" UID=\"root\"";
        let r = parse_record(line).unwrap();
        assert_eq!(
            (r.node, r.rtype, r.serial, r.time_ms),
            (None, "SYSCALL", 6393, 1795806430136)
        );
        assert_eq!(r.get("syscall"), Some("257"));
        assert_eq!(r.get("tty"), Some("(none)"));
        assert_eq!(r.text("exe").as_deref(), Some("/usr/bin/bash"));
        assert_eq!(r.enriched("SYSCALL"), Some("openat"));
        assert_eq!(r.enriched("UID"), Some("root"));
    }

    #[test]
    fn node_prefix_hex_values_and_user_space_messages() {
        let r = parse_record("node=work type=EXECVE msg=audit(1615114232.375:15558): argc=2 a0=\"echo\" a1=68656C6C6F20776F726C64").unwrap();
        assert_eq!(r.node, Some("work"));
        assert_eq!(r.text("a1").as_deref(), Some("hello world"));
        let r = parse_record("type=USER_START msg=audit(1.5:7): pid=1 uid=0 auid=0 ses=3 msg='op=PAM:session_open acct=\"root\" exe=\"/usr/bin/sudo\" hostname=? res=success'\x1dUID=\"root\"").unwrap();
        assert_eq!(r.time_ms, 1500);
        assert_eq!(r.get("op"), Some("PAM:session_open"));
        assert_eq!(r.get("acct"), Some("root"));
        assert_eq!(r.get("res"), Some("success"));
    }

    #[test]
    fn broken_lines_say_why() {
        for (line, why) in [
            ("hello", "no `type=`"),
            ("type=SYSCALL msg=audit(1.2:x): a=1", "bad serial"),
            ("type=SYSCALL msg=audit(abc:1): a=1", "bad timestamp"),
            ("type=SYSCALL msg=audit(1.2:3 a=1", "unterminated"),
            ("type=SYSCALL msg=audit(1.2): a=1", "without a serial"),
        ] {
            let e = parse_record(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        // Bogus hex stays as written; cut-off quotes keep what there is.
        let r = parse_record("type=EXECVE msg=audit(1.2:3): argc=2 a0=ZZ12 a1=\"cut").unwrap();
        assert_eq!(r.text("a0").as_deref(), Some("ZZ12"));
        assert_eq!(r.text("a1").as_deref(), Some("cut"));
    }
}

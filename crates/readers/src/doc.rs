//! An ECS document built as a flat list of dotted paths and written as nested JSON in one pass.
//!
//! Used by every converted format. Converting audit logs is sequential (records group into events, processes into a table), so
//! its cost per event bounds the whole scan. Building a `serde_json::Value` tree (a map and a
//! string per member) and serialising it cost three quarters of the conversion; collecting
//! `(path, value)` pairs, sorting them and writing the JSON directly costs a fraction. Written by
//! hand for that reason: no crate writes nested JSON from dotted paths.

use std::borrow::Cow;

/// A value of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    List(Vec<String>),
    /// JSON text written as is (already valid JSON).
    Raw(String),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Str(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Str(s)
    }
}
impl From<&String> for Val {
    fn from(s: &String) -> Val {
        Val::Str(s.clone())
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}
impl From<u64> for Val {
    fn from(n: u64) -> Val {
        Val::Int(n as i64)
    }
}
impl From<usize> for Val {
    fn from(n: usize) -> Val {
        Val::Int(n as i64)
    }
}
impl From<u16> for Val {
    fn from(n: u16) -> Val {
        Val::Int(n.into())
    }
}
impl<const N: usize> From<[&str; N]> for Val {
    fn from(items: [&str; N]) -> Val {
        Val::List(items.iter().map(|s| s.to_string()).collect())
    }
}
impl From<&[&str]> for Val {
    fn from(items: &[&str]) -> Val {
        Val::List(items.iter().map(|s| s.to_string()).collect())
    }
}
impl From<&[String]> for Val {
    fn from(items: &[String]) -> Val {
        Val::List(items.to_vec())
    }
}
impl From<Vec<String>> for Val {
    fn from(items: Vec<String>) -> Val {
        Val::List(items)
    }
}
impl From<Vec<&str>> for Val {
    fn from(items: Vec<&str>) -> Val {
        Val::List(items.iter().map(|s| s.to_string()).collect())
    }
}

/// Members by dotted path; a path set twice keeps its last value.
#[derive(Debug, Default)]
pub struct Doc {
    fields: Vec<(Cow<'static, str>, Val)>,
}

impl Doc {
    pub fn new() -> Doc {
        Doc {
            fields: Vec::with_capacity(64),
        }
    }

    pub fn set(&mut self, path: impl Into<Cow<'static, str>>, value: impl Into<Val>) {
        self.fields.push((path.into(), value.into()));
    }

    /// The last value set at `path`.
    pub fn get(&self, path: &str) -> Option<&Val> {
        self.fields
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
    }

    /// Writes the document as one line of JSON (no newline), members nested by path segments and
    /// in byte order.
    pub fn write_json(mut self, out: &mut Vec<u8>) {
        // Stable: of equal paths the last set stays last, and wins below.
        self.fields
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let n = self.fields.len();
        let mut open: Vec<&str> = Vec::new();
        // Per open level: has a member been written (a comma is due)?
        let mut written: Vec<bool> = vec![false];
        let mut segs: Vec<&str> = Vec::with_capacity(8);
        out.push(b'{');
        for i in 0..n {
            if i + 1 < n && same(&self.fields[i + 1].0, &self.fields[i].0) {
                continue;
            }
            let (path, value) = &self.fields[i];
            segs.clear();
            let mut start = 0;
            for dot in memchr::memchr_iter(b'.', path.as_bytes()) {
                segs.push(&path[start..dot]);
                start = dot + 1;
            }
            segs.push(&path[start..]);
            let (parents, leaf) = segs.split_at(segs.len() - 1);
            let common = open
                .iter()
                .zip(parents)
                .take_while(|(a, b)| same(a, b))
                .count();
            while open.len() > common {
                open.pop();
                written.pop();
                out.push(b'}');
            }
            for seg in &parents[common..] {
                let w = written.last_mut().expect("root level");
                if *w {
                    out.push(b',');
                }
                *w = true;
                write_str(out, seg);
                out.extend_from_slice(b":{");
                open.push(seg);
                written.push(false);
            }
            let w = written.last_mut().expect("root level");
            if *w {
                out.push(b',');
            }
            *w = true;
            write_str(out, leaf[0]);
            out.push(b':');
            write_val(out, value);
        }
        for _ in 0..open.len() {
            out.push(b'}');
        }
        out.push(b'}');
    }

    /// The document as a JSON value (for tests and callers that want a tree).
    pub fn into_json(self) -> serde_json::Value {
        let mut out = Vec::new();
        self.write_json(&mut out);
        serde_json::from_slice(&out).expect("the writer writes valid JSON")
    }
}

/// Short keys and segments: compared inline rather than by a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

fn write_val(out: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Str(s) => write_str(out, s),
        Val::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Val::List(items) => {
            out.push(b'[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, s);
            }
            out.push(b']');
        }
        Val::Raw(r) => out.extend_from_slice(r.as_bytes()),
    }
}

/// A JSON string: `"` and `\` escaped, control characters as `\u00XX` (or their short forms).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    // Most strings need no escape: one branch-free pass (it vectorises) decides.
    let plain = !b.iter().fold(false, |bad, &c| {
        bad | (c < 0x20) | (c == b'"') | (c == b'\\') | (c == 0x7f)
    });
    if plain {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_members_from_dotted_paths() {
        let mut d = Doc::new();
        d.set("process.pid", 5i64);
        d.set("event.type", ["start"]);
        d.set("process.parent.name", "ba\"sh\u{1}\n");
        d.set("@timestamp", "t");
        d.set("process.args", vec!["a".to_string()]);
        d.set("process.pid", 6i64);
        d.set("auditd.records", Val::Raw("[{\"type\":\"X\"}]".into()));
        assert_eq!(
            d.into_json(),
            json!({
                "@timestamp": "t",
                "auditd": {"records": [{"type": "X"}]},
                "event": {"type": ["start"]},
                "process": {"args": ["a"], "parent": {"name": "ba\"sh\u{1}\n"}, "pid": 6}
            })
        );
    }
}

//! An ECS document built as a flat list of dotted paths and written as nested JSON in one pass.
//!
//! Used by every converted format. Converting audit logs is sequential (records group into events, processes into a table), so
//! its cost per event bounds the whole scan. Building a `serde_json::Value` tree (a map and a
//! string per member) and serialising it cost three quarters of the conversion; collecting
//! `(path, value)` pairs, sorting them and writing the JSON directly costs a fraction. Written by
//! hand for that reason: no crate writes nested JSON from dotted paths.

use std::borrow::Cow;
use unithunt_event::neutral::write_json_str;

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

/// Which dotted paths a document keeps (see [`Doc::reading`]).
pub type PathFilter = std::sync::Arc<PathSet>;

/// A test on dotted paths, remembered per path for the `'static` paths converters write (all but
/// a few): asked about forty times per event, the test itself would cost what the rest of making a
/// projected event costs.
pub struct PathSet {
    /// Tells remembered answers of different sets apart (an address could be reused).
    id: u64,
    test: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// Answers remembered on this thread, by set and by the address and length of a `'static` path:
/// such a path's text never changes nor moves, so its address names it.
type StaticAnswers = std::collections::HashMap<(u64, usize, usize), bool, AddressHash>;

/// The remembered answers are keyed by addresses: mixing them once is hash enough.
#[derive(Default, Clone, Copy)]
struct AddressHash;

impl std::hash::BuildHasher for AddressHash {
    type Hasher = AddressHasher;
    fn build_hasher(&self) -> AddressHasher {
        AddressHasher(0)
    }
}

struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

thread_local! {
    static ANSWERS: std::cell::RefCell<StaticAnswers> = std::cell::RefCell::new(StaticAnswers::default());
}

impl PathSet {
    pub fn new(test: impl Fn(&str) -> bool + Send + Sync + 'static) -> PathFilter {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        std::sync::Arc::new(PathSet {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            test: Box::new(test),
        })
    }

    pub fn contains(&self, path: &str) -> bool {
        (self.test)(path)
    }

    /// [`PathSet::contains`], remembered.
    pub fn contains_static(&self, path: &'static str) -> bool {
        let key = (self.id, path.as_ptr() as usize, path.len());
        ANSWERS.with_borrow_mut(|answers| {
            if let Some(&yes) = answers.get(&key) {
                return yes;
            }
            // Bounded: converters write a few hundred distinct paths.
            if answers.len() >= 4096 {
                answers.clear();
            }
            let yes = (self.test)(path);
            answers.insert(key, yes);
            yes
        })
    }
}

/// Members by dotted path; a path set twice keeps its last value.
#[derive(Default)]
pub struct Doc {
    fields: Vec<(Cow<'static, str>, Val)>,
    /// Only paths it accepts are kept (the rest are dropped before their value is made).
    filter: Option<PathFilter>,
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doc")
            .field("fields", &self.fields)
            .field("filtered", &self.filter.is_some())
            .finish()
    }
}

impl Doc {
    pub fn new() -> Doc {
        Doc {
            fields: Vec::with_capacity(64),
            filter: None,
        }
    }

    /// A document keeping only the paths `filter` accepts: what a scan's rules read, to decide
    /// on an event before making all of it.
    pub fn reading(filter: PathFilter) -> Doc {
        Doc {
            fields: Vec::with_capacity(16),
            filter: Some(filter),
        }
    }

    /// Whether a member set at `path` would be kept: callers skip making values nobody keeps.
    #[inline]
    pub fn wants(&self, path: &'static str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.contains_static(path))
    }

    pub fn set(&mut self, path: impl Into<Cow<'static, str>>, value: impl Into<Val>) {
        let path = path.into();
        if let Some(f) = &self.filter {
            let kept = match path {
                Cow::Borrowed(p) => f.contains_static(p),
                Cow::Owned(ref p) => f.contains(p),
            };
            if !kept {
                return;
            }
        }
        self.fields.push((path, value.into()));
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
                write_json_str(out, seg);
                out.extend_from_slice(b":{");
                open.push(seg);
                written.push(false);
            }
            let w = written.last_mut().expect("root level");
            if *w {
                out.push(b',');
            }
            *w = true;
            write_json_str(out, leaf[0]);
            out.push(b':');
            write_val(out, value);
        }
        for _ in 0..open.len() {
            out.push(b'}');
        }
        out.push(b'}');
    }

    /// The document as a JSON tree, its values moved (a projected document, once decided on, is
    /// not needed again).
    pub fn into_json_tree(self) -> serde_json::Value {
        let mut tree = serde_json::Map::new();
        for (path, value) in self.fields {
            insert_at(&mut tree, &path, value);
        }
        serde_json::Value::Object(tree)
    }

    /// The document as a JSON value (for tests and callers that want a tree).
    pub fn into_json(self) -> serde_json::Value {
        let mut out = Vec::new();
        self.write_json(&mut out);
        serde_json::from_slice(&out).expect("the writer writes valid JSON")
    }
}

/// Sets `value` at the dotted `path` of `tree`, making the objects on the way (a member that is
/// not an object where one is needed is replaced).
fn insert_at(tree: &mut serde_json::Map<String, serde_json::Value>, path: &str, value: Val) {
    use serde_json::{Map, Value as Json};
    let mut node = tree;
    let mut rest = path;
    while let Some(dot) = memchr::memchr(b'.', rest.as_bytes()) {
        let slot = node
            .entry(&rest[..dot])
            .or_insert_with(|| Json::Object(Map::new()));
        if !slot.is_object() {
            *slot = Json::Object(Map::new());
        }
        node = slot.as_object_mut().expect("made an object above");
        rest = &rest[dot + 1..];
    }
    let v = match value {
        Val::Str(s) => Json::String(s),
        Val::Int(n) => Json::from(n),
        Val::List(items) => items.into_iter().map(Json::String).collect(),
        Val::Raw(r) => serde_json::from_str(&r).unwrap_or(Json::Null),
    };
    node.insert(rest.to_string(), v);
}

/// Short keys and segments: compared inline rather than by a call to `memcmp`.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

fn write_val(out: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Str(s) => write_json_str(out, s),
        Val::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Val::List(items) => {
            out.push(b'[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, s);
            }
            out.push(b']');
        }
        Val::Raw(r) => out.extend_from_slice(r.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reading_document_keeps_what_its_set_accepts_and_sets_do_not_share_answers() {
        let events = PathSet::new(|p| p.starts_with("event."));
        let files = PathSet::new(|p| p.starts_with("file."));
        for _ in 0..2 {
            // Twice: the second time from remembered answers, which must stay per set.
            let mut d = Doc::reading(events.clone());
            d.set("event.type", ["creation"]);
            d.set("file.path", "/etc/x");
            d.set(format!("event.{}", "action"), "rename");
            assert!(d.wants("event.kind") && !d.wants("file.name"));
            assert_eq!(
                d.into_json_tree(),
                json!({"event": {"type": ["creation"], "action": "rename"}})
            );
            let mut f = Doc::reading(files.clone());
            f.set("event.type", ["creation"]);
            f.set("file.path", "/etc/x");
            assert!(!f.wants("event.kind") && f.wants("file.name"));
            assert_eq!(f.into_json_tree(), json!({"file": {"path": "/etc/x"}}));
        }
    }

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

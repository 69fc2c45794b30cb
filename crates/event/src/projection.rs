//! Projected parsing: build from a JSON line only the members that rules read.
//!
//! Most lines the literal screen lets through still match no rule; parsing such a line whole (every
//! string and map allocated) costs several times more than stepping over the members no rule looks
//! at. A [`Projection`] is a tree of the field paths the rules reference; [`parse_projected`] keeps
//! the members on those paths (whole values at their ends, parsed by serde_json) and steps over the
//! rest. Dotted keys are matched segment by segment, so `{"process.parent": {"name": ..}}` and
//! `{"process": {"parent.name": ..}}` both keep `process.parent.name`, as Elasticsearch's flattening
//! finds it. Arrays pass the projection to each element. The result is an ordinary document: lookups
//! and the evaluator work on it unchanged.
//!
//! Written by hand because serde_json's `IgnoredAny` still decodes every key and string (measured:
//! no faster than a whole parse on 1.2 KB Elastic Defend events), and no JSON crate offers a
//! projection over dotted keys on stable Rust. Skipped members are checked for structure only
//! (strings closed, brackets balanced), like lines the literal screen rules out: a line broken
//! inside a member no rule reads is not reported, and no rule could have matched it. Anything the
//! stepper does not expect (a key with an escape, a non-ASCII line, a structure error) returns
//! `None`, and the caller parses the line whole, which reports errors precisely.

use crate::path::{FieldPath, Segment};
use crate::Json;

/// The field paths to keep, as a tree of key segments.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    /// Few per node: a linear scan over byte keys beats hashing them.
    children: Vec<(Box<[u8]>, Projection)>,
    /// A path ends here: keep the whole value.
    whole: bool,
}

impl Projection {
    /// The projection keeping `paths`; `None` when a path has an array index (kept simple: such
    /// rules get whole documents).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a FieldPath>) -> Option<Projection> {
        let mut root = Projection::default();
        for path in paths {
            let mut node = &mut root;
            for seg in path.segments() {
                match seg {
                    // A key may itself contain dots (a backtick-quoted field); split it so it is
                    // matched against the same segments as a nested spelling.
                    Segment::Key(k) => {
                        for part in k.split('.') {
                            node = node.child_mut(part.as_bytes());
                        }
                    }
                    Segment::Index(_) => return None,
                }
            }
            node.whole = true;
        }
        Some(root)
    }

    fn child_mut(&mut self, key: &[u8]) -> &mut Projection {
        let i = match self.children.iter().position(|(k, _)| &**k == key) {
            Some(i) => i,
            None => {
                self.children.push((key.into(), Projection::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[i].1
    }

    /// Keeps a top-level member whole (e.g. `_source` or `hits`, to recognise wrapped documents).
    pub fn keep_whole(&mut self, key: &str) {
        self.child_mut(key.as_bytes()).whole = true;
    }

    /// Whether a member at the dotted `path` may be read by a rule: it lies on a kept path (as
    /// the path itself, an object on the way to it, or inside a value kept whole). Used to project
    /// documents built in memory (converted events) the way [`parse_projected`] projects lines.
    pub fn keeps(&self, path: &str) -> bool {
        self.follow(path.as_bytes()).is_some()
    }

    /// The node reached by following the dotted `key` from here, if any.
    fn follow(&self, key: &[u8]) -> Option<&Projection> {
        let mut node = self;
        for part in key.split(|&b| b == b'.') {
            if node.whole {
                return Some(node);
            }
            node = &node.children.iter().find(|(k, _)| &**k == part)?.1;
        }
        Some(node)
    }
}

/// Parses one JSON object keeping only what `projection` names (see the module comment); `None`
/// when the line must be parsed whole instead.
pub fn parse_projected(raw: &[u8], projection: &Projection) -> Option<Json> {
    if !raw.is_ascii() {
        return None;
    }
    let mut c = Cursor {
        b: raw,
        i: 0,
        depth: 0,
    };
    c.ws();
    if c.peek()? != b'{' {
        return None;
    }
    let doc = c.object(projection)?;
    c.ws();
    (c.i == raw.len()).then_some(doc)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    /// Nesting of the value being read; past serde_json's limit the whole parse takes over (and
    /// reports it), and recursion here stays bounded.
    depth: usize,
}

/// serde_json's nesting limit.
const MAX_DEPTH: usize = 128;

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// At `{`: the kept members of the object.
    fn object(&mut self, node: &Projection) -> Option<Json> {
        self.depth += 1;
        let out = self.members(node);
        self.depth -= 1;
        out
    }

    fn members(&mut self, node: &Projection) -> Option<Json> {
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let mut out = serde_json::Map::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(Json::Object(out));
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key_start = self.i + 1;
            self.skip_string()?;
            let key = &self.b[key_start..self.i - 1];
            if key.contains(&b'\\') {
                return None;
            }
            self.expect(b':')?;
            self.ws();
            match node.follow(key) {
                Some(child) => {
                    let value = self.value(child)?;
                    // Keys are ASCII here (the line is).
                    out.insert(String::from_utf8(key.to_vec()).ok()?, value);
                }
                None => self.skip_value()?,
            }
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(Json::Object(out));
                }
                _ => return None,
            }
        }
    }

    /// A value on a kept path: whole at a path's end, else projected further.
    fn value(&mut self, node: &Projection) -> Option<Json> {
        match self.peek()? {
            b'{' if !node.whole => self.object(node),
            b'[' if !node.whole => {
                self.depth += 1;
                let out = self.elements(node);
                self.depth -= 1;
                out
            }
            b'"' => {
                let start = self.i;
                self.skip_string()?;
                let body = &self.b[start + 1..self.i - 1];
                if body.contains(&b'\\') || body.iter().any(|&b| b < 0x20) {
                    // Escapes to decode, or control bytes serde_json rejects: its parse decides.
                    serde_json::from_slice(&self.b[start..self.i]).ok()
                } else {
                    // The common case, without a parser's setup: the line is ASCII, so the bytes
                    // are the string.
                    Some(Json::String(String::from_utf8(body.to_vec()).ok()?))
                }
            }
            _ => {
                let start = self.i;
                self.skip_value()?;
                serde_json::from_slice(&self.b[start..self.i]).ok()
            }
        }
    }

    fn elements(&mut self, node: &Projection) -> Option<Json> {
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(node)?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(Json::Array(items));
                }
                _ => return None,
            }
        }
    }

    /// At `"`: steps past the closing quote.
    fn skip_string(&mut self) -> Option<()> {
        let mut at = self.i + 1;
        loop {
            let j = at + memchr::memchr2(b'"', b'\\', &self.b[at..])?;
            if self.b[j] == b'\\' {
                at = j + 2;
                continue;
            }
            self.i = j + 1;
            return Some(());
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                // Brackets balanced, strings stepped over whole (they hold most of the bytes).
                let mut stack: Vec<u8> = Vec::new();
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        open @ (b'{' | b'[') => {
                            if self.depth + stack.len() >= MAX_DEPTH {
                                return None;
                            }
                            stack.push(if open == b'{' { b'}' } else { b']' });
                        }
                        close @ (b'}' | b']') => {
                            if stack.pop()? != close {
                                return None;
                            }
                            if stack.is_empty() {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // A number or a literal: up to the next delimiter; checked by serde_json if kept.
                let start = self.i;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup_all;

    fn paths(list: &[&str]) -> Vec<FieldPath> {
        list.iter().map(|p| FieldPath::parse(p)).collect()
    }

    #[test]
    fn keeps_exactly_what_lookups_need_in_any_spelling() {
        let wanted = paths(&["process.parent.name", "event.category", "file.path"]);
        let proj = Projection::new(&wanted).unwrap();
        let lines = [
            r#"{"process":{"parent":{"name":"bash","pid":4},"pid":5},"event":{"category":["file"],"kind":"event"},"host":{"name":"h"}}"#,
            r#"{"process.parent":{"name":"bash"},"event.category":"file","file":{"path":"/etc/x","size":3}}"#,
            r#"{"process":{"parent.name":"bash"},"file.path":["/a","/b"],"noise":[{"x":1},"y\u0041"]}"#,
            r#"{"process":[{"parent":{"name":"a"}},{"parent":{"name":"b"}}],"event":"scalar"}"#,
        ];
        for line in lines {
            let full: Json = serde_json::from_str(line).unwrap();
            let projected = parse_projected(line.as_bytes(), &proj).unwrap();
            let projected_keys: Vec<&String> = projected.as_object().unwrap().keys().collect();
            assert!(projected_keys.len() <= 3, "{projected_keys:?}");
            for p in &wanted {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                lookup_all(&full, p, &mut a);
                lookup_all(&projected, p, &mut b);
                assert_eq!(a, b, "{line} {}", p.as_str());
            }
            assert!(projected.get("host").is_none() && projected.get("noise").is_none());
        }
    }

    #[test]
    fn structure_errors_and_surprises_fall_back_to_a_whole_parse() {
        let proj = Projection::new(&paths(&["a", "b.c"])).unwrap();
        for bad in [
            &br#"{"a":1,"x":[1,2}"#[..],
            br#"{"a":1,"x":"y"} trailing"#,
            br#"{"a":tru}"#,
            br#"{"a":1,"x":"unterminated}"#,
            br#"{"a\u0041":1}"#,
            b"{\"a\":1,\"x\":\"\xff\"}",
            br#"[{"a":1}]"#,
            br#"{"a" 1}"#,
            br#"{"b":{"c":[1,}}"#,
        ] {
            assert!(parse_projected(bad, &proj).is_none(), "{bad:?}");
        }
        // Nesting past serde_json's limit, skipped or kept, is left to the whole parse (which
        // reports it), without deep recursion here.
        for key in ["x", "a", "b"] {
            let deep = format!(
                r#"{{"{key}":{}1{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            );
            assert!(parse_projected(deep.as_bytes(), &proj).is_none(), "{key}");
        }
        let ok = format!(r#"{{"x":{}1{},"a":2}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(
            parse_projected(ok.as_bytes(), &proj),
            Some(serde_json::json!({"a": 2}))
        );
    }

    /// Random documents: the projection must give every kept path the values a whole parse gives.
    #[test]
    fn agrees_with_whole_parses_on_random_documents() {
        let wanted = paths(&["a.b", "c", "d.e.f"]);
        let proj = Projection::new(&wanted).unwrap();
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn gen(depth: u32, rand: &mut dyn FnMut(u64) -> u64) -> Json {
            let keys = ["a", "b", "c", "d", "e", "f", "a.b", "d.e", "e.f", "x"];
            match if depth > 3 { rand(4) } else { rand(7) } {
                0 => Json::from(rand(100) as i64 - 50),
                1 => Json::from(format!("s{}\"\\{{}}[]", rand(10))),
                2 => Json::Null,
                3 => Json::Bool(rand(2) == 0),
                4 | 5 => {
                    let mut m = serde_json::Map::new();
                    for _ in 0..rand(4) {
                        m.insert(
                            keys[rand(keys.len() as u64) as usize].into(),
                            gen(depth + 1, rand),
                        );
                    }
                    Json::Object(m)
                }
                _ => Json::Array((0..rand(3)).map(|_| gen(depth + 1, rand)).collect()),
            }
        }
        for _ in 0..3000 {
            let mut m = serde_json::Map::new();
            for _ in 0..rand(5) {
                let k = ["a", "c", "d", "a.b", "d.e", "d.e.f", "zz"][rand(7) as usize];
                m.insert(k.into(), gen(1, &mut rand));
            }
            let full = Json::Object(m);
            let text = serde_json::to_string(&full).unwrap();
            let projected = parse_projected(text.as_bytes(), &proj).expect(&text);
            for p in &wanted {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                lookup_all(&full, p, &mut a);
                lookup_all(&projected, p, &mut b);
                assert_eq!(a, b, "{text} {}", p.as_str());
            }
        }
    }
}

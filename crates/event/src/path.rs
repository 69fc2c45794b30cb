//! Field paths and how they are resolved against a document.

use crate::Json;
use std::fmt;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index (legacy EQL `list[1]`); negative counts from the end.
    Index(i64),
}

/// A parsed field path such as `process.parent.name` or `events[1].serial_event_id`.
///
/// Every run of consecutive keys is also kept joined with dots, computed once, so a lookup can find
/// documents that spell the path with dotted keys (`{"process.name": ..}`) without allocating.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segments: Vec<Segment>,
    /// `joined[i][j - i]` is keys `i..=j` joined with `.` (empty when an index lies between).
    joined: Vec<Vec<String>>,
    text: String,
}

impl FieldPath {
    /// Parses a dotted path. Brackets with an integer (`a[0]`) become index segments.
    pub fn parse(text: &str) -> FieldPath {
        let mut segments = Vec::new();
        for part in text.split('.') {
            let mut rest = part;
            // `name[1][2]`: a key then indices.
            let key_end = rest.find('[').unwrap_or(rest.len());
            let key = &rest[..key_end];
            rest = &rest[key_end..];
            let mut indices = Vec::new();
            let mut ok = true;
            while let Some(stripped) = rest.strip_prefix('[') {
                match stripped.find(']') {
                    Some(end) => match stripped[..end].trim().parse::<i64>() {
                        Ok(n) => {
                            indices.push(n);
                            rest = &stripped[end + 1..];
                        }
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    },
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok || !rest.is_empty() {
                // Not an index expression after all: keep the whole part as a key.
                segments.push(Segment::Key(part.to_string()));
                continue;
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            segments.extend(indices.into_iter().map(Segment::Index));
        }
        FieldPath::from_segments(segments)
    }

    /// Builds a path from segments.
    pub fn from_segments(segments: Vec<Segment>) -> FieldPath {
        let mut joined = Vec::with_capacity(segments.len());
        for i in 0..segments.len() {
            let mut row = Vec::new();
            let mut acc = String::new();
            for seg in &segments[i..] {
                match seg {
                    Segment::Key(k) => {
                        if !acc.is_empty() {
                            acc.push('.');
                        }
                        acc.push_str(k);
                        row.push(acc.clone());
                    }
                    Segment::Index(_) => break,
                }
            }
            joined.push(row);
        }
        let mut text = String::new();
        for seg in &segments {
            match seg {
                Segment::Key(k) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(k);
                }
                Segment::Index(n) => {
                    text.push('[');
                    text.push_str(&n.to_string());
                    text.push(']');
                }
            }
        }
        FieldPath {
            segments,
            joined,
            text,
        }
    }

    /// The segments of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path as written in dotted form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A new path with `tail` appended (used for `events[1].x` style access).
    pub fn tail(&self, from: usize) -> FieldPath {
        FieldPath::from_segments(self.segments[from..].to_vec())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Collects every value the path has in `doc`, Elasticsearch style: arrays met on the way or at the
/// end are flattened (an array of objects contributes each object's value), nulls are dropped (a null
/// is not indexed), and dotted keys are equivalent to nesting. No value at all means the field is
/// missing.
pub fn lookup_all<'a>(doc: &'a Json, path: &FieldPath, out: &mut Vec<&'a Json>) {
    walk_all(doc, path, 0, out);
}

fn walk_all<'a>(node: &'a Json, path: &FieldPath, at: usize, out: &mut Vec<&'a Json>) {
    if at == path.segments.len() {
        push_flat(node, out);
        return;
    }
    match node {
        Json::Object(map) => {
            for (n, key) in path.joined[at].iter().enumerate() {
                if let Some(child) = map.get(key.as_str()) {
                    walk_all(child, path, at + n + 1, out);
                }
            }
            if path.joined[at].is_empty() {
                // An index segment applied to an object: nothing there.
            }
        }
        Json::Array(items) => match path.segments[at] {
            Segment::Index(i) => {
                if let Some(item) = index(items, i) {
                    walk_all(item, path, at + 1, out);
                }
            }
            Segment::Key(_) => {
                for item in items {
                    walk_all(item, path, at, out);
                }
            }
        },
        _ => {}
    }
}

fn push_flat<'a>(node: &'a Json, out: &mut Vec<&'a Json>) {
    match node {
        Json::Null => {}
        Json::Array(items) => {
            for item in items {
                push_flat(item, out);
            }
        }
        other => out.push(other),
    }
}

fn index(items: &[Json], i: i64) -> Option<&Json> {
    let len = items.len() as i64;
    let at = if i < 0 { len + i } else { i };
    if at < 0 || at >= len {
        None
    } else {
        items.get(at as usize)
    }
}

/// Finds the single value at `path`, keeping structure: an array is returned as the array, and an
/// index segment picks one element. Dotted keys are honoured as in [`lookup_all`]; the first match in
/// document order wins.
pub fn lookup_one<'a>(doc: &'a Json, path: &FieldPath) -> Option<&'a Json> {
    walk_one(doc, path, 0)
}

fn walk_one<'a>(node: &'a Json, path: &FieldPath, at: usize) -> Option<&'a Json> {
    if at == path.segments.len() {
        return Some(node);
    }
    match (node, &path.segments[at]) {
        (Json::Object(map), Segment::Key(_)) => {
            for (n, key) in path.joined[at].iter().enumerate() {
                if let Some(child) = map.get(key.as_str()) {
                    if let Some(found) = walk_one(child, path, at + n + 1) {
                        return Some(found);
                    }
                }
            }
            None
        }
        (Json::Array(items), Segment::Index(i)) => walk_one(index(items, *i)?, path, at + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(doc: &Json, p: &str) -> Vec<Json> {
        let mut out = Vec::new();
        lookup_all(doc, &FieldPath::parse(p), &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn nested_and_dotted_keys_are_the_same_field() {
        let nested = json!({"process": {"parent": {"name": "bash"}}});
        let dotted = json!({"process.parent.name": "bash"});
        let mixed = json!({"process": {"parent.name": "bash"}});
        for doc in [&nested, &dotted, &mixed] {
            assert_eq!(all(doc, "process.parent.name"), vec![json!("bash")]);
        }
    }

    #[test]
    fn arrays_flatten_at_every_level_and_nulls_vanish() {
        let doc = json!({"a": [{"b": ["x", null, ["y"]]}, {"b": "z"}, {"c": 1}]});
        assert_eq!(all(&doc, "a.b"), vec![json!("x"), json!("y"), json!("z")]);
        assert!(all(&doc, "a.missing").is_empty());
        assert!(all(&json!({"a": null}), "a").is_empty());
    }

    #[test]
    fn lookup_one_keeps_arrays_and_indexes_them() {
        let doc = json!({"list": ["en-US", "EN"], "events": [{"id": 1}, {"id": 2}]});
        assert_eq!(
            lookup_one(&doc, &FieldPath::parse("list")),
            Some(&json!(["en-US", "EN"]))
        );
        assert_eq!(
            lookup_one(&doc, &FieldPath::parse("list[1]")),
            Some(&json!("EN"))
        );
        assert_eq!(
            lookup_one(&doc, &FieldPath::parse("events[1].id")),
            Some(&json!(2))
        );
        assert_eq!(
            lookup_one(&doc, &FieldPath::parse("list[-1]")),
            Some(&json!("EN"))
        );
        assert_eq!(lookup_one(&doc, &FieldPath::parse("list[5]")), None);
    }

    #[test]
    fn odd_brackets_stay_part_of_the_key() {
        let p = FieldPath::parse("a[x].b");
        assert_eq!(p.segments()[0], Segment::Key("a[x]".into()));
        assert_eq!(p.as_str(), "a[x].b");
    }
}

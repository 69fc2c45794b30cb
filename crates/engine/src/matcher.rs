//! String pattern matchers, compiled once per rule.
//!
//! Wildcard patterns are classified by shape (exact, prefix, suffix, substring) so the common cases
//! cost a comparison or a `memmem`; anything else becomes one anchored regex. Case folding of the
//! pattern happens here, at compile time; values are folded only when they are not ASCII.

use crate::expr::Fold;
use aho_corasick::AhoCorasick;
use memchr::memmem;
use regex::Regex;
use std::fmt;

/// What the pattern strings mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// Elasticsearch wildcards: `*` any run, `?` one character; everything else literal.
    Wildcard,
    /// The legacy dialect's wildcards: only `*` is special.
    LegacyWildcard,
    /// Lucene regular expression syntax (`regex`, `regex~`), matched against the whole value.
    Lucene,
    /// Python `re.match` (legacy `match`/`matchLite`): anchored at the start only.
    PythonMatch,
    /// A Rust regular expression searched anywhere in the value (Sigma's `re`, and Sigma wildcards
    /// with escaped `*`/`?`, which compile to an anchored one).
    Regex,
}

#[derive(Debug, Clone)]
pub struct MatcherError {
    pub pattern: String,
    pub message: String,
}

impl fmt::Display for MatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.message)
    }
}

#[derive(Debug)]
enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(Box<memmem::Finder<'static>>),
    /// Two or more substrings, searched in one pass: a list of 20,000 `contains` values costs one
    /// scan of the value, not 20,000.
    ContainsAny(Box<AhoCorasick>),
    Everything,
    Regex(Regex),
}

/// A compiled set of patterns; matches when any pattern matches.
#[derive(Debug)]
pub struct Matcher {
    shapes: Vec<Shape>,
    fold: Fold,
    /// Per pattern, the literal fragments every match must contain (folded when `fold` is
    /// insensitive); `None` when the pattern gives no such guarantee.
    literals: Vec<Option<Vec<String>>>,
    /// The patterns as written, for display.
    source: Vec<String>,
    kind: PatternKind,
}

impl Matcher {
    pub fn new(
        kind: PatternKind,
        patterns: &[String],
        fold: Fold,
    ) -> Result<Matcher, MatcherError> {
        let mut shapes = Vec::with_capacity(patterns.len());
        let mut literals = Vec::with_capacity(patterns.len());
        for p in patterns {
            let (shape, lits) = match kind {
                PatternKind::Wildcard => compile_wildcard(p, fold, true)?,
                PatternKind::LegacyWildcard => compile_wildcard(p, fold, false)?,
                PatternKind::Lucene => {
                    let re = lucene_regex_to_rust(p).map_err(|m| MatcherError {
                        pattern: p.clone(),
                        message: m,
                    })?;
                    (build_regex(&re, fold, p)?, None)
                }
                PatternKind::PythonMatch => {
                    let re = format!("^(?:{p})");
                    (build_regex(&re, fold, p)?, None)
                }
                PatternKind::Regex => (build_regex(p, fold, p)?, None),
            };
            shapes.push(shape);
            literals.push(lits);
        }
        merge_substrings(&mut shapes, fold)?;
        Ok(Matcher {
            shapes,
            fold,
            literals,
            source: patterns.to_vec(),
            kind,
        })
    }

    /// Whether matching folds case.
    pub fn fold(&self) -> Fold {
        self.fold
    }

    pub fn kind(&self) -> PatternKind {
        self.kind
    }

    pub fn patterns(&self) -> &[String] {
        &self.source
    }

    /// The literal fragments each pattern requires, for the prefilter.
    pub fn required_literals(&self) -> &[Option<Vec<String>>] {
        &self.literals
    }

    pub fn is_match(&self, value: &str) -> bool {
        let folded;
        let (v, ascii_fold) = match self.fold {
            Fold::Sensitive => (value, false),
            Fold::Insensitive if value.is_ascii() => (value, true),
            Fold::Insensitive => {
                folded = value.to_lowercase();
                (folded.as_str(), false)
            }
        };
        self.shapes.iter().any(|s| match s {
            Shape::Exact(p) => eq(v, p, ascii_fold),
            Shape::Prefix(p) => {
                v.len() >= p.len()
                    && v.is_char_boundary(p.len())
                    && eq(&v[..p.len()], p, ascii_fold)
            }
            Shape::Suffix(p) => {
                v.len() >= p.len()
                    && v.is_char_boundary(v.len() - p.len())
                    && eq(&v[v.len() - p.len()..], p, ascii_fold)
            }
            Shape::Contains(f) => {
                if ascii_fold && v.bytes().any(|b| b.is_ascii_uppercase()) {
                    f.find(v.to_ascii_lowercase().as_bytes()).is_some()
                } else {
                    f.find(v.as_bytes()).is_some()
                }
            }
            // Built ASCII-case-insensitive when folding: the patterns are folded already.
            Shape::ContainsAny(ac) => ac.is_match(v),
            Shape::Everything => true,
            // The regex carries its own case-insensitivity flag and sees the original value.
            Shape::Regex(r) => r.is_match(value),
        })
    }
}

/// Replaces two or more `Contains` shapes by one automaton; leaves a single one as a `memmem`.
fn merge_substrings(shapes: &mut Vec<Shape>, fold: Fold) -> Result<(), MatcherError> {
    let count = shapes
        .iter()
        .filter(|s| matches!(s, Shape::Contains(_)))
        .count();
    if count < 2 {
        return Ok(());
    }
    let mut needles = Vec::with_capacity(count);
    shapes.retain(|s| match s {
        Shape::Contains(f) => {
            needles.push(f.needle().to_vec());
            false
        }
        _ => true,
    });
    let ac = aho_corasick::AhoCorasickBuilder::new()
        .ascii_case_insensitive(fold == Fold::Insensitive)
        .build(&needles)
        .map_err(|e| MatcherError {
            pattern: format!("{count} substrings"),
            message: e.to_string(),
        })?;
    shapes.push(Shape::ContainsAny(Box::new(ac)));
    Ok(())
}

fn eq(v: &str, p: &str, ascii_fold: bool) -> bool {
    if ascii_fold {
        v.eq_ignore_ascii_case(p)
    } else {
        v == p
    }
}

fn build_regex(re: &str, fold: Fold, pattern: &str) -> Result<Shape, MatcherError> {
    regex::RegexBuilder::new(re)
        .case_insensitive(fold == Fold::Insensitive)
        .dot_matches_new_line(true)
        .size_limit(1 << 22)
        .build()
        .map(Shape::Regex)
        .map_err(|e| MatcherError {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

fn compile_wildcard(
    pattern: &str,
    fold: Fold,
    question_mark: bool,
) -> Result<(Shape, Option<Vec<String>>), MatcherError> {
    let is_wild = |c: char| c == '*' || (question_mark && c == '?');
    let folded = match fold {
        Fold::Sensitive => pattern.to_string(),
        Fold::Insensitive => pattern.to_lowercase(),
    };
    // Fragments between wildcards, for the prefilter.
    let fragments: Vec<String> = folded
        .split(is_wild)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let lits = Some(fragments.clone());
    let stars_only = !folded.chars().any(|c| question_mark && c == '?');
    let inner = folded.trim_matches('*');
    let shape = if !folded.chars().any(is_wild) {
        Shape::Exact(folded.clone())
    } else if folded.chars().all(|c| c == '*') {
        Shape::Everything
    } else if stars_only && !inner.contains('*') {
        let lead = folded.starts_with('*');
        let trail = folded.ends_with('*');
        match (lead, trail) {
            (false, true) => Shape::Prefix(inner.to_string()),
            (true, false) => Shape::Suffix(inner.to_string()),
            _ => Shape::Contains(Box::new(memmem::Finder::new(inner.as_bytes()).into_owned())),
        }
    } else {
        let mut re = String::from("^");
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' if question_mark => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push('$');
        build_regex(&re, fold, pattern)?
    };
    Ok((shape, lits))
}

/// Translates a Lucene regular expression (the syntax of Elasticsearch's `regexp` query, which EQL's
/// `regex` operator uses) into an anchored Rust regex. Lucene has no `\d`/`\s`/`\w` classes or
/// anchors: a backslash escapes the next character, `"..."` is a literal string, `@` matches any
/// string, `<n-m>` a numeric range; the whole value must match.
pub fn lucene_regex_to_rust(pattern: &str) -> Result<String, String> {
    let mut out = String::from("^(?:");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '\\' => match chars.next() {
                    Some(n) => out.push_str(&class_escape(n)),
                    None => return Err("trailing backslash".into()),
                },
                '[' | '&' | '~' | '-' | '^' => {
                    // `-` and a leading `^` keep their class meaning; others are literal in Lucene
                    // classes but special in Rust's, so escape them.
                    if c == '-' || c == '^' {
                        out.push(c);
                    } else {
                        out.push('\\');
                        out.push(c);
                    }
                }
                c => out.push(c),
            }
            continue;
        }
        match c {
            '\\' => match chars.next() {
                Some(n) => out.push_str(&regex::escape(n.encode_utf8(&mut [0; 4]))),
                None => return Err("trailing backslash".into()),
            },
            '[' => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '"' => {
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(ch) => lit.push(ch),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
                out.push_str(&regex::escape(&lit));
            }
            '@' => out.push_str(".*"),
            '#' => out.push_str("[^\\s\\S]"),
            '<' => {
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(ch) => body.push(ch),
                        None => return Err("unterminated numeric interval".into()),
                    }
                }
                let (lo, hi) = body
                    .split_once('-')
                    .ok_or_else(|| format!("bad numeric interval <{body}>"))?;
                let lo: u64 = lo
                    .parse()
                    .map_err(|_| format!("bad numeric interval <{body}>"))?;
                let hi: u64 = hi
                    .parse()
                    .map_err(|_| format!("bad numeric interval <{body}>"))?;
                if hi < lo || hi - lo > 10_000 {
                    return Err(format!("numeric interval <{body}> too wide"));
                }
                let alts: Vec<String> = (lo..=hi).map(|n| n.to_string()).collect();
                out.push_str("0*(?:");
                out.push_str(&alts.join("|"));
                out.push(')');
            }
            '&' | '~' => {
                return Err(format!(
                    "the Lucene operator `{c}` (intersection/complement) is not supported"
                ))
            }
            '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if in_class {
        return Err("unterminated character class".into());
    }
    out.push_str(")$");
    Ok(out)
}

fn class_escape(c: char) -> String {
    let mut s = String::from("\\");
    s.push(c);
    if c.is_ascii_alphanumeric() {
        // Lucene: `\d` in a class is the letter d.
        return c.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: PatternKind, pats: &[&str], fold: Fold) -> Matcher {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        Matcher::new(kind, &pats, fold).unwrap()
    }

    #[test]
    fn wildcard_shapes() {
        let w = m(
            PatternKind::Wildcard,
            &["/etc/systemd/system/*"],
            Fold::Insensitive,
        );
        assert!(w.is_match("/ETC/systemd/system/x.service"));
        assert!(!w.is_match("/etc/systemd/user/x"));
        let w = m(
            PatternKind::Wildcard,
            &["*/.config/systemd/user/*"],
            Fold::Sensitive,
        );
        assert!(w.is_match("/home/a/.config/systemd/user/b.service"));
        assert!(!w.is_match("/home/a/.CONFIG/systemd/user/b.service"));
        let w = m(PatternKind::Wildcard, &["python?"], Fold::Sensitive);
        assert!(w.is_match("python3") && !w.is_match("python") && !w.is_match("python31"));
        let legacy = m(PatternKind::LegacyWildcard, &["python?"], Fold::Sensitive);
        assert!(legacy.is_match("python?") && !legacy.is_match("python3"));
        let w = m(PatternKind::Wildcard, &["*.service"], Fold::Insensitive);
        assert!(w.is_match("A.SERVICE"));
        assert!(m(PatternKind::Wildcard, &["*"], Fold::Sensitive).is_match(""));
    }

    #[test]
    fn many_substrings_are_one_automaton_with_the_same_answers() {
        let pats: Vec<String> = (0..500).map(|i| format!("*Needle{i}x*")).collect();
        for fold in [Fold::Insensitive, Fold::Sensitive] {
            let w = Matcher::new(PatternKind::Wildcard, &pats, fold).unwrap();
            assert_eq!(w.shapes.len(), 1, "{fold:?}: {:?}", w.shapes.len());
            assert!(w.is_match("a Needle499x b"));
            assert!(!w.is_match("a Needle500x b"));
            assert_eq!(w.is_match("NEEDLE7X"), fold == Fold::Insensitive);
            assert_eq!(w.is_match("ünïcode needle7x"), fold == Fold::Insensitive);
        }
        // Mixed with other shapes, every shape still counts.
        let w = m(
            PatternKind::Wildcard,
            &["*ab*", "exact", "*cd*", "pre*"],
            Fold::Sensitive,
        );
        assert!(w.is_match("xcdx") && w.is_match("exact") && w.is_match("prefix"));
        assert!(!w.is_match("xexactx"));
    }

    #[test]
    fn unicode_folding_when_the_value_is_not_ascii() {
        let w = m(PatternKind::Wildcard, &["straße*"], Fold::Insensitive);
        assert!(w.is_match("STRAßE-1"));
        let w = m(PatternKind::Wildcard, &["*É*"], Fold::Insensitive);
        assert!(w.is_match("café"));
    }

    #[test]
    fn lucene_syntax() {
        let r = m(PatternKind::Lucene, &["a.c"], Fold::Sensitive);
        assert!(
            r.is_match("abc") && !r.is_match("abcd"),
            "anchored both ends"
        );
        let r = m(PatternKind::Lucene, &["\\d+"], Fold::Sensitive);
        assert!(
            r.is_match("ddd") && !r.is_match("123"),
            "\\d is a literal d"
        );
        let r = m(PatternKind::Lucene, &["foo<1-12>"], Fold::Sensitive);
        assert!(r.is_match("foo7") && r.is_match("foo12") && !r.is_match("foo13"));
        let r = m(PatternKind::Lucene, &["@bar"], Fold::Insensitive);
        assert!(r.is_match("xxBAR"));
        let r = m(PatternKind::Lucene, &["\"a.b\"c"], Fold::Sensitive);
        assert!(r.is_match("a.bc") && !r.is_match("axbc"));
        assert!(Matcher::new(PatternKind::Lucene, &["a&b".into()], Fold::Sensitive).is_err());
    }

    #[test]
    fn required_literals_are_the_fragments() {
        let w = m(
            PatternKind::Wildcard,
            &["*/.Config/*user*"],
            Fold::Insensitive,
        );
        assert_eq!(
            w.required_literals()[0],
            Some(vec!["/.config/".to_string(), "user".to_string()])
        );
    }
}

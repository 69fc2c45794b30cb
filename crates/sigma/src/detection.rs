//! Search identifiers to predicates: maps (AND), lists of maps (OR), value lists (OR, or AND with
//! `all`), keywords, wildcards with Sigma's escapes, case-insensitive by default, `null`, and the
//! value modifiers (see `docs/sigma.md` for each one's meaning here).

use crate::load::{scalar_text, SigmaRule};
use crate::pipeline::{Scope, Subject};
use crate::SigmaError;
use base64::Engine as _;
use serde_json::Value as Json;
use std::sync::Arc;
use unithunt_engine::{CmpOp, Expr, Fold, Func, Matcher, PatternKind};
use unithunt_event::{FieldPath, Value};

/// One piece of a Sigma string: text, `*` (any run) or `?` (one character).
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    Star,
    One,
}

/// Parses Sigma's wildcards and escapes: `\*`, `\?` and `\\` escape; a backslash before anything
/// else (or at the end) is itself; `\\` right before a wildcard is a literal backslash and the
/// wildcard stays one.
pub fn parse_wildcards(s: &str) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    let push = |out: &mut Vec<Part>, c: char| match out.last_mut() {
        Some(Part::Lit(t)) => t.push(c),
        _ => out.push(Part::Lit(c.to_string())),
    };
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    push(&mut out, n);
                }
                _ => push(&mut out, '\\'),
            },
            '*' => out.push(Part::Star),
            '?' => out.push(Part::One),
            c => push(&mut out, c),
        }
    }
    out
}

fn has_wildcards(parts: &[Part]) -> bool {
    parts.iter().any(|p| !matches!(p, Part::Lit(_)))
}

fn literal(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(t) => t.as_str(),
            Part::Star => "*",
            Part::One => "?",
        })
        .collect()
}

/// A value on its way through the modifiers.
#[derive(Clone, Debug)]
enum V {
    Str(Vec<Part>),
    Bytes(Vec<u8>),
    Num(serde_json::Number),
    Null,
}

/// The modifiers of one field, parsed.
#[derive(Default, Debug)]
struct Mods {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    cased: bool,
    neq: bool,
    exists: bool,
    re: Option<String>,
    cidr: bool,
    fieldref: bool,
    cmp: Option<CmpOp>,
    /// `minute`, `hour`, `day`, `week`, `month`, `year`: compare that part of a timestamp.
    time_part: Option<&'static str>,
    /// Transformations, in order.
    transforms: Vec<String>,
}

const TRANSFORMS: [&str; 8] = [
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "windash",
    "expand",
];

fn parse_mods(mods: &[&str]) -> Result<Mods, String> {
    let mut m = Mods::default();
    let mut i = 0;
    while i < mods.len() {
        let name = mods[i];
        match name {
            "contains" => m.contains = true,
            "startswith" => m.startswith = true,
            "endswith" => m.endswith = true,
            "all" => m.all = true,
            "cased" => m.cased = true,
            "neq" => m.neq = true,
            "exists" => m.exists = true,
            "cidr" => m.cidr = true,
            "fieldref" => m.fieldref = true,
            "lt" => m.cmp = Some(CmpOp::Lt),
            "lte" => m.cmp = Some(CmpOp::Le),
            "gt" => m.cmp = Some(CmpOp::Gt),
            "gte" => m.cmp = Some(CmpOp::Ge),
            "re" => {
                let mut flags = String::new();
                while let Some(&f) = mods.get(i + 1) {
                    match f {
                        "i" | "ignorecase" => flags.push('i'),
                        "m" | "multiline" => flags.push('m'),
                        "s" | "dotall" => flags.push('s'),
                        _ => break,
                    }
                    i += 1;
                }
                m.re = Some(flags);
            }
            "minute" => m.time_part = Some("minute"),
            "hour" => m.time_part = Some("hour"),
            "day" => m.time_part = Some("day"),
            "week" => m.time_part = Some("week"),
            "month" => m.time_part = Some("month"),
            "year" => m.time_part = Some("year"),
            t if TRANSFORMS.contains(&t) => m.transforms.push(t.to_string()),
            other => return Err(format!("unknown modifier `{other}`")),
        }
        i += 1;
    }
    Ok(m)
}

/// `-` or `/` at the start of a word (after a non-word character or the start, before a word
/// character), as pySigma reads the spec's `windash`.
fn dash_positions(s: &str) -> Vec<usize> {
    let chars: Vec<char> = s.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if (c == '-' || c == '/')
            && (i == 0 || !word(chars[i - 1]))
            && chars.get(i + 1).is_some_and(|&n| word(n))
        {
            out.push(i);
        }
    }
    out
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn windash(parts: &[Part]) -> Result<Vec<Vec<Part>>, String> {
    let mut variants: Vec<Vec<Part>> = vec![Vec::new()];
    for p in parts {
        match p {
            Part::Lit(t) => {
                let positions = dash_positions(t);
                if positions.len() > 4 {
                    return Err("`windash` on more than 4 dashes in one value".into());
                }
                let chars: Vec<char> = t.chars().collect();
                let mut texts = vec![String::new()];
                for (i, &c) in chars.iter().enumerate() {
                    if positions.contains(&i) {
                        texts = texts
                            .into_iter()
                            .flat_map(|t| {
                                DASHES.iter().map(move |d| {
                                    let mut t = t.clone();
                                    t.push(*d);
                                    t
                                })
                            })
                            .collect();
                    } else {
                        texts.iter_mut().for_each(|t| t.push(c));
                    }
                }
                variants = variants
                    .into_iter()
                    .flat_map(|v| {
                        texts.iter().map(move |t| {
                            let mut v = v.clone();
                            v.push(Part::Lit(t.clone()));
                            v
                        })
                    })
                    .collect();
            }
            other => variants.iter_mut().for_each(|v| v.push(other.clone())),
        }
    }
    Ok(variants)
}

/// `%name%` placeholders replaced by each of the pipeline's values for them (all combinations);
/// `\%` is a literal `%`. A placeholder the pipeline does not define rejects the rule, as the
/// specification requires.
fn expand(scope: &Scope, parts: &[Part]) -> Result<Vec<Vec<Part>>, String> {
    let mut variants: Vec<Vec<Part>> = vec![Vec::new()];
    let push_lit = |v: &mut Vec<Part>, t: &str| match v.last_mut() {
        Some(Part::Lit(l)) => l.push_str(t),
        _ => v.push(Part::Lit(t.to_string())),
    };
    for p in parts {
        let Part::Lit(text) = p else {
            variants.iter_mut().for_each(|v| v.push(p.clone()));
            continue;
        };
        let mut rest = text.as_str();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\\%") {
                variants.iter_mut().for_each(|v| push_lit(v, "%"));
                rest = after;
                continue;
            }
            let name_end = rest
                .strip_prefix('%')
                .and_then(|r| r.find('%').map(|i| (&r[..i], &r[i + 1..])))
                .filter(|(n, _)| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if let Some((name, after)) = name_end {
                let values = scope
                    .placeholder(name)
                    .ok_or_else(|| format!("`expand`: the pipeline defines no placeholder `%{name}%`, and a rule whose placeholders cannot be resolved must be rejected"))?;
                let mut next = Vec::new();
                for v in &variants {
                    for value in &values {
                        let mut n = v.clone();
                        for part in parse_wildcards(value) {
                            match part {
                                Part::Lit(t) => push_lit(&mut n, &t),
                                other => n.push(other),
                            }
                        }
                        next.push(n);
                    }
                }
                if next.len() > 4096 {
                    return Err("`expand`: more than 4096 combinations".into());
                }
                variants = next;
                rest = after;
                continue;
            }
            let c = rest.chars().next().expect("non-empty");
            variants
                .iter_mut()
                .for_each(|v| push_lit(v, &c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(variants)
}

/// The three base64 forms of `bytes` at offsets 0, 1 and 2, cut to their fixed middle.
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(bytes);
            let enc = base64::engine::general_purpose::STANDARD.encode(&shifted);
            let end = enc.len() - END[(bytes.len() + i) % 3];
            enc.get(START[i]..end).unwrap_or("").to_string()
        })
        .collect()
}

fn apply_transform(scope: &Scope, t: &str, v: V) -> Result<Vec<V>, String> {
    let text_of = |v: &V| -> Result<Vec<u8>, String> {
        match v {
            V::Str(p) if has_wildcards(p) => Err(format!("`{t}` of a value with wildcards")),
            V::Str(p) => Ok(literal(p).into_bytes()),
            V::Bytes(b) => Ok(b.clone()),
            V::Num(n) => Ok(n.to_string().into_bytes()),
            V::Null => Err(format!("`{t}` of null")),
        }
    };
    let utf16 = |v: &V, le: bool, bom: bool| -> Result<V, String> {
        let s = String::from_utf8(text_of(v)?).map_err(|_| "not text".to_string())?;
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(&[0xff, 0xfe]);
        }
        for u in s.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        Ok(V::Bytes(out))
    };
    Ok(match t {
        "base64" => vec![V::Str(vec![Part::Lit(
            base64::engine::general_purpose::STANDARD.encode(text_of(&v)?),
        )])],
        "base64offset" => base64_offsets(&text_of(&v)?)
            .into_iter()
            .map(|s| V::Str(vec![Part::Lit(s)]))
            .collect(),
        "utf16le" | "wide" => vec![utf16(&v, true, false)?],
        "utf16be" => vec![utf16(&v, false, false)?],
        "utf16" => vec![utf16(&v, true, true)?],
        "windash" => match v {
            V::Str(p) => windash(&p)?.into_iter().map(V::Str).collect(),
            other => vec![other],
        },
        "expand" => match v {
            V::Str(p) => expand(scope, &p)?.into_iter().map(V::Str).collect(),
            other => vec![other],
        },
        _ => unreachable!("TRANSFORMS"),
    })
}

fn matcher(kind: PatternKind, patterns: &[String], fold: Fold) -> Result<Arc<Matcher>, String> {
    Matcher::new(kind, patterns, fold)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// A subject's value as an expression inside the leaf built by [`leaf`].
fn leaf(subject: &Subject, pred: impl FnOnce(Expr) -> Expr) -> Expr {
    match subject {
        Subject::Field(f) => Expr::any_of(vec![f.clone()], pred(Expr::Slot(0))),
        Subject::Record(k) => pred(Expr::Var {
            depth: 0,
            path: Some(FieldPath::from_segments(vec![
                unithunt_event::Segment::Key(k.clone()),
            ])),
        }),
    }
}

fn exists(subject: &Subject) -> Expr {
    match subject {
        Subject::Field(f) => Expr::Exists(f.clone()),
        Subject::Record(_) => {
            let m = matcher(PatternKind::Wildcard, &["*".to_string()], Fold::Sensitive)
                .expect("`*` compiles");
            leaf(subject, |s| Expr::Match {
                subject: Box::new(s),
                matcher: m,
            })
        }
    }
}

/// String patterns of one field as one predicate (wildcard patterns in one matcher, those with
/// literal `*`/`?` as anchored regular expressions).
fn string_patterns(
    subject: &Subject,
    pats: &[Vec<Part>],
    fold: Fold,
    all: bool,
) -> Result<Expr, String> {
    let mut wild = Vec::new();
    let mut regexes = Vec::new();
    for p in pats {
        let literal_wild = p
            .iter()
            .any(|x| matches!(x, Part::Lit(t) if t.contains(['*', '?'])));
        if literal_wild {
            let mut re = String::from("(?s)^");
            for x in p {
                match x {
                    Part::Lit(t) => re.push_str(&regex::escape(t)),
                    Part::Star => re.push_str(".*"),
                    Part::One => re.push('.'),
                }
            }
            re.push('$');
            regexes.push(re);
        } else {
            wild.push(literal(p));
        }
    }
    let mut items = Vec::new();
    let m = |kind, list: Vec<String>| -> Result<Expr, String> {
        let mm = matcher(kind, &list, fold)?;
        Ok(leaf(subject, |s| Expr::Match {
            subject: Box::new(s),
            matcher: mm,
        }))
    };
    if all {
        for w in wild {
            items.push(m(PatternKind::Wildcard, vec![w])?);
        }
        for r in regexes {
            items.push(m(PatternKind::Regex, vec![r])?);
        }
        return Ok(Expr::And(items));
    }
    if !wild.is_empty() {
        items.push(m(PatternKind::Wildcard, wild)?);
    }
    if !regexes.is_empty() {
        items.push(m(PatternKind::Regex, regexes)?);
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one")
    } else {
        Expr::Or(items)
    })
}

fn num_lit(n: &serde_json::Number) -> Expr {
    match n.as_i64() {
        Some(i) => Expr::lit(Value::Int(i)),
        None => Expr::lit(Value::Float(n.as_f64().unwrap_or(f64::NAN))),
    }
}

/// One `field|mods: values` item.
fn field_item(scope: &Scope, field: &str, mods: &[&str], value: &Json) -> Result<Expr, String> {
    let mut subjects = scope.subjects(field);
    if subjects.len() == 1 {
        return subject_item(scope, subjects.remove(0), mods, value);
    }
    // A pipeline that maps one name to several fields: the item on any of them (pySigma
    // replaces it with an OR of one copy per field).
    let items = subjects
        .into_iter()
        .map(|s| subject_item(scope, s, mods, value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expr::Or(items))
}

fn subject_item(
    scope: &Scope,
    subject: Subject,
    mods: &[&str],
    value: &Json,
) -> Result<Expr, String> {
    let m = parse_mods(mods)?;
    let values: Vec<&Json> = match value {
        Json::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    if values.is_empty() {
        return Err("an empty value list".into());
    }
    // `all` on one value (which the specification forbids) means the same as without it.
    if m.exists {
        return match value {
            Json::Bool(true) => Ok(exists(&subject)),
            Json::Bool(false) => Ok(Expr::MustNot(Box::new(exists(&subject)))),
            _ => Err("`exists` takes `true` or `false`".into()),
        };
    }
    let fold = if m.cased {
        Fold::Sensitive
    } else {
        Fold::Insensitive
    };
    let mut items = if m.fieldref {
        fieldref_items(scope, &subject, &m, &values, fold)?
    } else if let Some(flags) = &m.re {
        regex_items(&subject, flags, m.all, &values)?
    } else if m.cidr {
        cidr_items(&subject, &values)
    } else if let Some(part) = m.time_part {
        time_part_items(&subject, part, m.cmp.unwrap_or(CmpOp::Eq), &values)?
    } else if let Some(op) = m.cmp {
        comparison_items(&subject, op, &values)?
    } else {
        value_items(scope, &subject, &m, &values, fold)?
    };
    let joined = if m.all {
        Expr::And(items)
    } else if items.len() == 1 {
        items.pop().expect("one")
    } else {
        Expr::Or(items)
    };
    Ok(if m.neq {
        Expr::MustNot(Box::new(joined))
    } else {
        joined
    })
}

/// `fieldref`: each value names another field the subject is compared with (equal, or per
/// `contains`/`startswith`/`endswith`).
fn fieldref_items(
    scope: &Scope,
    subject: &Subject,
    m: &Mods,
    values: &[&Json],
    fold: Fold,
) -> Result<Vec<Expr>, String> {
    let mut items = Vec::new();
    for v in values {
        let other = scope.subject(&scalar_text(v));
        let (Subject::Field(a), Subject::Field(b)) = (subject, &other) else {
            return Err("`fieldref` in per-record rules".into());
        };
        let f = if m.contains {
            Some(Func::StringContains)
        } else if m.startswith {
            Some(Func::StartsWith)
        } else if m.endswith {
            Some(Func::EndsWith)
        } else {
            None
        };
        let pred = match f {
            Some(func) => Expr::Call {
                func,
                args: vec![Expr::Slot(0), Expr::Slot(1)],
                fold,
            },
            None => Expr::cmp(CmpOp::Eq, Expr::Slot(0), Expr::Slot(1), fold),
        };
        items.push(Expr::any_of(vec![a.clone(), b.clone()], pred));
    }
    Ok(items)
}

/// `re` (with its `i`/`m`/`s` flags): one matcher for all values, or one per value with `all`.
fn regex_items(
    subject: &Subject,
    flags: &str,
    all: bool,
    values: &[&Json],
) -> Result<Vec<Expr>, String> {
    let mut pats = Vec::new();
    for v in values {
        let Json::String(re) = v else {
            return Err("`re` takes strings".into());
        };
        let mut p = String::new();
        if !flags.is_empty() {
            p.push_str(&format!("(?{flags})"));
        }
        if !flags.contains('s') {
            p.push_str("(?-s)");
        }
        p.push_str(re);
        pats.push(p);
    }
    let fold = if flags.contains('i') {
        Fold::Insensitive
    } else {
        Fold::Sensitive
    };
    let mut items = Vec::new();
    if all {
        for p in pats {
            let mm = matcher(PatternKind::Regex, &[p], fold)?;
            items.push(leaf(subject, |s| Expr::Match {
                subject: Box::new(s),
                matcher: mm,
            }));
        }
    } else {
        let mm = matcher(PatternKind::Regex, &pats, fold)?;
        items.push(leaf(subject, |s| Expr::Match {
            subject: Box::new(s),
            matcher: mm,
        }));
    }
    Ok(items)
}

/// `cidr`: one network membership test per value.
fn cidr_items(subject: &Subject, values: &[&Json]) -> Vec<Expr> {
    values
        .iter()
        .map(|v| {
            let c = scalar_text(v);
            leaf(subject, |s| Expr::Call {
                func: Func::CidrMatch,
                args: vec![s, Expr::lit(Value::Str(c.into()))],
                fold: Fold::Sensitive,
            })
        })
        .collect()
}

/// `minute`, `hour`, ...: the part (UTC) compared with the number: equal, or per
/// `lt`/`lte`/`gt`/`gte`.
fn time_part_items(
    subject: &Subject,
    part: &'static str,
    op: CmpOp,
    values: &[&Json],
) -> Result<Vec<Expr>, String> {
    let mut items = Vec::new();
    for v in values {
        let Json::Number(n) = v else {
            return Err(format!("`{part}` takes numbers"));
        };
        let lit = num_lit(n);
        items.push(leaf(subject, |s| {
            let extracted = Expr::Call {
                func: Func::TimePart,
                args: vec![s, Expr::lit(Value::str(part))],
                fold: Fold::Sensitive,
            };
            Expr::cmp(op, extracted, lit, Fold::Sensitive)
        }));
    }
    Ok(items)
}

/// `lt`/`lte`/`gt`/`gte`: one numeric comparison per value.
fn comparison_items(subject: &Subject, op: CmpOp, values: &[&Json]) -> Result<Vec<Expr>, String> {
    let mut items = Vec::new();
    for v in values {
        let Json::Number(n) = v else {
            return Err("`lt`/`lte`/`gt`/`gte` take numbers".into());
        };
        let lit = num_lit(n);
        items.push(leaf(subject, |s| Expr::cmp(op, s, lit, Fold::Sensitive)));
    }
    Ok(items)
}

/// Plain values (no `re`, `cidr`, `fieldref`, comparison or time part): through the
/// transformations, then matched as strings (or numbers, or null).
fn value_items(
    scope: &Scope,
    subject: &Subject,
    m: &Mods,
    values: &[&Json],
    fold: Fold,
) -> Result<Vec<Expr>, String> {
    // Every value is transformed before any is matched, so a transformation error comes first.
    let mut vals: Vec<Vec<V>> = Vec::new();
    for v in values {
        vals.push(transformed_alternatives(scope, &m.transforms, v)?);
    }
    // Without `all`, every string pattern of every value goes into one matcher (one pass, and
    // one set of literals for the prefilter); with `all`, each value is its own conjunct.
    let mut items = Vec::new();
    let mut shared: Vec<Vec<Part>> = Vec::new();
    for alts in vals {
        let (pats, mut others) = split_alternatives(subject, m, alts, fold, values.len() > 1)?;
        if m.all {
            // The alternatives one value expands into (windash, base64offset) are ORed.
            if !pats.is_empty() {
                others.push(string_patterns(subject, &pats, fold, false)?);
            }
            items.push(if others.len() == 1 {
                others.pop().expect("one")
            } else {
                Expr::Or(others)
            });
        } else {
            shared.extend(pats);
            items.extend(others);
        }
    }
    if !shared.is_empty() {
        items.push(string_patterns(subject, &shared, fold, false)?);
    }
    Ok(items)
}

/// The alternatives one value expands into through the transformations, in order.
fn transformed_alternatives(
    scope: &Scope,
    transforms: &[String],
    v: &Json,
) -> Result<Vec<V>, String> {
    let start = match v {
        Json::String(s) => V::Str(parse_wildcards(s)),
        Json::Number(n) => V::Num(n.clone()),
        Json::Bool(b) => V::Str(vec![Part::Lit(b.to_string())]),
        Json::Null => V::Null,
        _ => return Err("a value must be a string, number, boolean or null".into()),
    };
    let mut alts = vec![start];
    for t in transforms {
        let mut next = Vec::new();
        for a in alts {
            next.extend(apply_transform(scope, t, a)?);
        }
        alts = next;
    }
    Ok(alts)
}

/// Split one value's alternatives into string patterns (with the `contains`/`startswith`/
/// `endswith` stars added), which can share a matcher, and other predicates (null, numbers).
/// `several_values`: the item has more than one value, where `null` is refused.
fn split_alternatives(
    subject: &Subject,
    m: &Mods,
    alts: Vec<V>,
    fold: Fold,
    several_values: bool,
) -> Result<(Vec<Vec<Part>>, Vec<Expr>), String> {
    let mut pats: Vec<Vec<Part>> = Vec::new();
    let mut others = Vec::new();
    for a in alts {
        match a {
            V::Null => {
                if several_values {
                    return Err(
                        "`null` cannot be one of several values: give it its own search".into(),
                    );
                }
                others.push(Expr::MustNot(Box::new(exists(subject))));
            }
            V::Num(n) if !(m.contains || m.startswith || m.endswith) => {
                others.push(number_equals(subject, &n, fold)?);
            }
            V::Num(n) => pats.push(vec![Part::Lit(n.to_string())]),
            V::Bytes(_) => {
                return Err(
                    "an encoded value (utf16) must then be base64-encoded to match text".into(),
                )
            }
            V::Str(mut p) => {
                if (m.contains || m.endswith) && p.first() != Some(&Part::Star) {
                    p.insert(0, Part::Star);
                }
                if (m.contains || m.startswith) && p.last() != Some(&Part::Star) {
                    p.push(Part::Star);
                }
                pats.push(p);
            }
        }
    }
    Ok((pats, others))
}

/// A number matches a numeric field equal to it, or the same text.
fn number_equals(subject: &Subject, n: &serde_json::Number, fold: Fold) -> Result<Expr, String> {
    let text = n.to_string();
    let lit = num_lit(n);
    let mm = matcher(PatternKind::Wildcard, &[text], fold)?;
    Ok(leaf(subject, |s| {
        Expr::Or(vec![
            Expr::cmp(CmpOp::Eq, s.clone(), lit, Fold::Sensitive),
            Expr::Match {
                subject: Box::new(s),
                matcher: mm,
            },
        ])
    }))
}

/// Field-less keywords: each is searched (as a substring, case-insensitively) in the scope's
/// keyword fields.
fn keywords(scope: &Scope, mods: &[&str], values: &[Json]) -> Result<Expr, String> {
    let m = parse_mods(mods)?;
    let subjects = scope.keyword_subjects();
    if subjects.is_empty() {
        return Err("keywords need the pipeline's `keyword_fields`".into());
    }
    let mut items = Vec::new();
    for v in values {
        let mut alts = vec![match v {
            Json::String(s) => V::Str(parse_wildcards(s)),
            Json::Number(n) => V::Str(vec![Part::Lit(n.to_string())]),
            _ => return Err("a keyword must be a string or a number".into()),
        }];
        for t in &m.transforms {
            let mut next = Vec::new();
            for a in alts {
                next.extend(apply_transform(scope, t, a)?);
            }
            alts = next;
        }
        let mut pats = Vec::new();
        for a in alts {
            let V::Str(mut p) = a else {
                return Err("a keyword must end as text".into());
            };
            if p.first() != Some(&Part::Star) {
                p.insert(0, Part::Star);
            }
            if p.last() != Some(&Part::Star) {
                p.push(Part::Star);
            }
            pats.push(p);
        }
        let fold = if m.cased {
            Fold::Sensitive
        } else {
            Fold::Insensitive
        };
        let per_field = subjects
            .iter()
            .map(|s| string_patterns(s, &pats, fold, false))
            .collect::<Result<Vec<_>, _>>()?;
        items.push(Expr::Or(per_field));
    }
    Ok(if m.all {
        Expr::And(items)
    } else {
        Expr::Or(items)
    })
}

fn split_key(key: &str) -> (&str, Vec<&str>) {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("");
    (field, parts.collect())
}

fn map_search(scope: &Scope, map: &serde_json::Map<String, Json>) -> Result<Expr, String> {
    let mut items = Vec::new();
    for (k, v) in map {
        let (field, mods) = split_key(k);
        if field.is_empty() {
            let values = match v {
                Json::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            items.push(keywords(scope, &mods, &values).map_err(|e| format!("`{k}`: {e}"))?);
        } else {
            items.push(field_item(scope, field, &mods, v).map_err(|e| format!("`{k}`: {e}"))?);
        }
    }
    if items.is_empty() {
        return Err("an empty search".into());
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one")
    } else {
        Expr::And(items)
    })
}

/// One search identifier's value.
pub fn search(scope: &Scope, value: &Json) -> Result<Expr, String> {
    match value {
        Json::Object(map) => map_search(scope, map),
        Json::Array(items) if items.iter().all(Json::is_object) && !items.is_empty() => {
            let alts = items
                .iter()
                .map(|i| map_search(scope, i.as_object().expect("checked")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Expr::Or(alts))
        }
        Json::Array(items) if items.iter().all(|i| i.is_string() || i.is_number()) => {
            keywords(scope, &[], items)
        }
        Json::Array(_) => Err("a list must hold only maps or only keywords".into()),
        Json::String(_) | Json::Number(_) => keywords(scope, &[], std::slice::from_ref(value)),
        Json::Null => Err("an empty search".into()),
        Json::Bool(_) => Err("a search cannot be a boolean".into()),
    }
}

/// Every search identifier of a rule, compiled.
pub fn compile_searches(
    rule: &SigmaRule,
    scope: &Scope,
) -> Result<Vec<(String, Expr)>, SigmaError> {
    rule.searches
        .iter()
        .map(|(name, v)| {
            search(scope, v)
                .map(|e| (name.clone(), e))
                .map_err(|m| rule.error(m, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec() {
        use Part::*;
        let l = |s: &str| Lit(s.into());
        assert_eq!(parse_wildcards(r"C:\Windows\*"), vec![l(r"C:\Windows*")]);
        assert_eq!(parse_wildcards(r"a\\*"), vec![l(r"a\"), Star]);
        assert_eq!(parse_wildcards(r"a\\\*"), vec![l(r"a\*")]);
        assert_eq!(parse_wildcards(r"a?b\?"), vec![l("a"), One, l("b?")]);
        assert_eq!(parse_wildcards("end\\"), vec![l("end\\")]);
    }

    #[test]
    fn base64_offsets_match_the_spec_examples() {
        assert_eq!(base64_offsets(b"ping"), ["cGluZ", "Bpbm", "waW5n"]);
        assert_eq!(
            base64_offsets(b"whoami"),
            ["d2hvYW1p", "dob2Fta", "3aG9hbW"]
        );
        let utf16: Vec<u8> = "cmd".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(base64_offsets(&utf16), ["YwBtAGQA", "MAbQBkA", "jAG0AZA"]);
    }

    #[test]
    fn windash_replaces_dashes_that_start_words() {
        let v = windash(&parse_wildcards("a-b -c /d")).unwrap();
        assert_eq!(v.len(), 25);
        let texts: Vec<String> = v.iter().map(|p| literal(p)).collect();
        assert!(texts.contains(&"a-b /c \u{2013}d".to_string()));
        assert!(texts.iter().all(|t| t.starts_with("a-b ")));
    }
}

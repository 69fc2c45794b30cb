//! Sigma's regular expressions (the PCRE subset the specification allows) in the syntax of
//! Lucene's `RegExp`, which Elasticsearch's EQL `regex` runs: what `rules convert` writes.
//!
//! The two differ in more than spelling. Lucene matches the whole value, so an unanchored search
//! gains `.*` on its open sides and `^`/`$` go (inside the pattern Lucene has no anchors: they
//! would be literal characters there, and such a pattern is refused). Lucene has no `(?:`, no
//! `\d`/`\w`/`\s` classes, no lookaround, back-references or word boundaries; and it gives
//! `"`, `<`, `>`, `#`, `@`, `&`, `~` meanings PCRE does not. Each construct is rewritten exactly
//! or the pattern refused with the reason; nothing is approximated.
//!
//! ```
//! use unithunt_sigma::lucene::pcre_to_lucene;
//! assert_eq!(pcre_to_lucene("/system(ctl|d-run)$").unwrap(), ".*/system(ctl|d-run)");
//! assert_eq!(pcre_to_lucene("^(?:a|b)\\d+").unwrap(), "(a|b)[0-9]+.*");
//! assert!(pcre_to_lucene("a(?=b)").is_err());
//! ```

/// `\s` as PCRE has it: space, tab, line feed, vertical tab, form feed, carriage return.
const SPACE: &str = " \t\n\u{b}\u{c}\r";
const WORD: &str = "a-zA-Z0-9_";
const DIGIT: &str = "0-9";

/// Characters Lucene gives a meaning PCRE does not: escaped where PCRE has them literal.
const LUCENE_ONLY: &[char] = &['"', '<', '>', '#', '@', '&', '~'];

/// The Lucene form of PCRE pattern `p` (inline flags such as `(?i)` already taken off: case is
/// the operator's `~`), or why it has none.
pub fn pcre_to_lucene(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut end = chars.len();
    let anchored_start = chars.first() == Some(&'^');
    if anchored_start {
        i = 1;
    }
    // A trailing `$` not escaped (an odd number of backslashes before it escapes it).
    let anchored_end = end > i && chars[end - 1] == '$' && {
        let backslashes = chars[i..end - 1]
            .iter()
            .rev()
            .take_while(|&&c| c == '\\')
            .count();
        backslashes % 2 == 0
    };
    if anchored_end {
        end -= 1;
    }
    let mut out = String::new();
    if !anchored_start {
        out.push_str(".*");
    }
    let mut depth = 0usize;
    while i < end {
        let c = chars[i];
        match c {
            '\\' => {
                let (text, used) = escape(&chars[i + 1..end], false)?;
                out.push_str(&text);
                i += 1 + used;
                continue;
            }
            '[' => {
                let (text, used) = class(&chars[i..end])?;
                out.push_str(&text);
                i += used;
                continue;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    if chars.get(i + 2) == Some(&':') {
                        out.push('(');
                        depth += 1;
                        i += 3;
                        continue;
                    }
                    return Err(format!(
                        "`(?{}` (lookaround, named group or inline flag inside the pattern) has no Lucene form",
                        chars.get(i + 2).map(|c| c.to_string()).unwrap_or_default()
                    ));
                }
                depth += 1;
                out.push('(');
            }
            ')' => {
                depth = depth.checked_sub(1).ok_or("an unbalanced `)`")?;
                out.push(')');
            }
            '^' | '$' => {
                return Err(format!(
                    "`{c}` inside the pattern: Lucene has no anchors (only a leading `^` and a trailing `$` translate)"
                ))
            }
            '*' | '+' | '?' | '}' => {
                out.push(c);
                // Lazy quantifiers match the same values (Lucene matches whole values);
                // possessive ones can fail where greedy ones match: refused.
                match chars.get(i + 1).filter(|_| i + 1 < end) {
                    Some('?') => i += 1,
                    Some('+') => {
                        return Err("a possessive quantifier has no Lucene form".into())
                    }
                    _ => {}
                }
            }
            '{' => {
                // A bounded repeat `{n}`, `{n,}`, `{n,m}` as Lucene has it; anything else is a
                // literal brace in PCRE.
                let close = chars[i..end].iter().position(|&c| c == '}');
                let body: Option<String> = close.map(|k| chars[i + 1..i + k].iter().collect());
                match body.filter(|b| is_repeat(b)) {
                    Some(b) => {
                        out.push('{');
                        out.push_str(&b);
                        i += b.chars().count() + 1;
                        continue;
                    }
                    None => out.push_str("\\{"),
                }
            }
            c if LUCENE_ONLY.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    if depth != 0 {
        return Err("an unbalanced `(`".into());
    }
    if !anchored_end {
        out.push_str(".*");
    }
    Ok(out)
}

fn is_repeat(b: &str) -> bool {
    let mut parts = b.splitn(2, ',');
    let lo = parts.next().unwrap_or("");
    let hi = parts.next();
    !lo.is_empty()
        && lo.chars().all(|c| c.is_ascii_digit())
        && hi.is_none_or(|h| h.chars().all(|c| c.is_ascii_digit()))
}

/// The escape after a backslash (`rest` starts after it): its Lucene text and how many
/// characters it used. In a class, shorthand classes give their ranges without brackets.
fn escape(rest: &[char], in_class: bool) -> Result<(String, usize), String> {
    let Some(&c) = rest.first() else {
        return Err("a pattern ending in a backslash".into());
    };
    let wrap = |s: &str| {
        if in_class {
            s.to_string()
        } else {
            format!("[{s}]")
        }
    };
    let negated = |s: &str| -> Result<String, String> {
        if in_class {
            Err(format!("`\\{c}` inside a class has no Lucene form"))
        } else {
            Ok(format!("[^{s}]"))
        }
    };
    Ok(match c {
        'd' => (wrap(DIGIT), 1),
        'w' => (wrap(WORD), 1),
        's' => (wrap(SPACE), 1),
        'D' => (negated(DIGIT)?, 1),
        'W' => (negated(WORD)?, 1),
        'S' => (negated(SPACE)?, 1),
        't' => ("\t".into(), 1),
        'n' => ("\n".into(), 1),
        'r' => ("\r".into(), 1),
        'f' => ("\u{c}".into(), 1),
        'v' => ("\u{b}".into(), 1),
        'x' => {
            let hex: String = rest[1..].iter().take(2).collect();
            let v = u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .and_then(char::from_u32)
                .ok_or("`\\x` needs two hexadecimal digits")?;
            (literal(v), 3)
        }
        'b' | 'B' | 'A' | 'z' | 'Z' | 'G' => {
            return Err(format!(
                "`\\{c}` (an anchor or word boundary) has no Lucene form"
            ))
        }
        c if c.is_ascii_digit() => {
            return Err("a back-reference has no Lucene form".into());
        }
        c if c.is_ascii_alphanumeric() => {
            return Err(format!("`\\{c}` has no Lucene form"));
        }
        // Any other escaped character is that character, in both syntaxes.
        c => (format!("\\{c}"), 1),
    })
}

/// A character as a Lucene literal (escaped unless a letter, digit or space).
fn literal(c: char) -> String {
    if c.is_alphanumeric() || c == ' ' {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

/// A bracket class starting at `chars[0] == '['`: its Lucene text and length.
fn class(chars: &[char]) -> Result<(String, usize), String> {
    let mut out = String::from("[");
    let mut i = 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first is a literal member in PCRE.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => {
                out.push(']');
                return Ok((out, i + 1));
            }
            '\\' => {
                let (text, used) = escape(&chars[i + 1..], true)?;
                out.push_str(&text);
                i += 1 + used;
                continue;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                return Err("POSIX classes `[:name:]` have no Lucene form".into())
            }
            c if LUCENE_ONLY.contains(&c) || c == '[' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    Err("an unclosed `[`".into())
}

#[cfg(test)]
mod tests {
    use super::pcre_to_lucene as t;

    #[test]
    fn anchors_become_whole_value_matching() {
        // The issue's example: `$` is literal in Lucene, and an unanchored head gains `.*`.
        assert_eq!(t("/system(ctl|d-run)$").unwrap(), ".*/system(ctl|d-run)");
        assert_eq!(t("^/usr/bin/").unwrap(), "/usr/bin/.*");
        assert_eq!(t("^abc$").unwrap(), "abc");
        assert_eq!(t("abc").unwrap(), ".*abc.*");
        // An escaped dollar is a character.
        assert_eq!(t("cost\\$").unwrap(), ".*cost\\$.*");
        assert!(t("a|^b").is_err());
        assert!(t("(a$|b)").is_err());
    }

    #[test]
    fn groups_classes_and_quantifiers() {
        assert_eq!(t("^(?:a|b)c$").unwrap(), "(a|b)c");
        assert_eq!(t("^\\d{2,4}$").unwrap(), "[0-9]{2,4}");
        assert_eq!(t("^[\\w.-]+$").unwrap(), "[a-zA-Z0-9_.-]+");
        assert_eq!(t("^a\\sb$").unwrap(), "a[ \t\n\u{b}\u{c}\r]b");
        assert_eq!(t("^\\S+$").unwrap(), "[^ \t\n\u{b}\u{c}\r]+");
        assert_eq!(t("^a.*?b$").unwrap(), "a.*b");
        assert_eq!(t("^a{x}$").unwrap(), "a\\{x}");
        assert_eq!(t("^[]a]$").unwrap(), "[\\]a]");
    }

    #[test]
    fn lucene_operators_are_escaped_where_pcre_has_literals() {
        assert_eq!(t("^<a@b&c>~#\"$").unwrap(), "\\<a\\@b\\&c\\>\\~\\#\\\"");
        assert_eq!(t("^[<>]$").unwrap(), "[\\<\\>]");
        assert_eq!(t("^\\x41\\x2e$").unwrap(), "A\\.");
    }

    #[test]
    fn what_lucene_cannot_say_is_refused_with_the_reason() {
        for (p, why) in [
            ("a(?=b)", "lookaround"),
            ("a(?<n>b)", "named group"),
            ("\\bword\\b", "word boundary"),
            ("(a)\\1", "back-reference"),
            ("a++", "possessive"),
            ("[\\D]", "inside a class"),
            ("[[:alpha:]]", "POSIX"),
            ("(a", "unbalanced"),
            ("[a", "unclosed"),
        ] {
            let e = t(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
    }
}

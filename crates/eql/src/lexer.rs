//! Tokens of EQL (both dialects; the parser decides what each dialect accepts).

use crate::error::{EqlError, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A bare identifier or keyword.
    Ident(String),
    /// A backtick-quoted identifier: never a keyword.
    Quoted(String),
    /// A string literal. `single` records legacy single quotes.
    Str {
        value: String,
        single: bool,
    },
    Int(i64),
    Float(f64),
    /// Punctuation and operators: `== != = < <= > >= : !: + - * / % ( ) [ ] , | ! ? ~ .`
    Op(&'static str),
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// True when no whitespace or comment separates this token from the previous one (`like~`,
    /// `10s`).
    pub glued: bool,
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "!:", "=", "<", ">", ":", "+", "-", "*", "/", "%", "(", ")", "[", "]",
    ",", "|", "!", "?", "~", ".",
];

pub fn lex(src: &str) -> Result<Vec<Token>, EqlError> {
    let bytes = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut glued = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            glued = false;
            continue;
        }
        if let Some(next) = skip_comment(src, i)? {
            i = next;
            glued = false;
            continue;
        }
        let start = i;
        let (tok, next) = if c == b'"' || c == b'\'' {
            let (value, next) = lex_string(src, i, false)?;
            let single = c == b'\'';
            (Tok::Str { value, single }, next)
        } else if c == b'?' && matches!(bytes.get(i + 1), Some(b'"') | Some(b'\'')) {
            // Legacy raw string: ?"..." or ?'...' (no escapes).
            let (value, next) = lex_string(src, i + 1, true)?;
            let single = bytes[start + 1] == b'\'';
            (Tok::Str { value, single }, next)
        } else if c == b'`' {
            let (value, next) = lex_backtick_ident(src, i)?;
            (Tok::Quoted(value), next)
        } else if starts_number(bytes, i, out.last(), glued) {
            lex_number(src, i)?
        } else if is_ident_start(c) {
            let end = ident_end(bytes, i);
            (Tok::Ident(src[i..end].to_string()), end)
        } else {
            let op = lex_op(src, i)?;
            (Tok::Op(op), i + op.len())
        };
        i = next;
        out.push(Token {
            tok,
            span: Span::new(start, i),
            glued,
        });
        glued = true;
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(src.len(), src.len()),
        glued: false,
    });
    Ok(out)
}

/// When a `//` line comment or a `/* */` block comment starts at `i`, returns the index after it.
fn skip_comment(src: &str, i: usize) -> Result<Option<usize>, EqlError> {
    if src[i..].starts_with("//") {
        return Ok(Some(src[i..].find('\n').map_or(src.len(), |k| i + k)));
    }
    if src[i..].starts_with("/*") {
        return match src[i + 2..].find("*/") {
            Some(end) => Ok(Some(i + 2 + end + 2)),
            None => Err(EqlError::new(
                "unterminated comment: expected `*/`",
                Span::new(i, src.len()),
            )),
        };
    }
    Ok(None)
}

/// Lexes a backtick-quoted field name starting at the backtick at `at` (a doubled backtick
/// stands for one). Returns the name and the index after the closing backtick.
fn lex_backtick_ident(src: &str, at: usize) -> Result<(String, usize), EqlError> {
    let bytes = src.as_bytes();
    let mut value = String::new();
    let mut j = at + 1;
    loop {
        match src[j..].find('`') {
            Some(k) => {
                value.push_str(&src[j..j + k]);
                j += k + 1;
                if bytes.get(j) == Some(&b'`') {
                    value.push('`');
                    j += 1;
                } else {
                    return Ok((value, j));
                }
            }
            None => {
                return Err(EqlError::new(
                    "unterminated backtick-quoted field name",
                    Span::new(at, src.len()),
                ))
            }
        }
    }
}

/// Whether a number literal starts at `i`: a digit, or `.` and a digit unless the `.` is glued to
/// a preceding field name or `]` (then it is a field path separator, as in `a.0`).
fn starts_number(bytes: &[u8], i: usize, prev: Option<&Token>, glued: bool) -> bool {
    let c = bytes[i];
    c.is_ascii_digit()
        || (c == b'.'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && !prev.is_some_and(|t| {
                glued && matches!(t.tok, Tok::Ident(_) | Tok::Quoted(_) | Tok::Op("]"))
            }))
}

/// Lexes a number literal starting at `start`: an integer, or a float when it has a fraction or
/// an exponent or does not fit in an `i64`. Returns the token and the index after it.
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), EqlError> {
    let bytes = src.as_bytes();
    let mut j = start;
    let mut float = false;
    while j < bytes.len() && bytes[j].is_ascii_digit() {
        j += 1;
    }
    if j < bytes.len() && bytes[j] == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
    }
    if j < bytes.len() && (bytes[j] == b'e' || bytes[j] == b'E') {
        let mut k = j + 1;
        if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
            k += 1;
        }
        if k < bytes.len() && bytes[k].is_ascii_digit() {
            float = true;
            j = k;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
        }
    }
    let text = &src[start..j];
    let invalid = |_| EqlError::new("invalid number", Span::new(start, j));
    let tok = if float {
        Tok::Float(text.parse().map_err(invalid)?)
    } else {
        match text.parse::<i64>() {
            Ok(n) => Tok::Int(n),
            Err(_) => Tok::Float(text.parse().map_err(invalid)?),
        }
    };
    Ok((tok, j))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c >= 0x80
}

/// The index after the identifier starting at `i`.
fn ident_end(bytes: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < bytes.len()
        && (bytes[j].is_ascii_alphanumeric()
            || bytes[j] == b'_'
            || bytes[j] == b'@'
            || bytes[j] >= 0x80)
    {
        j += 1;
    }
    j
}

/// The operator or punctuation starting at `i` (the longest first, as `OPS` lists them).
fn lex_op(src: &str, i: usize) -> Result<&'static str, EqlError> {
    match OPS.iter().find(|op| src[i..].starts_with(**op)) {
        Some(op) => Ok(op),
        None => {
            let ch = src[i..].chars().next().unwrap_or('?');
            Err(EqlError::new(
                format!("unexpected character {ch:?}"),
                Span::new(i, i + ch.len_utf8()),
            ))
        }
    }
}

/// Lexes a string starting at the quote at `at`. Returns the value and the index after it.
fn lex_string(src: &str, at: usize, raw: bool) -> Result<(String, usize), EqlError> {
    let bytes = src.as_bytes();
    let quote = bytes[at];
    if quote == b'"' && src[at..].starts_with("\"\"\"") {
        return match src[at + 3..].find("\"\"\"") {
            Some(end) => {
                // A raw string may end with extra quotes that belong to it: `""""a""""` is `"a"`.
                let mut stop = at + 3 + end;
                while src[stop + 3..].starts_with('"') {
                    stop += 1;
                }
                Ok((src[at + 3..stop].to_string(), stop + 3))
            }
            None => Err(EqlError::new(
                "unterminated raw string: expected `\"\"\"`",
                Span::new(at, src.len()),
            )),
        };
    }
    let mut value = String::new();
    let mut i = at + 1;
    loop {
        let Some(ch) = src[i..].chars().next() else {
            return Err(EqlError::new(
                "unterminated string: expected a closing quote",
                Span::new(at, src.len()),
            ));
        };
        if ch as u32 == quote as u32 {
            return Ok((value, i + 1));
        }
        if ch == '\n' || ch == '\r' {
            return Err(EqlError::new(
                "unterminated string: a string cannot span lines (use \"\"\"...\"\"\")",
                Span::new(at, i),
            ));
        }
        if ch == '\\' && !raw {
            let Some(esc) = src[i + 1..].chars().next() else {
                return Err(EqlError::new(
                    "unterminated string: expected a closing quote",
                    Span::new(at, src.len()),
                ));
            };
            match esc {
                'n' => value.push('\n'),
                'r' => value.push('\r'),
                't' => value.push('\t'),
                'b' => value.push('\u{8}'),
                'f' => value.push('\u{c}'),
                '0' => value.push('\0'),
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                '\'' => value.push('\''),
                'u' => {
                    // \u{XXXX} (Elasticsearch) or \uXXXX.
                    let rest = &src[i + 2..];
                    let (hex, used) = if let Some(body) = rest.strip_prefix('{') {
                        match body.find('}') {
                            Some(end) => (&body[..end], end + 2),
                            None => {
                                return Err(EqlError::new(
                                    "invalid unicode escape: expected `}`",
                                    Span::new(i, i + 2),
                                ))
                            }
                        }
                    } else {
                        let n = rest
                            .char_indices()
                            .take(4)
                            .filter(|(_, c)| c.is_ascii_hexdigit())
                            .count();
                        (&rest[..n], n)
                    };
                    let cp = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                    match cp {
                        Some(c) if !hex.is_empty() && hex.len() <= 8 => value.push(c),
                        _ => {
                            return Err(EqlError::new(
                                "invalid unicode escape",
                                Span::new(i, i + 2 + used),
                            ))
                        }
                    }
                    i += 2 + used;
                    continue;
                }
                other => {
                    // Unknown escapes keep the backslash (legacy Windows paths such as "C:\Windows").
                    value.push('\\');
                    value.push(other);
                }
            }
            i += 1 + esc.len_utf8();
            continue;
        }
        value.push(ch);
        i += ch.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_escapes_and_raw() {
        assert_eq!(
            toks(r#""a\"b\n\u{41}""#)[0],
            Tok::Str {
                value: "a\"b\nA".into(),
                single: false
            }
        );
        assert_eq!(
            toks(r#""""C:\raw"x""""#)[0],
            Tok::Str {
                value: "C:\\raw\"x".into(),
                single: false
            }
        );
        assert_eq!(
            toks(r"?'\s+'")[0],
            Tok::Str {
                value: "\\s+".into(),
                single: true
            }
        );
        assert!(lex("\"open").is_err());
    }

    #[test]
    fn comments_backticks_and_numbers() {
        let t = toks("a /* x */ // y\n `odd``name` 1.5 .5 10s");
        assert_eq!(t[0], Tok::Ident("a".into()));
        assert_eq!(t[1], Tok::Quoted("odd`name".into()));
        assert_eq!(t[2], Tok::Float(1.5));
        assert_eq!(t[3], Tok::Float(0.5));
        assert_eq!(t[4], Tok::Int(10));
        assert_eq!(t[5], Tok::Ident("s".into()));
    }
}

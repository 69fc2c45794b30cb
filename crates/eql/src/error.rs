//! Errors that point at the query text.

use std::fmt;

/// A byte range in the query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A syntax or semantic error in a query, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EqlError {
    pub message: String,
    pub span: Span,
}

impl EqlError {
    pub fn new(message: impl Into<String>, span: Span) -> EqlError {
        EqlError {
            message: message.into(),
            span,
        }
    }

    /// 1-based line and column (in characters) of the error's start within `source`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let at = self.span.start.min(source.len());
        let before = &source[..floor_boundary(source, at)];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }

    /// The error as a compiler would print it: position, message, the offending line and a caret
    /// under the token. `origin` names where the query came from (a file, or `query`). Control
    /// characters in the echoed line are escaped so the query cannot drive the terminal.
    pub fn render(&self, source: &str, origin: &str) -> String {
        let (line, col) = self.line_col(source);
        let text: Vec<char> = source.lines().nth(line - 1).unwrap_or("").chars().collect();
        let width = {
            let start = floor_boundary(source, self.span.start.min(source.len()));
            let end = floor_boundary(source, self.span.end.min(source.len())).max(start);
            let token = &source[start..end];
            token.lines().next().unwrap_or("").chars().count().max(1)
        };
        // A generated query can be one line of megabytes: echo a window around the error.
        let (from, to) = if text.len() <= ECHO_WIDTH {
            (0, text.len())
        } else {
            let from = (col - 1).saturating_sub(ECHO_WIDTH / 2);
            (from, (from + ECHO_WIDTH).min(text.len()))
        };
        let mut shown: String = if from > 0 {
            "…".into()
        } else {
            String::new()
        };
        shown.extend(text[from..to].iter().copied().map(visible));
        if to < text.len() {
            shown.push('…');
        }
        let mut pad: String = if from > 0 { " ".into() } else { String::new() };
        pad.extend(
            text[from..(col - 1).min(to)]
                .iter()
                .map(|&c| if c == '\t' { '\t' } else { ' ' }),
        );
        let width = width.min(to.saturating_sub(col - 1)).max(1);
        format!(
            "error: {}\n --> {origin}:{line}:{col}\n  |\n  | {shown}\n  | {pad}{}\n",
            self.message,
            "^".repeat(width)
        )
    }
}

/// How many characters of the offending line an error echoes at most.
const ECHO_WIDTH: usize = 100;

fn visible(c: char) -> char {
    if c == '\t' || !c.is_control() {
        c
    } else {
        '\u{FFFD}'
    }
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for EqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.span.start)
    }
}

impl std::error::Error for EqlError {}

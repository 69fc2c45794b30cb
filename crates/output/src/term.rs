//! The terminal boundary: every untrusted string printed for humans goes through [`escape`].

use unithunt_event::neutral::is_display_control;

/// Escapes what a terminal acts on instead of showing ([`is_display_control`]: control
/// characters such as ESC, so ANSI sequences from logs cannot reach the terminal, C1 controls,
/// bidi controls, line separators) as `\u{..}`, or `\n`, `\t`, `\r`; everything else is kept.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_display_control(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape`] for multi-line text shown as lines (a rule's query, its guide): newlines are kept,
/// every other control character is escaped.
pub fn escape_lines(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// Whether to colour what goes to stdout: a terminal, and `NO_COLOR` unset or empty
/// (no-color.org).
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Fits a table to the width `COLUMNS` gives, else to the terminal's (comfy-table's dynamic
/// arrangement wraps the widest columns); piped without `COLUMNS`, rows stay whole.
pub fn fit(table: &mut comfy_table::Table) {
    table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 20)
    {
        table.set_width(w);
    }
}

/// A severity as a table cell, coloured when `colour` (critical and high red, medium yellow,
/// low cyan).
pub fn severity_cell(severity: &str, colour: bool) -> comfy_table::Cell {
    use comfy_table::{Attribute, Cell, Color};
    let cell = Cell::new(severity);
    if !colour {
        return cell;
    }
    match severity {
        "critical" => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        "high" => cell.fg(Color::Red),
        "medium" => cell.fg(Color::Yellow),
        "low" => cell.fg(Color::Cyan),
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, escape_lines};

    #[test]
    fn lines_keep_their_breaks_and_nothing_else() {
        assert_eq!(escape_lines("a\nb\u{1b}[2J\r"), "a\nb\\u{1b}[2J\\r");
    }

    #[test]
    fn ansi_and_controls_are_neutralised() {
        assert_eq!(escape("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(escape("x\ny\u{7}"), "x\\ny\\u{7}");
        assert_eq!(escape("\u{202e}cod.exe"), "\\u{202e}cod.exe");
        assert_eq!(escape("a\u{9b}31m\u{7f}"), "a\\u{9b}31m\\u{7f}");
        assert_eq!(escape("x\u{2028}y\u{61c}"), "x\\u{2028}y\\u{61c}");
        assert_eq!(
            escape("/etc/systemd/system/é.service"),
            "/etc/systemd/system/é.service"
        );
    }
}

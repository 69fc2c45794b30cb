//! The CSV boundary: every CSV row unithunt writes (`scan -o csv`, `hunt -o csv`) goes through
//! [`CsvOut`], every cell through [`csv_cell`].

use crate::term::escape;
use std::borrow::Cow;
use std::io::{self, Write};

/// Characters that make a spreadsheet read a cell as a formula (or, for TAB and CR, that some
/// skip before looking for one): OWASP's CSV injection list.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One cell as written: a value starting with a formula trigger gets a leading `'`, which
/// spreadsheets read as "text" — also for `-1`, as OWASP advises, since `-1+cmd|...` is a
/// formula too and no rule tells the two apart; then control characters are escaped as for the
/// terminal (CSV is read in terminals as much as in spreadsheets). Quoting (RFC 4180) is the
/// writer's job.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let text = escape(value);
    if value.starts_with(FORMULA_TRIGGERS) {
        Cow::Owned(format!("'{text}"))
    } else if text == value {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(text)
    }
}

/// A CSV writer whose every cell is a [`csv_cell`] and whose fields are quoted as RFC 4180 says
/// (when they hold `,`, `"` or a line break; `"` doubled).
pub struct CsvOut<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> CsvOut<W> {
    pub fn new(out: W) -> CsvOut<W> {
        CsvOut {
            inner: csv::Writer::from_writer(out),
        }
    }

    pub fn write_row<I, S>(&mut self, cells: I) -> io::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner
            .write_record(cells.into_iter().map(|c| csv_cell(c.as_ref()).into_owned()))
            .map_err(io::Error::other)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> String {
        let mut w = CsvOut::new(Vec::new());
        w.write_row(cells).unwrap();
        w.flush().unwrap();
        String::from_utf8(w.inner.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn formula_triggers_get_a_quote_prefix() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("+30 runs from /tmp"), "'+30 runs from /tmp");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        // A negative number is prefixed too (OWASP: `-2+3+cmd|...` is a formula as well).
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(
            csv_cell("-2+3+cmd|' /C calc'!A0"),
            "'-2+3+cmd|' /C calc'!A0"
        );
        // TAB and CR: prefixed, and shown escaped like every control character.
        assert_eq!(csv_cell("\t=1+1"), "'\\t=1+1");
        assert_eq!(csv_cell("\r=1+1"), "'\\r=1+1");
    }

    #[test]
    fn other_cells_are_kept_or_only_escaped() {
        assert!(matches!(csv_cell("systemctl enable x"), Cow::Borrowed(_)));
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("x\u{1b}[31m"), "x\\u{1b}[31m");
        // An escaped control character at the start is `\`, which no spreadsheet evaluates.
        assert_eq!(csv_cell("\u{1b}=1"), "\\u{1b}=1");
    }

    #[test]
    fn rows_are_quoted_as_rfc_4180_says_after_neutralising() {
        assert_eq!(
            row(&["=cmd|' /C calc'!A0", "a,b", "say \"hi\"", "plain"]),
            "'=cmd|' /C calc'!A0,\"a,b\",\"say \"\"hi\"\"\",plain\n"
        );
        assert_eq!(row(&["=1,2"]), "\"'=1,2\"\n");
        // A line break is escaped, so a row stays one line.
        assert_eq!(row(&["a\nb"]), "a\\nb\n");
    }
}

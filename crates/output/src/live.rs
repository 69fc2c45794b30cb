//! `watch`'s printer: a line per alert as it is raised (a live run cannot hold a table to its end).

use crate::term::escape;
use crate::AlertSink;
use serde_json::Value as Json;
use std::io::{self, Write};
use unithunt_event::neutral;

/// How [`LinePrinter`] writes an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// Time, severity, rule, and the file or command line, escaped for the terminal.
    Table,
    /// The alert document, neutral JSON, one per line.
    Ndjson,
}

/// A line per alert on `out`, flushed after each.
pub struct LinePrinter<W: Write> {
    format: LineFormat,
    out: W,
    count: u64,
}

impl<W: Write> LinePrinter<W> {
    pub fn new(format: LineFormat, out: W) -> LinePrinter<W> {
        LinePrinter {
            format,
            out,
            count: 0,
        }
    }
}

impl<W: Write> AlertSink for LinePrinter<W> {
    fn alert(&mut self, alert: &Json) -> io::Result<()> {
        match self.format {
            LineFormat::Ndjson => {
                let mut line = neutral::to_vec(alert)?;
                line.push(b'\n');
                self.out.write_all(&line)?;
            }
            LineFormat::Table => {
                // Building blocks stay out of the queue an analyst watches (they are in the
                // journal and in `-o ndjson`), as Elastic keeps them out of its alerts table.
                if alert.get("kibana.alert.building_block_type").is_some() {
                    return Ok(());
                }
                let f = |k: &str| alert[k].as_str().unwrap_or("").to_string();
                let what = alert["file"]["path"]
                    .as_str()
                    .or(alert["process"]["command_line"].as_str())
                    .unwrap_or("");
                writeln!(
                    self.out,
                    "{}  {:<8}  {}  {}",
                    escape(alert["@timestamp"].as_str().unwrap_or("")),
                    escape(&f("kibana.alert.severity")),
                    escape(&f("kibana.alert.rule.name")),
                    escape(what)
                )?;
            }
        }
        self.count += 1;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.count)
    }
}

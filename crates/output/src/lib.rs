//! Where alerts go, and the one neutraliser per medium on the way.
//!
//! # Brief overview
//!
//! - [`AlertSink`]: takes alerts one at a time, in order, and says how many it took at the end.
//!   Implemented by [`Printer`] (`scan`'s table, NDJSON, JSON array and CSV; workers render alerts
//!   in parallel with [`render`] and the printer writes them in order) and [`LinePrinter`]
//!   (`watch`'s line per alert as it is raised); `watch`'s journal (in `unithunt-pipeline`); and
//!   any [`transport::Transport`] through [`transport::Delivering`].
//! - Remote media: [`transport::Transport`] (whole alert lines delivered, or how many were),
//!   implemented by [`http::Http`] (Elasticsearch `_bulk`, idempotent by alert id) and
//!   [`syslog::Syslog`] (RFC 5424 over UDP, TCP or a local socket).
//! - Neutralisers: [`term::escape`] for every text a terminal shows, [`csv_out::csv_cell`] (through
//!   [`csv_out::CsvOut`]) for every spreadsheet cell; JSON goes through `unithunt_event::neutral`.
//!
//! ```
//! use unithunt_output::{AlertSink, LineFormat, LinePrinter};
//! let mut out = Vec::new();
//! let mut printer = LinePrinter::new(LineFormat::Table, &mut out);
//! let alert = serde_json::json!({
//!     "@timestamp": "2026-11-27T10:00:00Z", "kibana.alert.severity": "high",
//!     "kibana.alert.rule.name": "Detect Systemd Service",
//!     "file": {"path": "/etc/systemd/system/\u{1b}[31mx.service"},
//! });
//! printer.alert(&alert).unwrap();
//! assert_eq!(printer.finish().unwrap(), 1);
//! drop(printer);
//! let line = String::from_utf8(out).unwrap();
//! assert!(line.contains("Detect Systemd Service") && line.contains("\\u{1b}[31mx.service"));
//! ```

pub mod csv_out;
pub mod http;
mod live;
mod printer;
pub mod syslog;
pub mod term;
pub mod transport;

pub use live::{LineFormat, LinePrinter};
pub use printer::{render, OutputFormat, Printer, Rendered, CSV_HEADER};

use serde_json::Value as Json;

/// Where alerts go, one at a time, in the order they were raised.
pub trait AlertSink {
    /// Takes one alert. An error means the sink cannot take more (its medium is gone).
    fn alert(&mut self, alert: &Json) -> std::io::Result<()>;
    /// Ends the output; how many alerts it showed.
    fn finish(&mut self) -> std::io::Result<u64>;
}

/// No sink at all (`-o none`): takes every alert, shows none.
impl<S: AlertSink> AlertSink for Option<S> {
    fn alert(&mut self, alert: &Json) -> std::io::Result<()> {
        self.as_mut().map_or(Ok(()), |s| s.alert(alert))
    }

    fn finish(&mut self) -> std::io::Result<u64> {
        self.as_mut().map_or(Ok(0), |s| s.finish())
    }
}

//! The printers: alerts as NDJSON, one JSON array, CSV, or a compact table for humans.

use crate::csv_out::CsvOut;
use crate::term::escape;
use crate::AlertSink;
use serde_json::Value as Json;
use std::io::{self, BufWriter, Write};
use unithunt_event::{lookup_one, neutral, FieldPath};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// A compact table (time, host, user, rule, severity, what happened).
    Table,
    /// One alert document per line, as Elastic Security stores them.
    Ndjson,
    /// All alerts as one JSON array.
    Json,
    /// One row per alert.
    Csv,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Table,
        OutputFormat::Ndjson,
        OutputFormat::Json,
        OutputFormat::Csv,
    ];

    /// The name `-o` takes.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
        }
    }

    /// One line on the format (for `--help`).
    pub fn about(self) -> &'static str {
        match self {
            OutputFormat::Table => {
                "a compact table (time, host, user, rule, severity, what happened)"
            }
            OutputFormat::Ndjson => "one alert document per line, as Elastic Security stores them",
            OutputFormat::Json => "all alerts as one JSON array",
            OutputFormat::Csv => "one row per alert",
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<OutputFormat, String> {
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown output format `{s}`"))
    }
}

/// Prints alerts on standard output in an [`OutputFormat`].
pub struct Printer {
    format: OutputFormat,
    out: BufWriter<io::Stdout>,
    rows: Vec<[String; 6]>,
    /// Table: what each building block of a sequence not yet shown did, by group, so the
    /// sequence's row says it (`bash wrote /etc/systemd/system/x.service → systemctl ran ...`).
    blocks: Vec<(String, String)>,
    /// Building blocks seen (in every format: the table shows them through their sequence).
    building_blocks: u64,
    csv: Option<CsvOut<BufWriter<io::Stdout>>>,
    count: u64,
    /// Stdout went away (e.g. `| head`): stop writing, keep counting.
    closed: bool,
}

fn field(doc: &Json, path: &str) -> String {
    match lookup_one(doc, &FieldPath::parse(path)) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Json::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// Alert documents use flat dotted keys for `kibana.*`; read those directly.
fn flat(doc: &Json, key: &str) -> String {
    match doc.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// An alert made ready for output: serialisation and field extraction can run in parallel, only
/// the write is sequential.
pub enum Rendered {
    /// JSON text (NDJSON line or array element), without separator.
    Line(Vec<u8>),
    Record(Vec<String>),
    Row(Box<[String; 6]>),
    /// Not shown in this format (building blocks in the table).
    Skip,
}

/// Renders an alert for a format.
pub fn render(format: OutputFormat, a: &Json) -> Rendered {
    match format {
        OutputFormat::Ndjson | OutputFormat::Json => {
            Rendered::Line(neutral::to_vec(a).unwrap_or_default())
        }
        // Cells are neutralised as they are written (`CsvOut`).
        OutputFormat::Csv => Rendered::Record(vec![
            field(a, "@timestamp"),
            field(a, "host.name"),
            field(a, "user.name"),
            flat(a, "kibana.alert.rule.rule_id"),
            flat(a, "kibana.alert.rule.name"),
            flat(a, "kibana.alert.severity"),
            flat(a, "kibana.alert.risk_score"),
            flat(a, "kibana.alert.reason"),
            field(a, "process.command_line"),
            field(a, "file.path"),
            flat(a, "kibana.alert.uuid"),
        ]),
        OutputFormat::Table => {
            if a.get("kibana.alert.building_block_type").is_some() {
                // Building blocks are shown through their sequence's shell alert.
                return Rendered::Skip;
            }
            let what = what_happened(a);
            Rendered::Row(Box::new([
                field(a, "@timestamp"),
                field(a, "host.name"),
                field(a, "user.name"),
                flat(a, "kibana.alert.rule.name"),
                flat(a, "kibana.alert.severity"),
                what,
            ]))
        }
    }
}

/// What an alert's event did, in a few words: the file it wrote, or the command it ran.
fn what_happened(a: &Json) -> String {
    let cmd = field(a, "process.command_line");
    let file = field(a, "file.path");
    match (cmd.is_empty(), file.is_empty()) {
        (_, false) => format!("{} wrote {}", field(a, "process.name"), file),
        (false, true) => format!("{} ran {}", field(a, "process.parent.name"), cmd),
        _ => flat(a, "kibana.alert.reason"),
    }
}

pub const CSV_HEADER: [&str; 11] = [
    "timestamp",
    "host",
    "user",
    "rule_id",
    "rule",
    "severity",
    "risk_score",
    "reason",
    "process",
    "file",
    "alert_id",
];

impl Printer {
    pub fn new(format: OutputFormat) -> Printer {
        let mut sink = Printer {
            format,
            out: BufWriter::new(io::stdout()),
            rows: Vec::new(),
            blocks: Vec::new(),
            building_blocks: 0,
            csv: None,
            count: 0,
            closed: false,
        };
        match format {
            OutputFormat::Json => sink.write_raw(b"["),
            OutputFormat::Csv => {
                let mut w = CsvOut::new(BufWriter::new(io::stdout()));
                if w.write_row(CSV_HEADER).is_err() {
                    sink.closed = true;
                }
                sink.csv = Some(w);
            }
            _ => {}
        }
        sink
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        if !self.closed && self.out.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    /// Writes `n` alerts given as NDJSON text (one per line, each ending in a newline).
    pub fn emit_ndjson_block(&mut self, text: &[u8], n: u64) {
        if n == 0 {
            return;
        }
        match self.format {
            OutputFormat::Ndjson => {
                self.count += n;
                self.write_raw(text);
            }
            _ => {
                // JSON text never holds a raw newline, so lines are alerts.
                for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    self.emit(Rendered::Line(line.to_vec()));
                }
            }
        }
    }

    /// Writes an alert rendered by [`render`] (possibly on another thread).
    pub fn emit(&mut self, r: Rendered) {
        match r {
            Rendered::Skip => {}
            Rendered::Line(mut bytes) => {
                self.count += 1;
                if self.format == OutputFormat::Json {
                    let sep: &[u8] = if self.count == 1 { b"\n" } else { b",\n" };
                    self.write_raw(sep);
                } else {
                    bytes.push(b'\n');
                }
                self.write_raw(&bytes);
            }
            Rendered::Record(record) => {
                self.count += 1;
                if let Some(w) = &mut self.csv {
                    if !self.closed && w.write_row(&record).is_err() {
                        self.closed = true;
                    }
                }
            }
            Rendered::Row(row) => {
                self.count += 1;
                self.rows.push(*row);
            }
        }
    }

    fn end(&mut self) -> u64 {
        match self.format {
            OutputFormat::Json => {
                let end: &[u8] = if self.count == 0 { b"]\n" } else { b"\n]\n" };
                self.write_raw(end);
            }
            OutputFormat::Table => {
                // In time order, sequences among the events (they are decided at their last
                // event, and printed after): ISO-8601 UTC sorts as text; ties keep their order.
                self.rows.sort_by(|a, b| a[0].cmp(&b[0]));
                let mut t = comfy_table::Table::new();
                t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
                crate::term::fit(&mut t);
                let colour = crate::term::colour();
                t.set_header(["time", "host", "user", "rule", "severity", "what happened"]);
                // A timestamp broken over two lines is hard to read: it keeps its width.
                if let Some(c) = t.column_mut(0) {
                    c.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                        comfy_table::Width::Fixed(26),
                    ));
                }
                for r in &self.rows {
                    // Untrusted text from logs: escaped before it reaches the terminal, and
                    // shortened so one event cannot flood it.
                    t.add_row(
                        r.iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let text = clip(&escape(c), 120);
                                if i == 4 {
                                    crate::term::severity_cell(&text, colour)
                                } else {
                                    comfy_table::Cell::new(text)
                                }
                            })
                            .collect::<Vec<_>>(),
                    );
                }
                if !self.rows.is_empty() {
                    let text = format!("{t}\n");
                    self.write_raw(text.as_bytes());
                } else {
                    self.write_raw(b"no alerts\n");
                }
            }
            _ => {}
        }
        if let Some(w) = &mut self.csv {
            let _ = w.flush();
        }
        let _ = self.out.flush();
        self.count
    }
}

impl Printer {
    /// Building blocks of sequences among the alerts (printed as documents by `-o ndjson`,
    /// `json` and `csv`; the table shows them through their sequence's row).
    pub fn building_blocks(&self) -> u64 {
        self.building_blocks
    }
}

impl AlertSink for Printer {
    fn alert(&mut self, a: &Json) -> io::Result<()> {
        let block = a.get("kibana.alert.building_block_type").is_some();
        if block {
            self.building_blocks += 1;
        }
        let group = a.get("kibana.alert.group.id").and_then(Json::as_str);
        if let (OutputFormat::Table, Some(group)) = (self.format, group) {
            if block {
                self.blocks.push((group.to_string(), what_happened(a)));
                return Ok(());
            }
            // The sequence's row says what its building blocks did, in order.
            let whats: Vec<String> = self
                .blocks
                .iter()
                .filter(|(g, _)| g == group)
                .map(|(_, w)| w.clone())
                .collect();
            self.blocks.retain(|(g, _)| g != group);
            let mut r = render(self.format, a);
            if let (Rendered::Row(row), false) = (&mut r, whats.is_empty()) {
                row[5] = whats.join(" → ");
            }
            self.emit(r);
            return Ok(());
        }
        let r = render(self.format, a);
        self.emit(r);
        Ok(())
    }

    /// Ends the output; the number of alerts (shells and events, not building blocks, for the
    /// table). Stdout going away (`| head`) is not an error: alerts are still counted.
    fn finish(&mut self) -> io::Result<u64> {
        Ok(self.end())
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

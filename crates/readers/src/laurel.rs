//! LAUREL JSON (threathunters-io/laurel): one audit event per line, records by type
//! (`SYSCALL`, `EXECVE`, `CWD`, `PROCTITLE` objects; `PATH`, `SOCKADDR` lists), the event id in
//! `ID` (`SEC.MSEC:SERIAL`) and `NODE`.
//!
//! Each line is turned back into the records it was made from and mapped by the same code as raw
//! audit logs ([`crate::auditd::ecs::to_ecs`]), with the same process table: the two readers give
//! the same ECS for the same events (a test holds them to it on LAUREL's own fixtures).
//! LAUREL's own enrichments (`PPID`, `SPAWNED_BY`, `PARENT_INFO`) are not used, so that parents
//! come from the stream in both readers alike.

use crate::auditd::ecs::to_ecs;
use crate::auditd::proctable::ProcessTable;
use crate::auditd::record::{Field, Record};
use crate::auditd::PROCESS_TABLE;
use crate::{pooled_buffer, Block, Converted};
use serde_json::Value as Json;

/// True when the text starts like LAUREL output: a JSON object whose first key is `ID`.
pub fn sniff(text: &[u8]) -> bool {
    let t = text.trim_ascii_start();
    t.starts_with(b"{\"ID\":\"")
}

/// LAUREL escapes `%`, `+`, control characters and bytes that are not UTF-8 as `%XX`.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A record rebuilt from JSON: owned field texts (`Record` borrows them).
struct OwnedRecord {
    rtype: String,
    fields: Vec<(String, String, bool)>,
    enriched: Vec<(String, String, bool)>,
}

/// A JSON value as audit text: strings as written (quoted), numbers bare, `null` as `(null)`,
/// LAUREL's normalised numbers (`0x...`, `0o...`) back to the kernel's spelling.
fn field_text(key: &str, v: &Json) -> Option<(String, bool)> {
    Some(match v {
        Json::String(s) => {
            if let Some(hex) = s.strip_prefix("0x").filter(|_| key == "arch") {
                (hex.to_string(), false)
            } else if let Some(oct) = s.strip_prefix("0o") {
                (format!("0{oct}"), false)
            } else {
                (percent_decode(s), true)
            }
        }
        Json::Number(n) => (n.to_string(), false),
        Json::Bool(b) => (if *b { "yes" } else { "no" }.to_string(), false),
        Json::Null => ("(null)".to_string(), false),
        _ => return None,
    })
}

fn record_of(rtype: &str, obj: &serde_json::Map<String, Json>) -> OwnedRecord {
    let mut rec = OwnedRecord {
        rtype: rtype.to_string(),
        fields: Vec::new(),
        enriched: Vec::new(),
    };
    for (k, v) in obj {
        match (rtype, k.as_str()) {
            ("EXECVE", "ARGV") => {
                for (i, a) in v.as_array().into_iter().flatten().enumerate() {
                    if let Some((t, q)) = field_text("a", a) {
                        rec.fields.push((format!("a{i}"), t, q));
                    }
                }
            }
            ("PROCTITLE", "ARGV") => {
                let args: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(percent_decode))
                    .collect();
                let hex: String = args
                    .join("\0")
                    .bytes()
                    .map(|b| format!("{b:02X}"))
                    .collect();
                rec.fields.push(("proctitle".into(), hex, false));
            }
            // The syscall's raw arguments a0..a3.
            ("SYSCALL", "ARGV") => {
                for (i, a) in v.as_array().into_iter().flatten().enumerate() {
                    if let Some(s) = a.as_str() {
                        let hex = s.strip_prefix("0x").unwrap_or(s);
                        rec.fields.push((format!("a{i}"), hex.to_string(), false));
                    }
                }
            }
            // LAUREL's own enrichments: left out (see the module comment).
            (_, "PPID" | "SPAWNED_BY" | "PARENT_INFO" | "LABELS") => {}
            _ => {
                let Some((t, q)) = field_text(k, v) else {
                    continue;
                };
                let upper = k.chars().any(|c| c.is_ascii_uppercase())
                    && !k.chars().any(|c| c.is_ascii_lowercase());
                if upper {
                    rec.enriched.push((k.clone(), t, q));
                } else {
                    rec.fields.push((k.clone(), t, q));
                }
            }
        }
    }
    rec
}

/// Converts LAUREL lines to ECS NDJSON, block by block.
pub struct LaurelTranscoder {
    table: ProcessTable,
    /// Lines seen in the current file.
    pub lines: u64,
    pub events: u64,
    /// Keep each event's records under `auditd.records` (on by default).
    pub raw_records: bool,
}

impl Default for LaurelTranscoder {
    fn default() -> Self {
        LaurelTranscoder::new()
    }
}

impl LaurelTranscoder {
    pub fn new() -> LaurelTranscoder {
        LaurelTranscoder {
            table: ProcessTable::new(PROCESS_TABLE),
            lines: 0,
            events: 0,
            raw_records: true,
        }
    }

    /// One LAUREL line to one ECS document, or why not.
    pub fn event(&mut self, line: &[u8]) -> Result<crate::doc::Doc, String> {
        let v: Json = serde_json::from_slice(line)
            .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let id = obj
            .get("ID")
            .and_then(Json::as_str)
            .ok_or("no `ID` (not LAUREL output)")?;
        let (stamp, serial) = id.split_once(':').ok_or("`ID` without a serial")?;
        let serial: u64 = serial.parse().map_err(|_| "bad serial in `ID`")?;
        let node = obj.get("NODE").and_then(Json::as_str);
        let header = format!(
            "{}type=X msg=audit({stamp}:{serial}): ",
            node.map(|n| format!("node={n} ")).unwrap_or_default()
        );
        let base = crate::auditd::record::parse_record(&header)?;
        let mut owned = Vec::new();
        for (k, v) in obj {
            match v {
                Json::Object(o) => owned.push(record_of(k, o)),
                Json::Array(items) => {
                    for o in items.iter().filter_map(Json::as_object) {
                        owned.push(record_of(k, o));
                    }
                }
                _ => {}
            }
        }
        // SYSCALL first, as the kernel writes it (the mapping does not depend on it, ids do).
        owned.sort_by_key(|r| r.rtype != "SYSCALL");
        if owned.is_empty() {
            return Err("no records in the event".into());
        }
        let records: Vec<Record<'_>> = owned
            .iter()
            .map(|o| Record {
                node: base.node,
                rtype: &o.rtype,
                stamp: base.stamp,
                time_ms: base.time_ms,
                serial,
                fields: o
                    .fields
                    .iter()
                    .map(|(k, v, q)| Field {
                        key: k,
                        value: v,
                        quoted: *q,
                    })
                    .collect(),
                enriched: o
                    .enriched
                    .iter()
                    .map(|(k, v, q)| Field {
                        key: k,
                        value: v,
                        quoted: *q,
                    })
                    .collect(),
            })
            .collect();
        self.events += 1;
        Ok(to_ecs(&records, &mut self.table, self.raw_records))
    }

    /// Converts a block of LAUREL lines into a block of ECS NDJSON.
    pub fn convert(&mut self, raw: Block) -> Block {
        let mut lines = self.lines;
        let block = crate::lines::convert_lines(self, &mut lines, &raw);
        self.lines = lines;
        block
    }

    /// End of a file: line numbers restart (the process table carries over). Every line is an
    /// event, so nothing is left open: the block is empty.
    pub fn finish_file(&mut self, file: std::sync::Arc<str>, offset: u64) -> Block {
        self.lines = 0;
        Block::from_converted(file, pooled_buffer(), offset, Converted::default())
    }
}

impl crate::lines::LineConverter for LaurelTranscoder {
    fn line(&mut self, line: &[u8]) -> Result<Option<crate::doc::Doc>, String> {
        self.event(line).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%20b%25c"), "a b%c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("é%"), "é%");
        assert_eq!(percent_decode("%é1"), "%é1");
    }
}

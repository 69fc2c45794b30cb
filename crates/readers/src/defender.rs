//! Microsoft Defender for Endpoint Advanced Hunting exports of `DeviceProcessEvents` and
//! `DeviceFileEvents`: CSV with a header row (the portal's export), or JSON rows (one object per
//! line, a JSON array of them, or the API's `{"Schema": [...], "Results": [...]}`).
//!
//! Columns per Microsoft's Advanced Hunting schema reference for the two tables. The initiating
//! process is the actor: for process events it is the new process's parent; for file events it is
//! the process that wrote the file, and its parent is `InitiatingProcessParent*`. Mapped to the ECS
//! shape the other readers produce (docs/formats/defender.md).

use crate::doc::{Doc, Val};
use serde_json::Value as Json;

/// The columns that identify an Advanced Hunting export of these tables.
const SIGNATURE: [&str; 3] = ["Timestamp", "DeviceName", "ActionType"];

/// True when the text starts with a CSV header naming the Advanced Hunting columns.
pub fn sniff_csv(text: &[u8]) -> bool {
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let first = first.trim_start_matches('\u{feff}');
    SIGNATURE
        .iter()
        .all(|c| first.split(',').any(|h| h.trim().trim_matches('"') == *c))
}

/// True when the text starts with JSON rows of an Advanced Hunting export.
pub fn sniff_json(text: &[u8]) -> bool {
    let head = &text[..text.len().min(4096)];
    let t = head.trim_ascii_start();
    (t.starts_with(b"{") || t.starts_with(b"["))
        && SIGNATURE
            .iter()
            .all(|c| memchr::memmem::find(head, format!("\"{c}\"").as_bytes()).is_some())
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `FolderPath` is the folder for some rows and the full path for others (process rows carry the
/// image's path): joined with `FileName` unless it already ends with it.
fn full_path(folder: &str, name: &str) -> String {
    if name.is_empty() || basename(folder) == name {
        folder.to_string()
    } else if folder.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", folder.trim_end_matches('/'))
    }
}

fn args_of(command_line: &str) -> Vec<String> {
    command_line
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// One row (column name → value; empty cells absent) to ECS.
pub fn to_ecs(row: &dyn Fn(&str) -> Option<String>) -> Result<Doc, String> {
    let action = row("ActionType").ok_or("row without ActionType")?;
    let mut doc = Doc::new();
    let ts = row("Timestamp").ok_or("row without Timestamp")?;
    doc.set("@timestamp", ts);
    doc.set("event.kind", "event");
    doc.set("event.module", "microsoft_defender_endpoint");
    doc.set("event.provider", action.clone());
    if let Some(h) = row("DeviceName") {
        doc.set("host.name", h);
    }
    if let Some(id) = row("DeviceId") {
        doc.set("host.id", id);
    }
    if let Some(r) = row("ReportId") {
        doc.set("event.id", r);
    }
    // The initiating process, at `prefix`, and its parent one level up.
    let initiating = |doc: &mut Doc, prefix: &str, parent: &str| {
        if let Some(name) = row("InitiatingProcessFileName") {
            let folder = row("InitiatingProcessFolderPath").unwrap_or_default();
            doc.set(format!("{prefix}.name"), name.clone());
            doc.set(format!("{prefix}.executable"), full_path(&folder, &name));
        }
        if let Some(cl) = row("InitiatingProcessCommandLine") {
            let args = args_of(&cl);
            doc.set(format!("{prefix}.args_count"), args.len());
            doc.set(format!("{prefix}.args"), args);
            doc.set(format!("{prefix}.command_line"), cl);
        }
        if let Some(pid) = row("InitiatingProcessId").and_then(|p| p.parse::<i64>().ok()) {
            doc.set(format!("{prefix}.pid"), pid);
        }
        if let Some(u) = row("InitiatingProcessAccountName") {
            doc.set(format!("{prefix}.user.name"), u);
        }
        if let Some(name) = row("InitiatingProcessParentFileName") {
            doc.set(format!("{parent}.name"), name);
        }
        if let Some(pid) = row("InitiatingProcessParentId").and_then(|p| p.parse::<i64>().ok()) {
            doc.set(format!("{parent}.pid"), pid);
        }
    };
    match action.as_str() {
        "ProcessCreated" => {
            doc.set("event.category", ["process"]);
            doc.set("event.type", ["start"]);
            doc.set("event.action", "exec");
            let name = row("FileName").unwrap_or_default();
            let folder = row("FolderPath").unwrap_or_default();
            doc.set("process.name", name.clone());
            doc.set("process.executable", full_path(&folder, &name));
            if let Some(cl) = row("ProcessCommandLine") {
                let args = args_of(&cl);
                doc.set("process.args_count", args.len());
                doc.set("process.args", args);
                doc.set("process.command_line", cl);
            }
            if let Some(pid) = row("ProcessId").and_then(|p| p.parse::<i64>().ok()) {
                doc.set("process.pid", pid);
            }
            if let Some(u) = row("AccountName") {
                doc.set("user.name", u);
            }
            initiating(&mut doc, "process.parent", "process.Ext.grandparent");
            let names: Vec<String> = [
                "InitiatingProcessFileName",
                "InitiatingProcessParentFileName",
            ]
            .iter()
            .filter_map(|c| row(c))
            .collect();
            if !names.is_empty() {
                doc.set("process.Ext.ancestry_names", Val::List(names));
            }
        }
        "FileCreated" | "FileModified" | "FileRenamed" | "FileDeleted" => {
            let (types, act): (&[&str], &str) = match action.as_str() {
                "FileCreated" => (&["creation"], "creation"),
                "FileModified" => (&["change"], "modification"),
                // A rename into place creates the new name (as for audit logs).
                "FileRenamed" => (&["creation", "change"], "rename"),
                _ => (&["deletion"], "deletion"),
            };
            doc.set("event.category", ["file"]);
            doc.set("event.type", types);
            doc.set("event.action", act);
            let name = row("FileName").unwrap_or_default();
            let path = full_path(&row("FolderPath").unwrap_or_default(), &name);
            let file_name = basename(&path).to_string();
            doc.set("file.name", file_name.clone());
            let dir = path[..path.len() - file_name.len()].trim_end_matches('/');
            doc.set("file.directory", if dir.is_empty() { "/" } else { dir });
            if let Some((stem, ext)) = file_name.rsplit_once('.') {
                if !stem.is_empty() && !ext.is_empty() {
                    doc.set("file.extension", ext);
                }
            }
            doc.set("file.path", path);
            if let Some(prev) = row("PreviousFileName") {
                let folder = row("PreviousFolderPath").unwrap_or_default();
                doc.set("file.Ext.original.path", full_path(&folder, &prev));
            }
            if let Some(h) = row("SHA256") {
                doc.set("file.hash.sha256", h);
            }
            initiating(&mut doc, "process", "process.parent");
            if let Some(u) = row("InitiatingProcessAccountName") {
                doc.set("user.name", u);
            }
            let names: Vec<String> = ["InitiatingProcessParentFileName"]
                .iter()
                .filter_map(|c| row(c))
                .collect();
            if !names.is_empty() {
                doc.set("process.Ext.ancestry_names", Val::List(names));
            }
        }
        other => doc.set("event.action", other.to_string()),
    }
    Ok(doc)
}

/// Reads a CSV export: every row to ECS, or why not (with the 1-based line of the row).
pub struct CsvRows {
    header: Option<Vec<String>>,
}

impl Default for CsvRows {
    fn default() -> Self {
        CsvRows::new()
    }
}

impl CsvRows {
    pub fn new() -> CsvRows {
        CsvRows { header: None }
    }

    /// Starts a new file (its header comes next).
    pub fn reset(&mut self) {
        self.header = None;
    }

    /// One physical line of CSV (rows of these tables hold no newlines: Defender escapes them).
    /// `Ok(None)` for the header.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<Doc>, String> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line);
        let rec = rdr
            .records()
            .next()
            .ok_or("empty CSV line")?
            .map_err(|e| format!("malformed CSV: {e}"))?;
        let cells: Vec<String> = rec.iter().map(|c| c.to_string()).collect();
        let Some(header) = &self.header else {
            let h: Vec<String> = cells
                .iter()
                .map(|c| c.trim_start_matches('\u{feff}').trim().to_string())
                .collect();
            if !SIGNATURE.iter().all(|s| h.iter().any(|c| c == s)) {
                return Err("CSV header without Timestamp, DeviceName and ActionType".into());
            }
            self.header = Some(h);
            return Ok(None);
        };
        if cells.len() != header.len() {
            return Err(format!(
                "CSV row with {} cells under a header of {}",
                cells.len(),
                header.len()
            ));
        }
        let get = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .map(|i| cells[i].clone())
                .filter(|v| !v.is_empty())
        };
        to_ecs(&get).map(Some)
    }
}

/// One JSON row to ECS.
pub fn json_row(row: &Json) -> Result<Doc, String> {
    let obj = row.as_object().ok_or("a row is not a JSON object")?;
    let get = |name: &str| match obj.get(name) {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if s.is_empty() => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    to_ecs(&get)
}

/// The tables whose rows are read.
const TABLES: [&str; 2] = ["DeviceProcessEvents", "DeviceFileEvents"];

/// The rows of a JSON value: the value itself, or, for the streaming API's Event Hubs message
/// (`{"records": [{"time", "tenantId", "category": "AdvancedHunting-TABLE", "properties": ROW}]}`),
/// each record's row, or why a record holds none this reader reads.
pub fn rows_of(value: Json) -> Vec<Result<Json, String>> {
    let Json::Object(mut o) = value else {
        return vec![Ok(value)];
    };
    let Some(Json::Array(records)) = o.remove("records") else {
        return vec![Ok(Json::Object(o))];
    };
    records
        .into_iter()
        .map(|mut r| {
            let table = r["category"]
                .as_str()
                .map(|c| c.trim_start_matches("AdvancedHunting-").to_string());
            if let Some(t) = table.filter(|t| !TABLES.contains(&t.as_str())) {
                return Err(format!(
                    "a {t} record: only DeviceProcessEvents and DeviceFileEvents are read"
                ));
            }
            match r.get_mut("properties").map(Json::take) {
                Some(row @ Json::Object(_)) => Ok(row),
                _ => Err("a record without its properties object".to_string()),
            }
        })
        .collect()
}

impl crate::lines::LineConverter for DefenderConverter {
    fn line(&mut self, line: &[u8]) -> Result<Option<Doc>, String> {
        if self.json {
            serde_json::from_slice::<Json>(line)
                .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))
                .and_then(|v| json_row(&v))
                .map(Some)
        } else {
            self.csv.line(line)
        }
    }

    /// A JSON line may be an Event Hubs message of several records: each read, and the ones
    /// not read said together (one line, one account).
    fn line_docs(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if !self.json {
            if let Some(doc) = self.csv.line(line)? {
                doc.write_json(out);
                out.push(b'\n');
            }
            return Ok(());
        }
        let value = serde_json::from_slice::<Json>(line)
            .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))?;
        let rows = rows_of(value);
        let total = rows.len();
        let mut failed = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            match row.and_then(|r| json_row(&r)) {
                Ok(doc) => {
                    doc.write_json(out);
                    out.push(b'\n');
                }
                Err(reason) => failed.push((i + 1, reason)),
            }
        }
        match failed.as_slice() {
            [] => Ok(()),
            [(_, reason)] if total == 1 => Err(reason.clone()),
            [(i, reason), rest @ ..] => Err(format!(
                "record {i} of {total}: {reason}{}",
                if rest.is_empty() {
                    String::new()
                } else {
                    format!(" (and {} more record(s) not read)", rest.len())
                }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_process_and_file_rows() {
        let mut r = CsvRows::new();
        let header = b"Timestamp,DeviceId,DeviceName,ActionType,FileName,FolderPath,ProcessId,ProcessCommandLine,AccountName,InitiatingProcessFileName,InitiatingProcessFolderPath,InitiatingProcessId,InitiatingProcessCommandLine,InitiatingProcessParentFileName,InitiatingProcessParentId,ReportId";
        assert!(sniff_csv(header));
        assert!(r.line(header).unwrap().is_none());
        let row = b"2026-11-27T19:07:10.136Z,d1,web01,ProcessCreated,systemctl,/usr/bin/systemctl,22866,\"systemctl enable acme.service\",root,bash,/usr/bin/bash,22865,bash,sshd,900,11";
        let d = r.line(row).unwrap().unwrap().into_json();
        assert_eq!(d["process"]["name"], "systemctl");
        assert_eq!(d["process"]["executable"], "/usr/bin/systemctl");
        assert_eq!(d["process"]["args"][1], "enable");
        assert_eq!(d["process"]["parent"]["name"], "bash");
        assert_eq!(d["process"]["parent"]["pid"], 22865);
        assert_eq!(
            d["process"]["Ext"]["ancestry_names"],
            serde_json::json!(["bash", "sshd"])
        );
        assert!(r.line(b"1,2").unwrap_err().contains("cells"));
    }

    #[test]
    fn json_file_row() {
        let row = serde_json::json!({"Timestamp": "2026-11-27T19:07:10Z", "DeviceName": "web01",
            "ActionType": "FileCreated", "FileName": "acme.service", "FolderPath": "/etc/systemd/system",
            "InitiatingProcessFileName": "bash", "InitiatingProcessFolderPath": "/usr/bin/bash",
            "InitiatingProcessParentFileName": "sshd", "InitiatingProcessId": 5});
        let d = json_row(&row).unwrap().into_json();
        assert_eq!(d["file"]["path"], "/etc/systemd/system/acme.service");
        assert_eq!(d["file"]["extension"], "service");
        assert_eq!(d["process"]["name"], "bash");
        assert_eq!(d["process"]["pid"], 5);
        assert_eq!(d["process"]["parent"]["name"], "sshd");
    }

    /// The streaming API's Event Hubs message (Microsoft Learn, "Configure Microsoft Defender
    /// for Endpoint to stream Advanced Hunting events to your Azure Event Hubs": `records`, each
    /// with `time`, `tenantId`, `category` = `AdvancedHunting-TABLE` and the row in
    /// `properties`), as a Kafka consumer of the hub gets it: one line, several events.
    #[test]
    fn an_event_hubs_message_is_read_record_by_record() {
        use crate::lines::LineConverter;
        let row = |action: &str, name: &str| {
            serde_json::json!({"Timestamp": "2026-11-27T19:07:10Z", "DeviceName": "web01",
                "ActionType": action, "FileName": name, "FolderPath": "/etc/systemd/system",
                "InitiatingProcessFileName": "bash", "InitiatingProcessFolderPath": "/usr/bin/bash"})
        };
        let record = |table: &str, properties: Json| {
            serde_json::json!({"time": "2026-11-27T19:07:11Z", "tenantId": "t",
                "operationName": "Publish", "category": format!("AdvancedHunting-{table}"),
                "properties": properties})
        };
        let message = serde_json::json!({"records": [
            record("DeviceFileEvents", row("FileCreated", "a.service")),
            record("DeviceNetworkEvents", serde_json::json!({"RemoteIP": "10.0.0.1"})),
            record("DeviceFileEvents", row("FileCreated", "b.service")),
        ]});
        let mut c = DefenderConverter::new(true);
        let mut out = Vec::new();
        let err = c
            .line_docs(message.to_string().as_bytes(), &mut out)
            .unwrap_err();
        assert!(
            err.contains("record 2 of 3: a DeviceNetworkEvents record"),
            "{err}"
        );
        let docs: Vec<Json> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["file"]["path"], "/etc/systemd/system/b.service");
        // One record, read: no error.
        let one = serde_json::json!({"records": [record("DeviceFileEvents", row("FileCreated", "c.service"))]});
        assert!(c.line_docs(one.to_string().as_bytes(), &mut out).is_ok());
        assert!(sniff_json(one.to_string().as_bytes()));
    }
}

/// Converts a Defender export: CSV line by line; JSON rows line by line, or — an array or the
/// API's response, one document — whole at the end of the file.
#[derive(Default)]
pub struct DefenderConverter {
    pub json: bool,
    csv: CsvRows,
    lines: u64,
    /// A JSON document being gathered (it is not line-oriented).
    document: Option<Vec<u8>>,
    document_lines: u64,
}

impl DefenderConverter {
    pub fn new(json: bool) -> DefenderConverter {
        DefenderConverter {
            json,
            ..Default::default()
        }
    }

    pub fn convert(&mut self, raw: crate::Block) -> crate::Block {
        if self.json && self.document.is_none() && self.lines == 0 {
            let t = raw.data.trim_ascii_start();
            // An array, or a pretty-printed object: a document, read whole at the end.
            let pretty = t.starts_with(b"{")
                && !t
                    .split(|&b| b == b'\n')
                    .next()
                    .unwrap_or(t)
                    .trim_ascii_end()
                    .ends_with(b"}");
            if t.starts_with(b"[") || pretty {
                self.document = Some(Vec::new());
            }
        }
        if let Some(doc) = &mut self.document {
            let first = self.lines;
            let skipped = crate::oversized_skips(&raw, &mut self.lines, first);
            doc.extend_from_slice(&raw.data);
            self.document_lines += raw.data.split_inclusive(|&b| b == b'\n').count() as u64;
            return crate::Block::from_converted(
                raw.file.clone(),
                crate::pooled_buffer(),
                raw.offset,
                crate::Converted {
                    skipped,
                    ..crate::Converted::default()
                },
            );
        }
        let mut lines = self.lines;
        let block = crate::lines::convert_lines(self, &mut lines, &raw);
        self.lines = lines;
        block
    }

    pub fn finish_file(&mut self, file: std::sync::Arc<str>, offset: u64) -> crate::Block {
        let mut out = crate::pooled_buffer();
        let mut skipped = Vec::new();
        let mut lines = 0;
        if let Some(text) = self.document.take() {
            lines = self.document_lines;
            match serde_json::from_slice::<Json>(&text) {
                Ok(v) => {
                    let rows: Vec<Result<Json, String>> = match v {
                        Json::Array(rows) => rows.into_iter().map(Ok).collect(),
                        Json::Object(mut o) => match o.remove("Results") {
                            Some(Json::Array(rows)) => rows.into_iter().map(Ok).collect(),
                            _ => rows_of(Json::Object(o)),
                        },
                        other => vec![Ok(other)],
                    };
                    for (i, row) in rows.into_iter().enumerate() {
                        match row.and_then(|r| json_row(&r)) {
                            Ok(doc) => {
                                doc.write_json(&mut out);
                                out.push(b'\n');
                            }
                            Err(reason) => skipped.push(crate::Skipped {
                                file: file.to_string(),
                                line: 0,
                                reason: format!("row {}: {reason}", i + 1),
                            }),
                        }
                    }
                }
                Err(e) => skipped.push(crate::Skipped {
                    file: file.to_string(),
                    line: e.line().saturating_sub(1) as u64,
                    reason: format!("malformed JSON at column {}: {e}", e.column()),
                }),
            }
        }
        self.lines = 0;
        self.document_lines = 0;
        self.csv.reset();
        crate::Block::from_converted(
            file,
            out,
            offset,
            crate::Converted {
                lines,
                skipped,
                warnings: Vec::new(),
                screened: 0,
            },
        )
    }
}

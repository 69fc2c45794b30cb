//! Sysmon for Linux (Sysinternals): syslog lines whose message is one `<Event>` XML document,
//! as `outputxml.cpp` writes them and as `/var/log/syslog` or the journal keeps them:
//!
//! `Nov 27 19:07:10 host sysmon: <Event><System><Provider Name="Linux-Sysmon" .../><EventID>1</EventID>
//! ...<Computer>host</Computer>...</System><EventData><Data Name="UtcTime">...</Data>...</EventData></Event>`
//!
//! Field names per event come from Sysmon's manifest (the same as Sysmon for Windows): EventID 1
//! process create, 3 network connection, 5 process terminate, 11 file create, 23 file delete
//! (archived), 26 file delete (logged). Mapped to the ECS shape the other readers produce
//! (docs/formats/sysmon.md). Lines of the syslog that are not Sysmon events are skipped as such.

use crate::doc::{Doc, Val};
use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use unithunt_event::neutral;

/// True when the text holds a Sysmon event in its first lines.
pub fn sniff(text: &[u8]) -> bool {
    let head = &text[..text.len().min(64 << 10)];
    memchr::memmem::find(head, b"<Provider Name=\"Linux-Sysmon\"").is_some()
}

/// The `<Event>` of a line and what it holds.
#[derive(Debug, Default, PartialEq)]
pub struct SysmonEvent {
    pub event_id: u32,
    pub computer: String,
    pub system_time: String,
    pub record_id: String,
    pub data: Vec<(String, String)>,
}

impl SysmonEvent {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            // Sysmon writes `-` for a field it has no value for.
            .filter(|v| !v.is_empty() && *v != "-")
    }
}

/// Parses the `<Event>...</Event>` part of a line.
pub fn parse_line(line: &str) -> Result<SysmonEvent, String> {
    let start = line
        .find("<Event>")
        .or_else(|| line.find("<Event "))
        .ok_or("no Sysmon <Event> in the line")?;
    let xml = &line[start..];
    let mut reader = Reader::from_str(xml);
    let mut ev = SysmonEvent::default();
    let mut data_name: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Err(e) => {
                return Err(format!(
                    "malformed Sysmon XML at byte {}: {e}",
                    reader.buffer_position()
                ))
            }
            Ok(XmlEvent::Eof) => return Err("Sysmon XML ends before </Event>".into()),
            Ok(XmlEvent::Start(e)) => {
                if e.name().as_ref() == b"Data" {
                    data_name = attr(&e, b"Name");
                }
                text.clear();
            }
            Ok(XmlEvent::Empty(e)) => {
                if e.name().as_ref() == b"TimeCreated" {
                    ev.system_time = attr(&e, b"SystemTime").unwrap_or_default();
                } else if e.name().as_ref() == b"Data" {
                    if let Some(n) = attr(&e, b"Name") {
                        ev.data.push((n, String::new()));
                    }
                }
            }
            Ok(XmlEvent::Text(t)) => {
                let s = t
                    .unescape()
                    .map_err(|e| format!("bad XML escape in a Sysmon field: {e}"))?;
                text.push_str(&s);
            }
            Ok(XmlEvent::CData(t)) => text.push_str(&String::from_utf8_lossy(&t)),
            Ok(XmlEvent::End(e)) => {
                let name = e.name();
                match name.as_ref() {
                    b"EventID" => {
                        ev.event_id = text
                            .trim()
                            .parse()
                            .map_err(|_| format!("bad EventID `{text}`"))?
                    }
                    b"Computer" => ev.computer = text.clone(),
                    b"EventRecordID" => ev.record_id = text.clone(),
                    b"Data" => {
                        if let Some(n) = data_name.take() {
                            ev.data.push((n, text.clone()));
                        }
                    }
                    b"Event" => {
                        if ev.event_id == 0 {
                            return Err("Sysmon event without an EventID".into());
                        }
                        return Ok(ev);
                    }
                    _ => {}
                }
                text.clear();
            }
            Ok(_) => {}
        }
    }
}

fn attr(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| a.unescape_value().ok())
        .map(|v| v.into_owned())
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Arguments of a Sysmon command line: Sysmon for Linux joins argv with spaces, so splitting on
/// whitespace gives the arguments back unless one contained a space (which no field preserves).
fn args_of(command_line: &str) -> Vec<String> {
    command_line
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `2026-11-27 19:07:10.136` (Sysmon's UtcTime) as ISO 8601.
fn iso(utc: &str) -> String {
    let t = utc.trim().replacen(' ', "T", 1);
    if t.ends_with('Z') {
        t
    } else {
        format!("{t}Z")
    }
}

fn put_file(doc: &mut Doc, path: &str) {
    let name = basename(path);
    doc.set("file.path", path);
    doc.set("file.name", name);
    let dir = path[..path.len() - name.len()].trim_end_matches('/');
    doc.set("file.directory", if dir.is_empty() { "/" } else { dir });
    if let Some((stem, ext)) = name.rsplit_once('.') {
        if !stem.is_empty() && !ext.is_empty() {
            doc.set("file.extension", ext);
        }
    }
}

/// The ECS document of one Sysmon event.
pub fn to_ecs(ev: &SysmonEvent) -> Doc {
    let mut doc = Doc::new();
    let time = ev
        .get("UtcTime")
        .map(iso)
        .unwrap_or_else(|| ev.system_time.clone());
    doc.set("@timestamp", time);
    doc.set("event.kind", "event");
    doc.set("event.module", "sysmon");
    doc.set("event.code", ev.event_id.to_string());
    if !ev.record_id.is_empty() {
        doc.set("event.id", ev.record_id.clone());
    }
    if !ev.computer.is_empty() {
        doc.set("host.name", ev.computer.clone());
    }
    // Sysmon for Linux (this reader's format) runs on Linux only.
    doc.set("host.os.type", "linux");
    if let Some(u) = ev.get("User") {
        doc.set("user.name", u);
    }
    if let Some(g) = ev.get("ProcessGuid") {
        doc.set("process.entity_id", g);
    }
    if let Some(pid) = ev.get("ProcessId").and_then(|p| p.parse::<i64>().ok()) {
        doc.set("process.pid", pid);
    }
    if let Some(image) = ev.get("Image") {
        doc.set("process.executable", image);
        doc.set("process.name", basename(image));
    }
    let mut data = Vec::with_capacity(ev.data.len());
    for (k, v) in &ev.data {
        data.push(format!(
            "{}:{}",
            neutral::to_string(k).expect("string"),
            neutral::to_string(v).expect("string")
        ));
    }
    doc.set("sysmon.data", Val::Raw(format!("{{{}}}", data.join(","))));
    match ev.event_id {
        1 => {
            doc.set("event.category", ["process"]);
            doc.set("event.type", ["start"]);
            doc.set("event.action", "exec");
            if let Some(cl) = ev.get("CommandLine") {
                let args = args_of(cl);
                doc.set("process.args_count", args.len());
                doc.set("process.args", args);
                doc.set("process.command_line", cl);
            }
            if let Some(cwd) = ev.get("CurrentDirectory") {
                doc.set("process.working_directory", cwd);
            }
            if let Some(g) = ev.get("ParentProcessGuid") {
                doc.set("process.parent.entity_id", g);
            }
            if let Some(pid) = ev
                .get("ParentProcessId")
                .and_then(|p| p.parse::<i64>().ok())
            {
                doc.set("process.parent.pid", pid);
            }
            if let Some(image) = ev.get("ParentImage") {
                doc.set("process.parent.executable", image);
                doc.set("process.parent.name", basename(image));
            }
            if let Some(cl) = ev.get("ParentCommandLine") {
                let args = args_of(cl);
                doc.set("process.parent.args_count", args.len());
                doc.set("process.parent.args", args);
                doc.set("process.parent.command_line", cl);
            }
            if let Some(u) = ev.get("ParentUser") {
                doc.set("process.parent.user.name", u);
            }
        }
        3 => {
            doc.set("event.category", ["network"]);
            doc.set("event.type", ["connection", "start"]);
            let initiated = ev.get("Initiated") == Some("true");
            doc.set(
                "event.action",
                if initiated {
                    "connection_attempted"
                } else {
                    "connection_accepted"
                },
            );
            for (side, prefix) in [("source", "Source"), ("destination", "Destination")] {
                if let Some(ip) = ev.get(&format!("{prefix}Ip")) {
                    doc.set(format!("{side}.ip"), ip);
                }
                if let Some(port) = ev
                    .get(&format!("{prefix}Port"))
                    .and_then(|p| p.parse::<i64>().ok())
                {
                    doc.set(format!("{side}.port"), port);
                }
            }
            if let Some(p) = ev.get("Protocol") {
                doc.set("network.transport", p);
            }
        }
        5 => {
            doc.set("event.category", ["process"]);
            doc.set("event.type", ["end"]);
            doc.set("event.action", "end");
        }
        11 => {
            doc.set("event.category", ["file"]);
            doc.set("event.type", ["creation"]);
            doc.set("event.action", "creation");
            if let Some(t) = ev.get("TargetFilename") {
                put_file(&mut doc, t);
            }
        }
        23 | 26 => {
            doc.set("event.category", ["file"]);
            doc.set("event.type", ["deletion"]);
            doc.set("event.action", "deletion");
            if let Some(t) = ev.get("TargetFilename") {
                put_file(&mut doc, t);
            }
        }
        n => doc.set("event.action", format!("sysmon-{n}")),
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"Nov 27 19:07:10 web01 sysmon: <Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>11</EventID><Version>2</Version><Level>4</Level><Task>11</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="2026-11-27T19:07:10.136000000Z"/><EventRecordID>42</EventRecordID><Correlation/><Execution ProcessID="811" ThreadID="811"/><Channel>Linux-Sysmon/Operational</Channel><Computer>web01</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">2026-11-27 19:07:10.136</Data><Data Name="ProcessGuid">{5c4e3b5a-8f1e-6747-1c2d-3e4f5a6b7c8d}</Data><Data Name="ProcessId">22865</Data><Data Name="Image">/usr/bin/bash</Data><Data Name="TargetFilename">/etc/systemd/system/a&amp;b.service</Data><Data Name="CreationUtcTime">2026-11-27 19:07:10.136</Data><Data Name="User">root</Data></EventData></Event>"#;

    #[test]
    fn file_create_maps_to_a_file_creation() {
        let ev = parse_line(LINE).unwrap();
        assert_eq!((ev.event_id, ev.computer.as_str()), (11, "web01"));
        let d = to_ecs(&ev).into_json();
        assert_eq!(d["event"]["type"], serde_json::json!(["creation"]));
        assert_eq!(d["file"]["path"], "/etc/systemd/system/a&b.service");
        assert_eq!(d["file"]["extension"], "service");
        assert_eq!(d["process"]["name"], "bash");
        assert_eq!(d["process"]["pid"], 22865);
        assert_eq!(d["@timestamp"], "2026-11-27T19:07:10.136Z");
        assert_eq!(d["sysmon"]["data"]["RuleName"], "-");
    }

    fn exec(guid: &str, image: &str, parent: &str, parent_image: &str) -> SysmonEvent {
        SysmonEvent {
            event_id: 1,
            data: [
                ("ProcessGuid", guid),
                ("Image", image),
                ("ParentProcessGuid", parent),
                ("ParentImage", parent_image),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..SysmonEvent::default()
        }
    }

    #[test]
    fn ancestry_follows_process_guids_across_events() {
        let mut tree = ProcessTree::default();
        // sshd started before the log: known only as bash's parent image.
        assert_eq!(
            tree.ancestry_names(&exec("{b}", "/usr/bin/bash", "{s}", "/usr/sbin/sshd")),
            ["sshd"]
        );
        tree.ancestry_names(&exec("{t}", "/usr/bin/timeout", "{b}", "/usr/bin/bash"));
        assert_eq!(
            tree.ancestry_names(&exec(
                "{c}",
                "/usr/bin/systemctl",
                "{t}",
                "/usr/bin/timeout"
            )),
            ["timeout", "bash", "sshd"]
        );
        // A file event of systemctl: its own ancestors.
        let file = SysmonEvent {
            event_id: 11,
            data: vec![("ProcessGuid".into(), "{c}".into())],
            ..SysmonEvent::default()
        };
        assert_eq!(tree.ancestry_names(&file), ["timeout", "bash", "sshd"]);
        // A GUID loop stops at the depth bound.
        tree.ancestry_names(&exec("{x}", "/bin/x", "{y}", "/bin/y"));
        tree.ancestry_names(&exec("{y}", "/bin/y", "{x}", "/bin/x"));
        let names = tree.ancestry_names(&exec("{z}", "/bin/z", "{x}", "/bin/x"));
        assert_eq!(names.len(), ProcessTree::DEPTH);
    }

    #[test]
    fn the_tree_stays_bounded_and_keeps_what_is_looked_up() {
        let mut tree = ProcessTree::default();
        tree.ancestry_names(&exec("{root}", "/usr/bin/bash", "", ""));
        for i in 0..ProcessTree::CAP * 3 {
            let g = format!("{{{i}}}");
            let names = tree.ancestry_names(&exec(&g, "/bin/true", "{root}", "/usr/bin/bash"));
            assert_eq!(names, ["bash"], "process {i}");
        }
        assert!(tree.current.len() + tree.previous.len() <= 2 * ProcessTree::CAP);
    }

    #[test]
    fn broken_xml_and_other_lines_say_why() {
        assert!(parse_line("Nov 27 host cron[1]: hello")
            .unwrap_err()
            .contains("no Sysmon"));
        let cut = &LINE[..LINE.len() - 40];
        assert!(parse_line(cut).is_err());
        assert!(sniff(LINE.as_bytes()));
    }
}

/// Process ancestry from the stream itself: Sysmon names only the direct parent (`ParentImage`),
/// but every process creation (EventID 1) links a `ProcessGuid` to its parent's, so the chain of
/// names is known for every process whose ancestors started while the log was kept. Bounded: two
/// generations of at most `CAP` processes each; the older is dropped when the newer fills (a
/// long-lived ancestor is kept alive by each lookup that finds it).
#[derive(Default)]
pub struct ProcessTree {
    current: std::collections::HashMap<String, (String, String)>,
    previous: std::collections::HashMap<String, (String, String)>,
}

impl ProcessTree {
    const CAP: usize = 1 << 16;
    /// How far up a chain is followed (and the guard against a loop of GUIDs).
    const DEPTH: usize = 32;

    fn insert(&mut self, guid: &str, name: &str, parent: &str) {
        if self.current.len() >= Self::CAP {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current
            .insert(guid.to_string(), (name.to_string(), parent.to_string()));
    }

    fn get(&mut self, guid: &str) -> Option<(String, String)> {
        if let Some(v) = self.current.get(guid) {
            return Some(v.clone());
        }
        let v = self.previous.remove(guid)?;
        self.insert(guid, &v.0, &v.1);
        Some(v)
    }

    /// Learns what a process creation says (the process and its parent's name), then returns the
    /// names of the process's ancestors, parent first.
    pub fn ancestry_names(&mut self, ev: &SysmonEvent) -> Vec<String> {
        let guid = ev.get("ProcessGuid").unwrap_or_default();
        let mut parent = String::new();
        if ev.event_id == 1 {
            parent = ev.get("ParentProcessGuid").unwrap_or_default().to_string();
            if !guid.is_empty() {
                let name = basename(ev.get("Image").unwrap_or_default());
                self.insert(guid, name, &parent);
            }
            if let (false, Some(image)) = (parent.is_empty(), ev.get("ParentImage")) {
                if self.get(&parent).is_none() {
                    self.insert(&parent, basename(image), "");
                }
            }
        } else if let Some((_, p)) = self.get(guid) {
            parent = p;
        }
        let mut names = Vec::new();
        let mut at = parent;
        while !at.is_empty() && names.len() < Self::DEPTH {
            match self.get(&at) {
                Some((name, up)) => {
                    names.push(name);
                    at = up;
                }
                None => break,
            }
        }
        names
    }
}

/// Converts syslog text, block by block, keeping the Sysmon events (other lines are skipped as
/// not Sysmon events: a syslog holds everything else too).
#[derive(Default)]
pub struct SysmonConverter {
    pub lines: u64,
    tree: ProcessTree,
}

impl SysmonConverter {
    pub fn convert(&mut self, raw: crate::Block) -> crate::Block {
        let mut lines = self.lines;
        let block = crate::lines::convert_lines(self, &mut lines, &raw);
        self.lines = lines;
        block
    }
}

impl crate::lines::LineConverter for SysmonConverter {
    fn line(&mut self, line: &[u8]) -> Result<Option<Doc>, String> {
        let text = String::from_utf8_lossy(line);
        let ev = parse_line(&text)?;
        let mut doc = to_ecs(&ev);
        let names = self.tree.ancestry_names(&ev);
        if !names.is_empty() {
            doc.set("process.Ext.ancestry_names", Val::List(names));
        }
        Ok(Some(doc))
    }
}

//! The real recordings of the tests and techniques (`examples/atomic/`), sliced by their markers,
//! and read through the converters `scan` uses.

use crate::catalogue::Atomic;
use unithunt_readers::{ConvertOptions, Format, Input};

/// The real recording of the tests (see `examples/atomic/README.md`).
pub(crate) const RECORDING: &str = include_str!("../../../examples/atomic/dev-enriched.log");
/// The real recording of each technique of the rule pack's scope, one marker exec
/// (`UNITHUNT-TECHNIQUE <id>`) before each (see `examples/atomic/README.md`).
pub(crate) const TECHNIQUE_RECORDING: &str =
    include_str!("../../../examples/atomic/techniques.log");
/// same times, each format's own fields).
pub(crate) const LAUREL: &str =
    include_str!("../../../examples/atomic/laurel/adversary-tests.json");
pub(crate) const SYSMON: &str =
    include_str!("../../../examples/atomic/sysmon/adversary-tests.syslog");
pub(crate) const MDE_CSV: &str =
    include_str!("../../../examples/atomic/defender/adversary-tests.csv");
pub(crate) const MDE_JSON: &str =
    include_str!("../../../examples/atomic/defender/adversary-tests.json");
/// The technique recording rendered in each format (`examples/atomic/RENDERINGS.md`), the Elastic
/// Defend one labelled by technique.
pub(crate) const TECH_LAUREL: &str =
    include_str!("../../../examples/atomic/laurel/techniques.json");
pub(crate) const TECH_SYSMON: &str =
    include_str!("../../../examples/atomic/sysmon/techniques.syslog");
pub(crate) const TECH_MDE_CSV: &str =
    include_str!("../../../examples/atomic/defender/techniques.csv");
pub(crate) const TECH_MDE_JSON: &str =
    include_str!("../../../examples/atomic/defender/techniques.json");
pub(crate) const TECH_DEFEND: &str = include_str!("../../../examples/atomic/ecs/techniques.ndjson");
/// Elastic Defend shaped events of the tests and benign twins (hand-built after the recording's
/// process trees; `labels.fixture_id` names each event's test).
pub(crate) const DEFEND_TESTS: &str =
    include_str!("../../../examples/atomic/ecs/adversary-tests.ndjson");
pub(crate) const DEFEND_BENIGN: &str =
    include_str!("../../../examples/atomic/ecs/benign-twins.ndjson");
pub(crate) fn serial(line: &str) -> Option<u64> {
    let at = line.find("msg=audit(")? + "msg=audit(".len();
    let rest = &line[at..];
    let colon = rest.find(':')?;
    let close = rest.find(')')?;
    rest.get(colon + 1..close)?.parse().ok()
}

/// Where the part of `recording` marked `id` by `marker` lies, as `key` measures it (audit serial
/// or time): from the EXECVE record of its marker exec (`/bin/echo <marker> <id>`) to the next
/// marker's (`end` after the last).
pub(crate) fn marked_span<T: Ord + Copy>(
    recording: &str,
    marker: &str,
    id: &str,
    key: impl Fn(&str) -> Option<T>,
    end: T,
) -> Option<(T, T)> {
    let needle = format!("a1=\"{marker}\"");
    let mut marks: Vec<(T, String)> = recording
        .lines()
        .filter(|l| l.contains("type=EXECVE") && l.contains(&needle))
        .filter_map(|l| {
            let id = l.split("a2=\"").nth(1)?.split('"').next()?;
            Some((key(l)?, id.to_string()))
        })
        .collect();
    marks.sort();
    let i = marks.iter().position(|m| m.1 == id)?;
    Some((marks[i].0, marks.get(i + 1).map_or(end, |m| m.0)))
}

/// The lines of one marked part of a recording (see [`marked_span`]).
pub(crate) fn marked_lines(recording: &'static str, marker: &str, id: &str) -> Vec<&'static str> {
    let Some((from, to)) = marked_span(recording, marker, id, serial, u64::MAX) else {
        return Vec::new();
    };
    recording
        .lines()
        .filter(|l| serial(l).is_some_and(|s| s >= from && s < to))
        .collect()
}

/// The recording's lines of one scenario of the tests.
pub(crate) fn recorded_lines(scenario: &str) -> Vec<&'static str> {
    marked_lines(RECORDING, "UNITHUNT-SCENARIO", scenario)
}

/// A telemetry format `emit` prints a test's recording in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    /// ECS NDJSON, as unithunt maps the audit records.
    Ecs,
    /// The raw audit records, as auditd wrote them.
    Auditd,
    Laurel,
    Sysmon,
    /// Defender for Endpoint Advanced Hunting CSV.
    Mde,
}

/// The telemetry a real run of `t` produced, in `rendering`.
pub fn emit(t: &Atomic, rendering: Rendering) -> Result<Vec<u8>, String> {
    let lines = recorded_lines(&t.recorded_as);
    if lines.is_empty() {
        return Err(format!(
            "scenario {} is not in the recording",
            t.recorded_as
        ));
    }
    let mut raw = lines.join("\n");
    raw.push('\n');
    let window = window_of(&t.recorded_as);
    Ok(match rendering {
        Rendering::Auditd => raw.into_bytes(),
        Rendering::Ecs => audit_to_ecs(raw.into_bytes())?,
        Rendering::Laurel => lines_in(LAUREL, None, Format::Laurel, window).into_bytes(),
        Rendering::Sysmon => lines_in(SYSMON, None, Format::Sysmon, window).into_bytes(),
        Rendering::Mde => {
            let (header, rows) = MDE_CSV.split_once('\n').unwrap_or((MDE_CSV, ""));
            lines_in(rows, Some(header), Format::DefenderCsv, window).into_bytes()
        }
    })
}

/// The input formats the tests' telemetry exists in, in the order the coverage matrix shows them.
pub(crate) const SOURCES: [Format; 6] = [
    Format::Auditd,
    Format::Laurel,
    Format::Sysmon,
    Format::DefenderCsv,
    Format::DefenderJson,
    Format::Ecs,
];

/// How the coverage matrix names a format's column.
pub(crate) fn label(format: Format) -> &'static str {
    match format {
        Format::Auditd => "auditd (real recording)",
        Format::Laurel => "LAUREL",
        Format::Sysmon => "Sysmon for Linux",
        Format::DefenderCsv => "Defender CSV",
        Format::DefenderJson => "Defender JSON",
        Format::Ecs => "Elastic Defend (ECS)",
    }
}

/// A scenario's time span in the recording, in ms: from its marker to the next one.
pub(crate) fn window_of(scenario: &str) -> (i64, i64) {
    window_in(RECORDING, "UNITHUNT-SCENARIO", scenario)
}

/// The time span, in ms, of the part of `recording` marked `id` by `marker`: from its marker's
/// exec to the next marker's.
pub(crate) fn window_in(recording: &str, marker: &str, id: &str) -> (i64, i64) {
    let ms = |l: &str| -> Option<i64> {
        let at = l.find("msg=audit(")? + "msg=audit(".len();
        let stamp = l[at..].split(':').next()?;
        let (s, frac) = stamp.split_once('.')?;
        Some(s.parse::<i64>().ok()? * 1000 + frac.parse::<i64>().ok()?)
    };
    marked_span(recording, marker, id, ms, i64::MAX).unwrap_or((0, 0))
}

/// The milliseconds of an ECS event's `@timestamp`.
pub(crate) fn event_ms(e: &serde_json::Value) -> Option<i64> {
    unithunt_event::parse_timestamp(&e["@timestamp"], unithunt_event::TimestampFormat::Auto)
        .map(|ns| ns.div_euclid(1_000_000))
}

/// The lines of a line-per-event rendering whose event falls in `window` (each line converted
/// alone, after `header` for CSV, to read its time).
pub(crate) fn lines_in(
    text: &str,
    header: Option<&str>,
    source: Format,
    window: (i64, i64),
) -> String {
    let mut out = String::new();
    if let Some(h) = header {
        out.push_str(h);
        out.push('\n');
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let one = match header {
            Some(h) => format!("{h}\n{line}\n"),
            None => format!("{line}\n"),
        };
        let inside = to_ecs(source, one.into_bytes())
            .iter()
            .filter_map(event_ms)
            .any(|t| t >= window.0 && t < window.1);
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every ECS event of a rendering, through the converters `scan` uses.
pub(crate) fn to_ecs(format: Format, raw: Vec<u8>) -> Vec<serde_json::Value> {
    let text = convert(format, raw).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Audit records to ECS NDJSON, through the converter `scan` and `convert` use.
pub(crate) fn audit_to_ecs(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    convert(Format::Auditd, raw)
}

/// A rendering in `format` to ECS NDJSON, read as `scan` reads a file.
pub(crate) fn convert(format: Format, raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut input = Input::from_bytes("recording", raw, Some(format)).map_err(|e| e.to_string())?;
    let mut converter = format.converter(&ConvertOptions::default());
    let mut out = Vec::new();
    while let Some(block) = input
        .next_ecs(converter.as_mut(), 1 << 20)
        .map_err(|e| e.to_string())?
    {
        out.extend_from_slice(&block.data);
    }
    Ok(out)
}

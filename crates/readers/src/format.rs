//! Input formats: which one a file is, and the converter that turns it into ECS.
//!
//! Every command decides formats here and nowhere else: [`Format`] names them (the names the
//! `--input-format` flags take), [`sniff`] recognises one from a file's first block (past a byte
//! order mark, blank lines and `#` comment lines), and [`Format::converter`] makes the converter
//! that turns its lines into ECS NDJSON (none for ECS itself).

use crate::{auditd, defender, laurel, sysmon, Converter, EventScreen, UTF8_BOM};

/// The formats unithunt reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// ECS NDJSON or JSON documents (Elastic Defend, Auditbeat, `_search` responses).
    Ecs,
    /// Raw auditd logs (RAW or ENRICHED, `node=`), or a dispatcher's `string` format.
    Auditd,
    /// LAUREL JSON lines (one audit event per line).
    Laurel,
    /// Sysmon for Linux events in syslog lines.
    Sysmon,
    /// Defender for Endpoint Advanced Hunting CSV export.
    DefenderCsv,
    /// Defender for Endpoint Advanced Hunting JSON rows (lines, an array, or an API response).
    DefenderJson,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Ecs,
        Format::Auditd,
        Format::Laurel,
        Format::Sysmon,
        Format::DefenderCsv,
        Format::DefenderJson,
    ];

    /// The name `--input-format` takes and summaries print.
    pub fn name(self) -> &'static str {
        match self {
            Format::Ecs => "ecs",
            Format::Auditd => "auditd",
            Format::Laurel => "laurel",
            Format::Sysmon => "sysmon",
            Format::DefenderCsv => "defender-csv",
            Format::DefenderJson => "defender-json",
        }
    }

    /// One line on what the format is (for `--help`).
    pub fn about(self) -> &'static str {
        match self {
            Format::Ecs => "ECS NDJSON or JSON documents (Elastic Defend, Auditbeat, _search and _eql/search responses)",
            Format::Auditd => "raw auditd logs (RAW or ENRICHED, node=), converted to ECS with process ancestry",
            Format::Laurel => "LAUREL JSON lines (one audit event per line), converted like raw audit logs",
            Format::Sysmon => "Sysmon for Linux events in syslog lines (other syslog lines are skipped)",
            Format::DefenderCsv => "Defender for Endpoint Advanced Hunting CSV export (DeviceProcessEvents, DeviceFileEvents)",
            Format::DefenderJson => "Defender for Endpoint Advanced Hunting JSON rows (lines, an array, or an API response)",
        }
    }

    /// The converter for this format (none for ECS, which needs no conversion).
    pub fn converter(self, options: &ConvertOptions) -> Option<Converter> {
        Some(match self {
            Format::Ecs => return None,
            Format::Auditd => {
                let mut t = if options.this_host {
                    auditd::AuditTranscoder::for_this_host()
                } else {
                    auditd::AuditTranscoder::new()
                };
                t.raw_records = options.raw_records;
                t.screen = options.screen.clone();
                t.defer_format = options.defer_format;
                Converter::Auditd(Box::new(t))
            }
            Format::Laurel => {
                let mut t = laurel::LaurelTranscoder::new();
                t.raw_records = options.raw_records;
                Converter::Laurel(t)
            }
            Format::Sysmon => Converter::Sysmon(sysmon::SysmonConverter::default()),
            Format::DefenderCsv => Converter::Defender(defender::DefenderConverter::new(false)),
            Format::DefenderJson => Converter::Defender(defender::DefenderConverter::new(true)),
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown input format `{s}` (one of: {})", names.join(", "))
            })
    }
}

/// How converters are set up (the same for every format that has the setting).
#[derive(Clone)]
pub struct ConvertOptions {
    /// Keep each audit event's records under `auditd.records`.
    pub raw_records: bool,
    /// Decide, before an audit event is written, whether a rule may match it.
    pub screen: Option<EventScreen>,
    /// Leave the formatting of audit events to whoever scans the block.
    pub defer_format: bool,
    /// The audit logs are this host's: parents that started before the log are looked up in
    /// `/proc`.
    pub this_host: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            raw_records: true,
            screen: None,
            defer_format: false,
            this_host: false,
        }
    }
}

/// The first line that says something: past a byte order mark, blank lines and `#` comment lines
/// (LAUREL's and auditd's test data open with comments), within the first block.
pub(crate) fn significant(head: &[u8]) -> &[u8] {
    let mut rest = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        if !is_comment_or_blank(&rest[..end]) {
            return rest;
        }
        rest = &rest[end..];
    }
    rest
}

fn is_comment_or_blank(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.is_empty() || line.starts_with(b"#")
}

/// The format of a file, from its first block. Anything else is read as ECS (whose reader says
/// what it could not parse, line by line).
///
/// ```
/// use unithunt_readers::format::{sniff, Format};
/// let audit = b"\xEF\xBB\xBF# recorded on h1\n\ntype=EOE msg=audit(1.000:1): \n";
/// assert_eq!(sniff(audit), Format::Auditd);
/// assert_eq!(sniff(b"{\"ID\":\"1.000:1\",\"SYSCALL\":{}}\n"), Format::Laurel);
/// assert_eq!(sniff(b"{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n"), Format::Ecs);
/// ```
pub fn sniff(head: &[u8]) -> Format {
    let t = significant(head);
    if auditd::sniff(t) {
        Format::Auditd
    } else if laurel::sniff(t) {
        Format::Laurel
    } else if sysmon::sniff(t) {
        Format::Sysmon
    } else if defender::sniff_csv(t) {
        Format::DefenderCsv
    } else if defender::sniff_json(t) {
        Format::DefenderJson
    } else {
        Format::Ecs
    }
}

/// Like [`sniff`], but `None` while the text holds nothing to decide on (blank and comment lines
/// only): a follower waits for more.
pub fn sniff_decided(head: &[u8]) -> Option<Format> {
    (!significant(head).is_empty()).then(|| sniff(head))
}

/// True for a `#` comment line (converters skip it with this reason).
pub fn is_comment(line: &[u8]) -> bool {
    line.trim_ascii_start().starts_with(b"#")
}

/// Why a comment line was skipped.
pub const COMMENT: &str = "comment line";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("defender-csv"));
    }

    #[test]
    fn comments_blank_lines_and_a_bom_are_looked_past() {
        let laurel = b"# LAUREL test data\n#\n\n  \n{\"ID\":\"1.000:1\"}\n";
        assert_eq!(sniff(laurel), Format::Laurel);
        assert_eq!(
            sniff(b"\xEF\xBB\xBFTimestamp,DeviceName,ActionType\n"),
            Format::DefenderCsv
        );
        // Only comments: nothing to sniff, read as ECS (whose reader reports each line).
        assert_eq!(sniff(b"# a\n# b\n"), Format::Ecs);
        assert_eq!(sniff(b""), Format::Ecs);
    }
}

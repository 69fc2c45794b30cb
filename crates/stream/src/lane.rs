//! One assigned partition's detection state: a converter per message key (per host: audit
//! serials and process tables are a host's own), one [`LiveDetector`] (sequences, samples and
//! correlations of the partition), and how far its input may be committed.

use serde_json::Value as Json;
use std::collections::HashMap;
use unithunt_detect::LiveDetector;
use unithunt_pipeline::live::{detect_events, Convert, Stats};
use unithunt_readers::Format;
use unithunt_rules::alert::EventOrigin;

/// Keys (hosts) one partition keeps a converter for at most; past it the quietest is closed
/// (its open events flushed) and dropped, and the count reported.
pub const MAX_KEYS: usize = 4096;
/// A key longer than this is kept as its first bytes and a hash of the whole (a host name is
/// short; a crafted megabyte key must not be held 4096 times).
pub const MAX_KEY_BYTES: usize = 256;
/// A message value longer than this is refused (as `watch` refuses a longer line): skipped,
/// counted and said.
pub const MAX_VALUE: usize = unithunt_pipeline::live::MAX_LINE;
/// Keys named as mixed-host at most (each is said once on stderr; the count goes on).
const MIXED_KEPT: usize = 64;

/// A key's converter, and the offset of its oldest message whose events are still open.
struct KeyState {
    convert: Convert,
    open_from: Option<i64>,
    last_offset: i64,
}

/// What one message (or a pause) gave: the alerts it completed.
#[derive(Default)]
pub struct Fed {
    pub alerts: Vec<Json>,
    /// What is wrong with the partition's keys, said once each (an unkeyed message, a key
    /// whose events name two hosts): sequences and process tables need one host per key.
    pub warnings: Vec<String>,
}

pub struct Lane {
    pub topic: String,
    pub partition: i32,
    pub engine: LiveDetector,
    keys: HashMap<Vec<u8>, KeyState>,
    format: Option<Format>,
    pub stats: Stats,
    /// Messages read, and those without a key.
    pub messages: u64,
    pub unkeyed: u64,
    /// Keys whose events named more than one host: (key, the hosts seen), the first
    /// [`MIXED_KEPT`]; and how many there were.
    pub mixed: Vec<(String, Vec<String>)>,
    pub mixed_keys: u64,
    /// Messages refused for their size.
    pub oversized: u64,
    /// Host names seen per key, on the events the rules look at (the prefilter lets them
    /// through); at most two kept: enough to say a key is mixed.
    hosts: HashMap<Vec<u8>, Vec<String>>,
    /// Keys dropped at [`MAX_KEYS`].
    pub keys_dropped: u64,
    /// The next offset to read; the offset up to which everything read has been decided.
    pub next: i64,
    /// Messages before this offset are read again to rebuild state: evaluated, raising nothing.
    pub replay_until: i64,
    /// Bytes read again so far to rebuild state (bounded by `--replay-max-bytes`).
    pub replayed_bytes: u64,
    /// Messages read again that are older than the span (their time before this): skipped.
    pub replay_after_ms: i64,
    pub replay_skipped: u64,
}

impl Lane {
    pub fn new(topic: &str, partition: i32, engine: LiveDetector, format: Option<Format>) -> Lane {
        Lane {
            topic: topic.to_string(),
            partition,
            engine,
            keys: HashMap::new(),
            format,
            stats: Stats::default(),
            messages: 0,
            unkeyed: 0,
            mixed: Vec::new(),
            mixed_keys: 0,
            oversized: 0,
            hosts: HashMap::new(),
            keys_dropped: 0,
            next: -1,
            replay_until: -1,
            replayed_bytes: 0,
            replay_after_ms: i64::MIN,
            replay_skipped: 0,
        }
    }

    fn origin(&self, offset: i64) -> EventOrigin {
        EventOrigin {
            file: format!("{}/{}", self.topic, self.partition),
            offset: offset.max(0) as u64,
        }
    }

    /// One message: its value (one event, or lines of audit records) through the key's
    /// converter and the detector.
    pub fn feed(&mut self, key: Option<&[u8]>, value: &[u8], offset: i64) -> Fed {
        self.messages += 1;
        self.next = offset + 1;
        let name = format!("{}/{}", self.topic, self.partition);
        if value.len() > MAX_VALUE {
            self.oversized += 1;
            self.stats.skip(
                &format!("{name}@{offset}"),
                &format!(
                    "a message of {} bytes, over the limit of {} MiB",
                    value.len(),
                    MAX_VALUE >> 20
                ),
            );
            return Fed::default();
        }
        let key = match key {
            Some(k) if !k.is_empty() => bounded_key(k),
            _ => {
                self.unkeyed += 1;
                Vec::new()
            }
        };
        let first_unkeyed = key.is_empty() && self.unkeyed == 1;
        let mut dropped = Fed::default();
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            dropped = self.drop_quietest();
        }
        let format = self.format;
        let state = self.keys.entry(key.clone()).or_insert_with(|| KeyState {
            convert: Convert::new(format, false).speaking_as("unithunt stream"),
            open_from: None,
            last_offset: offset,
        });
        state.last_offset = offset;
        let mut lines = value.to_vec();
        if lines.last() != Some(&b'\n') {
            lines.push(b'\n');
        }
        self.stats.lines += lines.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut ecs = Vec::new();
        // Named by message: what is skipped is said at its offset (line 1 is the message's first).
        state.convert.feed(
            &lines,
            &format!("{name}@{offset}"),
            &mut ecs,
            &mut self.stats,
        );
        if state.convert.open_events() == 0 {
            state.open_from = None;
        } else if state.open_from.is_none() {
            state.open_from = Some(offset);
        }
        let mut fed = self.evaluate(&key, &ecs, offset);
        dropped.alerts.append(&mut fed.alerts);
        dropped.warnings.append(&mut fed.warnings);
        if first_unkeyed {
            dropped.warnings.push(format!(
                "{name}: a message without a key at offset {offset}: key messages by host (see README, Running on a fleet); unkeyed messages share one converter and one set of sequences"
            ));
        }
        dropped
    }

    /// Converted events through the detector; hosts noted per key.
    fn evaluate(&mut self, key: &[u8], ecs: &[u8], offset: i64) -> Fed {
        let origin = self.origin(offset);
        let mut fed = Fed::default();
        let hosts = self.hosts.entry(key.to_vec()).or_default();
        let mut newly_mixed = false;
        let mut seen = |doc: &Json| {
            let Some(h) = doc["host"]["name"].as_str() else {
                return;
            };
            if !hosts.iter().any(|x| x == h) && hosts.len() < 2 {
                hosts.push(h.to_string());
                newly_mixed |= hosts.len() == 2;
            }
        };
        detect_events(
            &mut self.engine,
            ecs,
            &origin,
            &mut self.stats,
            &mut seen,
            &mut |a| fed.alerts.push(a),
        );
        if newly_mixed && !key.is_empty() {
            self.mixed_keys += 1;
            if self.mixed.len() < MIXED_KEPT {
                let key = String::from_utf8_lossy(key).into_owned();
                fed.warnings.push(format!(
                    "{}/{}: key {key:?} carries events of hosts {:?} and {:?} (offset {offset}): key messages by host, or sequences may join events of two hosts",
                    self.topic, self.partition, hosts[0], hosts[1]
                ));
                self.mixed.push((key, hosts.clone()));
            }
        }
        fed
    }

    /// Closes the open events quiet long enough (see `Convert::settle`), or all of them
    /// (`all`: the input paused or ended).
    pub fn settle(&mut self, all: bool) -> Fed {
        let mut fed = Fed::default();
        let keys: Vec<Vec<u8>> = self.keys.keys().cloned().collect();
        for key in keys {
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            if state.convert.open_events() == 0 {
                continue;
            }
            let mut ecs = Vec::new();
            if all {
                state.convert.flush(&mut ecs);
            } else {
                state.convert.settle(&mut ecs);
            }
            if state.convert.open_events() == 0 {
                state.open_from = None;
            }
            let offset = state.last_offset;
            if !ecs.is_empty() {
                fed.alerts.extend(self.evaluate(&key, &ecs, offset).alerts);
            }
        }
        fed
    }

    /// The offset this partition may be committed at: everything before it has been evaluated
    /// (no record of it waits in an open event).
    pub fn committable(&self) -> i64 {
        self.keys
            .values()
            .filter_map(|k| k.open_from)
            .min()
            .unwrap_or(self.next)
            .min(self.next)
    }

    /// The key least recently read is closed (its open events evaluated) and forgotten.
    fn drop_quietest(&mut self) -> Fed {
        let Some(key) = self
            .keys
            .iter()
            .min_by_key(|(_, s)| s.last_offset)
            .map(|(k, _)| k.clone())
        else {
            return Fed::default();
        };
        let mut fed = Fed::default();
        if let Some(mut state) = self.keys.remove(&key) {
            let mut ecs = Vec::new();
            state.convert.flush(&mut ecs);
            fed = self.evaluate(&key, &ecs, state.last_offset);
        }
        self.hosts.remove(&key);
        self.keys_dropped += 1;
        fed
    }
}

/// A message key as the lane holds it: as it is, or past [`MAX_KEY_BYTES`] its first bytes and
/// a hash of the whole (distinct long keys stay distinct, each held in bounded memory).
fn bounded_key(key: &[u8]) -> Vec<u8> {
    use std::hash::{Hash, Hasher};
    if key.len() <= MAX_KEY_BYTES {
        return key.to_vec();
    }
    // SipHash with fixed keys: the same key folds the same way for the life of the process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let mut folded = key[..MAX_KEY_BYTES - 17].to_vec();
    folded.extend_from_slice(format!("#{:016x}", h.finish()).as_bytes());
    folded
}

#[cfg(test)]
mod tests {
    //! What a crafted message does to a partition: every one is read or refused and counted,
    //! and memory stays bounded whatever the keys.
    use super::*;
    use unithunt_rules::{RulePack, RuleSet};

    fn lane(format: Option<Format>) -> Lane {
        let set: &'static RuleSet = Box::leak(Box::new(RuleSet::new(RulePack::builtin())));
        let (engine, _) = LiveDetector::new(set, None, 1000);
        Lane::new("telemetry", 3, engine, format)
    }

    /// A unit written on host `h`: an event the rules' prefilter lets through (hosts are noted
    /// on the events the rules look at).
    fn candidate(h: &str) -> String {
        format!(
            r#"{{"host":{{"name":"{h}"}},"event":{{"category":["file"],"type":["creation"]}},"file":{{"path":"/etc/systemd/system/x.service","extension":"service"}},"process":{{"name":"bash","executable":"/usr/bin/bash"}}}}"#
        )
    }

    #[test]
    fn a_value_over_the_limit_is_refused_counted_and_committed_past() {
        let mut l = lane(Some(Format::Ecs));
        let huge = vec![b'{'; MAX_VALUE + 1];
        let fed = l.feed(Some(b"web01"), &huge, 41);
        assert!(fed.alerts.is_empty());
        assert_eq!((l.oversized, l.stats.skipped, l.stats.events), (1, 1, 0));
        // Refused, not pending: the partition may be committed past it.
        assert_eq!(l.committable(), 42);
        assert!(l.keys.is_empty(), "a refused message creates no key state");
    }

    #[test]
    fn long_keys_are_held_folded_and_stay_distinct() {
        let mut l = lane(Some(Format::Ecs));
        let doc = br#"{"@timestamp":"2026-01-01T00:00:00Z","host":{"name":"h"},"event":{"category":["process"]}}"#;
        let mut a = vec![b'k'; 64 << 10];
        let mut b = a.clone();
        a.push(b'a');
        b.push(b'b');
        for (i, k) in [&a, &b, &a].into_iter().enumerate() {
            l.feed(Some(k), doc, i as i64);
        }
        assert_eq!(
            l.keys.len(),
            2,
            "two long keys differing at the end are two keys"
        );
        assert!(l.keys.keys().all(|k| k.len() <= MAX_KEY_BYTES));
        assert!(l.hosts.keys().all(|k| k.len() <= MAX_KEY_BYTES));
        assert_eq!(l.stats.events, 3);
    }

    #[test]
    fn malformed_ecs_values_are_skipped_and_counted() {
        let mut l = lane(Some(Format::Ecs));
        let bad: [&[u8]; 6] = [
            b"not json",
            b"[1,2]",
            b"{\"a\":",
            b"42",
            b"\x00\xff\xfe{}",
            b"{\"process\":{\"name\":\"systemctl\"",
        ];
        for (i, v) in bad.iter().enumerate() {
            let fed = l.feed(Some(b"h"), v, i as i64);
            assert!(fed.alerts.is_empty());
        }
        assert_eq!(l.stats.skipped, bad.len() as u64);
        assert_eq!(l.stats.events, 0);
        assert_eq!(l.committable(), bad.len() as i64);
    }

    #[test]
    fn a_control_character_key_is_quoted_in_the_mixed_host_warning() {
        let mut l = lane(Some(Format::Ecs));
        let key = b"\x1b]0;owned\x07\n";
        let mut warnings = Vec::new();
        for (i, h) in ["a", "b"].iter().enumerate() {
            let doc = candidate(h);
            warnings.extend(l.feed(Some(key), doc.as_bytes(), i as i64).warnings);
        }
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(!warnings[0].contains('\x1b') && !warnings[0].contains('\n'));
        assert!(warnings[0].contains("\\u{1b}"), "{}", warnings[0]);
        assert_eq!(l.mixed_keys, 1);
    }

    #[test]
    fn mixed_host_keys_are_counted_past_the_names_kept() {
        let mut l = lane(Some(Format::Ecs));
        let mut offset = 0;
        for k in 0..MIXED_KEPT + 10 {
            for h in ["a", "b"] {
                let doc = candidate(h);
                l.feed(Some(format!("key{k}").as_bytes()), doc.as_bytes(), offset);
                offset += 1;
            }
        }
        assert_eq!(l.mixed.len(), MIXED_KEPT);
        assert_eq!(l.mixed_keys, (MIXED_KEPT + 10) as u64);
    }

    #[test]
    fn a_defender_csv_row_without_its_header_is_skipped_with_a_reason() {
        let mut l = lane(Some(Format::DefenderCsv));
        let row = b"2026-01-01T00:00:00Z,web01,ProcessCreated,/usr/bin/systemctl";
        l.feed(Some(b"web01"), row, 0);
        assert_eq!((l.stats.skipped, l.stats.events), (1, 0));
        // With its header in the message, the rows of the same key are read.
        let csv = b"Timestamp,DeviceName,ActionType,FileName,FolderPath,ProcessCommandLine\n2026-01-01T00:00:00Z,web01,ProcessCreated,systemctl,/usr/bin/systemctl,systemctl enable x.service";
        l.feed(Some(b"db02"), csv, 1);
        assert_eq!(l.stats.events, 1, "{:?}", l.stats);
    }

    #[test]
    fn torn_and_binary_audit_records_do_not_stop_the_partition() {
        let mut l = lane(Some(Format::Auditd));
        let values: [&[u8]; 4] = [
            b"type=SYSCALL msg=audit(",
            b"type=EXECVE msg=audit(1.0:1): argc=99999999999 a0=",
            b"\x00\x01\x02 binary \xff",
            b"type=PATH msg=audit(1700000000.000:7): item=0 name=\"/etc/systemd/system/x.service\"",
        ];
        for (i, v) in values.iter().enumerate() {
            l.feed(Some(b"h"), v, i as i64);
        }
        let fed = l.settle(true);
        assert!(fed.alerts.is_empty());
        // The torn EXECVE is read as an event (its bad argc ignored); the others are skipped.
        assert_eq!(l.stats.skipped, 2, "{:?}", l.stats);
        assert_eq!(l.committable(), values.len() as i64);
    }
}

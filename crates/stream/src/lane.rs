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
    /// Keys whose events named more than one host: (key, the hosts seen).
    pub mixed: Vec<(String, Vec<String>)>,
    /// Host names seen per key (at most two kept: enough to say a key is mixed).
    hosts: HashMap<Vec<u8>, Vec<String>>,
    /// Keys dropped at [`MAX_KEYS`].
    pub keys_dropped: u64,
    /// The next offset to read; the offset up to which everything read has been decided.
    pub next: i64,
    /// Messages before this offset are read again to rebuild state: evaluated, raising nothing.
    pub replay_until: i64,
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
            hosts: HashMap::new(),
            keys_dropped: 0,
            next: -1,
            replay_until: -1,
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
        let key = match key {
            Some(k) if !k.is_empty() => k.to_vec(),
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
        let name = format!("{}/{}", self.topic, self.partition);
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
        let mut skipped = 0;
        state.convert.feed(&lines, &name, &mut ecs, &mut skipped);
        if state.convert.open_events() == 0 {
            state.open_from = None;
        } else if state.open_from.is_none() {
            state.open_from = Some(offset);
        }
        self.stats.skipped += skipped;
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
            let key = String::from_utf8_lossy(key).into_owned();
            fed.warnings.push(format!(
                "{}/{}: key {key:?} carries events of hosts {:?} and {:?} (offset {offset}): key messages by host, or sequences may join events of two hosts",
                self.topic, self.partition, hosts[0], hosts[1]
            ));
            self.mixed.push((key, hosts.clone()));
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

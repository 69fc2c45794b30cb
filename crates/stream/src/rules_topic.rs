//! Rules from a compacted topic (`--rules-topic`), as Confluent Sigma publishes them: each
//! message's key names a rule, its value is the rule (Sigma YAML or Elastic TOML), and an empty
//! value (a tombstone) withdraws it. Every worker reads the whole topic at start (all partitions,
//! from the beginning, outside the consumer group: every worker needs every rule) and then
//! follows it; a change reloads the rules as SIGHUP does.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use unithunt_output::term::escape;

/// A rule's text longer than this is refused (the largest Elastic rule is ~40 kB).
pub const MAX_RULE_BYTES: usize = 1 << 20;
/// Rules the topic may hold at most; past it further keys are refused.
pub const MAX_RULES: usize = 10_000;
/// How long the first read of the topic may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A rule as text: (where it came from, Sigma rather than Elastic TOML, the text).
pub type RuleText = (String, bool, String);

pub struct RulesTopic {
    consumer: BaseConsumer,
    topic: String,
    /// The newest rule per key.
    rules: BTreeMap<Vec<u8>, RuleText>,
    /// A rule changed since the last [`RulesTopic::poll`].
    changed: bool,
    /// Read to its end once (changes are said from then on).
    loaded: bool,
}

impl RulesTopic {
    /// Reads `topic` to its end (every partition's high watermark at the start).
    pub fn open(
        brokers: &str,
        client: &[(String, String)],
        topic: &str,
    ) -> Result<RulesTopic, String> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers);
        for (k, v) in client {
            c.set(k, v);
        }
        // Partitions are assigned, not subscribed: no group membership, nothing committed.
        c.set("group.id", "unithunt-rules-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = c.create().map_err(|e| format!("rules topic: {e}"))?;
        let shown = escape(topic);
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| format!("rules topic {shown}: {e}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(format!(
                "rules topic {shown}: no such topic (or no partitions)"
            ));
        }
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        for &p in &partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(|e| format!("rules topic {shown}/{p}: {e}"))?;
            ends.push((p, high));
        }
        consumer
            .assign(&tpl)
            .map_err(|e| format!("rules topic {shown}: {e}"))?;
        let mut t = RulesTopic {
            consumer,
            topic: topic.to_string(),
            rules: BTreeMap::new(),
            changed: false,
            loaded: false,
        };
        // Read up to where each partition ended when we looked.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let started = Instant::now();
        while ends
            .iter()
            .any(|(p, high)| next.get(p).copied().unwrap_or(0) < *high)
        {
            if started.elapsed() > LOAD_TIMEOUT {
                return Err(format!(
                    "rules topic {shown}: not read to its end within {} s",
                    LOAD_TIMEOUT.as_secs()
                ));
            }
            if let Some((p, offset)) = t.poll_one(Duration::from_millis(200))? {
                next.insert(p, offset + 1);
            }
        }
        t.loaded = true;
        t.changed = false;
        Ok(t)
    }

    /// Takes what arrived since the last look (without waiting); true when a rule changed.
    pub fn poll(&mut self) -> bool {
        // A burst is taken whole, bounded per call so the worker goes back to its input.
        for _ in 0..1000 {
            match self.poll_one(Duration::ZERO) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    eprintln!("warning: unithunt stream: {}", escape(&e));
                    break;
                }
            }
        }
        std::mem::take(&mut self.changed)
    }

    /// One message: (its partition, its offset), or `None` when none came.
    fn poll_one(&mut self, wait: Duration) -> Result<Option<(i32, i64)>, String> {
        let m = match self.consumer.poll(wait) {
            None => return Ok(None),
            Some(Err(e)) => return Err(format!("rules topic {}: {e}", escape(&self.topic))),
            Some(Ok(m)) => m,
        };
        let place = format!("{}/{}@{}", self.topic, m.partition(), m.offset());
        let Some(key) = m.key().filter(|k| !k.is_empty()) else {
            eprintln!(
                "warning: unithunt stream: {}: a rule without a key: ignored (key each rule by its id or title, the topic is compacted by key)",
                escape(&place)
            );
            return Ok(Some((m.partition(), m.offset())));
        };
        let value = m.payload().unwrap_or_default();
        if value.is_empty() {
            // A tombstone: the rule is withdrawn.
            if self.rules.remove(key).is_some() {
                self.changed = true;
                self.said(&place, key, "withdrawn");
            }
        } else if value.len() > MAX_RULE_BYTES {
            eprintln!(
                "warning: unithunt stream: {}: a rule of {} bytes, over the limit of {} MiB: refused",
                escape(&place),
                value.len(),
                MAX_RULE_BYTES >> 20
            );
        } else if !self.rules.contains_key(key) && self.rules.len() >= MAX_RULES {
            eprintln!(
                "warning: unithunt stream: {}: the topic holds {MAX_RULES} rules already: refused",
                escape(&place)
            );
        } else {
            match std::str::from_utf8(value) {
                Ok(text) => {
                    let sigma = !unithunt_rules::is_elastic_toml(text);
                    let same = self.rules.get(key).is_some_and(|(_, _, t)| t == text);
                    if !same {
                        self.said(&place, key, "published");
                        self.rules
                            .insert(key.to_vec(), (place, sigma, text.to_string()));
                        self.changed = true;
                    }
                }
                Err(e) => eprintln!(
                    "warning: unithunt stream: {}: a rule that is not UTF-8 ({e}): refused",
                    escape(&place)
                ),
            }
        }
        Ok(Some((m.partition(), m.offset())))
    }

    /// A change, said once the topic has been read to its end (at start, the rules are listed
    /// by the load).
    fn said(&self, place: &str, key: &[u8], what: &str) {
        if self.loaded {
            eprintln!(
                "unithunt stream: {}: rule {} {what}",
                escape(place),
                escape(&format!("{:?}", String::from_utf8_lossy(key)))
            );
        }
    }

    /// The rules the topic holds now.
    pub fn texts(&self) -> Vec<RuleText> {
        self.rules.values().cloned().collect()
    }
}

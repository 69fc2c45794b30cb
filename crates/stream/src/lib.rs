//! `unithunt stream`: the rule pack as a Kafka consumer-group worker.
//!
//! # Brief overview
//!
//! - [`Worker`]: one member of a consumer group (librdkafka through `rdkafka`). Each message's
//!   value is one event in any format `unithunt-readers` knows (an ECS document, audit record
//!   lines, a LAUREL line, a Sysmon syslog line, a Defender JSON row), its key the host.
//! - [`lane::Lane`]: what one assigned partition holds: a converter per key (audit grouping and
//!   process tables are a host's own), one `LiveDetector` (`unithunt-detect`: the same core
//!   `watch` and `scan` drive), and the offset it may be committed at.
//! - Delivery: at least once in, idempotent out. Alerts keep their deterministic ids; they go to
//!   the printer and to the alerts topic (keyed by alert id, `acks=all`, idempotent producer);
//!   offsets are committed only after the producer has every alert of the events before them
//!   acknowledged, and never past a record still waiting in an open audit event. A partition
//!   taken away is committed as far as it is decided, then its state dropped.
//!
//! ```
//! use unithunt_stream::parse_client_setting;
//! assert_eq!(
//!     parse_client_setting("security.protocol=SASL_SSL").unwrap(),
//!     ("security.protocol".to_string(), "SASL_SSL".to_string())
//! );
//! assert!(parse_client_setting("no equals sign").is_err());
//! ```

pub mod lane;
pub mod rules_topic;
pub mod spool;

use lane::{Fed, Lane};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use rules_topic::{RuleText, RulesTopic};
use serde_json::Value as Json;
use spool::{Offsets, Spool};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use unithunt_detect::LiveDetector;
use unithunt_output::term::escape;
use unithunt_output::AlertSink;
use unithunt_pipeline::live::{new_detector, ship, Signals};
use unithunt_readers::Format;
use unithunt_rules::RuleSet;

/// Open audit events are closed after this long without input (as `watch` does).
const IDLE_FLUSH: Duration = Duration::from_millis(250);
/// Open audit events are looked at this often while input flows.
const SETTLE_EVERY: Duration = Duration::from_millis(50);
/// Offsets are committed at most this often (and at a rebalance and at the end).
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// The producer gets this long to have every alert acknowledged before a commit.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The rules topic is looked at this often.
const RULES_POLL: Duration = Duration::from_millis(500);

/// Loads the rules again (SIGHUP, a change in the rules topic), given the topic's rules.
pub type Reload<'r> = dyn Fn(&[RuleText]) -> Result<&'static RuleSet, String> + 'r;

/// `KEY=VALUE`, as `kcat -X` takes librdkafka settings.
pub fn parse_client_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("-X {s}: expected KEY=VALUE (a librdkafka setting)"))?;
    if k.trim().is_empty() {
        return Err(format!("-X {s}: the key is empty"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub brokers: String,
    pub topics: Vec<String>,
    pub group: String,
    /// The format of every message (sniffed per key when `None`).
    pub format: Option<Format>,
    /// Where alerts are produced (keyed by alert id), if anywhere.
    pub alerts_topic: Option<String>,
    /// librdkafka settings for both the consumer and the producer (TLS, SASL...).
    pub client: Vec<(String, String)>,
    /// Stop once nothing has arrived for this long (the input is exhausted: open events are
    /// closed and everything committed). `None`: run until a signal.
    pub exit_when_idle: Option<Duration>,
    /// A statistics line every this many seconds (0: only on SIGUSR1).
    pub stats_interval: u64,
    pub max_pending: usize,
    /// Bytes of messages read again at most to rebuild a partition's state; past it the rebuild
    /// is cut (said, with what may be missed) and reading goes on at the commit.
    pub replay_max_bytes: u64,
}

/// What the consumer's rebalance callbacks and the worker share.
#[derive(Default)]
struct Shared {
    /// Per partition: the offset everything before which is decided and its alerts delivered.
    committable: Mutex<HashMap<(String, i32), i64>>,
    /// Per partition: the offset everything before which is decided, published every
    /// [`SETTLE_EVERY`] when the alerts topic is the only sink to wait for (the revoke callback
    /// flushes it): a partition taken away is committed this far, and its next owner reads
    /// again at most that long of it, not up to [`COMMIT_EVERY`].
    decided: Mutex<HashMap<(String, i32), i64>>,
    /// Partitions taken away since the worker last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// The producer, flushed before a revoked partition is committed.
    producer: Mutex<Option<ThreadedProducer<Delivery>>>,
}

struct Rebalancing(Arc<Shared>);

impl ClientContext for Rebalancing {}

impl ConsumerContext for Rebalancing {
    /// Partitions leaving: what was decided of them is committed (after the alerts of it are
    /// acknowledged), so that their next owner starts there; their state goes.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let leaving: Vec<(String, i32)> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        // No alerts topic: nothing to wait for.
        let delivered = self
            .0
            .producer
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.flush(DELIVERY_TIMEOUT).is_ok()))
            .unwrap_or(true);
        if delivered {
            let mut tpl = TopicPartitionList::new();
            if let (Ok(c), Ok(d)) = (self.0.committable.lock(), self.0.decided.lock()) {
                for key in &leaving {
                    if let Some(o) = c.get(key).max(d.get(key)) {
                        let _ = tpl.add_partition_offset(&key.0, key.1, Offset::Offset(*o));
                    }
                }
            }
            if tpl.count() > 0 {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                    eprintln!("warning: unithunt stream: commit at a rebalance: {e}");
                }
            }
        }
        if let Ok(mut r) = self.0.revoked.lock() {
            r.extend(leaving);
        }
    }
}

/// Counts alerts the alerts topic refused.
#[derive(Default, Clone)]
struct Delivery {
    failed: Arc<AtomicU64>,
    last_error: Arc<Mutex<String>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut l) = self.last_error.lock() {
                *l = e.to_string();
            }
        }
    }
}

/// Totals at the end of a run.
#[derive(Default, Debug)]
pub struct StreamReport {
    pub messages: u64,
    pub events: u64,
    pub alerts: u64,
    pub skipped: u64,
    pub unkeyed: u64,
    pub commits: u64,
    /// Alerts completed while a partition's state was rebuilt (delivered before; not raised).
    pub replayed: u64,
    /// A remote sink (`--http`, `--syslog`) ended failing: its alerts stay in the journal, and
    /// the offsets of their events are not committed.
    pub sink_failed: bool,
    /// Partitions whose state rebuild was cut at the byte budget.
    pub replay_cuts: u64,
}

/// One worker of the group.
pub struct Worker<'a> {
    options: StreamOptions,
    consumer: BaseConsumer<Rebalancing>,
    shared: Arc<Shared>,
    delivery: Delivery,
    set: &'static RuleSet,
    lanes: HashMap<(String, i32), Lane>,
    sink: &'a mut dyn AlertSink,
    /// The journal and the remote sinks shipping it, when there are any.
    spool: Option<Spool>,
    /// Rules from a compacted topic, followed.
    rules_topic: Option<RulesTopic>,
    /// Lanes dropped at a rebalance, for the totals.
    gone: StreamReport,
    report: StreamReport,
    started: Instant,
}

/// The brokers, then `defaults`, then the user's `-X` settings (which win over the defaults, not
/// over what delivery needs: the callers set that last).
fn client_config(options: &StreamOptions, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &options.brokers);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &options.client {
        c.set(k, v);
    }
    c
}

impl<'a> Worker<'a> {
    /// Joins the group (subscribes to the topics) and opens the alerts producer.
    pub fn new(
        options: StreamOptions,
        set: &'static RuleSet,
        sink: &'a mut dyn AlertSink,
        spool: Option<Spool>,
        rules_topic: Option<RulesTopic>,
    ) -> Result<Worker<'a>, String> {
        let shared = Arc::new(Shared::default());
        // A fetch is answered at once when data is there (`fetch.min.bytes` 1); with none it
        // waits at most 100 ms, not librdkafka's 500: brokers that hold every fetch for the
        // whole wait (Tansu 0.6 does) then cost a fifth of the time, and an idle worker asks
        // ten times a second.
        let mut cc = client_config(
            &options,
            &[
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "100"),
            ],
        );
        // Offsets are committed by the worker, once decided and delivered: never automatically.
        cc.set("group.id", &options.group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer<Rebalancing> = cc
            .create_with_context(Rebalancing(shared.clone()))
            .map_err(|e| format!("consumer: {e}"))?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("subscribe: {e}"))?;
        let delivery = Delivery::default();
        if options.alerts_topic.is_some() {
            let mut pc = client_config(&options, &[]);
            // Every replica has it before a commit counts it delivered; no duplicate from retries.
            pc.set("acks", "all").set("enable.idempotence", "true");
            let producer: ThreadedProducer<Delivery> = pc
                .create_with_context(delivery.clone())
                .map_err(|e| format!("alerts producer: {e}"))?;
            if let Ok(mut p) = shared.producer.lock() {
                *p = Some(producer);
            }
        }
        Ok(Worker {
            options,
            consumer,
            shared,
            delivery,
            set,
            lanes: HashMap::new(),
            sink,
            spool,
            rules_topic,
            gone: StreamReport::default(),
            report: StreamReport::default(),
            started: Instant::now(),
        })
    }

    /// Consumes until a signal (or, with `exit_when_idle`, until the input is exhausted);
    /// commits what is decided as it goes and at the end.
    pub fn run(&mut self, signals: &Signals, reload: &Reload<'_>) -> Result<StreamReport, String> {
        let mut last_input = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_stats = Instant::now();
        let mut last_rules_poll = Instant::now();
        let mut idle_flushed = true;
        let mut last_settle = Instant::now();
        loop {
            if signals.stop.load(Ordering::SeqCst) {
                break;
            }
            self.service(signals, reload, &mut last_stats, &mut last_rules_poll);
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    // Owned: the lane is borrowed mutably while the message is read.
                    let m = m.detach();
                    let key = (m.topic().to_string(), m.partition());
                    let ts = m.timestamp().to_millis();
                    if !self.lanes.contains_key(&key) && self.start_lane(&key, m.offset(), ts) {
                        // Sought back to rebuild the partition's state: this message comes again.
                        continue;
                    }
                    let lane = self.lanes.get_mut(&key).expect("a lane per partition read");
                    let replaying = m.offset() < lane.replay_until;
                    if replaying {
                        lane.replayed_bytes += m.payload().map_or(0, <[u8]>::len) as u64;
                        if lane.replayed_bytes > self.options.replay_max_bytes {
                            let resume = lane.replay_until;
                            self.cut_replay(&key, m.offset(), resume);
                            continue;
                        }
                        // Older than the span (a broker whose offsets by time are coarse hands
                        // back more): read, not evaluated.
                        if ts.is_some_and(|t| t < lane.replay_after_ms) {
                            lane.next = m.offset() + 1;
                            lane.replay_skipped += 1;
                            continue;
                        }
                    }
                    let mut fed = lane.feed(m.key(), m.payload().unwrap_or_default(), m.offset());
                    drop(m);
                    if replaying {
                        // Raised before the commit this replay starts from.
                        self.report.replayed += fed.alerts.len() as u64;
                        fed.alerts.clear();
                    }
                    for w in &fed.warnings {
                        eprintln!("warning: unithunt stream: {}", escape(w));
                    }
                    self.raise(fed, ts)?;
                    last_input = Instant::now();
                    idle_flushed = false;
                }
                Some(Err(e)) => eprintln!("warning: unithunt stream: {}", escape(&e.to_string())),
                None => {}
            }
            self.drop_revoked();
            // Open audit events quiet for IDLE_FLUSH are closed; looked for every SETTLE_EVERY,
            // not after every message (a partition holds a converter per host).
            if !idle_flushed {
                let all = last_input.elapsed() >= IDLE_FLUSH;
                if all || last_settle.elapsed() >= SETTLE_EVERY {
                    self.settle(all)?;
                    self.publish_decided();
                    last_settle = Instant::now();
                    idle_flushed = all;
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit()?;
                last_commit = Instant::now();
            }
            if let Some(idle) = self.options.exit_when_idle {
                if last_input.elapsed() >= idle && self.caught_up(last_input.elapsed() >= idle * 10)
                {
                    break;
                }
            }
        }
        // Stopped by a signal: open events stay open (their records are not committed, so
        // the next owner reads them whole); at the end of the input they are closed.
        let signalled = signals.stop.load(Ordering::SeqCst);
        if self.options.exit_when_idle.is_some() && !signalled {
            self.settle(true)?;
        }
        self.commit()?;
        let sink_failed = self.end_spool(signals, signalled)?;
        eprintln!("{}", self.stats_line());
        let mut total = std::mem::take(&mut self.report);
        total.sink_failed = sink_failed;
        for l in self.lanes.values() {
            add_lane(&mut total, l);
        }
        total.messages += self.gone.messages;
        total.events += self.gone.events;
        total.skipped += self.gone.skipped;
        total.unkeyed += self.gone.unkeyed;
        Ok(total)
    }

    /// Whether every partition assigned is read to its end (the input is exhausted), or
    /// `give_up`: with none assigned (a rebalance still waiting for a dead member's session to
    /// end, more workers than partitions) or the brokers gone, a worker stops after ten idle
    /// waits.
    fn caught_up(&self, give_up: bool) -> bool {
        // Nothing for ten times the idle wait: the input is over, or the brokers are gone.
        if give_up {
            return true;
        }
        let Ok(assigned) = self.consumer.assignment() else {
            return give_up;
        };
        if assigned.count() == 0 {
            return give_up;
        }
        // Where the group committed each partition (for those this worker has not read yet).
        let committed = self
            .consumer
            .committed_offsets(assigned.clone(), Duration::from_secs(5))
            .ok();
        assigned.elements().iter().all(|e| {
            let key = (e.topic().to_string(), e.partition());
            let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
            else {
                return false;
            };
            let position = match self.lanes.get(&key) {
                Some(l) => l.next,
                None => committed
                    .as_ref()
                    .and_then(|c| c.find_partition(e.topic(), e.partition()))
                    .and_then(|p| match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(-1),
            };
            // Nothing there, or everything read.
            high == 0 || position >= high
        })
    }

    /// A partition read for the first time since it was assigned, at `offset` (where its group
    /// committed, or its start): its state is rebuilt by reading again the messages of the rules'
    /// state span before it (found by time, from the message's timestamp), evaluated but raising
    /// nothing (their alerts were delivered before that commit). True when it sought back.
    fn start_lane(&mut self, key: &(String, i32), offset: i64, ts_ms: Option<i64>) -> bool {
        let (engine, _) = LiveDetector::new(self.set, None, self.options.max_pending);
        let mut lane = Lane::new(&key.0, key.1, engine, self.options.format);
        let start = match (self.set.state_span_ms(), ts_ms) {
            (Some(span), Some(ts)) if offset > 0 => self.offset_at(key, ts - span),
            _ => None,
        };
        let mut sought = false;
        if let Some(start) = start.filter(|&s| s < offset) {
            match self
                .consumer
                .seek(&key.0, key.1, Offset::Offset(start), Duration::from_secs(10))
            {
                Ok(()) => {
                    eprintln!(
                        "unithunt stream: {}/{}: state rebuilt from offset {start} ({} message(s) before the commit at {offset}: the rules' span of {} s before {})",
                        escape(&key.0),
                        key.1,
                        offset - start,
                        self.set.state_span_ms().unwrap_or(0) / 1000,
                        ts_ms.map(unithunt_event::format_iso_ms).unwrap_or_default()
                    );
                    lane.replay_until = offset;
                    lane.replay_after_ms = ts_ms.zip(self.set.state_span_ms()).map_or(i64::MIN, |(t, s)| t - s);
                    sought = true;
                }
                Err(e) => eprintln!(
                    "warning: unithunt stream: {}/{}: state not rebuilt (seek to {start}: {e}); sequences begun before offset {offset} are not completed",
                    escape(&key.0),
                    key.1
                ),
            }
        }
        self.lanes.insert(key.clone(), lane);
        sought
    }

    /// The rebuild of a partition's state went past the byte budget at `at`: it resumes at its
    /// commit `resume`, saying what may be missed.
    fn cut_replay(&mut self, key: &(String, i32), at: i64, resume: i64) {
        eprintln!(
            "warning: unithunt stream: {}/{}: state rebuild cut at offset {at} after {} MiB (--replay-max-bytes); sequences begun before offset {at} may not complete",
            escape(&key.0),
            key.1,
            self.options.replay_max_bytes >> 20
        );
        self.report.replay_cuts += 1;
        match self.consumer.seek(
            &key.0,
            key.1,
            Offset::Offset(resume),
            Duration::from_secs(10),
        ) {
            Ok(()) => {
                if let Some(lane) = self.lanes.get_mut(key) {
                    // Re-read from the commit as fresh input, as with no rebuild.
                    lane.next = resume;
                }
            }
            Err(e) => eprintln!(
                "warning: unithunt stream: {}/{}: seek to {resume}: {e}; the rebuild goes on",
                escape(&key.0),
                key.1
            ),
        }
    }

    /// The first offset of a partition whose message is at `ts_ms` or later (ListOffsets by time).
    fn offset_at(&self, key: &(String, i32), ts_ms: i64) -> Option<i64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&key.0, key.1, Offset::Offset(ts_ms.max(0)))
            .ok()?;
        let found = self
            .consumer
            .offsets_for_times(tpl, Duration::from_secs(10))
            .map_err(|e| {
                eprintln!(
                    "warning: unithunt stream: {}/{}: offsets by time: {e}; state not rebuilt",
                    escape(&key.0),
                    key.1
                )
            })
            .ok()?;
        let elem = found.find_partition(&key.0, key.1)?;
        match elem.offset() {
            Offset::Offset(o) => Some(o),
            Offset::Beginning => Some(0),
            _ => None,
        }
    }

    /// The remote sinks get a bounded budget to deliver what is left (at the end of the input:
    /// several attempts; stopped by a signal: a moment, and a second signal ends it), then the
    /// offsets whose alerts they delivered are committed. True when a sink ended failing.
    fn end_spool(&mut self, signals: &Signals, signalled: bool) -> Result<bool, String> {
        let Some(spool) = self.spool.as_mut() else {
            return Ok(false);
        };
        let budget = if signalled {
            ship::Budget {
                attempts: 0,
                time: ship::SIGNAL_GRACE,
            }
        } else {
            ship::Budget {
                attempts: ship::FINAL_ATTEMPTS,
                time: ship::FINAL_TIME,
            }
        };
        signals.stop.store(false, Ordering::SeqCst);
        let (failed, released) =
            spool.end(budget, signalled, || signals.stop.load(Ordering::SeqCst));
        self.commit_offsets(released)?;
        Ok(failed)
    }

    /// Alerts to the sinks: the printer the caller gave, the journal (shipped to the remote
    /// sinks), and the alerts topic.
    /// `kibana.alert.start` is the time of the message that completed the alert, so an alert
    /// sent again after a crash is the same document.
    fn raise(&mut self, fed: Fed, ts_ms: Option<i64>) -> Result<(), String> {
        for mut alert in fed.alerts {
            if let Some(ts) = ts_ms {
                alert["kibana.alert.start"] = Json::String(unithunt_event::format_iso_ms(ts));
            }
            self.report.alerts += 1;
            let _ = self.sink.alert(&alert);
            if let Some(spool) = self.spool.as_mut() {
                // Not in the journal, not delivered: the worker cannot go on committing.
                spool
                    .journal()
                    .alert(&alert)
                    .map_err(|e| format!("alert journal: {e}"))?;
            }
            let Some(topic) = &self.options.alerts_topic else {
                continue;
            };
            let id = alert["kibana.alert.uuid"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let line = unithunt_event::neutral::to_vec(&alert).map_err(|e| e.to_string())?;
            let guard = self.shared.producer.lock().map_err(|_| "producer lock")?;
            let Some(producer) = guard.as_ref() else {
                continue;
            };
            let mut record = BaseRecord::to(topic).key(&id).payload(&line);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((
                        KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        r,
                    )) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(format!("alerts topic {}: {e}", escape(topic))),
                }
            }
        }
        Ok(())
    }

    fn settle(&mut self, all: bool) -> Result<(), String> {
        let keys: Vec<(String, i32)> = self.lanes.keys().cloned().collect();
        for k in keys {
            let fed = match self.lanes.get_mut(&k) {
                Some(l) => l.settle(all),
                None => continue,
            };
            self.raise(fed, None)?;
        }
        Ok(())
    }

    /// The alerts of everything decided are acknowledged, then those offsets are committed.
    fn commit(&mut self) -> Result<(), String> {
        if let Ok(p) = self.shared.producer.lock() {
            if let Some(p) = p.as_ref() {
                p.flush(DELIVERY_TIMEOUT)
                    .map_err(|e| format!("alerts topic: not acknowledged: {e}"))?;
            }
        }
        let failed = self.delivery.failed.load(Ordering::SeqCst);
        if failed > 0 {
            let why = self
                .delivery
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            return Err(format!(
                "alerts topic: {failed} alert(s) refused ({}): offsets not committed",
                escape(&why)
            ));
        }
        let mut now = Offsets::new();
        for (key, lane) in &self.lanes {
            let at = lane.committable();
            // While a partition's state is rebuilt its position is behind its commit: never
            // committed backwards.
            if at >= 0 && at > lane.replay_until {
                now.insert(key.clone(), at);
            }
        }
        // With remote sinks: only as far as they delivered the alerts.
        let ready = match self.spool.as_mut() {
            Some(spool) => spool.release(now),
            None => now,
        };
        self.commit_offsets(ready)
    }

    /// Where each partition is decided, for the revoke callback; only without remote sinks
    /// (with them, what they delivered is what may be committed: `committable`).
    fn publish_decided(&self) {
        if self.spool.is_some() {
            return;
        }
        if let Ok(mut d) = self.shared.decided.lock() {
            for (key, lane) in &self.lanes {
                let at = lane.committable();
                if at >= 0 && at > lane.replay_until {
                    d.insert(key.clone(), at);
                }
            }
        }
    }

    /// Commits `offsets` of partitions this worker still holds, where they moved.
    fn commit_offsets(&mut self, offsets: Offsets) -> Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        let mut committable = self.shared.committable.lock().map_err(|_| "lock")?;
        for (key, at) in offsets {
            if !self.lanes.contains_key(&key) || committable.get(&key) == Some(&at) {
                continue;
            }
            tpl.add_partition_offset(&key.0, key.1, Offset::Offset(at))
                .map_err(|e| e.to_string())?;
            committable.insert(key, at);
        }
        drop(committable);
        if tpl.count() > 0 {
            match self.consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => self.report.commits += 1,
                // A partition given to another member meanwhile: its new owner re-reads from
                // the last commit (alerts sent again are the same ids).
                Err(e) => eprintln!(
                    "warning: unithunt stream: commit: {}",
                    escape(&e.to_string())
                ),
            }
        }
        Ok(())
    }

    /// Drops the state of partitions taken away.
    fn drop_revoked(&mut self) {
        let revoked: Vec<(String, i32)> = match self.shared.revoked.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        for key in revoked {
            if let Some(l) = self.lanes.remove(&key) {
                add_lane(&mut self.gone, &l);
            }
            if let Some(spool) = self.spool.as_mut() {
                spool.forget(&key);
            }
            if let Ok(mut c) = self.shared.committable.lock() {
                c.remove(&key);
            }
            if let Ok(mut d) = self.shared.decided.lock() {
                d.remove(&key);
            }
        }
    }

    /// Signals: a reload of the rules (each partition keeps the sequences of unchanged rules), a
    /// statistics line.
    fn service(
        &mut self,
        signals: &Signals,
        reload: &Reload<'_>,
        last_stats: &mut Instant,
        last_rules_poll: &mut Instant,
    ) {
        let mut topic_changed = false;
        if let Some(t) = self.rules_topic.as_mut() {
            if last_rules_poll.elapsed() >= RULES_POLL {
                *last_rules_poll = Instant::now();
                topic_changed = t.poll();
                if topic_changed {
                    eprintln!("unithunt stream: the rules topic changed");
                }
            }
        }
        if signals.reload.swap(false, Ordering::SeqCst) || topic_changed {
            let from_topic = self
                .rules_topic
                .as_ref()
                .map(RulesTopic::texts)
                .unwrap_or_default();
            match reload(&from_topic) {
                Ok(set) => {
                    self.set = set;
                    for lane in self.lanes.values_mut() {
                        let old = std::mem::replace(
                            &mut lane.engine,
                            LiveDetector::new(set, None, self.options.max_pending).0,
                        );
                        lane.engine = new_detector(set, Some(old));
                    }
                    eprintln!(
                        "unithunt stream: rules reloaded ({} rules)",
                        set.rules.len()
                    );
                }
                Err(e) => eprintln!("error: rules not reloaded, the previous ones stay:\n{e}"),
            }
        }
        let interval = self.options.stats_interval;
        if signals.stats.swap(false, Ordering::SeqCst)
            || (interval > 0 && last_stats.elapsed() >= Duration::from_secs(interval))
        {
            *last_stats = Instant::now();
            eprintln!("{}", self.stats_line());
            for line in self.partition_lines() {
                eprintln!("{line}");
            }
        }
    }

    /// Totals: messages, events and alerts, and the rate.
    fn stats_line(&self) -> String {
        let mut t = StreamReport::default();
        for l in self.lanes.values() {
            add_lane(&mut t, l);
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let messages = t.messages + self.gone.messages;
        let waiting = self
            .spool
            .as_ref()
            .map(|s| {
                format!(
                    ", {} alert(s) not yet delivered by the remote sinks",
                    s.undelivered()
                )
            })
            .unwrap_or_default();
        format!(
            "unithunt stream: {} partition(s), {messages} messages ({:.0}/s), {} events, {} alerts, {} skipped, {} unkeyed; {} commits{waiting}",
            self.lanes.len(),
            messages as f64 / secs,
            t.events + self.gone.events,
            self.report.alerts,
            t.skipped + self.gone.skipped,
            t.unkeyed + self.gone.unkeyed,
            self.report.commits,
        )
    }

    /// Per partition: position, lag behind the high watermark, keys, and what was wrong with
    /// its keys (unkeyed messages, keys naming several hosts).
    fn partition_lines(&self) -> Vec<String> {
        let mut keys: Vec<&(String, i32)> = self.lanes.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let l = &self.lanes[k];
                let lag = self
                    .consumer
                    .fetch_watermarks(&k.0, k.1, Duration::from_secs(1))
                    .map(|(_, high)| (high - l.next).max(0).to_string())
                    .unwrap_or_else(|_| "?".into());
                format!(
                    "  {}/{}: at {}, lag {lag}, {} messages, {} events, {} skipped, {} over {} MiB, {} unkeyed, {} mixed-host key(s), {} key(s) closed at the cap of {}",
                    escape(&k.0),
                    k.1,
                    l.next,
                    l.messages,
                    l.stats.events,
                    l.stats.skipped,
                    l.oversized,
                    lane::MAX_VALUE >> 20,
                    l.unkeyed,
                    l.mixed_keys,
                    l.keys_dropped,
                    lane::MAX_KEYS
                )
            })
            .collect()
    }
}

fn add_lane(t: &mut StreamReport, l: &Lane) {
    t.messages += l.messages;
    t.events += l.stats.events;
    t.skipped += l.stats.skipped;
    t.unkeyed += l.unkeyed;
}

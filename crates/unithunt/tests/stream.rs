//! `unithunt stream` against a real Kafka-protocol broker (Tansu, started here on 127.0.0.1 with
//! embedded storage; `.ci/run` installs it). The adversary recordings, several hosts interleaved
//! and keyed by host on a 4-partition topic, must give the alerts one offline `scan` of each
//! host's events gives.

mod common;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Tmp;

/// The broker binary: `$TANSU`, else `tansu` on the PATH or in `~/.cargo/bin`. Missing, the
/// test fails saying how to install it (it is a test dependency, as `../shared` is).
fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        places.push(PathBuf::from(home).join(".cargo/bin"));
    }
    places
        .into_iter()
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no Kafka-protocol broker for the stream tests: install Tansu with \
                 `cargo install tansu --version 0.6.0 --locked --features libsql` (.ci/run does), \
                 or give its path in $TANSU"
            )
        })
}

/// A broker for one test, killed on drop.
struct Broker {
    child: Child,
    address: String,
    _dir: Tmp,
}

impl Broker {
    fn start(test: &str) -> Broker {
        let dir = Tmp::new(test);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // A path relative to the broker's directory (Tansu joins it to the working directory).
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "the broker did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            address,
            _dir: dir,
        }
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", name, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://{}", self.address))
            .output()
            .expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "topic {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Produces `(key, value)` messages in order, and waits until all are acknowledged.
    fn produce(&self, topic: &str, messages: &[(String, Vec<u8>)]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("acks", "all")
            .create()
            .expect("producer");
        for (key, value) in messages {
            let mut record = BaseRecord::to(topic).key(key).payload(value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("acknowledged");
    }
}

impl Broker {
    /// Every message of `topic` (all partitions, from the start), until none comes for 3 s.
    fn consume_all(&self, topic: &str) -> Vec<(String, Vec<u8>)> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::Message;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", format!("reader-{topic}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).unwrap();
        let mut out = Vec::new();
        let mut last = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(60);
        while last.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                    out.push((key, m.payload().unwrap_or_default().to_vec()));
                    last = Instant::now();
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alerts by (rule, deterministic id), with how many times each came.
type AlertCounts = BTreeMap<(String, String), usize>;

/// Kafka messages: (key, value).
type Messages = Vec<(String, Vec<u8>)>;

/// What identifies an alert across runs: its rule and its deterministic id.
fn alert_keys(ndjson: &str) -> AlertCounts {
    let mut keys = BTreeMap::new();
    for line in ndjson.lines().filter(|l| !l.trim().is_empty()) {
        let a: Json = serde_json::from_str(line).unwrap();
        let k = (
            a["kibana.alert.rule.name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            a["kibana.alert.uuid"].as_str().unwrap_or("").to_string(),
        );
        *keys.entry(k).or_default() += 1;
    }
    keys
}

/// One host's copy of a recording: `node=` prefixed audit records, LAUREL lines with `NODE`,
/// ECS documents with the host's name and id.
fn host_copy(format: &str, text: &str, host: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match format {
            "auditd" => format!("node={host} {l}"),
            "laurel" => format!("{{\"NODE\":\"{host}\",{}", &l[1..]),
            _ => {
                let mut d: Json = serde_json::from_str(l).unwrap();
                d["host"]["name"] = Json::String(host.to_string());
                d["host"]["id"] = Json::String(format!("id-{host}"));
                d.to_string()
            }
        })
        .collect()
}

/// Each host's copy of a recording written to a file and scanned offline, on its own: the alerts
/// a stream of them must give; and the copies interleaved line by line, each line a message keyed
/// by its host.
fn fleet(t: &Tmp, format: &str, hosts: &[String], text: &str) -> (Messages, AlertCounts) {
    let copies: Vec<Vec<String>> = hosts.iter().map(|h| host_copy(format, text, h)).collect();
    let mut expected = BTreeMap::new();
    for (h, lines) in hosts.iter().zip(&copies) {
        let file = t.file(&format!("{format}-{h}.log"), lines.join("\n") + "\n");
        let (alerts, _) = common::unithunt_ok(&[
            "scan",
            "-q",
            "-o",
            "ndjson",
            "--input-format",
            format,
            &file,
        ]);
        for (k, n) in alert_keys(&alerts) {
            *expected.entry(k).or_default() += n;
        }
    }
    let longest = copies.iter().map(Vec::len).max().unwrap_or(0);
    let mut messages = Vec::new();
    for i in 0..longest {
        for (h, lines) in hosts.iter().zip(&copies) {
            if let Some(l) = lines.get(i) {
                messages.push((h.clone(), l.clone().into_bytes()));
            }
        }
    }
    (messages, expected)
}

fn stream_alerts(broker: &Broker, topic: &str, group: &str, format: &str, alerts: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["stream", "--brokers", &broker.address, "--topic", topic])
        .args(["--group", group, "--input-format", format, "-o", "ndjson"])
        .args(["--alerts-topic", alerts])
        .args(["--exit-when-idle", "5000"])
        .current_dir(common::WORKSPACE)
        .output()
        .expect("unithunt stream runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn recordings_keyed_by_host_alert_as_an_offline_scan_in_every_format() {
    let broker = Broker::start("formats");
    let t = Tmp::new("stream-formats");
    let cases = [
        ("auditd", common::shared("samples/auditd/dev-enriched.log")),
        ("laurel", "examples/atomic/laurel/adversary-tests.json"),
        ("ecs", "examples/atomic/ecs/adversary-tests.ndjson"),
    ];
    let hosts: Vec<String> = ["web01", "db02", "build03"].map(String::from).to_vec();
    for (format, path) in cases {
        let text =
            std::fs::read_to_string(std::path::Path::new(common::WORKSPACE).join(path)).unwrap();
        let (messages, expected) = fleet(&t, format, &hosts, &text);
        assert!(
            !expected.is_empty(),
            "{format}: the recording alerts offline"
        );
        let topic = format!("telemetry-{format}");
        let alerts_topic = format!("alerts-{format}");
        broker.create_topic(&topic, 4);
        broker.create_topic(&alerts_topic, 2);
        broker.produce(&topic, &messages);
        let group = format!("g-{format}");
        let printed = stream_alerts(&broker, &topic, &group, format, &alerts_topic);
        let got = alert_keys(&printed);
        assert_eq!(got, expected, "{format}: stream against offline scan");
        // The alerts topic has the same alerts, each keyed by its id.
        let mut on_topic = String::new();
        for (key, value) in broker.consume_all(&alerts_topic) {
            let a: Json = serde_json::from_slice(&value).unwrap();
            assert_eq!(
                a["kibana.alert.uuid"].as_str(),
                Some(key.as_str()),
                "{format}"
            );
            on_topic.push_str(std::str::from_utf8(&value).unwrap());
            on_topic.push('\n');
        }
        assert_eq!(
            alert_keys(&on_topic),
            expected,
            "{format}: the alerts topic"
        );
        let total: usize = expected.values().sum();
        eprintln!(
            "{format}: {} messages, {total} alerts as offline",
            messages.len()
        );
    }
}

/// Numbers the workers' stderr logs (in the temporary directory, for a failing run).
static WORKER_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A worker of group `group` on `topic`, its alerts (NDJSON lines) read from a pipe as they come.
struct Worker {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
    /// Its stderr.
    log: PathBuf,
}

impl Worker {
    fn start(broker: &Broker, topic: &str, group: &str, format: &str, idle_ms: u64) -> Worker {
        Worker::start_with(broker, topic, group, format, idle_ms, &[])
    }

    fn start_with(
        broker: &Broker,
        topic: &str,
        group: &str,
        format: &str,
        idle_ms: u64,
        extra: &[&str],
    ) -> Worker {
        let log = std::env::temp_dir().join(format!(
            "unithunt-stream-worker-{}-{}.log",
            std::process::id(),
            WORKER_COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_unithunt"))
            .args(["stream", "--brokers", &broker.address, "--topic", topic])
            .args(["--group", group, "--input-format", format, "-o", "ndjson"])
            .args(["--exit-when-idle", &idle_ms.to_string()])
            // A dead member's partitions move once its session ends: keep that short.
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=1000",
            ])
            .args(extra)
            .current_dir(common::WORKSPACE)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("unithunt stream runs");
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Worker {
            child,
            lines,
            reader,
            log,
        }
    }

    /// Waits until its stderr says `what`.
    fn wait_said(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let said = std::fs::read_to_string(&self.log).unwrap_or_default();
            if said.contains(what) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not say {what:?}: {said}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Alerts printed so far.
    fn printed(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits until it has printed `n` alerts (it is then mid-stream).
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.printed() < n {
            assert!(
                Instant::now() < deadline,
                "the worker printed {} alerts",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(self) -> String {
        self.reader.join().unwrap();
        let lines = self.lines.lock().unwrap();
        lines.join("\n") + "\n"
    }

    /// kill -9; what it printed before.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }

    /// Waits for it to end by itself (idle); what it printed.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
        self.output()
    }
}

/// Waits until one of `workers` has printed `n` alerts; which one.
fn wait_any(workers: &[Worker], n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(i) = workers.iter().position(|w| w.printed() >= n) {
            return i;
        }
        assert!(Instant::now() < deadline, "no worker printed {n} alerts");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The auditd recording for `hosts` hosts, interleaved and keyed by host; the alerts an offline
/// scan of each host's records gives.
fn audit_fleet(t: &Tmp, hosts: usize) -> (Messages, AlertCounts) {
    let text = std::fs::read_to_string(
        std::path::Path::new(common::WORKSPACE)
            .join(common::shared("samples/auditd/dev-enriched.log")),
    )
    .unwrap();
    let names: Vec<String> = (0..hosts).map(|i| format!("host{i:02}")).collect();
    fleet(t, "auditd", &names, &text)
}

/// Three workers; one killed -9 mid-stream and restarted, another killed -9 while the group
/// rebalances and restarted: every alert of the offline scan is raised, and nothing else (an
/// alert raised twice is the same id).
#[test]
fn workers_killed_mid_stream_miss_no_alert() {
    let broker = Broker::start("faults");
    let t = Tmp::new("stream-faults");
    let (messages, expected) = audit_fleet(&t, 12);
    broker.create_topic("fleet", 4);
    broker.produce("fleet", &messages);
    let start = |idle| Worker::start(&broker, "fleet", "g-faults", "auditd", idle);
    let mut printed = Vec::new();
    let mut live = vec![start(8000), start(8000), start(8000)];
    // The first to raise alerts is killed: mid-stream. (Which one reads first is the group's
    // choice: a member alone in the group for a moment may take every partition.)
    let first = wait_any(&live, 20);
    let killed = live.remove(first);
    let a_printed = killed.printed();
    printed.push(killed.kill());
    std::thread::sleep(Duration::from_millis(500));
    // The restarted worker joins: the group rebalances; another is killed meanwhile.
    live.push(start(8000));
    std::thread::sleep(Duration::from_millis(300));
    let killed = live.remove(0);
    let b_printed = killed.printed();
    printed.push(killed.kill());
    std::thread::sleep(Duration::from_millis(1000));
    live.push(start(8000));
    for w in live {
        printed.push(w.finish());
    }
    let mut got = BTreeMap::new();
    for out in &printed {
        for (k, n) in alert_keys(out) {
            *got.entry(k).or_insert(0) += n;
        }
    }
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(k)).collect();
    let unexpected: Vec<_> = got.keys().filter(|k| !expected.contains_key(k)).collect();
    let sent: usize = got.values().sum();
    let wanted: usize = expected.values().sum();
    eprintln!(
        "{} messages; {wanted} alerts offline, {} distinct; workers printed {sent} (killed ones: {a_printed}, {b_printed})",
        messages.len(),
        expected.len()
    );
    assert!(
        a_printed < wanted / 2,
        "the first kill came mid-stream ({a_printed} alerts)"
    );
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        unexpected.is_empty(),
        "{} not offline, e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
}

/// A unit written, then (after its first worker left the group) activated: the worker that takes
/// the partition over reads the write again (evaluating it without raising) and raises the
/// write-then-activate sequence once.
#[test]
fn a_sequence_split_by_a_reassignment_alerts_once() {
    let broker = Broker::start("handover");
    let t = Tmp::new("stream-handover");
    let text = std::fs::read_to_string(
        std::path::Path::new(common::WORKSPACE).join("examples/atomic/ecs/adversary-tests.ndjson"),
    )
    .unwrap();
    let events: Vec<&str> = text.lines().filter(|l| l.contains("\"T1-")).collect();
    assert_eq!(
        events.len(),
        5,
        "T1: file, reload, enable, start, start from bash"
    );
    let file = t.file("t1.ndjson", events.join("\n") + "\n");
    let (offline, _) = common::unithunt_ok(&["scan", "-q", "-o", "ndjson", &file]);
    let sequence = "Systemd Unit Written Then Activated";
    let of_rule = |out: &str| -> BTreeMap<(String, String), usize> {
        alert_keys(out)
            .into_iter()
            .filter(|((rule, _), _)| rule == sequence)
            .collect()
    };
    let expected = of_rule(&offline);
    assert!(!expected.is_empty(), "the sequence alerts offline");
    broker.create_topic("handover", 1);
    // The write alone first: the reload after it already completes the sequence.
    let split = events
        .iter()
        .position(|e| e.contains("\"T1-reload\""))
        .unwrap();
    let message = |e: &&str| ("lab-deb12".to_string(), e.as_bytes().to_vec());
    // The write read by the first worker, which commits and leaves.
    broker.produce(
        "handover",
        &events[..split].iter().map(message).collect::<Vec<_>>(),
    );
    let first = Worker::start(&broker, "handover", "g-handover", "ecs", 2000).finish();
    assert!(of_rule(&first).is_empty(), "no activation yet");
    // The activation, read by the next worker of the group.
    broker.produce(
        "handover",
        &events[split..].iter().map(message).collect::<Vec<_>>(),
    );
    let second = Worker::start(&broker, "handover", "g-handover", "ecs", 2000).finish();
    assert_eq!(
        of_rule(&second),
        expected,
        "the sequence, once, after the handover"
    );
    // The write's own alerts were raised by the first worker, not again by the second.
    let written = "Systemd Unit or Drop-in Written Outside Package Management";
    assert!(alert_keys(&first).keys().any(|(r, _)| r == written));
    assert!(
        !alert_keys(&second).keys().any(|(r, _)| r == written),
        "the write's alert raised again"
    );

    // The same handover with a rebuild budget of one byte: the rebuild is cut and said, and
    // the sequence begun before the commit is not completed (what the warning says).
    broker.create_topic("handover-cut", 1);
    broker.produce(
        "handover-cut",
        &events[..split].iter().map(message).collect::<Vec<_>>(),
    );
    Worker::start(&broker, "handover-cut", "g-cut", "ecs", 2000).finish();
    broker.produce(
        "handover-cut",
        &events[split..].iter().map(message).collect::<Vec<_>>(),
    );
    let cut = Worker::start_with(
        &broker,
        "handover-cut",
        "g-cut",
        "ecs",
        2000,
        &["--replay-max-bytes", "1"],
    );
    let log = cut.log.clone();
    let printed = cut.finish();
    let said = std::fs::read_to_string(log).unwrap();
    assert!(said.contains("state rebuild cut at offset"), "{said}");
    assert!(of_rule(&printed).is_empty(), "{printed}");
}

/// A worker shipping to `url` through the journal `journal`; its exit status and stderr.
fn stream_to_http(broker: &Broker, topic: &str, url: &str, journal: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["stream", "--brokers", &broker.address, "--topic", topic])
        .args([
            "--group",
            "shippers",
            "--input-format",
            "auditd",
            "-o",
            "none",
        ])
        .args(["--http", url, "--alerts", journal])
        .args(["--exit-when-idle", "3000"])
        .current_dir(common::WORKSPACE)
        .output()
        .expect("unithunt stream runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Offsets wait for the HTTP sink: a worker whose sink is down commits nothing (it ends with
/// status 1, its alerts in its journal), so the next worker, on another machine (its own
/// journal), reads the same events again and delivers every alert; once that is acknowledged
/// the offsets are committed and a third worker has nothing to send.
#[test]
fn offsets_are_committed_only_once_the_http_sink_has_the_alerts() {
    let broker = Broker::start("http");
    let t = Tmp::new("stream-http");
    let (messages, expected) = audit_fleet(&t, 2);
    broker.create_topic("audit", 4);
    broker.produce("audit", &messages);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/_bulk");
    // Nothing listens on the port: every delivery is refused.
    let (ok, stderr) = stream_to_http(&broker, "audit", &url, &t.path("down.ndjson"));
    assert!(!ok, "a sink that never delivered is status 1: {stderr}");
    assert!(stderr.contains("http sink"), "{stderr}");
    let journal = std::fs::read_to_string(t.join("down.ndjson")).unwrap();
    assert_eq!(
        alert_keys(&journal),
        expected,
        "the journal keeps every alert"
    );

    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    {
        let ids = ids.clone();
        std::thread::spawn(move || common::serve_bulk(listener, ids));
    }
    let (ok, stderr) = stream_to_http(&broker, "audit", &url, &t.path("up.ndjson"));
    assert!(ok, "{stderr}");
    let mut got = ids.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = expected.keys().map(|(_, id)| id.clone()).collect();
    want.sort();
    assert_eq!(got, want, "every alert delivered once: {stderr}");

    let (ok, stderr) = stream_to_http(&broker, "audit", &url, &t.path("after.ndjson"));
    assert!(ok, "{stderr}");
    assert_eq!(
        ids.lock().unwrap().len(),
        want.len(),
        "committed after delivery: nothing read again"
    );
}

/// Sigma rules for the rules-topic test: the one selection each, on `process.executable`.
fn sigma_rule(title: &str, id: &str, image_suffix: &str) -> String {
    format!(
        "title: {title}\nid: {id}\nstatus: test\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  selection:\n    Image|endswith: '{image_suffix}'\n  condition: selection\nlevel: low\n"
    )
}

/// Rules from a compacted topic, as Confluent Sigma publishes them (key: the rule, value: its
/// YAML): a worker with no other rules alerts with them as an offline scan with the same rule
/// does; a rule published while it runs, and a tombstone withdrawing the first, reload the rules
/// without a restart: the next host's events alert with the new rule only.
#[test]
fn rules_from_a_compacted_topic_run_and_a_published_change_reloads_them() {
    let broker = Broker::start("rules-topic");
    let t = Tmp::new("stream-rules-topic");
    let text = std::fs::read_to_string(
        std::path::Path::new(common::WORKSPACE)
            .join(common::shared("samples/auditd/dev-enriched.log")),
    )
    .unwrap();
    let a = sigma_rule(
        "Systemctl run",
        "0b5c8a52-1a1e-4f0e-9a51-2f1d3c7a9e01",
        "/systemctl",
    );
    let b = sigma_rule("Shell run", "7d3e2f10-5b6c-4a8d-9e0f-1a2b3c4d5e6f", "/bash");
    // The offline answer per host and rule.
    let offline = |host: &str, rule: &str| {
        let file = t.file(
            &format!("{host}.log"),
            host_copy("auditd", &text, host).join("\n") + "\n",
        );
        let rule_file = t.file(&format!("{host}-rule.yml"), rule);
        let (out, _) = common::unithunt_ok(&[
            "scan",
            "-q",
            "-o",
            "ndjson",
            "--no-builtin",
            "--rules",
            &rule_file,
            "--input-format",
            "auditd",
            &file,
        ]);
        alert_keys(&out)
    };
    let first = offline("web01", &a);
    let second = offline("db02", &b);
    assert!(!first.is_empty() && !second.is_empty());
    broker.create_topic("rules", 1);
    broker.create_topic("audit", 2);
    broker.produce("rules", &[("systemctl-run".into(), a.clone().into_bytes())]);
    let keyed = |host: &str| -> Messages {
        host_copy("auditd", &text, host)
            .into_iter()
            .map(|l| (host.to_string(), l.into_bytes()))
            .collect()
    };
    broker.produce("audit", &keyed("web01"));
    let w = Worker::start_with(
        &broker,
        "audit",
        "g-rules",
        "auditd",
        60_000,
        &["--no-builtin", "--rules-topic", "rules"],
    );
    w.wait_for(first.values().sum());
    // A new rule, and the first withdrawn (an empty value on its key).
    broker.produce(
        "rules",
        &[
            ("shell-run".into(), b.clone().into_bytes()),
            ("systemctl-run".into(), Vec::new()),
        ],
    );
    w.wait_said("rules reloaded (1 rules)");
    broker.produce("audit", &keyed("db02"));
    let total = first.values().sum::<usize>() + second.values().sum::<usize>();
    w.wait_for(total);
    // A moment: nothing more may come (the withdrawn rule no longer runs on db02).
    std::thread::sleep(Duration::from_secs(2));
    let log = w.log.clone();
    let got = alert_keys(&w.kill());
    let mut want = first.clone();
    want.extend(second);
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}; {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    assert_eq!(got, want);
}

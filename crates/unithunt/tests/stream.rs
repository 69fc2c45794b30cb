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

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What identifies an alert across runs: its rule and its deterministic id.
fn alert_keys(ndjson: &str) -> BTreeMap<(String, String), usize> {
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

fn stream_alerts(broker: &Broker, topic: &str, group: &str, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(["stream", "--brokers", &broker.address, "--topic", topic])
        .args(["--group", group, "--input-format", format, "-o", "ndjson"])
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
    let hosts = ["web01", "db02", "build03"];
    for (format, path) in cases {
        let text =
            std::fs::read_to_string(std::path::Path::new(common::WORKSPACE).join(path)).unwrap();
        let copies: Vec<Vec<String>> = hosts.iter().map(|h| host_copy(format, &text, h)).collect();
        // Expected: each host's events scanned offline, on their own.
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
        assert!(
            !expected.is_empty(),
            "{format}: the recording alerts offline"
        );
        // The hosts interleaved line by line, each line a message keyed by its host.
        let longest = copies.iter().map(Vec::len).max().unwrap();
        let mut messages = Vec::new();
        for i in 0..longest {
            for (h, lines) in hosts.iter().zip(&copies) {
                if let Some(l) = lines.get(i) {
                    messages.push((h.to_string(), l.clone().into_bytes()));
                }
            }
        }
        let topic = format!("telemetry-{format}");
        broker.create_topic(&topic, 4);
        broker.produce(&topic, &messages);
        let got = alert_keys(&stream_alerts(
            &broker,
            &topic,
            &format!("g-{format}"),
            format,
        ));
        assert_eq!(got, expected, "{format}: stream against offline scan");
        let total: usize = expected.values().sum();
        eprintln!(
            "{format}: {} messages, {total} alerts as offline",
            messages.len()
        );
    }
}

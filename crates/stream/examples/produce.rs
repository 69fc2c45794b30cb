//! Produces NDJSON events (stdin) to a topic, each keyed by its `host.name` (as a fleet's
//! shippers are set up to key, see README "Running on a fleet") and timestamped with its
//! `@timestamp` (as Beats' Kafka output does): the producer side of `bench/stream-throughput.sh`.
//!
//! `cargo run --release -p unithunt-stream --example produce -- BROKERS TOPIC < events.ndjson`

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::io::BufRead;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: produce BROKERS TOPIC < events.ndjson");
        std::process::exit(2);
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args[1])
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()
        .expect("producer");
    let mut sent = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        // The key: the event's host.name, found without parsing the whole document.
        let key = line
            .split("\"host\":{")
            .nth(1)
            .and_then(|h| h.split("\"name\":\"").nth(1))
            .and_then(|n| n.split('"').next())
            .unwrap_or("")
            .to_string();
        // The message time: the event's, so that a rebuild reads back the rules' span of event
        // time, as it does behind a Beats shipper.
        let ts = line
            .split("\"@timestamp\":\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .and_then(|t| {
                unithunt_event::parse_timestamp(
                    &serde_json::Value::String(t.to_string()),
                    unithunt_event::TimestampFormat::Auto,
                )
            })
            .map(|ns| ns / 1_000_000);
        let mut record = BaseRecord::to(&args[2]).key(&key).payload(&line);
        if let Some(ms) = ts {
            record = record.timestamp(ms);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        sent += 1;
        if sent.is_multiple_of(10_000) {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("acknowledged");
    eprintln!("produced {sent} messages");
}

//! `unithunt stream`: the rule pack as a worker of a Kafka consumer group. The worker is
//! `unithunt_stream::Worker`; this file is its command line.

use crate::input_args::InputFormat;
use crate::term::escape;
use crate::watch::{install_signals, WatchOutput, SIGNALS};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use unithunt_stream::rules_topic::{RuleText, RulesTopic};
use unithunt_stream::spool::Spool;
use unithunt_stream::{parse_client_setting, StreamOptions, Worker};

#[derive(Args)]
pub struct StreamArgs {
    /// Bootstrap brokers, `HOST:PORT[,HOST:PORT...]`.
    #[arg(long, required = true)]
    brokers: String,
    /// A topic to consume (repeatable).
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    /// The consumer group: run N workers with the same group to share the partitions.
    #[arg(long, required = true)]
    group: String,
    /// The format of the messages' values; `auto` sniffs it per key.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// Produce each alert to this topic, keyed by its id (acks=all, idempotent producer).
    #[arg(long, value_name = "TOPIC")]
    alerts_topic: Option<String>,
    /// A librdkafka setting for the consumer and the producer, e.g. `-X security.protocol=SSL`
    /// (repeatable; as `kcat -X`).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_client_setting)]
    client: Vec<(String, String)>,
    /// Rules and tuning, as for `scan`; reloaded on SIGHUP.
    #[command(flatten)]
    rule_args: crate::rule_args::RuleArgs,
    /// What to print on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t = WatchOutput::Table)]
    output: WatchOutput,
    /// Remote sinks (shipped from the journal; offsets are committed once they delivered the
    /// alerts of the events before them).
    #[command(flatten)]
    remote: crate::remote_args::RemoteArgs,
    /// The alert journal: every alert, NDJSON, the spool of --http and --syslog (default with
    /// those: `/var/lib/unithunt/stream-GROUP.alerts.ndjson`; each worker needs its own).
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Rotate the journal past this many bytes (one previous file is kept: FILE.1).
    #[arg(long, default_value_t = 64 << 20)]
    alerts_max_bytes: u64,
    /// Rules from this compacted topic too (as Confluent Sigma publishes them: the key names
    /// the rule, the value is Sigma YAML or Elastic TOML, an empty value withdraws it); read
    /// whole at start and followed, a change reloading the rules.
    #[arg(long, value_name = "TOPIC")]
    rules_topic: Option<String>,
    /// Print a statistics line (and one per partition: position, lag) every N seconds (0: only
    /// on SIGUSR1).
    #[arg(long, default_value_t = 0)]
    stats_interval: u64,
    /// Stop once no message has come for this many milliseconds, closing open events and
    /// committing everything (for replays and tests; default: run until SIGTERM).
    #[arg(long, value_name = "MS")]
    exit_when_idle: Option<u64>,
    /// Cap on pending sequences, sample keys and correlation groups per rule and partition.
    #[arg(long, default_value_t = unithunt_detect::DEFAULT_MAX_PENDING)]
    max_pending: usize,
    /// Bytes of messages read again at most to rebuild an assigned partition's state (the
    /// rules' look-back before its commit); past it the rebuild is cut and said.
    #[arg(long, default_value_t = 512 << 20)]
    replay_max_bytes: u64,
}

pub fn run(args: StreamArgs) -> ExitCode {
    match start(&args) {
        Ok(code) => code,
        // Rules that do not load are already rendered for the terminal.
        Err((code, e)) => {
            eprintln!("{e}");
            ExitCode::from(code)
        }
    }
}

/// Runs the worker; an error is the exit status and what to print.
fn start(args: &StreamArgs) -> Result<ExitCode, (u8, String)> {
    let setup = |e: String| (2, format!("error: {}", escape(&e)));
    let rules_topic = args
        .rules_topic
        .as_ref()
        .map(|t| RulesTopic::open(&args.brokers, &args.client, t))
        .transpose()
        .map_err(setup)?;
    let from_topic = rules_topic
        .as_ref()
        .map(RulesTopic::texts)
        .unwrap_or_default();
    let set = args
        .rule_args
        .load_kept_with(&from_topic)
        .map_err(|e| (2, e))?;
    let options = StreamOptions {
        brokers: args.brokers.clone(),
        topics: args.topics.clone(),
        group: args.group.clone(),
        format: args.input_format.0,
        alerts_topic: args.alerts_topic.clone(),
        client: args.client.clone(),
        exit_when_idle: args.exit_when_idle.map(Duration::from_millis),
        stats_interval: args.stats_interval,
        max_pending: args.max_pending,
        replay_max_bytes: args.replay_max_bytes,
    };
    // A journal with `--alerts`, or as the spool of a remote sink.
    let journal = match (&args.alerts, args.remote.any()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(Spool::default_path(&args.group)),
        (None, false) => None,
    };
    let spool = journal
        .map(|p| Spool::open(&p, args.alerts_max_bytes, &args.remote.remote()))
        .transpose()
        .map_err(setup)?;
    let mut stdout = crate::watch::stdout_printer(args.output);
    install_signals();
    let mut worker = Worker::new(options, set, &mut stdout, spool, rules_topic).map_err(setup)?;
    let reload = |from_topic: &[RuleText]| args.rule_args.load_kept_with(from_topic);
    match worker.run(&SIGNALS, &reload) {
        Ok(report) if report.sink_failed => Ok(ExitCode::from(1)),
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err((1, format!("error: {}", escape(&e)))),
    }
}

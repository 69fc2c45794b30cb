//! `unithunt eql QUERY [PATH...]`: the hunting shell, with `_eql/search` parameters as flags.

use crate::input_args::InputFormat;
use crate::term::escape;
use clap::{Args, ValueEnum};
use serde_json::{json, Value as Json};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;
use unithunt_detect::window::{Take, REORDER_BUDGET};
use unithunt_detect::{QueryRun, QueryRunOptions, QueryTally};
use unithunt_engine::{Output, Pipe, Prefilter, Query, QueryKind, RunOptions};
use unithunt_eql::{compile, Dialect, EqlOptions};
use unithunt_event::{neutral, FieldPath};
use unithunt_readers::{read_input, ConvertOptions, Converters, ReadStats};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DialectArg {
    /// Elasticsearch EQL (Kibana, `_eql/search`).
    Es,
    /// The Python `eql` package (endgameinc/eql).
    Legacy,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Position {
    Head,
    Tail,
}

#[derive(Args)]
pub struct EqlArgs {
    /// The EQL query (use `-f FILE` to read it from a file instead).
    #[arg(required_unless_present = "query_file")]
    query: Option<String>,
    /// Input files or directories: ECS NDJSON, a JSON array, an Elasticsearch search response, or
    /// any format `scan` reads (audit logs, LAUREL, Sysmon, Defender; plain, gzip or zstd); `-`
    /// (or none) is stdin.
    paths: Vec<String>,
    /// Input format; `auto` sniffs each file.
    #[arg(long, default_value = "auto", value_parser = InputFormat::parser())]
    input_format: InputFormat,
    /// Read the query from a file; every positional argument is then an input.
    #[arg(short = 'f', long = "query-file")]
    query_file: Option<String>,
    /// Field holding the event time (ISO-8601, epoch milliseconds, or a numeric string).
    #[arg(long, default_value = "@timestamp")]
    timestamp_field: String,
    /// Field an event category (`process where`) tests (default: `event.category`; in the
    /// legacy dialect `event_type`, as the Python engine reads).
    #[arg(long)]
    event_category_field: Option<String>,
    /// Field breaking ties between events with the same timestamp.
    #[arg(long)]
    tiebreaker_field: Option<String>,
    /// How many events or sequences to return (Elasticsearch's default is 10).
    #[arg(long, default_value_t = 10)]
    size: usize,
    /// Return the earliest (`head`) or the most recent (`tail`, Elasticsearch's default) matches.
    #[arg(long, value_enum, default_value = "tail")]
    result_position: Position,
    /// Samples per join key for `sample` queries.
    #[arg(long, default_value_t = 1)]
    max_samples_per_key: usize,
    /// EQL dialect.
    #[arg(long, value_enum, default_value = "es")]
    dialect: DialectArg,
    /// Legacy dialect: compare strings case-sensitively.
    #[arg(long)]
    case_sensitive: bool,
    /// Legacy lineage (`descendant of`, `child of`, `event of`): the field naming an event's process.
    #[arg(long)]
    pid_field: Option<String>,
    /// Legacy lineage: the field naming the parent process.
    #[arg(long)]
    ppid_field: Option<String>,
    /// Elasticsearch dialect: the index mapping to resolve fields against, as `GET index/_mapping`
    /// returns it (one or several indices; repeat the flag for several files). Fields then
    /// compare by their types (`version`, `ip`, `date` with its `format`, numbers, booleans),
    /// aliases resolve, a `text` field uses its keyword sub-field, `?field` in no mapping is
    /// null, and a field in no mapping is an error, all as Elasticsearch answers.
    #[arg(long, value_name = "FILE")]
    mapping: Vec<String>,
    /// Cap on pending partial sequences (evictions are reported); the default of `scan`.
    #[arg(long, default_value_t = unithunt_detect::DEFAULT_MAX_PENDING)]
    max_pending: usize,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// The query (from the command line or `-f FILE`) compiled with the options the flags give; an
/// error is printed with its place, and is the exit status.
fn load_query(args: &EqlArgs) -> Result<(EqlOptions, unithunt_engine::Query), ExitCode> {
    let (text, origin) = match (&args.query, &args.query_file) {
        (_, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) => (t, f.clone()),
            Err(e) => {
                eprintln!("error: cannot read query file {}: {e}", escape(f));
                return Err(ExitCode::from(2));
            }
        },
        (Some(q), None) => (q.clone(), "query".to_string()),
        (None, None) => unreachable!("clap requires one"),
    };
    let mut opts = match args.dialect {
        DialectArg::Es => EqlOptions::elasticsearch(),
        DialectArg::Legacy => EqlOptions::legacy(),
    };
    opts.case_sensitive = args.case_sensitive || opts.dialect == Dialect::Elasticsearch;
    // Given, it wins in either dialect (even when it names a dialect's default).
    if let Some(f) = &args.event_category_field {
        opts.category_field = f.clone();
    }
    if let Some(f) = &args.pid_field {
        opts.pid_field = f.clone();
    }
    if let Some(f) = &args.ppid_field {
        opts.ppid_field = f.clone();
    }
    if !args.mapping.is_empty() {
        if opts.dialect != Dialect::Elasticsearch {
            eprintln!("error: --mapping is for the Elasticsearch dialect (the legacy dialect has no mappings)");
            return Err(ExitCode::from(2));
        }
        match read_mappings(&args.mapping) {
            Ok(m) => opts.mapping = Some(std::sync::Arc::new(m)),
            Err(e) => {
                eprintln!("error: {}", escape(&e));
                return Err(ExitCode::from(2));
            }
        }
    }
    match compile(&text, &opts) {
        Ok(q) => Ok((opts, q)),
        Err(e) => {
            eprint!("{}", e.render(&text, &escape(&origin)));
            Err(ExitCode::from(2))
        }
    }
}

/// A mapping file is at most this large (Elastic's full ECS template is about 1 MiB).
const MAX_MAPPING_BYTES: u64 = 64 << 20;

/// The mappings of every `--mapping` file, merged as the indices of one search.
fn read_mappings(paths: &[String]) -> Result<unithunt_eql::Mapping, String> {
    use std::io::Read;
    let mut indices = serde_json::Map::new();
    for path in paths {
        let file =
            std::fs::File::open(path).map_err(|e| format!("cannot read mapping {path}: {e}"))?;
        let mut text = String::new();
        file.take(MAX_MAPPING_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read mapping {path}: {e}"))?;
        if text.len() as u64 > MAX_MAPPING_BYTES {
            return Err(format!(
                "mapping {path} is larger than {} MiB",
                MAX_MAPPING_BYTES >> 20
            ));
        }
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            let why = e.to_string();
            let why = why
                .rsplit_once(" at line ")
                .map_or(why.as_str(), |(w, _)| w);
            format!(
                "mapping {path}:{}:{}: not JSON: {why}",
                e.line(),
                e.column()
            )
        })?;
        // A bare mapping (`{"properties": ..}` or `{"mappings": ..}`) is an index named after
        // its file; a `GET _mapping` body brings its own index names.
        let bare = doc.as_object().is_some_and(|o| {
            o.contains_key("properties") || o.contains_key("mappings") || o.contains_key("runtime")
        });
        if bare {
            let body = match doc.get("mappings") {
                Some(m) => m.clone(),
                None => doc,
            };
            indices.insert(path.clone(), serde_json::json!({ "mappings": body }));
        } else if let Some(o) = doc.as_object() {
            for (name, body) in o {
                indices.insert(name.clone(), body.clone());
            }
        } else {
            return Err(format!(
                "mapping {path}: expected a JSON object (the body of GET index/_mapping)"
            ));
        }
    }
    unithunt_eql::Mapping::from_json(&serde_json::Value::Object(indices))
        .map_err(|e| format!("mapping: {e}"))
}

/// The summary on stderr: what was read, what was found, and what was cut or late.
fn print_summary(args: &EqlArgs, stats: &ReadStats, t: &QueryTally, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "unithunt eql: {} file(s), {} bytes, {} lines: {} events evaluated, {} skipped by the literal prefilter, {} malformed or blank; {} result(s){}; {:.3}s ({:.0} lines/s)",
        stats.files,
        stats.bytes,
        stats.lines,
        stats.events,
        stats.filtered,
        stats.skipped,
        t.total,
        if t.shown < t.total { format!(", {} shown (--size)", t.shown) } else { String::new() },
        secs,
        stats.lines as f64 / secs.max(1e-9),
    );
    for s in &stats.reported {
        let _ = writeln!(
            err,
            "  skipped {}:{}: {}",
            escape(&s.file),
            s.line,
            escape(&s.reason)
        );
    }
    if stats.skipped as usize > stats.reported.len() {
        let _ = writeln!(
            err,
            "  ... and {} more skipped lines",
            stats.skipped as usize - stats.reported.len()
        );
    }
    if t.no_time > 0 {
        let (f, l) = t.no_time_example.clone().unwrap_or_default();
        let _ = writeln!(err, "  {} event(s) without a readable {} were not evaluated (first: {}:{l}); see --timestamp-field", t.no_time, escape(&args.timestamp_field), escape(&f));
    }
    if t.evicted > 0 {
        let _ = writeln!(
            err,
            "  warning: {} pending sequence(s) evicted at the --max-pending cap of {}",
            t.evicted, args.max_pending
        );
    }
    if t.keys_cut > 0 {
        let _ = writeln!(
            err,
            "  warning: {} event(s) had more than {} join-key combinations (multi-valued keys); the rest were not joined on",
            t.keys_cut,
            unithunt_engine::MAX_KEY_COMBINATIONS
        );
    }
    if t.late > 0 {
        let _ = writeln!(
            err,
            "  note: {} event(s) matching a stage came more than {REORDER_BUDGET} candidates out of time order and were sequenced late; sort the input by time for Elasticsearch's exact answer",
            t.late
        );
    }
    if std::io::stderr().is_terminal() && t.total == 0 {
        let _ = writeln!(err, "  no match");
    }
}

pub fn run(mut args: EqlArgs) -> ExitCode {
    let started = Instant::now();
    settle_paths(&mut args);
    let (opts, query) = match load_query(&args) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let legacy = opts.dialect == Dialect::Legacy;
    // Lineage needs every event; otherwise lines no stage can match are dropped before parsing.
    let stage_filters = query.stage_filters();
    let prefilter = (query.lineage.is_empty())
        .then(|| Prefilter::new(&stage_filters))
        .filter(Prefilter::is_useful);
    let mut collector = QueryRun::new(
        &query,
        QueryRunOptions {
            legacy,
            timestamp_field: FieldPath::parse(&args.timestamp_field),
            tiebreaker_field: args.tiebreaker_field.as_deref().map(FieldPath::parse),
            run: RunOptions {
                max_pending: args.max_pending,
                max_samples_per_key: args.max_samples_per_key,
            },
            window: result_window(&query, legacy, &args),
        },
    );
    let mut stats = ReadStats::default();
    let io_error = read_inputs(&args, prefilter.as_ref(), &mut collector, &mut stats);
    let from_tail = matches!(args.result_position, Position::Tail);
    let (outputs, tally) = collector.finish(args.size, from_tail, query.pipes.len());
    write_outputs(&outputs);
    if !args.quiet {
        print_summary(&args, &stats, &tally, started);
    }
    if io_error {
        ExitCode::from(2)
    } else if tally.total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Sorts the positional arguments into query and inputs: with `-f`, the first one is an input;
/// no input means stdin.
fn settle_paths(args: &mut EqlArgs) {
    if args.query_file.is_some() {
        // With -f, the first positional argument is an input, not a query.
        if let Some(first) = args.query.take() {
            args.paths.insert(0, first);
        }
    }
    if args.paths.is_empty() {
        args.paths.push("-".into());
    }
}

/// The chain of takes an Elasticsearch event query whose pipes are all heads and tails ends
/// with (its pipes, then `--size` from `--result-position`); `None` for other queries.
fn result_window(query: &Query, legacy: bool, args: &EqlArgs) -> Option<Vec<Take>> {
    let final_step = match args.result_position {
        Position::Head => Take::Head(args.size),
        Position::Tail => Take::Tail(args.size),
    };
    match (&query.kind, legacy) {
        (QueryKind::Events(_), false) => query
            .pipes
            .iter()
            .map(|p| match p {
                Pipe::Head(n) => Some(Take::Head(*n)),
                Pipe::Tail(n) => Some(Take::Tail(*n)),
                _ => None,
            })
            .chain(std::iter::once(Some(final_step)))
            .collect(),
        _ => None,
    }
}

/// Reads every input into `collector`, printing each input's error; true when one failed.
fn read_inputs(
    args: &EqlArgs,
    prefilter: Option<&Prefilter>,
    collector: &mut QueryRun,
    stats: &mut ReadStats,
) -> bool {
    let mut io_error = false;
    let mut converters = Converters::new(ConvertOptions::default());
    let named: Vec<std::path::PathBuf> = args.paths.iter().map(Into::into).collect();
    let mut not_read = Vec::new();
    let (paths, errors) = crate::input_args::expand(&named, &mut not_read);
    for (p, e) in errors {
        eprintln!("error: {}: {e}", escape(&p.to_string_lossy()));
        io_error = true;
    }
    for path in &paths {
        let opened = crate::input_args::for_each_input(
            path,
            args.input_format.0,
            1 << 20,
            &mut not_read,
            &mut |input| {
                let input = match input {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("error: {}: {e}", escape(&path.to_string_lossy()));
                        io_error = true;
                        return;
                    }
                };
                let name = input.name().to_string();
                let converter = converters.get(input.format);
                let mut keep = |raw: &[u8]| prefilter.is_none_or(|p| p.any(raw));
                let mut sink = |doc: Json, line: u64| collector.push(doc, &name, line);
                if let Err(e) = read_input(input, converter, &mut keep, &mut sink, stats) {
                    eprintln!(
                        "error: {}: read failed after {} bytes: {e}",
                        escape(&name),
                        stats.bytes
                    );
                    io_error = true;
                }
            },
        );
        if let Err(e) = opened {
            eprintln!("error: {}: {e}", escape(&path.to_string_lossy()));
            io_error = true;
        }
    }
    if !args.quiet {
        crate::input_args::say_not_read(&not_read);
    }
    io_error
}

/// Writes the results to stdout, one JSON document a line.
fn write_outputs(outputs: &[Output]) {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for o in outputs {
        let line = match o {
            Output::Event(doc) => neutral::to_string(doc.as_ref()),
            Output::Sequence { join_keys, events } => neutral::to_string(&json!({
                "join_keys": join_keys,
                "events": events.iter().map(|e| match e {
                    Some(d) => d.as_ref().clone(),
                    None => json!({"missing": true}),
                }).collect::<Vec<_>>(),
            })),
        };
        if let Ok(l) = line {
            if writeln!(out, "{l}").is_err() {
                break; // stdout closed (e.g. piped into `head`)
            }
        }
    }
    let _ = out.flush();
}

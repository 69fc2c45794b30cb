//! `unithunt atomic`: the seed page's adversary tests, built in. `list` and `show` say what each
//! test does and what each data source should record; `emit` prints the telemetry a real run of
//! it produced; `run` plays it on this host (or into a directory tree) and always cleans up;
//! `verify` plays the four tests under auditd and says, per test and per rule, what was detected.
//!
//! The tests are shell scripts run by `sh`, the way an operator would type them; `$R` is the root
//! they write under (empty for the live system) and `$LIVE` is 1 when systemctl and useradd may
//! run. Artefacts are named `unithunt-atomic-*` (and `syslogd.service`, the seed's test 3) and are
//! removed after each run, on failure and on Ctrl-C too.

use crate::term::escape;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use unithunt_readers::{ConvertOptions, Format, Input};

/// The real recording of the tests (see `examples/atomic/README.md`).
const RECORDING: &str = include_str!("../../../examples/atomic/dev-enriched.log");
/// The real recording of each technique of the rule pack's scope, one marker exec
/// (`UNITHUNT-TECHNIQUE <id>`) before each (see `examples/atomic/README.md`).
const TECHNIQUE_RECORDING: &str = include_str!("../../../examples/atomic/techniques.log");

/// A technique of the rule pack's scope, recorded under auditd: (id, what was done, the rule
/// that must alert on it).
const TECHNIQUES: &[(&str, &str, &str)] = &[
    (
        "timer-usr-local-lib",
        "a .timer in /usr/local/lib/systemd/system (PANIX's place)",
        WRITTEN,
    ),
    ("socket-etc", "a .socket in /etc/systemd/system", WRITTEN),
    ("path-run", "a .path unit in /run/systemd/system", WRITTEN),
    (
        "service-usr-lib",
        "a .service in /usr/lib/systemd/system (a package's place)",
        WRITTEN,
    ),
    (
        "user-etc",
        "a user unit for every user, in /etc/systemd/user",
        WRITTEN,
    ),
    (
        "user-local-share",
        "a user unit in ~/.local/share/systemd/user, by that user",
        WRITTEN,
    ),
    (
        "dropin",
        "a drop-in ssh.service.d/*.conf adding ExecStartPost",
        WRITTEN,
    ),
    (
        "rename-into-place",
        "a unit moved from /tmp into /etc/systemd/system (mv)",
        WRITTEN,
    ),
    ("copy", "a unit copied into place (cp)", WRITTEN),
    (
        "hard-link",
        "a hard link to a unit under another name (ln)",
        WRITTEN,
    ),
    (
        "symbolic-link",
        "a symbolic link in /etc/systemd/system to a unit in /opt (ln -s)",
        WRITTEN,
    ),
    (
        "in-place-edit",
        "a unit edited in place (sed -i: temporary file renamed over it)",
        WRITTEN,
    ),
    ("append", "a unit appended to (>>)", WRITTEN),
    (
        "environment-generator",
        "an environment generator in /usr/local/lib",
        GENERATOR,
    ),
    (
        "user-generator",
        "a user generator in /etc/systemd/user-generators",
        GENERATOR,
    ),
    (
        "systemd-run",
        "a transient unit started with systemd-run from bash",
        ACTIVATED,
    ),
    (
        "systemctl-link",
        "systemctl link of a unit outside the load path",
        ACTIVATED,
    ),
    (
        "systemctl-reenable-now",
        "systemctl reenable --now",
        ACTIVATED,
    ),
    (
        "systemctl-global",
        "systemctl --global enable (every user's manager)",
        ACTIVATED,
    ),
    (
        "ancestry",
        "systemctl enable with one process (timeout) between it and the shell",
        ACTIVATED,
    ),
    (
        "lookalike-digit",
        "a unit named sys1og.service (a digit for a letter)",
        LOOKALIKE,
    ),
];

/// The test user of test 2, created and removed by `run` on the live system.
const USER: &str = "unithunt-atomic";

/// The audit rules the recording was made with, under this command's own key so that cleaning
/// up removes exactly them.
const AUDIT_KEY: &str = "unithunt-atomic";
const AUDIT_RULES: [&str; 7] = [
    "-w /etc/systemd -p wa",
    "-w /usr/lib/systemd -p wa",
    "-w /usr/local/lib/systemd -p wa",
    "-w /run/systemd -p wa",
    "-a always,exit -F arch=b64 -S execve",
    "-a always,exit -F arch=b64 -S creat,rename,renameat,renameat2,link,symlink,symlinkat -F dir=/home",
    "-a always,exit -F arch=b64 -S openat -F dir=/home -F a2&0100",
];

/// The unit the tests write: Atomic Red Team's payload shape for T1543.002 (a marker file in
/// /tmp, written only if the unit ever starts; the tests enable it but never start it). It is
/// printed with `printf` inside quotes: no quote, `%` or backslash other than `\n` in it.
const UNIT: &str = r"[Unit]\nDescription=unithunt atomic test\n[Service]\nType=oneshot\nExecStart=/usr/bin/touch /tmp/unithunt-atomic-marker\n[Install]\nWantedBy=multi-user.target\n";

struct Atomic {
    id: &'static str,
    /// Its scenario in the recording.
    recorded_as: &'static str,
    name: &'static str,
    malicious: bool,
    what: &'static str,
    /// (data source, what it should record), as the seed page lists them.
    signals: &'static [(&'static str, &'static str)],
    /// Rules of the default pack that must alert on it (none for benign tests).
    rules: &'static [&'static str],
    /// The test, for `sh -c` (see the module comment for `$R` and `$LIVE`); `None`: not played.
    script: Option<&'static str>,
    /// Files it leaves, under `$R`.
    artefacts: &'static [&'static str],
}

const WRITTEN: &str = "Systemd Unit or Drop-in Written Outside Package Management";
const SEQUENCE: &str = "Systemd Unit Written Then Activated";
const LOOKALIKE: &str = "Systemd Unit Named Like a Well-Known Service";
const GENERATOR: &str = "Systemd Generator or Environment Generator Written";
const ACTIVATED: &str =
    "Systemd Unit Activated from a Shell, Interpreter, Web Server or Download Tool";

const TESTS: &[Atomic] = &[
    Atomic {
        id: "1",
        recorded_as: "D1",
        name: "Create a malicious systemd service for persistence (root)",
        malicious: true,
        what: "root writes /etc/systemd/system/unithunt-atomic-root.service from a shell, then runs systemctl daemon-reload and enable.",
        signals: &[
            ("auditd", "SYSCALL openat with the unit's path (PATH nametype=CREATE), then EXECVE of systemctl daemon-reload and enable"),
            ("Elastic Defend", "file creation event for the .service file; process start events of systemctl from bash"),
            ("Defender for Endpoint", "DeviceFileEvents FileCreated for the .service file; DeviceProcessEvents for systemctl by root"),
        ],
        rules: &[WRITTEN, SEQUENCE],
        script: Some(
            "mkdir -p \"$R/etc/systemd/system\" && printf '%UNIT%' > \"$R/etc/systemd/system/unithunt-atomic-root.service\" && \
             if [ \"$LIVE\" = 1 ]; then systemctl daemon-reload; systemctl enable unithunt-atomic-root.service; fi; true",
        ),
        artefacts: &[
            "/etc/systemd/system/unithunt-atomic-root.service",
            "/etc/systemd/system/multi-user.target.wants/unithunt-atomic-root.service",
        ],
    },
    Atomic {
        id: "2",
        recorded_as: "D2",
        name: "User-level systemd service persistence (non-root)",
        malicious: true,
        what: "a non-root user (unithunt-atomic, created for the test) writes ~/.config/systemd/user/unithunt-atomic-user.service and runs systemctl --user daemon-reload.",
        signals: &[
            ("auditd", "openat creating the file under the user's home (needs the /home audit rules), EXECVE of systemctl --user"),
            ("Elastic Defend", "file creation under ~/.config/systemd/user; systemctl --user process starts; user.name is the test user"),
            ("Defender for Endpoint", "DeviceFileEvents FileCreated in the home directory; InitiatingProcessAccountName is the user"),
        ],
        rules: &[WRITTEN, SEQUENCE],
        script: Some(
            "if [ \"$LIVE\" = 1 ]; then id -u unithunt-atomic >/dev/null 2>&1 || useradd -m unithunt-atomic || exit 1; \
               runuser -u unithunt-atomic -- sh -c 'mkdir -p ~/.config/systemd/user && printf \"%UNIT%\" > ~/.config/systemd/user/unithunt-atomic-user.service && systemctl --user daemon-reload; true'; \
             else mkdir -p \"$R/home/unithunt-atomic/.config/systemd/user\" && printf '%UNIT%' > \"$R/home/unithunt-atomic/.config/systemd/user/unithunt-atomic-user.service\"; fi",
        ),
        artefacts: &["/home/unithunt-atomic/.config/systemd/user/unithunt-atomic-user.service"],
    },
    Atomic {
        id: "3",
        recorded_as: "D3",
        name: "Systemd service mimicking a legitimate service name",
        malicious: true,
        what: "root writes /etc/systemd/system/syslogd.service (the real daemon's unit is rsyslog.service) and enables it.",
        signals: &[
            ("auditd", "openat creating /etc/systemd/system/syslogd.service, EXECVE of systemctl enable syslogd.service"),
            ("Elastic Defend", "file creation of syslogd.service; systemctl enable process start"),
            ("Defender for Endpoint", "DeviceFileEvents FileCreated for syslogd.service; DeviceProcessEvents systemctl enable syslogd.service"),
        ],
        rules: &[WRITTEN, LOOKALIKE, SEQUENCE],
        script: Some(
            "mkdir -p \"$R/etc/systemd/system\" && printf '%UNIT%' > \"$R/etc/systemd/system/syslogd.service\" && \
             if [ \"$LIVE\" = 1 ]; then systemctl enable syslogd.service; fi; true",
        ),
        artefacts: &[
            "/etc/systemd/system/syslogd.service",
            "/etc/systemd/system/multi-user.target.wants/syslogd.service",
        ],
    },
    Atomic {
        id: "4",
        recorded_as: "D4",
        name: "Systemd generator for dynamic service creation",
        malicious: true,
        what: "root drops an executable generator /usr/local/lib/systemd/system-generators/unithunt-atomic-gen, runs systemctl daemon-reload, and runs the generator as systemd does (three output directories), which writes /run/systemd/generator/unithunt-atomic-gen.service.",
        signals: &[
            ("auditd", "openat creating the generator, chmod, EXECVE of the generator with the three directories, openat creating the generated unit in /run/systemd/generator"),
            ("Elastic Defend", "file creation in system-generators/ and in /run/systemd/generator/; the generator's process start"),
            ("Defender for Endpoint", "DeviceFileEvents FileCreated for the generator and the generated unit"),
        ],
        rules: &[GENERATOR, SEQUENCE],
        script: Some(
            "mkdir -p \"$R/usr/local/lib/systemd/system-generators\" \"$R/run/systemd/generator\" \"$R/run/systemd/generator.early\" \"$R/run/systemd/generator.late\" && \
             printf '#!/bin/sh\\nprintf \"[Service]\\\\nExecStart=/bin/true\\\\n\" > \"$1/unithunt-atomic-gen.service\"\\n' > \"$R/usr/local/lib/systemd/system-generators/unithunt-atomic-gen\" && \
             chmod +x \"$R/usr/local/lib/systemd/system-generators/unithunt-atomic-gen\" && \
             if [ \"$LIVE\" = 1 ]; then systemctl daemon-reload; fi; \
             \"$R/usr/local/lib/systemd/system-generators/unithunt-atomic-gen\" \"$R/run/systemd/generator\" \"$R/run/systemd/generator.early\" \"$R/run/systemd/generator.late\"",
        ),
        artefacts: &[
            "/usr/local/lib/systemd/system-generators/unithunt-atomic-gen",
            "/run/systemd/generator/unithunt-atomic-gen.service",
        ],
    },
    Atomic {
        id: "B1",
        recorded_as: "B1",
        name: "Benign: a package installs and enables its unit",
        malicious: false,
        what: "apt-get install at: dpkg unpacks atd.service (*.dpkg-new renamed into place), the maintainer script runs deb-systemd-helper, which enables the unit. Not played by `run` (it needs the network and installs a package); `emit` prints its recording.",
        signals: &[
            ("auditd", "dpkg's rename of atd.service.dpkg-new, systemctl preset under perl/dash/dpkg/apt-get"),
            ("Elastic Defend", "file events by dpkg and systemctl; process starts with dpkg in the ancestry"),
            ("Defender for Endpoint", "the same, with two ancestors per process"),
        ],
        rules: &[],
        script: None,
        artefacts: &[],
    },
    Atomic {
        id: "B2",
        recorded_as: "B2",
        name: "Benign: an administrator reads service state",
        malicious: false,
        what: "systemctl status, list-units and is-enabled from a shell.",
        signals: &[("auditd", "EXECVE of systemctl with read-only verbs")],
        rules: &[],
        script: Some(
            "if [ \"$LIVE\" = 1 ]; then systemctl status cron >/dev/null 2>&1; systemctl list-units --type=service >/dev/null 2>&1; systemctl is-enabled ssh >/dev/null 2>&1; fi; true",
        ),
        artefacts: &[],
    },
];

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitFormat {
    /// ECS NDJSON, as unithunt maps the audit records (what `convert` prints).
    Ecs,
    /// The raw audit records (ENRICHED), as auditd wrote them.
    Auditd,
    /// LAUREL JSON lines.
    Laurel,
    /// Sysmon for Linux syslog lines.
    Sysmon,
    /// Defender for Endpoint Advanced Hunting export (CSV rows of DeviceProcessEvents and
    /// DeviceFileEvents).
    Mde,
}

/// The other formats' renderings of the recording (`examples/atomic/RENDERINGS.md`: derived from it,
/// same times, each format's own fields).
const LAUREL: &str = include_str!("../../../examples/atomic/laurel/adversary-tests.json");
const SYSMON: &str = include_str!("../../../examples/atomic/sysmon/adversary-tests.syslog");
const MDE_CSV: &str = include_str!("../../../examples/atomic/defender/adversary-tests.csv");
const MDE_JSON: &str = include_str!("../../../examples/atomic/defender/adversary-tests.json");
/// The technique recording rendered in each format (`examples/atomic/RENDERINGS.md`), the Elastic
/// Defend one labelled by technique.
const TECH_LAUREL: &str = include_str!("../../../examples/atomic/laurel/techniques.json");
const TECH_SYSMON: &str = include_str!("../../../examples/atomic/sysmon/techniques.syslog");
const TECH_MDE_CSV: &str = include_str!("../../../examples/atomic/defender/techniques.csv");
const TECH_MDE_JSON: &str = include_str!("../../../examples/atomic/defender/techniques.json");
const TECH_DEFEND: &str = include_str!("../../../examples/atomic/ecs/techniques.ndjson");
/// Elastic Defend shaped events of the tests and benign twins (hand-built after the recording's
/// process trees; `labels.fixture_id` names each event's test).
const DEFEND_TESTS: &str = include_str!("../../../examples/atomic/ecs/adversary-tests.ndjson");
const DEFEND_BENIGN: &str = include_str!("../../../examples/atomic/ecs/benign-twins.ndjson");

#[derive(clap::Subcommand)]
pub enum AtomicCommand {
    /// List the tests.
    List,
    /// What a test does, the signal each data source should record, and the rules that must
    /// alert.
    Show { id: String },
    /// Print the telemetry a real run of the test produced: the audit records auditd wrote, their
    /// ECS mapping, or their LAUREL, Sysmon for Linux and Defender renderings.
    Emit {
        id: String,
        #[arg(long, value_enum, default_value = "ecs")]
        format: EmitFormat,
    },
    /// Play a test on this host (needs --yes; root for tests 1, 3 and 4) or, with --root, into a
    /// directory tree for hunting tests. Always cleans up on the live system, also on failure or
    /// Ctrl-C; a --root tree is left for you to hunt.
    Run {
        id: String,
        /// Really change this system.
        #[arg(long)]
        yes: bool,
        /// Write the test's files under DIR instead of the live system (no systemctl, no user).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Play tests 1-4 and B2 under auditd (as root; audit rules added for the run and removed
    /// after), scan the audit log they produced with the default pack, and print PASS or FAIL per
    /// test and per rule.
    Verify {
        /// Really change this system.
        #[arg(long)]
        yes: bool,
        /// The audit log auditd writes.
        #[arg(long, default_value = "/var/log/audit/audit.log")]
        log: PathBuf,
    },
}

pub fn run(cmd: AtomicCommand) -> ExitCode {
    match cmd {
        AtomicCommand::List => {
            for t in TESTS {
                println!(
                    "{:<3} {:<9} {}",
                    t.id,
                    if t.malicious { "malicious" } else { "benign" },
                    t.name
                );
            }
            ExitCode::SUCCESS
        }
        AtomicCommand::Show { id } => match find(&id) {
            Some(t) => {
                show(t);
                ExitCode::SUCCESS
            }
            None => unknown(&id),
        },
        AtomicCommand::Emit { id, format } => match find(&id) {
            Some(t) => emit(t, format),
            None => unknown(&id),
        },
        AtomicCommand::Run { id, yes, root } => match find(&id) {
            Some(t) => run_one(t, yes, root.as_deref()),
            None => unknown(&id),
        },
        AtomicCommand::Verify { yes, log } => verify(yes, &log),
    }
}

fn find(id: &str) -> Option<&'static Atomic> {
    TESTS.iter().find(|t| t.id.eq_ignore_ascii_case(id))
}

fn unknown(id: &str) -> ExitCode {
    let ids: Vec<&str> = TESTS.iter().map(|t| t.id).collect();
    eprintln!(
        "error: no atomic test {:?}; the tests are {}",
        escape(id),
        ids.join(", ")
    );
    ExitCode::from(2)
}

fn show(t: &Atomic) {
    println!("Test {}: {}", t.id, t.name);
    println!(
        "  {} (recorded as scenario {} in examples/atomic/dev-enriched.log)\n",
        if t.malicious { "malicious" } else { "benign" },
        t.recorded_as
    );
    println!("What it does: {}\n", t.what);
    println!("Expected signal:");
    for (source, signal) in t.signals {
        println!("  {source:<22} {signal}");
    }
    if t.rules.is_empty() {
        println!("\nRules that must alert: none (the default pack must stay quiet)");
    } else {
        println!("\nRules that must alert: {}", t.rules.join("; "));
    }
    if let Some(script) = t.script {
        println!("\nScript (sh; $R is the root written under, $LIVE=1 on the live system):");
        println!("  {}", script.replace("%UNIT%", UNIT));
        println!(
            "Artefacts removed after a live run: {}",
            t.artefacts.join(", ")
        );
    }
}

/// The audit serial of a record line (`msg=audit(1795806431.384:6443)`).
fn serial(line: &str) -> Option<u64> {
    let at = line.find("msg=audit(")? + "msg=audit(".len();
    let rest = &line[at..];
    let colon = rest.find(':')?;
    let close = rest.find(')')?;
    rest.get(colon + 1..close)?.parse().ok()
}

/// Where the part of `recording` marked `id` by `marker` lies, as `key` measures it (audit serial
/// or time): from the EXECVE record of its marker exec (`/bin/echo <marker> <id>`) to the next
/// marker's (`end` after the last).
fn marked_span<T: Ord + Copy>(
    recording: &str,
    marker: &str,
    id: &str,
    key: impl Fn(&str) -> Option<T>,
    end: T,
) -> Option<(T, T)> {
    let needle = format!("a1=\"{marker}\"");
    let mut marks: Vec<(T, String)> = recording
        .lines()
        .filter(|l| l.contains("type=EXECVE") && l.contains(&needle))
        .filter_map(|l| {
            let id = l.split("a2=\"").nth(1)?.split('"').next()?;
            Some((key(l)?, id.to_string()))
        })
        .collect();
    marks.sort();
    let i = marks.iter().position(|m| m.1 == id)?;
    Some((marks[i].0, marks.get(i + 1).map_or(end, |m| m.0)))
}

/// The lines of one marked part of a recording (see [`marked_span`]).
fn marked_lines(recording: &'static str, marker: &str, id: &str) -> Vec<&'static str> {
    let Some((from, to)) = marked_span(recording, marker, id, serial, u64::MAX) else {
        return Vec::new();
    };
    recording
        .lines()
        .filter(|l| serial(l).is_some_and(|s| s >= from && s < to))
        .collect()
}

/// The recording's lines of one scenario of the tests.
fn recorded_lines(scenario: &str) -> Vec<&'static str> {
    marked_lines(RECORDING, "UNITHUNT-SCENARIO", scenario)
}

fn emit(t: &Atomic, format: EmitFormat) -> ExitCode {
    let lines = recorded_lines(t.recorded_as);
    if lines.is_empty() {
        eprintln!("error: scenario {} is not in the recording", t.recorded_as);
        return ExitCode::FAILURE;
    }
    let mut raw = lines.join("\n");
    raw.push('\n');
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let window = window_of(t.recorded_as);
    let written = match format {
        EmitFormat::Auditd => out.write_all(raw.as_bytes()),
        EmitFormat::Ecs => match audit_to_ecs(raw.into_bytes()) {
            Ok(ecs) => out.write_all(&ecs),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        EmitFormat::Laurel => {
            out.write_all(lines_in(LAUREL, None, Format::Laurel, window).as_bytes())
        }
        EmitFormat::Sysmon => {
            out.write_all(lines_in(SYSMON, None, Format::Sysmon, window).as_bytes())
        }
        EmitFormat::Mde => {
            let (header, rows) = MDE_CSV.split_once('\n').unwrap_or((MDE_CSV, ""));
            out.write_all(lines_in(rows, Some(header), Format::DefenderCsv, window).as_bytes())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`).
        Err(_) => ExitCode::SUCCESS,
    }
}

/// The input formats the tests' telemetry exists in, in the order the coverage matrix shows them.
const SOURCES: [Format; 6] = [
    Format::Auditd,
    Format::Laurel,
    Format::Sysmon,
    Format::DefenderCsv,
    Format::DefenderJson,
    Format::Ecs,
];

/// How the coverage matrix names a format's column.
fn label(format: Format) -> &'static str {
    match format {
        Format::Auditd => "auditd (real recording)",
        Format::Laurel => "LAUREL",
        Format::Sysmon => "Sysmon for Linux",
        Format::DefenderCsv => "Defender CSV",
        Format::DefenderJson => "Defender JSON",
        Format::Ecs => "Elastic Defend (ECS)",
    }
}

/// A scenario's time span in the recording, in ms: from its marker to the next one.
fn window_of(scenario: &str) -> (i64, i64) {
    window_in(RECORDING, "UNITHUNT-SCENARIO", scenario)
}

/// The time span, in ms, of the part of `recording` marked `id` by `marker`: from its marker's
/// exec to the next marker's.
fn window_in(recording: &str, marker: &str, id: &str) -> (i64, i64) {
    let ms = |l: &str| -> Option<i64> {
        let at = l.find("msg=audit(")? + "msg=audit(".len();
        let stamp = l[at..].split(':').next()?;
        let (s, frac) = stamp.split_once('.')?;
        Some(s.parse::<i64>().ok()? * 1000 + frac.parse::<i64>().ok()?)
    };
    marked_span(recording, marker, id, ms, i64::MAX).unwrap_or((0, 0))
}

/// The milliseconds of an ECS event's `@timestamp`.
fn event_ms(e: &serde_json::Value) -> Option<i64> {
    unithunt_event::parse_timestamp(&e["@timestamp"], unithunt_event::TimestampFormat::Auto)
        .map(|ns| ns.div_euclid(1_000_000))
}

/// The lines of a line-per-event rendering whose event falls in `window` (each line converted
/// alone, after `header` for CSV, to read its time).
fn lines_in(text: &str, header: Option<&str>, source: Format, window: (i64, i64)) -> String {
    let mut out = String::new();
    if let Some(h) = header {
        out.push_str(h);
        out.push('\n');
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let one = match header {
            Some(h) => format!("{h}\n{line}\n"),
            None => format!("{line}\n"),
        };
        let inside = to_ecs(source, one.into_bytes())
            .iter()
            .filter_map(event_ms)
            .any(|t| t >= window.0 && t < window.1);
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every ECS event of a rendering, through the converters `scan` uses.
fn to_ecs(format: Format, raw: Vec<u8>) -> Vec<serde_json::Value> {
    let text = convert(format, raw).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Audit records to ECS NDJSON, through the converter `scan` and `convert` use.
fn audit_to_ecs(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    convert(Format::Auditd, raw)
}

/// A rendering in `format` to ECS NDJSON, read as `scan` reads a file.
fn convert(format: Format, raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut input = Input::from_bytes("recording", raw, Some(format)).map_err(|e| e.to_string())?;
    let mut converter = format.converter(&ConvertOptions::default());
    let mut out = Vec::new();
    while let Some(block) = input
        .next_ecs(converter.as_mut(), 1 << 20)
        .map_err(|e| e.to_string())?
    {
        out.extend_from_slice(&block.data);
    }
    Ok(out)
}

/// A row of the coverage matrix: a test (or a benign twin of the Elastic Defend fixtures).
struct CoverageRow {
    test: String,
    malicious: bool,
    source: Format,
    events: Vec<serde_json::Value>,
}

fn coverage_rows() -> Vec<CoverageRow> {
    let mut rows = Vec::new();
    for t in TESTS {
        let window = window_of(t.recorded_as);
        for source in SOURCES {
            let events: Vec<serde_json::Value> = match source {
                Format::Auditd => to_ecs(
                    source,
                    recorded_lines(t.recorded_as).join("\n").into_bytes(),
                ),
                Format::Laurel => to_ecs(source, LAUREL.as_bytes().to_vec()),
                Format::Sysmon => to_ecs(source, SYSMON.as_bytes().to_vec()),
                Format::DefenderCsv => to_ecs(source, MDE_CSV.as_bytes().to_vec()),
                Format::DefenderJson => to_ecs(source, MDE_JSON.as_bytes().to_vec()),
                Format::Ecs => {
                    let prefixes: Vec<String> = match t.id {
                        "B1" => [
                            "B-apt",
                            "B-dpkg",
                            "B-postinst",
                            "B-dsh",
                            "B-trigger",
                            "B-unit",
                        ]
                        .map(String::from)
                        .to_vec(),
                        "B2" => vec!["B-admin".into()],
                        id => vec![format!("T{id}-")],
                    };
                    fixture_events(&prefixes.iter().map(String::as_str).collect::<Vec<_>>())
                }
            };
            let events = match source {
                // Whole renderings: the test's time span.
                Format::Laurel | Format::Sysmon | Format::DefenderCsv | Format::DefenderJson => {
                    events
                        .into_iter()
                        .filter(|e| event_ms(e).is_some_and(|t| t >= window.0 && t < window.1))
                        .collect()
                }
                _ => events,
            };
            rows.push(CoverageRow {
                test: t.id.to_string(),
                malicious: t.malicious,
                source,
                events,
            });
        }
    }
    // The Elastic Defend fixtures' other benign twins: configuration management and cron.
    for (name, prefix) in [
        ("cron", "B-cron"),
        ("Ansible", "B-ansible"),
        ("Puppet", "B-puppet"),
    ] {
        rows.push(CoverageRow {
            test: format!("B {name}"),
            malicious: false,
            source: Format::Ecs,
            events: fixture_events(&[prefix]),
        });
    }
    rows
}

/// Elastic Defend fixture events whose `labels.fixture_id` starts with one of `prefixes`.
fn fixture_events(prefixes: &[&str]) -> Vec<serde_json::Value> {
    DEFEND_TESTS
        .lines()
        .chain(DEFEND_BENIGN.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["labels"]["fixture_id"]
                .as_str()
                .is_some_and(|id| prefixes.iter().any(|p| id.starts_with(p)))
        })
        .collect()
}

/// The technique recording's lines of one technique.
fn technique_lines(id: &str) -> Vec<&'static str> {
    marked_lines(TECHNIQUE_RECORDING, "UNITHUNT-TECHNIQUE", id)
}

/// One technique's events in one format, as unithunt reads them.
fn technique_events(id: &str, source: Format) -> Vec<serde_json::Value> {
    // The renderings' record ids (LAUREL's `ID`, Sysmon's `EventRecordID`, Defender's
    // `ReportId`) are the audit serials: the technique's events lie between its marker's serial
    // and the next marker's (the audit clock is too coarse to split them by time).
    let lines = technique_lines(id);
    let (from, to) = (
        lines.first().and_then(|l| serial(l)).unwrap_or(0),
        lines.last().and_then(|l| serial(l)).unwrap_or(0),
    );
    let whole = |text: &str| {
        to_ecs(source, text.as_bytes().to_vec())
            .into_iter()
            .filter(|e| record_serial(e).is_some_and(|s| s >= from && s <= to))
            .collect()
    };
    match source {
        Format::Auditd => to_ecs(source, technique_lines(id).join("\n").into_bytes()),
        Format::Laurel => whole(TECH_LAUREL),
        Format::Sysmon => whole(TECH_SYSMON),
        Format::DefenderCsv => whole(TECH_MDE_CSV),
        Format::DefenderJson => whole(TECH_MDE_JSON),
        Format::Ecs => TECH_DEFEND
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["labels"]["fixture_id"] == id)
            .collect(),
    }
}

/// The audit serial an event of a technique rendering carries: `event.sequence` (auditd, LAUREL)
/// or the record id the rendering was given (`event.id`).
fn record_serial(e: &serde_json::Value) -> Option<u64> {
    e["event"]["sequence"].as_u64().or_else(|| {
        let id = e["event"]["id"].as_str()?;
        id.rsplit(':').next()?.parse().ok()
    })
}

/// Why a format cannot show a technique (None: it can, and the technique's rule must alert on
/// it). Each reason is the format's documented event types; the coverage test checks that
/// the rule indeed stays quiet there, so a reader improving on this is noticed.
fn unobservable(id: &str, source: Format) -> Option<&'static str> {
    const SYSMON_WRITES: &str =
        "Sysmon for Linux raises FileCreate (EventID 11) on creation only: \
                                 no event for a rename, a link or a write to an existing file";
    const NO_LINK_EVENT: &str = "no documented file event for a hard or symbolic link";
    match (source, id) {
        (
            Format::Sysmon,
            "rename-into-place" | "in-place-edit" | "append" | "hard-link" | "symbolic-link",
        ) => Some(SYSMON_WRITES),
        (
            Format::DefenderCsv | Format::DefenderJson | Format::Ecs,
            "hard-link" | "symbolic-link",
        ) => Some(NO_LINK_EVENT),
        (Format::Ecs, "ancestry") => Some(
            "an Elastic Defend event names only the direct parent (`process.parent.*`); the \
             ancestors are entity ids (`process.Ext.ancestry`), which unithunt does not join on \
             ECS input (it does for auditd, LAUREL and Sysmon, from their own process events; \
             Defender names two ancestors)",
        ),
        _ => None,
    }
}

/// The technique table of the coverage document.
fn technique_markdown(rules: &[&unithunt_rules::Rule]) -> String {
    use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
    let mut md = String::from(
        "\n## Every technique of the pack's scope, recorded\n\n\
         Each technique was played for real under auditd (Debian 12, log_format=ENRICHED, the audit rules \
         of `examples/atomic/README.md`) and recorded in `examples/atomic/techniques.log`; a row is that \
         technique's records, scanned as raw audit (ECS is what unithunt maps them to, so the same \
         events). Columns as above; *must* is the rule the technique is covered by.\n\n\
         | technique | what was done | must | events |",
    );
    for i in 0..rules.len() {
        md.push_str(&format!(" {} |", i + 1));
    }
    md.push_str("\n|---|---|---|---:|");
    for _ in 0..rules.len() {
        md.push_str(":---:|");
    }
    md.push('\n');
    for (id, what, must) in TECHNIQUES {
        let events = to_ecs(Format::Auditd, technique_lines(id).join("\n").into_bytes());
        let must_col = rules
            .iter()
            .position(|r| r.meta.name == *must)
            .map_or("?".to_string(), |i| (i + 1).to_string());
        md.push_str(&format!(
            "| {id} | {what} | {must_col} | {} |",
            events.len()
        ));
        let example = RuleExample {
            expect: Expect::Alert,
            why: String::new(),
            events,
        };
        for r in rules {
            let fired = alerts_on(r, &example) == Some(true);
            md.push_str(if fired { " **A** |" } else { " · |" });
        }
        md.push('\n');
    }
    md.push_str(
        "\n### Every technique in every format\n\n\
         The same recording rendered in each product's format (`examples/atomic/*/techniques.*`, \
         derived by `examples/atomic/derive-from-recording.py`: every value one the kernel reported, \
         each format holding only the event types it documents). A cell says whether the \
         technique's rule (*must*) alerts on that rendering: **A** it does, `n/a` the format has no \
         event for the technique (the reason below; the rule is checked to stay quiet there), \
         **MISSED** it does not though it could.\n\n\
         | technique | must |",
    );
    let formats = SOURCES;
    for f in formats {
        md.push_str(&format!(" {} |", label(f)));
    }
    md.push_str("\n|---|---|");
    for _ in formats {
        md.push_str(":---:|");
    }
    md.push('\n');
    let mut reasons: Vec<&str> = Vec::new();
    for (id, _, must) in TECHNIQUES {
        let Some(rule) = rules.iter().find(|r| r.meta.name == *must) else {
            continue;
        };
        let must_col = rules.iter().position(|r| r.meta.name == *must).unwrap_or(0) + 1;
        md.push_str(&format!("| {id} | {must_col} |"));
        for f in formats {
            let cell = match unobservable(id, f) {
                Some(reason) => {
                    let n = match reasons.iter().position(|r| *r == reason) {
                        Some(n) => n + 1,
                        None => {
                            reasons.push(reason);
                            reasons.len()
                        }
                    };
                    format!("n/a ({n})")
                }
                None => {
                    let example = RuleExample {
                        expect: Expect::Alert,
                        why: String::new(),
                        events: technique_events(id, f),
                    };
                    if alerts_on(rule, &example) == Some(true) {
                        "**A**".to_string()
                    } else {
                        "**MISSED**".to_string()
                    }
                }
            };
            md.push_str(&format!(" {cell} |"));
        }
        md.push('\n');
    }
    md.push('\n');
    for (n, reason) in reasons.iter().enumerate() {
        md.push_str(&format!("({}) {reason}.\n", n + 1));
    }
    md.push_str(
        "\nOnly auditd was recorded live; the other renderings follow each product's published \
         schema, not a live agent.\n",
    );
    md
}

/// The coverage matrix as Markdown: test × input format × rule (`unithunt rules coverage`).
pub fn coverage_markdown(rules: &[unithunt_rules::Rule]) -> String {
    use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
    let rules: Vec<&unithunt_rules::Rule> = rules.iter().filter(|r| r.query.is_some()).collect();
    let reference = |r: &unithunt_rules::Rule| r.meta.tags.iter().any(|t| t == "Reference");
    let mut md = String::from(
        "# Coverage: adversary tests × input formats × rules\n\n\
         Generated by `unithunt rules coverage > docs/coverage.md` (CI fails when it is out of date). \
         Each cell says whether the rule alerts on the test's telemetry in that input format: **A** it \
         alerts, `·` it does not, `n/a` the format holds no event of the test. On benign rows an **A** is \
         a false positive. The telemetry: the real auditd recording of the tests \
         (`examples/atomic/dev-enriched.log`, scenarios D1–D4, B1, B2; test 3 there is \
         `rsyslogd.service`), its LAUREL, Sysmon for Linux and Defender renderings \
         (`examples/atomic/`, same times), and Elastic Defend shaped events (`examples/atomic/ecs/`, \
         hand-built after the recording's process trees, with more benign twins).\n\n",
    );
    md.push_str("Rules (columns):\n\n");
    for (i, r) in rules.iter().enumerate() {
        let tag = if reference(r) {
            " (the seed rule, `Reference`)"
        } else {
            ""
        };
        md.push_str(&format!("{}. {}{tag}\n", i + 1, r.meta.name));
    }
    md.push_str("\n| test | format | events |");
    for i in 0..rules.len() {
        md.push_str(&format!(" {} |", i + 1));
    }
    md.push_str(" pack without the seed |\n|---|---|---:|");
    for _ in 0..=rules.len() {
        md.push_str(":---:|");
    }
    md.push('\n');
    for row in coverage_rows() {
        let example = RuleExample {
            expect: Expect::Alert,
            why: String::new(),
            events: row.events.clone(),
        };
        md.push_str(&format!(
            "| {}{} | {} | {} |",
            row.test,
            if row.malicious { "" } else { " (benign)" },
            label(row.source),
            row.events.len()
        ));
        let mut pack = false;
        for r in &rules {
            let cell = if row.events.is_empty() {
                "n/a"
            } else if alerts_on(r, &example) == Some(true) {
                pack |= !reference(r);
                "**A**"
            } else {
                "·"
            };
            md.push_str(&format!(" {cell} |"));
        }
        let verdict = match (row.events.is_empty(), pack, row.malicious) {
            (true, _, _) => "n/a",
            (false, true, true) => "detected",
            (false, false, true) => "**MISSED**",
            (false, true, false) => "**false positive**",
            (false, false, false) => "quiet",
        };
        md.push_str(&format!(" {verdict} |\n"));
    }
    md.push_str(&technique_markdown(&rules));
    md
}

/// Set by SIGINT while a test runs: the test's shell dies of it, unithunt cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C interrupts the running test's shell (a handler, unlike an ignored signal,
/// is reset in the child by exec) but not unithunt, which then cleans up.
struct InterruptGuard {
    previous: libc::sighandler_t,
}

impl InterruptGuard {
    fn new() -> InterruptGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous = unsafe {
            libc::signal(
                libc::SIGINT,
                on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
        InterruptGuard { previous }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved in `new`.
        unsafe {
            libc::signal(libc::SIGINT, self.previous);
        }
    }
}

/// Runs a test's script; (success, output).
fn play(t: &Atomic, root: Option<&Path>) -> (bool, String) {
    let Some(script) = t.script else {
        return (false, "this test is not played (see `atomic show`)".into());
    };
    let script = script.replace("%UNIT%", UNIT);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("R", root.map_or(String::new(), |r| r.display().to_string()))
        .env("LIVE", if root.is_none() { "1" } else { "0" })
        .output();
    outcome(out)
}

/// (success, stdout then stderr) of a finished command.
fn outcome(out: std::io::Result<std::process::Output>) -> (bool, String) {
    match out {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("sh: {e}")),
    }
}

/// Removes a live run's artefacts (and test 2's user), then reloads systemd.
fn clean(t: &Atomic) {
    for a in t.artefacts {
        let _ = std::fs::remove_file(a);
    }
    if t.id == "2" {
        let _ = Command::new("userdel").args(["-r", USER]).output();
    }
    if !t.artefacts.is_empty() {
        let _ = Command::new("systemctl").arg("daemon-reload").output();
    }
}

fn run_one(t: &Atomic, yes: bool, root: Option<&Path>) -> ExitCode {
    if t.script.is_none() {
        eprintln!("test {} is not played: {}", t.id, t.what);
        return ExitCode::from(2);
    }
    if root.is_none() && !yes {
        eprintln!(
            "test {} changes this system ({}): give --yes to run it, or --root DIR to play it into a directory",
            t.id, t.what
        );
        return ExitCode::from(2);
    }
    let guard = InterruptGuard::new();
    let (ok, out) = play(t, root);
    if root.is_none() {
        clean(t);
    }
    drop(guard);
    print!("{}", crate::term::escape_lines(&out));
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted: test {} cleaned up", t.id);
        return ExitCode::from(130);
    }
    match (ok, root) {
        (true, Some(r)) => {
            println!(
                "test {} played under {} (left in place for hunting): {}",
                t.id,
                escape(&r.display().to_string()),
                t.artefacts.join(", ")
            );
            ExitCode::SUCCESS
        }
        (true, None) => {
            println!("test {} ran and was cleaned up", t.id);
            ExitCode::SUCCESS
        }
        (false, _) => {
            eprintln!("test {} failed (cleaned up)", t.id);
            ExitCode::FAILURE
        }
    }
}

fn sh(script: &str) -> (bool, String) {
    outcome(Command::new("sh").arg("-c").arg(script).output())
}

/// What keeps `verify` from running here, if anything.
fn unavailable() -> Option<String> {
    if sh("id -u").1.trim() != "0" {
        return Some("verify needs root (it loads audit rules and writes system units)".into());
    }
    if !sh("command -v auditctl && command -v auditd").0 {
        return Some("auditd is not installed (e.g. apt-get install auditd)".into());
    }
    let (ok, status) = sh("auditctl -s");
    if !ok {
        return Some(format!(
            "the audit subsystem is unavailable: {}",
            status.trim()
        ));
    }
    if status.contains("enabled 2") {
        return Some(
            "audit rules are immutable until reboot (enabled 2): the test's rules cannot be loaded"
                .into(),
        );
    }
    None
}

/// Where the audit log ends now: (inode, length).
fn log_position(log: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(log).map_or((0, 0), |m| (m.ino(), m.len()))
}

/// Everything auditd wrote since `start` (from [`log_position`]), across rotations: auditd
/// renames `audit.log` to `audit.log.1` (and older ones up) when it reaches `max_log_file`, which
/// happened in CI in the middle of a run. The file that was `log` at `start` is found by its
/// inode, read from the old end, followed by every newer file.
fn written_since(log: &Path, start: (u64, u64)) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let (ino, offset) = start;
    // Oldest first: log.9 ... log.1, then log.
    let mut files: Vec<PathBuf> = (1..=9)
        .rev()
        .map(|n| PathBuf::from(format!("{}.{n}", log.display())))
        .filter(|p| p.exists())
        .collect();
    files.push(log.to_path_buf());
    let first = files
        .iter()
        .position(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == ino))
        // The file of the start is gone (rotated out): take what is there.
        .unwrap_or(0);
    let mut out = Vec::new();
    for (i, p) in files.iter().enumerate().skip(first) {
        let bytes = std::fs::read(p)?;
        let from = if i == first && (offset as usize) <= bytes.len() {
            offset as usize
        } else {
            0
        };
        out.extend_from_slice(&bytes[from..]);
        if !out.ends_with(b"\n") && !out.is_empty() {
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// True when the kernel sends audit records to a daemon (`pid` in `auditctl -s` is not 0).
fn auditd_registered() -> bool {
    let (ok, status) = sh("auditctl -s");
    ok && status.lines().any(|l| {
        l.strip_prefix("pid ")
            .is_some_and(|p| p.trim().parse::<u32>().is_ok_and(|p| p != 0))
    })
}

/// Removes the audit rules `verify` added (and stops auditd if it started it), however it ends.
struct AuditSession {
    started_auditd: bool,
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        let _ = Command::new("auditctl")
            .args(["-D", "-k", AUDIT_KEY])
            .output();
        if self.started_auditd {
            // `auditctl --signal stop` is not supported everywhere (and then still exits 0).
            // Wait for it to exit: whatever runs next must not find a dying auditd.
            let _ = sh("kill $(pidof auditd); for i in $(seq 50); do pidof auditd >/dev/null || break; sleep 0.1; done");
        }
    }
}

/// The current time, `shift_ms` earlier or later, as audit records and alerts carry it (UTC, ISO
/// 8601, milliseconds).
fn now_iso(shift_ms: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    iso_ms(ms + shift_ms)
}

/// The kernel stamps audit records with its coarse clock, up to a tick (4-10 ms) behind the
/// precise one: a test's first records can carry a time just before the test started (seen:
/// every record of a test stamped 2 ms before its start). Windows start this much earlier; tests
/// are 900 ms apart.
const CLOCK_SLACK_MS: i64 = 100;

fn iso_ms(ms: i64) -> String {
    unithunt_event::format_iso_ms(ms)
}

/// An auditd receiving records: the one running, or one started here (true then, so that the
/// session stops it at the end).
fn start_auditd() -> Result<bool, ExitCode> {
    // An auditd that is shutting down still has a pid for a moment but receives nothing: wait
    // for it to go before deciding whether to start one (seen right after another test stopped
    // its auditd).
    let settle = Instant::now() + Duration::from_secs(3);
    while !auditd_registered() && sh("pidof auditd").0 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = if auditd_registered() {
        false
    } else {
        let (ok, out) = sh("mkdir -p /var/log/audit && /usr/sbin/auditd");
        if !ok {
            eprintln!(
                "error: starting auditd: {}",
                crate::term::escape_lines(out.trim())
            );
            return Err(ExitCode::from(2));
        }
        true
    };
    // Records reach the log only once auditd has registered with the kernel (`auditctl -s`
    // shows its pid); before that they go to the kernel log. A freshly started auditd takes a
    // moment: tests played before then lose their records (seen in CI).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !auditd_registered() {
        if Instant::now() > deadline {
            eprintln!("error: auditd is not receiving audit records (auditctl -s shows no pid)");
            return Err(ExitCode::from(2));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(started)
}

/// Each test's verdict (the rules it must raise within its window, or none for a benign one),
/// printed; true when all pass.
fn print_verdicts(windows: &[(&Atomic, String, String)], alerts: &[serde_json::Value]) -> bool {
    let mut all_pass = true;
    for (t, from, to) in windows {
        let fired: std::collections::BTreeSet<&str> = alerts
            .iter()
            .filter(|a| {
                a["@timestamp"]
                    .as_str()
                    .is_some_and(|ts| ts >= from.as_str() && ts <= to.as_str())
            })
            .filter_map(|a| a["kibana.alert.rule.name"].as_str())
            .collect();
        let pass = if t.malicious {
            t.rules.iter().all(|r| fired.contains(r))
        } else {
            fired.is_empty()
        };
        all_pass &= pass;
        println!(
            "{}  test {}: {}",
            if pass { "PASS" } else { "FAIL" },
            t.id,
            t.name
        );
        for r in t.rules {
            println!(
                "      {}  {r}",
                if fired.contains(r) {
                    "alert  "
                } else {
                    "MISSING"
                }
            );
        }
        for r in fired.iter().filter(|r| !t.rules.contains(r)) {
            println!(
                "      {}  {r}",
                if t.malicious { "alert  " } else { "UNWANTED" }
            );
        }
    }
    all_pass
}

fn verify(yes: bool, log: &Path) -> ExitCode {
    if !yes {
        eprintln!(
            "verify plays tests 1-4 and B2 on this system (root units, a test user, a generator, audit rules), then removes them: give --yes"
        );
        return ExitCode::from(2);
    }
    if let Some(why) = unavailable() {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    let started_auditd = match start_auditd() {
        Ok(started) => started,
        Err(code) => return code,
    };
    let _session = AuditSession { started_auditd };
    let _ = sh("auditctl -e 1");
    let mut missing_rules = Vec::new();
    for rule in AUDIT_RULES {
        let out = Command::new("auditctl")
            .args(rule.split_whitespace())
            .args(["-k", AUDIT_KEY])
            .output();
        let ok = out.as_ref().is_ok_and(|o| {
            o.status.success() || String::from_utf8_lossy(&o.stderr).contains("exists")
        });
        if !ok {
            missing_rules.push(rule);
        }
    }
    let start = log_position(log);
    let guard = InterruptGuard::new();
    let mut windows = Vec::new();
    for t in TESTS.iter().filter(|t| t.script.is_some()) {
        let from = now_iso(-CLOCK_SLACK_MS);
        let (ok, out) = play(t, None);
        // auditd writes asynchronously: let the records land before the next test.
        std::thread::sleep(Duration::from_millis(600));
        let to = now_iso(0);
        clean(t);
        std::thread::sleep(Duration::from_millis(300));
        if !ok {
            eprintln!(
                "test {} did not run cleanly: {}",
                t.id,
                crate::term::escape_lines(out.trim())
            );
        }
        windows.push((t, from, to));
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
    }
    drop(guard);
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted: every test played so far was cleaned up");
        return ExitCode::from(130);
    }
    let text = match written_since(log, start) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", escape(&log.display().to_string()));
            return ExitCode::from(2);
        }
    };
    let tmp = std::env::temp_dir().join(format!("unithunt-atomic-{}.log", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, &text) {
        eprintln!("error: {}: {e}", tmp.display());
        return ExitCode::from(2);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("unithunt"));
    let scan = Command::new(exe)
        .args(["scan", "-q", "-o", "ndjson"])
        .arg(&tmp)
        .output();
    let _ = std::fs::remove_file(&tmp);
    let alerts: Vec<serde_json::Value> = match scan {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Err(e) => {
            eprintln!("error: scan: {e}");
            return ExitCode::from(2);
        }
    };
    let all_pass = print_verdicts(&windows, &alerts);
    if !all_pass {
        if !missing_rules.is_empty() {
            println!("hint: these audit rules could not be loaded, so the records they give are missing:");
            for r in &missing_rules {
                println!("  auditctl {r} -k {AUDIT_KEY}");
            }
        } else if alerts.is_empty() {
            println!(
                "hint: no alert at all: check that auditd writes to {} (auditctl -s, `log_file` in /etc/audit/auditd.conf) and that the audit rules are loaded (auditctl -l)",
                escape(&log.display().to_string())
            );
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_in_the_recording_and_emits_alerting_ecs() {
        for t in TESTS {
            let lines = recorded_lines(t.recorded_as);
            assert!(lines.len() > 5, "{}: {} lines", t.id, lines.len());
            let ecs = audit_to_ecs(lines.join("\n").into_bytes()).unwrap();
            let events = ecs.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
            assert!(events > 0, "{}", t.id);
        }
        // Test 3's records hold the look-alike unit; B1's the package's.
        assert!(recorded_lines("D3")
            .iter()
            .any(|l| l.contains("rsyslogd.service")));
        assert!(recorded_lines("B1")
            .iter()
            .any(|l| l.contains("atd.service")));
    }

    #[test]
    fn scripts_play_into_a_directory_tree() {
        let root =
            std::env::temp_dir().join(format!("unithunt-atomic-root-{}", std::process::id()));
        for t in TESTS.iter().filter(|t| t.script.is_some()) {
            let (ok, out) = play(t, Some(&root));
            assert!(ok, "test {}: {out}", t.id);
            for a in t.artefacts.iter().filter(|a| !a.contains(".wants/")) {
                assert!(
                    root.join(a.trim_start_matches('/')).exists(),
                    "test {}: {a}",
                    t.id
                );
            }
        }
        // The generator ran, as systemd runs it, and wrote its unit.
        let generated = root.join("run/systemd/generator/unithunt-atomic-gen.service");
        assert!(std::fs::read_to_string(generated)
            .unwrap()
            .contains("ExecStart=/bin/true"));
        let unit =
            std::fs::read_to_string(root.join("etc/systemd/system/syslogd.service")).unwrap();
        assert!(
            unit.starts_with("[Unit]\nDescription=unithunt atomic test\n"),
            "{unit}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn every_recorded_technique_is_caught_by_its_rule() {
        use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
        let pack = unithunt_rules::RulePack::builtin();
        for (id, _, must) in TECHNIQUES {
            let events = to_ecs(Format::Auditd, technique_lines(id).join("\n").into_bytes());
            assert!(events.len() >= 2, "{id}: the marker and the technique");
            let rule = pack.rules.iter().find(|r| r.meta.name == *must).unwrap();
            let example = RuleExample {
                expect: Expect::Alert,
                why: String::new(),
                events,
            };
            assert_eq!(alerts_on(rule, &example), Some(true), "{id}: {must}");
        }
        // The last marker closes the last technique.
        assert!(technique_lines("end").iter().all(|l| !l.contains("sys1og")));
    }

    #[test]
    fn every_technique_is_caught_in_every_format_that_can_show_it() {
        use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
        let pack = unithunt_rules::RulePack::builtin();
        for (id, _, must) in TECHNIQUES {
            let rule = pack.rules.iter().find(|r| r.meta.name == *must).unwrap();
            for source in SOURCES {
                let events = technique_events(id, source);
                let example = RuleExample {
                    expect: Expect::Alert,
                    why: String::new(),
                    events,
                };
                let fired = alerts_on(rule, &example) == Some(true);
                match unobservable(id, source) {
                    None => assert!(fired, "{id} in {}: {must}", label(source)),
                    // The reason given is true: the rule cannot alert there.
                    Some(why) => assert!(!fired, "{id} in {}: said `{why}`", label(source)),
                }
            }
        }
    }

    #[test]
    fn each_technique_rendering_holds_only_its_own_events() {
        // The serial windows split the renderings: the look-alike unit's file event is in its
        // technique only, in every format that has it.
        for source in SOURCES {
            for (id, _, _) in TECHNIQUES {
                let has = technique_events(id, source)
                    .iter()
                    .any(|e| e["file"]["name"] == "sys1og.service");
                assert_eq!(has, *id == "lookalike-digit", "{id} in {}", label(source));
            }
        }
    }

    #[test]
    fn the_log_written_since_a_point_survives_rotation() {
        let dir = std::env::temp_dir().join(format!("unithunt-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.log");
        std::fs::write(&log, "old 1\nold 2\n").unwrap();
        std::fs::write(dir.join("audit.log.1"), "older\n").unwrap();
        let start = log_position(&log);
        std::fs::write(&log, "old 1\nold 2\nnew 1\n").unwrap();
        assert_eq!(written_since(&log, start).unwrap(), b"new 1\n");
        // auditd rotates: audit.log -> audit.log.1 (the older one moves up), a fresh audit.log.
        std::fs::rename(dir.join("audit.log.1"), dir.join("audit.log.2")).unwrap();
        std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
        std::fs::write(&log, "new 2\n").unwrap();
        assert_eq!(written_since(&log, start).unwrap(), b"new 1\nnew 2\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn timestamps_print_like_the_alerts_do() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_795_806_431_384), "2026-11-27T19:07:11.384Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}

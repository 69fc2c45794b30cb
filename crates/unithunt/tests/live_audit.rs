//! End to end with a real kernel: the seed's four adversary tests played on this machine while
//! auditd records them (with the audit rules of `../shared/samples/auditd/README.md`), then
//! `unithunt scan` of the real `/var/log/audit/audit.log`.
//!
//! It changes the machine (unit files, a user, audit rules) and cleans up after itself, so it only
//! runs when asked: `cargo test -p unithunt --test live_audit -- --ignored --nocapture` as root
//! (`.ci/run` does, after installing auditd). Without root, auditd or the audit subsystem it says
//! so loudly and fails, unless `UNITHUNT_LIVE_AUDIT=skip-if-unavailable` asks it to skip (loudly).

use serde_json::Value as Json;
use std::process::Command;
use std::time::{Duration, Instant};

const LOG: &str = "/var/log/audit/audit.log";
const SEED_RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../rules/elastic/persistence_systemd_service_seed.toml"
);
const USER: &str = "unithunt-e2e";

/// The audit rules the recording was made with (its README), under this test's own key so that
/// cleaning up removes exactly them (`auditctl -D -k`; a watch on a directory created after it
/// cannot be removed with `-W`).
const KEY: &str = "unithunt-e2e";
const RULES: [&str; 7] = [
    "-w /etc/systemd -p wa -k unithunt-e2e",
    "-w /usr/lib/systemd -p wa -k unithunt-e2e",
    "-w /usr/local/lib/systemd -p wa -k unithunt-e2e",
    "-w /run/systemd -p wa -k unithunt-e2e",
    "-a always,exit -F arch=b64 -S execve -k unithunt-e2e",
    "-a always,exit -F arch=b64 -S creat,rename,renameat,renameat2,link,symlink,symlinkat -F dir=/home -k unithunt-e2e",
    "-a always,exit -F arch=b64 -S openat -F dir=/home -F a2&0100 -k unithunt-e2e",
];

/// `auditctl` with a rule's words as arguments (no shell: rules hold `&`).
fn auditctl(rule: &str) -> (bool, String) {
    let out = Command::new("auditctl")
        .args(rule.split_whitespace())
        .output()
        .expect("auditctl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn sh(script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Why this machine cannot run the test, if it cannot.
fn unavailable() -> Option<String> {
    let (_, uid) = sh("id -u");
    if uid.trim() != "0" {
        return Some(format!("not root (uid {})", uid.trim()));
    }
    if !sh("command -v auditctl && command -v auditd").0 {
        return Some("auditd is not installed (apt-get install auditd)".into());
    }
    let (ok, status) = sh("auditctl -s");
    if !ok {
        return Some(format!(
            "the audit subsystem is unavailable: {}",
            status.trim()
        ));
    }
    None
}

/// Starts auditd if it is not running; true if this test started it.
fn ensure_auditd() -> bool {
    if sh("pidof auditd").0 {
        return false;
    }
    let (ok, out) = sh("mkdir -p /var/log/audit && /usr/sbin/auditd");
    assert!(ok, "starting auditd: {out}");
    true
}

/// Waits until auditd has registered with the kernel (`pid` in `auditctl -s` is not 0): records
/// written before that go to the kernel log, not to the audit log.
fn wait_for_auditd() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, status) = sh("auditctl -s");
        let registered = ok
            && status.lines().any(|l| {
                l.strip_prefix("pid ")
                    .is_some_and(|p| p.trim().parse::<u32>().is_ok_and(|p| p != 0))
            });
        if registered {
            return;
        }
        assert!(Instant::now() < deadline, "auditd does not receive records");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Cleanup {
    started_auditd: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = auditctl(&format!("-D -k {KEY}"));
        let _ = sh(
            "rm -f /etc/systemd/system/unithunt-e2e-root.service /etc/systemd/system/syslogd.service \
             /etc/systemd/system/multi-user.target.wants/unithunt-e2e-root.service \
             /etc/systemd/system/multi-user.target.wants/syslogd.service \
             /usr/local/lib/systemd/system-generators/unithunt-e2e-gen \
             /run/systemd/generator/unithunt-e2e-gen.service",
        );
        let _ = sh(&format!("userdel -r {USER} 2>/dev/null"));
        if self.started_auditd {
            // `auditctl --signal stop` is not supported everywhere (and then still exits 0).
            // Wait for it to exit: whatever runs next must not find a dying auditd.
            let _ = sh("kill $(pidof auditd); for i in $(seq 50); do pidof auditd >/dev/null || break; sleep 0.1; done");
        }
    }
}

/// Makes sure auditd records (started if needed, audit enabled) and returns what undoes it; `None`
/// when this machine cannot run the test and `UNITHUNT_LIVE_AUDIT=skip-if-unavailable` asks to
/// skip (said loudly); otherwise such a machine fails the test.
fn start_auditing(test: &str) -> Option<Cleanup> {
    if let Some(why) = unavailable() {
        let msg = format!("{test} NOT RUN: {why}");
        eprintln!(
            "\n{}\n{msg}\n{}\n",
            "=".repeat(msg.len()),
            "=".repeat(msg.len())
        );
        if std::env::var("UNITHUNT_LIVE_AUDIT").as_deref() == Ok("skip-if-unavailable") {
            return None;
        }
        panic!("{msg}");
    }
    let cleanup = Cleanup {
        started_auditd: ensure_auditd(),
    };
    wait_for_auditd();
    let (_, _) = sh("auditctl -e 1");
    Some(cleanup)
}

const UNIT: &str = "[Unit]\\nDescription=unithunt e2e\\n[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n";

#[test]
#[ignore = "changes the machine: run as root with --ignored (see the module comment)"]
fn the_four_adversary_tests_raise_alerts_from_the_real_audit_log() {
    let Some(_cleanup) = start_auditing("LIVE AUDIT TEST") else {
        return;
    };
    // A `-w` watch on a directory that does not exist yet never sees files created under it once
    // it does (a fresh machine has no /usr/local/lib/systemd): the watched directories come first.
    for rule in RULES {
        if let Some(dir) = rule
            .strip_prefix("-w ")
            .and_then(|r| r.split_whitespace().next())
        {
            std::fs::create_dir_all(dir).unwrap();
        }
    }
    for rule in RULES {
        let (ok, out) = auditctl(rule);
        // A rule already loaded (from an earlier, interrupted run) is fine.
        assert!(ok || out.contains("exists"), "auditctl {rule}: {out}");
    }
    let started = chrono_now();
    // Test 1: a root unit, written and enabled from a shell.
    let t1 = sh(&format!(
        "bash -c 'printf \"{UNIT}\" > /etc/systemd/system/unithunt-e2e-root.service; systemctl daemon-reload; systemctl enable unithunt-e2e-root.service; true'"
    ));
    // Test 2: a user unit, by a freshly created user.
    let t2 = sh(&format!(
        "useradd -m {USER} && runuser -u {USER} -- bash -c 'mkdir -p ~/.config/systemd/user; printf \"{UNIT}\" > ~/.config/systemd/user/unithunt-e2e-user.service; systemctl --user daemon-reload; true'"
    ));
    // Test 3: a unit named like a legitimate daemon.
    let t3 = sh(&format!(
        "bash -c 'printf \"{UNIT}\" > /etc/systemd/system/syslogd.service; systemctl enable syslogd.service; true'"
    ));
    // Test 4: a generator, then run the way systemd runs generators (three output directories).
    let t4 = sh(
        "bash -c 'mkdir -p /usr/local/lib/systemd/system-generators /run/systemd/generator /run/systemd/generator.early /run/systemd/generator.late; \
         printf \"#!/bin/sh\\necho [Service] > \\\"\\$1/unithunt-e2e-gen.service\\\"\\n\" > /usr/local/lib/systemd/system-generators/unithunt-e2e-gen; \
         chmod +x /usr/local/lib/systemd/system-generators/unithunt-e2e-gen; systemctl daemon-reload; \
         /usr/local/lib/systemd/system-generators/unithunt-e2e-gen /run/systemd/generator /run/systemd/generator.early /run/systemd/generator.late; true'",
    );
    for (name, (ok, out)) in [("1", t1), ("2", t2), ("3", t3), ("4", t4)] {
        assert!(ok, "adversary test {name}: {out}");
    }
    // auditd writes asynchronously: wait until the last test's records are in the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sh(&format!("grep -q unithunt-e2e-gen {LOG}")).0 {
        assert!(
            Instant::now() < deadline,
            "the audit log never showed the generator"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    let scan = |rules: &[&str]| -> Vec<Json> {
        // auditd may rotate the log during the test (at `max_log_file`): the previous file too,
        // oldest first; alerts are kept by time below.
        let rotated = format!("{LOG}.1");
        let logs: Vec<&str> = if std::path::Path::new(&rotated).exists() {
            vec![&rotated, LOG]
        } else {
            vec![LOG]
        };
        let out = Command::new(env!("CARGO_BIN_EXE_unithunt"))
            .args(["scan", "-o", "ndjson"])
            .args(rules)
            .args(&logs)
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{summary}");
        assert!(summary.contains("read as auditd"), "{summary}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|a: &Json| {
                a["@timestamp"]
                    .as_str()
                    .is_some_and(|t| t >= started.as_str())
            })
            .collect()
    };
    // The default pack: the rules that close the seed's gaps see what it misses.
    let pack = scan(&[]);
    let by_rule = |rule: &str, path: &str| {
        pack.iter().any(|a| {
            a["kibana.alert.rule.name"] == rule
                && a["file"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(path))
        })
    };
    assert!(
        by_rule(
            "Systemd Generator or Environment Generator Written",
            "/usr/local/lib/systemd/system-generators/unithunt-e2e-gen"
        ),
        "the generator rule sees test 4"
    );
    assert!(
        by_rule(
            "Systemd Unit Named Like a Well-Known Service",
            "/etc/systemd/system/syslogd.service"
        ),
        "the look-alike rule sees test 3"
    );
    assert!(by_rule(
        "Systemd Unit or Drop-in Written Outside Package Management",
        "/.config/systemd/user/unithunt-e2e-user.service"
    ));
    // The seed rule alone, as the seed page wrote it.
    let alerts = scan(&["--no-builtin", "--rules", SEED_RULE]);
    let has = |pred: &dyn Fn(&Json) -> bool| alerts.iter().any(pred);
    let file = |a: &Json, p: &str| a["file"]["path"].as_str().is_some_and(|x| x.ends_with(p));
    let exec = |a: &Json, cl: &str| a["process"]["command_line"] == cl;
    let report: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["event"]["action"], a["file"]["path"], a["process"]["command_line"]
            )
        })
        .collect();
    eprintln!(
        "live audit alerts since {started}:\n  {}",
        report.join("\n  ")
    );
    assert!(
        has(&|a| file(a, "/etc/systemd/system/unithunt-e2e-root.service")),
        "test 1 unit: {report:?}"
    );
    assert!(
        has(&|a| exec(a, "systemctl daemon-reload")),
        "test 1/4 reload: {report:?}"
    );
    assert!(
        has(&|a| exec(a, "systemctl enable unithunt-e2e-root.service")),
        "test 1 enable: {report:?}"
    );
    assert!(
        has(&|a| file(a, "/.config/systemd/user/unithunt-e2e-user.service")),
        "test 2 user unit: {report:?}"
    );
    assert!(
        has(&|a| exec(a, "systemctl --user daemon-reload")),
        "test 2 reload: {report:?}"
    );
    assert!(
        has(&|a| file(a, "/etc/systemd/system/syslogd.service")),
        "test 3 unit: {report:?}"
    );
    // Test 4's generator is the seed rule's blind spot: the reload is what alerts.
    assert!(
        !has(&|a| file(a, "unithunt-e2e-gen")),
        "the seed rule does not see generators: {report:?}"
    );
}

/// Now, as the ISO 8601 string alerts carry (UTC, milliseconds), minus a second for clock steps.
fn chrono_now() -> String {
    let (_, s) = sh("date -u -d '1 second ago' +%Y-%m-%dT%H:%M:%S.000Z");
    s.trim().to_string()
}

/// `unithunt watch` follows the live log while the seed's four tests run (`atomic run N --yes`,
/// which play them for real and clean up): each test alerts, and every alert is raised within a
/// second of its record (the alert's `kibana.alert.start` against the newest event time of its
/// group: a sequence is complete only at its last event).
#[test]
#[ignore = "changes the machine: run as root with --ignored (see the module comment)"]
fn watch_alerts_on_the_adversary_tests_within_a_second() {
    let Some(_cleanup) = start_auditing("LIVE WATCH TEST") else {
        return;
    };
    // The audit rules `unithunt setup audit-rules` prints are the ones in force: they suffice.
    let bin = env!("CARGO_BIN_EXE_unithunt");
    let rules = Command::new(bin)
        .args(["setup", "audit-rules"])
        .output()
        .unwrap();
    assert!(rules.status.success());
    let rules_file =
        std::env::temp_dir().join(format!("unithunt-setup-{}.rules", std::process::id()));
    std::fs::write(&rules_file, &rules.stdout).unwrap();
    struct RemoveSetupRules;
    impl Drop for RemoveSetupRules {
        fn drop(&mut self) {
            let _ = auditctl("-D -k unithunt");
        }
    }
    let _remove = RemoveSetupRules;
    let (ok, out) = sh(&format!("auditctl -R {}", rules_file.display()));
    assert!(ok, "auditctl -R (the rules of `setup audit-rules`): {out}");
    let dir = std::env::temp_dir().join(format!("unithunt-live-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut watch = Command::new(bin)
        .args(["watch", LOG, "--checkpoint"])
        .arg(dir.join("cp"))
        .args(["-o", "none", "--poll-ms", "50"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("cp").exists() {
        assert!(Instant::now() < deadline, "watch did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in ["1", "2", "3", "4"] {
        let o = Command::new(bin)
            .args(["atomic", "run", t, "--yes"])
            .output()
            .unwrap();
        assert!(o.status.success(), "atomic run {t}: {o:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status}");
    let journal = std::fs::read_to_string(dir.join("alerts.ndjson")).unwrap();
    let alerts: Vec<Json> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ms = |v: &Json| {
        v.as_str().and_then(|s| {
            unithunt_event::parse_timestamp(
                &Json::String(s.into()),
                unithunt_event::TimestampFormat::Auto,
            )
            .map(|ns| ns / 1_000_000)
        })
    };
    for artefact in [
        "unithunt-atomic-root.service",
        "unithunt-atomic-user.service",
        "syslogd.service",
        "unithunt-atomic-gen",
    ] {
        assert!(
            alerts.iter().any(|a| a["file"]["path"]
                .as_str()
                .is_some_and(|p| p.contains(artefact))),
            "no alert on {artefact}: {journal}"
        );
    }
    let mut latencies = Vec::new();
    for a in &alerts {
        let Some(start) = ms(&a["kibana.alert.start"]) else {
            continue;
        };
        // The newest event of its group (a sequence's building blocks), or its own.
        let group = a["kibana.alert.group.id"].as_str();
        let newest = alerts
            .iter()
            .filter(|b| group.is_some() && b["kibana.alert.group.id"].as_str() == group)
            .chain(std::iter::once(a))
            .filter_map(|b| ms(&b["kibana.alert.original_time"]).or_else(|| ms(&b["@timestamp"])))
            .max();
        if let Some(t) = newest {
            latencies.push(start - t);
        }
    }
    latencies.sort();
    assert!(!latencies.is_empty());
    let max = *latencies.last().unwrap();
    eprintln!(
        "watch: {} alerts on the live log; latency from the audit record to the alert: median {} ms, max {max} ms",
        alerts.len(),
        latencies[latencies.len() / 2]
    );
    assert!(max < 1000, "an alert took {max} ms: {latencies:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `atomic verify`: tests 1-4 and B2 played under auditd, their audit log scanned with the
//! default pack, a verdict per test and per rule.

use crate::catalogue::{catalogue, tests, Atomic};
use crate::play::{clean, play, sh, InterruptGuard, INTERRUPTED};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use unithunt_output::term::{escape, escape_lines};

/// What keeps `verify` from running here, if anything.
pub(crate) fn unavailable() -> Option<String> {
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
pub(crate) fn log_position(log: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(log).map_or((0, 0), |m| (m.ino(), m.len()))
}

/// Everything auditd wrote since `start` (from [`log_position`]), across rotations: auditd
/// renames `audit.log` to `audit.log.1` (and older ones up) when it reaches `max_log_file`, which
/// happened in CI in the middle of a run. The file that was `log` at `start` is found by its
/// inode, read from the old end, followed by every newer file.
pub(crate) fn written_since(log: &Path, start: (u64, u64)) -> std::io::Result<Vec<u8>> {
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
pub(crate) fn auditd_registered() -> bool {
    let (ok, status) = sh("auditctl -s");
    ok && status.lines().any(|l| {
        l.strip_prefix("pid ")
            .is_some_and(|p| p.trim().parse::<u32>().is_ok_and(|p| p != 0))
    })
}

/// Removes the audit rules `verify` added (and stops auditd if it started it), however it ends.
pub(crate) struct AuditSession {
    started_auditd: bool,
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        let _ = Command::new("auditctl")
            .args(["-D", "-k", catalogue().audit_key.as_str()])
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
pub(crate) fn now_iso(shift_ms: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    iso_ms(ms + shift_ms)
}

/// The kernel stamps audit records with its coarse clock, up to a tick (4-10 ms) behind the
/// precise one: a test's first records can carry a time just before the test started (seen:
/// every record of a test stamped 2 ms before its start). Windows start this much earlier; tests
/// are 900 ms apart.
pub(crate) const CLOCK_SLACK_MS: i64 = 100;

pub(crate) fn iso_ms(ms: i64) -> String {
    unithunt_event::format_iso_ms(ms)
}

/// An auditd receiving records: the one running, or one started here (true then, so that the
/// session stops it at the end).
pub(crate) fn start_auditd() -> Result<bool, ExitCode> {
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
            eprintln!("error: starting auditd: {}", escape_lines(out.trim()));
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
pub(crate) fn print_verdicts(
    windows: &[(&Atomic, String, String)],
    alerts: &[serde_json::Value],
) -> bool {
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
            t.rules.iter().all(|r| fired.contains(r.as_str()))
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
        for r in &t.rules {
            println!(
                "      {}  {r}",
                if fired.contains(r.as_str()) {
                    "alert  "
                } else {
                    "MISSING"
                }
            );
        }
        for r in fired.iter().filter(|r| !t.rules.iter().any(|x| x == **r)) {
            println!(
                "      {}  {r}",
                if t.malicious { "alert  " } else { "UNWANTED" }
            );
        }
    }
    all_pass
}

/// Plays the tests under auditd (`yes`: really change this system), reads what auditd wrote to
/// `log` meanwhile, and judges the alerts `scan` raises over it (the default pack, as `unithunt
/// scan` runs it).
pub fn verify(
    yes: bool,
    log: &Path,
    scan: &dyn Fn(&Path) -> Result<Vec<serde_json::Value>, String>,
) -> ExitCode {
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
    // Watches need their directories (a fresh host has no /usr/local/lib/systemd): created
    // first, removed at the end once empty, with what the tests' own `mkdir -p` made.
    let mut created =
        crate::dirs::create_watched_dirs(catalogue().audit_rules.iter().map(String::as_str));
    let mut missing_rules = Vec::new();
    for rule in &catalogue().audit_rules {
        let out = Command::new("auditctl")
            .args(rule.split_whitespace())
            .args(["-k", catalogue().audit_key.as_str()])
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
    for t in tests().iter().filter(|t| t.script.is_some()) {
        let from = now_iso(-CLOCK_SLACK_MS);
        for a in &t.artefacts {
            if let Some(parent) = Path::new(a).parent() {
                created.extend(crate::dirs::missing_dirs(parent));
            }
        }
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
                escape_lines(out.trim())
            );
        }
        windows.push((t, from, to));
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
    }
    drop(guard);
    crate::dirs::remove_if_empty(&created);
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
    let alerts = scan(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let alerts = match alerts {
        Ok(alerts) => alerts,
        Err(e) => {
            eprintln!("error: scan: {}", escape(&e));
            return ExitCode::from(2);
        }
    };
    let all_pass = print_verdicts(&windows, &alerts);
    if !all_pass {
        if !missing_rules.is_empty() {
            println!("hint: these audit rules could not be loaded, so the records they give are missing:");
            for r in &missing_rules {
                println!("  auditctl {r} -k {}", catalogue().audit_key);
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

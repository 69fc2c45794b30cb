//! Playing a test: its script under `sh`, on the live system or into a directory tree, cleaned
//! up afterwards, on failure and on Ctrl-C too.

use crate::catalogue::{catalogue, Atomic};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use unithunt_output::term::{escape, escape_lines};

pub fn show(t: &Atomic) {
    println!("Test {}: {}", t.id, t.name);
    println!(
        "  {} (recorded as scenario {} in examples/atomic/dev-enriched.log)\n",
        if t.malicious { "malicious" } else { "benign" },
        t.recorded_as
    );
    println!("What it does: {}\n", t.what);
    println!("Expected signal:");
    for s in &t.signals {
        let (source, signal) = (&s.source, &s.signal);
        println!("  {source:<22} {signal}");
    }
    if t.rules.is_empty() {
        println!("\nRules that must alert: none (the default pack must stay quiet)");
    } else {
        println!("\nRules that must alert: {}", t.rules.join("; "));
    }
    if let Some(script) = t.script() {
        println!("\nScript (sh; $R is the root written under, $LIVE=1 on the live system):");
        println!("  {script}");
        println!(
            "Artefacts removed after a live run: {}",
            t.artefacts.join(", ")
        );
    }
}

pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C interrupts the running test's shell (a handler, unlike an ignored signal,
/// is reset in the child by exec) but not unithunt, which then cleans up.
pub(crate) struct InterruptGuard {
    previous: libc::sighandler_t,
}

impl InterruptGuard {
    pub(crate) fn new() -> InterruptGuard {
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
pub(crate) fn play(t: &Atomic, root: Option<&Path>) -> (bool, String) {
    let Some(script) = t.script() else {
        return (false, "this test is not played (see `atomic show`)".into());
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("R", root.map_or(String::new(), |r| r.display().to_string()))
        .env("LIVE", if root.is_none() { "1" } else { "0" })
        .output();
    outcome(out)
}

/// (success, stdout then stderr) of a finished command.
pub(crate) fn outcome(out: std::io::Result<std::process::Output>) -> (bool, String) {
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
pub(crate) fn clean(t: &Atomic) {
    for a in &t.artefacts {
        let _ = std::fs::remove_file(a);
    }
    if t.id == "2" {
        let _ = Command::new("userdel")
            .args(["-r", catalogue().user.as_str()])
            .output();
    }
    if !t.artefacts.is_empty() {
        let _ = Command::new("systemctl").arg("daemon-reload").output();
    }
}

pub fn run_one(t: &Atomic, yes: bool, root: Option<&Path>) -> ExitCode {
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
    print!("{}", escape_lines(&out));
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted: test {} cleaned up", t.id);
        return ExitCode::from(130);
    }
    match (ok, root) {
        (true, Some(r)) => {
            // What is there now, as `systemctl enable` would have left it (the enablement link
            // is made under a root too); an artefact the script did not write is not claimed.
            let there: Vec<&str> = t
                .artefacts
                .iter()
                .map(String::as_str)
                .filter(|a| std::fs::symlink_metadata(r.join(a.trim_start_matches('/'))).is_ok())
                .collect();
            println!(
                "test {} played under {} (left in place for hunting): {}",
                t.id,
                escape(&r.display().to_string()),
                escape(&there.join(", "))
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

pub(crate) fn sh(script: &str) -> (bool, String) {
    outcome(Command::new("sh").arg("-c").arg(script).output())
}

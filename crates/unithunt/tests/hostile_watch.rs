//! `unithunt watch` against a hostile environment: a log or checkpoint that is a device or a
//! FIFO, a journal on a full device, sinks that refuse or fail forever, and signals while it
//! waits. Each run has a kill deadline (a hang fails the test instead of hanging it), its stdout
//! and stderr are drained by threads, and its address space is capped so that code reading a
//! device without end dies instead of filling the machine's memory.

use std::io::{BufRead, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SEED_RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../rules/elastic/persistence_systemd_service_seed.toml"
);

/// An ECS event the seed rule alerts on; `N` makes each one a distinct event (and alert).
fn enable_event(n: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-27T10:00:{:02}Z","event":{{"id":"e{n}","category":["process"],"type":["start"]}},"process":{{"name":"systemctl","args":["systemctl","enable","x{n}"],"command_line":"systemctl enable x{n}","parent":{{"name":"bash"}}}},"host":{{"name":"h"}},"user":{{"name":"root"}}}}"#,
        n % 60
    ) + "\n"
}

/// A fresh directory per test (name + pid), removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(test: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("unithunt-hwatch-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn s(&self, name: &str) -> String {
        self.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A running `unithunt watch`, its output drained as it comes.
struct Watch {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    drains: Vec<std::thread::JoinHandle<()>>,
}

/// What a finished run left.
struct Ran {
    /// `None`: killed at the deadline (or died of a signal).
    code: Option<i32>,
    stderr: String,
    /// From the end of `spawn` (or from the signal, for `signal_and_finish`).
    elapsed: Duration,
}

fn drain(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(r);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

impl Watch {
    fn spawn(args: &[&str]) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_unithunt"));
        cmd.arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit(2) between fork and exec touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let drains = vec![
            drain(child.stdout.take().unwrap(), stdout.clone()),
            drain(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Watch {
            child,
            stdout,
            stderr,
            drains,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `what` (false at the deadline).
    fn wait_stderr(&self, what: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.stderr().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the exit, killing the child (SIGKILL) at `deadline`.
    fn finish(mut self, deadline: Duration) -> Ran {
        let started = Instant::now();
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if started.elapsed() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        for d in self.drains.drain(..) {
            let _ = d.join();
        }
        let _ = self.stdout;
        Ran {
            code,
            stderr: self.stderr.lock().unwrap().clone(),
            elapsed,
        }
    }
}

fn run(args: &[&str], deadline: Duration) -> Ran {
    Watch::spawn(args).finish(deadline)
}

// ---- Item 10: the log, the checkpoint and the journal are what they should be ----

#[test]
fn a_log_that_is_a_device_or_a_fifo_is_refused_at_start() {
    let t = Tmp::new("log-kind");
    std::os::unix::fs::symlink("/dev/zero", t.join("zero.log")).unwrap();
    mkfifo(&t.join("fifo.log"));
    for (log, kind) in [("zero.log", "a character device"), ("fifo.log", "a FIFO")] {
        let r = run(
            &[
                &t.s(log),
                "--from-start",
                "--checkpoint",
                &t.s(&format!("{log}.state/cp")),
                "-o",
                "none",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(r.code, Some(2), "{log}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{log} is {kind}, not a regular file: refused")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_checkpoint_that_is_a_fifo_or_a_device_is_refused() {
    let t = Tmp::new("cp-kind");
    std::fs::write(t.join("audit.log"), enable_event(1)).unwrap();
    mkfifo(&t.join("cp-fifo"));
    std::os::unix::fs::symlink("/dev/zero", t.join("cp-zero")).unwrap();
    std::fs::write(t.join("cp-huge"), vec![b' '; 2 << 20]).unwrap();
    for (cp, what) in [
        ("cp-fifo", "is a FIFO, not a regular file"),
        ("cp-zero", "is a character device, not a regular file"),
        ("cp-huge", "is larger than 1048576 bytes"),
    ] {
        let r = run(
            &[
                &t.s("audit.log"),
                "--input-format",
                "ecs",
                "--checkpoint",
                &t.s(cp),
                "--alerts",
                &t.s(&format!("{cp}.alerts")),
                "--exit-at-eof",
                "-o",
                "none",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(r.code, Some(2), "{cp}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("checkpoint {} {what}", t.s(cp))),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_journal_that_cannot_be_written_stops_watch_with_status_1() {
    let t = Tmp::new("full");
    std::fs::write(t.join("audit.log"), enable_event(1)).unwrap();
    let r = run(
        &[
            &t.s("audit.log"),
            "--input-format",
            "ecs",
            "--rules",
            SEED_RULE,
            "--from-start",
            "--checkpoint",
            &t.s("state/cp"),
            "--alerts",
            "/dev/full",
            "--exit-at-eof",
            "-o",
            "none",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error: alert journal /dev/full: No space left on device"),
        "{}",
        r.stderr
    );
    // The checkpoint stays before the event, so the next start raises the alert again.
    let cp = std::fs::read_to_string(t.join("state/cp")).unwrap();
    assert!(cp.contains("\"offset\":0"), "{cp}");
    // A FIFO is refused as a journal (it would be read back without end, or block).
    mkfifo(&t.join("alerts.fifo"));
    let r = run(
        &[
            &t.s("audit.log"),
            "--checkpoint",
            &t.s("state2/cp"),
            "--alerts",
            &t.s("alerts.fifo"),
            "--exit-at-eof",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("is a FIFO: the journal must be a regular file"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_log_swapped_for_a_device_mid_run_is_reported_and_sigint_is_honoured() {
    let t = Tmp::new("swap");
    let log = t.join("audit.log");
    std::fs::write(&log, enable_event(1)).unwrap();
    let w = Watch::spawn(&[
        &t.s("audit.log"),
        "--input-format",
        "ecs",
        "--rules",
        SEED_RULE,
        "--from-start",
        "--checkpoint",
        &t.s("state/cp"),
        "--poll-ms",
        "20",
        "-o",
        "none",
    ]);
    // The first alert is in the journal: watch is following the log.
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(t.join("state/alerts.ndjson")).is_ok_and(|s| !s.is_empty()) {
        assert!(Instant::now() < end, "no alert: {}", w.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Replaced by a link to /dev/zero, as a rotation would replace it.
    std::os::unix::fs::symlink("/dev/zero", t.join("zero")).unwrap();
    std::fs::rename(t.join("zero"), &log).unwrap();
    assert!(
        w.wait_stderr(
            "audit.log is a character device, not a regular file: refused; not read, waiting for a regular file there",
            Duration::from_secs(10)
        ),
        "{}",
        w.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    w.signal(libc::SIGINT);
    let r = w.finish(Duration::from_secs(10));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    eprintln!("exited {:?} after SIGINT", r.elapsed);
}

#[test]
fn a_huge_sparse_log_is_read_in_bounded_chunks_and_sigint_stops_it() {
    let t = Tmp::new("sparse");
    let f = std::fs::File::create(t.join("audit.log")).unwrap();
    // 64 GiB of zeros without a newline, taking no disk.
    f.set_len(64 << 30).unwrap();
    drop(f);
    let w = Watch::spawn(&[
        &t.s("audit.log"),
        "--from-start",
        "--checkpoint",
        &t.s("state/cp"),
        "-o",
        "none",
    ]);
    assert!(
        w.wait_stderr(
            "longer than 16777216 bytes dropped",
            Duration::from_secs(20)
        ),
        "{}",
        w.stderr()
    );
    w.signal(libc::SIGINT);
    let r = w.finish(Duration::from_secs(10));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    eprintln!("exited {:?} after SIGINT", r.elapsed);
}

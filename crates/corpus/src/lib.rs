//! Deterministic generator of realistic Elastic Defend (endpoint) ECS NDJSON, for benchmarking.
//!
//! The corpus imitates what the Elastic Defend integration ships from a fleet of Linux hosts:
//! process (`exec`, `fork`, `end`), file (`creation`, `modification`, `deletion`, `rename`) and
//! network (`connection_attempted`, `connection_accepted`, `disconnect_received`) events, with the
//! field shapes of the `logs-endpoint.events.*` data streams.
//!
//! Relevance is controlled: only *relevant* events (a fraction `relevant_rate` of all events)
//! contain one of the substrings in [`FORBIDDEN_IN_BENIGN`]. Relevant events are a mix of
//! systemd unit files written by a shell or script, `systemctl` run from a shell or script, and
//! benign twins (a package manager installing a unit, `systemctl` started by systemd itself).
//! Benign events may still mention `systemd` (PID 1 as a parent, `systemd-journald`, ...).
//!
//! Everything derives from one seed through a small SplitMix64 generator: the same
//! [`Config`] always yields the same bytes.
//!
//! ```
//! use unithunt_corpus::{Config, Generator, FORBIDDEN_IN_BENIGN};
//! let config = Config { relevant_rate: 0.01, ..Config::default() };
//! let (mut a, mut b) = (Generator::new(&config), Generator::new(&config));
//! for _ in 0..1000 {
//!     let (line, relevant) = a.next_event();
//!     let line = line.to_string();
//!     assert_eq!(b.next_event().0, line, "one seed, the same bytes");
//!     let event: serde_json::Value = serde_json::from_str(&line).unwrap();
//!     assert!(event["@timestamp"].is_string() && event["host"]["name"].is_string());
//!     if !relevant {
//!         assert!(FORBIDDEN_IN_BENIGN.iter().all(|s| !line.contains(s)), "{line}");
//!     }
//! }
//! ```

use std::fmt::Write as _;
use std::rc::Rc;

/// Substrings that only relevant events may contain.
pub const FORBIDDEN_IN_BENIGN: [&str; 3] = ["systemctl", "/systemd/system/", "/.config/systemd/"];

/// Default seed.
pub const DEFAULT_SEED: u64 = 20_261_127;
/// Default start of the timeline.
pub const DEFAULT_START: &str = "2026-11-27T00:00:00Z";
/// Default fraction of systemd-relevant events.
pub const DEFAULT_RELEVANT_RATE: f64 = 0.001;

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/// SplitMix64: tiny, fast, good enough statistically, and fully deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    #[inline]
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Pick an index according to integer weights.
fn weighted<T>(rng: &mut Rng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u64 = items.iter().map(|t| weight(t) as u64).sum();
    let mut x = rng.below(total);
    for (i, t) in items.iter().enumerate() {
        let w = weight(t) as u64;
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]` (UTC) into milliseconds since the Unix epoch.
/// A bare date (`YYYY-MM-DD`) means midnight.
pub fn parse_iso8601(s: &str) -> Result<i64, String> {
    let err =
        || format!("invalid ISO-8601 UTC timestamp {s:?} (expected e.g. 2026-11-27T00:00:00Z)");
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = b.get(r).ok_or_else(err)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        Ok(part.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(err());
    }
    let (mut h, mut mi, mut se, mut ms) = (0, 0, 0, 0);
    let mut i = 10;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
            || b.len() < 19
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(err());
        }
        h = num(11..13)?;
        mi = num(14..16)?;
        se = num(17..19)?;
        if h > 23 || mi > 59 || se > 60 {
            return Err(err());
        }
        i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return Err(err());
            }
            let digits = &b[start..end.min(start + 3)];
            ms = digits.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64);
            for _ in digits.len()..3 {
                ms *= 10;
            }
            i = end;
        }
    }
    match &b[i..] {
        b"" | b"Z" | b"z" | b"+00:00" | b"+0000" => {}
        _ => return Err(err()),
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

/// Append `ms` (milliseconds since the epoch) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn push_iso8601(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------------------------

/// Parse a byte size: `123`, `100K`, `500M`, `2G`, `1T` (also `KB`/`KiB`, ..., and decimals such
/// as `1.5G`). Suffixes are binary: `K` = 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let err = || format!("invalid size {s:?} (expected e.g. 2G, 500M, 100K or a byte count)");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult: u64 = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(err()),
    };
    if num.is_empty() {
        return Err(err());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(err);
    }
    let f: f64 = num.parse().map_err(|_| err())?;
    if !f.is_finite() || f < 0.0 {
        return Err(err());
    }
    Ok((f * mult as f64).round() as u64)
}

// ---------------------------------------------------------------------------------------------
// JSON writing (hand-rolled for speed: no intermediate values)
// ---------------------------------------------------------------------------------------------

#[inline]
fn sep(b: &mut String) {
    match b.as_bytes().last() {
        None | Some(b'{') | Some(b'[') | Some(b'\n') => {}
        _ => b.push(','),
    }
}

#[inline]
fn key(b: &mut String, k: &str) {
    sep(b);
    b.push('"');
    b.push_str(k);
    b.push_str("\":");
}

fn esc_inner(b: &mut String, s: &str) {
    if !s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
        b.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => b.push_str("\\\""),
            '\\' => b.push_str("\\\\"),
            '\n' => b.push_str("\\n"),
            '\r' => b.push_str("\\r"),
            '\t' => b.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(b, "\\u{:04x}", c as u32);
            }
            c => b.push(c),
        }
    }
}

#[inline]
fn jstr(b: &mut String, k: &str, v: &str) {
    key(b, k);
    b.push('"');
    esc_inner(b, v);
    b.push('"');
}

#[inline]
fn jnum(b: &mut String, k: &str, v: i64) {
    key(b, k);
    let _ = write!(b, "{v}");
}

#[inline]
fn jobj(b: &mut String, k: &str) {
    key(b, k);
    b.push('{');
}

#[inline]
fn jend(b: &mut String) {
    b.push('}');
}

fn jarr<S: AsRef<str>>(b: &mut String, k: &str, items: &[S]) {
    key(b, k);
    b.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push('"');
        esc_inner(b, s.as_ref());
        b.push('"');
    }
    b.push(']');
}

/// `command_line` in Elastic Defend is the arguments joined with spaces.
fn jcmdline(b: &mut String, k: &str, args: &[String]) {
    key(b, k);
    b.push('"');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            b.push(' ');
        }
        esc_inner(b, a);
    }
    b.push('"');
}

// ---------------------------------------------------------------------------------------------
// Encodings and identifiers
// ---------------------------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8; 16] = b"0123456789abcdef";

fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut bits = 0u64;
    for i in 0..n {
        if i % 16 == 0 {
            bits = rng.next_u64();
        }
        s.push(HEX[(bits & 15) as usize] as char);
        bits >>= 4;
    }
    s
}

fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Stable SHA-256-looking digest of an executable path (same binary, same hash, fleet-wide).
fn push_sha256_of(b: &mut String, exe: &str) {
    let mut r = Rng::new(fnv1a(exe));
    for _ in 0..4 {
        let mut x = r.next_u64();
        for _ in 0..16 {
            b.push(HEX[(x & 15) as usize] as char);
            x >>= 4;
        }
    }
}

/// Elastic Defend `event.id`: 24 base64-ish characters, often with a `+` run.
fn push_event_id(b: &mut String, rng: &mut Rng) {
    let mut x = rng.next_u64();
    for _ in 0..10 {
        b.push(B64[(x & 63) as usize] as char);
        x >>= 6;
    }
    b.push_str("++++");
    let mut x = rng.next_u64();
    for _ in 0..10 {
        b.push(B64[(x & 63) as usize] as char);
        x >>= 6;
    }
}

// ---------------------------------------------------------------------------------------------
// World model: users, operating systems, hosts, processes
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct User {
    id: &'static str,
    name: &'static str,
    gid: &'static str,
    group: &'static str,
    home: &'static str,
}

const ROOT: &User = &User {
    id: "0",
    name: "root",
    gid: "0",
    group: "root",
    home: "/root",
};
const WWW: &User = &User {
    id: "33",
    name: "www-data",
    gid: "33",
    group: "www-data",
    home: "/var/www",
};
const POSTGRES: &User = &User {
    id: "114",
    name: "postgres",
    gid: "121",
    group: "postgres",
    home: "/var/lib/postgresql",
};
const HUMANS: &[User] = &[
    User {
        id: "1000",
        name: "ubuntu",
        gid: "1000",
        group: "ubuntu",
        home: "/home/ubuntu",
    },
    User {
        id: "1001",
        name: "alice",
        gid: "1001",
        group: "alice",
        home: "/home/alice",
    },
    User {
        id: "1002",
        name: "bob",
        gid: "1002",
        group: "bob",
        home: "/home/bob",
    },
    User {
        id: "1003",
        name: "deploy",
        gid: "1003",
        group: "deploy",
        home: "/home/deploy",
    },
    User {
        id: "1004",
        name: "jenkins",
        gid: "1004",
        group: "jenkins",
        home: "/home/jenkins",
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pkg {
    Deb,
    Rpm,
}

#[derive(Debug)]
struct Os {
    family: &'static str,
    platform: &'static str,
    version: &'static str,
    kernel: &'static str,
    pkg: Pkg,
}

const OSES: &[Os] = &[
    Os {
        family: "ubuntu",
        platform: "ubuntu",
        version: "22.04.4",
        kernel: "5.15.0-105-generic",
        pkg: Pkg::Deb,
    },
    Os {
        family: "ubuntu",
        platform: "ubuntu",
        version: "24.04.1",
        kernel: "6.8.0-45-generic",
        pkg: Pkg::Deb,
    },
    Os {
        family: "debian",
        platform: "debian",
        version: "12.7",
        kernel: "6.1.0-25-amd64",
        pkg: Pkg::Deb,
    },
    Os {
        family: "rhel",
        platform: "rocky",
        version: "9.4",
        kernel: "5.14.0-427.13.1.el9_4.x86_64",
        pkg: Pkg::Rpm,
    },
    Os {
        family: "amzn",
        platform: "amzn",
        version: "2023",
        kernel: "6.1.109-118.189.amzn2023.x86_64",
        pkg: Pkg::Rpm,
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Web,
    Db,
    Docker,
    K8s,
    Bastion,
}

const ROLES: &[(Role, &str, u8)] = &[
    (Role::Web, "web-", 11),
    (Role::Db, "db-", 12),
    (Role::Docker, "ci-runner-", 13),
    (Role::K8s, "k8s-node-", 14),
    (Role::Bastion, "bastion-", 10),
];

#[derive(Debug)]
struct Proc {
    pid: u32,
    entity_id: String,
    name: String,
    exe: String,
    args: Vec<String>,
    cwd: String,
    user: &'static User,
    parent: Option<Rc<Proc>>,
}

/// A long-running process, addressable by key (several residents may share a `name`).
struct Resident {
    key: &'static str,
    proc: Rc<Proc>,
}

struct Host {
    /// Pre-rendered `"agent":{...}`.
    agent_json: String,
    /// Pre-rendered `"host":{...}`.
    host_json: String,
    /// Pre-rendered `"elastic":{...}`.
    elastic_json: String,
    agent_id: String,
    machine_id: String,
    ip: String,
    os: &'static Os,
    seq: u64,
    next_pid: u32,
    residents: Vec<Resident>,
    shells: Vec<Rc<Proc>>,
    root_shell: Rc<Proc>,
    recent: Vec<Rc<Proc>>,
    recent_pos: usize,
}

const RECENT_CAP: usize = 48;

impl Host {
    fn resident(&self, key: &str) -> Option<&Rc<Proc>> {
        self.residents
            .iter()
            .find(|r| r.key == key)
            .map(|r| &r.proc)
    }

    fn alloc_pid(&mut self, rng: &mut Rng) -> u32 {
        self.next_pid += rng.range(1, 23) as u32;
        if self.next_pid > 4_194_000 {
            self.next_pid = 1000 + rng.below(1000) as u32;
        }
        self.next_pid
    }

    fn entity_id(&self, pid: u32, ts_ms: i64) -> String {
        // Like Elastic Defend: base64 of "<agent id>-<pid>-<start time in 100ns ticks>".
        let ticks = (ts_ms + 11_644_473_600_000) * 10_000;
        base64(format!("{}-{}-{}", self.agent_id, pid, ticks).as_bytes())
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &mut self,
        rng: &mut Rng,
        ts: i64,
        name: &str,
        exe: &str,
        args: Vec<String>,
        cwd: String,
        user: &'static User,
        parent: Option<Rc<Proc>>,
    ) -> Proc {
        let pid = self.alloc_pid(rng);
        Proc {
            pid,
            entity_id: self.entity_id(pid, ts),
            name: name.to_string(),
            exe: exe.to_string(),
            args,
            cwd,
            user,
            parent,
        }
    }

    fn remember(&mut self, p: Rc<Proc>) {
        if self.recent.len() < RECENT_CAP {
            self.recent.push(p);
        } else {
            self.recent[self.recent_pos] = p;
            self.recent_pos = (self.recent_pos + 1) % RECENT_CAP;
        }
    }

    fn any_shell(&self, rng: &mut Rng) -> Rc<Proc> {
        if rng.chance(0.2) {
            self.root_shell.clone()
        } else {
            rng.pick(&self.shells).clone()
        }
    }
}

fn sargs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[allow(clippy::too_many_arguments)]
fn resident(
    h: &mut Host,
    rng: &mut Rng,
    ts: i64,
    key: &'static str,
    name: &str,
    exe: &str,
    args: &[&str],
    user: &'static User,
    pid: Option<u32>,
) {
    let pid = pid.unwrap_or_else(|| h.alloc_pid(rng));
    let p = Proc {
        pid,
        entity_id: h.entity_id(pid, ts),
        name: name.to_string(),
        exe: exe.to_string(),
        args: sargs(args),
        cwd: "/".to_string(),
        user,
        parent: None,
    };
    h.residents.push(Resident {
        key,
        proc: Rc::new(p),
    });
}

/// A long-running process that every host of a role starts at boot.
struct ResidentSpec {
    key: &'static str,
    name: &'static str,
    exe: &'static str,
    args: &'static [&'static str],
    user: &'static User,
    /// A fixed PID (PID 1 for systemd); `None` allocates the next one.
    pid: Option<u32>,
}

/// Residents of every host, in start order (the order fixes the PIDs they get).
const BASE_RESIDENTS: &[ResidentSpec] = &[
    ResidentSpec {
        key: "systemd",
        name: "systemd",
        exe: "/usr/lib/systemd/systemd",
        args: &["/sbin/init"],
        user: ROOT,
        pid: Some(1),
    },
    ResidentSpec {
        key: "systemd-journald",
        name: "systemd-journald",
        exe: "/usr/lib/systemd/systemd-journald",
        args: &["/lib/systemd/systemd-journald"],
        user: ROOT,
        pid: None,
    },
    ResidentSpec {
        key: "systemd-resolved",
        name: "systemd-resolved",
        exe: "/usr/lib/systemd/systemd-resolved",
        args: &["/lib/systemd/systemd-resolved"],
        user: ROOT,
        pid: None,
    },
    ResidentSpec {
        key: "rsyslogd",
        name: "rsyslogd",
        exe: "/usr/sbin/rsyslogd",
        args: &["/usr/sbin/rsyslogd", "-n", "-iNONE"],
        user: ROOT,
        pid: None,
    },
    ResidentSpec {
        key: "cron",
        name: "cron",
        exe: "/usr/sbin/cron",
        args: &["/usr/sbin/cron", "-f", "-P"],
        user: ROOT,
        pid: None,
    },
    ResidentSpec {
        key: "sshd",
        name: "sshd",
        exe: "/usr/sbin/sshd",
        args: &["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"],
        user: ROOT,
        pid: None,
    },
];

const WEB_RESIDENTS: &[ResidentSpec] = &[
    ResidentSpec {
        key: "nginx",
        name: "nginx",
        exe: "/usr/sbin/nginx",
        args: &["nginx: master process /usr/sbin/nginx -g daemon on; master_process on;"],
        user: ROOT,
        pid: None,
    },
    ResidentSpec {
        key: "nginx-worker",
        name: "nginx",
        exe: "/usr/sbin/nginx",
        args: &["nginx: worker process"],
        user: WWW,
        pid: None,
    },
    ResidentSpec {
        key: "gunicorn",
        name: "python3",
        exe: "/usr/bin/python3.12",
        args: &[
            "/srv/app/venv/bin/python3",
            "/srv/app/venv/bin/gunicorn",
            "--workers",
            "4",
            "--bind",
            "127.0.0.1:8000",
            "app.wsgi:application",
        ],
        user: WWW,
        pid: None,
    },
];

const DB_RESIDENTS: &[ResidentSpec] = &[ResidentSpec {
    key: "postgres",
    name: "postgres",
    exe: "/usr/lib/postgresql/15/bin/postgres",
    args: &[
        "/usr/lib/postgresql/15/bin/postgres",
        "-D",
        "/var/lib/postgresql/15/main",
        "-c",
        "config_file=/etc/postgresql/15/main/postgresql.conf",
    ],
    user: POSTGRES,
    pid: None,
}];

const CONTAINERD: ResidentSpec = ResidentSpec {
    key: "containerd",
    name: "containerd",
    exe: "/usr/bin/containerd",
    args: &["/usr/bin/containerd"],
    user: ROOT,
    pid: None,
};

const DOCKER_RESIDENTS: &[ResidentSpec] = &[
    CONTAINERD,
    ResidentSpec {
        key: "dockerd",
        name: "dockerd",
        exe: "/usr/bin/dockerd",
        args: &[
            "/usr/bin/dockerd",
            "-H",
            "fd://",
            "--containerd=/run/containerd/containerd.sock",
        ],
        user: ROOT,
        pid: None,
    },
];

const K8S_RESIDENTS: &[ResidentSpec] = &[
    CONTAINERD,
    ResidentSpec {
        key: "kubelet",
        name: "kubelet",
        exe: "/usr/bin/kubelet",
        args: &[
            "/usr/bin/kubelet",
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
        ],
        user: ROOT,
        pid: None,
    },
];

/// Residents a role adds on top of [`BASE_RESIDENTS`], in start order.
fn role_residents(role: Role) -> &'static [ResidentSpec] {
    match role {
        Role::Web => WEB_RESIDENTS,
        Role::Db => DB_RESIDENTS,
        Role::Docker => DOCKER_RESIDENTS,
        Role::K8s => K8S_RESIDENTS,
        Role::Bastion => &[],
    }
}

/// Pre-render `"agent":{...}`.
fn render_agent_json(agent_id: &str, agent_version: &str) -> String {
    let mut b = String::new();
    jobj(&mut b, "agent");
    jstr(&mut b, "id", agent_id);
    jstr(&mut b, "type", "endpoint");
    jstr(&mut b, "version", agent_version);
    jend(&mut b);
    b
}

/// Pre-render `"elastic":{...}`.
fn render_elastic_json(agent_id: &str) -> String {
    let mut b = String::new();
    jobj(&mut b, "elastic");
    jobj(&mut b, "agent");
    jstr(&mut b, "id", agent_id);
    jend(&mut b);
    jend(&mut b);
    b
}

/// Pre-render `"host":{...}`.
fn render_host_json(name: &str, host_id: &str, ip: &str, mac: &str, os: &Os) -> String {
    let mut b = String::new();
    jobj(&mut b, "host");
    jstr(&mut b, "architecture", "x86_64");
    jstr(&mut b, "hostname", name);
    jstr(&mut b, "id", host_id);
    jarr(&mut b, "ip", &[ip]);
    jarr(&mut b, "mac", &[mac]);
    jstr(&mut b, "name", name);
    jobj(&mut b, "os");
    jstr(&mut b, "family", os.family);
    jstr(&mut b, "kernel", os.kernel);
    jstr(&mut b, "name", "Linux");
    jstr(&mut b, "platform", os.platform);
    jstr(&mut b, "type", "linux");
    jstr(&mut b, "version", os.version);
    jend(&mut b);
    jend(&mut b);
    b
}

/// A locally administered MAC address (`02-42-..`, like Docker's) from four random bytes.
fn random_mac(rng: &mut Rng) -> String {
    let m = rng.next_u64();
    format!(
        "02-42-{:02X}-{:02X}-{:02X}-{:02X}",
        m & 255,
        (m >> 8) & 255,
        (m >> 16) & 255,
        (m >> 24) & 255
    )
}

/// Stand-in for the root shell until [`open_sessions`] spawns the real one.
fn placeholder_proc() -> Rc<Proc> {
    Rc::new(Proc {
        pid: 0,
        entity_id: String::new(),
        name: String::new(),
        exe: String::new(),
        args: Vec::new(),
        cwd: String::new(),
        user: ROOT,
        parent: None,
    })
}

/// Start the base residents, then those of `role`, at boot time `t`.
fn start_residents(h: &mut Host, rng: &mut Rng, t: i64, role: Role) {
    for r in BASE_RESIDENTS.iter().chain(role_residents(role)) {
        resident(h, rng, t, r.key, r.name, r.exe, r.args, r.user, r.pid);
    }
}

/// Interactive sessions: two human users and one root shell (sudo -i).
fn open_sessions(h: &mut Host, rng: &mut Rng, index: usize, t: i64) {
    let sshd = h.resident("sshd").cloned();
    let first = rng.below(HUMANS.len() as u64) as usize;
    for k in 0..2 {
        let u = &HUMANS[(first + k * (1 + index % 3)) % HUMANS.len()];
        let p = h.spawn(
            rng,
            t,
            "bash",
            "/usr/bin/bash",
            sargs(&["-bash"]),
            u.home.to_string(),
            u,
            sshd.clone(),
        );
        h.shells.push(Rc::new(p));
    }
    let p = h.spawn(
        rng,
        t,
        "bash",
        "/usr/bin/bash",
        sargs(&["-bash"]),
        "/root".to_string(),
        ROOT,
        None,
    );
    h.root_shell = Rc::new(p);
}

fn make_host(rng: &mut Rng, index: usize, boot_ms: i64) -> Host {
    let (role, prefix, subnet) = ROLES[index % ROLES.len()];
    let name = format!("{prefix}{:02}", index / ROLES.len() + 1);
    let os = &OSES[match role {
        Role::Db | Role::Bastion => rng.below(OSES.len() as u64) as usize,
        _ => rng.below(3) as usize,
    }];
    let agent_id = uuid(rng);
    let host_id = hex(rng, 32);
    let agent_version = *rng.pick(&["8.15.2", "8.15.3", "8.16.1", "8.17.0"]);
    let ip = format!("10.20.{subnet}.{}", 10 + index / ROLES.len());
    let mac = random_mac(rng);

    let mut h = Host {
        agent_json: render_agent_json(&agent_id, agent_version),
        host_json: render_host_json(&name, &host_id, &ip, &mac, os),
        elastic_json: render_elastic_json(&agent_id),
        agent_id,
        machine_id: host_id,
        ip,
        os,
        seq: 10_000 + rng.below(5_000_000),
        next_pid: 300 + rng.below(200) as u32,
        residents: Vec::new(),
        shells: Vec::new(),
        root_shell: placeholder_proc(),
        recent: Vec::with_capacity(RECENT_CAP),
        recent_pos: 0,
    };
    start_residents(&mut h, rng, boot_ms, role);
    open_sessions(&mut h, rng, index, boot_ms);
    h
}

// ---------------------------------------------------------------------------------------------
// Templates for benign activity
// ---------------------------------------------------------------------------------------------

/// Who a process is (or whose child it is).
#[derive(Clone, Copy)]
enum Who {
    /// A resident process by key.
    Res(&'static str),
    /// An interactive bash (human or root).
    Shell,
    /// Root's interactive bash.
    RootShell,
    /// A short-lived helper not emitted itself: (name, executable, args).
    Synth(&'static str, &'static str, &'static [&'static str]),
}

#[derive(Clone, Copy)]
enum As {
    /// Same user as the parent (or the shell).
    Parent,
    Root,
    Www,
    Postgres,
}

struct ExecT {
    w: u32,
    parent: Who,
    user: As,
    name: &'static str,
    exe: &'static str,
    args: &'static [&'static str],
    cwd: &'static str,
}

const SH: &str = "/usr/bin/sh";

const EXECS: &[ExecT] = &[
    ExecT { w: 6, parent: Who::Res("cron"), user: As::Root, name: "sh", exe: SH, args: &["/bin/sh", "-c", "   cd / && run-parts --report /etc/cron.hourly"], cwd: "/" },
    ExecT { w: 4, parent: Who::Synth("sh", SH, &["/bin/sh", "-c", "   cd / && run-parts --report /etc/cron.hourly"]), user: As::Root, name: "run-parts", exe: "/usr/bin/run-parts", args: &["run-parts", "--report", "/etc/cron.hourly"], cwd: "/" },
    ExecT { w: 3, parent: Who::Synth("sh", SH, &["/bin/sh", "-c", "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }"]), user: As::Root, name: "logrotate", exe: "/usr/sbin/logrotate", args: &["/usr/sbin/logrotate", "/etc/logrotate.conf"], cwd: "/" },
    ExecT { w: 4, parent: Who::Res("cron"), user: As::Root, name: "sh", exe: SH, args: &["/bin/sh", "-c", "command -v debian-sa1 > /dev/null && debian-sa1 1 1"], cwd: "/" },
    ExecT { w: 3, parent: Who::Synth("sh", SH, &["/bin/sh", "-c", "command -v debian-sa1 > /dev/null && debian-sa1 1 1"]), user: As::Root, name: "sadc", exe: "/usr/lib/sysstat/sadc", args: &["/usr/lib/sysstat/sadc", "-F", "-L", "-S", "DISK", "1", "1", "/var/log/sysstat"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("cron"), user: As::Parent, name: "sh", exe: SH, args: &["/bin/sh", "-c", "@home@/bin/backup.sh >> /var/log/backup-@user@.log 2>&1"], cwd: "@home@" },
    ExecT { w: 8, parent: Who::Shell, user: As::Parent, name: "ls", exe: "/usr/bin/ls", args: &["ls", "--color=auto", "-la", "/var/log"], cwd: "@home@" },
    ExecT { w: 4, parent: Who::Shell, user: As::Parent, name: "cat", exe: "/usr/bin/cat", args: &["cat", "/etc/os-release"], cwd: "@home@" },
    ExecT { w: 5, parent: Who::Shell, user: As::Parent, name: "grep", exe: "/usr/bin/grep", args: &["grep", "--color=auto", "-i", "error", "/var/log/syslog"], cwd: "@home@" },
    ExecT { w: 4, parent: Who::Shell, user: As::Parent, name: "ps", exe: "/usr/bin/ps", args: &["ps", "auxf"], cwd: "@home@" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "tail", exe: "/usr/bin/tail", args: &["tail", "-n", "200", "-f", "/var/log/nginx/access.log"], cwd: "@home@" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "vim", exe: "/usr/bin/vim.basic", args: &["vim", "@home@/notes/todo-@n@.md"], cwd: "@home@" },
    ExecT { w: 4, parent: Who::Shell, user: As::Parent, name: "git", exe: "/usr/bin/git", args: &["git", "pull", "--rebase", "origin", "main"], cwd: "@home@/src/app" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "curl", exe: "/usr/bin/curl", args: &["curl", "-sSL", "-o", "/tmp/node_exporter.tar.gz", "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"], cwd: "@home@" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "python3", exe: "/usr/bin/python3.12", args: &["python3", "@home@/scripts/report.py", "--since", "24h", "--out", "/tmp/report-@n@.csv"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Shell, user: As::Parent, name: "sudo", exe: "/usr/bin/sudo", args: &["sudo", "apt-get", "update"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Synth("sudo", "/usr/bin/sudo", &["sudo", "apt-get", "update"]), user: As::Root, name: "apt-get", exe: "/usr/bin/apt-get", args: &["apt-get", "update"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Shell, user: As::Parent, name: "docker", exe: "/usr/bin/docker", args: &["docker", "ps", "--format", "{{.ID}}\t{{.Names}}\t{{.Status}}"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Shell, user: As::Parent, name: "ssh", exe: "/usr/bin/ssh", args: &["ssh", "-o", "StrictHostKeyChecking=accept-new", "deploy@10.20.12.@n@"], cwd: "@home@" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "df", exe: "/usr/bin/df", args: &["df", "-h"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::RootShell, user: As::Root, name: "du", exe: "/usr/bin/du", args: &["du", "-sh", "/var/lib/docker", "/var/log"], cwd: "/root" },
    ExecT { w: 3, parent: Who::Shell, user: As::Parent, name: "journalctl", exe: "/usr/bin/journalctl", args: &["journalctl", "-u", "nginx", "--since", "-1h", "--no-pager"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Shell, user: As::Parent, name: "htop", exe: "/usr/bin/htop", args: &["htop"], cwd: "@home@" },
    ExecT { w: 2, parent: Who::Shell, user: As::Parent, name: "sudo", exe: "/usr/bin/sudo", args: &["sudo", "-i"], cwd: "@home@" },
    ExecT { w: 3, parent: Who::Res("sshd"), user: As::Parent, name: "bash", exe: "/usr/bin/bash", args: &["-bash"], cwd: "@home@" },
    ExecT { w: 4, parent: Who::Res("containerd"), user: As::Root, name: "containerd-shim-runc-v2", exe: "/usr/bin/containerd-shim-runc-v2", args: &["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "@cid@", "-address", "/run/containerd/containerd.sock"], cwd: "/run/containerd/io.containerd.runtime.v2.task/moby/@cid@" },
    ExecT { w: 4, parent: Who::Synth("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2", &["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-address", "/run/containerd/containerd.sock"]), user: As::Root, name: "runc", exe: "/usr/bin/runc", args: &["runc", "--root", "/var/run/docker/runtime-runc/moby", "--log", "/run/containerd/io.containerd.runtime.v2.task/moby/@cid@/log.json", "--log-format", "json", "start", "@cid@"], cwd: "/run/containerd/io.containerd.runtime.v2.task/moby/@cid@" },
    ExecT { w: 2, parent: Who::Res("dockerd"), user: As::Root, name: "docker-proxy", exe: "/usr/bin/docker-proxy", args: &["/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "80@n@", "-container-ip", "172.17.0.@n@", "-container-port", "8080"], cwd: "/" },
    ExecT { w: 3, parent: Who::Res("systemd"), user: As::Root, name: "systemd-tmpfiles", exe: "/usr/bin/systemd-tmpfiles", args: &["systemd-tmpfiles", "--clean"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("systemd"), user: As::Root, name: "sh", exe: SH, args: &["/bin/sh", "/usr/lib/apt/apt.systemd.daily", "update"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("systemd"), user: As::Root, name: "fwupdmgr", exe: "/usr/bin/fwupdmgr", args: &["/usr/bin/fwupdmgr", "refresh"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("systemd"), user: As::Root, name: "mandb", exe: "/usr/bin/mandb", args: &["/usr/bin/mandb", "--quiet"], cwd: "/" },
    ExecT { w: 1, parent: Who::Res("systemd"), user: As::Root, name: "e2scrub_all", exe: "/usr/sbin/e2scrub_all", args: &["/sbin/e2scrub_all"], cwd: "/" },
    ExecT { w: 4, parent: Who::Res("kubelet"), user: As::Root, name: "iptables", exe: "/usr/sbin/xtables-nft-multi", args: &["iptables", "-w", "5", "-W", "100000", "-N", "KUBE-KUBELET-CANARY", "-t", "mangle"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("kubelet"), user: As::Root, name: "mount", exe: "/usr/bin/mount", args: &["mount", "-t", "tmpfs", "-o", "size=1048576", "tmpfs", "/var/lib/kubelet/pods/@cid@/volumes/kubernetes.io~projected/kube-api-access"], cwd: "/" },
    ExecT { w: 3, parent: Who::Synth("python3", "/usr/bin/python3.12", &["/usr/bin/python3", "/opt/monitor/collector.py", "--interval", "60"]), user: As::Root, name: "uname", exe: "/usr/bin/uname", args: &["uname", "-r"], cwd: "/opt/monitor" },
    ExecT { w: 3, parent: Who::Synth("python3", "/usr/bin/python3.12", &["/usr/bin/python3", "/opt/monitor/collector.py", "--interval", "60"]), user: As::Root, name: "ip", exe: "/usr/sbin/ip", args: &["ip", "-o", "-4", "addr", "show"], cwd: "/opt/monitor" },
    ExecT { w: 2, parent: Who::Synth("sudo", "/usr/bin/sudo", &["sudo", "find", "/var/log", "-name", "*.gz", "-mtime", "+30", "-delete"]), user: As::Root, name: "find", exe: "/usr/bin/find", args: &["find", "/var/log", "-name", "*.gz", "-mtime", "+30", "-delete"], cwd: "@home@" },
    ExecT { w: 1, parent: Who::Synth("apt-get", "/usr/bin/apt-get", &["apt-get", "-y", "upgrade"]), user: As::Root, name: "dpkg", exe: "/usr/bin/dpkg", args: &["/usr/bin/dpkg", "--status-fd", "36", "--configure", "--pending"], cwd: "/" },
    ExecT { w: 1, parent: Who::Synth("dpkg", "/usr/bin/dpkg", &["/usr/bin/dpkg", "--status-fd", "36", "--configure", "--pending"]), user: As::Root, name: "ldconfig", exe: "/usr/sbin/ldconfig", args: &["/sbin/ldconfig"], cwd: "/" },
    ExecT { w: 2, parent: Who::Res("gunicorn"), user: As::Www, name: "python3", exe: "/usr/bin/python3.12", args: &["/srv/app/venv/bin/python3", "/srv/app/manage.py", "clearsessions"], cwd: "/srv/app" },
    ExecT { w: 2, parent: Who::Res("postgres"), user: As::Postgres, name: "sh", exe: SH, args: &["sh", "-c", "test ! -f /var/lib/postgresql/wal_archive/@hex@ && cp pg_wal/@hex@ /var/lib/postgresql/wal_archive/@hex@"], cwd: "/var/lib/postgresql/15/main" },
];

/// Residents that fork often (pre-exec forks, per-connection workers).
const FORKERS: &[(u32, &str)] = &[
    (5, "sshd"),
    (3, "cron"),
    (3, "nginx"),
    (4, "postgres"),
    (2, "dockerd"),
    (2, "containerd"),
    (6, "<shell>"),
    (2, "gunicorn"),
];

#[derive(Clone, Copy)]
enum FileAct {
    Create,
    Modify,
    Delete,
    /// Rename from the given original path.
    Rename(&'static str),
}

struct FileT {
    w: u32,
    writer: Who,
    user: As,
    path: &'static str,
    act: FileAct,
    size: (u64, u64),
}

const FILES: &[FileT] = &[
    FileT { w: 10, writer: Who::Res("rsyslogd"), user: As::Root, path: "/var/log/syslog", act: FileAct::Modify, size: (1 << 20, 200 << 20) },
    FileT { w: 6, writer: Who::Res("rsyslogd"), user: As::Root, path: "/var/log/auth.log", act: FileAct::Modify, size: (1 << 16, 20 << 20) },
    FileT { w: 3, writer: Who::Res("rsyslogd"), user: As::Root, path: "/var/log/kern.log", act: FileAct::Modify, size: (1 << 16, 20 << 20) },
    FileT { w: 8, writer: Who::Res("systemd-journald"), user: As::Root, path: "/var/log/journal/@mid@/system.journal", act: FileAct::Modify, size: (8 << 20, 128 << 20) },
    FileT { w: 3, writer: Who::Res("systemd-journald"), user: As::Root, path: "/var/log/journal/@mid@/user-@uid@.journal", act: FileAct::Modify, size: (1 << 20, 64 << 20) },
    FileT { w: 2, writer: Who::Res("systemd-resolved"), user: As::Root, path: "/run/systemd/resolve/stub-resolv.conf", act: FileAct::Rename("/run/systemd/resolve/.#stub-resolv.conf@hex@"), size: (700, 900) },
    FileT { w: 12, writer: Who::Res("nginx-worker"), user: As::Www, path: "/var/log/nginx/access.log", act: FileAct::Modify, size: (1 << 20, 500 << 20) },
    FileT { w: 3, writer: Who::Res("nginx-worker"), user: As::Www, path: "/var/log/nginx/error.log", act: FileAct::Modify, size: (1 << 10, 4 << 20) },
    FileT { w: 3, writer: Who::Res("gunicorn"), user: As::Www, path: "/srv/app/media/uploads/@hex@.jpg", act: FileAct::Create, size: (20_000, 4 << 20) },
    FileT { w: 2, writer: Who::Res("gunicorn"), user: As::Www, path: "/tmp/tmp@hex@.upload", act: FileAct::Delete, size: (20_000, 4 << 20) },
    FileT { w: 5, writer: Who::Shell, user: As::Parent, path: "@home@/.bash_history", act: FileAct::Modify, size: (500, 200_000) },
    FileT { w: 2, writer: Who::Shell, user: As::Parent, path: "@home@/.lesshst", act: FileAct::Create, size: (20, 200) },
    FileT { w: 3, writer: Who::Synth("vim", "/usr/bin/vim.basic", &["vim", "notes/todo.md"]), user: As::Parent, path: "@home@/notes/.todo-@n@.md.swp", act: FileAct::Create, size: (4096, 16384) },
    FileT { w: 3, writer: Who::Synth("vim", "/usr/bin/vim.basic", &["vim", "notes/todo.md"]), user: As::Parent, path: "@home@/notes/.todo-@n@.md.swp", act: FileAct::Delete, size: (4096, 16384) },
    FileT { w: 2, writer: Who::Synth("vim", "/usr/bin/vim.basic", &["vim", "notes/todo.md"]), user: As::Parent, path: "@home@/notes/todo-@n@.md", act: FileAct::Rename("@home@/notes/todo-@n@.md~"), size: (100, 30_000) },
    FileT { w: 4, writer: Who::Synth("python3", "/usr/bin/python3.12", &["python3", "scripts/report.py", "--since", "24h"]), user: As::Parent, path: "/tmp/tmp@hex@/data.json", act: FileAct::Create, size: (100, 2_000_000) },
    FileT { w: 4, writer: Who::Synth("python3", "/usr/bin/python3.12", &["python3", "scripts/report.py", "--since", "24h"]), user: As::Parent, path: "/tmp/tmp@hex@/data.json", act: FileAct::Delete, size: (100, 2_000_000) },
    FileT { w: 3, writer: Who::Synth("python3", "/usr/bin/python3.12", &["python3", "scripts/report.py", "--since", "24h"]), user: As::Parent, path: "/tmp/report-@n@.csv", act: FileAct::Create, size: (1000, 500_000) },
    FileT { w: 2, writer: Who::Synth("pip", "/usr/bin/python3.12", &["/usr/bin/python3", "-m", "pip", "install", "--user", "requests"]), user: As::Parent, path: "@home@/.cache/pip/http-v2/@h1@/@h2@/@hex@.body", act: FileAct::Create, size: (10_000, 3_000_000) },
    FileT { w: 3, writer: Who::Synth("git", "/usr/bin/git", &["git", "pull", "--rebase", "origin", "main"]), user: As::Parent, path: "@home@/src/app/.git/FETCH_HEAD", act: FileAct::Modify, size: (90, 400) },
    FileT { w: 2, writer: Who::Synth("git", "/usr/bin/git", &["git", "pull", "--rebase", "origin", "main"]), user: As::Parent, path: "@home@/src/app/.git/index", act: FileAct::Rename("@home@/src/app/.git/index.lock"), size: (10_000, 400_000) },
    FileT { w: 2, writer: Who::Synth("curl", "/usr/bin/curl", &["curl", "-sSL", "-o", "/tmp/node_exporter.tar.gz", "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"]), user: As::Parent, path: "/tmp/node_exporter.tar.gz", act: FileAct::Create, size: (10_000_000, 11_000_000) },
    FileT { w: 6, writer: Who::Res("dockerd"), user: As::Root, path: "/var/lib/docker/containers/@cid@/@cid@-json.log", act: FileAct::Modify, size: (1 << 12, 100 << 20) },
    FileT { w: 2, writer: Who::Res("dockerd"), user: As::Root, path: "/var/lib/docker/containers/@cid@/hostconfig.json", act: FileAct::Create, size: (1500, 2500) },
    FileT { w: 3, writer: Who::Res("containerd"), user: As::Root, path: "/var/lib/containerd/io.containerd.content.v1.content/ingest/@cid@/data", act: FileAct::Create, size: (1 << 10, 80 << 20) },
    FileT { w: 3, writer: Who::Res("kubelet"), user: As::Root, path: "/var/lib/kubelet/pods/@uuid@/etc-hosts", act: FileAct::Modify, size: (200, 400) },
    FileT { w: 6, writer: Who::Res("postgres"), user: As::Postgres, path: "/var/lib/postgresql/15/main/pg_wal/00000001000000@h2@000000@h1@", act: FileAct::Modify, size: (16 << 20, 16 << 20) },
    FileT { w: 2, writer: Who::Res("postgres"), user: As::Postgres, path: "/var/lib/postgresql/15/main/pg_stat_tmp/global.stat", act: FileAct::Rename("/var/lib/postgresql/15/main/pg_stat_tmp/global.tmp"), size: (1000, 20_000) },
    FileT { w: 2, writer: Who::Synth("dpkg", "/usr/bin/dpkg", &["/usr/bin/dpkg", "--status-fd", "36", "--configure", "--pending"]), user: As::Root, path: "/var/lib/dpkg/status", act: FileAct::Rename("/var/lib/dpkg/status-new"), size: (1_000_000, 3_000_000) },
    FileT { w: 2, writer: Who::Synth("apt-get", "/usr/bin/apt-get", &["apt-get", "update"]), user: As::Root, path: "/var/cache/apt/pkgcache.bin", act: FileAct::Modify, size: (30 << 20, 60 << 20) },
    FileT { w: 2, writer: Who::Synth("apt-get", "/usr/bin/apt-get", &["apt-get", "update"]), user: As::Root, path: "/var/lib/apt/lists/partial/archive.ubuntu.com_ubuntu_dists_noble-updates_InRelease", act: FileAct::Create, size: (100_000, 130_000) },
    FileT { w: 1, writer: Who::Synth("ldconfig", "/usr/sbin/ldconfig", &["/sbin/ldconfig"]), user: As::Root, path: "/etc/ld.so.cache", act: FileAct::Rename("/etc/ld.so.cache~"), size: (50_000, 120_000) },
    FileT { w: 2, writer: Who::Synth("logrotate", "/usr/sbin/logrotate", &["/usr/sbin/logrotate", "/etc/logrotate.conf"]), user: As::Root, path: "/var/log/nginx/access.log.1", act: FileAct::Rename("/var/log/nginx/access.log"), size: (1 << 20, 500 << 20) },
    FileT { w: 2, writer: Who::Synth("logrotate", "/usr/sbin/logrotate", &["/usr/sbin/logrotate", "/etc/logrotate.conf"]), user: As::Root, path: "/var/log/syslog.7.gz", act: FileAct::Delete, size: (100_000, 10 << 20) },
    FileT { w: 1, writer: Who::Synth("logrotate", "/usr/sbin/logrotate", &["/usr/sbin/logrotate", "/etc/logrotate.conf"]), user: As::Root, path: "/var/lib/logrotate/status", act: FileAct::Rename("/var/lib/logrotate/status.tmp"), size: (2000, 8000) },
    FileT { w: 2, writer: Who::Synth("sadc", "/usr/lib/sysstat/sadc", &["/usr/lib/sysstat/sadc", "-F", "-L", "-S", "DISK", "1", "1", "/var/log/sysstat"]), user: As::Root, path: "/var/log/sysstat/sa@dd@", act: FileAct::Modify, size: (100_000, 3_000_000) },
    FileT { w: 1, writer: Who::Res("sshd"), user: As::Root, path: "/var/log/btmp", act: FileAct::Modify, size: (0, 5_000_000) },
    FileT { w: 1, writer: Who::Res("cron"), user: As::Root, path: "/tmp/tmp.@hex@", act: FileAct::Create, size: (0, 100) },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

struct NetT {
    w: u32,
    who: Who,
    user: As,
    dir: Dir,
    udp: bool,
    /// Remote addresses; `@pub@` = random public IPv4, `@lan@` = random 10.20.x.y.
    remote: &'static [&'static str],
    /// Local port for ingress, remote port for egress.
    port: u16,
}

const NETS: &[NetT] = &[
    NetT { w: 6, who: Who::Res("sshd"), user: As::Root, dir: Dir::In, udp: false, remote: &["@pub@", "@lan@", "10.20.10.10"], port: 22 },
    NetT { w: 10, who: Who::Res("nginx-worker"), user: As::Www, dir: Dir::In, udp: false, remote: &["@pub@", "@pub@", "10.20.0.5"], port: 443 },
    NetT { w: 3, who: Who::Res("nginx-worker"), user: As::Www, dir: Dir::Out, udp: false, remote: &["127.0.0.1"], port: 8000 },
    NetT { w: 3, who: Who::Res("gunicorn"), user: As::Www, dir: Dir::Out, udp: false, remote: &["10.20.12.10", "10.20.12.11"], port: 5432 },
    NetT { w: 6, who: Who::Res("postgres"), user: As::Postgres, dir: Dir::In, udp: false, remote: &["10.20.11.10", "10.20.11.11", "@lan@"], port: 5432 },
    NetT { w: 5, who: Who::Res("systemd-resolved"), user: As::Root, dir: Dir::Out, udp: true, remote: &["10.20.0.2", "10.20.0.3"], port: 53 },
    NetT { w: 3, who: Who::Synth("curl", "/usr/bin/curl", &["curl", "-sSL", "-o", "/tmp/node_exporter.tar.gz", "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"]), user: As::Parent, dir: Dir::Out, udp: false, remote: &["140.82.112.3", "140.82.114.4", "185.199.108.133"], port: 443 },
    NetT { w: 3, who: Who::Synth("http", "/usr/lib/apt/methods/http", &["/usr/lib/apt/methods/http"]), user: As::Root, dir: Dir::Out, udp: false, remote: &["91.189.91.82", "185.125.190.36", "151.101.2.132"], port: 80 },
    NetT { w: 4, who: Who::Res("dockerd"), user: As::Root, dir: Dir::Out, udp: false, remote: &["44.205.64.79", "54.236.113.205", "104.16.101.215"], port: 443 },
    NetT { w: 5, who: Who::Res("kubelet"), user: As::Root, dir: Dir::Out, udp: false, remote: &["10.20.0.10"], port: 6443 },
    NetT { w: 3, who: Who::Res("containerd"), user: As::Root, dir: Dir::Out, udp: false, remote: &["34.111.24.186", "142.250.74.110"], port: 443 },
    NetT { w: 2, who: Who::Synth("python3", "/usr/bin/python3.12", &["/usr/bin/python3", "/opt/monitor/collector.py", "--interval", "60"]), user: As::Root, dir: Dir::Out, udp: false, remote: &["10.20.0.20"], port: 9091 },
    NetT { w: 2, who: Who::Synth("ssh", "/usr/bin/ssh", &["ssh", "-o", "StrictHostKeyChecking=accept-new", "deploy@10.20.12.10"]), user: As::Parent, dir: Dir::Out, udp: false, remote: &["@lan@"], port: 22 },
    NetT { w: 2, who: Who::Synth("chronyd", "/usr/sbin/chronyd", &["/usr/sbin/chronyd", "-F", "1"]), user: As::Root, dir: Dir::Out, udp: true, remote: &["185.125.190.57", "91.189.94.4"], port: 123 },
];

// ---------------------------------------------------------------------------------------------
// Relevant (systemd) material
// ---------------------------------------------------------------------------------------------

const EVIL_UNITS: &[&str] = &[
    "dbus-org.freedesktop.helper",
    "systemd-udev-sync",
    "kworker-update",
    "network-monitor",
    "sshd-keygen-helper",
    "update-notifier-daemon",
    "cloud-init-hotplug",
    "snapd-refresh",
    "xmrig",
    "agent-updater",
    "docker-cleanup",
    "pkgsync",
];

const PKG_UNITS: &[(&str, &str)] = &[
    ("nginx", "nginx-common_1.24.0-2ubuntu7.1_all.deb"),
    ("ssh", "openssh-server_1%3a9.6p1-3ubuntu13.5_amd64.deb"),
    (
        "docker",
        "docker-ce_5%3a27.3.1-1~ubuntu.24.04~noble_amd64.deb",
    ),
    ("containerd", "containerd.io_1.7.22-1_amd64.deb"),
    ("cron", "cron_3.0pl1-184ubuntu2_amd64.deb"),
    ("rsyslog", "rsyslog_8.2312.0-3ubuntu9_amd64.deb"),
    (
        "unattended-upgrades",
        "unattended-upgrades_2.9.1+nmu4ubuntu1_all.deb",
    ),
    ("fwupd", "fwupd_1.9.24-1~24.04.1_amd64.deb"),
    ("postgresql", "postgresql-common_257build1.1_all.deb"),
    ("chrony", "chrony_4.5-1ubuntu4.1_amd64.deb"),
];

const SYSTEMD_SYSTEMCTL: &[&[&str]] = &[
    &[
        "/bin/systemctl",
        "--no-block",
        "try-restart",
        "@pkg@.service",
    ],
    &["/usr/bin/systemctl", "is-system-running"],
    &["/bin/systemctl", "reload-or-restart", "@pkg@.service"],
    &[
        "systemctl",
        "--user",
        "import-environment",
        "DISPLAY",
        "XAUTHORITY",
    ],
    &[
        "/bin/systemctl",
        "start",
        "--no-block",
        "apt-daily-upgrade.service",
    ],
    &[
        "/usr/bin/systemctl",
        "is-active",
        "--quiet",
        "@pkg@.service",
    ],
];

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

/// Generator settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Milliseconds since the epoch of the first event.
    pub start_ms: i64,
    /// Fraction of events that are systemd-relevant, in `[0, 1]`.
    pub relevant_rate: f64,
    /// Number of hosts in the simulated fleet.
    pub hosts: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: DEFAULT_SEED,
            start_ms: parse_iso8601(DEFAULT_START).expect("valid default"),
            relevant_rate: DEFAULT_RELEVANT_RATE,
            hosts: 25,
        }
    }
}

/// Per-event substitution context for `@...@` placeholders.
struct Ctx<'a> {
    user: &'static User,
    host: &'a Host,
    n: u64,
    hex: String,
    cid: Option<String>,
    uuid: Option<String>,
    pkg: &'static str,
}

impl<'a> Ctx<'a> {
    fn new(rng: &mut Rng, host: &'a Host, user: &'static User) -> Self {
        Ctx {
            user,
            host,
            n: rng.range(2, 99),
            hex: hex(rng, 8),
            cid: None,
            uuid: None,
            pkg: PKG_UNITS[rng.below(PKG_UNITS.len() as u64) as usize].0,
        }
    }

    fn expand(&mut self, rng: &mut Rng, s: &str) -> String {
        if !s.contains('@') {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len() + 32);
        let mut rest = s;
        while let Some(i) = rest.find('@') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let tok_end = after.find('@');
            let tok = tok_end.map(|e| &after[..e]);
            let known = match tok {
                Some("home") => {
                    out.push_str(self.user.home);
                    true
                }
                Some("user") => {
                    out.push_str(self.user.name);
                    true
                }
                Some("uid") => {
                    out.push_str(self.user.id);
                    true
                }
                Some("n") => {
                    let _ = write!(out, "{}", self.n);
                    true
                }
                Some("dd") => {
                    let _ = write!(out, "{:02}", self.n % 28 + 1);
                    true
                }
                Some("hex") => {
                    out.push_str(&self.hex);
                    true
                }
                Some("h1") => {
                    out.push_str(&self.hex[0..2]);
                    true
                }
                Some("h2") => {
                    out.push_str(&self.hex[2..4]);
                    true
                }
                Some("cid") => {
                    let c = self.cid.get_or_insert_with(|| hex(rng, 64));
                    out.push_str(c);
                    true
                }
                Some("uuid") => {
                    let c = self.uuid.get_or_insert_with(|| uuid(rng));
                    out.push_str(c);
                    true
                }
                Some("mid") => {
                    // machine-id == host.id
                    out.push_str(&self.host.machine_id);
                    true
                }
                Some("pkg") => {
                    out.push_str(self.pkg);
                    true
                }
                Some("pub") => {
                    let x = rng.next_u64();
                    let a = [
                        23, 31, 45, 51, 62, 77, 81, 89, 94, 103, 109, 117, 154, 176, 185, 193, 203,
                        212,
                    ][(x % 18) as usize];
                    let _ = write!(
                        out,
                        "{}.{}.{}.{}",
                        a,
                        (x >> 8) & 255,
                        (x >> 16) & 255,
                        1 + (x >> 24) % 254
                    );
                    true
                }
                Some("lan") => {
                    let x = rng.next_u64();
                    let _ = write!(out, "10.20.{}.{}", 10 + x % 5, 10 + (x >> 8) % 40);
                    true
                }
                _ => false,
            };
            if known {
                rest = &after[tok_end.unwrap() + 1..];
            } else {
                out.push('@');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }
}

/// Event counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub relevant: u64,
    pub process: u64,
    pub file: u64,
    pub network: u64,
}

/// The corpus generator: call [`Generator::next_event`] repeatedly.
pub struct Generator {
    rng: Rng,
    now_ms: i64,
    rate: f64,
    hosts: Vec<Host>,
    buf: String,
    stats: Stats,
}

enum Kind {
    Process,
    File,
    Network,
}

impl Generator {
    pub fn new(cfg: &Config) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let n = cfg.hosts.max(1);
        let boot = cfg.start_ms - 86_400_000 * 3;
        let hosts = (0..n)
            .map(|i| make_host(&mut rng, i, boot - (i as i64) * 3_600_000))
            .collect();
        Generator {
            rng,
            now_ms: cfg.start_ms,
            rate: cfg.relevant_rate.clamp(0.0, 1.0),
            hosts,
            buf: String::with_capacity(4096),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Produce the next event as one NDJSON line (with its trailing `\n`), and whether it is
    /// systemd-relevant.
    pub fn next_event(&mut self) -> (&str, bool) {
        self.now_ms += self.rng.range(1, 6) as i64;
        self.buf.clear();
        let h = self.rng.below(self.hosts.len() as u64) as usize;
        let relevant = self.rate > 0.0 && self.rng.chance(self.rate);
        let kind = if relevant {
            self.relevant(h)
        } else {
            self.benign(h)
        };
        match kind {
            Kind::Process => self.stats.process += 1,
            Kind::File => self.stats.file += 1,
            Kind::Network => self.stats.network += 1,
        }
        self.stats.events += 1;
        self.stats.relevant += relevant as u64;
        self.buf.push('\n');
        (&self.buf, relevant)
    }

    fn benign(&mut self, h: usize) -> Kind {
        // Mix of a Linux endpoint: file events dominate, then process, then network.
        let x = self.rng.below(100);
        if x < 18 {
            self.exec_benign(h);
            Kind::Process
        } else if x < 22 {
            self.fork(h);
            Kind::Process
        } else if x < 30 {
            self.end(h);
            Kind::Process
        } else if x < 80 {
            self.file_benign(h);
            Kind::File
        } else {
            self.network(h);
            Kind::Network
        }
    }

    fn relevant(&mut self, h: usize) -> Kind {
        let x = self.rng.below(100);
        if x < 35 {
            self.rel_unit_file(h);
            Kind::File
        } else if x < 70 {
            self.rel_systemctl(h);
            Kind::Process
        } else if x < 85 {
            self.twin_pkg_unit(h);
            Kind::File
        } else {
            self.twin_systemd_systemctl(h);
            Kind::Process
        }
    }

    // --- process resolution -----------------------------------------------------------------

    fn user_for(&self, sel: As, parent_user: &'static User) -> &'static User {
        match sel {
            As::Parent => parent_user,
            As::Root => ROOT,
            As::Www => WWW,
            As::Postgres => POSTGRES,
        }
    }

    /// Resolve `who` on host `h` into a process (a resident, a shell, or a fresh helper whose
    /// parent is a shell or resident). `None` if the host lacks that resident.
    fn resolve(&mut self, h: usize, who: Who, user: As) -> Option<Rc<Proc>> {
        let ts = self.now_ms;
        let rng = &mut self.rng;
        let host = &mut self.hosts[h];
        match who {
            Who::Res(k) => host.resident(k).cloned(),
            Who::Shell => Some(host.any_shell(rng)),
            Who::RootShell => Some(host.root_shell.clone()),
            Who::Synth(name, exe, args) => {
                // Helpers run from a shell (sudo, interactive tools) or from a systemd unit.
                let parent = match user {
                    _ if name == "sudo" => host.any_shell(rng),
                    As::Parent => host.any_shell(rng),
                    _ => host.resident("systemd").cloned().expect("systemd resident"),
                };
                let u = match user {
                    As::Parent => parent.user,
                    As::Root => ROOT,
                    As::Www => WWW,
                    As::Postgres => POSTGRES,
                };
                let mut ctx = Ctx::new(rng, host, u);
                let args: Vec<String> = args.iter().map(|a| ctx.expand(rng, a)).collect();
                let cwd = if u.name == "root" {
                    "/".to_string()
                } else {
                    u.home.to_string()
                };
                Some(Rc::new(host.spawn(
                    rng,
                    ts,
                    name,
                    exe,
                    args,
                    cwd,
                    u,
                    Some(parent),
                )))
            }
        }
    }

    // --- benign events ----------------------------------------------------------------------

    fn exec_benign(&mut self, h: usize) {
        for _ in 0..8 {
            let t = &EXECS[weighted(&mut self.rng, EXECS, |t| t.w)];
            let Some(parent) = self.resolve(h, t.parent, t.user) else {
                continue;
            };
            let user = self.user_for(t.user, parent.user);
            self.exec(h, parent, user, t.name, t.exe, t.args, t.cwd, true);
            return;
        }
        let shell = self.hosts[h].any_shell(&mut self.rng);
        let user = shell.user;
        self.exec(
            h,
            shell,
            user,
            "ls",
            "/usr/bin/ls",
            &["ls", "--color=auto"],
            "@home@",
            true,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn exec(
        &mut self,
        h: usize,
        parent: Rc<Proc>,
        user: &'static User,
        name: &str,
        exe: &str,
        args: &[&str],
        cwd: &str,
        remember: bool,
    ) {
        let ts = self.now_ms;
        let rng = &mut self.rng;
        let host = &mut self.hosts[h];
        let mut ctx = Ctx::new(rng, host, user);
        let args: Vec<String> = args.iter().map(|a| ctx.expand(rng, a)).collect();
        let cwd = ctx.expand(rng, cwd);
        drop(ctx);
        let p = Rc::new(host.spawn(rng, ts, name, exe, args, cwd, user, Some(parent)));
        // Only benign processes may later end (an `end` event is benign and must not mention
        // systemctl).
        if remember {
            host.remember(p.clone());
        }
        self.write_process_event(h, &p, "exec", "start", None);
    }

    fn fork(&mut self, h: usize) {
        let ts = self.now_ms;
        for _ in 0..8 {
            let (_, key) = FORKERS[weighted(&mut self.rng, FORKERS, |f| f.0)];
            let host = &mut self.hosts[h];
            let parent = if key == "<shell>" {
                Some(host.any_shell(&mut self.rng))
            } else {
                host.resident(key).cloned()
            };
            let Some(parent) = parent else { continue };
            let child = host.spawn(
                &mut self.rng,
                ts,
                &parent.name,
                &parent.exe,
                parent.args.clone(),
                parent.cwd.clone(),
                parent.user,
                Some(parent.clone()),
            );
            let child = Rc::new(child);
            host.remember(child.clone());
            self.write_process_event(h, &child, "fork", "start", None);
            return;
        }
        self.exec_benign(h);
    }

    fn end(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        if host.recent.is_empty() {
            return self.exec_benign(h);
        }
        let i = self.rng.below(host.recent.len() as u64) as usize;
        let p = host.recent.swap_remove(i);
        if host.recent_pos >= host.recent.len() {
            host.recent_pos = 0;
        }
        let code = match self.rng.below(20) {
            0 => 1,
            1 => 2,
            2 => 130,
            _ => 0,
        };
        self.write_process_event(h, &p, "end", "end", Some(code));
    }

    fn file_benign(&mut self, h: usize) {
        for _ in 0..8 {
            let t = &FILES[weighted(&mut self.rng, FILES, |t| t.w)];
            let Some(writer) = self.resolve(h, t.writer, t.user) else {
                continue;
            };
            let user = match t.writer {
                Who::Res(_) => writer.user,
                _ => self.user_for(t.user, writer.user),
            };
            let mut ctx = Ctx::new(&mut self.rng, &self.hosts[h], user);
            let path = ctx.expand(&mut self.rng, t.path);
            let orig = match t.act {
                FileAct::Rename(o) => Some(ctx.expand(&mut self.rng, o)),
                _ => None,
            };
            drop(ctx);
            let size = self.rng.range(t.size.0, t.size.1);
            let (action, ty) = match t.act {
                FileAct::Create => ("creation", "creation"),
                FileAct::Modify => ("modification", "change"),
                FileAct::Delete => ("deletion", "deletion"),
                FileAct::Rename(_) => ("rename", "change"),
            };
            self.write_file_event(h, &writer, user, &path, orig.as_deref(), action, ty, size);
            return;
        }
        // Every host has rsyslogd.
        let w = self.hosts[h]
            .resident("rsyslogd")
            .cloned()
            .expect("rsyslogd resident");
        let size = self.rng.range(1 << 20, 200 << 20);
        self.write_file_event(
            h,
            &w,
            ROOT,
            "/var/log/syslog",
            None,
            "modification",
            "change",
            size,
        );
    }

    fn network(&mut self, h: usize) {
        for _ in 0..8 {
            let t = &NETS[weighted(&mut self.rng, NETS, |t| t.w)];
            let Some(p) = self.resolve(h, t.who, t.user) else {
                continue;
            };
            let user = match t.who {
                Who::Res(_) => p.user,
                _ => self.user_for(t.user, p.user),
            };
            let mut ctx = Ctx::new(&mut self.rng, &self.hosts[h], user);
            let remote = *self.rng.pick(t.remote);
            let remote = ctx.expand(&mut self.rng, remote);
            drop(ctx);
            let eph = self.rng.range(32768, 60999) as u16;
            let (action, ty) = match (t.dir, self.rng.below(3)) {
                (_, 0) => ("disconnect_received", "end"),
                (Dir::In, _) => ("connection_accepted", "start"),
                (Dir::Out, _) => ("connection_attempted", "start"),
            };
            let local = if remote.starts_with("127.") {
                remote.clone()
            } else {
                self.hosts[h].ip.clone()
            };
            let (src, sport, dst, dport) = match t.dir {
                Dir::In => (remote.as_str(), eph, local.as_str(), t.port),
                Dir::Out => (local.as_str(), eph, remote.as_str(), t.port),
            };
            let (src, dst) = (src.to_string(), dst.to_string());
            self.write_network_event(
                h,
                &p,
                user,
                t.dir,
                t.udp,
                action,
                ty,
                (&src, sport),
                (&dst, dport),
            );
            return;
        }
        self.file_benign(h);
    }

    // --- relevant events --------------------------------------------------------------------

    /// A shell-ish writer/parent for attacker activity: bash, sh, or python3.
    fn attacker_proc(
        &mut self,
        h: usize,
        user: &'static User,
        unit: &str,
        intent: &str,
    ) -> Rc<Proc> {
        let ts = self.now_ms;
        let rng = &mut self.rng;
        let host = &mut self.hosts[h];
        let shell = if user.name == "root" {
            host.root_shell.clone()
        } else {
            host.shells
                .iter()
                .find(|s| s.user.name == user.name)
                .cloned()
                .unwrap_or_else(|| host.root_shell.clone())
        };
        let dir = format!("/tmp/.{}", hex(rng, 6));
        match rng.below(3) {
            0 => shell,
            1 => {
                let args = vec!["sh".to_string(), "-c".to_string(), intent.to_string()];
                Rc::new(host.spawn(rng, ts, "sh", SH, args, dir, user, Some(shell)))
            }
            _ => {
                let script = format!(
                    "{dir}/{}.py",
                    rng.pick(&["install", "setup", "update", "x"])
                );
                let args = if rng.chance(0.5) {
                    vec![
                        "python3".to_string(),
                        script,
                        "--unit".to_string(),
                        unit.to_string(),
                    ]
                } else {
                    vec![
                        "python3".to_string(),
                        "-c".to_string(),
                        format!("import os;os.system({intent:?})"),
                    ]
                };
                Rc::new(host.spawn(
                    rng,
                    ts,
                    "python3",
                    "/usr/bin/python3.12",
                    args,
                    dir,
                    user,
                    Some(shell),
                ))
            }
        }
    }

    fn pick_user_for_unit(&mut self, h: usize) -> &'static User {
        if self.rng.chance(0.3) {
            let host = &self.hosts[h];
            host.shells[self.rng.below(host.shells.len() as u64) as usize].user
        } else {
            ROOT
        }
    }

    fn rel_unit_file(&mut self, h: usize) {
        let unit = *self.rng.pick(EVIL_UNITS);
        let user = self.pick_user_for_unit(h);
        let path = if user.name == "root" {
            format!("/etc/systemd/system/{unit}.service")
        } else {
            format!("{}/.config/systemd/user/{unit}.service", user.home)
        };
        let intent = format!("echo W1VuaXRdCkRlc2NyaXB0aW9uPVVwZGF0ZXIK | base64 -d > {path}");
        let writer = self.attacker_proc(h, user, unit, &intent);
        let size = self.rng.range(180, 700);
        self.write_file_event(h, &writer, user, &path, None, "creation", "creation", size);
    }

    fn rel_systemctl(&mut self, h: usize) {
        let unit = format!("{}.service", self.rng.pick(EVIL_UNITS));
        let user = self.pick_user_for_unit(h);
        let verb = match self.rng.below(100) {
            0..=39 => "enable",
            40..=74 => "start",
            _ => "daemon-reload",
        };
        let mut args = vec!["systemctl".to_string()];
        if user.name != "root" {
            args.push("--user".to_string());
        }
        args.push(verb.to_string());
        if verb != "daemon-reload" {
            if verb == "enable" && self.rng.chance(0.4) {
                args.push("--now".to_string());
            }
            args.push(unit.clone());
        }
        let intent = format!("systemctl daemon-reload && systemctl enable --now {unit}");
        let parent = self.attacker_proc(h, user, &unit, &intent);
        let ts = self.now_ms;
        let host = &mut self.hosts[h];
        let cwd = parent.cwd.clone();
        let p = Rc::new(host.spawn(
            &mut self.rng,
            ts,
            "systemctl",
            "/usr/bin/systemctl",
            args,
            cwd,
            user,
            Some(parent),
        ));
        self.write_process_event(h, &p, "exec", "start", None);
    }

    /// Benign twin: the package manager installs a unit file.
    fn twin_pkg_unit(&mut self, h: usize) {
        let (unit, deb) = *self.rng.pick(PKG_UNITS);
        let ts = self.now_ms;
        let rng = &mut self.rng;
        let host = &mut self.hosts[h];
        let systemd = host.resident("systemd").cloned();
        let (writer, path) = match host.os.pkg {
            Pkg::Deb => {
                let apt = Rc::new(host.spawn(
                    rng,
                    ts,
                    "apt-get",
                    "/usr/bin/apt-get",
                    sargs(&["apt-get", "-y", "upgrade"]),
                    "/".to_string(),
                    ROOT,
                    systemd,
                ));
                let args = vec![
                    "/usr/bin/dpkg".to_string(),
                    "--status-fd".to_string(),
                    "36".to_string(),
                    "--no-triggers".to_string(),
                    "--unpack".to_string(),
                    "--auto-deconfigure".to_string(),
                    format!("/var/cache/apt/archives/{deb}"),
                ];
                let w = Rc::new(host.spawn(
                    rng,
                    ts,
                    "dpkg",
                    "/usr/bin/dpkg",
                    args,
                    "/".to_string(),
                    ROOT,
                    Some(apt),
                ));
                (w, format!("/lib/systemd/system/{unit}.service"))
            }
            Pkg::Rpm => {
                let dnf = Rc::new(host.spawn(
                    rng,
                    ts,
                    "dnf",
                    "/usr/bin/python3.9",
                    sargs(&["/usr/bin/python3", "/usr/bin/dnf", "-y", "upgrade"]),
                    "/".to_string(),
                    ROOT,
                    systemd,
                ));
                (dnf, format!("/usr/lib/systemd/system/{unit}.service"))
            }
        };
        let size = self.rng.range(300, 1500);
        if self.rng.chance(0.3) {
            // dpkg unpacks to `<path>.dpkg-new`, rpm to `<path>;<hex>`, then renames.
            let orig = match self.hosts[h].os.pkg {
                Pkg::Deb => format!("{path}.dpkg-new"),
                Pkg::Rpm => format!("{path};{}", hex(&mut self.rng, 8)),
            };
            self.write_file_event(
                h,
                &writer,
                ROOT,
                &path,
                Some(&orig),
                "rename",
                "change",
                size,
            );
        } else {
            self.write_file_event(h, &writer, ROOT, &path, None, "creation", "creation", size);
        }
    }

    /// Benign twin: systemd itself runs systemctl (ExecStart=/ExecReload= of some unit).
    fn twin_systemd_systemctl(&mut self, h: usize) {
        let tmpl = *self.rng.pick(SYSTEMD_SYSTEMCTL);
        let systemd = self.hosts[h]
            .resident("systemd")
            .cloned()
            .expect("systemd resident");
        self.exec(
            h,
            systemd,
            ROOT,
            "systemctl",
            "/usr/bin/systemctl",
            tmpl,
            "/",
            false,
        );
    }

    // --- rendering --------------------------------------------------------------------------

    fn head(&mut self, h: usize, dataset: &str, action: &str, category: &str, ty: &str) {
        let host = &mut self.hosts[h];
        host.seq += 1;
        let b = &mut self.buf;
        b.push_str("{\"@timestamp\":\"");
        push_iso8601(b, self.now_ms);
        b.push('"');
        sep(b);
        b.push_str(&host.agent_json);
        jobj(b, "data_stream");
        jstr(b, "dataset", dataset);
        jstr(b, "namespace", "default");
        jstr(b, "type", "logs");
        jend(b);
        jobj(b, "ecs");
        jstr(b, "version", "8.11.0");
        jend(b);
        sep(b);
        b.push_str(&host.elastic_json);
        jobj(b, "event");
        jstr(b, "action", action);
        jarr(b, "category", &[category]);
        jstr(b, "dataset", dataset);
        key(b, "id");
        b.push('"');
        push_event_id(b, &mut self.rng);
        b.push('"');
        jstr(b, "kind", "event");
        jstr(b, "module", "endpoint");
        jnum(b, "sequence", host.seq as i64);
        jarr(b, "type", &[ty]);
        jend(b);
        sep(b);
        b.push_str(&host.host_json);
    }

    fn tail(&mut self, user: &User) {
        let b = &mut self.buf;
        jobj(b, "user");
        jstr(b, "id", user.id);
        jstr(b, "name", user.name);
        jend(b);
        jobj(b, "group");
        jstr(b, "id", user.gid);
        jstr(b, "name", user.group);
        jend(b);
        jend(b);
    }

    fn write_process_event(
        &mut self,
        h: usize,
        p: &Proc,
        action: &str,
        ty: &str,
        exit: Option<i64>,
    ) {
        self.head(h, "endpoint.events.process", action, "process", ty);
        let b = &mut self.buf;
        jstr(b, "message", "Endpoint process event");
        jobj(b, "process");
        jarr(b, "args", &p.args);
        jnum(b, "args_count", p.args.len() as i64);
        jcmdline(b, "command_line", &p.args);
        jstr(b, "entity_id", &p.entity_id);
        jstr(b, "executable", &p.exe);
        if let Some(code) = exit {
            jnum(b, "exit_code", code);
        }
        jobj(b, "hash");
        key(b, "sha256");
        b.push('"');
        push_sha256_of(b, &p.exe);
        b.push('"');
        jend(b);
        jstr(b, "name", &p.name);
        if let Some(pp) = &p.parent {
            jobj(b, "parent");
            jarr(b, "args", &pp.args);
            jnum(b, "args_count", pp.args.len() as i64);
            jcmdline(b, "command_line", &pp.args);
            jstr(b, "entity_id", &pp.entity_id);
            jstr(b, "executable", &pp.exe);
            jstr(b, "name", &pp.name);
            jnum(b, "pid", pp.pid as i64);
            jend(b);
        }
        jnum(b, "pid", p.pid as i64);
        jstr(b, "working_directory", &p.cwd);
        jend(b);
        self.tail(p.user);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_file_event(
        &mut self,
        h: usize,
        writer: &Proc,
        user: &User,
        path: &str,
        orig: Option<&str>,
        action: &str,
        ty: &str,
        size: u64,
    ) {
        self.head(h, "endpoint.events.file", action, "file", ty);
        let b = &mut self.buf;
        let (dir, name) = match path.rfind('/') {
            Some(0) => ("/", &path[1..]),
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        jobj(b, "file");
        if let Some(o) = orig {
            jobj(b, "Ext");
            jobj(b, "original");
            let oname = o.rsplit('/').next().unwrap_or(o);
            jstr(b, "name", oname);
            jstr(b, "path", o);
            jend(b);
            jend(b);
        }
        jstr(b, "directory", dir);
        if let Some(dot) = name.rfind('.') {
            if dot > 0 && dot + 1 < name.len() {
                jstr(b, "extension", &name[dot + 1..]);
            }
        }
        jstr(b, "name", name);
        jstr(b, "path", path);
        jnum(b, "size", size as i64);
        jend(b);
        jstr(b, "message", "Endpoint file event");
        jobj(b, "process");
        jstr(b, "entity_id", &writer.entity_id);
        jstr(b, "executable", &writer.exe);
        jstr(b, "name", &writer.name);
        jnum(b, "pid", writer.pid as i64);
        jend(b);
        self.tail(user);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_network_event(
        &mut self,
        h: usize,
        p: &Proc,
        user: &User,
        dir: Dir,
        udp: bool,
        action: &str,
        ty: &str,
        src: (&str, u16),
        dst: (&str, u16),
    ) {
        self.head(h, "endpoint.events.network", action, "network", ty);
        let b = &mut self.buf;
        jobj(b, "destination");
        jstr(b, "address", dst.0);
        jstr(b, "ip", dst.0);
        jnum(b, "port", dst.1 as i64);
        jend(b);
        jstr(b, "message", "Endpoint network event");
        jobj(b, "network");
        jstr(
            b,
            "direction",
            if dir == Dir::In { "ingress" } else { "egress" },
        );
        jstr(b, "transport", if udp { "udp" } else { "tcp" });
        jstr(b, "type", "ipv4");
        jend(b);
        jobj(b, "process");
        jstr(b, "entity_id", &p.entity_id);
        jstr(b, "executable", &p.exe);
        jstr(b, "name", &p.name);
        jnum(b, "pid", p.pid as i64);
        jend(b);
        jobj(b, "source");
        jstr(b, "address", src.0);
        jstr(b, "ip", src.0);
        jnum(b, "port", src.1 as i64);
        jend(b);
        self.tail(user);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(cfg: &Config, n: usize) -> Vec<(String, bool)> {
        let mut g = Generator::new(cfg);
        (0..n)
            .map(|_| {
                let (l, r) = g.next_event();
                (l.to_string(), r)
            })
            .collect()
    }

    fn cfg(rate: f64) -> Config {
        Config {
            relevant_rate: rate,
            ..Config::default()
        }
    }

    #[test]
    fn every_line_is_a_json_object_with_defend_shape() {
        for (line, _) in generate(&cfg(0.05), 5_000) {
            assert!(line.ends_with('\n'));
            assert_eq!(line.matches('\n').count(), 1, "one line per event");
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let o = v.as_object().expect("JSON object");
            assert_eq!(v["event"]["module"], "endpoint");
            assert_eq!(v["event"]["kind"], "event");
            assert_eq!(v["agent"]["type"], "endpoint");
            assert_eq!(v["host"]["os"]["type"], "linux");
            assert!(
                o.contains_key("@timestamp")
                    && o.contains_key("message")
                    && o.contains_key("user")
                    && o.contains_key("group")
            );
            assert_eq!(v["event"]["dataset"], v["data_stream"]["dataset"]);
            assert_eq!(v["elastic"]["agent"]["id"], v["agent"]["id"]);
            let cat = v["event"]["category"][0].as_str().unwrap();
            match cat {
                "process" => {
                    let p = &v["process"];
                    let args = p["args"].as_array().unwrap();
                    assert_eq!(p["args_count"].as_u64().unwrap() as usize, args.len());
                    let joined: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
                    assert_eq!(p["command_line"].as_str().unwrap(), joined.join(" "));
                    assert_eq!(p["hash"]["sha256"].as_str().unwrap().len(), 64);
                    assert!(
                        p["pid"].is_u64()
                            && p["entity_id"].is_string()
                            && p["working_directory"].is_string()
                    );
                    assert!(p["parent"]["pid"].is_u64() && p["parent"]["executable"].is_string());
                    let action = v["event"]["action"].as_str().unwrap();
                    assert!(matches!(action, "exec" | "fork" | "end"), "{action}");
                    assert_eq!(
                        v["event"]["type"][0],
                        if action == "end" { "end" } else { "start" }
                    );
                }
                "file" => {
                    let f = &v["file"];
                    let path = f["path"].as_str().unwrap();
                    assert_eq!(
                        format!(
                            "{}/{}",
                            f["directory"].as_str().unwrap(),
                            f["name"].as_str().unwrap()
                        ),
                        path
                    );
                    assert!(f["size"].is_u64());
                    assert!(v["process"]["pid"].is_u64() && v["process"]["executable"].is_string());
                    let action = v["event"]["action"].as_str().unwrap();
                    assert!(
                        matches!(action, "creation" | "modification" | "deletion" | "rename"),
                        "{action}"
                    );
                }
                "network" => {
                    assert!(v["source"]["ip"].is_string() && v["source"]["port"].is_u64());
                    assert!(
                        v["destination"]["ip"].is_string() && v["destination"]["port"].is_u64()
                    );
                    assert!(
                        v["network"]["transport"].is_string()
                            && v["network"]["direction"].is_string()
                    );
                }
                other => panic!("unexpected category {other}"),
            }
        }
    }

    #[test]
    fn average_size_is_about_one_kilobyte() {
        let lines = generate(&Config::default(), 2_000);
        let total: usize = lines.iter().map(|(l, _)| l.len()).sum();
        let avg = total as f64 / lines.len() as f64;
        assert!((700.0..=1500.0).contains(&avg), "average event size {avg}");
    }

    #[test]
    fn relevant_fraction_follows_the_rate() {
        let lines = generate(&cfg(0.05), 20_000);
        let rel = lines.iter().filter(|(_, r)| *r).count() as f64 / lines.len() as f64;
        assert!((0.025..=0.075).contains(&rel), "relevant fraction {rel}");
    }

    #[test]
    fn benign_events_never_contain_forbidden_substrings() {
        for (line, relevant) in generate(&cfg(0.05), 20_000) {
            if !relevant {
                for f in FORBIDDEN_IN_BENIGN {
                    assert!(!line.contains(f), "benign event contains {f:?}: {line}");
                }
            }
        }
    }

    #[test]
    fn relevant_events_contain_a_relevant_marker() {
        let lines = generate(&cfg(0.2), 5_000);
        let mut kinds = [0usize; 4];
        for (line, relevant) in lines.iter().filter(|(_, r)| *r) {
            assert!(*relevant);
            assert!(
                FORBIDDEN_IN_BENIGN.iter().any(|f| line.contains(f)),
                "{line}"
            );
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["event"]["category"][0] == "file" {
                assert_eq!(v["file"]["extension"], "service");
                let path = v["file"]["path"].as_str().unwrap();
                if path.starts_with("/etc/systemd/system/")
                    || path.contains("/.config/systemd/user/")
                {
                    kinds[0] += 1;
                    assert!(matches!(
                        v["process"]["name"].as_str().unwrap(),
                        "bash" | "sh" | "python3"
                    ));
                } else {
                    kinds[2] += 1;
                    assert!(matches!(
                        v["process"]["name"].as_str().unwrap(),
                        "dpkg" | "dnf"
                    ));
                }
            } else {
                assert_eq!(v["process"]["name"], "systemctl");
                if v["process"]["parent"]["name"] == "systemd" {
                    kinds[3] += 1;
                } else {
                    kinds[1] += 1;
                    assert!(matches!(
                        v["process"]["parent"]["name"].as_str().unwrap(),
                        "bash" | "sh" | "python3"
                    ));
                }
            }
        }
        assert!(
            kinds.iter().all(|&k| k > 0),
            "all relevant kinds present: {kinds:?}"
        );
    }

    #[test]
    fn same_seed_same_output_different_seed_different_output() {
        let a = generate(&cfg(0.01), 3_000);
        let b = generate(&cfg(0.01), 3_000);
        assert_eq!(a, b);
        let c = generate(
            &Config {
                seed: 42,
                ..cfg(0.01)
            },
            3_000,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn timestamps_increase_by_a_few_milliseconds() {
        let lines = generate(&Config::default(), 1_000);
        let mut prev = None;
        for (line, _) in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = v["@timestamp"].as_str().unwrap();
            assert_eq!(ts.len(), 24, "{ts}");
            assert!(ts.ends_with('Z'));
            let ms = parse_iso8601(ts).unwrap();
            if let Some(p) = prev {
                assert!(ms > p && ms - p <= 10, "{p} -> {ms}");
            } else {
                assert_eq!(ts.len(), 24);
                assert!(ts.starts_with("2026-11-27T00:00:00."));
            }
            prev = Some(ms);
        }
    }

    #[test]
    fn iso8601_round_trip() {
        for s in [
            "2026-11-27T00:00:00.000Z",
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "2000-03-01T12:34:56.789Z",
        ] {
            let ms = parse_iso8601(s).unwrap();
            let mut out = String::new();
            push_iso8601(&mut out, ms);
            assert_eq!(out, s);
        }
        assert_eq!(parse_iso8601("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.5Z").unwrap(), 500);
        assert_eq!(parse_iso8601("1970-01-02").unwrap(), 86_400_000);
        assert!(parse_iso8601("2026-13-01T00:00:00Z").is_err());
        assert!(parse_iso8601("yesterday").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("100K").unwrap(), 100 * 1024);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert!(parse_size("G").is_err());
        assert!(parse_size("12X").is_err());
    }
}

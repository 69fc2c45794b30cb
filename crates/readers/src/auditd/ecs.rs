//! One audit event (its records) to one ECS document. The mapping is documented in
//! `docs/formats/auditd.md`; this file and that table change together.

use super::proctable::{ProcInfo, ProcessTable};
use super::record::{decode_field, decode_hex, Field, Record};
use crate::doc::{Doc, Val};
use std::sync::Arc;
use unithunt_event::neutral::write_json_str;

/// The name a syscall number has on the record's architecture (`arch=` is the kernel's
/// `AUDIT_ARCH_*` constant); ENRICHED logs say it themselves.
fn syscall_name(rec: &Record<'_>) -> Option<String> {
    if let Some(n) = rec.enriched("SYSCALL") {
        return Some(n.to_string());
    }
    let nr: u64 = rec.get("syscall")?.parse().ok()?;
    let arch = u32::from_str_radix(rec.get("arch")?, 16).ok()?;
    let name = match arch {
        0xc000_003e => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        0xc000_00b7 => syscalls::aarch64::Sysno::new(nr as usize).map(|s| s.name()),
        0x4000_0003 => syscalls::x86::Sysno::new(nr as usize).map(|s| s.name()),
        0x4000_0028 => syscalls::arm::Sysno::new(nr as usize).map(|s| s.name()),
        0xc000_00f3 => syscalls::riscv64::Sysno::new(nr as usize).map(|s| s.name()),
        _ => None,
    };
    name.map(str::to_string)
}

fn arch_name(hex: &str) -> Option<&'static str> {
    Some(match u32::from_str_radix(hex, 16).ok()? {
        0xc000_003e => "x86_64",
        0xc000_00b7 => "aarch64",
        0x4000_0003 => "i386",
        0x4000_0028 => "arm",
        0xc000_00f3 => "riscv64",
        _ => return None,
    })
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// `name` made absolute against `cwd` and cleaned of `.` and `..` (lexically, as audit names are
/// the strings the program passed).
pub fn absolute(name: &str, cwd: Option<&str>) -> String {
    let joined = if name.starts_with('/') {
        name.to_string()
    } else {
        match cwd {
            Some(c) => format!("{}/{name}", c.trim_end_matches('/')),
            None => return name.to_string(),
        }
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(p),
        }
    }
    let mut out = String::with_capacity(joined.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The arguments of an `execve`, from its EXECVE records (argc, aN, or aN_len with aN[i] chunks
/// over continuation records).
pub fn execve_args(execve: &[&Record<'_>]) -> Option<Vec<String>> {
    let fields: Vec<Field<'_>> = execve
        .iter()
        .flat_map(|r| r.fields.iter().copied())
        .collect();
    let argc: usize = fields
        .iter()
        .find(|f| f.key == "argc")?
        .value
        .parse()
        .ok()?;
    let mut args = Vec::with_capacity(argc.min(4096));
    for i in 0..argc.min(1 << 16) {
        let key = format!("a{i}");
        if let Some(f) = fields.iter().find(|f| f.key == key) {
            args.push(decode_field(*f));
            continue;
        }
        let prefix = format!("a{i}[");
        let mut chunks: Vec<(usize, Field<'_>)> = fields
            .iter()
            .filter_map(|f| {
                let n = f
                    .key
                    .strip_prefix(&prefix)?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                Some((n, *f))
            })
            .collect();
        if chunks.is_empty() {
            // The argument is missing (a cut-off event): stop rather than shift the others.
            break;
        }
        chunks.sort_by_key(|c| c.0);
        let quoted = chunks.iter().all(|c| c.1.quoted);
        let raw: String = chunks.iter().map(|c| c.1.value).collect();
        args.push(if quoted {
            raw
        } else {
            match decode_hex(&raw) {
                Some(b) => String::from_utf8_lossy(&b).into_owned(),
                None => raw,
            }
        });
    }
    Some(args)
}

/// PROCTITLE: the command line as hex, arguments separated by NUL (or a quoted plain string).
pub fn proctitle_args(rec: &Record<'_>) -> Option<Vec<String>> {
    let f = rec.field("proctitle")?;
    if f.quoted {
        return Some(vec![f.value.to_string()]);
    }
    let bytes = decode_hex(f.value)?;
    Some(
        bytes
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Elastic's `process.command_line`: the arguments joined by spaces.
fn command_line(args: &[String]) -> String {
    args.join(" ")
}

fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Paths of one process's fields: static, so no path is formatted per event.
struct ProcPaths {
    pid: &'static str,
    name: &'static str,
    executable: &'static str,
    args: &'static str,
    args_count: &'static str,
    command_line: &'static str,
    entity_id: &'static str,
}

const PROCESS: ProcPaths = ProcPaths {
    pid: "process.pid",
    name: "process.name",
    executable: "process.executable",
    args: "process.args",
    args_count: "process.args_count",
    command_line: "process.command_line",
    entity_id: "process.entity_id",
};

const PARENT: ProcPaths = ProcPaths {
    pid: "process.parent.pid",
    name: "process.parent.name",
    executable: "process.parent.executable",
    args: "process.parent.args",
    args_count: "process.parent.args_count",
    command_line: "process.parent.command_line",
    entity_id: "process.parent.entity_id",
};

fn put_proc(doc: &mut Doc, at: &ProcPaths, p: &ProcInfo) {
    doc.set(at.pid, p.pid);
    doc.set(at.name, &*p.name);
    doc.set(at.executable, &*p.executable);
    doc.set(at.args, &*p.args);
    doc.set(at.args_count, p.args.len());
    if doc.wants(at.command_line) {
        doc.set(at.command_line, command_line(&p.args));
    }
    doc.set(at.entity_id, &*p.entity_id);
}

/// User ids (and names, where ENRICHED translated them) of the acting process.
fn put_users(doc: &mut Doc, rec: &Record<'_>) {
    for (key, upper, id_path, name_path) in [
        ("uid", "UID", "user.id", "user.name"),
        ("euid", "EUID", "user.effective.id", "user.effective.name"),
        ("auid", "AUID", "user.audit.id", "user.audit.name"),
        ("gid", "GID", "group.id", "group.name"),
        (
            "egid",
            "EGID",
            "user.effective.group.id",
            "user.effective.group.name",
        ),
    ] {
        // A projected document (a scan's screen) often reads no user: skip the lookups.
        if !doc.wants(id_path) && !doc.wants(name_path) {
            continue;
        }
        let Some(id) = rec.get(key) else { continue };
        doc.set(id_path, id);
        if let Some(name) = rec.enriched(upper) {
            if name != "unset" {
                doc.set(name_path, name);
            }
        }
    }
}

/// How a file syscall touched its path.
struct FileChange {
    types: &'static [&'static str],
    action: &'static str,
    path: String,
    original: Option<String>,
    target: Option<String>,
    item: usize,
}

/// O_ flags of the open family (x86_64, aarch64, arm, riscv share these values).
const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;

fn file_change(
    syscall: &str,
    sys: &Record<'_>,
    paths: &[&Record<'_>],
    cwd: Option<&str>,
) -> Option<FileChange> {
    fn nametype<'r>(r: &Record<'r>) -> &'r str {
        r.get("nametype").unwrap_or("")
    }
    // `(null)`: the kernel had no name (an fd-based call such as fchmod).
    let name = |r: &Record<'_>| {
        r.text("name")
            .filter(|n| n != "(null)")
            .map(|n| absolute(&n, cwd))
    };
    let find = |t: &str| paths.iter().position(|r| nametype(r) == t);
    let create = find("CREATE");
    let delete = find("DELETE");
    let flags = |arg: &str| {
        sys.get(arg)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(0)
    };
    let change = |types, action, item: usize| {
        Some(FileChange {
            types,
            action,
            path: name(paths[item])?,
            original: None,
            target: None,
            item,
        })
    };
    match syscall {
        "rename" | "renameat" | "renameat2" => {
            let c = create.or_else(|| paths.iter().rposition(|r| nametype(r) == "NORMAL"))?;
            let mut fc = change(&["creation", "change"], "rename", c)?;
            // The old name is the DELETE item (when the new name replaced a file there are two).
            fc.original = delete.filter(|&d| d != c).and_then(|d| name(paths[d]));
            Some(fc)
        }
        "link" | "linkat" | "symlink" | "symlinkat" => {
            let c = create?;
            let mut fc = change(
                &["creation"],
                if syscall.starts_with("sym") {
                    "symlink"
                } else {
                    "link"
                },
                c,
            )?;
            // The link's target: the other non-parent item.
            fc.target = paths
                .iter()
                .enumerate()
                .find(|(i, r)| *i != c && nametype(r) != "PARENT")
                .and_then(|(_, r)| r.text("name"));
            Some(fc)
        }
        "unlink" | "unlinkat" | "rmdir" => change(&["deletion"], "deletion", delete?),
        "mkdir" | "mkdirat" | "mknod" | "mknodat" => change(&["creation"], "creation", create?),
        "open" | "openat" | "openat2" | "creat" => {
            if let Some(c) = create {
                return change(&["creation"], "creation", c);
            }
            let item = paths.iter().position(|r| nametype(r) == "NORMAL")?;
            let f = match syscall {
                "creat" => O_WRONLY | O_CREAT | O_TRUNC,
                "open" => flags("a1"),
                _ => flags("a2"),
            };
            if f & O_TRUNC != 0 && f & (O_WRONLY | O_RDWR) != 0 {
                change(&["change"], "overwrite", item)
            } else if f & (O_WRONLY | O_RDWR) != 0 {
                change(&["change"], "modification", item)
            } else {
                change(&["access"], "open", item)
            }
        }
        "truncate" | "ftruncate" => change(&["change"], "overwrite", find("NORMAL")?),
        "chmod" | "fchmod" | "fchmodat" | "fchmodat2" | "chown" | "fchown" | "fchownat"
        | "lchown" | "setxattr" | "lsetxattr" | "fsetxattr" | "removexattr" | "utimensat" => {
            change(&["change"], "attributes_modified", find("NORMAL")?)
        }
        _ => None,
    }
}

/// SOCKADDR `saddr` (hex `struct sockaddr`): family, address and port of IPv4/IPv6.
fn sockaddr(hex: &str) -> Option<(String, u16)> {
    let b = decode_hex(hex)?;
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        2 => {
            let a = b.get(4..8)?;
            Some((format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]), port))
        }
        10 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some((std::net::Ipv6Addr::from(a).to_string(), port))
        }
        _ => None,
    }
}

/// One record as a JSON object: every field (decoded where the kernel hex-encodes), the ENRICHED
/// translations, and for SYSCALL records the `ARCH`/`SYSCALL` names even in RAW logs, so rules see
/// the same record either way. A key met twice keeps its first value.
fn raw_record(r: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":");
    write_json_str(out, r.rtype);
    let mut keys: Vec<&str> = Vec::with_capacity(r.fields.len() + r.enriched.len() + 3);
    keys.push("type");
    fn member<'k>(out: &mut Vec<u8>, keys: &mut Vec<&'k str>, k: &'k str, v: &str) {
        if keys
            .iter()
            .any(|x| x.len() == k.len() && x.bytes().zip(k.bytes()).all(|(a, b)| a == b))
        {
            return;
        }
        out.push(b',');
        write_json_str(out, k);
        out.push(b':');
        write_json_str(out, v);
        keys.push(k);
    }
    for f in &r.fields {
        let v = match (r.rtype, f.key) {
            ("EXECVE", k) if k.starts_with('a') && k != "argc" => decode_field(*f),
            // The fields the kernel and auditd write with `audit_log_untrustedstring` (hex when
            // unsafe to print).
            (
                _,
                "name" | "cwd" | "comm" | "exe" | "key" | "cmd" | "data" | "acct" | "path" | "new"
                | "old",
            ) => decode_field(*f),
            ("PROCTITLE", "proctitle") => proctitle_args(r)
                .map(|a| a.join(" "))
                .unwrap_or_else(|| f.value.to_string()),
            _ => {
                member(out, &mut keys, f.key, f.value);
                continue;
            }
        };
        member(out, &mut keys, f.key, &v);
    }
    for f in &r.enriched {
        member(out, &mut keys, f.key, f.value);
    }
    if r.rtype == "SYSCALL" {
        if let Some(a) = r.get("arch").and_then(arch_name) {
            member(out, &mut keys, "ARCH", a);
        }
        if let Some(n) = syscall_name(r) {
            member(out, &mut keys, "SYSCALL", &n);
        }
    }
    out.push(b'}');
}

/// What the process table says of one event's processes, taken in stream order.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The acting process (after its exec, for an exec).
    pub me: Option<ProcInfo>,
    /// Its known ancestors, nearest first.
    pub ancestry: Vec<ProcInfo>,
}

/// The sequential part of mapping an event: the table learns from execs and forks, and lends the
/// acting process and its ancestors. The rest ([`format`]) needs nothing but its result, so it
/// can run anywhere, later.
pub fn learn(records: &[Record<'_>], table: &mut ProcessTable) -> Context {
    let Some(first) = records.first() else {
        return Context::default();
    };
    let Some(sys) = records.iter().find(|r| r.rtype == "SYSCALL") else {
        return Context::default();
    };
    let node = first.node;
    let syscall = syscall_name(sys).unwrap_or_else(|| sys.get("syscall").unwrap_or("").into());
    let success = sys.get("success") != Some("no");
    let pid = sys.num("pid").unwrap_or(0);
    let ppid = sys.num("ppid").unwrap_or(0);
    let entity =
        |pid: i64| -> Arc<str> { format!("{}:{pid}:{}", node.unwrap_or(""), first.serial).into() };
    let is_exec = matches!(syscall.as_str(), "execve" | "execveat") && success;
    let is_fork = matches!(syscall.as_str(), "clone" | "clone3" | "fork" | "vfork") && success;
    // After a successful exec the acting process is the new image, which the table learns
    // before anything looks it up.
    if is_exec {
        let exe = sys.text("exe").unwrap_or_default();
        let name = if exe.is_empty() || exe == "(null)" {
            sys.text("comm").unwrap_or_default()
        } else {
            basename(&exe).to_string()
        };
        let execve: Vec<&Record<'_>> = records.iter().filter(|r| r.rtype == "EXECVE").collect();
        let args = execve_args(&execve).or_else(|| {
            records
                .iter()
                .find(|r| r.rtype == "PROCTITLE")
                .and_then(proctitle_args)
        });
        table.record(ProcInfo {
            pid,
            ppid,
            name: name.as_str().into(),
            executable: exe.as_str().into(),
            args: args.unwrap_or_default().into(),
            entity_id: entity(pid),
        });
    }
    // A process seen for the first time that has not exec'd runs its parent's image (its fork
    // was not audited): the table learns that too. An entry whose ppid differs from the event's
    // is kept (the process was reparented, to init or a subreaper, when its parent exited).
    if table.get(pid).is_none() && table.get(ppid).is_some() {
        table.fork(ppid, pid, entity(pid));
    }
    let me = table.get(pid).cloned();
    let ancestry = table.ancestry(ppid, first.time_ms);
    if is_fork {
        if let Some(child) = sys.num("exit").filter(|&c| c > 0) {
            table.fork(pid, child, entity(child));
        }
    }
    Context { me, ancestry }
}

/// The ECS document of one audit event: [`learn`] then [`format`].
pub fn to_ecs(records: &[Record<'_>], table: &mut ProcessTable, raw_records: bool) -> Doc {
    let ctx = learn(records, table);
    format(records, &ctx, raw_records)
}

/// The ECS document of one audit event, given what the table said of it.
/// `raw_records`: also keep the records under `auditd.records` (a quarter of the conversion's
/// time; left out when no rule reads them).
pub fn format(records: &[Record<'_>], ctx: &Context, raw_records: bool) -> Doc {
    format_into(Doc::new(), records, ctx, raw_records)
}

/// [`format`] into `doc`, which may keep only some paths ([`Doc::reading`]): values of the paths
/// it drops are not made.
pub fn format_into(mut doc: Doc, records: &[Record<'_>], ctx: &Context, raw_records: bool) -> Doc {
    let first = &records[0];
    put_event_identity(&mut doc, first);
    let sys = of_type(records, "SYSCALL").next();
    let cwd = of_type(records, "CWD").next().and_then(|r| r.text("cwd"));

    // The raw records, decoded where the kernel hex-encodes, under `auditd.records`.
    if raw_records && doc.wants("auditd.records") {
        doc.set("auditd.records", raw_records_json(records));
    }

    let Some(sys) = sys else {
        // A user-space message, or records cut off from their SYSCALL (a log rotated mid-event).
        put_message_event(&mut doc, first);
        return doc;
    };

    let syscall = syscall_name(sys).unwrap_or_else(|| sys.get("syscall").unwrap_or("").into());
    let success = sys.get("success") != Some("no");
    put_syscall(&mut doc, sys, &syscall, success);
    put_users(&mut doc, sys);
    let pid = sys.num("pid").unwrap_or(0);
    let ppid = sys.num("ppid").unwrap_or(0);

    let is_exec = matches!(syscall.as_str(), "execve" | "execveat") && success;
    let is_fork = matches!(syscall.as_str(), "clone" | "clone3" | "fork" | "vfork") && success;
    // The acting process as the table knew it (after its exec, for an exec).
    let me = ctx.me.as_ref();
    match me {
        Some(p) => put_proc(&mut doc, &PROCESS, p),
        None => put_process_from_records(&mut doc, records, sys, pid),
    }
    if let Some(c) = &cwd {
        doc.set("process.working_directory", c);
    }
    doc.set("process.parent.pid", ppid);
    put_ancestry(&mut doc, &ctx.ancestry);

    if is_exec {
        doc.set("event.category", ["process"]);
        doc.set("event.type", ["start"]);
        doc.set("event.action", "exec");
        return doc;
    }
    if is_fork {
        if let Some(child) = sys.num("exit").filter(|&c| c > 0) {
            put_fork(&mut doc, first, child, pid, me);
        }
        return doc;
    }
    let mut paths: Vec<&Record<'_>> = of_type(records, "PATH").collect();
    paths.sort_by_key(|r| r.num("item").unwrap_or(i64::MAX));
    if let Some(fc) = file_change(&syscall, sys, &paths, cwd.as_deref()) {
        let item = paths[fc.item];
        put_file_change(&mut doc, fc, item);
        return doc;
    }
    if let Some((ip, port)) = of_type(records, "SOCKADDR")
        .next()
        .and_then(|r| r.get("saddr"))
        .and_then(sockaddr)
    {
        put_connection(&mut doc, &syscall, ip, port);
        return doc;
    }
    doc.set("event.action", &syscall);
    doc
}

/// The records of type `t`, in the event's order.
#[inline]
fn of_type<'r, 'a>(
    records: &'r [Record<'a>],
    t: &'static str,
) -> impl Iterator<Item = &'r Record<'a>> {
    records.iter().filter(move |r| r.rtype == t)
}

/// What every event has, from its first record: when, which event, on which host.
#[inline]
fn put_event_identity(doc: &mut Doc, first: &Record<'_>) {
    let node = first.node;
    if doc.wants("@timestamp") {
        doc.set("@timestamp", iso8601(first.time_ms));
    }
    doc.set("event.kind", "event");
    doc.set("event.module", "auditd");
    // Only Linux writes audit logs; Elastic's rules start with this test.
    doc.set("host.os.type", "linux");
    if doc.wants("event.id") {
        let id = match node {
            Some(n) => format!("{n}:{}:{}", first.stamp, first.serial),
            None => format!("{}:{}", first.stamp, first.serial),
        };
        doc.set("event.id", id);
    }
    doc.set("event.sequence", first.serial);
    if let Some(n) = node {
        doc.set("host.name", n);
    }
}

/// The event's records as one JSON array, each an object of its fields.
fn raw_records_json(records: &[Record<'_>]) -> Val {
    let mut raw = Vec::with_capacity(256 * records.len());
    raw.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            raw.push(b',');
        }
        raw_record(r, &mut raw);
    }
    raw.push(b']');
    Val::Raw(String::from_utf8(raw).expect("JSON of strings is UTF-8"))
}

/// An event without a SYSCALL record: its action, outcome and actor, as its first record says.
fn put_message_event(doc: &mut Doc, first: &Record<'_>) {
    let action = first.rtype.to_ascii_lowercase();
    doc.set("event.action", action);
    if let Some(res) = first.get("res") {
        let ok = matches!(res, "success" | "1" | "yes");
        doc.set("event.outcome", if ok { "success" } else { "failure" });
    }
    put_users(doc, first);
    if let Some(pid) = first.num("pid") {
        doc.set("process.pid", pid);
    }
    if let Some(exe) = first.text("exe") {
        doc.set("process.name", basename(&exe));
        doc.set("process.executable", exe);
    }
}

/// The call itself: its name, architecture, outcome and the key of the rule that logged it.
#[inline]
fn put_syscall(doc: &mut Doc, sys: &Record<'_>, syscall: &str, success: bool) {
    doc.set("auditd.syscall", syscall);
    if doc.wants("host.architecture") {
        if let Some(a) = sys.get("arch").and_then(arch_name) {
            doc.set("host.architecture", a);
        }
    }
    doc.set("event.outcome", if success { "success" } else { "failure" });
    if doc.wants("tags") {
        if let Some(key) = sys.text("key").filter(|k| k != "(null)") {
            doc.set("tags", vec![key]);
        }
    }
}

/// The acting process when the table did not know it: as its SYSCALL and PROCTITLE records say.
fn put_process_from_records(doc: &mut Doc, records: &[Record<'_>], sys: &Record<'_>, pid: i64) {
    let exe = sys.text("exe").unwrap_or_default();
    let name = if exe.is_empty() || exe == "(null)" {
        sys.text("comm").unwrap_or_default()
    } else {
        basename(&exe).to_string()
    };
    doc.set("process.pid", pid);
    doc.set("process.name", name);
    doc.set("process.executable", exe);
    let wanted = ["process.args", "process.args_count", "process.command_line"];
    // Decoded only when the table did not know the process (and its arguments are wanted).
    let args = if wanted.iter().any(|p| doc.wants(p)) {
        of_type(records, "PROCTITLE")
            .next()
            .and_then(proctitle_args)
    } else {
        None
    };
    if let Some(a) = &args {
        doc.set("process.args", a.clone());
        doc.set("process.args_count", a.len());
        if doc.wants("process.command_line") {
            doc.set("process.command_line", command_line(a));
        }
    }
}

/// The acting process's known ancestors, nearest first: the nearest as its parent.
#[inline]
fn put_ancestry(doc: &mut Doc, ancestry: &[ProcInfo]) {
    if let Some(parent) = ancestry.first() {
        put_proc(doc, &PARENT, parent);
    }
    if !ancestry.is_empty() {
        doc.set(
            "process.Ext.ancestry",
            ancestry.iter().map(|a| &*a.entity_id).collect::<Vec<_>>(),
        );
        doc.set(
            "process.Ext.ancestry_names",
            ancestry.iter().map(|a| &*a.name).collect::<Vec<_>>(),
        );
    }
}

/// A fork that made process `child`: the caller (`pid`, known to the table as `caller`) is its
/// parent.
fn put_fork(doc: &mut Doc, first: &Record<'_>, child: i64, pid: i64, caller: Option<&ProcInfo>) {
    doc.set("event.category", ["process"]);
    doc.set("event.type", ["start"]);
    doc.set("event.action", "fork");
    // The new process is the child; the caller is its parent.
    doc.set("process.pid", child);
    doc.set("process.parent.pid", pid);
    if let Some(p) = caller {
        put_proc(doc, &PARENT, p);
    }
    let entity_id = format!("{}:{child}:{}", first.node.unwrap_or(""), first.serial);
    doc.set("process.entity_id", entity_id);
}

/// A file the call changed: its path, split, and what the PATH record `item` says of it.
fn put_file_change(doc: &mut Doc, fc: FileChange, item: &Record<'_>) {
    doc.set("event.category", ["file"]);
    doc.set("event.type", fc.types);
    doc.set("event.action", fc.action);
    let file_name = basename(&fc.path).to_string();
    if let Some((stem, ext)) = file_name.rsplit_once('.') {
        if !stem.is_empty() && !ext.is_empty() {
            doc.set("file.extension", ext);
        }
    }
    let dir = fc.path[..fc.path.len() - file_name.len()].trim_end_matches('/');
    doc.set("file.directory", if dir.is_empty() { "/" } else { dir });
    doc.set("file.name", file_name);
    let wanted = ["file.inode", "file.mode", "file.uid", "file.owner"];
    let item_fields = wanted.iter().any(|p| doc.wants(p));
    if let Some(inode) = item.get("inode").filter(|_| item_fields) {
        doc.set("file.inode", inode);
    }
    if let Some(mode) = item.get("mode").filter(|_| item_fields) {
        doc.set("file.mode", mode);
    }
    if let Some(uid) = item.get("ouid").filter(|_| item_fields) {
        doc.set("file.uid", uid);
    }
    if let Some(o) = item.enriched("OUID").filter(|_| item_fields) {
        doc.set("file.owner", o);
    }
    doc.set("file.path", fc.path);
    if let Some(o) = fc.original {
        doc.set("file.Ext.original.path", o);
    }
    if let Some(t) = fc.target {
        doc.set("file.Ext.link_target", t);
    }
}

/// A connection the call made or accepted, to or from `ip`:`port`.
fn put_connection(doc: &mut Doc, syscall: &str, ip: String, port: u16) {
    let (side, action) = match syscall {
        "bind" | "accept" | "accept4" | "listen" => ("source", "connection_accepted"),
        _ => ("destination", "connection_attempted"),
    };
    doc.set("event.category", ["network"]);
    doc.set("event.type", ["connection", "start"]);
    doc.set("event.action", action);
    doc.set(format!("{side}.ip"), ip);
    doc.set(format!("{side}.port"), port);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auditd::record::parse_record;

    #[test]
    fn paths_are_made_absolute_lexically() {
        assert_eq!(absolute("a/../b/./c", Some("/tmp/")), "/tmp/b/c");
        assert_eq!(absolute("/etc/x", Some("/tmp")), "/etc/x");
        assert_eq!(absolute("../../..", Some("/a")), "/");
        assert_eq!(absolute("rel", None), "rel");
    }

    #[test]
    fn long_arguments_split_over_records_are_joined() {
        let a = parse_record(r#"type=EXECVE msg=audit(1.0:1): argc=3 a0="sh" a1_len=8 a1[0]=6162"#)
            .unwrap();
        let b = parse_record(r#"type=EXECVE msg=audit(1.0:1): a1[1]=63646566 a1[2]=6768 a2="x""#)
            .unwrap();
        assert_eq!(
            execve_args(&[&a, &b]).unwrap(),
            vec!["sh".to_string(), "abcdefgh".into(), "x".into()]
        );
    }

    #[test]
    fn sockaddr_families() {
        assert_eq!(
            sockaddr("02000050C0A80001").unwrap(),
            ("192.168.0.1".to_string(), 80)
        );
        assert!(sockaddr("0100").is_none());
    }
}

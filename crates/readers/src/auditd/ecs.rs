//! One audit event (its records) to one ECS document. The mapping is documented in
//! `docs/formats/auditd.md`; this file and that table change together.

use super::proctable::{ProcInfo, ProcessTable};
use super::record::{decode_field, decode_hex, Field, Record};
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;

/// Sets a dotted path in a nested object, creating the objects on the way.
fn set(doc: &mut Map<String, Json>, path: &str, value: Json) {
    let mut obj = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            obj.insert(part.to_string(), value);
            return;
        }
        let slot = obj
            .entry(part.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if !slot.is_object() {
            *slot = Json::Object(Map::new());
        }
        obj = slot.as_object_mut().expect("just made an object");
    }
}

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

fn put_proc(doc: &mut Map<String, Json>, prefix: &str, p: &ProcInfo) {
    set(doc, &format!("{prefix}.pid"), json!(p.pid));
    set(doc, &format!("{prefix}.name"), json!(&*p.name));
    set(doc, &format!("{prefix}.executable"), json!(&*p.executable));
    set(doc, &format!("{prefix}.args"), json!(&*p.args));
    set(doc, &format!("{prefix}.args_count"), json!(p.args.len()));
    set(
        doc,
        &format!("{prefix}.command_line"),
        json!(command_line(&p.args)),
    );
    set(doc, &format!("{prefix}.entity_id"), json!(&*p.entity_id));
}

/// User ids (and names, where ENRICHED translated them) of the acting process.
fn put_users(doc: &mut Map<String, Json>, rec: &Record<'_>) {
    for (key, path) in [
        ("uid", "user"),
        ("euid", "user.effective"),
        ("auid", "user.audit"),
        ("gid", "group"),
        ("egid", "user.effective.group"),
    ] {
        let Some(id) = rec.get(key) else { continue };
        set(doc, &format!("{path}.id"), json!(id));
        if let Some(name) = rec.enriched(&key.to_ascii_uppercase()) {
            if name != "unset" {
                set(doc, &format!("{path}.name"), json!(name));
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

/// The ECS document of one audit event. `table` learns from execs and forks and lends parents.
pub fn to_ecs(records: &[Record<'_>], table: &mut ProcessTable) -> Json {
    let mut doc = Map::new();
    let first = &records[0];
    let node = first.node;
    let id = match node {
        Some(n) => format!("{n}:{}:{}", first.stamp, first.serial),
        None => format!("{}:{}", first.stamp, first.serial),
    };
    set(&mut doc, "@timestamp", json!(iso8601(first.time_ms)));
    set(&mut doc, "event.kind", json!("event"));
    set(&mut doc, "event.module", json!("auditd"));
    set(&mut doc, "event.id", json!(id));
    set(&mut doc, "event.sequence", json!(first.serial));
    if let Some(n) = node {
        set(&mut doc, "host.name", json!(n));
    }
    fn of_type<'r, 'a>(
        records: &'r [Record<'a>],
        t: &'static str,
    ) -> impl Iterator<Item = &'r Record<'a>> {
        records.iter().filter(move |r| r.rtype == t)
    }
    let sys = of_type(records, "SYSCALL").next();
    let cwd = of_type(records, "CWD").next().and_then(|r| r.text("cwd"));
    let mut paths: Vec<&Record<'_>> = of_type(records, "PATH").collect();
    paths.sort_by_key(|r| r.num("item").unwrap_or(i64::MAX));
    let execve: Vec<&Record<'_>> = of_type(records, "EXECVE").collect();
    let proctitle = of_type(records, "PROCTITLE")
        .next()
        .and_then(proctitle_args);

    // The raw records, decoded where the kernel hex-encodes, under `auditd.records`.
    let raw: Vec<Json> = records
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("type".into(), json!(r.rtype));
            for f in &r.fields {
                let v = match (r.rtype, f.key) {
                    ("EXECVE", k) if k.starts_with('a') && k != "argc" => decode_field(*f),
                    // The fields the kernel and auditd write with `audit_log_untrustedstring`
                    // (hex when unsafe to print).
                    (
                        _,
                        "name" | "cwd" | "comm" | "exe" | "key" | "cmd" | "data" | "acct" | "path"
                        | "new" | "old",
                    ) => decode_field(*f),
                    ("PROCTITLE", "proctitle") => proctitle_args(r)
                        .map(|a| a.join(" "))
                        .unwrap_or_else(|| f.value.to_string()),
                    _ => f.value.to_string(),
                };
                m.entry(f.key.to_string()).or_insert(json!(v));
            }
            for f in &r.enriched {
                m.entry(f.key.to_string()).or_insert(json!(f.value));
            }
            // What ENRICHED logs add to SYSCALL records, added for RAW logs too: rules see the
            // same record either way.
            if r.rtype == "SYSCALL" {
                if let Some(a) = r.get("arch").and_then(arch_name) {
                    m.entry("ARCH").or_insert(json!(a));
                }
                if let Some(n) = syscall_name(r) {
                    m.entry("SYSCALL").or_insert(json!(n));
                }
            }
            Json::Object(m)
        })
        .collect();
    set(&mut doc, "auditd.records", Json::Array(raw));

    let Some(sys) = sys else {
        // A user-space message, or records cut off from their SYSCALL (a log rotated mid-event).
        let action = first.rtype.to_ascii_lowercase();
        set(&mut doc, "event.action", json!(action));
        if let Some(res) = first.get("res") {
            let ok = matches!(res, "success" | "1" | "yes");
            set(
                &mut doc,
                "event.outcome",
                json!(if ok { "success" } else { "failure" }),
            );
        }
        put_users(&mut doc, first);
        if let Some(pid) = first.num("pid") {
            set(&mut doc, "process.pid", json!(pid));
        }
        if let Some(exe) = first.text("exe") {
            set(&mut doc, "process.name", json!(basename(&exe)));
            set(&mut doc, "process.executable", json!(exe));
        }
        return Json::Object(doc);
    };

    let syscall = syscall_name(sys).unwrap_or_else(|| sys.get("syscall").unwrap_or("").into());
    let success = sys.get("success") != Some("no");
    set(&mut doc, "auditd.syscall", json!(syscall));
    if let Some(a) = sys.get("arch").and_then(arch_name) {
        set(&mut doc, "host.architecture", json!(a));
    }
    set(
        &mut doc,
        "event.outcome",
        json!(if success { "success" } else { "failure" }),
    );
    if let Some(key) = sys.text("key").filter(|k| k != "(null)") {
        set(&mut doc, "tags", json!([key]));
    }
    put_users(&mut doc, sys);
    let pid = sys.num("pid").unwrap_or(0);
    let ppid = sys.num("ppid").unwrap_or(0);
    let exe = sys.text("exe").unwrap_or_default();
    let comm = sys.text("comm").unwrap_or_default();
    let name = if exe.is_empty() || exe == "(null)" {
        comm.clone()
    } else {
        basename(&exe).to_string()
    };
    let entity =
        |pid: i64| -> Arc<str> { format!("{}:{pid}:{}", node.unwrap_or(""), first.serial).into() };

    let is_exec = matches!(syscall.as_str(), "execve" | "execveat") && success;
    let is_fork = matches!(syscall.as_str(), "clone" | "clone3" | "fork" | "vfork") && success;
    // The acting process: after a successful exec it is the new image, which the table learns
    // before anything looks it up.
    let args = if is_exec {
        execve_args(&execve).or(proctitle.clone())
    } else {
        None
    };
    if is_exec {
        table.record(ProcInfo {
            pid,
            ppid,
            name: name.as_str().into(),
            executable: exe.as_str().into(),
            args: args.clone().unwrap_or_default().into(),
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
    match &me {
        Some(p) => put_proc(&mut doc, "process", p),
        None => {
            set(&mut doc, "process.pid", json!(pid));
            set(&mut doc, "process.name", json!(name));
            set(&mut doc, "process.executable", json!(exe));
            if let Some(a) = &proctitle {
                set(&mut doc, "process.args", json!(a));
                set(&mut doc, "process.args_count", json!(a.len()));
                set(&mut doc, "process.command_line", json!(command_line(a)));
            }
        }
    }
    if let Some(c) = &cwd {
        set(&mut doc, "process.working_directory", json!(c));
    }
    set(&mut doc, "process.parent.pid", json!(ppid));
    let ancestry = table.ancestry(ppid);
    if let Some(parent) = ancestry.first() {
        put_proc(&mut doc, "process.parent", parent);
    }
    if !ancestry.is_empty() {
        set(
            &mut doc,
            "process.Ext.ancestry",
            json!(ancestry.iter().map(|a| &*a.entity_id).collect::<Vec<_>>()),
        );
        set(
            &mut doc,
            "process.Ext.ancestry_names",
            json!(ancestry.iter().map(|a| &*a.name).collect::<Vec<_>>()),
        );
    }

    if is_exec {
        set(&mut doc, "event.category", json!(["process"]));
        set(&mut doc, "event.type", json!(["start"]));
        set(&mut doc, "event.action", json!("exec"));
        return Json::Object(doc);
    }
    if is_fork {
        if let Some(child) = sys.num("exit").filter(|&c| c > 0) {
            table.fork(pid, child, entity(child));
            set(&mut doc, "event.category", json!(["process"]));
            set(&mut doc, "event.type", json!(["start"]));
            set(&mut doc, "event.action", json!("fork"));
            // The new process is the child; the caller is its parent.
            let parent = me.clone();
            set(&mut doc, "process.pid", json!(child));
            set(&mut doc, "process.parent.pid", json!(pid));
            if let Some(p) = parent {
                put_proc(&mut doc, "process.parent", &p);
            }
            set(&mut doc, "process.entity_id", json!(&*entity(child)));
        }
        return Json::Object(doc);
    }
    if let Some(fc) = file_change(&syscall, sys, &paths, cwd.as_deref()) {
        set(&mut doc, "event.category", json!(["file"]));
        set(&mut doc, "event.type", json!(fc.types));
        set(&mut doc, "event.action", json!(fc.action));
        let file_name = basename(&fc.path).to_string();
        if let Some((stem, ext)) = file_name.rsplit_once('.') {
            if !stem.is_empty() && !ext.is_empty() {
                set(&mut doc, "file.extension", json!(ext));
            }
        }
        let dir = fc.path[..fc.path.len() - file_name.len()].trim_end_matches('/');
        set(
            &mut doc,
            "file.directory",
            json!(if dir.is_empty() { "/" } else { dir }),
        );
        set(&mut doc, "file.name", json!(file_name));
        let item = paths[fc.item];
        if let Some(inode) = item.get("inode") {
            set(&mut doc, "file.inode", json!(inode));
        }
        if let Some(mode) = item.get("mode") {
            set(&mut doc, "file.mode", json!(mode));
        }
        if let Some(uid) = item.get("ouid") {
            set(&mut doc, "file.uid", json!(uid));
        }
        if let Some(o) = item.enriched("OUID") {
            set(&mut doc, "file.owner", json!(o));
        }
        set(&mut doc, "file.path", json!(fc.path));
        if let Some(o) = fc.original {
            set(&mut doc, "file.Ext.original.path", json!(o));
        }
        if let Some(t) = fc.target {
            set(&mut doc, "file.Ext.link_target", json!(t));
        }
        return Json::Object(doc);
    }
    if let Some((ip, port)) = of_type(records, "SOCKADDR")
        .next()
        .and_then(|r| r.get("saddr"))
        .and_then(sockaddr)
    {
        let (side, action) = match syscall.as_str() {
            "bind" | "accept" | "accept4" | "listen" => ("source", "connection_accepted"),
            _ => ("destination", "connection_attempted"),
        };
        set(&mut doc, "event.category", json!(["network"]));
        set(&mut doc, "event.type", json!(["connection", "start"]));
        set(&mut doc, "event.action", json!(action));
        set(&mut doc, &format!("{side}.ip"), json!(ip));
        set(&mut doc, &format!("{side}.port"), json!(port));
        return Json::Object(doc);
    }
    set(&mut doc, "event.action", json!(syscall));
    Json::Object(doc)
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

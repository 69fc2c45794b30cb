//! `hunt --root` on a hostile image (issue 15 items 2-6): every file hunt reads resolves inside
//! the root, links to the analyst's machine are refused with a warning, only regular files are
//! read and each within a cap, a unit swapped for a link while it is read never leaks the host
//! file, and an RPM SQLite database built to blow up (a recursive view, a huge join) is refused
//! with bounded memory while the hunt goes on.
//!
//! Every run is the real binary, reaped with `wait4` for its peak RSS; a run past its deadline is
//! killed and fails the test as a hang, and every run has an address-space limit so that a
//! regression eats a few GiB, not the machine. Times are never asserted.

mod common;

use common::mkfifo;
use rusqlite::Connection;
use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::symlink;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kill guard for one run (a small tree takes well under a second even in a debug build).
const DEADLINE: Duration = Duration::from_secs(30);
/// Address space of one run: a hunt that reads a device or a recursive view until memory runs
/// out dies here instead.
const ADDRESS_SPACE: u64 = 4 << 30;

/// A fresh directory per test: `root/` is the image, `host/` stands for the analyst's machine
/// (outside the root), `tmp/` is the run's `TMPDIR`. Removed on drop.
struct Image(common::Tmp);

impl Image {
    fn new(test: &str) -> Image {
        let t = common::Tmp::new(test);
        for sub in ["root", "host", "tmp"] {
            std::fs::create_dir_all(t.join(sub)).unwrap();
        }
        Image(t)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    /// A path of the image (`/etc/x` -> `<root>/etc/x`), its directory made.
    fn at(&self, inside: &str) -> PathBuf {
        let p = self.root().join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }
    fn put(&self, inside: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.at(inside);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    /// A symbolic link in the image to `target`, as written.
    fn link(&self, inside: &str, target: impl AsRef<Path>) {
        let p = self.at(inside);
        let _ = std::fs::remove_file(&p);
        symlink(target, p).unwrap();
    }
    /// A file on "the host", outside the root.
    fn host(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join("host").join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// A character device (`/dev/zero`'s numbers) at `p`; false when this process may not make one.
fn mkzero(p: &Path) -> bool {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a plain mknod(2) call on a path we own; failure (no CAP_MKNOD) is allowed.
    unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 5)) == 0 }
}

struct Run {
    code: i32,
    out: String,
    err: String,
    /// Peak resident set, KiB.
    max_rss_kb: i64,
}

impl Run {
    fn findings(&self) -> Vec<Value> {
        self.out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    /// The finding of `unit`.
    fn get(&self, unit: &str) -> Value {
        let all = self.findings();
        all.iter()
            .find(|f| f["unit"] == unit)
            .unwrap_or_else(|| panic!("{unit} not found: {all:?}\n{}", self.err))
            .clone()
    }
    fn owner(&self, unit: &str) -> String {
        self.get(unit)["owner"].as_str().unwrap().to_string()
    }
    fn all(&self) -> String {
        format!("{}\n{}", self.out, self.err)
    }
}

/// `unithunt hunt --root <root> -o ndjson --min-severity info`, output to files, `TMPDIR` the
/// test's own; reaped with `wait4` for its peak RSS, killed past `deadline`.
fn hunt(t: &Image, deadline: Duration) -> Run {
    let (out_path, err_path) = (t.0.join("stdout"), t.0.join("stderr"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unithunt"));
    cmd.args(["hunt", "--root", t.root().to_str().unwrap()])
        .args(["-o", "ndjson", "--min-severity", "info"])
        .env("TMPDIR", t.0.join("tmp"))
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped below by wait4(2), for its rusage, not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4 failed");
        if started.elapsed() > deadline {
            // SAFETY: our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!(
                "hunt still running after {deadline:?} (a FIFO or a device read?); stderr: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::ExitStatus::from_raw(status);
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    Run {
        code: status
            .code()
            .unwrap_or_else(|| panic!("hunt killed by a signal ({status:?}): {err}")),
        out: std::fs::read_to_string(&out_path).unwrap(),
        err,
        max_rss_kb: usage.ru_maxrss,
    }
}

fn md5_hex(p: &Path) -> String {
    let o = Command::new("md5sum").arg(p).output().expect("md5sum runs");
    String::from_utf8(o.stdout).unwrap()[..32].to_string()
}

/// Every file under `dir` whose bytes contain `marker`.
fn files_holding(dir: &Path, marker: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(files_holding(&p, marker));
        } else if ft.is_file()
            && String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).contains(marker)
        {
            out.push(p);
        }
    }
    out
}

/// A planted unit no package owns: always a finding, whatever happens to the databases.
const PLANTED: &str = "/etc/systemd/system/planted.service";
const PLANTED_TEXT: &str =
    "[Service]\nExecStart=/tmp/.x/implant\n[Install]\nWantedBy=multi-user.target\n";

// ---------------------------------------------------------------------------------------------
// Item 2: dpkg's info files linked to host files.

/// A dpkg database with one package whose unit was edited (its `.md5sums` says so), and a
/// planted unit.
fn dpkg_image(t: &Image) {
    t.put(PLANTED, PLANTED_TEXT);
    let unit = t.put(
        "/usr/lib/systemd/system/pkgd.service",
        "[Service]\nExecStart=/usr/bin/pkgd --edited\n",
    );
    t.put("/usr/bin/pkgd", "#!/bin/sh\n");
    t.put(
        "/var/lib/dpkg/info/pkgd.list",
        "/usr\n/usr/lib/systemd/system/pkgd.service\n/usr/bin/pkgd\n",
    );
    t.put(
        "/var/lib/dpkg/info/pkgd.md5sums",
        "0123456789abcdef0123456789abcdef  usr/lib/systemd/system/pkgd.service\n",
    );
    t.put(
        "/var/lib/dpkg/status",
        "Package: pkgd\nStatus: install ok installed\n\n",
    );
    assert!(unit.is_file());
}

/// Issue 15 item 2: `.list` and `.md5sums` files that are links to host files (absolute, and
/// relative ones climbing out of the root) were read on the host: a host file listing the
/// planted unit made it "owned", a host `.md5sums` with the edited unit's checksum made it
/// "unmodified". Resolved inside the root, they are missing there: the verdicts are those without
/// the links, and a warning names each link.
#[test]
fn dpkg_info_files_linked_to_the_host_do_not_change_the_verdict() {
    let t = Image::new("dpkg-links");
    dpkg_image(&t);
    let clean = hunt(&t, DEADLINE);
    assert_eq!(clean.code, 0, "{}", clean.err);
    assert_eq!(clean.owner("planted.service"), "unowned");
    assert_eq!(clean.owner("pkgd.service"), "pkgd (modified)");
    assert!(!clean.err.contains("warning"), "{}", clean.err);

    // On the host: a list claiming the planted unit, and the edited unit's real checksum.
    let owns = t.host("owns.list", format!("{PLANTED}\n"));
    let sums = t.host(
        "sums.md5sums",
        format!(
            "{}  usr/lib/systemd/system/pkgd.service\n",
            md5_hex(&t.root().join("usr/lib/systemd/system/pkgd.service"))
        ),
    );
    t.link("/var/lib/dpkg/info/evil.list", &owns);
    t.link("/var/lib/dpkg/info/zz.md5sums", &sums);
    // <root>/var/lib/dpkg/info/../../../../host/owns.list on the host.
    t.link(
        "/var/lib/dpkg/info/climb.list",
        "../../../../host/owns.list",
    );
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.owner("planted.service"), "unowned", "{}", r.err);
    assert_eq!(r.owner("pkgd.service"), "pkgd (modified)", "{}", r.err);
    assert_eq!(
        r.get("planted.service")["severity"],
        clean.get("planted.service")["severity"]
    );
    for (link, target) in [
        ("evil.list", owns.to_str().unwrap()),
        ("zz.md5sums", sums.to_str().unwrap()),
        ("climb.list", "../../../../host/owns.list"),
    ] {
        let note = format!(
            "warning: package database: /var/lib/dpkg/info/{link}: a symbolic link to {target}, \
             which does not resolve inside the root"
        );
        assert!(r.err.contains(&note), "{note}\n{}", r.err);
    }
}

/// Item 2, the other files hunt reads: a unit, a drop-in and `/etc/passwd` linked to host files
/// land in the root (missing there); the host's bytes never show, and the user the host's passwd
/// names is not hunted. (Already so before the fix: they were resolved inside the root.)
#[test]
fn units_dropins_and_passwd_linked_to_the_host_are_read_in_the_root() {
    let t = Image::new("other-links");
    let marker = format!("HOST-SECRET-{}", std::process::id());
    let secret = t.host(
        "secret.service",
        format!("[Service]\nExecStart=/usr/bin/{marker}\n"),
    );
    let conf = t.host(
        "secret.conf",
        format!("[Service]\nExecStartPre=/usr/bin/{marker}\n"),
    );
    // A home outside /home: only the host's passwd could send the hunt there (a root without
    // /etc/passwd has /root and /home/* hunted, issue 19).
    let passwd = t.host("passwd", "eve:x:1001:1001::/srv/eve:/bin/bash\n");
    t.put(PLANTED, PLANTED_TEXT);
    t.link("/etc/systemd/system/hostlink.service", &secret);
    t.put(
        "/etc/systemd/system/ok.service",
        "[Service]\nExecStart=/usr/bin/true\n",
    );
    t.link("/etc/systemd/system/ok.service.d/x.conf", &conf);
    t.link("/etc/passwd", &passwd);
    t.put(
        "/srv/eve/.config/systemd/user/eve-backdoor.service",
        "[Service]\nExecStart=/tmp/eve\n",
    );
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!r.all().contains(&marker), "{}", r.all());
    assert!(
        !r.findings()
            .iter()
            .any(|f| f["unit"] == "eve-backdoor.service"),
        "{}",
        r.out
    );
    // No package database in this root: nobody can say who owns it (not scored).
    assert_eq!(r.owner("planted.service"), "unknown");
    assert_eq!(r.get("ok.service")["exec"][0], "ExecStart=/usr/bin/true");
}

// ---------------------------------------------------------------------------------------------
// Items 3 and 6: RPM SQLite databases.

const TAG_NAME: u32 = 1000;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;

/// A package header blob as RPM stores it: `name` owning `dirnames[dirindexes[i]] + basenames[i]`
/// (no digests).
fn header(name: &str, dirnames: &[&str], basenames: &[&str], dirindexes: &[u32]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut entry = |tag: u32, kind: u32, count: usize, offset: usize| {
        for v in [tag, kind, offset as u32, count as u32] {
            index.extend_from_slice(&v.to_be_bytes());
        }
    };
    let strings = |data: &mut Vec<u8>, s: &[&str]| {
        let at = data.len();
        for x in s {
            data.extend_from_slice(x.as_bytes());
            data.push(0);
        }
        at
    };
    let at = strings(&mut data, &[name]);
    entry(TAG_NAME, TYPE_STRING, 1, at);
    while data.len() % 4 != 0 {
        data.push(0);
    }
    let at = data.len();
    for i in dirindexes {
        data.extend_from_slice(&i.to_be_bytes());
    }
    entry(TAG_DIRINDEXES, TYPE_INT32, dirindexes.len(), at);
    let at = strings(&mut data, basenames);
    entry(TAG_BASENAMES, TYPE_STRING_ARRAY, basenames.len(), at);
    let at = strings(&mut data, dirnames);
    entry(TAG_DIRNAMES, TYPE_STRING_ARRAY, dirnames.len(), at);
    let mut out = Vec::new();
    out.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

/// RPM's own schema (rpm's sqlite backend).
const RPM_SCHEMA: &str =
    "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);";

fn insert(c: &Connection, blob: &[u8]) {
    c.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
        .unwrap();
}

/// The package owning the image's `rootpkg.service`.
fn rootpkg(t: &Image) -> Vec<u8> {
    t.put(
        "/usr/lib/systemd/system/rootpkg.service",
        "[Service]\nExecStart=/usr/bin/true\n",
    );
    header(
        "rootpkg",
        &["/usr/lib/systemd/system/"],
        &["rootpkg.service"],
        &[0],
    )
}

/// Issue 15 item 3: `rpmdb.sqlite-wal` linked to a host file was copied (no size cap) and
/// replayed: a host write-ahead log adding a package that owns the planted unit made it owned.
/// Resolved inside the root it is missing there: the database is read without it, a warning says
/// so, and nothing of the host file is copied into the temporary directory.
#[test]
fn an_rpm_write_ahead_log_linked_to_the_host_is_not_read() {
    let t = Image::new("rpm-wal");
    t.put(PLANTED, PLANTED_TEXT);
    let marker = format!("HOSTPKG{}", std::process::id());
    // A database in WAL mode with the image's package, checkpointed: that is the image's file.
    let scratch = t.0.join("host/scratch.sqlite");
    let c = Connection::open(&scratch).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    c.execute_batch(RPM_SCHEMA).unwrap();
    insert(&c, &rootpkg(&t));
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    let db = t.at("/var/lib/rpm/rpmdb.sqlite");
    std::fs::copy(&scratch, &db).unwrap();
    // A log on the host, valid for that file, adding a package that owns the planted unit.
    insert(
        &c,
        &header(
            &marker,
            &["/etc/systemd/system/"],
            &["planted.service"],
            &[0],
        ),
    );
    let wal = t.0.join("host/evil.sqlite-wal");
    std::fs::copy(t.0.join("host/scratch.sqlite-wal"), &wal).unwrap();
    drop(c);
    assert!(String::from_utf8_lossy(&std::fs::read(&wal).unwrap()).contains(&marker));

    let clean = hunt(&t, DEADLINE);
    assert_eq!(clean.code, 0, "{}", clean.err);
    assert_eq!(clean.owner("rootpkg.service"), "rootpkg");
    assert_eq!(clean.owner("planted.service"), "unowned");

    t.link("/var/lib/rpm/rpmdb.sqlite-wal", &wal);
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.owner("planted.service"), "unowned", "{}", r.err);
    assert_eq!(r.owner("rootpkg.service"), "rootpkg", "{}", r.err);
    assert!(!r.all().contains(&marker), "{}", r.all());
    let note = format!(
        "warning: package database: /var/lib/rpm/rpmdb.sqlite: /var/lib/rpm/rpmdb.sqlite-wal: a \
         symbolic link to {}, which does not resolve inside the root",
        wal.display()
    );
    assert!(r.err.contains(&note), "{note}\n{}", r.err);
    assert!(
        r.err
            .contains("the database is read without its write-ahead log"),
        "{}",
        r.err
    );
    assert_eq!(
        files_holding(&t.0.join("tmp"), &marker),
        Vec::<PathBuf>::new()
    );
    assert!(r.err.contains("package database: rpm;"), "{}", r.err);

    // A log that is a FIFO, or larger than the cap (sparse: nothing is written), is refused
    // without being read; the database is still read.
    std::fs::remove_file(t.at("/var/lib/rpm/rpmdb.sqlite-wal")).unwrap();
    mkfifo(&t.at("/var/lib/rpm/rpmdb.sqlite-wal"));
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err
            .contains("/var/lib/rpm/rpmdb.sqlite-wal: a FIFO, not a regular file; not read"),
        "{}",
        r.err
    );
    assert_eq!(r.owner("rootpkg.service"), "rootpkg");
    std::fs::remove_file(t.at("/var/lib/rpm/rpmdb.sqlite-wal")).unwrap();
    File::create(t.at("/var/lib/rpm/rpmdb.sqlite-wal"))
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains(
            "/var/lib/rpm/rpmdb.sqlite-wal: over the 1073741824-byte limit; not read; the \
             database is read without its write-ahead log"
        ),
        "{}",
        r.err
    );
    assert_eq!(r.owner("rootpkg.service"), "rootpkg");
    assert!(r.max_rss_kb < 512 << 10, "{} KiB", r.max_rss_kb);

    // The database itself linked to the host's copy: refused, named.
    std::fs::remove_file(t.at("/var/lib/rpm/rpmdb.sqlite-wal")).unwrap();
    std::fs::remove_file(&db).unwrap();
    t.link("/var/lib/rpm/rpmdb.sqlite", &scratch);
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    // The only database refused: ownership unknown, not scored.
    assert_eq!(r.owner("rootpkg.service"), "unknown", "{}", r.err);
    assert!(
        r.err.contains(&format!(
            "/var/lib/rpm/rpmdb.sqlite: a symbolic link to {}, which does not resolve inside the root",
            scratch.display()
        )),
        "{}",
        r.err
    );
}

/// Issue 15 item 6: `Packages` as a view yielding endless 1 MB rows (a recursive CTE of
/// `zeroblob`s) grew without bound. It is refused before a row is read: a warning names it, and
/// the hunt goes on without the database (the planted unit is still found, RPM files unowned).
#[test]
fn an_rpm_database_whose_packages_is_a_recursive_view_is_refused() {
    let t = Image::new("rpm-view");
    t.put(PLANTED, PLANTED_TEXT);
    rootpkg(&t);
    let c = Connection::open(t.at("/var/lib/rpm/rpmdb.sqlite")).unwrap();
    c.execute_batch(
        "CREATE VIEW Packages AS WITH RECURSIVE r(hnum, blob) AS \
         (SELECT 1, zeroblob(1000000) UNION ALL SELECT hnum + 1, zeroblob(1000000) FROM r) \
         SELECT hnum, blob FROM r;",
    )
    .unwrap();
    drop(c);
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains(
            "warning: package database: /var/lib/rpm/rpmdb.sqlite: Packages has a view \
             (Packages), which RPM never makes; not read; this RPM database is not used"
        ),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains("package database: none found (ownership unknown: not scored) (an RPM database refused: see the warnings)"),
        "{}",
        r.err
    );
    assert_eq!(r.owner("planted.service"), "unknown");
    assert_eq!(
        r.get("planted.service")["exec"][0],
        "ExecStart=/tmp/.x/implant"
    );
    assert_eq!(r.owner("rootpkg.service"), "unknown");
    assert!(r.max_rss_kb < 512 << 10, "{} KiB", r.max_rss_kb);

    // A database over its cap (sparse: nothing is written) is refused before it is copied.
    File::create(t.at("/var/lib/rpm/rpmdb.sqlite"))
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains(
            "warning: package database: /var/lib/rpm/rpmdb.sqlite: over the 1073741824-byte \
             limit; not read; this RPM database is not used"
        ),
        "{}",
        r.err
    );
    assert_eq!(files_holding(&t.0.join("tmp"), ""), Vec::<PathBuf>::new());
    assert_eq!(r.owner("planted.service"), "unknown");
}

/// Issue 15 item 6: a 6 MB header of a million base names each joined to a 100 kB directory
/// name is 100 GB of paths. The join is counted before it is built: the database is refused
/// with a warning naming the budget, memory stays small, and the hunt goes on.
#[test]
fn an_rpm_header_with_a_huge_join_is_refused_within_bounded_memory() {
    let t = Image::new("rpm-join");
    t.put(PLANTED, PLANTED_TEXT);
    let c = Connection::open(t.at("/var/lib/rpm/rpmdb.sqlite")).unwrap();
    c.execute_batch(RPM_SCHEMA).unwrap();
    insert(&c, &rootpkg(&t));
    let dir = format!("/{}/", "d".repeat(100 << 10));
    let n = 1_000_000;
    let huge = header("join", &[&dir], &vec!["a"; n], &vec![0; n]);
    assert!(huge.len() < 8 << 20, "{} bytes", huge.len());
    insert(&c, &huge);
    drop(c);
    let r = hunt(&t, Duration::from_secs(120));
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains(
            "warning: package database: /var/lib/rpm/rpmdb.sqlite: over the budget of 8388608 \
             files or 1073741824 bytes of file paths (package join: 1000000 files"
        ),
        "{}",
        r.err
    );
    assert!(r.err.contains("this RPM database is not used"), "{}", r.err);
    assert_eq!(r.owner("planted.service"), "unknown");
    assert_eq!(r.owner("rootpkg.service"), "unknown");
    assert!(r.max_rss_kb < 512 << 10, "peak RSS {} KiB", r.max_rss_kb);
}

// ---------------------------------------------------------------------------------------------
// Item 5: FIFOs, devices and over-long files in dpkg's database.

/// Issue 15 item 5: dpkg's `status` as a FIFO hung hunt (reading blocks for a writer that never
/// comes); `.list` and `.md5sums` FIFOs likewise. They are never opened: hunt finishes, with a
/// warning for each, and the rest of the database is used.
#[test]
fn dpkg_files_that_are_fifos_do_not_hang_hunt() {
    let t = Image::new("dpkg-fifo");
    dpkg_image(&t);
    std::fs::remove_file(t.at("/var/lib/dpkg/status")).unwrap();
    mkfifo(&t.at("/var/lib/dpkg/status"));
    mkfifo(&t.at("/var/lib/dpkg/info/fifo.list"));
    mkfifo(&t.at("/var/lib/dpkg/info/fifo.md5sums"));
    // A unit directory that is a FIFO: not listed, and said so.
    mkfifo(&t.at("/etc/systemd/system.control"));
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    for p in [
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info/fifo.list",
        "/var/lib/dpkg/info/fifo.md5sums",
    ] {
        let note = format!("warning: package database: {p}: a FIFO, not a regular file; not read");
        assert!(r.err.contains(&note), "{note}\n{}", r.err);
    }
    assert!(
        r.err.contains(
            "warning: /etc/systemd/system.control: not a directory; its units are not hunted"
        ),
        "{}",
        r.err
    );
    assert_eq!(r.owner("pkgd.service"), "pkgd (modified)");
    assert_eq!(r.owner("planted.service"), "unowned");
}

/// Issue 15 item 5: `status` linked to `/dev/zero` is the image's `/dev/zero`: when the image has
/// none, the link is named in a warning (it was skipped silently); a `.list` over its cap is
/// refused before it is read (it was read whole). The rest of the database is used.
#[test]
fn dpkg_status_linked_to_dev_zero_and_over_cap_lists_are_refused() {
    let t = Image::new("dpkg-zero");
    dpkg_image(&t);
    t.link("/var/lib/dpkg/status", "/dev/zero");
    // Sparse: a 64 MiB + 1 list costs nothing on disk.
    File::create(t.at("/var/lib/dpkg/info/big.list"))
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains(
            "warning: package database: /var/lib/dpkg/status: a symbolic link to /dev/zero, which \
             does not resolve inside the root (/dev: does not exist); not read"
        ),
        "{}",
        r.err
    );
    assert!(
        r.err.contains(
            "warning: package database: /var/lib/dpkg/info/big.list: over the 67108864-byte \
             limit; not read"
        ),
        "{}",
        r.err
    );
    assert_eq!(r.owner("pkgd.service"), "pkgd (modified)");
    assert!(r.max_rss_kb < 512 << 10, "{} KiB", r.max_rss_kb);
}

/// Issue 15 item 5: the image's own `/dev/zero`, a real character device (when this process may
/// make one), as the target of `status` and as a `.list` node, was read until memory ran out.
/// Both are refused without being opened, with a warning each.
#[test]
fn dpkg_files_that_are_device_nodes_are_not_read() {
    let t = Image::new("dpkg-device");
    dpkg_image(&t);
    t.link("/var/lib/dpkg/status", "/dev/zero");
    if !mkzero(&t.at("/dev/zero")) || !mkzero(&t.at("/var/lib/dpkg/info/zero.list")) {
        eprintln!("no CAP_MKNOD: the device cases are skipped");
        return;
    }
    let r = hunt(&t, DEADLINE);
    assert_eq!(r.code, 0, "{}", r.err);
    for note in [
        "warning: package database: /var/lib/dpkg/status: /dev/zero: a character device, not a \
         regular file; not read",
        "warning: package database: /var/lib/dpkg/info/zero.list: a character device, not a \
         regular file; not read",
    ] {
        assert!(r.err.contains(note), "{note}\n{}", r.err);
    }
    assert_eq!(r.owner("pkgd.service"), "pkgd (modified)");
    assert!(r.max_rss_kb < 512 << 10, "{} KiB", r.max_rss_kb);
}

// ---------------------------------------------------------------------------------------------
// Item 4: a unit swapped for a link to a host file while hunt reads it.

/// Issue 15 item 4: units flipped between a regular file and a link to a host file (by rename,
/// so each is always one or the other) while hunt runs, over and over: the check-then-open race
/// read the host file through the link. Opened without following links and checked after
/// opening, the host file's marker never shows in any run's output.
#[test]
fn units_swapped_for_links_to_the_host_never_leak_it() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let t = Image::new("race");
    let marker = format!("HOST-SECRET-{}", std::process::id());
    let secret = t.host(
        "secret.service",
        format!("[Service]\nExecStart=/usr/bin/{marker}\n"),
    );
    t.put(PLANTED, PLANTED_TEXT);
    let dir = t.root().join("etc/systemd/system");
    const UNITS: usize = 16;
    const BENIGN: &str = "[Service]\nExecStart=/usr/bin/true\n";
    for i in 0..UNITS {
        t.put(&format!("/etc/systemd/system/race-{i}.service"), BENIGN);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, dir, secret) = (stop.clone(), swaps.clone(), dir.clone(), secret.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for i in 0..UNITS {
                    let unit = dir.join(format!("race-{i}.service"));
                    let (l, f) = (dir.join(format!(".l{i}")), dir.join(format!(".f{i}")));
                    let _ = symlink(&secret, &l);
                    let _ = std::fs::rename(&l, &unit);
                    let _ = std::fs::write(&f, BENIGN);
                    let _ = std::fs::rename(&f, &unit);
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let mut runs = 0;
    let mut seen_benign = 0;
    while runs < 10 || (started.elapsed() < Duration::from_secs(8) && runs < 1000) {
        let r = hunt(&t, DEADLINE);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            !r.all().contains(&marker),
            "run {runs}: the host file was read through the root:\n{}",
            r.all()
        );
        seen_benign += r.out.matches("ExecStart=/usr/bin/true").count();
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    assert!(
        swaps > 0 && seen_benign > 0,
        "{runs} runs, {swaps} swaps, {seen_benign} units read"
    );
    eprintln!("{runs} runs, {swaps} rounds of {UNITS} swaps, {seen_benign} units read");
}

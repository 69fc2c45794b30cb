//! What several test files share. Each test file that uses it declares `mod common;` (Cargo
//! builds every file of `tests/` as its own crate; this folder is not one).

#![allow(dead_code)] // each test crate uses a part

use std::path::{Path, PathBuf};

/// A fresh directory per test (`unithunt-CRATE-TEST-PID` under the temporary directory: the test
/// file, the test, the process), removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(test: &str) -> Tmp {
        let crate_name = env!("CARGO_CRATE_NAME");
        let name = format!("unithunt-{crate_name}-{test}-{}", std::process::id());
        let d = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }

    /// The directory itself, as text.
    pub fn dir(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The path of `name` inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The path of `name` inside, as text.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    /// Writes `bytes` to `name` inside (making its folders); its path.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        self.path(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads one HTTP/1.1 request from `s` (the head up to its blank line, then `content-length`
/// bytes of body), for the test servers standing in for Elasticsearch; its body, or `None` when
/// the connection ends first.
pub fn read_http_request(s: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A minimal HTTP/1.1 server answering `_bulk` requests: records each `create` action's `_id`
/// and replies as Elasticsearch does (201 created, 409 when the id exists).
pub fn serve_bulk(
    listener: std::net::TcpListener,
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let ids = ids.clone();
        std::thread::spawn(move || loop {
            let Some(body) = read_http_request(&mut s) else {
                return;
            };
            let mut items = Vec::new();
            let text = String::from_utf8_lossy(&body).to_string();
            let mut lines = text.lines();
            let mut all = ids.lock().unwrap();
            while let (Some(action), Some(_doc)) = (lines.next(), lines.next()) {
                let a: serde_json::Value = serde_json::from_str(action).unwrap();
                let id = a["create"]["_id"].as_str().unwrap().to_string();
                let status = if all.contains(&id) { 409 } else { 201 };
                all.push(id);
                items.push(serde_json::json!({"create": {"_id": all.last(), "status": status}}));
            }
            drop(all);
            let reply = serde_json::json!({"took": 1, "errors": items.iter().any(|i| i["create"]["status"] != 201), "items": items}).to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            if std::io::Write::write_all(&mut s, resp.as_bytes()).is_err() {
                return;
            }
        });
    }
}

/// The workspace, where tests run unithunt (paths in arguments are relative to it).
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs unithunt with `args` in the workspace; it must succeed. (stdout, stderr).
pub fn unithunt_ok(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unithunt"))
        .args(args)
        .current_dir(WORKSPACE)
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "unithunt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A FIFO at `path` (mkfifo(3)).
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "{path:?}");
}

/// The one convention for peer data and samples: `../shared/REL` beside the repository, as a
/// path relative to the workspace (where the tests run unithunt). Missing, the test fails
/// loudly, saying what is missing; no test skips for want of it.
pub fn shared(rel: &str) -> &'static str {
    let path = format!("../shared/{rel}");
    let abs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(&path);
    assert!(
        abs.exists(),
        "{} is missing: unithunt's tests read the shared samples and peer data from ../shared, beside the repository (README: Tests)",
        abs.display()
    );
    Box::leak(path.into_boxed_str())
}

/// Two Sigma base rules and two correlations over them (an event count per host within 5 min,
/// and an ordered pair per host and user within 1 min), which fire on the seed's adversary tests.
pub const CORRELATIONS: &str = r#"title: Unit file written
name: unit_written
logsource: {product: linux, category: file_event}
detection:
    s: {TargetFilename|endswith: .service}
    condition: s
---
title: systemctl from a shell
name: shell_systemctl
logsource: {product: linux, category: process_creation}
detection:
    s: {Image|endswith: /systemctl, ParentImage|endswith: /bash}
    condition: s
---
title: Three systemctl runs from shells on one host within 5 minutes
id: 22222222-2222-4222-8222-222222222222
correlation:
    type: event_count
    rules: [shell_systemctl]
    group-by: [host.name]
    timespan: 5m
    condition: {gte: 3}
level: high
---
title: A unit written, then systemctl from a shell, by one user on one host
correlation:
    type: temporal_ordered
    rules: [unit_written, shell_systemctl]
    group-by: [host.name, user.name]
    timespan: 1m
level: critical
"#;

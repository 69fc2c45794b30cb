//! The HTTP sink of `watch`: ships the alert journal (its on-disk spool) to an Elasticsearch
//! `_bulk` endpoint. Each alert is a `create` action whose `_id` is the alert's id, so a batch
//! sent again (after a crash, or after a reply that never arrived) is refused as a conflict (409)
//! rather than indexed twice. The position shipped (journal inode and offset) is saved
//! atomically after each acknowledged batch. While the endpoint is down, alerts stay in the
//! journal (bounded: the journal and one rotated file) and are retried with exponential back-off.

use serde_json::Value as Json;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Alerts per `_bulk` request at most.
const BATCH_BYTES: usize = 4 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

pub struct Target {
    pub url: String,
    pub index: String,
    pub headers: Vec<String>,
    pub journal: PathBuf,
    /// Where the shipped position is kept.
    pub position: PathBuf,
}

pub struct Shipper {
    stop: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
    handle: std::thread::JoinHandle<()>,
}

impl Shipper {
    pub fn start(target: Target) -> Shipper {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Arc::new(Mutex::new(None));
        let (s, d) = (stop.clone(), deadline.clone());
        let handle = std::thread::spawn(move || ship(target, s, d));
        Shipper {
            stop,
            deadline,
            handle,
        }
    }

    /// Lets the shipper deliver what is spooled for up to `grace`, then stops it (what is left
    /// stays in the journal for the next run).
    pub fn stop(self, grace: Duration) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Instant::now() + grace);
        }
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.join();
    }
}

/// (inode of the journal file being shipped, offset in it).
fn load_position(path: &std::path::Path) -> Option<(u64, u64)> {
    let j: Json = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some((j["ino"].as_u64()?, j["offset"].as_u64()?))
}

fn save_position(path: &std::path::Path, ino: u64, offset: u64) {
    let doc = serde_json::json!({"ino": ino, "offset": offset});
    if let Err(e) = crate::watch::write_atomic(path, format!("{doc}\n").as_bytes()) {
        eprintln!("error: http sink position {}: {e}", path.display());
    }
}

fn ino_of(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Whole lines of `path` from `offset`, at most about [`BATCH_BYTES`].
fn read_lines(path: &std::path::Path, offset: u64) -> Vec<u8> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(BATCH_BYTES as u64).read_to_end(&mut buf);
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(whole);
    buf
}

/// The `_bulk` body for journal lines: a `create` action per alert, `_id` its id.
pub fn bulk_body(lines: &[u8], index: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(lines.len() * 2);
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let id = serde_json::from_slice::<Json>(line)
            .ok()
            .and_then(|j| j["kibana.alert.uuid"].as_str().map(str::to_string))
            .unwrap_or_default();
        let action = serde_json::json!({"create": {"_index": index, "_id": id}});
        // Writing into a Vec cannot fail.
        let _ = unithunt_event::neutral::to_writer(&mut body, &action);
        body.push(b'\n');
        body.extend_from_slice(line);
        body.push(b'\n');
    }
    body
}

/// Whether a `_bulk` reply acknowledges every action: created, or refused as already there.
pub fn acknowledged(reply: &Json) -> Result<(), String> {
    if reply["errors"] == Json::Bool(false) {
        return Ok(());
    }
    let items = reply["items"]
        .as_array()
        .ok_or("a _bulk reply without items")?;
    for item in items {
        let status = item["create"]["status"]
            .as_u64()
            .or_else(|| item["index"]["status"].as_u64())
            .unwrap_or(0);
        if !(200..300).contains(&status) && status != 409 {
            return Err(format!(
                "an action was refused with status {status}: {item}"
            ));
        }
    }
    Ok(())
}

fn post(agent: &ureq::Agent, t: &Target, body: &[u8]) -> Result<(), String> {
    let mut req = agent
        .post(&t.url)
        .set("Content-Type", "application/x-ndjson");
    for h in &t.headers {
        if let Some((name, value)) = h.split_once(':') {
            req = req.set(name.trim(), value.trim());
        }
    }
    match req.send_bytes(body) {
        Ok(resp) => {
            let reply: Json = resp
                .into_json()
                .map_err(|e| format!("unreadable reply: {e}"))?;
            acknowledged(&reply)
        }
        Err(ureq::Error::Status(code, resp)) => Err(format!(
            "status {code}: {}",
            resp.into_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect::<String>()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn ship(t: Target, stop: Arc<AtomicBool>, deadline: Arc<Mutex<Option<Instant>>>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .build();
    let rotated = crate::watch::rotated_path(&t.journal);
    let (mut ino, mut offset) = load_position(&t.position).unwrap_or((0, 0));
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    let past_deadline = || {
        stop.load(Ordering::SeqCst)
            && deadline
                .lock()
                .ok()
                .and_then(|d| *d)
                .is_some_and(|d| Instant::now() >= d)
    };
    loop {
        // Which file holds the position: the journal, its rotated predecessor, or neither.
        let current = ino_of(&t.journal);
        let previous = ino_of(&rotated);
        let path = if Some(ino) == current {
            t.journal.clone()
        } else if Some(ino) == previous {
            rotated.clone()
        } else {
            // First run, or the position's file is gone: start at the oldest file kept.
            if ino != 0 {
                eprintln!(
                    "warning: http sink: the journal rotated twice while the endpoint was down; \
                     alerts in between were not shipped (they are in no file any more)"
                );
            }
            match (previous, current) {
                (Some(p), _) => (ino, offset) = (p, 0),
                (None, Some(c)) => (ino, offset) = (c, 0),
                (None, None) => {}
            }
            if ino == 0 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        };
        let lines = read_lines(&path, offset);
        if lines.is_empty() {
            if path == rotated {
                // The rotated file is done: the journal is next.
                if let Some(c) = current {
                    (ino, offset) = (c, 0);
                    save_position(&t.position, ino, offset);
                    continue;
                }
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match post(&agent, &t, &bulk_body(&lines, &t.index)) {
            Ok(()) => {
                if failing {
                    eprintln!("unithunt watch: http sink delivering again");
                }
                failing = false;
                backoff = BACKOFF_MIN;
                offset += lines.len() as u64;
                save_position(&t.position, ino, offset);
            }
            Err(e) => {
                if !failing {
                    // `e` quotes the endpoint's reply (its error body, a refused item): the
                    // endpoint's text, escaped like any other untrusted text.
                    eprintln!(
                        "warning: http sink {}: {}; alerts are kept in the journal and retried",
                        crate::term::escape(&t.url),
                        crate::term::escape(&e)
                    );
                }
                failing = true;
                if past_deadline() {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        if past_deadline() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bodies_create_by_alert_id_and_conflicts_count_as_delivered() {
        let body = bulk_body(
            b"{\"kibana.alert.uuid\":\"u1\",\"a\":1}\n{\"kibana.alert.uuid\":\"u2\"}\n",
            "alerts",
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"create\":{\"_id\":\"u1\",\"_index\":\"alerts\"}}\n{\"kibana.alert.uuid\":\"u1\",\"a\":1}\n\
             {\"create\":{\"_id\":\"u2\",\"_index\":\"alerts\"}}\n{\"kibana.alert.uuid\":\"u2\"}\n"
        );
        let ok = serde_json::json!({"errors": true, "items": [
            {"create": {"status": 201}}, {"create": {"status": 409}}]});
        assert!(acknowledged(&ok).is_ok());
        let bad = serde_json::json!({"errors": true, "items": [{"create": {"status": 429}}]});
        assert!(acknowledged(&bad).is_err());
        assert!(acknowledged(&serde_json::json!({"errors": false})).is_ok());
    }
}

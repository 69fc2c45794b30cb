//! The HTTP sink of `watch`: ships the alert journal to an Elasticsearch `_bulk` endpoint,
//! through the one shipping mechanism of `unithunt_pipeline::live::ship` (position, back-off, budget, warnings).
//! Each alert is a `create` action whose `_id` is the alert's id, so a batch sent again (after a
//! crash, or after a reply that never arrived) is refused as a conflict (409) rather than indexed
//! twice.

use serde_json::Value as Json;
use std::time::Duration;

pub struct Http {
    pub url: String,
    pub index: String,
    pub headers: Vec<String>,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(url: String, index: String, headers: Vec<String>) -> Http {
        Http {
            url,
            index,
            headers,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(15))
                .build(),
        }
    }
}

impl crate::transport::Transport for Http {
    /// All or nothing: a batch is one request.
    fn deliver(&mut self, lines: &[u8]) -> Result<(), (usize, String)> {
        post(self, &bulk_body(lines, &self.index)).map_err(|e| (0, e))
    }
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

fn post(t: &Http, body: &[u8]) -> Result<(), String> {
    let mut req = t
        .agent
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

//! The syslog sink of `watch`: RFC 5424 messages over UDP, TCP (octet counting, RFC 6587) or a
//! local datagram socket, shipped from the alert journal through the one mechanism of
//! `unithunt_pipeline::live::ship` (position, back-off, retry budget, warnings), as the HTTP sink is. A refused or
//! unreachable target keeps the alerts in the journal; they are sent once it answers.
//!
//! What "delivered" means depends on the transport: over TCP and a local socket, accepted by the
//! kernel for a connection (or socket) that was open; over UDP, sent — a datagram to a port
//! where nothing listens is lost, and only the refusal the kernel reports on the next send stops
//! shipping. Syslog has no acknowledgement, so a message may arrive twice after a reconnection;
//! its structured data carries the alert id (`id="…"`) to recognise it.

use crate::transport::Transport;
use serde_json::json;
use serde_json::Value as Json;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;
use unithunt_event::neutral;

/// Connecting and each write give up after this long (a collector that stops reading).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

enum Target {
    Udp(String),
    Tcp(String),
    Unix(PathBuf),
}

pub struct Syslog {
    target: Target,
    host: String,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    unix: Option<UnixDatagram>,
}

impl Syslog {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:PATH`; nothing is connected yet.
    pub fn parse(address: &str, host: String) -> Result<Syslog, String> {
        let target = if let Some(a) = address.strip_prefix("udp://") {
            Target::Udp(a.to_string())
        } else if let Some(a) = address.strip_prefix("tcp://") {
            Target::Tcp(a.to_string())
        } else if let Some(p) = address.strip_prefix("unix:") {
            Target::Unix(PathBuf::from(p))
        } else {
            return Err(format!(
                "--syslog {address}: expected udp://HOST:PORT, tcp://HOST:PORT or unix:PATH"
            ));
        };
        Ok(Syslog {
            target,
            host,
            udp: None,
            tcp: None,
            unix: None,
        })
    }

    fn send(&mut self, msg: &str) -> std::io::Result<()> {
        match &self.target {
            Target::Udp(a) => {
                if self.udp.is_none() {
                    let addr = resolve(a)?;
                    let s = UdpSocket::bind(if addr.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    })?;
                    // Connected, so that a refusal (ICMP port unreachable) is reported.
                    s.connect(addr)?;
                    self.udp = Some(s);
                }
                let r = self.udp.as_ref().map_or(Ok(0), |s| s.send(msg.as_bytes()));
                if r.is_err() {
                    self.udp = None;
                }
                r.map(|_| ())
            }
            Target::Tcp(a) => {
                if self.tcp.is_none() {
                    let s = TcpStream::connect_timeout(&resolve(a)?, IO_TIMEOUT)?;
                    s.set_write_timeout(Some(IO_TIMEOUT))?;
                    self.tcp = Some(s);
                }
                let r = self.tcp.as_mut().map_or(Ok(()), |s| {
                    s.write_all(format!("{} {msg}", msg.len()).as_bytes())
                });
                if r.is_err() {
                    self.tcp = None;
                }
                r
            }
            Target::Unix(p) => {
                if self.unix.is_none() {
                    let s = UnixDatagram::unbound()?;
                    s.set_write_timeout(Some(IO_TIMEOUT))?;
                    self.unix = Some(s);
                }
                let p = p.clone();
                self.unix
                    .as_ref()
                    .map_or(Ok(0), |s| s.send_to(msg.as_bytes(), &p))
                    .map(|_| ())
            }
        }
    }

    /// A TCP connection the collector closed is noticed before writing to it (a write into a
    /// closed connection is accepted by the kernel and lost).
    fn drop_if_closed(&mut self) {
        let Some(s) = self.tcp.as_ref() else { return };
        let mut b = [0u8; 1];
        let closed = s.set_nonblocking(true).is_err()
            || match s.peek(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
        if closed || s.set_nonblocking(false).is_err() {
            self.tcp = None;
        }
    }
}

fn resolve(a: &str) -> std::io::Result<std::net::SocketAddr> {
    a.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{a}: no address"))
    })
}

impl Transport for Syslog {
    /// One message per alert; on failure, the alerts sent before it count as delivered.
    fn deliver(&mut self, lines: &[u8]) -> Result<(), (usize, String)> {
        self.drop_if_closed();
        let mut done = 0;
        for line in lines.split_inclusive(|&b| b == b'\n') {
            if let Ok(alert) = serde_json::from_slice::<Json>(line) {
                let msg = syslog_message(&alert, &self.host);
                if let Err(e) = self.send(&msg) {
                    return Err((done, e.to_string()));
                }
            }
            done += line.len();
        }
        Ok(())
    }
}

/// One RFC 5424 message: facility 13 (log audit), severity from the alert's, the rule and alert
/// id as structured data, and the fields an analyst reads first as compact JSON in the message
/// (the whole alert is in the journal): kept under 2 kB, the size every receiver accepts over UDP
/// (RFC 5426), long values cut.
pub fn syslog_message(alert: &Json, host: &str) -> String {
    let severity = match alert["kibana.alert.severity"].as_str().unwrap_or("") {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        _ => 5,
    };
    let pri = 13 * 8 + severity;
    let time = unithunt_event::format_iso_ms(now_ms());
    let name = alert["kibana.alert.rule.name"].as_str().unwrap_or("");
    // PARAM-VALUE escapes: `"`, `\` and `]`.
    let sd_escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let cut = |v: &Json| -> Json {
        match v.as_str() {
            Some(s) if s.chars().count() > 400 => {
                Json::String(s.chars().take(400).collect::<String>() + "…")
            }
            _ => v.clone(),
        }
    };
    let summary = json!({
        "@timestamp": alert["@timestamp"],
        "rule_id": alert["kibana.alert.rule.rule_id"],
        "severity": alert["kibana.alert.severity"],
        "risk_score": alert["kibana.alert.risk_score"],
        "reason": cut(&alert["kibana.alert.reason"]),
        "host": alert["host"]["name"],
        "user": alert["user"]["name"],
        "process": cut(&alert["process"]["command_line"]),
        "parent": cut(&alert["process"]["parent"]["command_line"]),
        "file": cut(&alert["file"]["path"]),
        "event_id": alert["event"]["id"],
    });
    format!(
        "<{pri}>1 {time} {host} unithunt {} alert [unithunt@32473 rule=\"{}\" id=\"{}\"] {}",
        std::process::id(),
        sd_escape(name),
        sd_escape(alert["kibana.alert.uuid"].as_str().unwrap_or("")),
        neutral::to_string(&summary).unwrap_or_default(),
    )
}

/// This machine's name (for syslog's HOSTNAME), `-` when unknown (RFC 5424's nil value).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_messages_follow_rfc5424() {
        let alert = json!({
            "kibana.alert.severity": "high",
            "kibana.alert.rule.name": "Rule \"x\" [y]",
            "kibana.alert.uuid": "u-1",
        });
        let m = syslog_message(&alert, "web01");
        assert!(m.starts_with("<107>1 "), "{m}");
        assert!(m.contains(" web01 unithunt "), "{m}");
        assert!(
            m.contains("[unithunt@32473 rule=\"Rule \\\"x\\\" [y\\]\" id=\"u-1\"]"),
            "{m}"
        );
        let long = json!({"process": {"command_line": "x".repeat(100_000)}});
        assert!(syslog_message(&long, "h").len() < 2048);
    }
}

//! Remote alert media: a [`Transport`] delivers whole NDJSON alert lines (the HTTP `_bulk` sink in
//! [`crate::http`], syslog in [`crate::syslog`]). `watch` ships its journal through one (see
//! `unithunt_pipeline::live::ship`: position, back-off, budget); [`Delivering`] makes any transport
//! an [`AlertSink`] taking alerts directly.

use crate::AlertSink;
use serde_json::Value as Json;

/// A medium's way of delivering alert lines.
pub trait Transport: Send + 'static {
    /// Delivers whole alert lines (NDJSON). On failure: how many leading bytes of `lines` (whole
    /// lines) were delivered anyway, and why the rest was not.
    fn deliver(&mut self, lines: &[u8]) -> Result<(), (usize, String)>;
}

/// Any transport as an alert sink: each alert is written as one JSON line (through the one JSON
/// neutraliser) and delivered at once; a refusal is the sink's error.
pub struct Delivering<T: Transport> {
    transport: T,
    delivered: u64,
}

impl<T: Transport> Delivering<T> {
    pub fn new(transport: T) -> Self {
        Delivering {
            transport,
            delivered: 0,
        }
    }
}

impl<T: Transport> AlertSink for Delivering<T> {
    fn alert(&mut self, alert: &Json) -> std::io::Result<()> {
        let mut line = unithunt_event::neutral::to_vec(alert).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.transport
            .deliver(&line)
            .map_err(|(_, e)| std::io::Error::other(e))?;
        self.delivered += 1;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<u64> {
        Ok(self.delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::Syslog;

    /// A transport taking alerts directly: syslog over UDP to a socket of this test.
    #[test]
    fn a_transport_is_an_alert_sink() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let address = format!("udp://{}", receiver.local_addr().unwrap());
        let mut sink = Delivering::new(Syslog::parse(&address, "web01".into()).unwrap());
        let alert = serde_json::json!({
            "kibana.alert.uuid": "id-1",
            "kibana.alert.severity": "critical",
            "kibana.alert.rule.name": "Detect Systemd Service",
        });
        sink.alert(&alert).unwrap();
        assert_eq!(sink.finish().unwrap(), 1);
        let mut buf = [0u8; 4096];
        let n = receiver.recv(&mut buf).unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(msg.starts_with("<106>1 "), "{msg}");
        assert!(
            msg.contains("rule=\"Detect Systemd Service\" id=\"id-1\""),
            "{msg}"
        );
    }
}

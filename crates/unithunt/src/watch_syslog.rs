//! The syslog sink of `watch`: RFC 5424 messages over UDP, TCP (octet counting, RFC 6587) or a
//! local datagram socket, shipped from the alert journal through the one mechanism of
//! `watch_sink` (position, back-off, retry budget, warnings), as the HTTP sink is. A refused or
//! unreachable target keeps the alerts in the journal; they are sent once it answers.
//!
//! What "delivered" means depends on the transport: over TCP and a local socket, accepted by the
//! kernel for a connection (or socket) that was open; over UDP, sent — a datagram to a port
//! where nothing listens is lost, and only the refusal the kernel reports on the next send stops
//! shipping. Syslog has no acknowledgement, so a message may arrive twice after a reconnection;
//! its structured data carries the alert id (`id="…"`) to recognise it.

use crate::watch::syslog_message;
use serde_json::Value as Json;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

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

impl crate::watch_sink::Transport for Syslog {
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

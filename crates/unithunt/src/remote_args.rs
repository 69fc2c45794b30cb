//! The remote alert sinks `watch` and `stream` share: syslog and an Elasticsearch-compatible
//! `_bulk` endpoint, both shipped from the alert journal.

use clap::Args;
use unithunt_pipeline::live::ship::{HttpTarget, Remote};

#[derive(Args, Clone)]
pub struct RemoteArgs {
    /// Send each alert to syslog (RFC 5424): `udp://HOST:PORT`, `tcp://HOST:PORT` or
    /// `unix:/dev/log`.
    #[arg(long, value_name = "ADDRESS")]
    pub syslog: Option<String>,
    /// Ship alerts to an Elasticsearch-compatible `_bulk` endpoint, e.g.
    /// `http://localhost:9200/_bulk`, with retries, back-off and the journal as spool.
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// The index the `_bulk` actions name.
    #[arg(long, default_value = "unithunt-alerts")]
    pub http_index: String,
    /// A header for the HTTP sink (repeatable), e.g. `Authorization: ApiKey ...`.
    #[arg(long, value_name = "NAME: VALUE")]
    pub http_header: Vec<String>,
}

impl RemoteArgs {
    pub fn remote(&self) -> Remote {
        Remote {
            http: self.http.clone().map(|url| HttpTarget {
                url,
                index: self.http_index.clone(),
                headers: self.http_header.clone(),
            }),
            syslog: self.syslog.clone(),
        }
    }

    pub fn any(&self) -> bool {
        self.http.is_some() || self.syslog.is_some()
    }
}

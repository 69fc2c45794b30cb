//! The drivers every mode of unithunt shares around the detection core (`unithunt-detect`).
//!
//! # Brief overview
//!
//! - [`live`]: detection over a log as it grows (`unithunt watch`): [`live::Follower`] reads
//!   whole lines appended across rotation, [`live::Watch`] converts and evaluates each event as
//!   it completes, [`live::Journal`] records every alert once (the sink all others ship from),
//!   [`live::Checkpoint`] and [`live::replay_plan`] rebuild state at restart, [`live::ship`]
//!   delivers the journal through a `Transport` (HTTP `_bulk`, syslog).
//!
//! ```
//! use unithunt_output::AlertSink;
//! use unithunt_pipeline::live::Journal;
//! let dir = std::env::temp_dir().join(format!("unithunt-pipeline-doc-{}", std::process::id()));
//! let path = dir.join("alerts.ndjson");
//! let mut journal = Journal::open(&path, 1 << 20).unwrap();
//! let alert = serde_json::json!({"kibana.alert.uuid": "a1", "kibana.alert.rule.name": "r"});
//! journal.alert(&alert).unwrap();
//! journal.alert(&alert).unwrap(); // the same id again: not appended twice
//! assert_eq!(journal.finish().unwrap(), 1);
//! assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod batch;
pub mod live;

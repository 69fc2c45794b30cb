//! The detection core: what turns a stream of ECS events into alerts, for every mode (`scan`,
//! `watch`, `eql`, and the workers to come).
//!
//! # Brief overview
//!
//! - [`LiveDetector`]: every rule of a [`unithunt_rules::RuleSet`] on one event at a time; event
//!   rules alert at once, sequences and samples when an event completes them, Sigma correlations
//!   when the matches of the rules they name make them fire.
//! - [`BatchDetector`]: the stateful rules over a batch's matches in input order (`scan`):
//!   sequences time-ordered within a bound, correlations as matches come, results at the end.
//! - [`alerts::output_alerts`]: a runner's result (an event, a sequence, a sample) as alerts: the
//!   one place that happens.
//! - [`correlate::Correlator`]: Sigma correlations over the matches of the rules they name, in
//!   input order, groups bounded.
//! - [`window`]: time ordering in front of sequence runners ([`window::Reorder`], bounded) and the
//!   bounded head/tail windows of event queries ([`window::Window`]).
//!
//! ```
//! use unithunt_detect::LiveDetector;
//! use unithunt_rules::{alert::EventOrigin, RulePack, RuleSet};
//! let set: &'static RuleSet = Box::leak(Box::new(RuleSet::new(RulePack::builtin())));
//! let (mut detector, warnings) = LiveDetector::new(set, None, 10_000);
//! assert!(warnings.is_empty());
//! let event = serde_json::json!({
//!     "@timestamp": "2026-11-27T10:00:00Z",
//!     "event": {"category": ["file"], "type": ["creation"]},
//!     "file": {"path": "/etc/systemd/system/x.service", "extension": "service"},
//!     "process": {"name": "bash", "executable": "/usr/bin/bash"},
//!     "host": {"name": "h", "os": {"type": "linux"}}, "user": {"name": "root"},
//! });
//! let origin = EventOrigin { file: "f".into(), offset: 0 };
//! let alerts = detector.event(event, &origin);
//! assert!(alerts.iter().any(|a| a["kibana.alert.rule.name"] == "Detect Systemd Service"));
//! ```

pub mod alerts;
mod batch;
pub mod correlate;
mod live;
pub mod query;
pub mod window;

pub use batch::{alerts_alone, BatchDetector, BatchReport, Emit, SEQUENCE_BUDGET};
pub use live::LiveDetector;
pub use query::{QueryRun, QueryRunOptions, QueryTally};

/// Pending sequences per rule, and correlation groups per correlation, held by default by `scan`
/// and `watch` (one figure, so that a live run and an offline scan of the same log decide the
/// same).
pub const DEFAULT_MAX_PENDING: usize = 10_000;

//! Rule results to alerts: the one place a runner's output (an event, a sequence, a sample)
//! becomes Elastic-shaped alerts, for every mode.

use serde_json::Value as Json;
use std::sync::Arc;
use unithunt_engine::Output;
use unithunt_rules::alert::{event_alert, sequence_alerts, EventOrigin};
use unithunt_rules::RuleMeta;

/// The alerts of one output of `meta`'s runner: an event alert, or a sequence's (or sample's)
/// building blocks and shell alert. `origin_of` says where each event came from (its file and
/// offset make the alert ids).
pub fn output_alerts(
    meta: &RuleMeta,
    output: &Output,
    origin_of: impl Fn(&Arc<Json>) -> EventOrigin,
) -> Vec<Json> {
    match output {
        Output::Event(doc) => vec![event_alert(meta, doc, &origin_of(doc))],
        Output::Sequence { events, .. } => {
            let present: Vec<(Json, EventOrigin)> = events
                .iter()
                .flatten()
                .map(|d| ((**d).clone(), origin_of(d)))
                .collect();
            sequence_alerts(meta, &present)
        }
    }
}

//! Detection one event at a time, as events arrive (`watch`; the stream worker): every rule of a
//! set evaluated on each event, sequences and samples advanced and their completed results taken
//! at once, Sigma correlations fed the matches of the rules they name. The same results as a batch
//! run over the same events in the same order.

use crate::alerts::output_alerts;
use crate::correlate::{Correlator, Routed};
use serde_json::Value as Json;
use std::sync::Arc;
use unithunt_engine::{QueryKind, RunOptions, Runner};
use unithunt_event::{lookup_one, parse_timestamp, FieldPath, TimestampFormat};
use unithunt_rules::alert::{event_alert, EventOrigin};
use unithunt_rules::RuleSet;

/// The rules, the state of their sequence runners, and the correlations over them.
pub struct LiveDetector {
    set: &'static RuleSet,
    runners: Vec<Option<Runner<'static>>>,
    correlator: Correlator,
    ts_field: FieldPath,
}

impl LiveDetector {
    /// Runners for the set's sequence and sample rules (pending state bounded by `max_pending`
    /// per rule, and per correlation in groups). A rule unchanged from `previous` (a reload: same
    /// id, same query) keeps its pending sequences; correlations start afresh. The warnings name
    /// correlations whose references do not resolve.
    pub fn new(
        set: &'static RuleSet,
        previous: Option<LiveDetector>,
        max_pending: usize,
    ) -> (LiveDetector, Vec<String>) {
        let mut old = previous.map(|e| (e.set, e.runners));
        let runners = set
            .rules
            .iter()
            .map(|r| {
                let q = r.query.as_ref()?;
                if matches!(q.kind, QueryKind::Events(_)) && q.pipes.is_empty() {
                    return None;
                }
                if let Some((old_set, runners)) = old.as_mut() {
                    if let Some(i) = old_set.rules.iter().position(|o| {
                        o.meta.rule_id == r.meta.rule_id && o.query_text == r.query_text
                    }) {
                        if let Some(runner) = runners[i].take() {
                            return Some(runner);
                        }
                    }
                }
                Some(Runner::new(
                    q,
                    RunOptions {
                        max_pending,
                        ..RunOptions::default()
                    },
                ))
            })
            .collect();
        let (correlator, warnings) = Correlator::new(set, max_pending);
        let detector = LiveDetector {
            set,
            runners,
            correlator,
            ts_field: FieldPath::parse("@timestamp"),
        };
        (detector, warnings)
    }

    pub fn set(&self) -> &'static RuleSet {
        self.set
    }

    /// The alerts one event raises: at once for event rules; for sequences and samples, the
    /// results it completes; for correlations, those it makes fire.
    pub fn event(&mut self, doc: Json, origin: &EventOrigin) -> Vec<Json> {
        let hits = self.set.evaluate_counting(&doc, self.set.all_stages());
        let mut out = Vec::new();
        let mut shared: Option<Arc<Json>> = None;
        let ts = lookup_one(&doc, &self.ts_field)
            .and_then(|t| parse_timestamp(t, TimestampFormat::Auto));
        for (rule, mask) in hits {
            let meta = &self.set.rules[rule].meta;
            // A rule a correlation names alerts only through it (and on its own only when it
            // says `generate`); as in a batch, a match without a time goes nowhere.
            if self.correlator.referenced.contains(&rule) {
                if let Some(ts) = ts {
                    if let Routed::Correlated { own, fired } =
                        self.correlator.route(self.set, rule, &doc, ts, origin)
                    {
                        out.extend(own);
                        out.extend(fired);
                    }
                }
                continue;
            }
            match self.runners[rule].as_mut() {
                None => out.push(event_alert(meta, &doc, origin)),
                Some(runner) => {
                    let Some(ts) = ts else {
                        continue;
                    };
                    let d = shared.get_or_insert_with(|| Arc::new(doc.clone())).clone();
                    runner.advance(d, ts, mask);
                    for o in runner.take_completed() {
                        out.extend(output_alerts(meta, &o, |_| origin.clone()));
                    }
                }
            }
        }
        out
    }

    /// Alerts raised per correlation, and groups evicted at the cap, in the set's order.
    pub fn correlation_counts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.correlator
            .fired
            .iter()
            .copied()
            .zip(self.correlator.evicted_groups())
    }
}

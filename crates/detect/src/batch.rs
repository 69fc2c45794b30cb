//! Detection over a batch (files read in parallel, merged in input order: `scan`): the matches of
//! rules that need more than one event — sequences, samples, event queries with pipes — and of
//! rules a Sigma correlation names, in input order. Sequence rules get their matches time-ordered
//! (bounded: [`SEQUENCE_BUDGET`] events over all rules, then fed), and alert when the input ends.

use crate::alerts::output_alerts;
use crate::correlate::{Correlator, Routed};
use crate::window::{Reorder, SortKey, REORDER_BUDGET};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use unithunt_engine::{QueryKind, RunOptions, Runner, StageMask};
use unithunt_rules::alert::EventOrigin;
use unithunt_rules::{Rule, RuleSet};

/// Events buffered for sequence rules, over all rules, before they are fed to the runners.
pub const SEQUENCE_BUDGET: usize = REORDER_BUDGET;

/// Whether a rule alerts on each matching event alone (an event query without pipes): where the
/// event is found, with no state.
pub fn alerts_alone(rule: &Rule) -> bool {
    matches!(&rule.query, Some(q) if matches!(q.kind, QueryKind::Events(_)) && q.pipes.is_empty())
}

/// The state of one sequence (sample, piped) rule: its matches buffered and fed to its runner in
/// time order; an event older than what the runner has seen is still fed, and counted as late
/// (time-ordered input never has any).
struct Buffered<'s> {
    rule: usize,
    events: Reorder<EventOrigin>,
    runner: Runner<'s>,
    /// Where each fed event came from, for its alert; entries die with the event.
    origins: HashMap<usize, (Weak<Json>, EventOrigin)>,
}

impl Buffered<'_> {
    fn flush(&mut self) {
        let (origins, runner) = (&mut self.origins, &mut self.runner);
        self.events.flush(|key, doc, mask, origin| {
            origins.insert(Arc::as_ptr(&doc) as usize, (Arc::downgrade(&doc), origin));
            runner.advance(doc, key.ts, mask);
        });
        self.origins.retain(|_, (w, _)| w.strong_count() > 0);
    }
}

/// Where a fed event came from.
fn origin_of(origins: &HashMap<usize, (Weak<Json>, EventOrigin)>, doc: &Arc<Json>) -> EventOrigin {
    match origins.get(&(Arc::as_ptr(doc) as usize)) {
        Some((w, o)) if w.upgrade().is_some_and(|d| Arc::ptr_eq(&d, doc)) => o.clone(),
        _ => EventOrigin {
            file: String::new(),
            offset: 0,
        },
    }
}

/// What a batch run says at its end, besides its alerts.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Matches without a readable timestamp (not sequenced, not correlated).
    pub no_time: u64,
    /// Matches that came after later events had been sequenced (input not in time order).
    pub late: u64,
    /// Per sequence rule (index): pending sequences evicted at the cap.
    pub evicted: Vec<(usize, u64)>,
    /// Per correlation (index into the set's correlations): alerts raised, groups evicted.
    pub correlations: Vec<(u64, u64)>,
}

/// Where a batch's alerts go, one result at a time: the rule that raised it (`None` for a
/// correlation), and its alerts (one, or a sequence's building blocks and shell).
pub type Emit<'a> = dyn FnMut(Option<usize>, Vec<Json>) + 'a;

/// The stateful rules of a set over a batch of matches in input order.
pub struct BatchDetector<'s> {
    set: &'s RuleSet,
    correlator: Correlator,
    buffered: Vec<Buffered<'s>>,
    /// Events held in `buffered`, over all rules.
    held: usize,
    ordinal: u64,
    no_time: u64,
}

impl<'s> BatchDetector<'s> {
    /// The detector of `set` (pending state bounded by `max_pending` per rule and, in groups, per
    /// correlation); the warnings name correlations whose references do not resolve.
    pub fn new(set: &'s RuleSet, max_pending: usize) -> (BatchDetector<'s>, Vec<String>) {
        let (correlator, warnings) = Correlator::new(set, max_pending);
        let buffered = set
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| !alerts_alone(r))
            .filter_map(|(i, r)| {
                let runner = Runner::new(
                    r.query.as_ref()?,
                    RunOptions {
                        max_pending,
                        ..RunOptions::default()
                    },
                );
                Some(Buffered {
                    rule: i,
                    events: Reorder::default(),
                    runner,
                    origins: HashMap::new(),
                })
            })
            .collect();
        let detector = BatchDetector {
            set,
            correlator,
            buffered,
            held: 0,
            ordinal: 0,
            no_time: 0,
        };
        (detector, warnings)
    }

    /// Whether a rule's matches come here (it needs more than one event, or a correlation names
    /// it) rather than alerting where they are found.
    pub fn takes(&self, rule: usize) -> bool {
        !alerts_alone(&self.set.rules[rule]) || self.correlator.referenced.contains(&rule)
    }

    /// A match of `rule`'s stages `mask` on `doc` (at `ts` ns, when it has a time), in input
    /// order. The alerts it raises at once (a correlation firing, a rule's own alert when its
    /// correlation says `generate`) go to `emit`; sequences alert at [`BatchDetector::finish`].
    pub fn on_match(
        &mut self,
        rule: usize,
        mask: StageMask,
        doc: Arc<Json>,
        ts: Option<i64>,
        origin: EventOrigin,
        emit: &mut Emit<'_>,
    ) {
        self.ordinal += 1;
        let Some(ts) = ts else {
            self.no_time += 1;
            return;
        };
        match self.correlator.route(self.set, rule, &doc, ts, &origin) {
            Routed::Alone => {}
            Routed::Correlated { own, fired } => {
                if let Some(a) = own {
                    emit(Some(rule), vec![a]);
                }
                for a in fired {
                    emit(None, vec![a]);
                }
                return;
            }
        }
        if let Some(b) = self.buffered.iter_mut().find(|b| b.rule == rule) {
            let key = SortKey {
                ts,
                tiebreaker: None,
                ordinal: self.ordinal,
            };
            b.events.push(key, doc, mask, origin);
            self.held += 1;
        }
        if self.held >= SEQUENCE_BUDGET {
            for b in self.buffered.iter_mut() {
                b.flush();
            }
            self.held = 0;
        }
    }

    /// The end of the input: what is buffered is fed, every runner's windows close, and their
    /// results go to `emit` as alerts.
    pub fn finish(mut self, emit: &mut Emit<'_>) -> BatchReport {
        let mut report = BatchReport {
            no_time: self.no_time,
            correlations: self
                .correlator
                .fired
                .iter()
                .copied()
                .zip(self.correlator.evicted_groups())
                .collect(),
            ..BatchReport::default()
        };
        for mut b in std::mem::take(&mut self.buffered) {
            b.flush();
            report.late += b.events.late;
            let Buffered {
                rule,
                runner,
                origins,
                ..
            } = b;
            let result = runner.finish();
            if result.stats.evicted > 0 {
                report.evicted.push((rule, result.stats.evicted));
            }
            let meta = &self.set.rules[rule].meta;
            for out in result.outputs {
                emit(
                    Some(rule),
                    output_alerts(meta, &out, |d| origin_of(&origins, d)),
                );
            }
        }
        report
    }
}

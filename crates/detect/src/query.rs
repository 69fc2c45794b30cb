//! One EQL query over a stream of events, as Elasticsearch's `_eql/search` runs it (`unithunt
//! eql`): events matching a stage are ordered by time (and tiebreaker) in bounded batches before
//! sequencing; event queries that only take heads and tails keep only what they can return.

use crate::window::{Reorder, SortKey, Take, Window, REORDER_BUDGET};
use serde_json::Value as Json;
use std::sync::Arc;
use unithunt_engine::{Output, Query, RunOptions, Runner};
use unithunt_event::{lookup_one, parse_timestamp, FieldPath, TimestampFormat};

/// How a query runs.
pub struct QueryRunOptions {
    /// The legacy (Python `eql`) dialect: input order, events without a time at 0.
    pub legacy: bool,
    pub timestamp_field: FieldPath,
    pub tiebreaker_field: Option<FieldPath>,
    pub run: RunOptions,
    /// For event queries that only take heads and tails: what they take.
    pub window: Option<Vec<Take>>,
}

/// What a run found, for its summary.
#[derive(Debug, Default)]
pub struct QueryTally {
    /// Results found, and those returned.
    pub total: usize,
    pub shown: usize,
    /// Events without a readable timestamp (not evaluated), and where the first was.
    pub no_time: u64,
    pub no_time_example: Option<(String, u64)>,
    /// Pending sequences evicted at the cap.
    pub evicted: u64,
    /// Events with more join-key combinations (multi-valued keys) than the engine takes.
    pub keys_cut: u64,
    /// Candidates that came after later ones had been sequenced.
    pub late: u64,
}

/// Where events go as they are read: each is evaluated against the query's stages, and those
/// matching one are sequenced or kept in the result window.
pub struct QueryRun<'q> {
    legacy: bool,
    ts_field: FieldPath,
    tb_field: Option<FieldPath>,
    runner: Runner<'q>,
    /// For event queries that only take heads and tails: the matches they can return.
    window: Option<Window>,
    /// Candidates (events matching some stage) are sorted by time before sequencing, as
    /// Elasticsearch does, a bounded buffer at a time (see `Reorder`).
    candidates: Reorder<()>,
    ordinal: u64,
    no_time: u64,
    no_time_example: Option<(String, u64)>,
    /// A `sample` query: it needs no timestamp ("With the exception of sample queries, EQL
    /// searches require that the searched data stream or index contains a timestamp field",
    /// Elasticsearch's EQL reference, "Required fields").
    timeless: bool,
}

impl<'q> QueryRun<'q> {
    pub fn new(query: &'q Query, options: QueryRunOptions) -> QueryRun<'q> {
        QueryRun {
            legacy: options.legacy,
            ts_field: options.timestamp_field,
            tb_field: options.tiebreaker_field,
            runner: Runner::new(query, options.run),
            window: options.window.map(Window::new),
            candidates: Reorder::default(),
            ordinal: 0,
            no_time: 0,
            no_time_example: None,
            timeless: matches!(query.kind, unithunt_engine::QueryKind::Sample(_)),
        }
    }

    /// Takes the event read at `line` of input `name`.
    pub fn push(&mut self, doc: Json, name: &str, line: u64) {
        self.ordinal += 1;
        let ts = lookup_one(&doc, &self.ts_field)
            .and_then(|t| parse_timestamp(t, TimestampFormat::Auto));
        let ts = match (ts, self.legacy || self.timeless) {
            (Some(t), _) => t,
            // In input order.
            (None, true) => 0,
            (None, false) => {
                self.no_time += 1;
                if self.no_time_example.is_none() {
                    self.no_time_example = Some((name.to_string(), line));
                }
                return;
            }
        };
        let mask = self.runner.evaluate(&doc);
        if self.legacy {
            self.runner.advance(Arc::new(doc), ts, mask);
        } else if mask != 0 {
            let tiebreaker = self
                .tb_field
                .as_ref()
                .and_then(|f| lookup_one(&doc, f).cloned());
            let key = SortKey {
                ts,
                tiebreaker,
                ordinal: self.ordinal,
            };
            match &mut self.window {
                Some(w) => w.push(key, Arc::new(doc)),
                None => {
                    self.candidates.push(key, Arc::new(doc), mask, ());
                    if self.candidates.len() >= REORDER_BUDGET {
                        let runner = &mut self.runner;
                        self.candidates
                            .flush(|key, doc, mask, ()| runner.advance(doc, key.ts, mask));
                    }
                }
            }
        }
    }

    /// The results to show (`size` of them, the last ones when `from_tail`, as
    /// `_eql/search`'s `result_position`) and the run's tally. Samples are the first `size` in
    /// join-key order whatever the position: Elasticsearch pages them out of a composite
    /// aggregation, ascending, and stops at `size` (`SampleIterator`).
    pub fn finish(
        self,
        size: usize,
        from_tail: bool,
        pipes_len: usize,
    ) -> (Vec<Output>, QueryTally) {
        let from_tail = from_tail && !self.timeless;
        let QueryRun {
            runner,
            window,
            mut candidates,
            no_time,
            no_time_example,
            ..
        } = self;
        let (outputs, total, stats) = match window {
            Some(w) => {
                let (docs, total) = w.finish(pipes_len);
                let docs: Vec<Output> = docs.into_iter().map(Output::Event).collect();
                (docs, total, unithunt_engine::RunStats::default())
            }
            None => {
                let mut runner = runner;
                candidates.flush(|key, doc, mask, ()| runner.advance(doc, key.ts, mask));
                let result = runner.finish();
                let total = result.outputs.len();
                let skip = if from_tail {
                    total.saturating_sub(size)
                } else {
                    0
                };
                let shown = result.outputs.into_iter().skip(skip).take(size).collect();
                (shown, total, result.stats)
            }
        };
        let tally = QueryTally {
            total,
            shown: outputs.len(),
            no_time,
            no_time_example,
            evicted: stats.evicted,
            keys_cut: stats.keys_cut,
            late: candidates.late,
        };
        (outputs, tally)
    }
}

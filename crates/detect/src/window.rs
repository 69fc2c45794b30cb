//! Bounded result windows for event queries.
//!
//! Elasticsearch sorts the hits of an event query by time and then applies `| head`/`| tail` and
//! `size`/`result_position`. A chain of heads and tails always selects a contiguous run of the sorted
//! hits, and its first step says from which end: so an event query needs to keep only the `n`
//! earliest (or latest) matches, never all of them. Memory stays bounded by the window, not the
//! input.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use serde_json::Value as Json;

/// One step of a head/tail chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    Head(usize),
    Tail(usize),
}

/// Where an event sorts: timestamp, tiebreaker, input position.
#[derive(Clone, Debug)]
pub struct SortKey {
    pub ts: i64,
    pub tiebreaker: Option<Json>,
    pub ordinal: u64,
}

impl SortKey {
    fn cmp_key(&self, other: &SortKey) -> Ordering {
        self.ts
            .cmp(&other.ts)
            .then_with(|| tiebreak(&self.tiebreaker, &other.tiebreaker))
            .then(self.ordinal.cmp(&other.ordinal))
    }
}

/// Orders tiebreaker values: numbers numerically, strings lexically; events without one last.
pub fn tiebreak(a: &Option<Json>, b: &Option<Json>) -> Ordering {
    match (a, b) {
        (Some(Json::Number(x)), Some(Json::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Json::String(x)), Some(Json::String(y))) => x.cmp(y),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

struct Entry(SortKey, Arc<Json>);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.cmp_key(&other.0) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_key(&other.0)
    }
}

/// Keeps the matches a head/tail chain can select, and counts all of them.
pub struct Window {
    chain: Vec<Take>,
    earliest: BinaryHeap<Entry>,
    latest: BinaryHeap<Reverse<Entry>>,
    keep: usize,
    from_start: bool,
    seen: usize,
}

impl Window {
    /// `chain` is the query's pipes followed by the final `size`/`result_position` step.
    pub fn new(chain: Vec<Take>) -> Window {
        let (from_start, keep) = match chain.first() {
            Some(Take::Head(n)) => (true, *n),
            Some(Take::Tail(n)) => (false, *n),
            None => (true, usize::MAX),
        };
        Window {
            chain,
            earliest: BinaryHeap::new(),
            latest: BinaryHeap::new(),
            keep,
            from_start,
            seen: 0,
        }
    }

    pub fn push(&mut self, key: SortKey, doc: Arc<Json>) {
        self.seen += 1;
        if self.keep == 0 {
            return;
        }
        let e = Entry(key, doc);
        if self.from_start {
            self.earliest.push(e);
            if self.earliest.len() > self.keep {
                self.earliest.pop();
            }
        } else {
            self.latest.push(Reverse(e));
            if self.latest.len() > self.keep {
                self.latest.pop();
            }
        }
    }

    /// The selected events in time order, and how many results the pipes (without the final
    /// `size` step) produce.
    pub fn finish(self, pipes_len: usize) -> (Vec<Arc<Json>>, usize) {
        // Both come out in ascending time order (`Reverse` sorts descending, hence `rev`).
        let mut sorted: Vec<Entry> = if self.from_start {
            self.earliest.into_sorted_vec()
        } else {
            self.latest
                .into_sorted_vec()
                .into_iter()
                .map(|r| r.0)
                .rev()
                .collect()
        };
        // The first step is already applied by what was kept; the rest run on the kept list.
        let mut total = self.seen;
        for (i, step) in self.chain.iter().enumerate() {
            if i < pipes_len {
                total = match step {
                    Take::Head(n) | Take::Tail(n) => total.min(*n),
                };
            }
            if i == 0 {
                continue;
            }
            match step {
                Take::Head(n) => sorted.truncate(*n),
                Take::Tail(n) => {
                    let skip = sorted.len().saturating_sub(*n);
                    sorted.drain(..skip);
                }
            }
        }
        (sorted.into_iter().map(|e| e.1).collect(), total)
    }
}

/// Events buffered in front of a sequence or sample runner, fed to it in time order.
///
/// Elasticsearch sorts every candidate by time before sequencing; holding them all costs memory
/// in proportion to the input (2.5 GB for a million candidates). Instead the caller flushes the
/// buffer whenever it holds [`REORDER_BUDGET`] events (or whatever budget it shares across rules):
/// each flush is sorted and fed, so time-ordered input gives exactly the sorted answer, and an
/// event older than one already fed is still fed but counted in [`Reorder::late`] so the user is
/// told the input was out of order beyond the window.
pub struct Reorder<T> {
    events: Vec<(SortKey, Arc<Json>, u64, T)>,
    last_ts: i64,
    /// Events fed after a later one had been: out of order by more than the buffer.
    pub late: u64,
}

/// Events a single runner's buffer holds before it is sorted and fed.
pub const REORDER_BUDGET: usize = 8_192;

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            events: Vec::new(),
            last_ts: i64::MIN,
            late: 0,
        }
    }
}

impl<T> Reorder<T> {
    pub fn push(&mut self, key: SortKey, doc: Arc<Json>, mask: u64, extra: T) {
        self.events.push((key, doc, mask, extra));
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Sorts what is held and hands it to `feed` in order, counting late events.
    pub fn flush(&mut self, mut feed: impl FnMut(SortKey, Arc<Json>, u64, T)) {
        self.events.sort_by(|x, y| x.0.cmp_key(&y.0));
        for (key, doc, mask, extra) in self.events.drain(..) {
            if key.ts < self.last_ts {
                self.late += 1;
            }
            self.last_ts = self.last_ts.max(key.ts);
            feed(key, doc, mask, extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chain: Vec<Take>, pipes: usize, order: &[i64]) -> (Vec<i64>, usize) {
        let mut w = Window::new(chain);
        for (i, ts) in order.iter().enumerate() {
            let key = SortKey {
                ts: *ts,
                tiebreaker: None,
                ordinal: i as u64,
            };
            w.push(key, Arc::new(Json::from(*ts)));
        }
        let (docs, total) = w.finish(pipes);
        (docs.iter().map(|d| d.as_i64().unwrap()).collect(), total)
    }

    #[test]
    fn windows_equal_sorting_everything_then_slicing() {
        let input = [5, 1, 9, 3, 7, 2, 8, 6, 4, 0];
        assert_eq!(run(vec![Take::Tail(3)], 0, &input), (vec![7, 8, 9], 10));
        assert_eq!(run(vec![Take::Head(3)], 0, &input), (vec![0, 1, 2], 10));
        assert_eq!(
            run(vec![Take::Head(6), Take::Tail(2)], 1, &input),
            (vec![4, 5], 6)
        );
        assert_eq!(
            run(
                vec![Take::Tail(6), Take::Head(2), Take::Tail(10)],
                2,
                &input
            ),
            (vec![4, 5], 2)
        );
        assert_eq!(run(vec![Take::Tail(0)], 0, &input), (vec![], 10));
    }
}

//! Queries (event, sequence, join, sample) and the runner that executes them over a stream.

use crate::eval::{eval, is_true, EvalCtx};
use crate::expr::{Expr, LineageKind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use unithunt_event::{lookup_one, FieldPath, Json, Value};

/// Bit `i` set: stage `i` matched. Bit [`UNTIL_BIT`]: the `until` stage matched.
pub type StageMask = u64;
const UNTIL_BIT: u32 = 63;
/// The most stages a sequence may have (after `runs` expansion).
pub const MAX_STAGES: usize = 62;

/// One bracketed query of a sequence, join or sample.
#[derive(Clone, Debug)]
pub struct Stage {
    pub filter: Expr,
    /// Join keys: the query-level `by` first, then the stage's own.
    pub keys: Vec<Expr>,
    /// Per key: whether null is an acceptable value (`?field`, or the legacy dialect). A stage whose
    /// non-nullable key is null does not take part.
    pub nullable: Vec<bool>,
    /// `![..]`: a missing-event stage.
    pub missing: bool,
    /// Legacy `fork=true`: advancing does not consume the pending sequence.
    pub fork: bool,
    /// Each value of a multi-valued key field is a key of its own (Elasticsearch); otherwise
    /// (the legacy dialect, as the Python engine) an array is one value.
    pub multi_valued_keys: bool,
}

#[derive(Clone, Debug)]
pub struct SequenceSpec {
    pub stages: Vec<Stage>,
    pub until: Option<Stage>,
    /// In nanoseconds, measured from the first event.
    pub maxspan: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct SampleSpec {
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug)]
pub enum QueryKind {
    Events(Expr),
    Sequence(SequenceSpec),
    /// Legacy `join`: like a sequence without order.
    Join(SequenceSpec),
    Sample(SampleSpec),
}

#[derive(Clone, Debug)]
pub enum Pipe {
    Head(usize),
    Tail(usize),
    Filter(Expr),
    Unique(Vec<Expr>),
    UniqueCount(Vec<Expr>),
    Count(Vec<Expr>),
    /// Sorts by the keys; strings fold case when asked (legacy case-insensitive mode).
    Sort(Vec<Expr>, crate::expr::Fold),
}

/// A compiled query.
#[derive(Clone, Debug)]
pub struct Query {
    pub kind: QueryKind,
    pub pipes: Vec<Pipe>,
    /// Subqueries of `descendant of`/`child of`/`event of`, inner ones first.
    pub lineage: Vec<Expr>,
    /// Fields naming an event's process and its parent, for lineage.
    pub pid_field: FieldPath,
    pub ppid_field: FieldPath,
}

impl Query {
    /// An event query with no pipes.
    pub fn events(filter: Expr) -> Query {
        Query {
            kind: QueryKind::Events(filter),
            pipes: Vec::new(),
            lineage: Vec::new(),
            pid_field: FieldPath::parse("process.entity_id"),
            ppid_field: FieldPath::parse("process.parent.entity_id"),
        }
    }

    /// The stage predicates evaluated on every event, in mask-bit order.
    pub fn stage_filters(&self) -> Vec<&Expr> {
        match &self.kind {
            QueryKind::Events(e) => vec![e],
            QueryKind::Sequence(s) | QueryKind::Join(s) => {
                s.stages.iter().map(|st| &st.filter).collect()
            }
            QueryKind::Sample(s) => s.stages.iter().map(|st| &st.filter).collect(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Cap on pending partial sequences; past it the oldest are evicted and counted.
    pub max_pending: usize,
    /// `max_samples_per_key` of `_eql/search`.
    pub max_samples_per_key: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_pending: 100_000,
            max_samples_per_key: 1,
        }
    }
}

/// One result.
#[derive(Clone, Debug)]
pub enum Output {
    Event(Arc<Json>),
    /// A sequence, join or sample: `None` marks a missing event.
    Sequence {
        join_keys: Vec<Json>,
        events: Vec<Option<Arc<Json>>>,
    },
}

impl Output {
    /// The events of the result, in order (missing ones skipped).
    pub fn events(&self) -> Vec<&Arc<Json>> {
        match self {
            Output::Event(e) => vec![e],
            Output::Sequence { events, .. } => events.iter().flatten().collect(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Partial sequences dropped because the pending cap was reached.
    pub evicted: u64,
    /// Partial sequences dropped because they outlived `maxspan`.
    pub expired: u64,
    /// Join keys of events with more multi-valued key combinations than
    /// [`MAX_KEY_COMBINATIONS`], not joined on.
    pub keys_cut: u64,
}

#[derive(Debug)]
pub struct RunResult {
    pub outputs: Vec<Output>,
    pub stats: RunStats,
}

/// A hashable join key value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Other(String),
}

impl Key {
    fn of(v: &Value<'_>) -> Key {
        match v {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Int(i) => Key::Int(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Key::Int(*f as i64),
            Value::Float(f) => Key::Float(f.to_bits()),
            Value::Str(s) => Key::Str(s.to_string()),
            Value::Json(j) => Key::Other(j.to_string()),
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Key::Null => Json::Null,
            Key::Bool(b) => Json::Bool(*b),
            Key::Int(i) => Json::from(*i),
            Key::Float(bits) => Json::from(f64::from_bits(*bits)),
            Key::Str(s) => Json::String(s.clone()),
            Key::Other(s) => serde_json::from_str(s).unwrap_or(Json::Null),
        }
    }
}

#[derive(Clone, Debug)]
struct Seen {
    doc: Arc<Json>,
    ts: i64,
    ordinal: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    events: Vec<Seen>,
}

impl Pending {
    fn start(&self) -> i64 {
        self.events[0].ts
    }
}

/// Where a missing-event stage sits among the positive stages.
#[derive(Clone, Debug)]
struct MissingSlot {
    stage: usize,
    /// Index in the chain of the positive stage before it; `None` when leading.
    after: Option<usize>,
}

/// When (timestamp, input position) events of a missing-event stage were seen, oldest first.
type SeenTimes = VecDeque<(i64, u64)>;

struct SequenceState {
    /// Indices of positive stages, in order.
    chain: Vec<usize>,
    missing: Vec<MissingSlot>,
    /// `pending[i]`: partial sequences that have matched chain stages `0..=i`, by join key.
    pending: Vec<HashMap<Vec<Key>, Pending>>,
    /// Per missing slot: when and where matching events were seen, by key.
    missing_seen: Vec<HashMap<Vec<Key>, SeenTimes>>,
    /// Completed sequences waiting for their trailing missing-event window to close.
    deferred: VecDeque<(Vec<Key>, Pending)>,
    total_pending: usize,
}

struct JoinState {
    slots: HashMap<Vec<Key>, Vec<Option<Arc<Json>>>>,
}

struct SampleState {
    /// Keys in the order they were first seen, for eviction (entries of keys already gone are
    /// skipped when popped).
    order: std::collections::VecDeque<Vec<Key>>,
    /// Per open key, per stage, the candidate events (at most a few each).
    by_key: HashMap<Vec<Key>, Vec<Vec<Arc<Json>>>>,
    /// Keys closed early to keep `by_key` under `max_pending`, with the samples they made; later
    /// events for them are ignored, which changes nothing once a key has its
    /// `max_samples_per_key` samples (the only way a key closes with samples).
    closed: HashMap<Vec<Key>, Vec<Output>>,
}

enum State {
    Events,
    Sequence(SequenceState),
    Join(JoinState),
    Sample(SampleState),
}

#[derive(Default)]
struct LineageState {
    parent: HashMap<Key, Key>,
    matched: Vec<HashSet<Key>>,
}

impl LineageState {
    fn holds(&self, kind: LineageKind, query: usize, pid: &Key) -> bool {
        let Some(set) = self.matched.get(query) else {
            return false;
        };
        match kind {
            LineageKind::EventOf => set.contains(pid),
            LineageKind::ChildOf => self.parent.get(pid).is_some_and(|p| set.contains(p)),
            LineageKind::DescendantOf => {
                let mut cur = pid;
                // Bounded walk: ancestry loops in bad data must not hang.
                for _ in 0..512 {
                    match self.parent.get(cur) {
                        Some(p) if p != cur => {
                            if set.contains(p) {
                                return true;
                            }
                            cur = p;
                        }
                        _ => return false,
                    }
                }
                false
            }
        }
    }
}

/// Executes a [`Query`] over events given in order.
pub struct Runner<'q> {
    query: &'q Query,
    opts: RunOptions,
    state: State,
    lineage: LineageState,
    outputs: Vec<Output>,
    /// Completed sequences with the input position of their last event: Elasticsearch orders
    /// completed sequences by the ordinal of their last match (`Sequence::compareTo`), which a
    /// deferred trailing-missing check must not disturb.
    sequences: Vec<(u64, Output)>,
    stats: RunStats,
    ordinal: u64,
    last_ts: i64,
}

impl<'q> Runner<'q> {
    pub fn new(query: &'q Query, opts: RunOptions) -> Runner<'q> {
        let state = match &query.kind {
            QueryKind::Events(_) => State::Events,
            QueryKind::Sequence(spec) => {
                let mut chain = Vec::new();
                let mut missing = Vec::new();
                for (i, st) in spec.stages.iter().enumerate() {
                    if st.missing {
                        missing.push(MissingSlot {
                            stage: i,
                            after: chain.len().checked_sub(1),
                        });
                    } else {
                        chain.push(i);
                    }
                }
                State::Sequence(SequenceState {
                    pending: vec![HashMap::new(); chain.len()],
                    missing_seen: vec![HashMap::new(); missing.len()],
                    chain,
                    missing,
                    deferred: VecDeque::new(),
                    total_pending: 0,
                })
            }
            QueryKind::Join(_) => State::Join(JoinState {
                slots: HashMap::new(),
            }),
            QueryKind::Sample(_) => State::Sample(SampleState {
                order: Default::default(),
                by_key: HashMap::new(),
                closed: HashMap::new(),
            }),
        };
        Runner {
            query,
            opts,
            state,
            lineage: LineageState {
                parent: HashMap::new(),
                matched: vec![HashSet::new(); query.lineage.len()],
            },
            outputs: Vec::new(),
            sequences: Vec::new(),
            stats: RunStats::default(),
            ordinal: 0,
            last_ts: i64::MIN,
        }
    }

    /// Evaluates every stage predicate on the event. With lineage subqueries, this also records the
    /// event in the process table, so call it on every event in stream order.
    pub fn evaluate(&mut self, doc: &Json) -> StageMask {
        let pid = if self.query.lineage.is_empty() {
            None
        } else {
            let pid = lookup_one(doc, &self.query.pid_field).map(|j| Key::of(&Value::from_json(j)));
            let ppid =
                lookup_one(doc, &self.query.ppid_field).map(|j| Key::of(&Value::from_json(j)));
            if let (Some(p), Some(pp)) = (&pid, ppid) {
                self.lineage.parent.insert(p.clone(), pp);
            }
            if let Some(p) = &pid {
                for i in 0..self.query.lineage.len() {
                    let lineage = &self.lineage;
                    let f = |k: LineageKind, q: usize| lineage.holds(k, q, p);
                    let hit = is_true(
                        &self.query.lineage[i],
                        &mut EvalCtx::new(doc).with_lineage(&f),
                    );
                    if hit {
                        self.lineage.matched[i].insert(p.clone());
                    }
                }
            }
            pid
        };
        let lineage = &self.lineage;
        let f = |k: LineageKind, q: usize| pid.as_ref().is_some_and(|p| lineage.holds(k, q, p));
        let mut mask = 0;
        let mut check = |bit: u32, e: &Expr| {
            if is_true(e, &mut EvalCtx::new(doc).with_lineage(&f)) {
                mask |= 1u64 << bit;
            }
        };
        match &self.query.kind {
            QueryKind::Events(e) => check(0, e),
            QueryKind::Sequence(s) | QueryKind::Join(s) => {
                for (i, st) in s.stages.iter().enumerate() {
                    check(i as u32, &st.filter);
                }
                if let Some(u) = &s.until {
                    check(UNTIL_BIT, &u.filter);
                }
            }
            QueryKind::Sample(s) => {
                for (i, st) in s.stages.iter().enumerate() {
                    check(i as u32, &st.filter);
                }
            }
        }
        mask
    }

    /// Feeds an event with its stage mask; events must come in time order. `ts` is in nanoseconds.
    pub fn advance(&mut self, doc: Arc<Json>, ts: i64, mask: StageMask) {
        self.ordinal += 1;
        self.last_ts = self.last_ts.max(ts);
        if mask == 0 {
            if let State::Sequence(_) = self.state {
                self.release_deferred(false);
            }
            return;
        }
        let seen = Seen {
            doc,
            ts,
            ordinal: self.ordinal,
        };
        match &self.query.kind {
            QueryKind::Events(_) => self.outputs.push(Output::Event(seen.doc)),
            QueryKind::Sequence(spec) => self.advance_sequence(spec, seen, mask),
            QueryKind::Join(spec) => self.advance_join(spec, seen, mask),
            QueryKind::Sample(spec) => self.advance_sample(spec, seen, mask),
        }
    }

    /// The join keys an event takes part under (none: it joins nothing). As Elasticsearch does
    /// (elastic/elasticsearch#89965, "EQL sequences: support join on multi-values"), each value
    /// of a multi-valued key field is a key of its own, several multi-valued fields give the
    /// cartesian product, a value repeated in one array counts once, and null elements are not
    /// values. A key with no value is null: joined on only when optional (`?field`). At most
    /// [`MAX_KEY_COMBINATIONS`] keys per event (a crafted event with two long arrays must not
    /// multiply the state); the rest are counted in [`RunStats::keys_cut`].
    fn keys_of(stage: &Stage, doc: &Json, stats: &mut RunStats) -> Vec<Vec<Key>> {
        let mut combos: Vec<Vec<Key>> = vec![Vec::with_capacity(stage.keys.len())];
        for (i, k) in stage.keys.iter().enumerate() {
            let v = eval(k, &mut EvalCtx::new(doc));
            let mut values = Vec::new();
            if stage.multi_valued_keys {
                key_values(&v, &mut values);
            } else if !v.is_null() {
                values.push(Key::of(&v));
            }
            if values.is_empty() {
                if !stage.nullable.get(i).copied().unwrap_or(false) {
                    return Vec::new();
                }
                values.push(Key::Null);
            }
            if values.len() == 1 {
                for c in &mut combos {
                    c.push(values[0].clone());
                }
                continue;
            }
            let mut next = Vec::with_capacity(combos.len() * values.len());
            'product: for c in &combos {
                for value in &values {
                    if next.len() == MAX_KEY_COMBINATIONS {
                        stats.keys_cut += 1;
                        break 'product;
                    }
                    let mut key = c.clone();
                    key.push(value.clone());
                    next.push(key);
                }
            }
            combos = next;
        }
        combos
    }

    fn advance_sequence(&mut self, spec: &SequenceSpec, seen: Seen, mask: StageMask) {
        let State::Sequence(st) = &mut self.state else {
            return;
        };
        if let (true, Some(until)) = (mask & (1 << UNTIL_BIT) != 0, &spec.until) {
            for key in Self::keys_of(until, &seen.doc, &mut self.stats) {
                for map in st.pending.iter_mut() {
                    if map.remove(&key).is_some() {
                        st.total_pending -= 1;
                    }
                }
            }
        }
        for (m, slot) in st.missing.iter().enumerate() {
            if mask & (1 << slot.stage) != 0 {
                for key in Self::keys_of(&spec.stages[slot.stage], &seen.doc, &mut self.stats) {
                    st.missing_seen[m]
                        .entry(key)
                        .or_default()
                        .push_back((seen.ts, seen.ordinal));
                }
            }
        }
        let last = st.chain.len() - 1;
        let mut completed = Vec::new();
        for pos in (0..st.chain.len()).rev() {
            let stage_idx = st.chain[pos];
            if mask & (1 << stage_idx) == 0 {
                continue;
            }
            let stage = &spec.stages[stage_idx];
            for key in Self::keys_of(stage, &seen.doc, &mut self.stats) {
                let next = if pos == 0 {
                    Pending {
                        events: vec![seen.clone()],
                    }
                } else {
                    let prev = if stage.fork {
                        st.pending[pos - 1].get(&key).cloned()
                    } else {
                        let p = st.pending[pos - 1].remove(&key);
                        if p.is_some() {
                            st.total_pending -= 1;
                        }
                        p
                    };
                    let Some(mut p) = prev else { continue };
                    if let Some(span) = spec.maxspan {
                        if seen.ts.saturating_sub(p.start()) > span {
                            self.stats.expired += 1;
                            continue;
                        }
                    }
                    p.events.push(seen.clone());
                    p
                };
                if pos == last {
                    completed.push((key, next));
                } else if st.pending[pos].insert(key, next).is_none() {
                    st.total_pending += 1;
                }
            }
        }
        // Emit in the order the sequences began.
        completed.sort_by_key(|(_, p)| p.events[0].ordinal);
        let trailing = st.missing.iter().any(|m| m.after == Some(last));
        for (key, p) in completed {
            if trailing {
                st.deferred.push_back((key, p));
            } else if let Some(out) = Self::finish_sequence(st, spec, &key, &p) {
                self.sequences
                    .push((p.events[p.events.len() - 1].ordinal, out));
            }
        }
        let over_cap = st.total_pending > self.opts.max_pending;
        // Deferred sequences are judged before any clean-up forgets the missing events they need.
        self.release_deferred(false);
        if over_cap {
            self.evict(spec);
        }
        if self.ordinal.is_multiple_of(4096) {
            self.expire(spec);
        }
    }

    /// Checks missing-event constraints and builds the output, or `None` when a missing event was
    /// in fact seen.
    fn finish_sequence(
        st: &SequenceState,
        spec: &SequenceSpec,
        key: &[Key],
        p: &Pending,
    ) -> Option<Output> {
        // Elasticsearch's rules (SequenceMatcher, missing events): a middle missing event must not
        // occur between its neighbours; a leading one not within maxspan before the last positive
        // event; a trailing one not within maxspan after the first. With both leading and trailing
        // missing events, the sequence is rejected only when a leading and a trailing hit fall
        // within maxspan of each other.
        let span = spec.maxspan.unwrap_or(i64::MAX);
        let first = &p.events[0];
        let lastev = &p.events[p.events.len() - 1];
        let mut leading_hits: Vec<i64> = Vec::new();
        let mut trailing_hits: Vec<i64> = Vec::new();
        let has_leading = st.missing.iter().any(|m| m.after.is_none());
        let has_trailing = st
            .missing
            .iter()
            .any(|m| m.after == Some(p.events.len() - 1));
        for (m, slot) in st.missing.iter().enumerate() {
            let Some(seen) = st.missing_seen[m].get(key) else {
                continue;
            };
            for &(ts, ord) in seen {
                match slot.after {
                    None => {
                        if ord < first.ordinal && ts >= lastev.ts.saturating_sub(span) {
                            leading_hits.push(ts);
                        }
                    }
                    Some(a) if a + 1 == p.events.len() => {
                        if ord > lastev.ordinal && ts <= first.ts.saturating_add(span) {
                            trailing_hits.push(ts);
                        }
                    }
                    Some(a) => {
                        if ord > p.events[a].ordinal && ord < p.events[a + 1].ordinal {
                            return None;
                        }
                    }
                }
            }
        }
        let rejected = match (has_leading, has_trailing) {
            (true, true) => leading_hits
                .iter()
                .any(|l| trailing_hits.iter().any(|t| t.saturating_sub(*l) <= span)),
            _ => !leading_hits.is_empty() || !trailing_hits.is_empty(),
        };
        if rejected {
            return None;
        }
        let mut events: Vec<Option<Arc<Json>>> = vec![None; spec.stages.len()];
        for (pos, stage_idx) in st.chain.iter().enumerate() {
            events[*stage_idx] = Some(p.events[pos].doc.clone());
        }
        Some(Output::Sequence {
            join_keys: key.iter().map(Key::to_json).collect(),
            events,
        })
    }

    fn release_deferred(&mut self, all: bool) {
        let QueryKind::Sequence(spec) = &self.query.kind else {
            return;
        };
        let State::Sequence(st) = &mut self.state else {
            return;
        };
        let span = spec.maxspan.unwrap_or(i64::MAX);
        while let Some((_, p)) = st.deferred.front() {
            if !all && p.start().saturating_add(span) >= self.last_ts {
                break;
            }
            let (key, p) = st.deferred.pop_front().expect("front exists");
            if let Some(out) = Self::finish_sequence(st, spec, &key, &p) {
                self.sequences
                    .push((p.events[p.events.len() - 1].ordinal, out));
            }
        }
    }

    fn expire(&mut self, spec: &SequenceSpec) {
        let Some(span) = spec.maxspan else { return };
        let State::Sequence(st) = &mut self.state else {
            return;
        };
        let now = self.last_ts;
        let mut dropped = 0;
        for map in st.pending.iter_mut() {
            let before = map.len();
            map.retain(|_, p| now.saturating_sub(p.start()) <= span);
            dropped += before - map.len();
        }
        for seen in st.missing_seen.iter_mut() {
            seen.retain(|_, q| {
                while q
                    .front()
                    .is_some_and(|&(ts, _)| now.saturating_sub(ts) > span.saturating_mul(2))
                {
                    q.pop_front();
                }
                !q.is_empty()
            });
        }
        st.total_pending -= dropped;
        self.stats.expired += dropped as u64;
    }

    fn evict(&mut self, spec: &SequenceSpec) {
        self.expire(spec);
        let State::Sequence(st) = &mut self.state else {
            return;
        };
        if st.total_pending <= self.opts.max_pending {
            return;
        }
        // Drop the oldest partial sequences down to 90% of the cap, and say so in the stats.
        let target = self.opts.max_pending - self.opts.max_pending / 10;
        let mut starts: Vec<u64> = st
            .pending
            .iter()
            .flat_map(|m| m.values().map(|p| p.events[0].ordinal))
            .collect();
        starts.sort_unstable();
        let cut = starts[st.total_pending - target - 1];
        let mut dropped = 0;
        for map in st.pending.iter_mut() {
            let before = map.len();
            map.retain(|_, p| p.events[0].ordinal > cut);
            dropped += before - map.len();
        }
        st.total_pending -= dropped;
        self.stats.evicted += dropped as u64;
    }

    fn advance_join(&mut self, spec: &SequenceSpec, seen: Seen, mask: StageMask) {
        let State::Join(st) = &mut self.state else {
            return;
        };
        if let (true, Some(until)) = (mask & (1 << UNTIL_BIT) != 0, &spec.until) {
            for key in Self::keys_of(until, &seen.doc, &mut self.stats) {
                st.slots.remove(&key);
            }
        }
        for (i, stage) in spec.stages.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            for key in Self::keys_of(stage, &seen.doc, &mut self.stats) {
                let slots = st
                    .slots
                    .entry(key.clone())
                    .or_insert_with(|| vec![None; spec.stages.len()]);
                if slots[i].is_none() {
                    slots[i] = Some(seen.doc.clone());
                }
                if slots.iter().all(Option::is_some) {
                    let events = st.slots.remove(&key).unwrap_or_default();
                    self.outputs.push(Output::Sequence {
                        join_keys: key.iter().map(Key::to_json).collect(),
                        events,
                    });
                }
            }
        }
    }

    fn advance_sample(&mut self, spec: &SampleSpec, seen: Seen, mask: StageMask) {
        let State::Sample(st) = &mut self.state else {
            return;
        };
        // Room for distinct documents: an event may match several filters.
        let cap = self.opts.max_samples_per_key.max(1) + spec.stages.len();
        for (i, stage) in spec.stages.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            for key in Self::keys_of(stage, &seen.doc, &mut self.stats) {
                if st.closed.contains_key(&key) {
                    continue;
                }
                if !st.by_key.contains_key(&key) {
                    st.order.push_back(key.clone());
                }
                let per_stage = st
                    .by_key
                    .entry(key)
                    .or_insert_with(|| vec![Vec::new(); spec.stages.len()]);
                if per_stage[i].len() < cap {
                    per_stage[i].push(seen.doc.clone());
                }
            }
        }
        // The pending cap holds for samples too: past it the oldest key is closed, keeping its
        // samples if it has all it may have, evicted (and counted) otherwise.
        let wanted = self.opts.max_samples_per_key.max(1);
        while st.by_key.len() > self.opts.max_pending.max(1) {
            let Some(oldest) = st.order.pop_front() else {
                break;
            };
            let Some(per_stage) = st.by_key.remove(&oldest) else {
                continue;
            };
            let samples = samples_of(&oldest, &per_stage, wanted);
            if samples.len() == wanted {
                st.closed.insert(oldest, samples);
            } else {
                self.stats.evicted += 1;
            }
        }
    }

    /// The results completed so far, taken out (for a live stream, which never ends). Sequences
    /// waiting on a trailing missing-event check stay until their window closes. Only for
    /// queries without pipes: pipes (`head`, `tail`, `filter`) need the whole stream.
    pub fn take_completed(&mut self) -> Vec<Output> {
        let mut out = std::mem::take(&mut self.outputs);
        if let State::Sequence(_) = self.state {
            self.sequences.sort_by_key(|(last, _)| *last);
            out.extend(self.sequences.drain(..).map(|(_, o)| o));
        }
        out
    }

    /// Ends the stream: closes pending windows, applies the pipes and returns the results.
    pub fn finish(mut self) -> RunResult {
        if let State::Sequence(_) = self.state {
            self.release_deferred(true);
            self.sequences.sort_by_key(|(last, _)| *last);
            self.outputs
                .extend(self.sequences.drain(..).map(|(_, o)| o));
        }
        if let State::Sample(st) = &mut self.state {
            // Elasticsearch returns samples ordered by join key, each with distinct documents.
            let cap = self.opts.max_samples_per_key.max(1);
            let mut keyed: Vec<(Vec<Key>, Vec<Output>)> = std::mem::take(&mut st.closed)
                .into_iter()
                .chain(
                    std::mem::take(&mut st.by_key)
                        .into_iter()
                        .map(|(key, per_stage)| {
                            let samples = samples_of(&key, &per_stage, cap);
                            (key, samples)
                        }),
                )
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            self.outputs
                .extend(keyed.into_iter().flat_map(|(_, samples)| samples));
        }
        let outputs = apply_pipes(&self.query.pipes, self.outputs);
        RunResult {
            outputs,
            stats: self.stats,
        }
    }
}

/// Up to `cap` samples of one key: one event per stage, no document used twice.
fn samples_of(key: &[Key], per_stage: &[Vec<Arc<Json>>], cap: usize) -> Vec<Output> {
    let mut out = Vec::new();
    let mut used: Vec<&Arc<Json>> = Vec::new();
    let mut cursor = vec![0usize; per_stage.len()];
    'samples: for _ in 0..cap {
        let mut events = Vec::with_capacity(per_stage.len());
        for (i, cands) in per_stage.iter().enumerate() {
            while cursor[i] < cands.len()
                && (used.iter().any(|u| Arc::ptr_eq(u, &cands[cursor[i]]))
                    || events
                        .iter()
                        .any(|e: &Arc<Json>| Arc::ptr_eq(e, &cands[cursor[i]])))
            {
                cursor[i] += 1;
            }
            let Some(e) = cands.get(cursor[i]) else {
                break 'samples;
            };
            events.push(e.clone());
            cursor[i] += 1;
        }
        used.extend(
            per_stage
                .iter()
                .zip(&cursor)
                .filter_map(|(c, &i)| c.get(i.wrapping_sub(1))),
        );
        out.push(Output::Sequence {
            join_keys: key.iter().map(Key::to_json).collect(),
            events: events.into_iter().map(Some).collect(),
        });
    }
    out
}

/// The document a pipe expression sees: the event itself, or for a sequence the first event's
/// fields plus `events` (so `events[1].field` works).
fn pipe_view(out: &Output) -> Arc<Json> {
    match out {
        Output::Event(e) => e.clone(),
        Output::Sequence { events, join_keys } => {
            let mut base = match events.iter().flatten().next().map(|e| e.as_ref()) {
                Some(Json::Object(m)) => m.clone(),
                _ => serde_json::Map::new(),
            };
            base.insert(
                "events".into(),
                Json::Array(
                    events
                        .iter()
                        .map(|e| e.as_ref().map(|d| (**d).clone()).unwrap_or(Json::Null))
                        .collect(),
                ),
            );
            base.insert("join_keys".into(), Json::Array(join_keys.clone()));
            Arc::new(Json::Object(base))
        }
    }
}

/// Join keys an event may take part under at most.
pub const MAX_KEY_COMBINATIONS: usize = 256;

/// The distinct non-null values of a key field, in order: an array's elements (nested arrays
/// flattened, as Elasticsearch's doc values are), or the one value.
fn key_values(v: &Value<'_>, out: &mut Vec<Key>) {
    fn walk(j: &Json, out: &mut Vec<Key>, depth: usize) {
        match j {
            Json::Null => {}
            Json::Array(items) if depth < 8 => {
                for item in items {
                    walk(item, out, depth + 1);
                }
            }
            other => {
                let k = Key::of(&Value::from_json(other));
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    match v {
        Value::Null => {}
        Value::Json(j) => walk(j, out, 0),
        other => out.push(Key::of(other)),
    }
}

fn key_of(exprs: &[Expr], doc: &Json) -> Vec<Key> {
    exprs
        .iter()
        .map(|e| Key::of(&eval(e, &mut EvalCtx::new(doc))))
        .collect()
}

fn apply_pipes(pipes: &[Pipe], mut outs: Vec<Output>) -> Vec<Output> {
    for pipe in pipes {
        outs = match pipe {
            Pipe::Head(n) => {
                outs.truncate(*n);
                outs
            }
            Pipe::Tail(n) => {
                let skip = outs.len().saturating_sub(*n);
                outs.split_off(skip)
            }
            Pipe::Filter(e) => outs
                .into_iter()
                .filter(|o| is_true(e, &mut EvalCtx::new(&pipe_view(o))))
                .collect(),
            Pipe::Unique(exprs) => {
                let mut seen = HashSet::new();
                outs.into_iter()
                    .filter(|o| seen.insert(key_of(exprs, &pipe_view(o))))
                    .collect()
            }
            Pipe::UniqueCount(exprs) | Pipe::Count(exprs) => {
                let total = outs.len();
                let mut order: Vec<Vec<Key>> = Vec::new();
                let mut first: HashMap<Vec<Key>, (Output, usize)> = HashMap::new();
                for o in outs {
                    let k = key_of(exprs, &pipe_view(&o));
                    match first.get_mut(&k) {
                        Some((_, n)) => *n += 1,
                        None => {
                            order.push(k.clone());
                            first.insert(k, (o, 1));
                        }
                    }
                }
                let counting = matches!(pipe, Pipe::Count(_));
                order
                    .into_iter()
                    .map(|k| {
                        let (o, n) = first.remove(&k).expect("key recorded");
                        let percent = n as f64 / total.max(1) as f64;
                        if counting {
                            let mut m = serde_json::Map::new();
                            m.insert("count".into(), Json::from(n));
                            if !exprs.is_empty() {
                                let key: Vec<Json> = k.iter().map(Key::to_json).collect();
                                m.insert(
                                    "key".into(),
                                    if key.len() == 1 {
                                        key[0].clone()
                                    } else {
                                        Json::Array(key)
                                    },
                                );
                                m.insert("percent".into(), Json::from(percent));
                            }
                            Output::Event(Arc::new(Json::Object(m)))
                        } else {
                            annotate(o, n, percent)
                        }
                    })
                    .collect()
            }
            Pipe::Sort(exprs, fold) => {
                let mut keyed: Vec<(Vec<Value<'static>>, Output)> = outs
                    .into_iter()
                    .map(|o| {
                        let view = pipe_view(&o);
                        let k = exprs
                            .iter()
                            .map(|e| eval(e, &mut EvalCtx::new(&view)).into_owned())
                            .collect();
                        (k, o)
                    })
                    .collect();
                keyed.sort_by(|(a, _), (b, _)| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| match (x, y, fold) {
                            (Value::Str(a), Value::Str(b), crate::expr::Fold::Insensitive) => {
                                a.to_lowercase().cmp(&b.to_lowercase())
                            }
                            _ => x.sort_order(y),
                        })
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                keyed.into_iter().map(|(_, o)| o).collect()
            }
        };
    }
    outs
}

fn annotate(o: Output, count: usize, percent: f64) -> Output {
    let add = |doc: &Arc<Json>| {
        let mut d = (**doc).clone();
        if let Json::Object(m) = &mut d {
            m.insert("count".into(), Json::from(count));
            m.insert("percent".into(), Json::from(percent));
        }
        Arc::new(d)
    };
    match o {
        Output::Event(e) => Output::Event(add(&e)),
        Output::Sequence { join_keys, events } => Output::Sequence {
            join_keys,
            events: events.iter().map(|e| e.as_ref().map(add)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{CmpOp, Fold};
    use serde_json::json;

    fn eq(field: &str, v: &str) -> Expr {
        Expr::any_of(
            vec![FieldPath::parse(field)],
            Expr::cmp(
                CmpOp::Eq,
                Expr::Slot(0),
                Expr::Lit(Value::Str(v.to_string().into())),
                Fold::Sensitive,
            ),
        )
    }

    fn two_stage(maxspan: Option<i64>) -> Query {
        let stage = |kind: &str| Stage {
            filter: eq("kind", kind),
            keys: vec![Expr::Field(FieldPath::parse("key"))],
            nullable: vec![false],
            missing: false,
            fork: false,
            multi_valued_keys: true,
        };
        Query {
            kind: QueryKind::Sequence(SequenceSpec {
                stages: vec![stage("a"), stage("b")],
                until: None,
                maxspan,
            }),
            ..Query::events(Expr::Lit(Value::Bool(true)))
        }
    }

    fn feed(r: &mut Runner<'_>, kind: &str, key: i64, ts: i64) {
        let doc = Arc::new(json!({"kind": kind, "key": key}));
        let mask = r.evaluate(&doc);
        r.advance(doc, ts, mask);
    }

    #[test]
    fn pending_cap_evicts_oldest_and_reports_it() {
        let q = two_stage(None);
        let mut r = Runner::new(
            &q,
            RunOptions {
                max_pending: 100,
                ..RunOptions::default()
            },
        );
        for k in 0..150 {
            feed(&mut r, "a", k, k);
        }
        // The newest keys survived, the oldest were evicted.
        feed(&mut r, "b", 149, 200);
        feed(&mut r, "b", 0, 201);
        let res = r.finish();
        assert_eq!(
            res.outputs.len(),
            1,
            "only the surviving partial sequence completes"
        );
        assert!(
            res.stats.evicted >= 50,
            "evictions are counted: {:?}",
            res.stats
        );
    }

    #[test]
    fn maxspan_expires_partial_sequences() {
        let q = two_stage(Some(10));
        let mut r = Runner::new(&q, RunOptions::default());
        feed(&mut r, "a", 1, 0);
        feed(&mut r, "b", 1, 11);
        feed(&mut r, "a", 2, 20);
        feed(&mut r, "b", 2, 30);
        let res = r.finish();
        assert_eq!(
            res.outputs.len(),
            1,
            "exactly maxspan apart is allowed, one more is not"
        );
        assert_eq!(res.stats.expired, 1);
    }
}

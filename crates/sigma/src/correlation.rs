//! Sigma correlation rules (specification v2.1): `event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, `value_sum`, `value_avg`, `value_percentile`, per `group-by` group, within a
//! sliding `timespan`, with `aliases` (a group-by name read from a different field per rule).
//!
//! [`CorrelationState`] is fed, in time order, the matches of the rules a correlation refers to (a
//! correlation may refer to another correlation: chaining), and says when the correlation fires.
//! After firing, the group's window starts afresh, so one burst raises one alert.

use crate::load::{scalar_text, Correlation};
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, VecDeque};

/// A correlation ready to run.
#[derive(Clone, Debug)]
pub struct CorrelationSpec {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub kind: Kind,
    /// The rules (ids or names) it correlates, in order (the order matters for `temporal_ordered`).
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan_ms: i64,
    /// Bounds on the measured value, all of which must hold.
    pub condition: Vec<(Bound, f64)>,
    /// The field `value_*` kinds measure.
    pub field: Option<String>,
    /// Alias → (rule id or name → field of that rule's events).
    pub aliases: HashMap<String, HashMap<String, String>>,
    /// The event field `field` names in the events of each rule (id or name), where the
    /// rule's field mapping renames it (see [`CorrelationSpec::map_fields`]).
    pub field_per_rule: HashMap<String, String>,
    /// Also alert on the referenced rules themselves.
    pub generate: bool,
    pub level: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Bound {
    fn holds(self, v: f64, t: f64) -> bool {
        match self {
            Bound::Gt => v > t,
            Bound::Gte => v >= t,
            Bound::Lt => v < t,
            Bound::Lte => v <= t,
            Bound::Eq => v == t,
            Bound::Neq => v != t,
        }
    }
}

/// `90m`, `1h`, `30s`, `2d` (also `w`, `M`, `y` as pySigma reads them) in milliseconds.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let per = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(per).filter(|&ms| ms > 0)
}

impl CorrelationSpec {
    /// Checks a loaded correlation and makes it runnable; says what is wrong otherwise.
    pub fn from_doc(c: &Correlation) -> Result<CorrelationSpec, String> {
        let kind = match c.kind.as_str() {
            "event_count" => Kind::EventCount,
            "value_count" => Kind::ValueCount,
            "temporal" => Kind::Temporal,
            "temporal_ordered" => Kind::TemporalOrdered,
            "value_sum" => Kind::ValueSum,
            "value_avg" => Kind::ValueAvg,
            "value_percentile" => Kind::ValuePercentile,
            other => return Err(format!("unknown correlation type `{other}`")),
        };
        let timespan_ms = c
            .timespan
            .as_deref()
            .and_then(parse_timespan)
            .ok_or("`timespan` must be a number and a unit (s, m, h, d), e.g. `90m`")?;
        let mut condition = Vec::new();
        let mut field = None;
        if let Some(Json::Object(m)) = &c.condition {
            for (k, v) in m {
                let b = match k.as_str() {
                    "gt" => Bound::Gt,
                    "gte" => Bound::Gte,
                    "lt" => Bound::Lt,
                    "lte" => Bound::Lte,
                    "eq" => Bound::Eq,
                    "neq" => Bound::Neq,
                    "field" => {
                        field = Some(match v {
                            Json::Array(a) => {
                                a.iter().map(scalar_text).collect::<Vec<_>>().join(",")
                            }
                            v => scalar_text(v),
                        });
                        continue;
                    }
                    other => return Err(format!("unknown condition `{other}`")),
                };
                let t = v
                    .as_f64()
                    .ok_or_else(|| format!("condition `{k}` needs a number"))?;
                condition.push((b, t));
            }
        }
        let needs_field = matches!(
            kind,
            Kind::ValueCount | Kind::ValueSum | Kind::ValueAvg | Kind::ValuePercentile
        );
        if needs_field && field.is_none() {
            return Err(format!("a {} correlation needs `condition.field`", c.kind));
        }
        if condition.is_empty() && !matches!(kind, Kind::Temporal | Kind::TemporalOrdered) {
            return Err(format!("a {} correlation needs a condition", c.kind));
        }
        let mut aliases = HashMap::new();
        if let Some(Json::Object(a)) = &c.aliases {
            for (alias, per_rule) in a {
                let Json::Object(per_rule) = per_rule else {
                    return Err(format!("alias `{alias}` must map rule names to fields"));
                };
                aliases.insert(
                    alias.clone(),
                    per_rule
                        .iter()
                        .map(|(r, f)| (r.clone(), scalar_text(f)))
                        .collect(),
                );
            }
        }
        Ok(CorrelationSpec {
            title: c.title.clone(),
            id: c.id.clone(),
            name: c.name.clone(),
            kind,
            rules: c.rules.clone(),
            group_by: c.group_by.clone(),
            timespan_ms,
            condition,
            field,
            aliases,
            field_per_rule: HashMap::new(),
            generate: c.generate,
            level: c.level.clone(),
        })
    }

    /// Names Sigma fields in the events of the rules it refers to as their detections do: each
    /// `group-by` name that is not an alias, and `field`, go through the field mapping of each
    /// referred rule (`mapping(rule)`: its log source's mapping, or `None` for a rule that is not
    /// a Sigma detection), as pySigma's processing pipelines map correlation rules' fields.
    pub fn map_fields(&mut self, mapping: &dyn Fn(&str, &str) -> Option<String>) {
        for rule in self.rules.clone() {
            for g in self.group_by.clone() {
                if self
                    .aliases
                    .get(&g)
                    .is_some_and(|per| per.contains_key(&rule))
                {
                    continue;
                }
                if let Some(mapped) = mapping(&rule, &g).filter(|m| *m != g) {
                    self.aliases
                        .entry(g)
                        .or_default()
                        .insert(rule.clone(), mapped);
                }
            }
            if let Some(f) = self.field.clone() {
                if let Some(mapped) = mapping(&rule, &f).filter(|m| *m != f) {
                    self.field_per_rule.insert(rule.clone(), mapped);
                }
            }
        }
    }

    /// The field `field` names in events of a rule known by `rule_keys` (its id, names).
    pub fn value_field<'a>(&'a self, rule_keys: &[&str]) -> Option<&'a str> {
        let f = self.field.as_deref()?;
        Some(
            rule_keys
                .iter()
                .find_map(|k| self.field_per_rule.get(*k))
                .map_or(f, String::as_str),
        )
    }

    /// The field holding group-by name `name` in events of rule `rule` (its id or name).
    pub fn group_field<'a>(&'a self, name: &'a str, rule_keys: &[&str]) -> &'a str {
        self.aliases
            .get(name)
            .and_then(|per| rule_keys.iter().find_map(|k| per.get(*k)))
            .map_or(name, String::as_str)
    }
}

#[derive(Clone, Debug)]
struct Hit {
    ts: i64,
    rule: usize,
    value: Option<String>,
}

/// What a firing correlation reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    pub group: Vec<String>,
    /// The measured value (count, distinct count, sum, average, percentage; distinct rules seen
    /// for the temporal kinds).
    pub value: f64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One group's hits within the time span, with the aggregates the kinds measure kept up to date
/// as hits enter and leave: measuring costs O(1) per event (O(rules) for the temporal kinds),
/// never a pass over the window, which made `value_count` quadratic.
#[derive(Debug, Default)]
struct GroupWindow {
    hits: VecDeque<Hit>,
    /// How many hits in the window carry each value (`value_count`, `value_percentile`).
    values: HashMap<String, u32>,
    /// Hits per referenced rule (`temporal`).
    per_rule: Vec<u32>,
    /// Sum and count of the numeric values (`value_sum`, `value_avg`).
    sum: f64,
    numbers: u32,
}

impl GroupWindow {
    fn push(&mut self, hit: Hit, n_rules: usize) {
        if let Some(v) = &hit.value {
            *self.values.entry(v.clone()).or_default() += 1;
            if let Ok(x) = v.trim().parse::<f64>() {
                self.sum += x;
                self.numbers += 1;
            }
        }
        if self.per_rule.len() < n_rules {
            self.per_rule.resize(n_rules, 0);
        }
        self.per_rule[hit.rule] += 1;
        self.hits.push_back(hit);
    }

    fn pop(&mut self) {
        let Some(hit) = self.hits.pop_front() else {
            return;
        };
        if let Some(v) = &hit.value {
            if let Some(n) = self.values.get_mut(v) {
                *n -= 1;
                if *n == 0 {
                    self.values.remove(v);
                }
            }
            if let Ok(x) = v.trim().parse::<f64>() {
                self.sum -= x;
                self.numbers -= 1;
            }
        }
        self.per_rule[hit.rule] -= 1;
        if self.hits.is_empty() {
            // Recomputed from nothing: a running sum never drifts past an empty window.
            self.sum = 0.0;
        }
    }

    fn clear(&mut self) {
        self.hits.clear();
        self.values.clear();
        self.per_rule.iter_mut().for_each(|n| *n = 0);
        self.sum = 0.0;
        self.numbers = 0;
    }

    fn newest(&self) -> i64 {
        self.hits.back().map_or(i64::MIN, |h| h.ts)
    }
}

/// The running state of one correlation.
#[derive(Debug)]
pub struct CorrelationState {
    pub spec: CorrelationSpec,
    groups: HashMap<Vec<String>, GroupWindow>,
    /// Hits kept at most per group (a window of millions of events is cut, oldest first).
    pub max_per_group: usize,
    /// Groups kept at most: past it, groups whose window has expired go first, then those with
    /// the oldest newest hit, counted in `evicted_groups`.
    pub max_groups: usize,
    /// Groups dropped, with their hits, at the `max_groups` cap.
    pub evicted_groups: u64,
    /// Group count past which expired groups are swept (amortised: it doubles after a sweep).
    next_sweep: usize,
}

/// Groups a correlation keeps by default.
pub const MAX_GROUPS: usize = 100_000;

impl CorrelationState {
    pub fn new(spec: CorrelationSpec) -> CorrelationState {
        CorrelationState {
            spec,
            groups: HashMap::new(),
            max_per_group: 100_000,
            max_groups: MAX_GROUPS,
            evicted_groups: 0,
            next_sweep: 1024,
        }
    }

    /// Groups held now.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// A match of referenced rule number `rule` (index into `spec.rules`) at `ts_ms`, in group
    /// `group`, with the measured field's value. Matches must come in time order.
    pub fn observe(
        &mut self,
        rule: usize,
        ts_ms: i64,
        group: Vec<String>,
        value: Option<String>,
    ) -> Option<Fired> {
        let span = self.spec.timespan_ms;
        let n_rules = self.spec.rules.len();
        if !self.groups.contains_key(&group)
            && self.groups.len() >= self.next_sweep.min(self.max_groups.max(1))
        {
            self.sweep(ts_ms);
        }
        let window = self.groups.entry(group.clone()).or_default();
        while window
            .hits
            .front()
            .is_some_and(|h| h.ts < ts_ms.saturating_sub(span))
        {
            window.pop();
        }
        window.push(
            Hit {
                ts: ts_ms,
                rule,
                value,
            },
            n_rules,
        );
        if window.hits.len() > self.max_per_group {
            window.pop();
        }
        let measured = measure(&self.spec, window)?;
        let holds = self
            .spec
            .condition
            .iter()
            .all(|(b, t)| b.holds(measured, *t));
        if !holds {
            return None;
        }
        let fired = Fired {
            group,
            value: measured,
            first_ms: window.hits.front().map_or(ts_ms, |h| h.ts),
            last_ms: ts_ms,
        };
        window.clear();
        Some(fired)
    }

    /// Drops groups with nothing left in their span; then, past `max_groups`, the groups seen
    /// least recently, down to nine tenths of the cap so the next sweep is some way off.
    fn sweep(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.spec.timespan_ms);
        self.groups
            .retain(|_, w| !w.hits.is_empty() && w.newest() >= horizon);
        if self.groups.len() >= self.max_groups {
            let keep = self.max_groups.max(1) * 9 / 10;
            let mut newest: Vec<i64> = self.groups.values().map(GroupWindow::newest).collect();
            let cut = self.groups.len() - keep;
            let (_, &mut threshold, _) = newest.select_nth_unstable(cut.saturating_sub(1));
            let before = self.groups.len();
            // Ties at the threshold may take a few more than `cut`: still bounded.
            self.groups.retain(|_, w| w.newest() > threshold);
            self.evicted_groups += (before - self.groups.len()) as u64;
        }
        // A cap under 1,024 groups is its own sweep point (`clamp` panics when min > max).
        let cap = self.max_groups.max(1);
        self.next_sweep = (self.groups.len() * 2).clamp(cap.min(1024), cap);
    }
}

/// The value the condition bounds; `None` when a temporal correlation is not complete.
fn measure(spec: &CorrelationSpec, window: &GroupWindow) -> Option<f64> {
    let n_rules = spec.rules.len();
    let hits = &window.hits;
    Some(match spec.kind {
        Kind::EventCount => hits.len() as f64,
        Kind::ValueCount => window.values.len() as f64,
        Kind::Temporal => {
            let distinct = window.per_rule.iter().filter(|n| **n > 0).count();
            // Without a condition, every rule must have matched.
            if spec.condition.is_empty() && distinct < n_rules {
                return None;
            }
            distinct as f64
        }
        Kind::TemporalOrdered => {
            // The rules matched in their order: a subsequence of the hits, greedily. A pass over
            // the window, but only once every rule has a hit in it (before that the answer is
            // known to fall short).
            let all_seen = window.per_rule.iter().filter(|n| **n > 0).count() == n_rules;
            if !all_seen && spec.condition.is_empty() {
                return None;
            }
            let mut next = 0;
            for h in hits {
                if next < n_rules && h.rule == next {
                    next += 1;
                }
            }
            if spec.condition.is_empty() && next < n_rules {
                return None;
            }
            next as f64
        }
        Kind::ValueSum => window.sum,
        Kind::ValueAvg => {
            if window.numbers == 0 {
                return None;
            }
            window.sum / window.numbers as f64
        }
        Kind::ValuePercentile => {
            // The share (percent) of the window's events whose value is the newest event's:
            // `lte: 1` finds a value seen in at most 1% of the group's events (a rare one).
            let last = hits.back()?.value.as_deref()?;
            let same = window.values.get(last).copied().unwrap_or(0);
            100.0 * same as f64 / hits.len() as f64
        }
    })
}

/// The members of a correlation document that [`Correlation`] keeps raw.
pub fn raw_parts(c: &Map<String, Json>) -> (Option<Json>, Option<Json>, bool) {
    (
        c.get("condition").cloned(),
        c.get("aliases").cloned(),
        c.get("generate").and_then(Json::as_bool).unwrap_or(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: &str, rules: &[&str], condition: Json) -> CorrelationSpec {
        let c = Correlation {
            title: "t".into(),
            id: None,
            name: None,
            kind: kind.into(),
            rules: rules.iter().map(|s| s.to_string()).collect(),
            group_by: vec!["host".into()],
            timespan: Some("10m".into()),
            condition: Some(condition),
            aliases: None,
            generate: false,
            level: None,
            origin: "t.yml".into(),
        };
        CorrelationSpec::from_doc(&c).unwrap()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn event_count_fires_once_per_burst_within_the_window() {
        let mut s = CorrelationState::new(spec("event_count", &["a"], json!({"gte": 3})));
        let g = || vec!["h1".to_string()];
        assert!(s.observe(0, 0, g(), None).is_none());
        assert!(s.observe(0, MIN, g(), None).is_none());
        // The first hit is out of the window by now.
        assert!(s.observe(0, 11 * MIN, g(), None).is_none());
        assert!(s.observe(0, 12 * MIN, g(), None).is_none());
        let f = s.observe(0, 13 * MIN, g(), None).unwrap();
        assert_eq!((f.value, f.first_ms), (3.0, 11 * MIN));
        // Another group counts apart.
        assert!(s.observe(0, 13 * MIN, vec!["h2".into()], None).is_none());
    }

    #[test]
    fn a_group_cap_below_the_first_sweep_point_holds() {
        // Caps under 1,024 once made `clamp(1024, cap)` panic at the first sweep.
        for cap in [1, 7, 1000, 5000] {
            let mut s = CorrelationState::new(spec("event_count", &["a"], json!({"gte": 3})));
            s.max_groups = cap;
            for i in 0..20_000i64 {
                assert!(s.observe(0, i, vec![format!("g{i}")], None).is_none());
                assert!(s.groups() <= cap, "cap {cap}: {} groups", s.groups());
            }
            assert!(s.evicted_groups >= 20_000 - cap as u64, "cap {cap}");
            // A group that completes after the evictions still fires.
            for k in 0..3 {
                let f = s.observe(0, 20_000 + k, vec!["late".into()], None);
                assert_eq!(f.is_some(), k == 2, "cap {cap}");
            }
        }
    }

    #[test]
    fn value_kinds_measure_the_field() {
        let mut s = CorrelationState::new(spec(
            "value_count",
            &["a"],
            json!({"field": "user", "gte": 2}),
        ));
        assert!(s.observe(0, 0, vec![], Some("u1".into())).is_none());
        assert!(s.observe(0, 1, vec![], Some("u1".into())).is_none());
        assert_eq!(
            s.observe(0, 2, vec![], Some("u2".into())).unwrap().value,
            2.0
        );
        let mut s =
            CorrelationState::new(spec("value_sum", &["a"], json!({"field": "b", "gt": 100})));
        assert!(s.observe(0, 0, vec![], Some("60".into())).is_none());
        assert_eq!(
            s.observe(0, 1, vec![], Some("50".into())).unwrap().value,
            110.0
        );
        let mut s =
            CorrelationState::new(spec("value_avg", &["a"], json!({"field": "b", "gt": 10})));
        assert!(s.observe(0, 0, vec![], Some("4".into())).is_none());
        assert!(s.observe(0, 1, vec![], Some("20".into())).is_some());
        let mut s = CorrelationState::new(spec(
            "value_percentile",
            &["a"],
            json!({"field": "image", "lte": 10}),
        ));
        for i in 0..20 {
            assert!(s.observe(0, i, vec![], Some("common".into())).is_none());
        }
        assert!(s.observe(0, 20, vec![], Some("rare".into())).is_some());
    }

    #[test]
    fn temporal_kinds_need_every_rule_and_the_ordered_one_their_order() {
        let mut s = CorrelationState::new(spec("temporal", &["a", "b"], Json::Null));
        assert!(s.observe(1, 0, vec![], None).is_none());
        assert!(s.observe(0, 1, vec![], None).is_some());
        let mut s = CorrelationState::new(spec("temporal_ordered", &["a", "b"], Json::Null));
        assert!(s.observe(1, 0, vec![], None).is_none());
        assert!(s.observe(1, 1, vec![], None).is_none());
        assert!(s.observe(0, 2, vec![], None).is_none());
        assert!(s.observe(1, 3, vec![], None).is_some());
        // Out of the window, the first rule's match no longer counts.
        let mut s = CorrelationState::new(spec("temporal_ordered", &["a", "b"], Json::Null));
        assert!(s.observe(0, 0, vec![], None).is_none());
        assert!(s.observe(1, 11 * MIN, vec![], None).is_none());
    }

    #[test]
    fn bad_correlations_say_why() {
        let c = |kind: &str, span: &str, cond: Json| Correlation {
            title: "t".into(),
            id: None,
            name: None,
            kind: kind.into(),
            rules: vec!["a".into()],
            group_by: vec![],
            timespan: Some(span.into()),
            condition: Some(cond),
            aliases: None,
            generate: false,
            level: None,
            origin: "t.yml".into(),
        };
        for (corr, why) in [
            (c("event_count", "5x", json!({"gte": 1})), "timespan"),
            (c("value_count", "5m", json!({"gte": 1})), "condition.field"),
            (
                c("event_count", "5m", json!({"over": 1})),
                "unknown condition",
            ),
            (c("event_count", "5m", Json::Null), "needs a condition"),
        ] {
            let e = CorrelationSpec::from_doc(&corr).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}

//! Sigma correlation rules in a scan: the matches of the rules a correlation names reach the merge
//! in input order, are grouped by the correlation's `group-by` values (through its `aliases`), and
//! raise a correlation alert when its condition holds within its time span. A correlation may name
//! another (chaining): a firing one counts as a match of itself for those above it.
//!
//! Rules named by a correlation do not alert on their own unless the correlation says `generate`.

use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use unithunt_event::{lookup_one, FieldPath};
use unithunt_rules::alert::{event_alert, EventOrigin};
use unithunt_rules::{Rule, RuleSet};
use unithunt_sigma::correlation::{CorrelationState, Fired};

/// How deep correlations may refer to correlations.
const MAX_CHAIN: usize = 8;

/// What a correlation's referenced rule resolves to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Rule(usize),
    Correlation(usize),
}

/// Where [`Correlator::route`] sent a match.
pub enum Routed {
    /// No correlation names the rule: it alerts on its own.
    Alone,
    /// Correlations took it: the rule's own alert (`generate`), and the correlations that fired.
    Correlated { own: Option<Json>, fired: Vec<Json> },
}

pub struct Correlator {
    states: Vec<CorrelationState>,
    /// Per base rule: the (correlation, position in its `rules`) it feeds.
    by_rule: HashMap<usize, Vec<(usize, usize)>>,
    /// Per correlation: the correlations above it.
    by_correlation: HashMap<usize, Vec<(usize, usize)>>,
    /// Base rules some correlation names.
    pub referenced: HashSet<usize>,
    /// Base rules that also alert on their own (`generate: true`).
    pub generate: HashSet<usize>,
    /// Alerts raised per correlation.
    pub fired: Vec<u64>,
}

fn names(r: &Rule) -> Vec<&str> {
    let mut v = vec![r.meta.rule_id.as_str(), r.meta.name.as_str()];
    if let Some(n) = &r.meta.sigma_name {
        v.push(n);
    }
    v
}

fn text(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(a)) if a.len() == 1 => text(a.first()),
        Some(other) => other.to_string(),
    }
}

impl Correlator {
    /// Resolves every correlation's references; the warnings name those that cannot be resolved.
    /// Each correlation keeps at most `max_groups` groups (see [`CorrelationState::max_groups`]).
    pub fn new(set: &RuleSet, max_groups: usize) -> (Correlator, Vec<String>) {
        let mut c = Correlator {
            states: Vec::new(),
            by_rule: HashMap::new(),
            by_correlation: HashMap::new(),
            referenced: HashSet::new(),
            generate: HashSet::new(),
            fired: vec![0; set.correlations.len()],
        };
        let mut warnings = Vec::new();
        for (ci, corr) in set.correlations.iter().enumerate() {
            let spec = corr
                .correlation
                .clone()
                .expect("correlations carry their spec");
            for (k, wanted) in spec.rules.iter().enumerate() {
                let source = set
                    .rules
                    .iter()
                    .position(|r| names(r).contains(&wanted.as_str()))
                    .map(Source::Rule)
                    .or_else(|| {
                        set.correlations
                            .iter()
                            .position(|r| names(r).contains(&wanted.as_str()))
                            .filter(|&j| j != ci)
                            .map(Source::Correlation)
                    });
                match source {
                    Some(Source::Rule(r)) => {
                        c.by_rule.entry(r).or_default().push((ci, k));
                        c.referenced.insert(r);
                        if spec.generate {
                            c.generate.insert(r);
                        }
                    }
                    Some(Source::Correlation(j)) => c.by_correlation.entry(j).or_default().push((ci, k)),
                    None => warnings.push(format!(
                        "correlation `{}` ({}): no loaded rule is called `{wanted}`; it can never fire",
                        corr.meta.name, corr.meta.origin
                    )),
                }
            }
            let mut state = CorrelationState::new(spec);
            state.max_groups = max_groups.max(1);
            c.states.push(state);
        }
        (c, warnings)
    }

    /// Per correlation, the groups dropped at the group cap.
    pub fn evicted_groups(&self) -> impl Iterator<Item = u64> + '_ {
        self.states.iter().map(|s| s.evicted_groups)
    }

    /// Where a match of `rule` (at `ts` ns) goes: nowhere here when no correlation names the rule
    /// (it alerts on its own); otherwise into the correlations that name it, giving the rule's own
    /// alert only when they say `generate`, and the correlation alerts the match makes fire.
    pub fn route(
        &mut self,
        set: &RuleSet,
        rule: usize,
        doc: &Json,
        ts: i64,
        origin: &EventOrigin,
    ) -> Routed {
        if !self.referenced.contains(&rule) {
            return Routed::Alone;
        }
        let own = self
            .generate
            .contains(&rule)
            .then(|| event_alert(&set.rules[rule].meta, doc, origin));
        let fired = self.on_match(set, rule, doc, ts.div_euclid(1_000_000), origin);
        Routed::Correlated { own, fired }
    }

    /// A match of base rule `rule` on `doc` at `ts_ms`: the correlation alerts it completes.
    pub fn on_match(
        &mut self,
        set: &RuleSet,
        rule: usize,
        doc: &Json,
        ts_ms: i64,
        origin: &EventOrigin,
    ) -> Vec<Json> {
        let mut alerts = Vec::new();
        let keys = names(&set.rules[rule]);
        let mut feeds: Vec<(usize, usize, Vec<&str>, usize)> = self
            .by_rule
            .get(&rule)
            .into_iter()
            .flatten()
            .map(|&(c, k)| (c, k, keys.clone(), 0))
            .collect();
        while let Some((ci, k, keys, depth)) = feeds.pop() {
            let state = &mut self.states[ci];
            let spec = &state.spec;
            let group: Vec<String> = spec
                .group_by
                .iter()
                .map(|g| {
                    text(lookup_one(
                        doc,
                        &FieldPath::parse(spec.group_field(g, &keys)),
                    ))
                })
                .collect();
            let value = spec
                .value_field(&keys)
                .map(|f| text(lookup_one(doc, &FieldPath::parse(f))))
                .filter(|v| !v.is_empty());
            let Some(fired) = state.observe(k, ts_ms, group, value) else {
                continue;
            };
            self.fired[ci] += 1;
            let corr = &set.correlations[ci];
            alerts.push(correlation_alert(corr, &fired, doc, origin));
            if depth + 1 < MAX_CHAIN {
                for &(up, pos) in self.by_correlation.get(&ci).into_iter().flatten() {
                    feeds.push((up, pos, names(corr), depth + 1));
                }
            }
        }
        alerts
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The alert of a firing correlation: its last event as the source, plus what was measured.
fn correlation_alert(corr: &Rule, fired: &Fired, last: &Json, origin: &EventOrigin) -> Json {
    let spec = corr.correlation.as_ref().expect("a correlation");
    let mut a = event_alert(&corr.meta, last, origin);
    if let Json::Object(m) = &mut a {
        let group: serde_json::Map<String, Json> = spec
            .group_by
            .iter()
            .cloned()
            .zip(fired.group.iter().map(|g| Json::String(g.clone())))
            .collect();
        m.insert(
            "kibana.alert.rule.type".into(),
            Json::String("sigma_correlation".into()),
        );
        m.insert("kibana.alert.correlation.group".into(), Json::Object(group));
        m.insert(
            "kibana.alert.correlation.value".into(),
            serde_json::json!(fired.value),
        );
        m.insert(
            "kibana.alert.correlation.start".into(),
            Json::String(iso(fired.first_ms)),
        );
        m.insert(
            "kibana.alert.correlation.end".into(),
            Json::String(iso(fired.last_ms)),
        );
    }
    a
}

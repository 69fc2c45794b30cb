//! Compiled rule sets: every enabled rule's stage predicates behind one prefilter.

use crate::load::{Rule, RulePack};
use unithunt_engine::{eval, is_true, EvalCtx, Expr, Prefilter, QueryKind, StageMask};
use unithunt_event::Json;

/// One stage predicate of one rule: `stage` is its bit in the rule's [`StageMask`] (63: `until`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageRef {
    pub rule: usize,
    pub stage: u32,
}

/// The rules that run, compiled together.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Rules that are loaded but not run, with why (other query languages, other rule types).
    pub unsupported: Vec<Rule>,
    /// Sigma correlation rules: they run on the matches of the rules they name.
    pub correlations: Vec<Rule>,
    stages: Vec<StageRef>,
    prefilter: Prefilter,
    always: Vec<usize>,
    /// Per stage predicate that is a conjunction: for each conjunct, its id among the conjuncts
    /// several predicates share (a Sigma log source's guard, an EQL event category), if shared.
    /// A document's candidates then test a shared conjunct once.
    shared_conjuncts: Vec<Option<Vec<Option<u32>>>>,
    shared_count: usize,
    /// `0..stages.len()`.
    all_stages: Vec<usize>,
    /// Per rule: stage matches the tuning kept quiet (the untuned predicate held, the tuned one
    /// did not), counted by [`RuleSet::evaluate_counting`].
    suppressed: Vec<std::sync::atomic::AtomicU64>,
}

/// Numbers the top-level conjuncts that two or more predicates have in common. Conjuncts are
/// compared by their printed form: `Expr` has no equality of its own (matchers hold compiled
/// automata), and the printed form names every operand, so equal prints are equal tests.
fn share_conjuncts(exprs: &[&Expr]) -> (Vec<Option<Vec<Option<u32>>>>, usize) {
    use std::collections::HashMap;
    let keys: Vec<Option<Vec<String>>> = exprs
        .iter()
        .map(|e| match e {
            Expr::And(items) => Some(items.iter().map(|i| format!("{i:?}")).collect()),
            _ => None,
        })
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for k in keys.iter().flatten() {
        // Counted once per predicate.
        let mut own: Vec<&str> = k.iter().map(String::as_str).collect();
        own.sort_unstable();
        own.dedup();
        for item in own {
            *uses.entry(item).or_default() += 1;
        }
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let per_stage = keys
        .iter()
        .map(|k| {
            let k = k.as_ref()?;
            let shared: Vec<Option<u32>> = k
                .iter()
                .map(|item| {
                    (uses[item.as_str()] > 1).then(|| {
                        let next = ids.len() as u32;
                        *ids.entry(item.as_str()).or_insert(next)
                    })
                })
                .collect();
            shared.iter().any(Option::is_some).then_some(shared)
        })
        .collect();
    (per_stage, ids.len())
}

fn stage_exprs(rule: &Rule) -> Vec<(u32, &Expr)> {
    let Some(q) = &rule.query else {
        return Vec::new();
    };
    match &q.kind {
        QueryKind::Events(e) => vec![(0, e)],
        QueryKind::Sequence(s) | QueryKind::Join(s) => {
            let mut v: Vec<(u32, &Expr)> = s
                .stages
                .iter()
                .enumerate()
                .map(|(i, st)| (i as u32, &st.filter))
                .collect();
            if let Some(u) = &s.until {
                v.push((63, &u.filter));
            }
            v
        }
        QueryKind::Sample(s) => s
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| (i as u32, &st.filter))
            .collect(),
    }
}

impl RuleSet {
    pub fn new(pack: RulePack) -> RuleSet {
        let (rules, rest): (Vec<Rule>, Vec<Rule>) =
            pack.rules.into_iter().partition(|r| r.query.is_some());
        let (mut correlations, unsupported): (Vec<Rule>, Vec<Rule>) =
            rest.into_iter().partition(|r| r.correlation.is_some());
        // A correlation names fields as its rules' detections do (Sigma's taxonomy): each goes
        // through the mapping of the rule it reads it from.
        let scopes: std::collections::HashMap<&str, &unithunt_sigma::pipeline::Scope> = rules
            .iter()
            .filter_map(|r| Some((r, r.sigma_scope.as_ref()?)))
            .flat_map(|(r, s)| {
                [
                    Some(r.meta.rule_id.as_str()),
                    Some(r.meta.name.as_str()),
                    r.meta.sigma_name.as_deref(),
                ]
                .into_iter()
                .flatten()
                .map(move |k| (k, s))
            })
            .collect();
        for c in &mut correlations {
            if let Some(spec) = c.correlation.as_mut() {
                spec.map_fields(&|rule, field| {
                    scopes.get(rule).map(|s| s.field_name(field).to_string())
                });
            }
        }
        let mut stages = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for (bit, _) in stage_exprs(r) {
                stages.push(StageRef {
                    rule: i,
                    stage: bit,
                });
            }
        }
        let exprs: Vec<&Expr> = rules
            .iter()
            .flat_map(|r| stage_exprs(r).into_iter().map(|(_, e)| e))
            .collect();
        let prefilter = Prefilter::new(&exprs);
        let always = prefilter.always();
        let (shared_conjuncts, shared_count) = share_conjuncts(&exprs);
        let stages_len = stages.len();
        let n_rules = rules.len();
        RuleSet {
            rules,
            unsupported,
            correlations,
            stages,
            prefilter,
            always,
            shared_conjuncts,
            shared_count,
            all_stages: (0..stages_len).collect(),
            suppressed: (0..n_rules).map(|_| Default::default()).collect(),
        }
    }

    pub fn prefilter(&self) -> &Prefilter {
        &self.prefilter
    }

    /// Stage predicates that every line must be evaluated against (no literal requirement).
    pub fn always(&self) -> &[usize] {
        &self.always
    }

    pub fn stages(&self) -> &[StageRef] {
        &self.stages
    }

    /// Evaluates the given stage predicates (indices into [`RuleSet::stages`]) on a document, and
    /// returns the stage mask of each rule that matched something.
    pub fn evaluate(&self, doc: &Json, candidates: &[usize]) -> Vec<(usize, StageMask)> {
        self.evaluate_inner(doc, candidates, false)
    }

    /// [`RuleSet::evaluate`], counting for each tuned rule the stage matches its tuning kept
    /// quiet ([`RuleSet::suppressed`]). Called once per event by the detectors (not by the
    /// screens that rule events out before the full evaluation, which would count twice); the
    /// untuned predicate is evaluated only for tuned stages that did not hold.
    pub fn evaluate_counting(&self, doc: &Json, candidates: &[usize]) -> Vec<(usize, StageMask)> {
        self.evaluate_inner(doc, candidates, true)
    }

    /// Per rule that has a tuning, how many stage matches it kept quiet so far (rule index,
    /// count), for the summaries.
    pub fn suppressed(&self) -> Vec<(usize, u64)> {
        self.suppressed
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|(i, n)| *n > 0 || self.rules[*i].untuned.is_some())
            .collect()
    }

    fn evaluate_inner(
        &self,
        doc: &Json,
        candidates: &[usize],
        count: bool,
    ) -> Vec<(usize, StageMask)> {
        let mut out: Vec<(usize, StageMask)> = Vec::new();
        let mut ctx = EvalCtx::new(doc);
        // Per shared conjunct: 0 not yet tested on this document, 1 false, 2 true.
        let mut memo = vec![0u8; self.shared_count];
        for &i in candidates {
            let sr = self.stages[i];
            let Some(expr) = self.expr(sr) else { continue };
            let holds = match (expr, &self.shared_conjuncts[i]) {
                // A conjunction holds when every conjunct is true (false or null: it does not).
                (Expr::And(items), Some(shared)) => {
                    items.iter().zip(shared).all(|(item, id)| match id {
                        Some(id) => {
                            let m = &mut memo[*id as usize];
                            if *m == 0 {
                                *m = 1 + u8::from(eval(item, &mut ctx).truthy() == Some(true));
                            }
                            *m == 2
                        }
                        None => eval(item, &mut ctx).truthy() == Some(true),
                    })
                }
                _ => is_true(expr, &mut ctx),
            };
            if holds {
                match out.iter_mut().find(|(r, _)| *r == sr.rule) {
                    Some((_, m)) => *m |= 1u64 << sr.stage,
                    None => out.push((sr.rule, 1u64 << sr.stage)),
                }
            } else if count {
                let untuned = self.rules[sr.rule]
                    .untuned
                    .as_ref()
                    .and_then(|q| stage_of(q, sr.stage));
                if untuned.is_some_and(|e| is_true(e, &mut ctx)) {
                    self.suppressed[sr.rule].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        out
    }

    /// The predicate of stage `i` (an index into [`RuleSet::stages`]).
    pub fn stage_expr(&self, i: usize) -> Option<&Expr> {
        self.expr(*self.stages.get(i)?)
    }

    /// Whether some rule reads the raw audit records (`auditd.*`), or may (a rule whose fields are
    /// not all known): converters keep the records in the events only then.
    pub fn reads_raw_records(&self) -> bool {
        (0..self.stages.len()).any(|i| {
            self.stage_expr(i)
                .is_some_and(|e| match e.referenced_fields() {
                    Some(fields) => fields.iter().any(|f| f.as_str().starts_with("auditd")),
                    None => true,
                })
        })
    }

    /// The projection of every field the stage predicates read: an event parsed to these only
    /// decides every predicate as the whole event would. `None` when some predicate's fields are
    /// not all known (the rules then need whole events).
    pub fn projection(&self) -> Option<unithunt_event::Projection> {
        let mut fields: Vec<&unithunt_event::FieldPath> = Vec::new();
        for i in 0..self.stages.len() {
            if let Some(expr) = self.stage_expr(i) {
                if !expr.for_each_field(&mut |f| fields.push(f)) {
                    return None;
                }
            }
        }
        let mut p = unithunt_event::Projection::new(fields)?;
        // Wrapped documents (`_search` hits, responses) are recognised by these; keep them whole.
        p.keep_whole("_source");
        p.keep_whole("hits");
        Some(p)
    }

    /// Whether some stage of some rule holds on `doc`.
    pub fn may_match(&self, doc: &Json) -> bool {
        self.screen(doc, &self.all_stages)
    }

    /// Whether the stages may match `doc` (a screen before the full evaluation). An event it
    /// rules out is not evaluated again, so what the tuning kept quiet in it is counted here.
    pub fn screen(&self, doc: &Json, candidates: &[usize]) -> bool {
        if !self.evaluate(doc, candidates).is_empty() {
            return true;
        }
        if self.rules.iter().any(|r| r.untuned.is_some()) {
            self.evaluate_counting(doc, candidates);
        }
        false
    }

    /// How far back in event time the rules' state reaches, in milliseconds: the longest sequence
    /// span (a sequence without `maxspan` has its rule's look-back) and correlation timespan. A
    /// driver that rebuilds state (the stream worker taking a partition over) re-reads this much
    /// before where it starts. `None` when only event rules run (no state). Samples have no span:
    /// they count as the default look-back (`from = "now-6m"`).
    pub fn state_span_ms(&self) -> Option<i64> {
        const DEFAULT_LOOKBACK_MS: i64 = 6 * 60 * 1000;
        let rules = self
            .rules
            .iter()
            .filter_map(|r| match &r.query.as_ref()?.kind {
                QueryKind::Sequence(spec) => Some(
                    spec.maxspan
                        .map_or(DEFAULT_LOOKBACK_MS, |ns| ns / 1_000_000),
                ),
                QueryKind::Sample(_) => Some(DEFAULT_LOOKBACK_MS),
                _ => None,
            });
        let correlations = self
            .correlations
            .iter()
            .filter_map(|r| Some(r.correlation.as_ref()?.timespan_ms));
        rules.chain(correlations).max()
    }

    /// Every stage, as candidates for [`RuleSet::evaluate`] (an event no prefilter has seen).
    pub fn all_stages(&self) -> &[usize] {
        &self.all_stages
    }

    fn expr(&self, sr: StageRef) -> Option<&Expr> {
        stage_of(self.rules[sr.rule].query.as_ref()?, sr.stage)
    }
}

/// The predicate of stage `stage` of a query (63: a sequence's `until`).
fn stage_of(q: &unithunt_engine::Query, stage: u32) -> Option<&Expr> {
    let i = stage as usize;
    match &q.kind {
        QueryKind::Events(e) => (i == 0).then_some(e),
        QueryKind::Sequence(s) | QueryKind::Join(s) if i == 63 => {
            s.until.as_ref().map(|u| &u.filter)
        }
        QueryKind::Sequence(s) | QueryKind::Join(s) => s.stages.get(i).map(|st| &st.filter),
        QueryKind::Sample(s) => s.stages.get(i).map(|st| &st.filter),
    }
}

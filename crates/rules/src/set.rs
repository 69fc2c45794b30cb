//! Compiled rule sets: every enabled rule's stage predicates behind one prefilter.

use crate::load::{Rule, RulePack};
use unithunt_engine::{is_true, EvalCtx, Expr, Prefilter, QueryKind, StageMask};
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
        let (correlations, unsupported): (Vec<Rule>, Vec<Rule>) =
            rest.into_iter().partition(|r| r.correlation.is_some());
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
        RuleSet {
            rules,
            unsupported,
            correlations,
            stages,
            prefilter,
            always,
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
        let mut out: Vec<(usize, StageMask)> = Vec::new();
        for &i in candidates {
            let sr = self.stages[i];
            let Some(expr) = self.expr(sr) else { continue };
            if is_true(expr, &mut EvalCtx::new(doc)) {
                match out.iter_mut().find(|(r, _)| *r == sr.rule) {
                    Some((_, m)) => *m |= 1u64 << sr.stage,
                    None => out.push((sr.rule, 1u64 << sr.stage)),
                }
            }
        }
        out
    }

    /// The predicate of stage `i` (an index into [`RuleSet::stages`]).
    pub fn stage_expr(&self, i: usize) -> Option<&Expr> {
        self.expr(*self.stages.get(i)?)
    }

    fn expr(&self, sr: StageRef) -> Option<&Expr> {
        let q = self.rules[sr.rule].query.as_ref()?;
        let i = sr.stage as usize;
        match &q.kind {
            QueryKind::Events(e) => (i == 0).then_some(e),
            QueryKind::Sequence(s) | QueryKind::Join(s) if i == 63 => {
                s.until.as_ref().map(|u| &u.filter)
            }
            QueryKind::Sequence(s) | QueryKind::Join(s) => s.stages.get(i).map(|st| &st.filter),
            QueryKind::Sample(s) => s.stages.get(i).map(|st| &st.filter),
        }
    }
}

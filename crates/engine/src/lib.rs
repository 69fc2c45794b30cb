//! The engine: one predicate form for every rule language, and the machinery that runs it.
//!
//! # Brief overview
//!
//! Rule languages (EQL in `unithunt-eql`, Sigma later) *lower* their syntax trees into [`Expr`], the
//! shared predicate form. Semantics that differ between languages are explicit nodes, not flags
//! consulted at run time: [`Expr::AnyOf`] binds multi-valued fields one value at a time (Elasticsearch's
//! "any value matches"), [`Expr::MustNot`] is a two-valued negation that holds on missing fields (Query
//! DSL `must_not`), [`Expr::Not`] is the legacy three-valued one. Case folding and wildcard/regex
//! compilation happen once, when the predicate is built ([`Matcher`]).
//!
//! A [`Query`] is a set of stage predicates (one for an event query; several for a sequence, join or
//! sample) plus pipes. A [`Runner`] evaluates stage predicates on each event ([`Runner::evaluate`]) and
//! feeds the matches, in time order, to the stateful part ([`Runner::advance`]) that assembles
//! sequences with bounded memory. [`Prefilter`] extracts the literals a set of predicates needs, so
//! raw input that cannot match is skipped before it is parsed.
//!
//! ```
//! use unithunt_engine::{Expr, CmpOp, Fold, Runner, Query, QueryKind, Output};
//! use unithunt_event::{FieldPath, Value};
//! // process.name == "bash", with Elasticsearch's any-of semantics on the field.
//! let pred = Expr::any_of(vec![FieldPath::parse("process.name")],
//!     Expr::cmp(CmpOp::Eq, Expr::Slot(0), Expr::Lit(Value::str("bash").into_owned()), Fold::Sensitive));
//! let query = Query::events(pred);
//! let mut runner = Runner::new(&query, Default::default());
//! let doc = std::sync::Arc::new(serde_json::json!({"process": {"name": ["sh", "bash"]}}));
//! let mask = runner.evaluate(&doc);
//! runner.advance(doc, 0, mask);
//! assert!(matches!(runner.finish().outputs.as_slice(), [Output::Event(_)]));
//! ```

mod block_pass;
mod eval;
mod expr;
mod funcs;
mod matcher;
mod prefilter;
mod query;
pub mod typed;

pub use eval::{eval, is_true, EvalCtx};
pub use expr::{ArithOp, CmpOp, Expr, Fold, Func, LineageKind};
pub use funcs::{FuncSig, FUNCTIONS};
pub use query::MAX_STAGES as MAX_STAGES_PUB;

/// The names of all functions, for suggestions in error messages.
pub const FUNCTION_NAMES: &[&str] = &[
    "add",
    "between",
    "cidrMatch",
    "concat",
    "divide",
    "endsWith",
    "indexOf",
    "length",
    "modulo",
    "multiply",
    "number",
    "startsWith",
    "string",
    "stringContains",
    "substring",
    "subtract",
    "arrayContains",
    "arrayCount",
    "arraySearch",
    "match",
    "matchLite",
    "safe",
    "wildcard",
];
pub use matcher::{lucene_regex_to_rust, Matcher, MatcherError, PatternKind};
pub use prefilter::{required_literals, BlockScreen, Prefilter};
pub use query::{
    Output, Pipe, Query, QueryKind, RunOptions, RunResult, RunStats, Runner, SampleSpec,
    SequenceSpec, Stage, StageMask, MAX_KEY_COMBINATIONS,
};

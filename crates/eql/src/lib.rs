//! EQL, the Event Query Language, for unithunt.
//!
//! # Brief overview
//!
//! [`compile`] takes query text and [`EqlOptions`] and returns an engine [`Query`]: the text is
//! lexed ([`lexer`]), parsed into a syntax tree ([`ast`]), checked and lowered into the shared
//! predicate form of `unithunt-engine`, where the dialect's semantics become explicit nodes.
//!
//! Two dialects:
//! - [`Dialect::Elasticsearch`] (default): what Kibana and `_eql/search` accept, with their
//!   semantics: `==` case-sensitive, `:` case-insensitive wildcards, negations as Query DSL
//!   `must_not` (so `not process.name : "dpkg"` holds when the field is missing), predicates on
//!   multi-valued fields hold when any value does.
//! - [`Dialect::Legacy`]: the Python `eql` package (endgameinc/eql): `=`, wildcard `==`,
//!   case-insensitive by default, three-valued logic, `join`, lineage, more pipes.
//!
//! With a [`Mapping`] (`EqlOptions::mapping`, the body of `GET index/_mapping`), fields resolve as
//! Elasticsearch's analyzer resolves them ([`mapping`], `resolve`) and compare by their types:
//!
//! ```
//! use unithunt_eql::{compile, EqlOptions, Mapping};
//! let m = Mapping::from_json(&serde_json::json!({"properties": {"v": {"type": "version"}}})).unwrap();
//! let opts = EqlOptions { mapping: Some(std::sync::Arc::new(m)), ..EqlOptions::elasticsearch() };
//! let q = compile(r#"any where v > "1.9.0""#, &opts).unwrap();
//! let mut runner = unithunt_engine::Runner::new(&q, Default::default());
//! let doc = std::sync::Arc::new(serde_json::json!({"v": "1.10.0"}));
//! assert_eq!(runner.evaluate(&doc), 1, "1.10.0 is after 1.9.0 in version order");
//! assert!(compile("any where w == 1", &opts).unwrap_err().message.contains("Unknown column [w]"));
//! ```
//!
//! ```
//! use unithunt_eql::{compile, EqlOptions};
//! use unithunt_engine::{Runner, Output};
//! let q = compile(r#"process where not process.name : "dpkg""#, &EqlOptions::default()).unwrap();
//! let mut runner = Runner::new(&q, Default::default());
//! let doc = std::sync::Arc::new(serde_json::json!({"event": {"category": "process"}}));
//! let mask = runner.evaluate(&doc);
//! assert_eq!(mask, 1, "a missing process.name satisfies the negation");
//! ```

pub mod ast;
mod error;
pub mod lexer;
mod lower;
pub mod mapping;
mod parser;
mod resolve;

pub use error::{EqlError, Span};
pub use mapping::{FieldType, Mapping};
pub use parser::MAX_NESTING;
pub use unithunt_engine::Query;

use unithunt_engine::{eval, EvalCtx, Expr};
use unithunt_event::{Json, Value};

/// Which EQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Elasticsearch,
    Legacy,
}

/// How queries are compiled.
#[derive(Clone, Debug)]
pub struct EqlOptions {
    pub dialect: Dialect,
    /// Legacy dialect only: compare strings case-sensitively (the Python engine's `case_sensitive`).
    pub case_sensitive: bool,
    /// The field an event category (`process where`) tests.
    pub category_field: String,
    /// Fields naming the process of an event and its parent (legacy lineage operators).
    pub pid_field: String,
    pub ppid_field: String,
    /// Elasticsearch dialect: the index mapping fields resolve against (`--mapping`). Without
    /// one, any field may exist and values are compared by their JSON types.
    pub mapping: Option<std::sync::Arc<Mapping>>,
}

impl Default for EqlOptions {
    fn default() -> Self {
        EqlOptions::elasticsearch()
    }
}

impl EqlOptions {
    pub fn elasticsearch() -> EqlOptions {
        EqlOptions {
            dialect: Dialect::Elasticsearch,
            case_sensitive: true,
            category_field: "event.category".into(),
            pid_field: "process.entity_id".into(),
            ppid_field: "process.parent.entity_id".into(),
            mapping: None,
        }
    }

    /// The Python engine's defaults: `event_type` categories, `unique_pid` lineage, case-insensitive.
    pub fn legacy() -> EqlOptions {
        EqlOptions {
            dialect: Dialect::Legacy,
            case_sensitive: false,
            category_field: "event_type".into(),
            pid_field: "unique_pid".into(),
            ppid_field: "unique_ppid".into(),
            mapping: None,
        }
    }
}

/// Parses and lowers a query.
pub fn compile(text: &str, opts: &EqlOptions) -> Result<Query, EqlError> {
    let mut ast = parser::parse(text, opts.dialect)?;
    if let (Dialect::Elasticsearch, Some(m)) = (opts.dialect, &opts.mapping) {
        resolve::resolve(&mut ast, m)?;
    }
    lower::Lower::new(opts).query(&ast)
}

/// Parses a query without lowering it.
pub fn parse(text: &str, dialect: Dialect) -> Result<ast::QueryAst, EqlError> {
    parser::parse(text, dialect)
}

/// Compiles a standalone expression as a condition (Elasticsearch) or value (legacy).
pub fn compile_expression(text: &str, opts: &EqlOptions) -> Result<Expr, EqlError> {
    let node = parser::parse_expression(text, opts.dialect)?;
    let mut q = ast::QueryAst {
        body: ast::QueryBody::Event(ast::EventQuery {
            category: None,
            condition: node,
        }),
        pipes: Vec::new(),
    };
    if let (Dialect::Elasticsearch, Some(m)) = (opts.dialect, &opts.mapping) {
        resolve::resolve(&mut q, m)?;
    }
    let query = lower::Lower::new(opts).query(&q)?;
    match query.kind {
        unithunt_engine::QueryKind::Events(e) => Ok(e),
        _ => unreachable!("an expression lowers to an event query"),
    }
}

/// Evaluates a constant expression (no fields): the conformance suite's folding tests.
pub fn fold_constant(text: &str, opts: &EqlOptions) -> Result<Value<'static>, EqlError> {
    let e = compile_expression(text, opts)?;
    let empty = Json::Object(Default::default());
    let v = eval(&e, &mut EvalCtx::new(&empty)).into_owned();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the fuzzer found or that sit at the parser's edges: each must give an error, not a
    /// panic, in both dialects.
    #[test]
    fn edge_inputs_are_errors_not_panics() {
        for text in [
            "",
            " ",
            "|",
            "process",
            "process where",
            "sequence",
            "sequence [",
            "sequence by",
            "any where (",
            "any where \"",
            "any where `",
            "any where f(",
            "any where a.",
            "![",
            "sequence with maxspan=",
            "sequence with maxspan=5",
            "any where a | head x",
        ] {
            for opts in [EqlOptions::elasticsearch(), EqlOptions::legacy()] {
                let e = compile(text, &opts).expect_err(text);
                let rendered = e.render(text, "query");
                assert!(rendered.contains('^'), "{text:?}: {rendered}");
            }
        }
    }

    /// The nesting limit counts every recursive construct, sits exactly at MAX_NESTING, and does
    /// not count flat chains (issue 15).
    #[test]
    fn nesting_is_limited_at_max_nesting_and_flat_chains_are_not_nesting() {
        let opts = EqlOptions::elasticsearch();
        // `expr` itself is one level: the condition plus 127 parentheses is the deepest query.
        let at = |n: usize| format!("any where {}true{}", "(".repeat(n), ")".repeat(n));
        assert!(compile(&at(MAX_NESTING - 1), &opts).is_ok());
        let e = compile(&at(MAX_NESTING), &opts).expect_err("one past the limit");
        assert!(e.message.contains("nests deeper than 64"), "{}", e.message);
        // The error points at the parenthesis that went past the limit.
        assert_eq!(e.span.start, "any where ".len() + MAX_NESTING - 1);
        for (shape, q) in [
            (
                "not",
                format!("any where {}true", "not ".repeat(MAX_NESTING)),
            ),
            (
                "minus",
                format!("any where a == {}1", "-".repeat(MAX_NESTING)),
            ),
            (
                "calls",
                format!(
                    "any where {}a{} == 1",
                    "length(".repeat(MAX_NESTING),
                    ")".repeat(MAX_NESTING)
                ),
            ),
            (
                "sum",
                format!("any where a == {}", vec!["1"; MAX_NESTING + 1].join(" + ")),
            ),
        ] {
            let e = compile(&q, &opts).expect_err(shape);
            assert!(e.message.contains("nests deeper"), "{shape}: {}", e.message);
        }
        let flat = format!("any where {}", vec!["a == 1"; 50_000].join(" or "));
        assert!(compile(&flat, &opts).is_ok());
        let flat = format!("any where {}", vec!["a == 1"; 50_000].join(" and "));
        assert!(compile(&flat, &EqlOptions::legacy()).is_ok());
    }
}

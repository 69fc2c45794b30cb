//! Sigma rules (specification v2) for unithunt: loading (`load`), the detection and condition
//! semantics compiled into the engine's [`Expr`] (`detection`, `condition`), field mapping
//! pipelines (`pipeline`), and the EQL a compiled rule amounts to (`to_eql`).
//!
//! Sigma compiles into the same predicate form as EQL, so the literal prefilter, the projected
//! parse, the audit converter's screen and the parallel scan serve Sigma rules unchanged.
//!
//! ```
//! use unithunt_sigma::{compile, load_documents, to_eql, Pipeline, SigmaDoc};
//! let text = "title: Unit written\nlogsource: {product: linux, category: file_event}\n\
//!             detection:\n  s: {TargetFilename|endswith: .service}\n  condition: s\n";
//! let SigmaDoc::Rule(rule) = load_documents(text, "doc.yml").unwrap().remove(0) else {
//!     unreachable!()
//! };
//! let expr = compile(&rule, &Pipeline::ecs_linux()).unwrap();
//! // Field names mapped to ECS; the log source is a guard in the same expression.
//! let eql = to_eql(&expr).unwrap();
//! assert!(eql.contains("file.path") && eql.contains(".service"), "{eql}");
//! ```

pub mod condition;
pub mod correlation;
pub mod detection;
pub mod load;
pub mod lucene;
pub mod pipeline;
pub mod pysigma;
pub mod to_eql;

pub use load::{load_documents, SigmaDoc, SigmaError, SigmaRule};
pub use pipeline::Pipeline;
pub use to_eql::to_eql;

use unithunt_engine::Expr;

/// Compiles a rule's detection under `pipeline` into one predicate.
pub fn compile(rule: &SigmaRule, pipeline: &Pipeline) -> Result<Expr, SigmaError> {
    let scope = pipeline.scope_for(&rule.logsource);
    if let Some(why) = scope.failure() {
        return Err(rule.error(
            format!("the pipeline refuses this rule: {why}"),
            "logsource",
        ));
    }
    let searches = detection::compile_searches(rule, &scope)?;
    let mut expr =
        condition::compile(&rule.condition, &searches).map_err(|m| rule.error(m, "condition"))?;
    // pySigma's `add_condition`: `added and (rule)`, or `not added and (rule)`.
    for (selection, negated, added_scope) in scope.added_conditions() {
        let added = detection::search(&added_scope, selection)
            .map_err(|m| rule.error(format!("the pipeline's added condition: {m}"), "logsource"))?;
        let added = if negated {
            Expr::MustNot(Box::new(added))
        } else {
            added
        };
        expr = Expr::And(vec![added, expr]);
    }
    if let Some(guard) = scope.guard() {
        expr = Expr::And(vec![guard, expr]);
    }
    Ok(scope.wrap(expr))
}

/// Compiles a filter's detection (its selections and condition) for the log source it names.
pub fn compile_filter(f: &load::Filter, pipeline: &Pipeline) -> Result<Expr, SigmaError> {
    let scope = pipeline.scope_for(&f.logsource);
    let as_rule = SigmaRule::from_filter(f);
    let searches = detection::compile_searches(&as_rule, &scope)?;
    let expr =
        condition::compile(&f.condition, &searches).map_err(|m| as_rule.error(m, "condition"))?;
    Ok(scope.wrap(expr))
}

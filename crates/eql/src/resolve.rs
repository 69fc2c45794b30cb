//! Field resolution against a [`Mapping`], as Elasticsearch's EQL analyzer does it before anything
//! runs: an alias becomes its target, a `text` field its keyword sub-field, an optional `?field`
//! in no mapping the literal `null` (`Analyzer.ResolveOrReplaceOptionalRefs`), and a field in no
//! mapping the error Elasticsearch gives (`Unknown column [x], did you mean [y]?`).

use crate::ast::*;
use crate::error::{EqlError, Span};
use crate::mapping::{FieldType, Mapping, Resolved};
use unithunt_event::Value;

type R<T> = Result<T, EqlError>;

/// Where a field sits: a condition uses the field's exact (keyword) form, a join key its value.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Condition,
    Key,
}

/// Resolves every field of the query in place.
pub fn resolve(q: &mut QueryAst, mapping: &Mapping) -> R<()> {
    let mut problems = Vec::new();
    match &mut q.body {
        QueryBody::Event(eq) => node(&mut eq.condition, mapping, Place::Condition, &mut problems),
        QueryBody::Sequence {
            by, stages, until, ..
        } => {
            for k in by.iter_mut() {
                node(k, mapping, Place::Key, &mut problems);
            }
            for st in stages.iter_mut().chain(until.iter_mut()) {
                node(
                    &mut st.query.condition,
                    mapping,
                    Place::Condition,
                    &mut problems,
                );
                for k in st.by.iter_mut() {
                    node(k, mapping, Place::Key, &mut problems);
                }
            }
        }
    }
    // Elasticsearch reports every problem at once ("Found 2 problems"); the first one's span
    // points the caret.
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        n => {
            let span = problems[0].span;
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("line 1:{}: {}", p.span.start + 1, p.message))
                .collect();
            Err(EqlError::new(
                format!("Found {n} problems\n{}", lines.join("\n")),
                span,
            ))
        }
    }
}

fn node(n: &mut Node, mapping: &Mapping, place: Place, problems: &mut Vec<EqlError>) {
    let span = n.span;
    match &mut n.kind {
        NodeKind::Field { path, optional } => match field(path, *optional, mapping, place, span) {
            Ok(Some(target)) => *path = target,
            Ok(None) => n.kind = NodeKind::Lit(Value::Null),
            Err(e) => problems.push(e),
        },
        NodeKind::Lit(_) | NodeKind::Lineage { .. } => {}
        NodeKind::Not(a) | NodeKind::Neg(a) => node(a, mapping, place, problems),
        NodeKind::And(items) | NodeKind::Or(items) => {
            for i in items {
                node(i, mapping, place, problems);
            }
        }
        NodeKind::Cmp { lhs, rhs, .. } | NodeKind::Arith { lhs, rhs, .. } => {
            node(lhs, mapping, place, problems);
            node(rhs, mapping, place, problems);
        }
        NodeKind::In { needle, items, .. } => {
            node(needle, mapping, place, problems);
            for i in items {
                node(i, mapping, place, problems);
            }
        }
        NodeKind::Pattern {
            subject, patterns, ..
        } => {
            node(subject, mapping, place, problems);
            for p in patterns {
                node(p, mapping, place, problems);
            }
        }
        NodeKind::Call { args, .. } => {
            for a in args {
                node(a, mapping, place, problems);
            }
        }
    }
}

/// The path a field resolves to, or `None` for an optional field in no mapping (null).
fn field(
    path: &str,
    optional: bool,
    mapping: &Mapping,
    place: Place,
    span: Span,
) -> R<Option<String>> {
    let Some((target, mapped)) = mapping.resolve(path) else {
        if optional {
            return Ok(None);
        }
        let similar = mapping.similar(path);
        let hint = match similar.as_slice() {
            [] => String::new(),
            [one] => format!(", did you mean [{one}]?"),
            many => format!(", did you mean any of [{}]?", many.join(", ")),
        };
        return Err(EqlError::new(
            format!("Unknown column [{path}]{hint}"),
            span,
        ));
    };
    match mapped {
        Resolved::Conflict(defs) => {
            let list: Vec<String> = defs
                .iter()
                .map(|(t, index)| format!("[{t}] in [{index}]"))
                .collect();
            Err(EqlError::new(
                format!(
                    "Cannot use field [{path}] due to ambiguities being mapped as [{}] incompatible types: {}",
                    defs.len(),
                    list.join(", ")
                ),
                span,
            ))
        }
        // A text field compares through its keyword sub-field (which reads the same value).
        Resolved::Type(FieldType::Text { exact: None }) if place == Place::Condition => {
            let leaf = target.rsplit('.').next().unwrap_or(&target);
            Err(EqlError::new(
                format!("[{path}] cannot operate on field of data type [text]: No keyword/multi-field defined exact matches for [{leaf}]; define one or use MATCH/QUERY instead"),
                span,
            ))
        }
        Resolved::Type(FieldType::Other(t)) if t == "object" || t == "nested" => {
            Err(EqlError::new(
                format!("Cannot use field [{path}] type [{t}] only its subfields"),
                span,
            ))
        }
        _ => Ok(Some(target)),
    }
}

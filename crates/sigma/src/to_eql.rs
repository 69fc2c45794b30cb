//! The EQL a compiled Sigma rule amounts to (`unithunt rules convert`), so rules can be taken to
//! Elastic Security. Written from the compiled predicate, so it says what unithunt evaluates:
//! Sigma's case-insensitive matching becomes `:` (wildcards) and `|cased` becomes `==`/`in`/`like`.
//! Rules evaluated per raw audit record have no EQL form (Elasticsearch holds one document per
//! audit event), and are refused with that reason.

use unithunt_engine::{CmpOp, Expr, Fold, Func, PatternKind};
use unithunt_event::Value;

/// An EQL string literal holding `s`: quotes, backslashes and line breaks escaped, and every
/// character a display acts on (ESC, BEL, C1 and bidi controls) written as EQL's `\u{XX}`
/// escape, so the query means the same and is safe to show.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unithunt_event::neutral::is_display_control(c) => {
                out.push_str(&format!("\\u{{{:02x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn field_name(f: &unithunt_event::FieldPath) -> String {
    let s = f.as_str();
    let plain = s.split('.').all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    });
    if plain {
        s.to_string()
    } else {
        format!("`{}`", s.replace('`', "``"))
    }
}

fn lit(v: &Value<'_>) -> Result<String, String> {
    Ok(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => quote(s),
        Value::Json(_) => return Err("a structured literal".into()),
    })
}

fn list(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("({})", items.join(", "))
    }
}

/// The predicate `pred` applied to `field` (its slot 0).
fn leaf(field: &str, pred: &Expr) -> Result<String, String> {
    match pred {
        Expr::Match { subject, matcher } if matches!(**subject, Expr::Slot(0)) => {
            let pats: Vec<String> = matcher.patterns().iter().map(|p| quote(p)).collect();
            Ok(match (matcher.kind(), matcher.fold()) {
                (PatternKind::Wildcard, Fold::Insensitive) => format!("{field} : {}", list(&pats)),
                (PatternKind::Wildcard, Fold::Sensitive) => {
                    if matcher.patterns().iter().any(|p| p.contains(['*', '?'])) {
                        format!("{field} like {}", list(&pats))
                    } else if pats.len() == 1 {
                        format!("{field} == {}", pats[0])
                    } else {
                        format!("{field} in {}", list(&pats))
                    }
                }
                (PatternKind::Regex, fold) => {
                    // Lucene's syntax (Elasticsearch's `regex`) is not Sigma's PCRE subset: each
                    // pattern is translated exactly, or the rule refused (`crate::lucene`).
                    let re: Vec<String> = matcher
                        .patterns()
                        .iter()
                        .map(|p| -> Result<String, String> {
                            // Drop the inline flags this crate adds (case is the operator's `~`).
                            let mut p = p.as_str();
                            while let Some(rest) = p.strip_prefix("(?") {
                                match rest.find(')') {
                                    Some(i) if rest[..i].chars().all(|c| "imsx-".contains(c)) => {
                                        p = &rest[i + 1..]
                                    }
                                    _ => break,
                                }
                            }
                            crate::lucene::pcre_to_lucene(p)
                                .map(|l| quote(&l))
                                .map_err(|e| format!("the regular expression {}: {e}", quote(p)))
                        })
                        .collect::<Result<_, _>>()?;
                    let op = if fold == Fold::Insensitive {
                        "regex~"
                    } else {
                        "regex"
                    };
                    format!("{field} {op} {}", list(&re))
                }
                (k, _) => return Err(format!("{k:?} patterns")),
            })
        }
        Expr::Cmp { op, lhs, rhs, fold } if matches!(**lhs, Expr::Slot(0)) => {
            let r = match &**rhs {
                Expr::Lit(v) => lit(v)?,
                _ => return Err("a comparison with an expression".into()),
            };
            let sym = match op {
                CmpOp::Eq if *fold == Fold::Insensitive => ":",
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            Ok(format!("{field} {sym} {r}"))
        }
        Expr::Call {
            func: Func::CidrMatch,
            args,
            ..
        } if args.len() == 2 => {
            let Expr::Lit(c) = &args[1] else {
                return Err("cidrMatch with an expression".into());
            };
            Ok(format!("cidrMatch({field}, {})", lit(c)?))
        }
        Expr::Or(items) => Ok(format!(
            "({})",
            items
                .iter()
                .map(|i| leaf(field, i))
                .collect::<Result<Vec<_>, _>>()?
                .join(" or ")
        )),
        other => Err(format!("no EQL form for {other:?}")),
    }
}

fn expr(e: &Expr) -> Result<String, String> {
    match e {
        Expr::And(items) => Ok(format!(
            "({})",
            items.iter().map(expr).collect::<Result<Vec<_>, _>>()?.join(" and ")
        )),
        Expr::Or(items) => Ok(format!(
            "({})",
            items.iter().map(expr).collect::<Result<Vec<_>, _>>()?.join(" or ")
        )),
        Expr::MustNot(inner) => match &**inner {
            Expr::Exists(f) => Ok(format!("{} == null", field_name(f))),
            other => Ok(format!("not {}", expr(other)?)),
        },
        Expr::Exists(f) => Ok(format!("{} != null", field_name(f))),
        Expr::Lit(Value::Bool(b)) => Ok(b.to_string()),
        Expr::AnyOf { fields, pred } if fields.len() == 1 => leaf(&field_name(&fields[0]), pred),
        Expr::AnyOf { fields, pred } if fields.len() == 2 => match &**pred {
            Expr::Cmp { op: CmpOp::Eq, .. } => {
                Ok(format!("{} == {}", field_name(&fields[0]), field_name(&fields[1])))
            }
            Expr::Call { func, .. } => {
                let name = match func {
                    Func::StringContains => "stringContains",
                    Func::StartsWith => "startsWith",
                    Func::EndsWith => "endsWith",
                    _ => return Err(format!("no EQL form for {func:?}")),
                };
                Ok(format!("{name}~({}, {})", field_name(&fields[0]), field_name(&fields[1])))
            }
            _ => Err("no EQL form for this field comparison".into()),
        },
        Expr::Call { func: Func::ArraySearch, .. } => Err(
            "rules evaluated per raw audit record (`service: auditd`) have no EQL form: Elasticsearch holds one document per audit event, not per record".into(),
        ),
        other => Err(format!("no EQL form for {other:?}")),
    }
}

/// `any where <predicate>`.
pub fn to_eql(e: &Expr) -> Result<String, String> {
    let body = expr(e)?;
    let body = body
        .strip_prefix('(')
        .and_then(|b| b.strip_suffix(')'))
        .filter(|b| balanced(b))
        .unwrap_or(&body);
    Ok(format!("any where {body}"))
}

/// Whether stripping the outer parentheses left a balanced text (they enclosed all of it).
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for c in s.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn string_literals_carry_display_controls_as_eql_escapes() {
        assert_eq!(quote("a\u{1b}[31m\u{7}"), r#""a\u{1b}[31m\u{07}""#);
        assert_eq!(quote("\u{9b}x\u{202e}"), r#""\u{9b}x\u{202e}""#);
        assert_eq!(quote("q\"\\\n/é"), r#""q\"\\\n/é""#);
    }
}

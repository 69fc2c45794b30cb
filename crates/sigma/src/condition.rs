//! Sigma conditions: `and`, `or`, `not` (in rising precedence), parentheses, search identifiers,
//! and the quantifiers `1 of X*`, `all of X*`, `N of X*` over identifier patterns or `them` (every
//! identifier not starting with `_`).

use unithunt_engine::Expr;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

/// The deepest nesting a condition may have (parentheses and `not`, one level each). The parser,
/// the compiled predicate and its evaluation recurse once per level, so this keeps a crafted rule
/// from overflowing the stack; conditions in the Sigma rule repository nest 2 parentheses at most.
/// Flat `and`/`or` chains do not count: they are one n-ary node however long.
pub const MAX_NESTING: usize = 64;

/// The condition's tokens, each with the 1-based character position it starts at (for errors).
fn lex(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut word_at = 0;
    let flush = |word: &mut String, word_at: usize, out: &mut Vec<(Tok, usize)>| {
        if !word.is_empty() {
            out.push((Tok::Word(std::mem::take(word)), word_at));
        }
    };
    for (i, c) in text.chars().enumerate() {
        let at = i + 1;
        match c {
            '(' => {
                flush(&mut word, word_at, &mut out);
                out.push((Tok::Open, at));
            }
            ')' => {
                flush(&mut word, word_at, &mut out);
                out.push((Tok::Close, at));
            }
            c if c.is_whitespace() => flush(&mut word, word_at, &mut out),
            '|' => return Err("pipes in conditions (`| count() ...`) are the deprecated aggregation syntax: use a correlation rule".into()),
            c => {
                if word.is_empty() {
                    word_at = at;
                }
                word.push(c)
            }
        }
    }
    flush(&mut word, word_at, &mut out);
    Ok(out)
}

/// Does the identifier pattern (with `*` wildcards) match `name`?
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    at: usize,
    searches: &'a [(String, Expr)],
    /// Parentheses and `not`s enclosing the current token.
    depth: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    /// Runs `f` one nesting level deeper, refusing the condition past [`MAX_NESTING`].
    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let at = self.toks.get(self.at.saturating_sub(1)).map_or(0, |t| t.1);
            return Err(format!("the condition nests deeper than {MAX_NESTING} levels of parentheses and `not` (at character {at}): refused so that a crafted rule cannot exhaust the stack"));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while is_kw(self.peek(), "or") {
            self.at += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.not()?];
        while is_kw(self.peek(), "and") {
            self.at += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if is_kw(self.peek(), "not") {
            self.at += 1;
            // Sigma's `not` is two-valued: true when the search does not match, missing fields
            // included.
            return Ok(Expr::MustNot(Box::new(self.nested(Self::not)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.at += 1;
                let e = self.nested(Self::or)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("missing `)`".into());
                }
                self.at += 1;
                Ok(e)
            }
            Some(Tok::Close) => Err("unexpected `)`".into()),
            None => Err("the condition ends too early".into()),
            Some(Tok::Word(w)) => {
                self.at += 1;
                if is_kw(self.peek(), "of") {
                    self.at += 1;
                    let Some(Tok::Word(target)) = self.peek().cloned() else {
                        return Err(format!("`{w} of` needs identifiers or `them`"));
                    };
                    self.at += 1;
                    return self.quantified(&w, &target);
                }
                if ["and", "or", "not", "of"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return Err(format!("unexpected `{w}`"));
                }
                self.searches
                    .iter()
                    .find(|(n, _)| *n == w)
                    .map(|(_, e)| e.clone())
                    .ok_or_else(|| format!("unknown search identifier `{w}`"))
            }
        }
    }

    fn quantified(&self, quant: &str, target: &str) -> Result<Expr, String> {
        let chosen: Vec<Expr> = self
            .searches
            .iter()
            .filter(|(n, _)| {
                // Identifiers starting with `_` are left out of `them` and of patterns that do
                // not start with `_` (pySigma's reading of the convention).
                if target == "them" {
                    !n.starts_with('_')
                } else {
                    glob(target, n) && (target.starts_with('_') || !n.starts_with('_'))
                }
            })
            .map(|(_, e)| e.clone())
            .collect();
        if chosen.is_empty() {
            return Err(format!(
                "`{quant} of {target}` matches no search identifier"
            ));
        }
        if quant.eq_ignore_ascii_case("all") {
            return Ok(Expr::And(chosen));
        }
        let n: usize = quant
            .parse()
            .map_err(|_| format!("`{quant} of`: expected a number or `all`"))?;
        if n == 0 {
            return Err("`0 of` is always true: not a condition".into());
        }
        if n == 1 {
            return Ok(Expr::Or(chosen));
        }
        if n > chosen.len() {
            return Ok(Expr::Lit(unithunt_event::Value::Bool(false)));
        }
        // At least `n` of them: the disjunction of every `n`-subset (bounded).
        let mut subsets = Vec::new();
        let mut pick = (0..n).collect::<Vec<usize>>();
        loop {
            subsets.push(Expr::And(pick.iter().map(|&i| chosen[i].clone()).collect()));
            if subsets.len() > 4096 {
                return Err(format!(
                    "`{n} of` over {} identifiers is too large",
                    chosen.len()
                ));
            }
            // Next combination.
            let mut i = n;
            while i > 0 && pick[i - 1] == chosen.len() - n + i - 1 {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            pick[i - 1] += 1;
            for j in i..n {
                pick[j] = pick[j - 1] + 1;
            }
        }
        Ok(Expr::Or(subsets))
    }
}

/// Compiles a condition over compiled search identifiers.
pub fn compile(condition: &str, searches: &[(String, Expr)]) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(condition)?,
        at: 0,
        searches,
        depth: 0,
    };
    let e = p.or()?;
    if p.at != p.toks.len() {
        return Err(format!(
            "unexpected `{:?}` after the condition (at character {})",
            p.toks[p.at].0, p.toks[p.at].1
        ));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unithunt_engine::{is_true, EvalCtx};
    use unithunt_event::Value;

    fn searches(truth: &[(&str, bool)]) -> Vec<(String, Expr)> {
        truth
            .iter()
            .map(|(n, t)| (n.to_string(), Expr::Lit(Value::Bool(*t))))
            .collect()
    }

    fn holds(cond: &str, truth: &[(&str, bool)]) -> bool {
        let e = compile(cond, &searches(truth)).unwrap();
        is_true(&e, &mut EvalCtx::new(&serde_json::json!({})))
    }

    #[test]
    fn precedence_quantifiers_and_them() {
        let t = [
            ("sel1", true),
            ("sel2", false),
            ("filter", true),
            ("_private", true),
        ];
        assert!(holds("sel1 or sel2 and not filter", &t));
        assert!(!holds("(sel1 or sel2) and not filter", &t));
        assert!(holds("1 of sel*", &t));
        assert!(!holds("all of sel*", &t));
        assert!(holds("2 of them", &t));
        // `them` leaves out identifiers starting with `_`.
        assert!(!holds("3 of them", &t));
        assert!(holds("all of _*", &t));
        assert!(holds("not not sel1", &t));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let s = searches(&[("a", true)]);
        for (c, why) in [
            ("b", "unknown search identifier"),
            ("a and", "ends too early"),
            ("(a", "missing `)`"),
            ("1 of x*", "matches no search identifier"),
            ("a | count() > 5", "deprecated aggregation"),
            ("a a", "unexpected"),
        ] {
            let e = compile(c, &s).unwrap_err();
            assert!(e.contains(why), "{c}: {e}");
        }
    }

    /// Nesting stops at MAX_NESTING and says where; flat chains are one level however long.
    #[test]
    fn nesting_is_limited_and_flat_chains_are_not() {
        let s = searches(&[("a", true), ("b", false)]);
        let parens = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(holds(&parens(MAX_NESTING), &[("a", true), ("b", false)]));
        let e = compile(&parens(MAX_NESTING + 1), &s).unwrap_err();
        assert!(
            e.contains("nests deeper than 64") && e.contains("character 65"),
            "{e}"
        );
        let nots = format!("{}a", "not ".repeat(MAX_NESTING + 1));
        let e = compile(&nots, &s).unwrap_err();
        assert!(
            e.contains("nests deeper") && e.contains("character 257"),
            "{e}"
        );
        // 100,000 terms, the last one true.
        let mut chain = vec!["b"; 99_999];
        chain.push("a");
        assert!(holds(&chain.join(" or "), &[("a", true), ("b", false)]));
        assert!(!holds(&chain.join(" and "), &[("a", true), ("b", false)]));
    }
}

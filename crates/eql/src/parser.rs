//! Recursive-descent parser for both dialects. Dialect-specific restrictions are reported here when
//! they are syntax (`=`, single quotes, legacy keywords) and in lowering when they are semantics.

use crate::ast::*;
use crate::error::{EqlError, Span};
use crate::lexer::{lex, Tok, Token};
use crate::Dialect;
use std::borrow::Cow;
use unithunt_event::Value;

pub struct Parser<'s> {
    toks: Vec<Token>,
    pos: usize,
    dialect: Dialect,
    _src: &'s str,
    /// How many nesting levels (parentheses, `not`, calls, unary signs, arithmetic) enclose the
    /// token being parsed; see [`MAX_NESTING`].
    depth: usize,
}

/// The deepest nesting a query may have: parentheses, `not`, function calls, unary `-`/`+`,
/// lineage brackets and the operands of an arithmetic chain each count one level. Every pass
/// over the tree (parsing, lowering, evaluation, dropping it) recurses once per level, so the
/// limit is what keeps a crafted query from overflowing the stack; it sits far above what rules
/// use (the deepest query in Elastic's rule repository nests 8 parentheses) and keeps a debug build within 2 MiB,
/// the stack of a spawned thread. Flat `and`/`or` chains do
/// not count: they parse in a loop into one n-ary node, however long.
pub const MAX_NESTING: usize = 64;

/// One node for a flat `and`/`or` chain of two or more operands, spanning all of them.
fn chain(items: Vec<Node>, kind: fn(Vec<Node>) -> NodeKind) -> Node {
    let span = items[0].span.to(items[items.len() - 1].span);
    Node {
        kind: kind(items),
        span,
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Quoted(s) => format!("`{s}`"),
        Tok::Str { value, .. } => format!("string {value:?}"),
        Tok::Int(n) => format!("number {n}"),
        Tok::Float(n) => format!("number {n}"),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Eof => "end of query".into(),
    }
}

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "like", "regex", "where", "by", "with", "until", "of", "true",
    "false", "null",
];

pub fn parse(src: &str, dialect: Dialect) -> Result<QueryAst, EqlError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        dialect,
        _src: src,
        depth: 0,
    };
    let q = p.query()?;
    if p.peek() != &Tok::Eof {
        let t = p.tok().clone();
        return Err(EqlError::new(
            format!(
                "unexpected {} after the end of the query: expected `|` or the end",
                describe(&t.tok)
            ),
            t.span,
        ));
    }
    Ok(q)
}

/// Parses a standalone expression (the conformance suite folds expressions).
pub fn parse_expression(src: &str, dialect: Dialect) -> Result<Node, EqlError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        dialect,
        _src: src,
        depth: 0,
    };
    let e = p.expr()?;
    if p.peek() != &Tok::Eof {
        let t = p.tok().clone();
        return Err(EqlError::new(
            format!("unexpected {} after the expression", describe(&t.tok)),
            t.span,
        ));
    }
    Ok(e)
}

impl<'s> Parser<'s> {
    // `pos` may run one past the final `Eof` token (so that "bump, then step back" is always
    // valid); reads clamp to the `Eof`.
    fn tok(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    /// The span of the token last consumed.
    fn prev_span(&self) -> Span {
        self.toks[self.pos.saturating_sub(1).min(self.toks.len() - 1)].span
    }
    fn peek(&self) -> &Tok {
        &self.tok().tok
    }
    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }
    fn bump(&mut self) -> Token {
        let t = self.tok().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(w))
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, op: &str, what: &str) -> Result<Span, EqlError> {
        if self.is_op(op) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("`{op}` {what}")))
        }
    }
    fn expect_word(&mut self, w: &str, what: &str) -> Result<Span, EqlError> {
        if self.is_word(w) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("`{w}` {what}")))
        }
    }
    fn unexpected(&self, expected: &str) -> EqlError {
        let t = self.tok();
        EqlError::new(
            format!("unexpected {}: expected {expected}", describe(&t.tok)),
            t.span,
        )
    }
    fn legacy(&self) -> bool {
        self.dialect == Dialect::Legacy
    }

    /// Enters one nesting level, refusing the query past [`MAX_NESTING`].
    fn deeper(&mut self) -> Result<(), EqlError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(EqlError::new(
                format!("the query nests deeper than {MAX_NESTING} levels (parentheses, `not`, function calls, signs or arithmetic): refused so that a crafted query cannot exhaust the stack"),
                // The token that opened the level: the `(`, `not`, sign or operator just read.
                self.prev_span(),
            ));
        }
        Ok(())
    }

    /// Runs `f` one nesting level deeper.
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, EqlError>,
    ) -> Result<T, EqlError> {
        self.deeper()?;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn query(&mut self) -> Result<QueryAst, EqlError> {
        let body = if self.is_word("sequence")
            || self.is_word("sample")
            || (self.legacy() && self.is_word("join"))
        {
            self.sequence()?
        } else if self.is_word("join") {
            return Err(EqlError::new("`join` is only in the legacy dialect (use `sequence` or `sample`, or --dialect legacy)", self.tok().span));
        } else {
            QueryBody::Event(self.event_query()?)
        };
        let mut pipes = Vec::new();
        while self.is_op("|") {
            self.bump();
            pipes.push(self.pipe()?);
        }
        Ok(QueryAst { body, pipes })
    }

    fn event_query(&mut self) -> Result<EventQuery, EqlError> {
        let t = self.bump();
        let category = match &t.tok {
            Tok::Ident(s) if s.eq_ignore_ascii_case("any") => None,
            Tok::Ident(s) if !RESERVED.contains(&s.to_ascii_lowercase().as_str()) => {
                Some((s.clone(), t.span))
            }
            Tok::Quoted(s) => Some((s.clone(), t.span)),
            Tok::Str { value, .. } if self.legacy() => Some((value.clone(), t.span)),
            _ => {
                self.pos -= 1;
                return Err(
                    self.unexpected("an event category (such as `process`, `file` or `any`)")
                );
            }
        };
        self.expect_word("where", "after the event category")?;
        let condition = self.expr()?;
        Ok(EventQuery {
            category,
            condition,
        })
    }

    fn duration(&mut self) -> Result<(i64, Span), EqlError> {
        let t = self.bump();
        let n = match t.tok {
            Tok::Int(n) => n as f64,
            Tok::Float(f) => f,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("a time span such as `5m`, `30s` or `500ms`"));
            }
        };
        let unit_tok = self.tok().clone();
        let unit = match &unit_tok.tok {
            Tok::Ident(u) if unit_tok.glued || self.legacy() => u.to_ascii_lowercase(),
            _ => {
                return Err(EqlError::new(
                    "time span needs a unit: one of ms, s, m, h, d",
                    t.span,
                ))
            }
        };
        let ns_per: f64 = match unit.as_str() {
            "ms" => 1e6,
            "s" | "sec" | "second" | "seconds" => 1e9,
            "m" | "min" | "minute" | "minutes" => 60e9,
            "h" | "hour" | "hours" => 3600e9,
            "d" | "day" | "days" => 86400e9,
            _ => {
                return Err(EqlError::new(
                    format!("unknown time unit `{unit}`: expected one of ms, s, m, h, d"),
                    unit_tok.span,
                ))
            }
        };
        self.bump();
        if n < 0.0 {
            return Err(EqlError::new("maxspan must be positive", t.span));
        }
        Ok(((n * ns_per) as i64, t.span.to(unit_tok.span)))
    }

    fn sequence(&mut self) -> Result<QueryBody, EqlError> {
        let word_tok = self.bump();
        let word = match &word_tok.tok {
            Tok::Ident(s) if s.eq_ignore_ascii_case("sequence") => SeqWord::Sequence,
            Tok::Ident(s) if s.eq_ignore_ascii_case("join") => SeqWord::Join,
            _ => SeqWord::Sample,
        };
        let mut by = Vec::new();
        let mut maxspan = None;
        loop {
            if self.eat_word("by") {
                if !by.is_empty() {
                    return Err(EqlError::new("`by` given twice", self.prev_span()));
                }
                by = self.expr_list()?;
            } else if self.is_word("with") {
                let with = self.bump().span;
                let key = self.tok().clone();
                if !self.eat_word("maxspan") {
                    return Err(self.unexpected("`maxspan` after `with`"));
                }
                self.expect_op("=", "after `maxspan`")?;
                if word == SeqWord::Sample {
                    return Err(EqlError::new(
                        "`sample` does not take `maxspan`",
                        with.to(key.span),
                    ));
                }
                maxspan = Some(self.duration()?);
            } else {
                break;
            }
        }
        let mut stages = Vec::new();
        let mut until = None;
        loop {
            if self.is_op("[") || (self.is_op("!") && self.peek_at(1).tok == Tok::Op("[")) {
                stages.push(self.stage(word)?);
            } else if self.is_word("until") {
                let kw = self.bump().span;
                if word == SeqWord::Sample {
                    return Err(EqlError::new("`sample` does not take `until`", kw));
                }
                let st = self.stage(word)?;
                if st.missing {
                    return Err(EqlError::new("`until` cannot be a missing event", st.span));
                }
                until = Some(st);
                break;
            } else {
                break;
            }
        }
        let min = if word == SeqWord::Sample { 1 } else { 2 };
        let positive = stages
            .iter()
            .filter(|s| !s.missing)
            .map(|s| s.runs)
            .sum::<usize>();
        if stages.iter().map(|s| s.runs).sum::<usize>() < min || positive == 0 {
            return Err(EqlError::new(
                format!(
                    "a {} needs at least {min} queries in brackets",
                    if word == SeqWord::Sample {
                        "sample"
                    } else {
                        "sequence"
                    }
                ),
                word_tok.span.to(self.tok().span),
            ));
        }
        if let Some(st) = stages.iter().find(|s| s.missing) {
            if maxspan.is_none() {
                return Err(EqlError::new(
                    "a missing event `![..]` needs `with maxspan=..` on the sequence",
                    st.span,
                ));
            }
        }
        Ok(QueryBody::Sequence {
            word,
            by,
            maxspan,
            stages,
            until,
        })
    }

    fn stage(&mut self, word: SeqWord) -> Result<StageAst, EqlError> {
        let start = self.tok().span;
        let missing = self.eat_op("!");
        if missing && word != SeqWord::Sequence {
            return Err(EqlError::new(
                "missing events `![..]` are only allowed in a sequence",
                start,
            ));
        }
        self.expect_op("[", "to open a query")?;
        let query = self.event_query()?;
        let close = self.expect_op("]", "to close the query")?;
        let mut fork = false;
        let mut by = Vec::new();
        let mut runs = 1;
        loop {
            if self.legacy() && self.is_word("fork") {
                self.bump();
                fork = true;
                if self.eat_op("=") {
                    let t = self.bump();
                    fork = match t.tok {
                        Tok::Ident(ref s) if s.eq_ignore_ascii_case("true") => true,
                        Tok::Ident(ref s) if s.eq_ignore_ascii_case("false") => false,
                        _ => {
                            return Err(EqlError::new(
                                "expected `true` or `false` after `fork=`",
                                t.span,
                            ))
                        }
                    };
                }
            } else if self.is_word("by") {
                self.bump();
                by = self.expr_list()?;
            } else if self.is_word("with")
                && matches!(&self.peek_at(1).tok, Tok::Ident(s) if s.eq_ignore_ascii_case("runs"))
            {
                self.bump();
                self.bump();
                self.expect_op("=", "after `runs`")?;
                let t = self.bump();
                runs = match t.tok {
                    Tok::Int(n) if (1..=100).contains(&n) => n as usize,
                    _ => {
                        return Err(EqlError::new(
                            "`runs` must be a whole number from 1 to 100",
                            t.span,
                        ))
                    }
                };
            } else {
                break;
            }
        }
        Ok(StageAst {
            query,
            by,
            runs,
            missing,
            fork,
            span: start.to(close),
        })
    }

    fn expr_list(&mut self) -> Result<Vec<Node>, EqlError> {
        let mut out = vec![self.expr()?];
        while self.eat_op(",") {
            out.push(self.expr()?);
        }
        Ok(out)
    }

    fn pipe(&mut self) -> Result<PipeAst, EqlError> {
        let t = self.bump();
        let name = match &t.tok {
            Tok::Ident(s) => s.to_ascii_lowercase(),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("a pipe name such as `head` or `tail`"));
            }
        };
        let mut args = Vec::new();
        while !self.is_op("|") && self.peek() != &Tok::Eof {
            args.push(self.expr()?);
            self.eat_op(",");
        }
        let span = t.span.to(self.prev_span());
        Ok(PipeAst { name, args, span })
    }

    /// An expression one nesting level down (parentheses, arguments, list items, lineage).
    pub fn expr(&mut self) -> Result<Node, EqlError> {
        self.nested(Self::or_expr)
    }

    fn or_expr(&mut self) -> Result<Node, EqlError> {
        let first = self.and_expr()?;
        if !self.is_word("or") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_word("or") {
            items.push(self.and_expr()?);
        }
        Ok(chain(items, NodeKind::Or))
    }

    fn and_expr(&mut self) -> Result<Node, EqlError> {
        let first = self.not_expr()?;
        if !self.is_word("and") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_word("and") {
            items.push(self.not_expr()?);
        }
        Ok(chain(items, NodeKind::And))
    }

    fn not_expr(&mut self) -> Result<Node, EqlError> {
        if self.is_word("not") {
            let kw = self.bump().span;
            let inner = self.nested(Self::not_expr)?;
            let span = kw.to(inner.span);
            return Ok(Node {
                kind: NodeKind::Not(Box::new(inner)),
                span,
            });
        }
        self.comparison()
    }

    fn tilde(&mut self) -> bool {
        if self.is_op("~") && self.tok().glued {
            self.bump();
            true
        } else {
            false
        }
    }

    fn comparison(&mut self) -> Result<Node, EqlError> {
        let lhs = self.additive()?;
        let t = self.tok().clone();
        let node = match &t.tok {
            Tok::Op(op @ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "=")) => {
                if *op == "=" && !self.legacy() {
                    return Err(EqlError::new("`=` is not an EQL operator: use `==` (or `:` for a case-insensitive match)", t.span));
                }
                self.bump();
                let rhs = self.additive()?;
                let op = match *op {
                    "==" => CmpKind::Eq,
                    "=" => CmpKind::Assign,
                    "!=" => CmpKind::Ne,
                    "<" => CmpKind::Lt,
                    "<=" => CmpKind::Le,
                    ">" => CmpKind::Gt,
                    _ => CmpKind::Ge,
                };
                let span = lhs.span.to(rhs.span);
                Node {
                    kind: NodeKind::Cmp {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                }
            }
            Tok::Op(op @ (":" | "!:")) => {
                let negated = *op == "!:";
                if self.legacy()
                    && !negated
                    && matches!(&self.peek_at(1).tok, Tok::Ident(_))
                    && self.peek_at(2).tok == Tok::Op("(")
                {
                    // Legacy method syntax: `x:length()` is `length(x)`.
                    self.bump();
                    let mut call = self.primary()?;
                    if let NodeKind::Call { args, .. } = &mut call.kind {
                        args.insert(0, lhs.clone());
                    }
                    call.span = lhs.span.to(call.span);
                    return self.finish_comparison(call);
                }
                self.bump();
                let patterns = self.pattern_rhs()?;
                let span = lhs.span.to(self.prev_span());
                Node {
                    kind: NodeKind::Pattern {
                        op: PatternOp::Colon,
                        subject: Box::new(lhs),
                        patterns,
                        insensitive: true,
                        negated,
                    },
                    span,
                }
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("regex") => {
                let op = if w.eq_ignore_ascii_case("like") {
                    PatternOp::Like
                } else {
                    PatternOp::Regex
                };
                self.bump();
                let insensitive = self.tilde();
                let patterns = self.pattern_rhs()?;
                let span = lhs.span.to(self.prev_span());
                Node {
                    kind: NodeKind::Pattern {
                        op,
                        subject: Box::new(lhs),
                        patterns,
                        insensitive,
                        negated: false,
                    },
                    span,
                }
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("in") => {
                self.bump();
                self.in_rhs(lhs, false)?
            }
            Tok::Ident(w)
                if w.eq_ignore_ascii_case("not")
                    && matches!(&self.peek_at(1).tok, Tok::Ident(s) if s.eq_ignore_ascii_case("in")) =>
            {
                self.bump();
                self.bump();
                self.in_rhs(lhs, true)?
            }
            _ => return Ok(lhs),
        };
        self.finish_comparison(node)
    }

    fn finish_comparison(&mut self, node: Node) -> Result<Node, EqlError> {
        if let Tok::Op(op @ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "=" | ":")) = self.peek() {
            if !self.legacy() {
                let op = *op;
                return Err(EqlError::new(
                    format!(
                        "chained comparison: `{op}` cannot follow another comparison; use `and`"
                    ),
                    self.tok().span,
                ));
            }
            // Legacy allows `a == b == c` as `(a == b) == c`.
            let t = self.bump();
            let rhs = self.additive()?;
            let op = match t.tok {
                Tok::Op("==") => CmpKind::Eq,
                Tok::Op("=") => CmpKind::Assign,
                Tok::Op("!=") => CmpKind::Ne,
                Tok::Op("<") => CmpKind::Lt,
                Tok::Op("<=") => CmpKind::Le,
                Tok::Op(">") => CmpKind::Gt,
                _ => CmpKind::Ge,
            };
            let span = node.span.to(rhs.span);
            return Ok(Node {
                kind: NodeKind::Cmp {
                    op,
                    lhs: Box::new(node),
                    rhs: Box::new(rhs),
                },
                span,
            });
        }
        Ok(node)
    }

    fn in_rhs(&mut self, needle: Node, negated: bool) -> Result<Node, EqlError> {
        let insensitive = self.tilde();
        self.expect_op("(", "to open the list after `in`")?;
        let mut items = Vec::new();
        if !self.is_op(")") {
            items.push(self.expr()?);
            while self.eat_op(",") {
                items.push(self.expr()?);
            }
        }
        let close = self.expect_op(")", "or `,` in the list")?;
        if items.is_empty() {
            return Err(EqlError::new("empty list after `in`", close));
        }
        let span = needle.span.to(close);
        Ok(Node {
            kind: NodeKind::In {
                needle: Box::new(needle),
                items,
                insensitive,
                negated,
            },
            span,
        })
    }

    fn pattern_rhs(&mut self) -> Result<Vec<Node>, EqlError> {
        if self.eat_op("(") {
            let mut items = vec![self.expr()?];
            while self.eat_op(",") {
                items.push(self.expr()?);
            }
            self.expect_op(")", "or `,` in the pattern list")?;
            Ok(items)
        } else {
            Ok(vec![self.additive()?])
        }
    }

    fn additive(&mut self) -> Result<Node, EqlError> {
        self.binary(
            &[("+", ArithKind::Add), ("-", ArithKind::Sub)],
            Self::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Result<Node, EqlError> {
        self.binary(
            &[
                ("*", ArithKind::Mul),
                ("/", ArithKind::Div),
                ("%", ArithKind::Mod),
            ],
            Self::unary,
        )
    }

    /// One left-associative level of arithmetic: operands from `next`, operators from `ops`.
    fn binary(
        &mut self,
        ops: &[(&str, ArithKind)],
        next: fn(&mut Self) -> Result<Node, EqlError>,
    ) -> Result<Node, EqlError> {
        let mut lhs = next(self)?;
        // A chain `a + b + c` is a left-deep tree: each further operand is one level deeper.
        let outer = self.depth;
        while let Some(&(_, op)) = ops.iter().find(|(o, _)| self.is_op(o)) {
            self.bump();
            self.deeper()?;
            let rhs = next(self)?;
            let span = lhs.span.to(rhs.span);
            lhs = Node {
                kind: NodeKind::Arith {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        self.depth = outer;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, EqlError> {
        if self.is_op("-") {
            let minus = self.bump().span;
            let inner = self.nested(Self::unary)?;
            let span = minus.to(inner.span);
            // Fold negative literals so `-1` is a literal (and `in (-1, 2)` stays a literal list).
            return Ok(match inner.kind {
                NodeKind::Lit(Value::Int(n)) => Node {
                    kind: NodeKind::Lit(Value::Int(-n)),
                    span,
                },
                NodeKind::Lit(Value::Float(f)) => Node {
                    kind: NodeKind::Lit(Value::Float(-f)),
                    span,
                },
                _ => Node {
                    kind: NodeKind::Neg(Box::new(inner)),
                    span,
                },
            });
        }
        if self.is_op("+") {
            self.bump();
            return self.nested(Self::unary);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, EqlError> {
        let t = self.tok().clone();
        match &t.tok {
            Tok::Int(n) => {
                self.bump();
                Ok(Node {
                    kind: NodeKind::Lit(Value::Int(*n)),
                    span: t.span,
                })
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Node {
                    kind: NodeKind::Lit(Value::Float(*f)),
                    span: t.span,
                })
            }
            Tok::Str { value, single } => {
                if *single && !self.legacy() {
                    return Err(EqlError::new("single quotes are not allowed in Elasticsearch EQL: use double quotes (or \"\"\"raw\"\"\")", t.span));
                }
                self.bump();
                Ok(Node {
                    kind: NodeKind::Lit(Value::Str(Cow::Owned(value.clone()))),
                    span: t.span,
                })
            }
            Tok::Op("(") => {
                self.bump();
                let inner = self.expr()?;
                let close = self.expect_op(")", "to close the parenthesis")?;
                Ok(Node {
                    kind: inner.kind,
                    span: t.span.to(close),
                })
            }
            Tok::Op("?") => {
                self.bump();
                let mut f = self.field()?;
                if let NodeKind::Field { optional, .. } = &mut f.kind {
                    *optional = true;
                }
                f.span = t.span.to(f.span);
                Ok(f)
            }
            Tok::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" | "false" => {
                        self.bump();
                        Ok(Node {
                            kind: NodeKind::Lit(Value::Bool(lower == "true")),
                            span: t.span,
                        })
                    }
                    "null" => {
                        self.bump();
                        Ok(Node {
                            kind: NodeKind::Lit(Value::Null),
                            span: t.span,
                        })
                    }
                    "descendant" | "child" | "event" if matches!(&self.peek_at(1).tok, Tok::Ident(s) if s.eq_ignore_ascii_case("of")) =>
                    {
                        if !self.legacy() {
                            return Err(EqlError::new(
                                format!(
                                    "`{lower} of` is only in the legacy dialect (--dialect legacy)"
                                ),
                                t.span,
                            ));
                        }
                        self.bump();
                        self.bump();
                        self.expect_op("[", "to open the lineage query")?;
                        let query = self.nested(Self::event_query)?;
                        let close = self.expect_op("]", "to close the lineage query")?;
                        let kind = match lower.as_str() {
                            "descendant" => LineageWord::Descendant,
                            "child" => LineageWord::Child,
                            _ => LineageWord::Event,
                        };
                        Ok(Node {
                            kind: NodeKind::Lineage {
                                kind,
                                query: Box::new(query),
                            },
                            span: t.span.to(close),
                        })
                    }
                    _ if self.peek_at(1).tok == Tok::Op("(")
                        || (self.peek_at(1).tok == Tok::Op("~")
                            && self.peek_at(2).tok == Tok::Op("(")) =>
                    {
                        self.bump();
                        let insensitive = self.eat_op("~");
                        self.bump();
                        let mut args = Vec::new();
                        if !self.is_op(")") {
                            args.push(self.expr()?);
                            while self.eat_op(",") {
                                args.push(self.expr()?);
                            }
                        }
                        let close = self.expect_op(")", "or `,` in the function arguments")?;
                        Ok(Node {
                            kind: NodeKind::Call {
                                name: word.clone(),
                                name_span: t.span,
                                insensitive,
                                args,
                            },
                            span: t.span.to(close),
                        })
                    }
                    _ if RESERVED.contains(&lower.as_str()) => {
                        Err(self.unexpected("a value, a field or a function call"))
                    }
                    _ => self.field(),
                }
            }
            Tok::Quoted(_) => self.field(),
            _ => Err(self.unexpected("a value, a field or a function call")),
        }
    }

    fn field(&mut self) -> Result<Node, EqlError> {
        let first = self.bump();
        let mut path = match &first.tok {
            Tok::Ident(s) | Tok::Quoted(s) => s.clone(),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("a field name"));
            }
        };
        let mut span = first.span;
        loop {
            let t = self.tok().clone();
            if !t.glued {
                break;
            }
            if t.tok == Tok::Op(".") {
                let next = self.peek_at(1).clone();
                match &next.tok {
                    Tok::Ident(s) | Tok::Quoted(s) if next.glued => {
                        path.push('.');
                        path.push_str(s);
                        self.bump();
                        self.bump();
                        span = span.to(next.span);
                    }
                    Tok::Int(n) if next.glued => {
                        path.push('.');
                        path.push_str(&n.to_string());
                        self.bump();
                        self.bump();
                        span = span.to(next.span);
                    }
                    _ => {
                        return Err(EqlError::new(
                            "expected a field name after `.`",
                            t.span.to(next.span),
                        ))
                    }
                }
            } else if t.tok == Tok::Op("[")
                && matches!(self.peek_at(1).tok, Tok::Int(_))
                && self.peek_at(2).tok == Tok::Op("]")
            {
                let Tok::Int(n) = self.peek_at(1).tok else {
                    unreachable!()
                };
                path.push_str(&format!("[{n}]"));
                self.bump();
                self.bump();
                span = span.to(self.bump().span);
            } else {
                break;
            }
        }
        Ok(Node {
            kind: NodeKind::Field {
                path,
                optional: false,
            },
            span,
        })
    }
}

//! The syntax tree of an EQL query.

use crate::error::Span;
use unithunt_event::Value;

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpKind {
    Eq,
    /// Legacy `=`.
    Assign,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternOp {
    /// `:`
    Colon,
    Like,
    Regex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithKind {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Lit(Value<'static>),
    Field {
        path: String,
        optional: bool,
    },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp {
        op: CmpKind,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    In {
        needle: Box<Node>,
        items: Vec<Node>,
        insensitive: bool,
        negated: bool,
    },
    Pattern {
        op: PatternOp,
        subject: Box<Node>,
        patterns: Vec<Node>,
        insensitive: bool,
        negated: bool,
    },
    Arith {
        op: ArithKind,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Neg(Box<Node>),
    Call {
        name: String,
        name_span: Span,
        insensitive: bool,
        args: Vec<Node>,
    },
    Lineage {
        kind: LineageWord,
        query: Box<EventQuery>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineageWord {
    Descendant,
    Child,
    Event,
}

/// `category where condition`; `category` is `None` for `any`.
#[derive(Clone, Debug)]
pub struct EventQuery {
    pub category: Option<(String, Span)>,
    pub condition: Node,
}

#[derive(Clone, Debug)]
pub struct StageAst {
    pub query: EventQuery,
    pub by: Vec<Node>,
    pub runs: usize,
    pub missing: bool,
    pub fork: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqWord {
    Sequence,
    Join,
    Sample,
}

#[derive(Clone, Debug)]
pub enum QueryBody {
    Event(EventQuery),
    Sequence {
        word: SeqWord,
        by: Vec<Node>,
        maxspan: Option<(i64, Span)>,
        stages: Vec<StageAst>,
        until: Option<StageAst>,
    },
}

#[derive(Clone, Debug)]
pub struct PipeAst {
    pub name: String,
    pub args: Vec<Node>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct QueryAst {
    pub body: QueryBody,
    pub pipes: Vec<PipeAst>,
}

//! Literal prefilter: skip raw input that no predicate can match, before parsing it.
//!
//! For each predicate we derive literals the raw text of any matching event must contain, as a
//! conjunction of alternatives (`[[a, b], [c]]` = (a or b) and c). One Aho-Corasick automaton over all
//! literals of all predicates then answers, per line, which predicates are still possible.
//!
//! Soundness: a literal is only derived from a positive string test on a field (equality, set
//! membership, wildcard fragments, starts/ends/contains), never under a negation. Literals are ASCII
//! and matched ASCII-case-insensitively, which a case-sensitive match implies. JSON may spell a string
//! differently from its value (`\u0041`, `\/`), and non-ASCII text may fold to ASCII (the Kelvin sign
//! K folds to `k`), so a line that contains a backslash-`u`, a backslash-slash or any non-ASCII byte is
//! always a candidate. Characters JSON must escape (`"`, `\`, controls) split literals.

use crate::block_pass::{fold_block, CHUNK};
use crate::expr::{CmpOp, Expr, Func};
use aho_corasick::MatchKind;
use unithunt_event::Value;

/// Literals shorter than this filter too little to be worth it; a clause needing one is dropped.
const MIN_LITERAL: usize = 3;

type Cnf = Vec<Vec<String>>;

/// The literals every match of `expr` must contain, as a conjunction of alternatives. Empty when
/// nothing is required.
pub fn required_literals(expr: &Expr) -> Vec<Vec<String>> {
    let mut cnf = analyse(expr);
    for clause in cnf.iter_mut() {
        clause.sort();
        clause.dedup();
    }
    cnf.sort();
    cnf.dedup();
    cnf
}

fn lit_str(e: &Expr) -> Option<&str> {
    match e {
        Expr::Lit(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn is_subject(e: &Expr) -> bool {
    // `Var`: a member of an array element being searched (`arraySearch`, Sigma's per-record
    // rules); the element is part of the line's text like any field.
    matches!(e, Expr::Slot(_) | Expr::Field(_) | Expr::Var { .. })
}

/// The usable literal within `s`: its longest run free of characters JSON may escape, lowercased.
fn usable(s: &str) -> Option<String> {
    let best = s
        .split(|c: char| !c.is_ascii() || c.is_ascii_control() || c == '"' || c == '\\')
        .max_by_key(|p| p.len())?;
    (best.len() >= MIN_LITERAL).then(|| best.to_ascii_lowercase())
}

/// Text in nearly every line of Linux endpoint telemetry: the service manager is the parent of
/// every service process, and the standard binary directories hold almost every executable. A
/// literal found inside one of them flags most lines. Measured on a generated Elastic Defend
/// corpus (500 MiB, 392,266 events): `/usr/lib/systemd/` is in 50,292 lines, `-generators/` in
/// none, yet the longest fragment of `/usr/lib/systemd/*-generators/*` was the former.
const COMMON: &[&str] = &[
    "/usr/lib/systemd/systemd",
    "/lib/systemd/systemd-",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/local/bin/",
];

/// How selective a required literal is likely to be, to choose among the fragments a pattern
/// requires (each is required, so any choice is sound): not inside [`COMMON`] text first, then
/// not a bare directory prefix (`/run/systemd/`: many files share it; `-generators/` names one
/// kind), then longer.
fn selectivity(l: &str) -> (bool, bool, usize) {
    let common = COMMON.iter().any(|c| c.contains(l));
    let dir_prefix = l.starts_with('/') && l.ends_with('/');
    (!common, !dir_prefix, l.len())
}

fn one(s: &str) -> Cnf {
    usable(s).map(|l| vec![vec![l]]).unwrap_or_default()
}

fn analyse(expr: &Expr) -> Cnf {
    match expr {
        Expr::AnyOf { pred, .. } => analyse(pred),
        Expr::And(items) => items.iter().flat_map(analyse).collect(),
        Expr::Or(items) => {
            let mut clause = Vec::new();
            for item in items {
                let cnf = analyse(item);
                // The alternative of this branch: its most selective clause (longest shortest literal).
                let Some(best) = cnf
                    .into_iter()
                    .max_by_key(|c| c.iter().map(String::len).min().unwrap_or(0))
                else {
                    return Vec::new();
                };
                clause.extend(best);
            }
            vec![clause]
        }
        Expr::Cmp {
            op: CmpOp::Eq,
            lhs,
            rhs,
            ..
        } => match (lit_str(lhs), lit_str(rhs)) {
            (None, Some(s)) if is_subject(lhs) => one(s),
            (Some(s), None) if is_subject(rhs) => one(s),
            _ => Vec::new(),
        },
        Expr::In { needle, items, .. } if is_subject(needle) => {
            let mut clause = Vec::new();
            for item in items {
                match lit_str(item).and_then(usable) {
                    Some(l) => clause.push(l),
                    None => return Vec::new(),
                }
            }
            if clause.is_empty() {
                Vec::new()
            } else {
                vec![clause]
            }
        }
        Expr::Match { subject, matcher } if is_subject(subject) => {
            let mut clause = Vec::new();
            for frags in matcher.required_literals() {
                let best = frags.as_ref().and_then(|f| {
                    f.iter()
                        .filter_map(|x| usable(x))
                        .max_by_key(|l| selectivity(l))
                });
                match best {
                    Some(l) => clause.push(l),
                    None => return Vec::new(),
                }
            }
            if clause.is_empty() {
                Vec::new()
            } else {
                vec![clause]
            }
        }
        // Some element of the array satisfies the predicate: its literals are in the line.
        Expr::Call {
            func: Func::ArraySearch,
            args,
            ..
        } if args.len() == 3 => analyse(&args[2]),
        Expr::Call {
            func: Func::StartsWith | Func::EndsWith | Func::StringContains,
            args,
            ..
        } if args.len() == 2 && is_subject(&args[0]) => {
            lit_str(&args[1]).map(one).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The result of screening one block: candidate lines, and the line facts the same pass learned.
#[derive(Debug, Default)]
pub struct BlockScreen {
    /// Start offset of each line some predicate with literals may match, and those predicates.
    pub lines: Vec<(usize, Vec<usize>)>,
    /// Number of `\n` bytes in the block.
    pub newlines: usize,
    /// Every line of the block has the shape of one JSON object (`{` first, `}` last, no
    /// blank line, no `\r`): lines not in `lines` need no further check.
    pub framed: bool,
}

/// Of a predicate's clauses (each required), the one to search for: requiring fewer clauses is
/// sound, and one selective clause beats all of them. A clause's worth is its weakest literal:
/// longer is rarer, and a literal with punctuation (`/base64`, `.service`, `-enc`) is much rarer in
/// JSON than a bare word, which may be any key or common value (`process`, `start` from a log
/// source's guard). Measured on a 210-rule Sigma scan: searching every clause spent half the time
/// in the automaton, on lines that every rule's guard literals flagged.
fn most_selective_clause(cnf: Vec<Vec<String>>) -> Vec<Vec<String>> {
    /// Clauses worth at least this are searched (up to [`MAX_CLAUSES`]); below it, only the best.
    const SELECTIVE: usize = 8;
    const MAX_CLAUSES: usize = 3;
    let worth = |clause: &Vec<String>| {
        clause
            .iter()
            .map(|l| {
                l.len()
                    + if l.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        0
                    } else {
                        4
                    }
            })
            .min()
            .unwrap_or(0)
    };
    let mut ranked: Vec<(usize, usize, Vec<String>)> = cnf
        .into_iter()
        .enumerate()
        .map(|(i, c)| (worth(&c), i, c))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let keep = ranked
        .iter()
        .take(MAX_CLAUSES)
        .take_while(|(w, _, _)| *w >= SELECTIVE)
        .count()
        .max(1);
    ranked.into_iter().take(keep).map(|(_, _, c)| c).collect()
}

/// Shrinks a clause (alternatives) for the search, soundly: a line holding a literal holds each of
/// its substrings, so a literal that contains another alternative is dropped, and alternatives
/// sharing a long common part are replaced by that part (the seed's four `.../systemd/system/`
/// directories become one `/systemd/system/`). Fewer, more distinct literals make the SIMD search
/// faster and cost little selectivity.
fn simplify_clause(mut clause: Vec<String>) -> Vec<String> {
    /// A shared part shorter than this, or than two thirds of the longer literal, is not worth
    /// merging on.
    const MIN_SHARED: usize = 8;
    /// Merging compares every pair by a quadratic longest-common-substring: only small clauses of
    /// short literals are worth it (a rule's few directories), and a crafted rule with thousands
    /// of values or a 30,000-character one must not make loading it quadratic. Skipping the
    /// merge is sound: the literals stay as they are.
    const MERGE_MAX_LITERALS: usize = 32;
    const MERGE_MAX_LEN: usize = 128;
    loop {
        clause.sort_by_key(String::len);
        clause.dedup();
        clause = drop_containing(clause);
        if clause.len() > MERGE_MAX_LITERALS {
            return clause;
        }
        let mut best: Option<(usize, usize, String)> = None;
        for i in 0..clause.len() {
            for j in i + 1..clause.len() {
                let (shorter, longer) = (clause[i].len(), clause[j].len());
                // Sorted by length: the shared part is at most `shorter` long, which must reach
                // the bounds below and beat the best so far (most pairs fail this cheaply).
                if shorter < MIN_SHARED
                    || longer > MERGE_MAX_LEN
                    || shorter * 3 < longer * 2
                    || best.as_ref().is_some_and(|b| shorter <= b.2.len())
                {
                    continue;
                }
                let shared = longest_common_substring(&clause[i], &clause[j]);
                if shared.len() >= MIN_SHARED
                    && shared.len() * 3 >= longer * 2
                    && best.as_ref().is_none_or(|b| shared.len() > b.2.len())
                {
                    best = Some((i, j, shared.to_string()));
                }
            }
        }
        let Some((i, j, shared)) = best else {
            return clause;
        };
        clause.remove(j);
        clause[i] = shared;
    }
}

/// The literals of `sorted` (by length, deduplicated) that hold no other one: a line holding a
/// literal holds every literal inside it, so the longer one adds nothing to the search. One
/// Aho-Corasick pass per literal (linear in the clause's bytes) rather than a test per pair,
/// which a rule with 20,000 values makes quadratic.
fn drop_containing(sorted: Vec<String>) -> Vec<String> {
    if sorted.len() < 2 {
        return sorted;
    }
    let Ok(ac) = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::Standard)
        .build(&sorted)
    else {
        return sorted;
    };
    let keep: Vec<bool> = sorted
        .iter()
        .enumerate()
        .map(|(i, l)| {
            // Deduplicated: any other pattern found inside `l` is a different, shorter or equal
            // length literal, so `l` holds it.
            !ac.find_overlapping_iter(l.as_str())
                .any(|m| m.pattern().as_usize() != i)
        })
        .collect();
    sorted
        .into_iter()
        .zip(keep)
        .filter_map(|(l, k)| k.then_some(l))
        .collect()
}

fn longest_common_substring<'a>(a: &'a str, b: &str) -> &'a str {
    let (a_bytes, b_bytes) = (a.as_bytes(), b.as_bytes());
    let mut best = (0, 0);
    let mut prev = vec![0usize; b_bytes.len() + 1];
    let mut cur = vec![0usize; b_bytes.len() + 1];
    for i in 1..=a_bytes.len() {
        for j in 1..=b_bytes.len() {
            cur[j] = if a_bytes[i - 1] == b_bytes[j - 1] {
                prev[j - 1] + 1
            } else {
                0
            };
            if cur[j] > best.0 {
                best = (cur[j], i);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    // Literals are ASCII (see `usable`), so byte offsets are char boundaries.
    &a[best.1 - best.0..best.1]
}

/// Where the line holding byte `pos` starts.
fn line_start(text: &[u8], pos: usize) -> usize {
    memchr::memrchr(b'\n', &text[..pos]).map_or(0, |i| i + 1)
}

/// Where the line starting at `start` ends (after its newline).
fn line_end(text: &[u8], start: usize) -> usize {
    memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i + 1)
}

/// Appends every scalar of `value` to `text`, ASCII-lowercased, each followed by a newline (no
/// literal holds one, so none spans two values); numbers and booleans as JSON writes them. False
/// when some string is not ASCII.
fn gather_values(value: &unithunt_event::Json, text: &mut Vec<u8>) -> bool {
    use unithunt_event::Json;
    match value {
        Json::String(s) => {
            if !s.is_ascii() {
                return false;
            }
            text.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
        }
        Json::Number(n) => {
            use std::io::Write;
            let _ = write!(text, "{n}");
        }
        Json::Bool(b) => text.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Null => text.extend_from_slice(b"null"),
        Json::Array(items) => return items.iter().all(|v| gather_values(v, text)),
        Json::Object(members) => return members.values().all(|v| gather_values(v, text)),
    }
    text.push(b'\n');
    true
}

/// The exact set of literals in one line: a DFA over all literals (standard semantics: every
/// occurrence, overlapping ones included) walked byte by byte here rather than through the crate's
/// overlapping iterator, which re-enters the search once per match; JSON lines of a big rule set
/// hold dozens of matches each, and that re-entry was a third of a 210-rule Sigma scan.
struct ExactSearch {
    dfa: aho_corasick::dfa::DFA,
    start: aho_corasick::automaton::StateID,
}

impl ExactSearch {
    fn new(literals: &[String]) -> Option<ExactSearch> {
        use aho_corasick::automaton::Automaton;
        let dfa = aho_corasick::dfa::DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(aho_corasick::StartKind::Unanchored)
            .prefilter(false)
            .build(literals)
            .ok()?;
        let start = dfa.start_state(aho_corasick::Anchored::No).ok()?;
        Some(ExactSearch { dfa, start })
    }

    /// Where the first occurrence of a literal in `hay` (ASCII-lowercased) ends.
    fn first_match_end(&self, hay: &[u8]) -> Option<usize> {
        use aho_corasick::automaton::Automaton;
        let dfa = &self.dfa;
        let mut sid = self.start;
        for (i, &b) in hay.iter().enumerate() {
            sid = dfa.next_state(aho_corasick::Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                return Some(i + 1);
            }
        }
        None
    }

    /// Adds to `found` every literal occurring in `hay` (already ASCII-lowercased).
    fn find_all(&self, hay: &[u8], found: &mut LineLiterals) {
        use aho_corasick::automaton::Automaton;
        let dfa = &self.dfa;
        let mut sid = self.start;
        for &b in hay {
            sid = dfa.next_state(aho_corasick::Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                for i in 0..dfa.match_len(sid) {
                    found.insert(dfa.match_pattern(sid, i).as_usize());
                }
            }
        }
    }
}

/// Literals seen on the current line and predicates already judged on it, reset in O(1) per
/// line by bumping a generation number instead of clearing arrays as long as the literal set.
struct LineLiterals {
    generation: u32,
    literal_seen: Vec<u32>,
    rule_seen: Vec<u32>,
    /// Distinct literals of the current line, in order of first occurrence.
    list: Vec<usize>,
}

impl LineLiterals {
    fn new(literals: usize, rules: usize) -> LineLiterals {
        LineLiterals {
            generation: 0,
            literal_seen: vec![0; literals],
            rule_seen: vec![0; rules],
            list: Vec::new(),
        }
    }

    /// Makes room for `literals` and `rules` (a thread's scratch serves every prefilter).
    fn fit(&mut self, literals: usize, rules: usize) {
        if self.literal_seen.len() < literals {
            self.literal_seen.resize(literals, 0);
        }
        if self.rule_seen.len() < rules {
            self.rule_seen.resize(rules, 0);
        }
    }

    fn next_line(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Stamps of four billion lines ago would read as current: clear them once.
            self.literal_seen.fill(0);
            self.rule_seen.fill(0);
            self.generation = 1;
        }
        self.list.clear();
    }

    fn insert(&mut self, literal: usize) {
        if self.literal_seen[literal] != self.generation {
            self.literal_seen[literal] = self.generation;
            self.list.push(literal);
        }
    }

    fn has(&self, literal: usize) -> bool {
        self.literal_seen[literal] == self.generation
    }

    /// True the first time predicate `rule` is asked about on this line.
    fn first_visit(&mut self, rule: usize) -> bool {
        let fresh = self.rule_seen[rule] != self.generation;
        self.rule_seen[rule] = self.generation;
        fresh
    }
}

/// Per thread: whether the first pass of the last searched block flagged nearly every line (a
/// big rule set on process events: some rule's literal is in every command line). Such blocks skip
/// the search, all their lines going to the decision on values, and one block in
/// [`Density::RECHECK`] is searched again to notice when the data changes.
struct Density;

impl Density {
    const RECHECK: u32 = 8;

    thread_local! {
        /// (last searched block was dense, blocks since it was searched)
        static STATE: std::cell::Cell<(bool, u32)> = const { std::cell::Cell::new((false, 0)) };
    }

    fn skip_search() -> bool {
        Self::STATE.with(|s| {
            let (dense, since) = s.get();
            let skip = dense && since + 1 < Self::RECHECK;
            s.set((dense, since + 1));
            skip
        })
    }

    /// After a searched block: `flagged` of about `lines` lines held a literal.
    fn record(flagged: usize, lines: usize) {
        Self::STATE.with(|s| s.set((flagged * 20 >= lines * 19, 0)));
    }
}

/// A compiled prefilter over a list of predicates.
pub struct Prefilter {
    /// With up to 64 literals, a SIMD multi-substring searcher (Teddy) over lowercased text: the
    /// general automaton picks a rare-byte prefilter that is slow on JSON full of `/` and `"`.
    packed: Option<aho_corasick::packed::Searcher>,
    /// A literal of the only clause, when exactly one predicate has literals, in one clause.
    single_clause_literal: Option<usize>,
    /// The exact set of literals on the lines the first pass flags (over lowercased text).
    exact: Option<ExactSearch>,
    /// Per predicate: clauses of literal ids; empty = always a candidate.
    rules: Vec<Vec<Vec<usize>>>,
    /// Per literal: the predicates whose clauses name it (each once).
    rules_of_literal: Vec<Vec<u32>>,
    literal_count: usize,
    /// Length of the longest literal.
    longest_literal: usize,
}

impl Prefilter {
    pub fn new(preds: &[&Expr]) -> Prefilter {
        let mut literals: Vec<String> = Vec::new();
        let id = |s: &String, lits: &mut Vec<String>| match lits.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                lits.push(s.clone());
                lits.len() - 1
            }
        };
        let rules: Vec<Vec<Vec<usize>>> = preds
            .iter()
            .map(|p| {
                most_selective_clause(required_literals(p))
                    .into_iter()
                    .map(|clause| {
                        simplify_clause(clause)
                            .iter()
                            .map(|l| id(l, &mut literals))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let packed = if literals.is_empty() || literals.len() > 64 {
            None
        } else {
            let mut b = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .builder();
            b.extend(literals.iter());
            b.build()
        };
        let with_literals: Vec<&Vec<Vec<usize>>> = rules.iter().filter(|r| !r.is_empty()).collect();
        let single_clause_literal = match with_literals.as_slice() {
            [only] if only.len() == 1 => only[0].first().copied(),
            _ => None,
        };
        let mut rules_of_literal: Vec<Vec<u32>> = vec![Vec::new(); literals.len()];
        for (r, clauses) in rules.iter().enumerate() {
            for &lit in clauses.iter().flatten() {
                if rules_of_literal[lit].last() != Some(&(r as u32)) {
                    rules_of_literal[lit].push(r as u32);
                }
            }
        }
        Prefilter {
            literal_count: literals.len(),
            longest_literal: literals.iter().map(String::len).max().unwrap_or(0),
            single_clause_literal,
            packed,
            exact: (!literals.is_empty())
                .then(|| ExactSearch::new(&literals))
                .flatten(),
            rules_of_literal,
            rules,
        }
    }

    /// True when some predicate has a literal requirement (the prefilter can skip anything).
    pub fn is_useful(&self) -> bool {
        self.exact.is_some() && self.rules.iter().all(|r| !r.is_empty())
    }

    /// Marks in `out` which predicates may match the raw text of one event.
    pub fn candidates(&self, raw: &[u8], out: &mut Vec<bool>) {
        out.clear();
        let Some(exact) = &self.exact else {
            out.resize(self.rules.len(), true);
            return;
        };
        if !raw.is_ascii()
            || memchr::memmem::find(raw, b"\\u").is_some()
            || memchr::memmem::find(raw, b"\\/").is_some()
        {
            out.resize(self.rules.len(), true);
            return;
        }
        let mut found = LineLiterals::new(self.literal_count, self.rules.len());
        found.next_line();
        exact.find_all(&raw.to_ascii_lowercase(), &mut found);
        out.extend(
            self.rules
                .iter()
                .map(|clauses| clauses.iter().all(|c| c.iter().any(|&i| found.has(i)))),
        );
    }

    /// The predicates with no literal requirement: candidates on every line.
    pub fn always(&self) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].is_empty() || self.exact.is_none())
            .collect()
    }

    /// Screens a whole block of lines at once (one pass over the block instead of one per line).
    /// Returns, for every line on which some predicate with literals may match, the byte offset
    /// where the line starts and those predicates, in offset order; lines not returned can only
    /// match the predicates of [`Prefilter::always`]. Lines end at `\n`.
    pub fn scan_block(&self, text: &[u8]) -> Vec<(usize, Vec<usize>)> {
        self.screen_block(text).lines
    }

    /// [`Prefilter::scan_block`], plus what the same pass learned about the block's lines.
    pub fn screen_block(&self, text: &[u8]) -> BlockScreen {
        self.screen(text, false)
    }

    /// True when deciding a flagged line's predicates from its parsed values beats searching its
    /// raw text for them ([`Prefilter::flag_block`] then [`Prefilter::candidates_in_values`]):
    /// with a big literal set, the exact search is a DFA walked over every byte of the line, while
    /// the values rules read are a fraction of an event's JSON (keys, and fields no rule reads,
    /// are most of it).
    pub fn decides_on_values(&self) -> bool {
        self.packed.is_none() && self.exact.is_some()
    }

    /// The first pass of [`Prefilter::screen_block`] only: the lines that hold some literal or a
    /// byte that may hide one (non-ASCII, escapes), each with no predicate listed; such a line may
    /// match any predicate with literals ([`Prefilter::with_literals`]) until
    /// [`Prefilter::candidates_in_values`] decides on its parsed values.
    pub fn flag_block(&self, text: &[u8]) -> BlockScreen {
        self.screen(text, true)
    }

    /// The predicates that have literal requirements.
    pub fn with_literals(&self) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&r| !self.rules[r].is_empty())
            .collect()
    }

    /// Marks in `out` (cleared first) the predicates with literals that may match an event, from
    /// the event's values: every string, number and boolean in `doc` (parsed from the line, or
    /// only its members the predicates read), ASCII-lowercased. Sound because every literal comes
    /// from a test on a member's value ([`required_literals`]); JSON escapes are already decoded,
    /// and a non-ASCII string (whose case folding could make a literal) makes every predicate
    /// with literals a candidate.
    pub fn candidates_in_values(&self, doc: &unithunt_event::Json, out: &mut Vec<usize>) {
        out.clear();
        let Some(exact) = &self.exact else {
            return;
        };
        thread_local! {
            static SCRATCH: std::cell::RefCell<(Vec<u8>, LineLiterals)> =
                std::cell::RefCell::new((Vec::new(), LineLiterals::new(0, 0)));
        }
        SCRATCH.with(|scratch| {
            let (text, found) = &mut *scratch.borrow_mut();
            text.clear();
            if !gather_values(doc, text) {
                out.extend(self.with_literals());
                return;
            }
            found.fit(self.literal_count, self.rules.len());
            found.next_line();
            exact.find_all(text, found);
            self.decide(found, out);
        })
    }

    /// The predicates whose every clause has a literal in `found`, in index order.
    fn decide(&self, found: &mut LineLiterals, out: &mut Vec<usize>) {
        for k in 0..found.list.len() {
            for &r in &self.rules_of_literal[found.list[k]] {
                let r = r as usize;
                if found.first_visit(r)
                    && self.rules[r]
                        .iter()
                        .all(|c| c.iter().any(|&i| found.has(i)))
                {
                    out.push(r);
                }
            }
        }
        out.sort_unstable();
    }

    fn screen(&self, text: &[u8], first_pass_only: bool) -> BlockScreen {
        thread_local! {
            static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let line_start = |pos: usize| line_start(text, pos);
        let line_end = |start: usize| line_end(text, start);
        LOWER.with(|buf| {
            let mut lower = buf.borrow_mut();
            // A buffer that only ever grows: no zero-filling after the first block.
            if lower.len() < text.len() {
                lower.resize(text.len(), 0);
            }
            let lower = &mut lower[..text.len()];
            // First pass: lines with at least one literal, searched in each sub-block as soon as
            // it is folded (while it is in cache). Sound with a leftmost (non-overlapping) search:
            // literals hold no newline, so a match that hides an overlapping occurrence lies on
            // that occurrence's line, which is therefore flagged anyway.
            let mut flagged: Vec<(usize, usize)> = Vec::new();
            let mut at = 0;
            let pass = fold_block(text, lower, |lower, end| {
                let Some(p) = &self.packed else { return };
                let folded = &lower[..end];
                while at < end {
                    let Some(m) = p.find_in(folded, aho_corasick::Span::from(at..end)) else {
                        // No literal lies wholly in at..end: the next search may start where a
                        // literal crossing `end` could.
                        at = at.max((end + 1).saturating_sub(self.longest_literal));
                        break;
                    };
                    let start = line_start(m.start());
                    let line_end = line_end(m.start());
                    flagged.push((start, line_end));
                    // One hit flags the line; go on from the next line.
                    at = line_end;
                }
            });
            let lower = &lower[..];
            if self.packed.is_none() {
                if let Some(exact) = &self.exact {
                    // With more literals than Teddy takes (a Sigma rule set has hundreds), the
                    // exact search's DFA, stopped at the first match: one hit flags a line, and
                    // the search goes on from its end (a line can hold dozens of hits). The
                    // crate's own searcher was measured slower on JSON: its rare-byte prefilter
                    // stops at every `/`, `"` and `.` (2.09 s against 1.85 s for 210 rules).
                    if first_pass_only && Density::skip_search() {
                        // Recent blocks had a literal on nearly every line: flag them all and
                        // let the values decide (extra lines cost a projected parse each).
                        let mut start = 0;
                        while start < text.len() {
                            let end = line_end(start);
                            flagged.push((start, end));
                            start = end;
                        }
                    } else {
                        let mut at = 0;
                        while let Some(end) = exact.first_match_end(&lower[at..]) {
                            let start = line_start(at + end - 1);
                            let end = line_end(start);
                            flagged.push((start, end));
                            at = end;
                        }
                        if first_pass_only {
                            Density::record(flagged.len(), pass.newlines + 1);
                        }
                    }
                }
            }
            let lines = if first_pass_only {
                self.flagged_and_forced(text, flagged, &pass.suspicious_chunks)
                    .into_iter()
                    .map(|(start, _, _)| (start, Vec::new()))
                    .collect()
            } else {
                self.screen_flagged(text, lower, flagged, &pass.suspicious_chunks)
            };
            BlockScreen {
                lines,
                newlines: pass.newlines,
                framed: pass.framed,
            }
        })
    }

    /// The flagged lines and those forced by a byte that may hide a literal (non-ASCII, `\\u`,
    /// `\\/`), merged in offset order: (start, end, forced).
    fn flagged_and_forced(
        &self,
        text: &[u8],
        flagged: Vec<(usize, usize)>,
        suspicious_chunks: &[usize],
    ) -> Vec<(usize, usize, bool)> {
        let line_start = |pos: usize| line_start(text, pos);
        let line_end = |start: usize| line_end(text, start);
        // Lines with non-ASCII bytes (case folding beyond ASCII could turn them into a literal)
        // and JSON escapes that can spell a literal differently (`\\u....`, `\\/`). The pass
        // noted the only chunks where either can be. Once a line is forced, the rest of it is
        // skipped (a long non-ASCII line costs one pass).
        let mut forced: Vec<(usize, usize)> = Vec::new();
        let mut covered = 0;
        for &chunk in suspicious_chunks {
            let mut pos = covered.max(chunk * CHUNK);
            let to = (chunk * CHUNK + CHUNK).min(text.len());
            while pos < to {
                let b = text[pos];
                let escape = b == b'\\' && matches!(text.get(pos + 1), Some(b'u') | Some(b'/'));
                if b >= 0x80 || escape {
                    let start = line_start(pos);
                    covered = line_end(start);
                    forced.push((start, covered));
                    pos = covered;
                } else {
                    pos += 1;
                }
            }
        }
        // Both lists are in offset order, without repeats: merge them.
        let mut out = Vec::with_capacity(flagged.len() + forced.len());
        let (mut f, mut g) = (0, 0);
        loop {
            match (flagged.get(f), forced.get(g)) {
                (None, None) => break,
                (Some(&(a, e)), Some(&(b, _))) if a < b => {
                    out.push((a, e, false));
                    f += 1;
                }
                (Some(&(a, _)), Some(&(b, e))) => {
                    f += usize::from(a == b);
                    g += 1;
                    out.push((b, e, true));
                }
                (Some(&(a, e)), None) => {
                    out.push((a, e, false));
                    f += 1;
                }
                (None, Some(&(b, e))) => {
                    out.push((b, e, true));
                    g += 1;
                }
            }
        }
        out
    }

    fn screen_flagged(
        &self,
        text: &[u8],
        lower: &[u8],
        flagged: Vec<(usize, usize)>,
        suspicious_chunks: &[usize],
    ) -> Vec<(usize, Vec<usize>)> {
        let Some(exact) = &self.exact else {
            return Vec::new();
        };
        let with_literals = self.with_literals();
        let mut found = LineLiterals::new(self.literal_count, self.rules.len());
        let mut out = Vec::new();
        for (start, end, forced) in self.flagged_and_forced(text, flagged, suspicious_chunks) {
            // Forced lines may match anything; when every literal belongs to one clause of one
            // predicate, being flagged already satisfies it: no second pass (it dominates when
            // most lines hit).
            if forced || self.single_clause_literal.is_some() {
                out.push((start, with_literals.clone()));
                continue;
            }
            found.next_line();
            exact.find_all(&lower[start..end], &mut found);
            let mut preds = Vec::new();
            self.decide(&mut found, &mut preds);
            if !preds.is_empty() {
                out.push((start, preds));
            }
        }
        out
    }

    /// True when any predicate may match.
    pub fn any(&self, raw: &[u8]) -> bool {
        let mut out = Vec::new();
        self.candidates(raw, &mut out);
        out.iter().any(|&b| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Fold;
    use crate::matcher::{Matcher, PatternKind};
    use std::sync::Arc;
    use unithunt_event::FieldPath;

    fn eq(field: &str, v: &str) -> Expr {
        Expr::any_of(
            vec![FieldPath::parse(field)],
            Expr::cmp(
                CmpOp::Eq,
                Expr::Slot(0),
                Expr::Lit(Value::str(v).into_owned()),
                Fold::Sensitive,
            ),
        )
    }

    #[test]
    fn clauses_shrink_to_shared_parts_and_shortest_alternatives() {
        let clause = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = simplify_clause(clause(&[
            "/etc/systemd/system/",
            "/lib/systemd/system/",
            "/usr/lib/systemd/system/",
            "/run/systemd/system/",
            "/.config/systemd/user/",
            "systemctl",
        ]));
        assert_eq!(
            got,
            clause(&["systemctl", "/systemd/system/", "/.config/systemd/user/"])
        );
        assert_eq!(
            simplify_clause(clause(&["python", "python3", "perl"])),
            clause(&["perl", "python"])
        );
        // Short shared parts are not merged on.
        assert_eq!(
            simplify_clause(clause(&["bash", "dash"])),
            clause(&["bash", "dash"])
        );
    }

    /// Issue 20: of the fragments a pattern requires, the one least likely to be everywhere is
    /// searched: `-generators/`, not `/usr/lib/systemd/` (in the path of the service manager, the
    /// parent of every service); `/run/user/`, not `/systemd/`.
    #[test]
    fn the_most_selective_required_fragment_is_searched() {
        let lits = |pattern: &str| {
            let m =
                Matcher::new(PatternKind::Wildcard, &[pattern.into()], Fold::Insensitive).unwrap();
            let e = Expr::any_of(
                vec![FieldPath::parse("file.path")],
                Expr::Match {
                    subject: Box::new(Expr::Slot(0)),
                    matcher: Arc::new(m),
                },
            );
            required_literals(&e)
        };
        assert_eq!(
            lits("/usr/lib/systemd/*-generators/*"),
            vec![vec!["-generators/".to_string()]]
        );
        assert_eq!(
            lits("/run/systemd/*-generators/*"),
            vec![vec!["-generators/".to_string()]]
        );
        assert_eq!(
            lits("/run/user/*/systemd/*"),
            vec![vec!["/run/user/".to_string()]]
        );
        assert_eq!(
            lits("/etc/systemd/system/*"),
            vec![vec!["/etc/systemd/system/".to_string()]]
        );
    }

    #[test]
    fn conjunctions_and_disjunctions() {
        let m = Matcher::new(
            PatternKind::Wildcard,
            &["/etc/systemd/*".into(), "*/.config/systemd/user/*".into()],
            Fold::Insensitive,
        )
        .unwrap();
        let pred = Expr::And(vec![
            eq("event.category", "file"),
            Expr::any_of(
                vec![FieldPath::parse("file.path")],
                Expr::Match {
                    subject: Box::new(Expr::Slot(0)),
                    matcher: Arc::new(m),
                },
            ),
            Expr::MustNot(Box::new(eq("process.name", "dpkg"))),
        ]);
        assert_eq!(
            required_literals(&pred),
            vec![
                vec![
                    "/.config/systemd/user/".to_string(),
                    "/etc/systemd/".to_string()
                ],
                vec!["file".to_string()]
            ]
        );
        let or = Expr::Or(vec![
            eq("a", "alpha"),
            Expr::MustNot(Box::new(eq("b", "beta"))),
        ]);
        assert!(
            required_literals(&or).is_empty(),
            "a negated branch requires nothing"
        );
    }

    #[test]
    fn block_scan_agrees_with_line_by_line() {
        let preds = [
            eq("a", "systemctl"),
            eq("b", "enable"),
            Expr::Lit(Value::Bool(true)),
        ];
        let refs: Vec<&Expr> = preds.iter().collect();
        let p = Prefilter::new(&refs);
        let lines = [
            r#"{"a":"systemctl","b":"x"}"#,
            r#"{"a":"nothing"}"#,
            r#"{"b":"ENABLE"}"#,
            "{\"a\":\"caf\u{e9}\"}",
            r#"{"a":"syst\u0065mctl"}"#,
            r#"{"a":"systemctl","b":"enable"}"#,
        ];
        let mut text = Vec::new();
        let mut starts = Vec::new();
        for l in lines {
            starts.push(text.len());
            text.extend_from_slice(l.as_bytes());
            text.push(b'\n');
        }
        let block = p.scan_block(&text);
        assert_eq!(p.always(), vec![2]);
        for (i, l) in lines.iter().enumerate() {
            let mut per_line = Vec::new();
            p.candidates(l.as_bytes(), &mut per_line);
            let want: Vec<usize> = (0..2).filter(|&r| per_line[r]).collect();
            let got = block
                .iter()
                .find(|(line, _)| *line == starts[i])
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            assert_eq!(got, want, "line {i}: {l}");
        }
    }

    #[test]
    fn skips_only_what_cannot_match() {
        let p = Prefilter::new(&[&eq("process.name", "systemctl")]);
        assert!(p.any(br#"{"process":{"name":"SYSTEMCTL"}}"#));
        assert!(!p.any(br#"{"process":{"name":"bash"}}"#));
        assert!(
            p.any(br#"{"process":{"name":"syst\u0065mctl"}}"#),
            "escapes defeat literals"
        );
        assert!(
            p.any("{\"process\":{\"name\":\"caf\u{e9}\"}}".as_bytes()),
            "non-ASCII is always a candidate"
        );
    }
}

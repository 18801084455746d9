//! `Genotype`: the discrete architecture DARTS derives and the evaluation network is built
//! from, in the reference's layout (quark0/darts `genotypes.py`).
//!
//! A cell has two inputs, `c_{k-2}` and `c_{k-1}` (indices 0 and 1), and `steps` intermediate
//! nodes (indices 2..steps+2). Entries `2i` and `2i+1` of `normal` / `reduce` are the two
//! inputs of node `i`: `(operation, input index)`, the stronger one first. The cell output is
//! the channel concatenation of the nodes listed in `*_concat`.

use serde::{Deserialize, Serialize};

use super::graph::ModelGraph;
use crate::error::{Error, Result};

/// A DARTS-style architecture: a normal cell and a reduction cell, two inputs per node.
///
/// JSON: `{"normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5], "reduce": [...],
/// "reduce_concat": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    /// The normal cell: `(operation, input index)` per node input, two per node.
    pub normal: Vec<(String, usize)>,
    /// The normal cell's nodes whose outputs the cell concatenates (`[2, 3, 4, 5]` in DARTS).
    pub normal_concat: Vec<usize>,
    /// The reduction cell: `(operation, input index)` per node input, two per node.
    pub reduce: Vec<(String, usize)>,
    /// The reduction cell's nodes whose outputs the cell concatenates.
    pub reduce_concat: Vec<usize>,
}

/// DARTS (first order) on CIFAR-10, as published in quark0/darts `genotypes.DARTS_V1`.
pub fn darts_v1() -> Genotype {
    Genotype {
        normal: cell(&[
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 2),
        ]),
        normal_concat: vec![2, 3, 4, 5],
        reduce: cell(&[
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("avg_pool_3x3", 0),
        ]),
        reduce_concat: vec![2, 3, 4, 5],
    }
}

/// DARTS (second order) on CIFAR-10, the paper's result: quark0/darts `genotypes.DARTS_V2`.
pub fn darts_v2() -> Genotype {
    Genotype {
        normal: cell(&[
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ]),
        normal_concat: vec![2, 3, 4, 5],
        reduce: cell(&[
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ]),
        reduce_concat: vec![2, 3, 4, 5],
    }
}

fn cell(entries: &[(&str, usize)]) -> Vec<(String, usize)> {
    entries.iter().map(|&(op, input)| (op.to_string(), input)).collect()
}

impl Genotype {
    /// Intermediate nodes of the normal cell (two entries per node).
    pub fn normal_steps(&self) -> usize {
        self.normal.len() / 2
    }

    /// Intermediate nodes of the reduction cell (two entries per node).
    pub fn reduce_steps(&self) -> usize {
        self.reduce.len() / 2
    }

    /// Checks what the reference's evaluation `Cell` assumes without checking: two entries per
    /// node, node `i` reading only from inputs `0..i+2` (the cell inputs and earlier nodes), every
    /// operation one of `ops`, and `*_concat` naming distinct intermediate nodes.
    pub fn validate(&self, ops: &[&str]) -> Result<()> {
        validate_cell("normal", &self.normal, &self.normal_concat, ops)?;
        validate_cell("reduce", &self.reduce, &self.reduce_concat, ops)
    }

    /// Pretty JSON, the layout of [`Genotype`]'s serde form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Genotype always serialises")
    }

    /// Reads the JSON form; the error gives line and column of what did not fit.
    pub fn from_json(text: &str) -> Result<Genotype> {
        serde_json::from_str(text).map_err(|e| Error::Config(format!("genotype JSON: {e}")))
    }

    /// The reference's text form, exactly as Python prints the namedtuple, so that it can be
    /// pasted into quark0/darts `genotypes.py`:
    /// `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[...])`.
    pub fn to_python(&self) -> String {
        fn entries(cell: &[(String, usize)]) -> String {
            cell.iter().map(|(op, input)| format!("('{op}', {input})")).collect::<Vec<_>>().join(", ")
        }
        fn indices(concat: &[usize]) -> String {
            concat.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        }
        format!(
            "Genotype(normal=[{}], normal_concat=[{}], reduce=[{}], reduce_concat=[{}])",
            entries(&self.normal),
            indices(&self.normal_concat),
            entries(&self.reduce),
            indices(&self.reduce_concat)
        )
    }

    /// Parses the reference's text form. Accepted: an optional `NAME =` in front, a module
    /// prefix (`genotypes.Genotype(...)`), keyword or positional arguments in any layout
    /// (whitespace, newlines, trailing commas, `#` comments), strings in `'` or `"`, lists or
    /// tuples (`[...]`, `(...)`), and concat lists written `[2, 3, 4, 5]`, `(2, 3, 4, 5)`,
    /// `range(2, 6)`, `range(6)`, `list(range(2, 6))` or `tuple(range(2, 6))`. The structure is
    /// parsed, not judged: call [`Genotype::validate`] to check it against an operation set.
    pub fn from_python(text: &str) -> Result<Genotype> {
        Parser { src: text, pos: 0 }.genotype()
    }

    /// The genotypes a Python module assigns at its top level (`NAME = Genotype(...)`, as in
    /// quark0/darts `genotypes.py`), in file order, each parsed on its own so that one broken
    /// assignment does not hide the others. An alias of an earlier one (`DARTS = DARTS_V2`)
    /// counts as a genotype of its own name; every other statement (imports, `PRIMITIVES`, the
    /// namedtuple) is skipped.
    pub fn python_module_genotypes(text: &str) -> Vec<(String, Result<Genotype>)> {
        let mut found: Vec<(String, Result<Genotype>)> = Vec::new();
        for (start, end) in top_level_statements(text) {
            let mut p = Parser { src: &text[..end], pos: start };
            let Some(name) = p.ident() else { continue };
            if p.peek_after_ws() != Some('=') {
                continue;
            }
            p.skip_ws();
            p.pos += 1;
            let rhs = p.pos;
            if p.dotted_name().is_some_and(|callee| is_genotype_callee(&callee)) && p.peek_after_ws() == Some('(') {
                p.pos = rhs;
                let genotype = p.call().and_then(|g| p.end("`Genotype(...)`").map(|()| g));
                found.push((name, genotype));
            } else {
                p.pos = rhs;
                let alias = p.ident().filter(|_| p.end("").is_ok());
                let Some(alias) = alias else { continue };
                let aliased = match found.iter().rev().find(|(n, _)| *n == alias) {
                    Some((_, Ok(g))) => Ok(g.clone()),
                    Some((_, Err(e))) => Err(Error::Config(format!("{name} = {alias}, and {alias}: {e}"))),
                    None => continue,
                };
                found.push((name, aliased));
            }
        }
        found
    }

    /// The genotype named `name` in a Python module ([`Genotype::python_module_genotypes`]).
    /// Without a name: the text parsed as one `Genotype(...)` ([`Genotype::from_python`]), or,
    /// failing that, the module's only genotype. The errors name what the module holds.
    pub fn from_python_module(text: &str, name: Option<&str>) -> Result<Genotype> {
        let module = |single_error: Option<Error>| {
            let mut found = Genotype::python_module_genotypes(text);
            let names = found.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            match (name, found.len()) {
                (Some(name), _) => match found.iter().position(|(n, _)| n == name) {
                    Some(i) => found.swap_remove(i).1,
                    None if found.is_empty() => Err(Error::Config(format!(
                        "no genotype named {name:?}: expected a `{name} = Genotype(...)` assignment, and the \
                         text has none"
                    ))),
                    None => Err(Error::Config(format!(
                        "no genotype named {name:?}: expected one of the names the text assigns: {names}"
                    ))),
                },
                (None, 0) => Err(single_error.expect("no name: the text was tried as one genotype first")),
                (None, 1) => found.remove(0).1,
                (None, n) => Err(Error::Config(format!(
                    "the text assigns {n} genotypes ({names}); expected a name to pick one (FILE:NAME)"
                ))),
            }
        };
        match name {
            Some(_) => module(None),
            None => Genotype::from_python(text).or_else(|e| module(Some(e))),
        }
    }

    /// Graphviz DOT of both cells, one cluster each ("normal", "reduce"), nodes named as in the
    /// reference's `visualize.py` (`c_{k-2}`, `c_{k-1}`, `0`..`n-1`, `c_{k}`), edges labelled with
    /// their operation.
    pub fn to_dot(&self) -> String {
        let (normal, reduce) = ModelGraph::from_genotype(self);
        let mut out = String::from("digraph genotype {\n  rankdir=LR;\n");
        for (name, graph) in [("normal", &normal), ("reduce", &reduce)] {
            out.push_str(&format!("  subgraph cluster_{name} {{\n    label=\"{name}\";\n"));
            graph.write_dot_body(&format!("{name}/"), "    ", &mut out);
            out.push_str("  }\n");
        }
        out.push_str("}\n");
        out
    }
}

fn validate_cell(name: &str, entries: &[(String, usize)], concat: &[usize], ops: &[&str]) -> Result<()> {
    let fail = |msg: String| Err(Error::Config(format!("genotype {name} cell: {msg}")));
    if entries.is_empty() || !entries.len().is_multiple_of(2) {
        return fail(format!("needs two (operation, input) entries per node, got {} entries", entries.len()));
    }
    for (k, (op, input)) in entries.iter().enumerate() {
        let node = k / 2;
        if !ops.contains(&op.as_str()) {
            return fail(format!("entry {k} ({op:?}, {input}): unknown operation; known: {}", ops.join(", ")));
        }
        if *input >= node + 2 {
            return fail(format!(
                "entry {k} ({op:?}, {input}): node {node} can read inputs 0..={} (the two cell inputs and \
                 earlier nodes), not {input}",
                node + 1
            ));
        }
    }
    let steps = entries.len() / 2;
    if concat.is_empty() {
        return fail("concat is empty; the cell would have no output".into());
    }
    for (k, &c) in concat.iter().enumerate() {
        if !(2..steps + 2).contains(&c) {
            return fail(format!("concat index {c} is not an intermediate node (2..={})", steps + 1));
        }
        if concat[..k].contains(&c) {
            return fail(format!("concat lists node {c} twice"));
        }
    }
    Ok(())
}

/// A recursive-descent reader for the `Genotype(...)` text. Positions are byte offsets into
/// `src`; errors turn them into line and column.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

const FIELDS: [&str; 4] = ["normal", "normal_concat", "reduce", "reduce_concat"];

/// `Genotype`, or `Genotype` reached through a module (`genotypes.Genotype`).
fn is_genotype_callee(name: &str) -> bool {
    name.rsplit('.').next() == Some("Genotype")
}

/// The byte ranges of a Python module's top-level statements: each starts at the beginning of a
/// line outside brackets, strings and comments, and runs to the next one. Enough of Python's
/// lexing to find them in a `genotypes.py` (brackets, `'`/`"` strings with escapes, triple
/// quotes, `#` comments).
fn top_level_statements(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let (mut depth, mut i, mut line_start) = (0usize, 0, true);
    while i < bytes.len() {
        let b = bytes[i];
        if line_start && depth == 0 && !b.is_ascii_whitespace() && b != b'#' {
            starts.push(i);
        }
        line_start = false;
        match b {
            b'\n' => line_start = true,
            b'#' => i += bytes[i..].iter().position(|&c| c == b'\n').unwrap_or(bytes.len() - i) - 1,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'\'' | b'"' => {
                let quote: &[u8] = if bytes[i..].starts_with(&[b; 3]) { &bytes[i..i + 3] } else { &bytes[i..i + 1] };
                let mut j = i + quote.len();
                while j < bytes.len() && !bytes[j..].starts_with(quote) && (quote.len() == 3 || bytes[j] != b'\n') {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                // Past the closing quote; an unclosed one-line string ends before its newline.
                i = if bytes[j.min(bytes.len())..].starts_with(quote) {
                    j + quote.len() - 1
                } else {
                    j.min(bytes.len()) - 1
                };
            }
            _ => {}
        }
        i += 1;
    }
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    starts.iter().copied().zip(ends).collect()
}

impl Parser<'_> {
    fn genotype(mut self) -> Result<Genotype> {
        self.skip_ws();
        let start = self.pos;
        let name = self.dotted_name().ok_or_else(|| self.error("`Genotype(`"))?;
        if is_genotype_callee(&name) {
            self.pos = start;
        } else {
            // `DARTS_V2 = Genotype(...)`: a Python assignment in front.
            if name.contains('.') {
                self.pos = start;
                return Err(self.error("`Genotype(`"));
            }
            self.expect('=', "`=` or `(` after the name (a whole genotypes.py: name the genotype to pick)")?;
        }
        let genotype = self.call()?;
        self.end("`Genotype(...)`")?;
        Ok(genotype)
    }

    /// Nothing but whitespace and comments left; else an error naming what came before.
    fn end(&mut self, after: &str) -> Result<()> {
        self.skip_ws();
        if self.pos < self.src.len() {
            return Err(self.error(&format!("end of text after {after}")));
        }
        Ok(())
    }

    /// `Genotype(...)` or `module.Genotype(...)`.
    fn call(&mut self) -> Result<Genotype> {
        self.skip_ws();
        let start = self.pos;
        match self.dotted_name() {
            Some(name) if is_genotype_callee(&name) => {}
            _ => {
                self.pos = start;
                return Err(self.error("`Genotype(`"));
            }
        }
        self.expect('(', "`(` after `Genotype`")?;
        let mut normal = None;
        let mut normal_concat = None;
        let mut reduce = None;
        let mut reduce_concat = None;
        let mut positional = 0;
        loop {
            self.skip_ws();
            if self.peek() == Some(')') {
                self.pos += 1;
                break;
            }
            let start = self.pos;
            let field = match self.ident() {
                Some(word) if self.peek_after_ws() == Some('=') => {
                    self.skip_ws();
                    self.pos += 1;
                    match FIELDS.iter().position(|f| *f == word) {
                        Some(i) => i,
                        None => {
                            self.pos = start;
                            return Err(self.error("one of `normal=`, `normal_concat=`, `reduce=`, `reduce_concat=`"));
                        }
                    }
                }
                _ => {
                    self.pos = start;
                    positional += 1;
                    if positional > FIELDS.len() {
                        return Err(self.error("`)`: Genotype takes four fields"));
                    }
                    positional - 1
                }
            };
            let seen = match field {
                0 => normal.replace(self.entries()?).is_some(),
                1 => normal_concat.replace(self.indices()?).is_some(),
                2 => reduce.replace(self.entries()?).is_some(),
                _ => reduce_concat.replace(self.indices()?).is_some(),
            };
            if seen {
                self.pos = start;
                return Err(self.error(&format!("each field once; `{}` is given twice", FIELDS[field])));
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {}
                _ => return Err(self.error("`,` or `)` after a Genotype field")),
            }
        }
        let missing = |field: &str| Error::Config(format!("genotype text: field `{field}` is missing"));
        Ok(Genotype {
            normal: normal.ok_or_else(|| missing("normal"))?,
            normal_concat: normal_concat.ok_or_else(|| missing("normal_concat"))?,
            reduce: reduce.ok_or_else(|| missing("reduce"))?,
            reduce_concat: reduce_concat.ok_or_else(|| missing("reduce_concat"))?,
        })
    }

    /// `[('op', 0), ('op', 1), ...]`, or the same as a tuple `(('op', 0), ...)`.
    fn entries(&mut self) -> Result<Vec<(String, usize)>> {
        self.skip_ws();
        let close = match self.peek() {
            Some('[') => ']',
            Some('(') => ')',
            _ => return Err(self.error("`[` opening a list of ('operation', input) pairs")),
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(out);
            }
            self.expect('(', "`(` opening an ('operation', input) pair, or `]`")?;
            let op = self.string()?;
            self.expect(',', "`,` between operation and input index")?;
            let input = self.int()?;
            self.skip_ws();
            if self.peek() == Some(',') {
                self.pos += 1;
            }
            self.expect(')', "`)` closing an ('operation', input) pair")?;
            out.push((op, input));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(self.error(&format!("`,` or `{close}` in a list of pairs"))),
            }
        }
    }

    /// `[2, 3, 4, 5]`, `(2, 3, 4, 5)`, `range(2, 6)`, `range(6)`, `list(range(2, 6))` or
    /// `tuple(range(2, 6))`.
    fn indices(&mut self) -> Result<Vec<usize>> {
        self.skip_ws();
        if let Some(close) = match self.peek() {
            Some('[') => Some(']'),
            Some('(') => Some(')'),
            _ => None,
        } {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                self.skip_ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(out);
                }
                out.push(self.int()?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(c) if c == close => {}
                    _ => return Err(self.error(&format!("`,` or `{close}` in a list of node indices"))),
                }
            }
        }
        let start = self.pos;
        match self.ident().as_deref() {
            Some(wrapper @ ("list" | "tuple")) => {
                self.expect('(', &format!("`(` after `{wrapper}`"))?;
                let out = self.indices()?;
                self.expect(')', &format!("`)` closing `{wrapper}(`"))?;
                Ok(out)
            }
            Some("range") => {
                self.expect('(', "`(` after `range`")?;
                let first = self.int()?;
                self.skip_ws();
                let (lo, hi) = if self.peek() == Some(',') {
                    self.pos += 1;
                    (first, self.int()?)
                } else {
                    (0, first)
                };
                self.expect(')', "`)` closing `range(`")?;
                Ok((lo..hi).collect())
            }
            _ => {
                self.pos = start;
                Err(self.error("a list of node indices: `[2, 3, 4, 5]`, `(2, 3, 4, 5)` or `range(2, 6)`"))
            }
        }
    }

    fn string(&mut self) -> Result<String> {
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.error("an operation name in quotes, like 'sep_conv_3x3'")),
        };
        let start = self.pos;
        let body = &self.src[start + 1..];
        match body.find([quote, '\n']) {
            Some(end) if body[end..].starts_with(quote) => {
                self.pos = start + 1 + end + 1;
                Ok(body[..end].to_string())
            }
            _ => Err(self.error(&format!("an operation name closed by {quote}"))),
        }
    }

    fn int(&mut self) -> Result<usize> {
        self.skip_ws();
        let digits = self.src[self.pos..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(self.error("a non-negative integer"));
        }
        let text = &self.src[self.pos..self.pos + digits];
        let value = text.parse().map_err(|_| self.error("an integer that fits in usize"))?;
        self.pos += digits;
        Ok(value)
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        if len == 0 || rest.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        self.pos += len;
        Some(rest[..len].to_string())
    }

    /// `name` or `module.name` (whitespace allowed around the dots, as Python allows).
    fn dotted_name(&mut self) -> Option<String> {
        let mut name = self.ident()?;
        while self.peek_after_ws() == Some('.') {
            let here = self.pos;
            self.skip_ws();
            self.pos += 1;
            match self.ident() {
                Some(part) => name = format!("{name}.{part}"),
                None => {
                    self.pos = here;
                    break;
                }
            }
        }
        Some(name)
    }

    fn expect(&mut self, c: char, what: &str) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_after_ws(&mut self) -> Option<char> {
        let here = self.pos;
        self.skip_ws();
        let c = self.peek();
        self.pos = here;
        c
    }

    /// Whitespace (newlines included) and `#` comments.
    fn skip_ws(&mut self) {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    /// "genotype text, line L, column C: expected X, found Y".
    fn error(&self, expected: &str) -> Error {
        let before = &self.src[..self.pos];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let rest = &self.src[self.pos..];
        let found = if rest.is_empty() {
            "end of text".to_string()
        } else {
            let snippet: String = rest.chars().take_while(|c| *c != '\n').take(20).collect();
            format!("{snippet:?}")
        };
        Error::Config(format!("genotype text, line {line}, column {column}: expected {expected}, found {found}"))
    }
}

/// What a search of the DARTS family derives: a DARTS genotype (normal and reduction cell) or,
/// in the NAS-Bench-201 space, one cell. In JSON a DARTS genotype is its object, a
/// NAS-Bench-201 cell its benchmark string, so older runs' files read as before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CellGenotype {
    /// The DARTS space's genotype.
    Darts(Genotype),
    /// The NAS-Bench-201 space's cell.
    NasBench201(super::NasBench201Cell),
}

impl CellGenotype {
    /// The DARTS genotype, if this is one.
    pub fn as_darts(&self) -> Option<&Genotype> {
        match self {
            CellGenotype::Darts(g) => Some(g),
            CellGenotype::NasBench201(_) => None,
        }
    }

    /// The DARTS genotype, or an error saying that a NAS-Bench-201 cell is not one (for what
    /// builds DARTS's evaluation network from it).
    pub fn into_darts(self) -> Result<Genotype> {
        match self {
            CellGenotype::Darts(g) => Ok(g),
            CellGenotype::NasBench201(c) => Err(Error::Config(format!(
                "{c} is a NAS-Bench-201 cell, not a DARTS genotype; retrain it with `train --arch`"
            ))),
        }
    }

    /// The NAS-Bench-201 cell, if this is one.
    pub fn as_nas_bench_201(&self) -> Option<&super::NasBench201Cell> {
        match self {
            CellGenotype::NasBench201(c) => Some(c),
            CellGenotype::Darts(_) => None,
        }
    }

    /// genotype.json's text.
    pub fn to_json(&self) -> String {
        match self {
            CellGenotype::Darts(g) => g.to_json(),
            CellGenotype::NasBench201(c) => c.to_json(),
        }
    }

    /// genotype.py's text: the reference's `Genotype(...)` or AutoDL-Projects' `Structure(...)`.
    pub fn to_python(&self) -> String {
        match self {
            CellGenotype::Darts(g) => g.to_python(),
            CellGenotype::NasBench201(c) => c.to_python(),
        }
    }

    /// genotype.dot's text.
    pub fn to_dot(&self) -> String {
        match self {
            CellGenotype::Darts(g) => g.to_dot(),
            CellGenotype::NasBench201(c) => c.to_dot(),
        }
    }
}

impl From<Genotype> for CellGenotype {
    fn from(g: Genotype) -> Self {
        CellGenotype::Darts(g)
    }
}

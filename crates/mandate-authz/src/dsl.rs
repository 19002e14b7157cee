//! OpenFGA DSL (schema 1.1) parser and renderer.
//!
//! Grammar handled (line oriented, indentation not significant beyond keywords):
//! `model` / `schema 1.1` / `type T` / `relations` / `define r: EXPR` / `condition c(p: T) { CEL }`,
//! `#` comments (at line start or after whitespace). EXPR follows OpenFGA: operands are `[types]`,
//! a relation, `rel from tupleset`, or a parenthesised EXPR; one operator kind per level:
//! `a or b or c`, `a and b`, `a but not b`.

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::model::{
    AuthorizationModel, ConditionDef, ConditionParamType, RelationDef, RestrictionKind, TypeDef,
    TypeRestriction, Userset,
};

type Parts = (String, Vec<TypeDef>, Vec<ConditionDef>);

/// The DSL form of a model; here rather than in `model` so that the model knows nothing of its
/// text forms (one direction of import).
impl AuthorizationModel {
    /// Parses the OpenFGA DSL (schema 1.1) and validates the result.
    pub fn from_dsl(src: &str) -> Result<Self, ModelError> {
        let (schema, types, conditions) = parse(src)?;
        Self::new(schema, types, conditions)
    }

    /// Canonical DSL text for the model.
    pub fn to_dsl(&self) -> String {
        render(self)
    }
}

fn err(line: usize, message: impl Into<String>) -> ModelError {
    ModelError::Syntax {
        line,
        message: message.into(),
    }
}

/// Removes a `#` comment: one at the start of the line or preceded by whitespace
/// (so `group#member` is kept).
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

pub(crate) fn parse(src: &str) -> Result<Parts, ModelError> {
    let lines: Vec<(usize, &str)> = src.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let mut schema: Option<String> = None;
    let mut seen_model = false;
    let mut types: Vec<TypeDef> = Vec::new();
    let mut conditions = Vec::new();
    let mut in_relations = false;
    let mut i = 0;
    while i < lines.len() {
        let (ln, raw) = lines[i];
        let line = strip_comment(raw).trim();
        i += 1;
        if line.is_empty() {
            continue;
        }
        let (kw, rest) = split_word(line);
        match kw {
            "model" => {
                if seen_model {
                    return Err(err(ln, "'model' appears twice"));
                }
                if !rest.is_empty() {
                    return Err(err(ln, "unexpected text after 'model'"));
                }
                seen_model = true;
            }
            "schema" => {
                if !seen_model || schema.is_some() || !types.is_empty() {
                    return Err(err(ln, "'schema' must follow 'model'"));
                }
                if rest.is_empty() {
                    return Err(err(ln, "missing schema version"));
                }
                schema = Some(rest.to_string());
            }
            "type" => {
                if schema.is_none() {
                    return Err(err(ln, "'type' before 'model' / 'schema'"));
                }
                if rest.is_empty() || rest.contains(char::is_whitespace) {
                    return Err(err(ln, "expected 'type NAME'"));
                }
                types.push(TypeDef {
                    name: rest.to_string(),
                    relations: Vec::new(),
                });
                in_relations = false;
            }
            "relations" => {
                if types.is_empty() || !rest.is_empty() {
                    return Err(err(ln, "'relations' must follow a 'type' line"));
                }
                in_relations = true;
            }
            "define" => {
                if !in_relations {
                    return Err(err(ln, "'define' outside a 'relations' block"));
                }
                let t = types
                    .last_mut()
                    .ok_or_else(|| err(ln, "'define' outside a type"))?;
                let (name, expr) = rest
                    .split_once(':')
                    .ok_or_else(|| err(ln, "expected 'define NAME: EXPRESSION'"))?;
                let name = name.trim();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(err(ln, "expected 'define NAME: EXPRESSION'"));
                }
                let (rewrite, directly_related) = parse_expression(expr, ln)?;
                t.relations.push(RelationDef {
                    name: name.to_string(),
                    rewrite,
                    directly_related,
                });
            }
            "condition" => {
                if schema.is_none() {
                    return Err(err(ln, "'condition' before 'model' / 'schema'"));
                }
                // Gather text until braces balance.
                let mut text = String::from(rest);
                let mut depth = brace_delta(rest);
                let opened = rest.contains('{');
                let mut seen_open = opened;
                while (depth > 0 || !seen_open) && i < lines.len() {
                    let (_, more) = lines[i];
                    i += 1;
                    text.push('\n');
                    text.push_str(more);
                    if more.contains('{') {
                        seen_open = true;
                    }
                    depth += brace_delta(more);
                }
                if depth != 0 || !seen_open {
                    return Err(err(ln, "unterminated condition body"));
                }
                conditions.push(parse_condition(&text, ln)?);
                in_relations = false;
            }
            "module" | "extend" => {
                return Err(err(
                    ln,
                    "modular models ('module'/'extend') are not supported",
                ));
            }
            _ => return Err(err(ln, format!("unexpected '{kw}'"))),
        }
    }
    if !seen_model {
        return Err(err(1, "missing 'model' header"));
    }
    let schema = schema.ok_or_else(|| err(1, "missing 'schema' line"))?;
    Ok((schema, types, conditions))
}

fn brace_delta(s: &str) -> i64 {
    s.chars().fold(0, |d, c| match c {
        '{' => d + 1,
        '}' => d - 1,
        _ => d,
    })
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn parse_condition(text: &str, ln: usize) -> Result<ConditionDef, ModelError> {
    let open = text
        .find('(')
        .ok_or_else(|| err(ln, "condition: expected '(' after name"))?;
    let name = text[..open].trim().to_string();
    let close = text[open..]
        .find(')')
        .map(|x| x + open)
        .ok_or_else(|| err(ln, "condition: missing ')'"))?;
    let params_src = &text[open + 1..close];
    let mut parameters = BTreeMap::new();
    for p in split_top_level(params_src) {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (pname, ty) = p.split_once(':').ok_or_else(|| {
            err(
                ln,
                format!("condition '{name}': expected 'name: type' in '{p}'"),
            )
        })?;
        let pname = pname.trim().to_string();
        let ty = parse_param_type(ty.trim()).ok_or_else(|| {
            err(
                ln,
                format!("condition '{name}': unknown type '{}'", ty.trim()),
            )
        })?;
        if parameters.insert(pname.clone(), ty).is_some() {
            return Err(err(
                ln,
                format!("condition '{name}': parameter '{pname}' repeated"),
            ));
        }
    }
    let body = &text[close + 1..];
    let bo = body
        .find('{')
        .ok_or_else(|| err(ln, "condition: missing '{'"))?;
    let bc = body
        .rfind('}')
        .ok_or_else(|| err(ln, "condition: missing '}'"))?;
    if bc < bo || !body[bc + 1..].trim().is_empty() || !body[..bo].trim().is_empty() {
        return Err(err(ln, "condition: malformed body"));
    }
    let expression = body[bo + 1..bc].trim().to_string();
    Ok(ConditionDef {
        name,
        expression,
        parameters,
    })
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_param_type(s: &str) -> Option<ConditionParamType> {
    let simple = |n: &str| {
        Some(ConditionParamType {
            type_name: n.to_string(),
            generic_types: Vec::new(),
        })
    };
    if let Some(inner) = s.strip_prefix("list<").and_then(|x| x.strip_suffix('>')) {
        return Some(ConditionParamType {
            type_name: "TYPE_NAME_LIST".into(),
            generic_types: vec![parse_param_type(inner.trim())?],
        });
    }
    if let Some(inner) = s.strip_prefix("map<").and_then(|x| x.strip_suffix('>')) {
        return Some(ConditionParamType {
            type_name: "TYPE_NAME_MAP".into(),
            generic_types: vec![parse_param_type(inner.trim())?],
        });
    }
    match s {
        "int" => simple("TYPE_NAME_INT"),
        "uint" => simple("TYPE_NAME_UINT"),
        "double" => simple("TYPE_NAME_DOUBLE"),
        "bool" => simple("TYPE_NAME_BOOL"),
        "bytes" => simple("TYPE_NAME_BYTES"),
        "string" => simple("TYPE_NAME_STRING"),
        "duration" => simple("TYPE_NAME_DURATION"),
        "timestamp" => simple("TYPE_NAME_TIMESTAMP"),
        "ipaddress" => simple("TYPE_NAME_IPADDRESS"),
        "any" => simple("TYPE_NAME_ANY"),
        _ => None,
    }
}

fn param_type_dsl(p: &ConditionParamType) -> String {
    let base = match p.type_name.as_str() {
        "TYPE_NAME_INT" => "int",
        "TYPE_NAME_UINT" => "uint",
        "TYPE_NAME_DOUBLE" => "double",
        "TYPE_NAME_BOOL" => "bool",
        "TYPE_NAME_BYTES" => "bytes",
        "TYPE_NAME_STRING" => "string",
        "TYPE_NAME_DURATION" => "duration",
        "TYPE_NAME_TIMESTAMP" => "timestamp",
        "TYPE_NAME_IPADDRESS" => "ipaddress",
        "TYPE_NAME_ANY" => "any",
        "TYPE_NAME_LIST" => "list",
        "TYPE_NAME_MAP" => "map",
        other => other,
    };
    match p.generic_types.first() {
        Some(g) => format!("{base}<{}>", param_type_dsl(g)),
        None => base.to_string(),
    }
}

// ---- expressions ----

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    LParen,
    RParen,
    Types(&'a str),
    Word(&'a str),
}

fn tokenize(s: &str, ln: usize) -> Result<Vec<Tok<'_>>, ModelError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == b')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == b'[' {
            let end = s[i..].find(']').ok_or_else(|| err(ln, "missing ']'"))? + i;
            out.push(Tok::Types(&s[i + 1..end]));
            i = end + 1;
        } else if c == b']' {
            return Err(err(ln, "unexpected ']'"));
        } else {
            let start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && !matches!(b[i], b'(' | b')' | b'[' | b']')
            {
                i += 1;
            }
            out.push(Tok::Word(&s[start..i]));
        }
    }
    Ok(out)
}

struct ExprParser<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    ln: usize,
    restrictions: Option<Vec<TypeRestriction>>,
}

#[derive(PartialEq, Clone, Copy)]
enum Op {
    Or,
    And,
    ButNot,
}

fn parse_expression(src: &str, ln: usize) -> Result<(Userset, Vec<TypeRestriction>), ModelError> {
    let toks = tokenize(src, ln)?;
    if toks.is_empty() {
        return Err(err(ln, "empty relation definition"));
    }
    let mut p = ExprParser {
        toks,
        pos: 0,
        ln,
        restrictions: None,
    };
    let u = p.expr(0)?;
    if p.pos != p.toks.len() {
        return Err(err(ln, format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok((u, p.restrictions.unwrap_or_default()))
}

impl<'a> ExprParser<'a> {
    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos)
    }

    fn op(&mut self) -> Result<Option<Op>, ModelError> {
        match self.peek() {
            Some(Tok::Word("or")) => {
                self.pos += 1;
                Ok(Some(Op::Or))
            }
            Some(Tok::Word("and")) => {
                self.pos += 1;
                Ok(Some(Op::And))
            }
            Some(Tok::Word("but")) => {
                self.pos += 1;
                if self.peek() != Some(&Tok::Word("not")) {
                    return Err(err(self.ln, "expected 'not' after 'but'"));
                }
                self.pos += 1;
                Ok(Some(Op::ButNot))
            }
            _ => Ok(None),
        }
    }

    fn expr(&mut self, nesting: usize) -> Result<Userset, ModelError> {
        if nesting > 32 {
            return Err(err(self.ln, "expression nested too deeply"));
        }
        let first = self.operand(nesting)?;
        let mut items = vec![first];
        let mut kind: Option<Op> = None;
        loop {
            match self.peek() {
                None | Some(Tok::RParen) => break,
                _ => {}
            }
            let Some(op) = self.op()? else {
                return Err(err(
                    self.ln,
                    format!("expected 'or', 'and' or 'but not', found {:?}", self.peek()),
                ));
            };
            match kind {
                None => kind = Some(op),
                Some(k) if k == op && op != Op::ButNot => {}
                Some(_) => {
                    return Err(err(
                        self.ln,
                        "mixing operators needs parentheses (e.g. 'a or (b and c)')",
                    ));
                }
            }
            items.push(self.operand(nesting)?);
        }
        Ok(match kind {
            None => items.pop().unwrap_or(Userset::This),
            Some(Op::Or) => Userset::Union(items),
            Some(Op::And) => Userset::Intersection(items),
            Some(Op::ButNot) => {
                let sub = items.pop().unwrap_or(Userset::This);
                let base = items.pop().unwrap_or(Userset::This);
                Userset::Difference {
                    base: Box::new(base),
                    subtract: Box::new(sub),
                }
            }
        })
    }

    fn operand(&mut self, nesting: usize) -> Result<Userset, ModelError> {
        let ln = self.ln;
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let u = self.expr(nesting + 1)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(err(ln, "missing ')'"));
                }
                self.pos += 1;
                Ok(u)
            }
            Some(Tok::Types(list)) => {
                self.pos += 1;
                if self.restrictions.is_some() {
                    return Err(err(ln, "only one direct assignment '[...]' per relation"));
                }
                self.restrictions = Some(parse_types(list, ln)?);
                Ok(Userset::This)
            }
            Some(Tok::Word(w)) => {
                if matches!(w, "or" | "and" | "but" | "not" | "from") {
                    return Err(err(ln, format!("unexpected keyword '{w}'")));
                }
                self.pos += 1;
                if self.peek() == Some(&Tok::Word("from")) {
                    self.pos += 1;
                    match self.peek().cloned() {
                        Some(Tok::Word(ts))
                            if !matches!(ts, "or" | "and" | "but" | "not" | "from") =>
                        {
                            self.pos += 1;
                            Ok(Userset::TupleToUserset {
                                tupleset: ts.to_string(),
                                computed: w.to_string(),
                            })
                        }
                        _ => Err(err(ln, format!("expected a relation after '{w} from'"))),
                    }
                } else {
                    Ok(Userset::Computed(w.to_string()))
                }
            }
            Some(Tok::RParen) => Err(err(ln, "unexpected ')'")),
            None => Err(err(ln, "expression ends too early")),
        }
    }
}

fn parse_types(list: &str, ln: usize) -> Result<Vec<TypeRestriction>, ModelError> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(ln, "empty entry in type list"));
        }
        let words: Vec<&str> = item.split_whitespace().collect();
        let (spec, condition) = match words.as_slice() {
            [spec] => (*spec, None),
            [spec, "with", cond] => (*spec, Some(cond.to_string())),
            _ => return Err(err(ln, format!("invalid type restriction '{item}'"))),
        };
        let (type_name, kind) = if let Some(t) = spec.strip_suffix(":*") {
            (t, RestrictionKind::Wildcard)
        } else if let Some((t, r)) = spec.split_once('#') {
            (t, RestrictionKind::Userset(r.to_string()))
        } else {
            (spec, RestrictionKind::Direct)
        };
        if type_name.is_empty() || type_name.contains([':', '#', '*']) {
            return Err(err(ln, format!("invalid type restriction '{item}'")));
        }
        if let RestrictionKind::Userset(r) = &kind
            && (r.is_empty() || r.contains([':', '#', '*']))
        {
            return Err(err(ln, format!("invalid type restriction '{item}'")));
        }
        out.push(TypeRestriction {
            type_name: type_name.to_string(),
            kind,
            condition,
        });
    }
    Ok(out)
}

// ---- rendering ----

fn render_userset(u: &Userset, types: &[TypeRestriction], top: bool) -> String {
    let inner = |c: &Userset| -> String {
        match c {
            Userset::Union(_) | Userset::Intersection(_) | Userset::Difference { .. } => {
                format!("({})", render_userset(c, types, false))
            }
            _ => render_userset(c, types, false),
        }
    };
    let _ = top;
    match u {
        Userset::This => {
            let items: Vec<String> = types
                .iter()
                .map(|t| match &t.condition {
                    Some(c) => format!("{} with {}", t.display(), c),
                    None => t.display(),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        Userset::Computed(r) => r.clone(),
        Userset::TupleToUserset { tupleset, computed } => format!("{computed} from {tupleset}"),
        Userset::Union(c) => c.iter().map(inner).collect::<Vec<_>>().join(" or "),
        Userset::Intersection(c) => c.iter().map(inner).collect::<Vec<_>>().join(" and "),
        Userset::Difference { base, subtract } => {
            format!("{} but not {}", inner(base), inner(subtract))
        }
    }
}

pub(crate) fn render(m: &AuthorizationModel) -> String {
    let mut s = format!("model\n  schema {}\n", m.schema_version());
    for t in m.types() {
        s.push_str(&format!("\ntype {}\n", t.name));
        if !t.relations.is_empty() {
            s.push_str("  relations\n");
            for r in &t.relations {
                s.push_str(&format!(
                    "    define {}: {}\n",
                    r.name,
                    render_userset(&r.rewrite, &r.directly_related, true)
                ));
            }
        }
    }
    for c in m.conditions().values() {
        let params: Vec<String> = c
            .parameters
            .iter()
            .map(|(n, t)| format!("{n}: {}", param_type_dsl(t)))
            .collect();
        s.push_str(&format!(
            "\ncondition {}({}) {{\n  {}\n}}\n",
            c.name,
            params.join(", "),
            c.expression
        ));
    }
    s
}

//! Builds the JSON value of one YAML document the way Kubernetes reads it.
//!
//! `kubectl` and the API server turn YAML into JSON with `sigs.k8s.io/yaml`
//! (`YAMLToJSON`), which parses with the YAML 1.1 library
//! `go.yaml.in/yaml/v2` (formerly `gopkg.in/yaml.v2`). Its plain scalars
//! differ from YAML 1.2's, and a manifest means what that library reads:
//! - `y`, `yes`, `on` and `n`, `no`, `off` (in lower, Title and UPPER case)
//!   are booleans, as are `true`/`false` in those cases (`resolve.go`,
//!   `resolveMapList`). A boolean where the API expects a string is a decode
//!   error in Kubernetes too (`YAMLToJSON` has no target type, so the
//!   `true` goes to the server as JSON `true`).
//! - Integers are read by Go's `strconv.ParseInt(s, 0, 64)` after removing
//!   `_`: `0x1F` is hexadecimal, `0o17`, `0b101` and a leading `0` (`0644`)
//!   octal or binary.
//! - Merge keys (`<<: *anchor` or `<<: [*a, *b]`) copy the merged
//!   mappings' keys in document order: a key written after `<<` wins, one
//!   written before it is replaced; in a list, earlier mappings win
//!   (`decode.go`, `merge`).
//! - Boolean and number mapping keys become their text (`true`, `1`), as
//!   `YAMLToJSON` converts them.
//!
//! Quoted and block scalars are always strings; a plain scalar with a
//! non-core tag is a string (go-yaml's `resolvableTag`). Timestamps are kept
//! as written.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// Nodes that aliases may copy in one document, in all: an alias to an
/// alias to … ("billion laughs") would otherwise build an exponential value.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// Collections nested deeper than this are refused (the limit
/// `serde_norway` has too): composing recurses once per level.
pub const MAX_DEPTH: usize = 128;

/// Why a document could not be composed; positions are 1-based and relative
/// to the text given.
#[derive(Debug)]
pub struct ComposeError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The value of the first document in `text` (`Null` for an empty one).
pub fn compose(text: &str) -> Result<Value, ComposeError> {
    let mut composer = Composer {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        alias_nodes: 0,
        depth: 0,
        last: Span::default(),
    };
    composer.document()
}

struct Composer<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    /// Anchored values and their node counts.
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    /// Collections open around the current node.
    depth: usize,
    last: Span,
}

/// A composed node and how many nodes it holds (for the alias budget).
type Node = (Value, usize);

impl<'a> Composer<'a> {
    fn next(&mut self) -> Result<Option<Event<'a>>, ComposeError> {
        match self.events.next() {
            None => Ok(None),
            Some(Ok((event, span))) => {
                self.last = span;
                Ok(Some(event))
            }
            Some(Err(err)) => Err(ComposeError {
                line: err.marker().line(),
                column: err.marker().col() + 1,
                message: err.info(),
            }),
        }
    }

    fn error(&self, message: impl Into<String>) -> ComposeError {
        ComposeError {
            line: self.last.start.line(),
            column: self.last.start.col() + 1,
            message: message.into(),
        }
    }

    fn document(&mut self) -> Result<Value, ComposeError> {
        while let Some(event) = self.next()? {
            match event {
                Event::StreamStart | Event::DocumentStart(..) => {}
                Event::DocumentEnd | Event::StreamEnd => return Ok(Value::Null),
                event if event.is_node() => return Ok(self.node(event)?.0),
                _ => {}
            }
        }
        Ok(Value::Null)
    }

    /// The next node's event, skipping presentation events.
    fn next_node(&mut self) -> Result<Event<'a>, ComposeError> {
        loop {
            match self.next()? {
                Some(event) if event.is_node() => return Ok(event),
                Some(
                    event @ (Event::MappingEnd
                    | Event::SequenceEnd
                    | Event::DocumentEnd
                    | Event::StreamEnd),
                ) => return Ok(event),
                Some(_) => {}
                None => return Err(self.error("unexpected end of the document")),
            }
        }
    }

    fn node(&mut self, event: Event<'a>) -> Result<Node, ComposeError> {
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                (self.scalar(&text, style, tag.as_deref())?, anchor)
            }
            Event::SequenceStart(_, anchor, _) => (self.nested(Self::sequence)?, anchor),
            Event::MappingStart(_, anchor, _) => (self.nested(Self::mapping)?, anchor),
            Event::Alias(id) => return self.alias(id),
            _ => return Err(self.error("expected a node")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn nested(
        &mut self,
        collection: fn(&mut Self) -> Result<Node, ComposeError>,
    ) -> Result<Node, ComposeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "collections nested deeper than {MAX_DEPTH} levels: recursion limit exceeded"
            )));
        }
        let node = collection(self);
        self.depth -= 1;
        node
    }

    fn alias(&mut self, id: usize) -> Result<Node, ComposeError> {
        let Some((value, nodes)) = self.anchors.get(&id) else {
            return Err(self.error("alias to an unknown anchor"));
        };
        self.alias_nodes += nodes;
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(self.error(format!(
                "aliases copy more than {MAX_ALIAS_NODES} nodes: the repetition limit is exceeded"
            )));
        }
        Ok((value.clone(), *nodes))
    }

    fn scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
    ) -> Result<Node, ComposeError> {
        let core_tag = tag.and_then(|t| t.is_yaml_core_schema().then(|| t.suffix()));
        let value = match (core_tag, tag) {
            (Some(expected @ ("bool" | "int" | "float" | "null")), _) => {
                let value = resolve_plain(text);
                if !matches_core_tag(&value, expected) {
                    return Err(self.error(format!("cannot decode this scalar as !!{expected}")));
                }
                self.representable(value)?
            }
            // `!!str`, any other tag, and quoted and block scalars: text.
            (_, Some(_)) => Value::String(text.to_owned()),
            (_, None) if style != ScalarStyle::Plain => Value::String(text.to_owned()),
            (_, None) => self.representable(resolve_plain(text))?,
        };
        Ok((value, 1))
    }

    /// JSON has no NaN or infinity: `YAMLToJSON` fails on them too.
    fn representable(&self, value: Resolved) -> Result<Value, ComposeError> {
        match value {
            Resolved::Value(value) => Ok(value),
            Resolved::NotJson => {
                Err(self
                    .error("`.nan` and `.inf` have no JSON form; quote the value if it is text"))
            }
        }
    }

    fn sequence(&mut self) -> Result<Node, ComposeError> {
        let (mut items, mut nodes) = (Vec::new(), 1);
        loop {
            match self.next_node()? {
                Event::SequenceEnd => return Ok((Value::Array(items), nodes)),
                event if event.is_node() => {
                    let (item, n) = self.node(event)?;
                    items.push(item);
                    nodes += n;
                }
                _ => return Err(self.error("unterminated sequence")),
            }
        }
    }

    fn mapping(&mut self) -> Result<Node, ComposeError> {
        let (mut map, mut nodes) = (Map::new(), 1);
        loop {
            let key_event = match self.next_node()? {
                Event::MappingEnd => return Ok((Value::Object(map), nodes)),
                event if event.is_node() => event,
                _ => return Err(self.error("unterminated mapping")),
            };
            let merge = is_merge_key(&key_event);
            let key = if merge {
                None
            } else {
                Some(self.key(key_event)?)
            };
            let value_event = self.next_node()?;
            if !value_event.is_node() {
                return Err(self.error("mapping key without a value"));
            }
            let (value, n) = self.node(value_event)?;
            nodes += n;
            match key {
                Some(key) => {
                    map.insert(key, value);
                }
                None => self.merge(&mut map, value)?,
            }
        }
    }

    /// `<<: {…}` or `<<: [{…}, {…}]`: earlier mappings of a list win.
    fn merge(&self, map: &mut Map<String, Value>, value: Value) -> Result<(), ComposeError> {
        let want_map = || self.error("a merge key (`<<`) needs a mapping or a list of mappings");
        match value {
            Value::Object(merged) => map.extend(merged),
            Value::Array(list) => {
                for item in list.into_iter().rev() {
                    match item {
                        Value::Object(merged) => map.extend(merged),
                        _ => return Err(want_map()),
                    }
                }
            }
            _ => return Err(want_map()),
        }
        Ok(())
    }

    /// A mapping key as `YAMLToJSON` writes it: scalars as their text.
    fn key(&mut self, event: Event<'a>) -> Result<String, ComposeError> {
        let (value, _) = self.node(event)?;
        match value {
            Value::String(text) => Ok(text),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Null => Err(self.error("a mapping key is null")),
            Value::Array(_) | Value::Object(_) => {
                Err(self.error("a mapping key is a list or a mapping; JSON keys are strings"))
            }
        }
    }
}

/// The value of an untagged plain scalar; `None` for `.nan` and `.inf`,
/// which have no JSON form.
pub fn plain_scalar(text: &str) -> Option<Value> {
    match resolve_plain(text) {
        Resolved::Value(value) => Some(value),
        Resolved::NotJson => None,
    }
}

/// A scalar mapping key as `YAMLToJSON` writes it; `None` for a null.
pub fn key_text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `<<` written plainly (or tagged `!!merge`) is a merge key.
fn is_merge_key(event: &Event<'_>) -> bool {
    match event {
        Event::Scalar(text, style, _, tag) => {
            text == "<<"
                && match tag {
                    None => *style == ScalarStyle::Plain,
                    Some(tag) => tag.is_yaml_core_schema() && tag.suffix() == "merge",
                }
        }
        _ => false,
    }
}

/// A plain scalar's value.
enum Resolved {
    Value(Value),
    /// `.nan` or `.inf`.
    NotJson,
}

fn matches_core_tag(value: &Resolved, tag: &str) -> bool {
    match (value, tag) {
        (Resolved::Value(Value::Bool(_)), "bool") | (Resolved::Value(Value::Null), "null") => true,
        (Resolved::Value(Value::Number(n)), "int") => !n.is_f64(),
        (Resolved::Value(Value::Number(_)), "float") | (Resolved::NotJson, "float") => true,
        _ => false,
    }
}

/// go-yaml v2's `resolve` for an untagged plain scalar.
fn resolve_plain(text: &str) -> Resolved {
    // Most scalars are words that start with a letter no boolean, null or
    // number starts with: text, without comparing it to every spelling.
    if text
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() && !b"yYnNtTfFoO".contains(b))
    {
        return Resolved::Value(Value::String(text.to_owned()));
    }
    let value = match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => return Resolved::NotJson,
        _ => match text.as_bytes()[0] {
            b'.' => float(text).unwrap_or_else(|| Value::String(text.to_owned())),
            b'0'..=b'9' | b'+' | b'-' => {
                number(text).unwrap_or_else(|| Value::String(text.to_owned()))
            }
            _ => Value::String(text.to_owned()),
        },
    };
    Resolved::Value(value)
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`) reads
/// it once `_` is removed, else a YAML-style float.
fn number(text: &str) -> Option<Value> {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(n) = go_int(&plain) {
        return Some(Value::Number(n));
    }
    let is_yaml_float = {
        let digits = plain.trim_start_matches(['+', '-']);
        let (mantissa, exponent) = match digits.find(['e', 'E']) {
            Some(i) => (&digits[..i], Some(&digits[i + 1..])),
            None => (digits, None),
        };
        let mantissa_ok = match mantissa.split_once('.') {
            Some((int, frac)) => {
                (int.is_empty() && !frac.is_empty() || !int.is_empty())
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit())
            }
            None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
        };
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        });
        mantissa_ok && exponent_ok
    };
    if is_yaml_float {
        return float(&plain);
    }
    None
}

/// A float; a whole one becomes an integer, as Go's `json.Marshal` writes
/// `float64(1000)` as `1000` (so `1e3` fills an integer field).
fn float(text: &str) -> Option<Value> {
    let value: f64 = text.parse().ok()?;
    let whole = value.fract() == 0.0 && value.abs() < 1e21;
    if whole && value >= i64::MIN as f64 && value <= i64::MAX as f64 {
        return Some(Value::Number(Number::from(value as i64)));
    }
    if whole && value >= 0.0 && value <= u64::MAX as f64 {
        return Some(Value::Number(Number::from(value as u64)));
    }
    Number::from_f64(value).map(Value::Number)
}

/// Go's base-0 integer syntax: optional sign, then `0x`, `0o`, `0b`, a
/// leading `0` (octal) or decimal digits.
fn go_int(text: &str) -> Option<Number> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude)
            .ok()
            .map(|m| -m)
            .or((magnitude == 1 << 63).then_some(i64::MIN))?;
        Some(Number::from(value))
    } else {
        Some(Number::from(magnitude))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn yaml(text: &str) -> Value {
        compose(text).unwrap_or_else(|e| panic!("{text:?}: {}", e.message))
    }

    #[test]
    fn yaml_1_1_booleans_are_booleans_where_go_yaml_reads_them() {
        let doc = yaml(
            "a: yes\nb: On\nc: off\nd: N\ne: Y\nf: TRUE\ng: 'yes'\nh: \"on\"\ni: yess\nj: |\n  yes\nk: !!str yes\n",
        );
        assert_eq!(
            doc,
            json!({"a": true, "b": true, "c": false, "d": false, "e": true, "f": true,
                   "g": "yes", "h": "on", "i": "yess", "j": "yes\n", "k": "yes"})
        );
    }

    #[test]
    fn numbers_as_go_parses_them() {
        let doc = yaml(
            "a: 0644\nb: 0x1F\nc: 1_000\nd: -12\ne: 1.5\nf: 1e3\ng: .5\nh: 0o17\ni: 0b11\nj: 08\nk: 1.2.3\nl: 18446744073709551615\nm: -0\n",
        );
        assert_eq!(
            doc,
            json!({"a": 420, "b": 31, "c": 1000, "d": -12, "e": 1.5, "f": 1000, "g": 0.5,
                   "h": 15, "i": 3, "j": 8, "k": "1.2.3", "l": 18446744073709551615u64, "m": 0})
        );
    }

    #[test]
    fn nulls_and_keys() {
        let doc = yaml("a: ~\nb:\nc: null\n1: x\nyes: y\n'no': z\n");
        assert_eq!(
            doc,
            json!({"a": null, "b": null, "c": null, "1": "x", "true": true, "no": "z"})
        );
        assert!(compose("~: a\n").is_err());
        assert!(compose("[a]: b\n").is_err());
    }

    #[test]
    fn merge_keys_follow_go_yaml_v2() {
        let doc = yaml(
            "base: &b {a: 1, b: 1}\nother: &o {b: 2, c: 2}\nafter:\n  <<: *b\n  a: 9\nbefore:\n  a: 9\n  <<: *b\nlist:\n  <<: [*b, *o]\nquoted:\n  '<<': *b\n",
        );
        assert_eq!(doc["after"], json!({"a": 9, "b": 1}));
        assert_eq!(doc["before"], json!({"a": 1, "b": 1}), "the merge replaces");
        assert_eq!(doc["list"], json!({"a": 1, "b": 1, "c": 2}), "earlier wins");
        assert_eq!(doc["quoted"], json!({"<<": {"a": 1, "b": 1}}));
        let err = compose("a: &a [1]\nb:\n  <<: *a\n").unwrap_err();
        assert!(err.message.contains("merge key"), "{}", err.message);
    }

    #[test]
    fn aliases_copy_their_anchor_within_a_budget() {
        assert_eq!(yaml("a: &x [1, 2]\nb: *x\n")["b"], json!([1, 2]));
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = compose(&text).unwrap_err();
        assert!(err.message.contains("repetition limit"), "{}", err.message);
    }

    #[test]
    fn empty_documents_and_errors() {
        assert_eq!(yaml(""), Value::Null);
        assert_eq!(yaml("# c\n"), Value::Null);
        let err = compose("a: 1\nb: [\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        assert!(compose("a: .nan\n").is_err());
        assert_eq!(yaml("a: '.nan'\n"), json!({"a": ".nan"}));
    }
}

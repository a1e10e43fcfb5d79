//! Calico's selector expressions (`spec.selector`, `namespaceSelector`,
//! `serviceAccountSelector`), parsed and matched as Calico's
//! `libcalico-go/lib/selector/parser` reads them:
//!
//! - `all()` every endpoint; `global()` only non-namespaced resources (never
//!   a pod);
//! - `has(k)`; `k == 'v'`; `k != 'v'` (also true when `k` is absent);
//!   `k in {'a', 'b'}`; `k not in {…}` (also true when absent);
//!   `k contains 's'`, `k starts with 's'`, `k ends with 's'`;
//! - `!e`, `e && e`, `e || e`, parentheses; `!` binds tightest, then `&&`,
//!   then `||`. An empty selector is `all()`.
//!
//! Strings are quoted with `'` or `"`.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed Calico selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoSelector(Expr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    All,
    Global,
    Has(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// Why a selector could not be parsed: the position (in characters) and
/// what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub position: usize,
    pub expected: &'static str,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid Calico selector: expected {} at character {}",
            self.expected, self.position
        )
    }
}

impl CalicoSelector {
    /// `all()`.
    pub fn all() -> Self {
        CalicoSelector(Expr::All)
    }

    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        parser.skip_space();
        if parser.at == parser.chars.len() {
            return Ok(Self::all());
        }
        let expr = parser.or()?;
        parser.skip_space();
        if parser.at != parser.chars.len() {
            return Err(parser.error("`&&`, `||` or the end"));
        }
        Ok(CalicoSelector(expr))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.matches(labels)
    }
}

impl Expr {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |key: &String| labels.get(key).map(String::as_str);
        match self {
            Expr::All => true,
            Expr::Global => false,
            Expr::Has(key) => labels.contains_key(key),
            Expr::Equals(key, value) => get(key) == Some(value),
            Expr::NotEquals(key, value) => get(key) != Some(value),
            Expr::In(key, values) => get(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Expr::NotIn(key, values) => get(key).is_none_or(|v| values.iter().all(|x| x != v)),
            Expr::Contains(key, part) => get(key).is_some_and(|v| v.contains(part.as_str())),
            Expr::StartsWith(key, part) => get(key).is_some_and(|v| v.starts_with(part.as_str())),
            Expr::EndsWith(key, part) => get(key).is_some_and(|v| v.ends_with(part.as_str())),
            Expr::Not(inner) => !inner.matches(labels),
            Expr::And(a, b) => a.matches(labels) && b.matches(labels),
            Expr::Or(a, b) => a.matches(labels) || b.matches(labels),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn error(&self, expected: &'static str) -> SelectorError {
        SelectorError {
            position: self.at,
            expected,
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    /// Consumes `token` (after spaces) if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let end = self.at + token.chars().count();
        let matches =
            end <= self.chars.len() && self.chars[self.at..end].iter().copied().eq(token.chars());
        if matches {
            self.at = end;
        }
        matches
    }

    /// Consumes the word `word` only when no label-key character follows
    /// (so that `in` is not the start of `index`).
    fn eat_word(&mut self, word: &str) -> bool {
        let start = self.at;
        if self.eat(word) && !self.chars.get(self.at).copied().is_some_and(is_key_char) {
            return true;
        }
        self.at = start;
        false
    }

    fn or(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SelectorError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            return Ok(inner);
        }
        if self.eat("all()") {
            return Ok(Expr::All);
        }
        if self.eat("global()") {
            return Ok(Expr::Global);
        }
        let start = self.at;
        if self.eat_word("has") && self.eat("(") {
            let key = self.key()?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            return Ok(Expr::Has(key));
        }
        self.at = start;
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SelectorError> {
        let key = self.key()?;
        if self.eat("==") {
            return Ok(Expr::Equals(key, self.string()?));
        }
        if self.eat("!=") {
            return Ok(Expr::NotEquals(key, self.string()?));
        }
        if self.eat_word("not") {
            if !self.eat_word("in") {
                return Err(self.error("`in` after `not`"));
            }
            return Ok(Expr::NotIn(key, self.set()?));
        }
        if self.eat_word("in") {
            return Ok(Expr::In(key, self.set()?));
        }
        if self.eat_word("contains") {
            return Ok(Expr::Contains(key, self.string()?));
        }
        if self.eat_word("starts") && self.eat_word("with") {
            return Ok(Expr::StartsWith(key, self.string()?));
        }
        if self.eat_word("ends") && self.eat_word("with") {
            return Ok(Expr::EndsWith(key, self.string()?));
        }
        Err(self.error(
            "an operator (`==`, `!=`, `in`, `not in`, `contains`, `starts with`, `ends with`)",
        ))
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        self.skip_space();
        let start = self.at;
        while self.chars.get(self.at).copied().is_some_and(is_key_char) {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("a label key"));
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        self.skip_space();
        let Some(&quote) = self.chars.get(self.at).filter(|c| matches!(c, '\'' | '"')) else {
            return Err(self.error("a quoted string"));
        };
        let start = self.at + 1;
        let Some(length) = self.chars[start..].iter().position(|&c| c == quote) else {
            return Err(self.error("a closing quote"));
        };
        self.at = start + length + 1;
        Ok(self.chars[start..start + length].iter().collect())
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        if !self.eat("{") {
            return Err(self.error("`{`"));
        }
        let mut values = Vec::new();
        if self.eat("}") {
            return Ok(values);
        }
        loop {
            values.push(self.string()?);
            if self.eat("}") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err(self.error("`,` or `}`"));
            }
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::selector::labels;

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        CalicoSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn every_operator() {
        let web = &[("app", "web"), ("tier", "front-end")];
        for selector in [
            "",
            "all()",
            "has(app)",
            "app == 'web'",
            "app == \"web\"",
            "app != 'db'",
            "missing != 'x'",
            "app in {'web', 'api'}",
            "app not in {'db'}",
            "missing not in {'db'}",
            "tier contains 'end'",
            "tier starts with 'front'",
            "tier ends with '-end'",
            "!has(missing)",
            "has(app) && tier == 'front-end'",
            "app == 'db' || app == 'web'",
            "!(app == 'db') && (has(x) || has(tier))",
        ] {
            assert!(matches(selector, web), "{selector} should match");
        }
        for selector in [
            "global()",
            "has(missing)",
            "app == 'db'",
            "app != 'web'",
            "app in {}",
            "missing in {'web'}",
            "app not in {'web', 'api'}",
            "missing contains 'x'",
            "!all()",
            "has(app) && app == 'db'",
            "app == 'db' || has(missing)",
        ] {
            assert!(!matches(selector, web), "{selector} should not match");
        }
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        // a || (b && c), not (a || b) && c.
        assert!(matches("has(a) || has(b) && has(c)", &[("a", "")]));
        assert!(!matches("(has(a) || has(b)) && has(c)", &[("a", "")]));
    }

    #[test]
    fn keys_with_prefixes_and_words_as_keys() {
        assert!(matches(
            "projectcalico.org/namespace == 'shop'",
            &[("projectcalico.org/namespace", "shop")]
        ));
        assert!(matches("index == 'x'", &[("index", "x")]));
        assert!(matches("has(hash)", &[("hash", "")]));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for selector in [
            "app ==",
            "app = 'web'",
            "has(app",
            "app in {'a' 'b'}",
            "(has(a)",
            "app == 'web' extra",
        ] {
            assert!(CalicoSelector::parse(selector).is_err(), "{selector}");
        }
        let error = CalicoSelector::parse("app = 'web'").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid Calico selector: expected an operator")
        );
    }
}

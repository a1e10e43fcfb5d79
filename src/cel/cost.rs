//! A worst-case bound on what evaluating an expression costs, in the API
//! server's units (about one per node visited, one per ten characters or
//! list items a function reads or writes).
//!
//! The `cel` crate cannot stop an evaluation halfway, so the bound is what
//! keeps evaluation finite and small: it is computed when the expression is
//! compiled, with inputs of a typical size ([`UNKNOWN_SIZE`]), and again
//! before each run with the real inputs, whose every path the expression
//! reads is measured (`object.spec.containers` has the length it has on this
//! object). An expression over the limit is rejected at compile time, or not
//! run on that object. The bound counts each variable once per read (the API
//! server caches a variable's value), and every branch of `&&`, `||` and
//! `?:`, so it is never below the real cost.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use serde_json::Value as Json;

use super::Inputs;

/// The API server's limit on the cost of one expression
/// (`PerCallLimit` in `k8s.io/apiserver/pkg/apis/cel`).
pub const PER_EXPRESSION_COST_LIMIT: u64 = 1_000_000;

/// The length and total size assumed, when an expression is compiled, of
/// every list, map and string read from an input: larger than most objects'
/// fields, small enough that only expressions that multiply sizes (nested
/// iteration, repeated growth) reach the limit.
pub const UNKNOWN_SIZE: u64 = 100;

/// Most concrete values tracked for one node; past it the node is estimated
/// from sizes alone, so the estimate itself stays linear in the object.
const MAX_CANDIDATES: usize = 10_000;

/// The bound for one expression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Cost of evaluating it.
    pub cost: u64,
    /// Largest length of its value: characters of a string, items of a list
    /// or map.
    pub len: u64,
    /// Largest total size of its value: every character and item at every
    /// depth (an item is no larger than the whole).
    pub deep: u64,
}

/// A node's estimate and, when it reads a path of the inputs, the values it
/// can take, so that sizes further down that path are real ones.
#[derive(Clone, Debug, Default)]
struct Est<'j> {
    cost: u64,
    len: u64,
    deep: u64,
    /// Largest total size of one of its items or fields (a list built by
    /// `map` is long, but each of its items is small).
    item: u64,
    values: Option<Vec<&'j Json>>,
}

impl<'j> Est<'j> {
    fn sized(cost: u64, len: u64, deep: u64) -> Est<'j> {
        Est {
            cost,
            len,
            deep,
            item: deep,
            values: None,
        }
    }

    fn with_item(mut self, item: u64) -> Self {
        self.item = item.min(self.deep);
        self
    }

    fn scalar(cost: u64) -> Est<'j> {
        Est::sized(cost, 1, 1)
    }

    fn of_values(cost: u64, values: Vec<&'j Json>) -> Est<'j> {
        if values.len() > MAX_CANDIDATES {
            let (len, deep) = sizes(&values);
            return Est::sized(cost, len, deep);
        }
        let (len, deep) = sizes(&values);
        Est {
            cost,
            len,
            deep,
            item: deep,
            values: Some(values),
        }
    }

    /// The estimate of any item or field of this value.
    fn item(&self) -> Est<'j> {
        match &self.values {
            Some(values) => Est::of_values(
                1,
                values
                    .iter()
                    .flat_map(|v| -> Box<dyn Iterator<Item = &'j Json>> {
                        match v {
                            Json::Array(items) => Box::new(items.iter()),
                            Json::Object(map) => Box::new(map.values()),
                            _ => Box::new(std::iter::empty()),
                        }
                    })
                    .collect(),
            ),
            None => Est::sized(1, self.item, self.item),
        }
    }

    /// The estimate of an iteration variable over this value: an item of a
    /// list, a key of a map.
    fn iteration_variable(&self) -> Est<'j> {
        match &self.values {
            Some(values) if values.iter().all(|v| !v.is_object()) => self.item(),
            Some(values) => {
                let key = values
                    .iter()
                    .filter_map(|v| v.as_object())
                    .flat_map(|m| m.keys())
                    .map(|k| k.len() as u64)
                    .max()
                    .unwrap_or(0);
                let items = self.item();
                Est::sized(1, key.max(items.len), key.max(items.deep))
            }
            None => Est::sized(1, self.item, self.item),
        }
    }

    fn field(&self, name: &str) -> Est<'j> {
        match &self.values {
            Some(values) => Est::of_values(
                1,
                values
                    .iter()
                    .filter_map(|v| v.as_object()?.get(name))
                    .collect(),
            ),
            None => Est::sized(1, self.item, self.item),
        }
    }

    fn plus_cost(mut self, cost: u64) -> Self {
        self.cost = self.cost.saturating_add(cost);
        self
    }

    fn summary(&self) -> Estimate {
        Estimate {
            cost: self.cost,
            len: self.len,
            deep: self.deep,
        }
    }
}

/// Largest length and total size among `values`.
fn sizes(values: &[&Json]) -> (u64, u64) {
    values.iter().fold((0, 0), |(len, deep), v| {
        (len.max(json_len(v)), deep.max(json_deep(v)))
    })
}

fn json_len(value: &Json) -> u64 {
    match value {
        Json::Array(items) => items.len() as u64,
        Json::Object(map) => map.len() as u64,
        Json::String(s) => s.len() as u64,
        _ => 1,
    }
}

fn json_deep(value: &Json) -> u64 {
    match value {
        Json::Array(items) => items.iter().fold(items.len() as u64, |sum, v| {
            sum.saturating_add(json_deep(v))
        }),
        Json::Object(map) => map.iter().fold(map.len() as u64, |sum, (k, v)| {
            sum.saturating_add(k.len() as u64)
                .saturating_add(json_deep(v))
        }),
        Json::String(s) => s.len() as u64,
        _ => 1,
    }
}

/// Cost of reading or writing `size` characters or items.
fn per_ten(size: u64) -> u64 {
    size.div_ceil(10)
}

/// The bound of `node` on `inputs`, or on inputs of unknown size.
pub fn estimate(node: &IdedExpr, inputs: Option<&Inputs>) -> Estimate {
    let mut scope = Vec::new();
    Estimator { inputs }.node(node, &mut scope).summary()
}

struct Estimator<'j> {
    inputs: Option<&'j Inputs>,
}

type Scope<'j> = Vec<(String, Est<'j>)>;

impl<'j> Estimator<'j> {
    fn node(&self, node: &IdedExpr, scope: &mut Scope<'j>) -> Est<'j> {
        match &node.expr {
            Expr::Literal(LiteralValue::String(s)) => {
                let len = s.inner().len() as u64;
                Est::sized(1, len, len)
            }
            Expr::Literal(LiteralValue::Bytes(b)) => {
                let len = b.inner().len() as u64;
                Est::sized(1, len, len)
            }
            Expr::Literal(_) | Expr::Unspecified => Est::scalar(1),
            Expr::Ident(name) => self.ident(name, scope),
            Expr::Select(select) => {
                let operand = self.node(&select.operand, scope);
                if select.test {
                    Est::scalar(operand.cost.saturating_add(1))
                } else {
                    operand.field(&select.field).plus_cost(operand.cost)
                }
            }
            Expr::List(list) => self.collection(list.elements.iter(), scope),
            Expr::Map(map) => self.collection(
                map.entries.iter().flat_map(|e| match &e.expr {
                    EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
                    EntryExpr::StructField(f) => vec![&f.value],
                }),
                scope,
            ),
            Expr::Struct(s) => self.collection(
                s.entries.iter().filter_map(|e| match &e.expr {
                    EntryExpr::StructField(f) => Some(&f.value),
                    EntryExpr::MapEntry(_) => None,
                }),
                scope,
            ),
            Expr::Call(call) => {
                let mut args = Vec::with_capacity(call.args.len() + 1);
                if let Some(target) = &call.target {
                    args.push(self.node(target, scope));
                }
                for arg in &call.args {
                    args.push(self.node(arg, scope));
                }
                let inner: u64 = args.iter().fold(0, |s, a| s.saturating_add(a.cost));
                call_estimate(&call.func_name, &call.args, args).plus_cost(inner)
            }
            Expr::Comprehension(c) => self.comprehension(c, scope),
        }
    }

    fn ident(&self, name: &str, scope: &Scope<'j>) -> Est<'j> {
        if let Some((_, bound)) = scope.iter().rev().find(|(n, _)| n == name) {
            return Est {
                cost: 1,
                ..bound.clone()
            };
        }
        match self.inputs {
            Some(inputs) => match inputs.root(name) {
                Some(value) => Est::of_values(1, vec![value]),
                None => Est::scalar(1),
            },
            None => Est::sized(1, UNKNOWN_SIZE, UNKNOWN_SIZE),
        }
    }

    fn collection<'e>(
        &self,
        items: impl Iterator<Item = &'e IdedExpr>,
        scope: &mut Scope<'j>,
    ) -> Est<'j> {
        let (mut cost, mut len, mut deep, mut largest) = (1u64, 0u64, 0u64, 0u64);
        for item in items {
            let e = self.node(item, scope);
            cost = cost.saturating_add(e.cost);
            len = len.saturating_add(1);
            deep = deep.saturating_add(e.deep).saturating_add(1);
            largest = largest.max(e.deep);
        }
        Est::sized(cost, len, deep).with_item(largest)
    }

    /// A macro: the range once, then the condition and step once per item,
    /// with the accumulator at the largest size it can reach.
    fn comprehension(
        &self,
        c: &cel::common::ast::ComprehensionExpr,
        scope: &mut Scope<'j>,
    ) -> Est<'j> {
        let range = self.node(&c.iter_range, scope);
        let init = self.node(&c.accu_init, scope);
        let iterations = range.len;
        let depth = scope.len();
        match &c.iter_var2 {
            // Two variables: index and item of a list, key and value of a map.
            Some(second) => {
                scope.push((c.iter_var.clone(), range.iteration_variable()));
                scope.push((second.clone(), range.item()));
            }
            None => scope.push((c.iter_var.clone(), range.iteration_variable())),
        }
        // How much one step adds to the accumulator (`accu + [f(x)]` adds one
        // item of the size of `f(x)`; a boolean step adds nothing).
        scope.push((c.accu_var.clone(), Est::sized(1, init.len, init.deep)));
        let first = self.node(&c.loop_step, scope);
        let grows_len = first.len.saturating_sub(init.len);
        let grows_deep = first.deep.saturating_sub(init.deep);
        let accumulated = Est::sized(
            1,
            init.len
                .saturating_add(iterations.saturating_mul(grows_len)),
            init.deep
                .saturating_add(iterations.saturating_mul(grows_deep)),
        )
        .with_item(init.item.max(grows_deep));
        scope.pop();
        scope.push((c.accu_var.clone(), accumulated.clone()));
        let condition = self.node(&c.loop_cond, scope);
        let step = self.node(&c.loop_step, scope);
        let result = self.node(&c.result, scope);
        scope.truncate(depth);
        let per_iteration = condition.cost.saturating_add(step.cost);
        let cost = range
            .cost
            .saturating_add(init.cost)
            .saturating_add(iterations.saturating_mul(per_iteration))
            .saturating_add(result.cost);
        Est { cost, ..result }
    }
}

/// The cost of a call besides its arguments', and the size of its result.
fn call_estimate<'j>(name: &str, raw_args: &[IdedExpr], mut args: Vec<Est<'j>>) -> Est<'j> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let (a, b) = (arg(0), arg(1));
    match name {
        operators::LOGICAL_AND
        | operators::LOGICAL_OR
        | operators::LOGICAL_NOT
        | operators::NOT_STRICTLY_FALSE
        | "size"
        | "int"
        | "uint"
        | "double"
        | "bool"
        | "type"
        | "dyn"
        | "hasValue"
        | "isQuantity"
        | "isInteger"
        | "asInteger"
        | "asApproximateFloat"
        | "isLessThan"
        | "isGreaterThan"
        | "compareTo"
        | "family"
        | "isUnspecified"
        | "isLoopback"
        | "isLinkLocalMulticast"
        | "isLinkLocalUnicast"
        | "isGlobalUnicast"
        | "prefixLength"
        | "containsIP"
        | "containsCIDR"
        | operators::NEGATE
        | operators::SUBSTRACT
        | operators::MULTIPLY
        | operators::DIVIDE
        | operators::MODULO => Est::scalar(1),
        operators::CONDITIONAL => {
            let (then, otherwise) = (b, arg(2));
            let values = match (then.values, otherwise.values) {
                (Some(mut x), Some(y)) => {
                    x.extend(y);
                    Some(x)
                }
                _ => None,
            };
            let mut out = Est::sized(
                1,
                then.len.max(otherwise.len),
                then.deep.max(otherwise.deep),
            );
            if let Some(values) = values {
                out = Est::of_values(1, values);
            }
            out
        }
        operators::EQUALS
        | operators::NOT_EQUALS
        | operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS => Est::scalar(1 + per_ten(a.deep.min(b.deep))),
        operators::IN => Est::scalar(1 + b.len.saturating_mul(1 + per_ten(a.deep))),
        operators::ADD => {
            // Concatenation copies characters of strings, items of lists.
            let len = a.len.saturating_add(b.len);
            let deep = a.deep.saturating_add(b.deep);
            Est::sized(1 + per_ten(len), len, deep).with_item(a.item.max(b.item))
        }
        operators::INDEX | operators::OPT_INDEX | "value" | "orValue" | "or" => {
            let item = a.item();
            Est { cost: 1, ..item }
        }
        operators::OPT_SELECT => match raw_args.get(1).map(|f| &f.expr) {
            Some(Expr::Literal(LiteralValue::String(field))) => a.field(field.inner()),
            _ => a.item(),
        },
        "matches" | "find" | "findAll" => {
            let (text, pattern) = if args.len() >= 2 { (a, b) } else { (b, a) };
            let work = text.len.saturating_mul(1 + per_ten(pattern.len));
            Est::sized(1 + per_ten(work) + pattern.len, text.len, text.len)
        }
        "contains" | "startsWith" | "endsWith" | "indexOf" | "lastIndexOf" => {
            Est::scalar(1 + per_ten(a.deep.saturating_add(b.deep)))
        }
        "replace" => {
            let len = a
                .len
                .saturating_mul(1 + arg(2).len)
                .saturating_add(arg(2).len);
            Est::sized(1 + per_ten(len), len, len)
        }
        "split" => {
            let len = a.len.saturating_add(1);
            Est::sized(1 + per_ten(a.len), len, len.saturating_add(a.len)).with_item(a.len)
        }
        "join" => {
            let len = a.deep.saturating_add(a.len.saturating_mul(b.len));
            Est::sized(1 + per_ten(len), len, len)
        }
        "lowerAscii" | "upperAscii" | "trim" | "reverse" | "substring" | "charAt" | "quote"
        | "string" | "format" | "strings.quote" | "getScheme" | "getHost" | "getHostname"
        | "getPort" | "getEscapedPath" | "masked" | "ip" | "cidr" | "url" | "quantity" => {
            let len = a
                .deep
                .saturating_add(b.deep)
                .saturating_mul(4)
                .saturating_add(2);
            Est::sized(1 + per_ten(len), len, len)
        }
        "sort" | "distinct" | "sets.contains" | "sets.intersects" | "sets.equivalent" => {
            let work = a
                .len
                .saturating_mul(if args.len() > 1 { b.len } else { a.len });
            Est::sized(1 + per_ten(work).saturating_add(a.len), a.len, a.deep)
        }
        "flatten" | "slice" | "sum" | "min" | "max" | "isSorted" | "getQuery" => {
            Est::sized(1 + a.len + per_ten(a.deep), a.deep, a.deep)
        }
        _ => {
            // Anything else reads its arguments once and returns no more
            // than it read.
            let deep = args.iter_mut().fold(1u64, |s, e| s.saturating_add(e.deep));
            Est::sized(1 + per_ten(deep), deep, deep)
        }
    }
}

/// The direct sub-expressions of `node`.
pub fn children(node: &IdedExpr) -> Vec<&IdedExpr> {
    match &node.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Select(s) => vec![&s.operand],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|e| match &e.expr {
                EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .filter_map(|e| match &e.expr {
                EntryExpr::StructField(f) => Some(&f.value),
                EntryExpr::MapEntry(_) => None,
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// The direct sub-expressions of `node`, to rewrite them.
pub fn children_mut(node: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut node.expr {
        Expr::Call(call) => call
            .target
            .iter_mut()
            .map(|t| &mut **t)
            .chain(call.args.iter_mut())
            .collect(),
        Expr::Select(s) => vec![&mut *s.operand],
        Expr::List(l) => l.elements.iter_mut().collect(),
        Expr::Map(m) => m
            .entries
            .iter_mut()
            .flat_map(|e| match &mut e.expr {
                EntryExpr::MapEntry(m) => vec![&mut m.key, &mut m.value],
                EntryExpr::StructField(f) => vec![&mut f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter_mut()
            .filter_map(|e| match &mut e.expr {
                EntryExpr::StructField(f) => Some(&mut f.value),
                EntryExpr::MapEntry(_) => None,
            })
            .collect(),
        Expr::Comprehension(c) => {
            let c = &mut **c;
            vec![
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ]
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// How many nodes `node` has.
pub fn count_nodes(node: &IdedExpr) -> usize {
    children(node)
        .into_iter()
        .fold(1usize, |n, c| n.saturating_add(count_nodes(c)))
}

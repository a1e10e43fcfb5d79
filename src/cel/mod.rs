//! CEL, the expression language of Kubernetes' ValidatingAdmissionPolicy,
//! with the libraries and cost limits the API server gives it.
//!
//! The `cel` crate parses and interprets; this module adds what Kubernetes
//! adds on top of standard CEL (`library.rs`: lists, regex, URLs, quantity,
//! IP/CIDR, format, sets) and a cost bound (`cost.rs`), checked once when an
//! expression is compiled and again, with the real sizes, before it runs on
//! an object, so that no expression can keep an evaluation busy.

mod cost;
mod format;
mod library;
mod net;
mod quantity;
mod url;

use std::sync::{Arc, OnceLock};

use cel::common::ast::{Expr, IdedExpr};
use cel::{Context, Env, Value};
use serde_json::Value as Json;

pub use cost::{Estimate, PER_EXPRESSION_COST_LIMIT};
pub use library::FUNCTIONS;

/// Variables every expression may read, as in a ValidatingAdmissionPolicy.
pub const VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "namespaceObject",
    "params",
    "variables",
    "request",
];

/// Longest expression accepted, as the API server's `maxLength` on
/// `validations[].expression`.
pub const MAX_EXPRESSION_LENGTH: usize = 5 * 1024;

/// The environment shared by every expression: standard CEL, the `cel`
/// crate's extensions and the Kubernetes libraries. Built once.
fn environment() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .and_then(|()| env.add_extension(cel::extensions::lists))
            .and_then(|()| env.add_extension(library::register))
            .expect("the Kubernetes libraries do not redeclare a standard overload");
        Arc::new(env)
    })
    .clone()
}

/// Most nodes an expression may have once the `variables` it reads are
/// written in place: composition may not multiply an expression's size
/// without bound.
pub const MAX_EXPANDED_NODES: usize = 20_000;

/// Named expressions later expressions read as `variables.<name>` (a VAP's
/// `spec.variables`, a custom check's `variables`), in declaration order.
#[derive(Clone, Debug, Default)]
pub struct Variables {
    /// Each variable's expression, with the variables it reads written in.
    declared: Vec<(String, IdedExpr)>,
}

impl Variables {
    /// Compiles `source` as `variables.<name>`; it may read the variables
    /// declared before it.
    pub fn declare(&mut self, name: &str, source: &str) -> Result<(), CompileError> {
        let expression = Expression::compile(source, self)?;
        self.declared.push((name.to_owned(), expression.expanded));
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&IdedExpr> {
        self.declared
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A compiled expression: parsed, its names checked, the variables it reads
/// written in place, its worst-case cost estimated and found within
/// [`PER_EXPRESSION_COST_LIMIT`].
#[derive(Clone, Debug)]
pub struct Expression {
    source: String,
    /// The parsed expression with every `variables.x` replaced by the
    /// expression of `x`, so a variable keeps its CEL type (a quantity, an
    /// IP) wherever it is read.
    expanded: IdedExpr,
}

/// Why an expression was rejected when it was compiled: the message and the
/// position (1-based line and column in the expression).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why an expression failed on one object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The cost bound with this object's sizes is above the limit; the
    /// expression was not run.
    #[error(
        "expression cost {estimate} on this object exceeds the limit of {PER_EXPRESSION_COST_LIMIT}"
    )]
    CostLimit { estimate: u64 },
    #[error("{0}")]
    Runtime(String),
    #[error("expression returned {found}, not {wanted}")]
    Type { wanted: &'static str, found: String },
}

impl Expression {
    /// Compiles `source`, which may read [`VARIABLES`] and the `variables`
    /// declared so far.
    pub fn compile(source: &str, variables: &Variables) -> Result<Expression, CompileError> {
        if source.len() > MAX_EXPRESSION_LENGTH {
            return Err(CompileError {
                line: 1,
                column: 1,
                message: format!(
                    "expression is {} bytes long; the limit is {MAX_EXPRESSION_LENGTH}",
                    source.len()
                ),
            });
        }
        let program = environment().compile(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| {
                (
                    usize::try_from(e.pos.0).unwrap_or(1).max(1),
                    usize::try_from(e.pos.1 + 1).unwrap_or(1).max(1),
                )
            });
            CompileError {
                line,
                column,
                message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
            }
        })?;
        let positions = Positions {
            source,
            info: program.source_info(),
        };
        let root = program.expression();
        let mut bound = Vec::new();
        check_names(root, &mut bound, variables, &positions)?;
        let mut nodes = 0usize;
        let expanded = expand(root, variables, &mut nodes).ok_or_else(|| {
            positions.error_at(
                root.id,
                format!(
                    "the expression with the variables it reads written in has more than \
                     {MAX_EXPANDED_NODES} nodes"
                ),
            )
        })?;
        let estimate = cost::estimate(&expanded, None);
        if estimate.cost > PER_EXPRESSION_COST_LIMIT {
            return Err(positions.error_at(
                root.id,
                format!(
                    "estimated cost {} exceeds the limit of {PER_EXPRESSION_COST_LIMIT} per \
                     expression (iteration over large or nested lists, or growing strings)",
                    estimate.cost
                ),
            ));
        }
        Ok(Expression {
            source: source.to_owned(),
            expanded,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The worst-case estimate of this expression on `inputs` (their real
    /// sizes), or on inputs of unknown size.
    pub fn estimate(&self, inputs: Option<&Inputs>) -> Estimate {
        cost::estimate(&self.expanded, inputs)
    }

    /// Runs the expression on `inputs`; the cost bound with their real sizes
    /// is checked first, so a run that would exceed the limit never starts.
    pub fn evaluate(&self, inputs: &Inputs) -> Result<Value, EvalError> {
        self.evaluate_in(&inputs.bound())
    }

    /// Runs the expression on inputs already bound (converted to CEL values
    /// once for the several expressions of one object).
    pub fn evaluate_in(&self, bound: &Bound<'_>) -> Result<Value, EvalError> {
        let estimate = self.estimate(Some(bound.inputs));
        if estimate.cost > PER_EXPRESSION_COST_LIMIT {
            return Err(EvalError::CostLimit {
                estimate: estimate.cost,
            });
        }
        bound
            .context
            .resolve(&self.expanded)
            .map_err(|e| EvalError::Runtime(e.to_string()))
    }

    /// Runs the expression and requires a boolean.
    pub fn evaluate_bool(&self, inputs: &Inputs) -> Result<bool, EvalError> {
        self.evaluate_bool_in(&inputs.bound())
    }

    /// [`Expression::evaluate_bool`] on inputs already bound.
    pub fn evaluate_bool_in(&self, bound: &Bound<'_>) -> Result<bool, EvalError> {
        match self.evaluate_in(bound)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Type {
                wanted: "bool",
                found: type_name(&other).into(),
            }),
        }
    }

    /// Runs the expression and requires a string.
    pub fn evaluate_string(&self, inputs: &Inputs) -> Result<String, EvalError> {
        self.evaluate_string_in(&inputs.bound())
    }

    /// [`Expression::evaluate_string`] on inputs already bound.
    pub fn evaluate_string_in(&self, bound: &Bound<'_>) -> Result<String, EvalError> {
        match self.evaluate_in(bound)? {
            Value::String(s) => Ok(s.to_string()),
            other => Err(EvalError::Type {
                wanted: "string",
                found: type_name(&other).into(),
            }),
        }
    }
}

/// Positions of the nodes of one parsed expression, for compile errors.
struct Positions<'a> {
    source: &'a str,
    info: &'a cel::common::ast::SourceInfo,
}

impl Positions<'_> {
    /// A compile error at the position of node `id`.
    fn error_at(&self, id: u64, message: String) -> CompileError {
        let offset = self
            .info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize);
        let (line, column) = line_and_column(self.source, offset);
        CompileError {
            line,
            column,
            message,
        }
    }
}

/// Every identifier must be a known variable or one a macro binds, and every
/// `variables.x` a declared variable: the API server rejects both when the
/// policy is written.
fn check_names(
    node: &IdedExpr,
    bound: &mut Vec<String>,
    variables: &Variables,
    positions: &Positions<'_>,
) -> Result<(), CompileError> {
    let walk =
        |child: &IdedExpr, bound: &mut Vec<String>| check_names(child, bound, variables, positions);
    match &node.expr {
        Expr::Ident(name) => {
            if !VARIABLES.contains(&name.as_str())
                && !bound.iter().any(|b| b == name)
                && !is_namespace_function_root(name)
            {
                return Err(
                    positions.error_at(node.id, format!("undeclared reference to '{name}'"))
                );
            }
        }
        Expr::Select(select) => {
            if is_variables_root(&select.operand, bound) && !variables.contains(&select.field) {
                return Err(positions.error_at(
                    node.id,
                    format!("undefined variable 'variables.{}'", select.field),
                ));
            }
            walk(&select.operand, bound)?;
        }
        Expr::Comprehension(c) => {
            if c.iter_var == "variables" || c.iter_var2.as_deref() == Some("variables") {
                return Err(positions
                    .error_at(node.id, "'variables' cannot name a macro's variable".into()));
            }
            walk(&c.iter_range, bound)?;
            walk(&c.accu_init, bound)?;
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            walk(&c.loop_cond, bound)?;
            walk(&c.loop_step, bound)?;
            walk(&c.result, bound)?;
            bound.truncate(depth);
        }
        _ => {
            for child in cost::children(node) {
                walk(child, bound)?;
            }
        }
    }
    Ok(())
}

/// Whether `node` is the identifier `variables`, not shadowed by a macro.
fn is_variables_root(node: &IdedExpr, bound: &[String]) -> bool {
    matches!(&node.expr, Expr::Ident(root) if root == "variables")
        && !bound.iter().any(|b| b == "variables")
}

/// `node` with every `variables.x` replaced by the expression of `x`; `None`
/// when the result would exceed [`MAX_EXPANDED_NODES`]. Macros cannot bind
/// `variables` (check_names saw to it), so no shadowing is possible here.
fn expand(node: &IdedExpr, variables: &Variables, nodes: &mut usize) -> Option<IdedExpr> {
    if let Expr::Select(select) = &node.expr
        && is_variables_root(&select.operand, &[])
        && let Some(value) = variables.get(&select.field)
    {
        *nodes = nodes.checked_add(cost::count_nodes(value))?;
        return (*nodes <= MAX_EXPANDED_NODES).then(|| value.clone());
    }
    *nodes += 1;
    if *nodes > MAX_EXPANDED_NODES {
        return None;
    }
    let mut out = node.clone();
    for child in cost::children_mut(&mut out) {
        *child = expand(child, variables, nodes)?;
    }
    Some(out)
}

/// `format.dns1123Label()`, `strings.quote(…)`, `sets.contains(…)`: the
/// first segment of a namespaced function parses as an identifier.
fn is_namespace_function_root(name: &str) -> bool {
    matches!(
        name,
        "format" | "strings" | "sets" | "optional" | "math" | "base64" | "ip"
    )
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        _ => "another type",
    }
}

/// 1-based line and column of byte `offset` in `source`.
fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The values one evaluation reads, as JSON: their real sizes bound the
/// cost, and they are bound to the names of [`VARIABLES`].
#[derive(Debug, Default)]
pub struct Inputs {
    pub object: Option<Json>,
    pub old_object: Option<Json>,
    pub namespace_object: Option<Json>,
    pub params: Option<Json>,
    pub request: Option<Json>,
}

impl Inputs {
    /// The value of a root variable; a missing one is `null`.
    pub(crate) fn root(&self, name: &str) -> Option<&Json> {
        match name {
            "object" => self.object.as_ref(),
            "oldObject" => self.old_object.as_ref(),
            "namespaceObject" => self.namespace_object.as_ref(),
            "params" => self.params.as_ref(),
            "request" => self.request.as_ref(),
            _ => None,
        }
    }

    /// The inputs as CEL values, for evaluating several expressions.
    pub fn bound(&self) -> Bound<'_> {
        let mut context = Context::with_env(environment());
        for name in VARIABLES.iter().filter(|n| **n != "variables") {
            let value = self.root(name).cloned().unwrap_or(Json::Null);
            // A JSON document always converts: its numbers are i64, u64 or f64.
            let _ = context.add_variable(*name, value);
        }
        Bound {
            inputs: self,
            context,
        }
    }
}

/// [`Inputs`] converted to CEL values once.
pub struct Bound<'a> {
    inputs: &'a Inputs,
    context: Context<'static, 'static>,
}

#[cfg(test)]
mod tests;

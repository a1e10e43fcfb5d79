//! Custom checks written in CEL (`spec.customChecks` of a ScanPolicy):
//! compiled once with the policy, run by the engine on every subject they
//! apply to, their findings ordinary findings.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value as Json, json};

use super::PolicyError;
use crate::cel::{Bound, CompileError, Expression, Inputs, Variables};
use crate::crd::scan_policy::{CustomCheck, NamedExpression};
use crate::engine::{Applies, Category, Check, Context, Scope, Severity, Subject, Violations};
use crate::model::{FieldPath, Resource, Workload};

/// Prefix of the message of a finding whose expression failed to evaluate:
/// the object is neither passed nor silently skipped.
pub const EVALUATION_ERROR: &str = "CEL evaluation error";

/// A custom check, compiled.
#[derive(Clone, Debug)]
pub struct CompiledCheck {
    pub check: &'static Check,
    workloads: bool,
    /// `(group, kind)` pairs.
    kinds: Vec<(String, String)>,
    match_conditions: Vec<(String, Expression)>,
    validations: Vec<CompiledValidation>,
    params: Option<Json>,
}

#[derive(Clone, Debug)]
struct CompiledValidation {
    expression: Expression,
    message: Option<String>,
    message_expression: Option<Expression>,
}

/// Compiles every custom check of a policy; the first error names the field
/// and the position in the expression.
pub fn compile_all(
    checks: &[CustomCheck],
    builtin: &[&'static Check],
) -> Result<Vec<CompiledCheck>, PolicyError> {
    let mut compiled: Vec<CompiledCheck> = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        let field = format!("spec.customChecks[{i}]");
        if builtin.iter().any(|c| c.id == check.id)
            || compiled.iter().any(|c| c.check.id == check.id)
        {
            return Err(PolicyError {
                field: format!("{field}.id"),
                message: format!("`{}` is already the id of another check", check.id),
            });
        }
        compiled.push(compile(check, &field)?);
    }
    Ok(compiled)
}

fn compile(check: &CustomCheck, field: &str) -> Result<CompiledCheck, PolicyError> {
    if !valid_id(&check.id) {
        return Err(PolicyError {
            field: format!("{field}.id"),
            message: "must be lower-case letters, digits, `-`, `.` and `/`, starting and \
                      ending with a letter or digit"
                .into(),
        });
    }
    let applies = &check.applies_to;
    if !applies.workloads && applies.kinds.is_empty() {
        return Err(PolicyError {
            field: format!("{field}.appliesTo"),
            message: "must set `workloads: true` or list `kinds`".into(),
        });
    }
    let mut variables = Variables::default();
    for (j, v) in check.variables.iter().enumerate() {
        variables
            .declare(&v.name, &v.expression)
            .map_err(|e| expression_error(&format!("{field}.variables[{j}].expression"), e))?;
    }
    let match_conditions = compile_named(
        &check.match_conditions,
        &variables,
        &format!("{field}.matchConditions"),
    )?;
    let mut validations = Vec::with_capacity(check.validations.len());
    for (j, v) in check.validations.iter().enumerate() {
        let at = format!("{field}.validations[{j}]");
        let expression = Expression::compile(&v.expression, &variables)
            .map_err(|e| expression_error(&format!("{at}.expression"), e))?;
        let message_expression = v
            .message_expression
            .as_deref()
            .map(|source| Expression::compile(source, &variables))
            .transpose()
            .map_err(|e| expression_error(&format!("{at}.messageExpression"), e))?;
        validations.push(CompiledValidation {
            expression,
            message: v.message.clone(),
            message_expression,
        });
    }
    Ok(CompiledCheck {
        check: interned(check),
        workloads: applies.workloads,
        kinds: applies
            .kinds
            .iter()
            .map(|k| (k.group.clone(), k.kind.clone()))
            .collect(),
        match_conditions,
        validations,
        params: check.params.clone(),
    })
}

fn compile_named(
    named: &[NamedExpression],
    variables: &Variables,
    field: &str,
) -> Result<Vec<(String, Expression)>, PolicyError> {
    named
        .iter()
        .enumerate()
        .map(|(j, m)| {
            Expression::compile(&m.expression, variables)
                .map(|e| (m.name.clone(), e))
                .map_err(|e| expression_error(&format!("{field}[{j}].expression"), e))
        })
        .collect()
}

/// A compile error as a policy error: the field, then the position.
pub fn expression_error(field: &str, error: CompileError) -> PolicyError {
    PolicyError {
        field: field.to_owned(),
        message: format!(
            "line {}, column {}: {}",
            error.line, error.column, error.message
        ),
    }
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| edge(b) || matches!(b, b'-' | b'.' | b'/'))
}

/// The engine's static description of a custom check.
fn interned(check: &CustomCheck) -> &'static Check {
    describe(Description {
        id: check.id.clone(),
        title: check.title.clone(),
        severity: check.severity,
        category: category(check.category.as_deref()),
        description: check.description.clone().unwrap_or_default(),
        remediation: check.remediation.clone().unwrap_or_default(),
        frameworks: check.frameworks.clone(),
    })
}

/// What describes a check that is not built in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Description {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub category: Category,
    pub description: String,
    pub remediation: String,
    pub frameworks: Vec<String>,
}

/// The engine's static description of a check defined at run time.
/// Findings hold `&'static Check`, so each distinct description is
/// allocated once and kept: reloading an unchanged policy allocates
/// nothing, and each edit of a check costs one small description.
pub fn describe(description: Description) -> &'static Check {
    static CHECKS: OnceLock<Mutex<BTreeMap<Description, &'static Check>>> = OnceLock::new();
    let mut checks = CHECKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = checks.get(&description) {
        return found;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let frameworks: Vec<&'static str> = description.frameworks.iter().map(|f| leak(f)).collect();
    let described: &'static Check = Box::leak(Box::new(Check {
        id: leak(&description.id),
        title: leak(&description.title),
        category: description.category,
        severity: description.severity,
        applies: Applies::Any,
        description: leak(&description.description),
        remediation: leak(&description.remediation),
        frameworks: Box::leak(frameworks.into_boxed_slice()),
        aliases: &[],
        // CEL reads the namespace, and admission policies their parameters.
        scope: Scope::Inventory,
        run: run_nothing,
    }));
    checks.insert(description, described);
    described
}

/// The built-in checks, then the custom checks of the ScanPolicy file at
/// `policy` (`palisade checks --policy`).
pub fn catalog_with_policy(
    policy: Option<&std::path::Path>,
) -> Result<Vec<&'static Check>, String> {
    let builtin = crate::checks::catalog();
    let mut checks = builtin.to_vec();
    if let Some(path) = policy {
        let spec = crate::loader::read_policy(path).map_err(|e| e.to_string())?;
        let compiled = compile_all(&spec.custom_checks, builtin)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        checks.extend(compiled.iter().map(|c| c.check));
    }
    Ok(checks)
}

/// `id` as a `&'static str`, allocated once per distinct id: the ids of
/// admission policies that a ScanPolicy names before they are seen.
pub fn intern_id(id: &str) -> &'static str {
    static IDS: OnceLock<Mutex<std::collections::BTreeSet<&'static str>>> = OnceLock::new();
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = ids.get(id) {
        return found;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    leaked
}

/// The engine runs custom checks through [`CompiledCheck::run`]; the
/// description's own function finds nothing.
fn run_nothing(_: &Subject<'_>, _: &Context<'_>, _: &mut Violations) {}

fn category(name: Option<&str>) -> Category {
    const ALL: &[Category] = &[
        Category::PodSecurityBaseline,
        Category::PodSecurityRestricted,
        Category::Hardening,
        Category::Reliability,
        Category::Images,
        Category::Secrets,
        Category::ServiceAccounts,
        Category::Namespaces,
        Category::Rbac,
        Category::ApiVersions,
    ];
    name.and_then(|n| ALL.iter().copied().find(|c| c.as_str() == n))
        .unwrap_or(Category::Custom)
}

impl CompiledCheck {
    /// Whether the check reads this subject, and as what object.
    fn object_of(
        &self,
        subject: &Subject<'_>,
        inventory: &crate::model::Inventory,
    ) -> Option<Json> {
        if self.workloads
            && let Subject::Workload(w) = subject
        {
            return Some(template_pod(w));
        }
        let object = subject.object_ref();
        let group = object
            .api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group);
        self.kinds
            .iter()
            .any(|(g, k)| g == group && k == &object.kind)
            .then(|| object_json(subject, inventory))
            .flatten()
    }

    /// Adds a violation for each validation the subject fails, and for each
    /// expression that fails to evaluate on it.
    pub fn run(&self, subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
        let Some(object) = self.object_of(subject, cx.inventory) else {
            return;
        };
        let namespace_object = subject
            .metadata()
            .namespace
            .as_deref()
            .and_then(|ns| cx.inventory.namespaces.get(ns))
            .and_then(|ns| serde_json::to_value(ns).ok())
            .map(|mut ns| {
                set_identity(&mut ns, "v1", "Namespace");
                ns
            });
        let inputs = Inputs {
            object: Some(object),
            namespace_object,
            params: self.params.clone(),
            ..Inputs::default()
        };
        let root = finding_path(subject);
        let inputs = inputs.bound();
        for (name, condition) in &self.match_conditions {
            match condition.evaluate_bool_in(&inputs) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    out.object(
                        root.clone(),
                        format!("{EVALUATION_ERROR} in match condition `{name}`: {e}"),
                    );
                    return;
                }
            }
        }
        for validation in &self.validations {
            match validation.expression.evaluate_bool_in(&inputs) {
                Ok(true) => {}
                Ok(false) => {
                    out.object(root.clone(), validation.message(&inputs));
                }
                Err(e) => {
                    out.object(
                        root.clone(),
                        format!(
                            "{EVALUATION_ERROR} in `{}`: {e}",
                            validation.expression.source()
                        ),
                    );
                }
            }
        }
    }
}

/// Where a custom check's finding points: a workload's pod template, or
/// the object's metadata.
fn finding_path(subject: &Subject<'_>) -> FieldPath {
    match subject {
        Subject::Workload(w) => match w.spec_path.as_str().strip_suffix(".spec") {
            Some(template) => FieldPath::new(template),
            None => w.spec_path.clone(),
        },
        _ => FieldPath::new("metadata"),
    }
}

impl CompiledValidation {
    /// The message of a failed validation: `messageExpression`, else
    /// `message`, else the API server's default.
    fn message(&self, inputs: &Bound<'_>) -> String {
        let from_expression = self
            .message_expression
            .as_ref()
            .and_then(|m| m.evaluate_string_in(inputs).ok())
            .filter(|m| !m.trim().is_empty());
        from_expression
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| format!("failed expression: {}", self.expression.source()))
    }
}

/// Sets `apiVersion` and `kind` (typed objects serialize without them).
fn set_identity(object: &mut Json, api_version: &str, kind: &str) {
    if let Json::Object(map) = object {
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
    }
}

/// A workload's pod template as a Pod: the template's metadata (in the
/// workload's namespace) and its spec, containers and volumes included.
pub fn template_pod(w: &Workload) -> Json {
    let mut metadata = serde_json::to_value(&w.template_metadata).unwrap_or_else(|_| json!({}));
    if let (Json::Object(meta), Some(ns)) = (&mut metadata, w.namespace())
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), ns.into());
    }
    if let Json::Object(meta) = &mut metadata
        && !meta.contains_key("name")
    {
        meta.insert("name".into(), w.object.name.clone().into());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": pod_spec(w),
    })
}

/// The pod spec with its containers and volumes put back.
fn pod_spec(w: &Workload) -> Json {
    let mut spec = serde_json::to_value(&w.spec).unwrap_or_else(|_| json!({}));
    let Json::Object(map) = &mut spec else {
        return spec;
    };
    for entry in &w.containers {
        let list = map
            .entry(entry.kind.field())
            .or_insert_with(|| Json::Array(Vec::new()));
        if let (Json::Array(items), Ok(mut container)) =
            (list, serde_json::to_value(&entry.container))
        {
            // The API server always has `resources` (a struct, never null,
            // in its Go types): `has(c.resources.limits)` must not fail.
            if let Json::Object(fields) = &mut container {
                fields
                    .entry("resources")
                    .or_insert_with(|| Json::Object(Map::new()));
            }
            items.push(container);
        }
    }
    map.entry("containers")
        .or_insert_with(|| Json::Array(Vec::new()));
    if !w.volumes.is_empty() {
        let volumes = w
            .volumes
            .iter()
            .map(|v| {
                let mut volume = Map::new();
                volume.insert("name".into(), v.name.clone().into());
                if let Some(host_path) = &v.host_path {
                    volume.insert(
                        "hostPath".into(),
                        serde_json::to_value(host_path).unwrap_or(Json::Null),
                    );
                }
                Json::Object(volume)
            })
            .collect();
        map.insert("volumes".into(), Json::Array(volumes));
    }
    spec
}

/// A workload resource's identity and its JSON without the pod template
/// (see [`crate::model::Inventory::workload_shells`]); `None` for other
/// kinds.
pub fn workload_shell(resource: &Resource) -> Option<(crate::model::ObjectRef, Json)> {
    let mut value = match resource {
        Resource::Pod(o) => serde_json::to_value(o),
        Resource::PodTemplate(o) => serde_json::to_value(o),
        Resource::Deployment(o) => serde_json::to_value(o),
        Resource::ReplicaSet(o) => serde_json::to_value(o),
        Resource::StatefulSet(o) => serde_json::to_value(o),
        Resource::DaemonSet(o) => serde_json::to_value(o),
        Resource::Job(o) => serde_json::to_value(o),
        Resource::CronJob(o) => serde_json::to_value(o),
        Resource::ReplicationController(o) | Resource::DeploymentConfig(o) => {
            serde_json::to_value(o)
        }
        _ => return None,
    }
    .ok()?;
    let template = match resource {
        Resource::Pod(_) => "spec",
        Resource::PodTemplate(_) => "template",
        Resource::CronJob(_) => "spec.jobTemplate.spec.template",
        _ => "spec.template",
    };
    remove_at(&mut value, template);
    Some((resource.object_ref(), value))
}

/// Removes the field at the dotted `path`.
fn remove_at(root: &mut Json, path: &str) {
    let mut at = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Json::Object(map) = at else { return };
        if segments.peek().is_none() {
            map.remove(segment);
            return;
        }
        let Some(next) = map.get_mut(segment) else {
            return;
        };
        at = next;
    }
}

/// The subject as the object it was read from: a workload is its shell
/// (when `inventory` has it) with its pod template put back; other kinds
/// are whole.
pub fn object_json(subject: &Subject<'_>, inventory: &crate::model::Inventory) -> Option<Json> {
    let object = subject.object_ref();
    let mut value = match subject {
        Subject::Workload(w) => {
            let mut value = match inventory.workload_shells.get(&w.object) {
                Some(shell) => shell.clone(),
                None => json!({"metadata": serde_json::to_value(&w.metadata).ok()?}),
            };
            let template = json!({
                "metadata": serde_json::to_value(&w.template_metadata).ok()?,
                "spec": pod_spec(w),
            });
            match w.spec_path.as_str().strip_suffix(".spec") {
                Some(template_path) => insert_at(&mut value, template_path, template),
                // A Pod: the spec is the object's own.
                None => insert_at(&mut value, "spec", pod_spec(w)),
            }
            value
        }
        Subject::Namespace(o) => serde_json::to_value(o).ok()?,
        Subject::ServiceAccount(o) => serde_json::to_value(o).ok()?,
        Subject::Role(o) => serde_json::to_value(o).ok()?,
        Subject::ClusterRole(o) => serde_json::to_value(o).ok()?,
        Subject::RoleBinding(o) => serde_json::to_value(o).ok()?,
        Subject::ClusterRoleBinding(o) => serde_json::to_value(o).ok()?,
        Subject::ConfigMap(o) => serde_json::to_value(o).ok()?,
        Subject::Retired(o) => json!({"metadata": serde_json::to_value(&o.metadata).ok()?}),
    };
    set_identity(&mut value, &object.api_version, &object.kind);
    Some(value)
}

/// Puts `value` at the dotted `path` (`spec.jobTemplate.spec.template`).
fn insert_at(root: &mut Json, path: &str, value: Json) {
    let mut at = root;
    let mut segments = path.split('.').filter(|s| !s.is_empty()).peekable();
    while let Some(segment) = segments.next() {
        let Json::Object(map) = at else { return };
        if segments.peek().is_none() {
            map.insert(segment.to_owned(), value);
            return;
        }
        at = map
            .entry(segment.to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
    }
}

/// Whether `message` is that of a finding whose expression failed.
pub fn is_evaluation_error(message: &str) -> bool {
    message.starts_with(EVALUATION_ERROR)
}

#[cfg(test)]
mod tests;

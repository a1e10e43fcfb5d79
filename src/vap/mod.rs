//! An audit of the cluster's own ValidatingAdmissionPolicies: each policy
//! and its bindings evaluated, with the API server's matching rules,
//! against the objects that already exist, so that what a policy would
//! reject is known before it is switched to `Deny`.
//!
//! A policy becomes one check, `vap/<policy-name>`; each validation an
//! object fails under one of its bindings is a finding whose severity
//! follows the binding's `validationActions` (`Deny` high, `Warn` medium,
//! `Audit` low; a ScanPolicy severity override wins).

mod matching;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::admissionregistration::v1::{
    ParamRef, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::{Value as Json, json};

use crate::cel::{Bound, CompileError, Expression, Inputs, Variables};
use crate::engine::{Category, Check, Context, Severity, Subject, Violations};
use crate::model::{DecodeError, FieldPath, Inventory, PathSegment};
use crate::policy::custom::{Description, EVALUATION_ERROR, describe, object_json};

pub use matching::{MatchTarget, resource_of};

/// Prefix of the check id of an admission policy.
pub const CHECK_PREFIX: &str = "vap/";

/// One admission policy, compiled, with the bindings that enforce it.
#[derive(Clone, Debug)]
pub struct Audit {
    pub check: &'static Check,
    name: String,
    constraints: Option<k8s_openapi::api::admissionregistration::v1::MatchResources>,
    /// `(apiVersion, kind)` of the parameters, when the policy takes some.
    param_kind: Option<(String, String)>,
    /// `Fail` (the default): an expression that cannot be evaluated rejects.
    fail_on_error: bool,
    match_conditions: Vec<(String, Expression)>,
    validations: Vec<Validation>,
    bindings: Vec<Binding>,
}

#[derive(Clone, Debug)]
struct Validation {
    expression: Expression,
    message: Option<String>,
    message_expression: Option<Expression>,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    match_resources: Option<k8s_openapi::api::admissionregistration::v1::MatchResources>,
    param_ref: Option<ParamRef>,
    severity: Severity,
    actions: String,
}

/// The severity of a binding's violations: its strongest action.
pub fn severity_of(actions: &[String]) -> Severity {
    if actions.iter().any(|a| a == "Deny") {
        Severity::High
    } else if actions.iter().any(|a| a == "Warn") {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Compiles every expression of a policy, as the API server does when the
/// policy is written; the error names the field and the position.
pub fn validate(policy: &ValidatingAdmissionPolicy) -> Result<(), DecodeError> {
    compile(policy).map(|_| ())
}

/// A policy's compiled expressions.
struct Compiled {
    match_conditions: Vec<(String, Expression)>,
    validations: Vec<Validation>,
}

fn compile(policy: &ValidatingAdmissionPolicy) -> Result<Compiled, DecodeError> {
    let name = policy.metadata.name.clone().unwrap_or_default();
    let error = |segments: Vec<PathSegment>, e: CompileError| {
        let path = segments
            .iter()
            .map(|s| match s {
                PathSegment::Key(k) => format!(".{k}"),
                PathSegment::Index(i) => format!("[{i}]"),
            })
            .collect::<String>();
        DecodeError {
            kind: "ValidatingAdmissionPolicy".into(),
            name: name.clone(),
            path: path.trim_start_matches('.').to_owned(),
            segments,
            message: format!(
                "line {}, column {} of the expression: {}",
                e.line, e.column, e.message
            ),
        }
    };
    let at = |list: &str, i: usize, field: &str| {
        vec![
            PathSegment::Key("spec".into()),
            PathSegment::Key(list.into()),
            PathSegment::Index(i),
            PathSegment::Key(field.into()),
        ]
    };
    let mut variables = Variables::default();
    let Some(spec) = &policy.spec else {
        return Ok(Compiled {
            match_conditions: Vec::new(),
            validations: Vec::new(),
        });
    };
    for (i, v) in spec.variables.iter().flatten().enumerate() {
        variables
            .declare(&v.name, &v.expression)
            .map_err(|e| error(at("variables", i, "expression"), e))?;
    }
    let mut match_conditions = Vec::new();
    for (i, m) in spec.match_conditions.iter().flatten().enumerate() {
        let expression = Expression::compile(&m.expression, &variables)
            .map_err(|e| error(at("matchConditions", i, "expression"), e))?;
        match_conditions.push((m.name.clone(), expression));
    }
    let mut validations = Vec::new();
    for (i, v) in spec.validations.iter().flatten().enumerate() {
        let expression = Expression::compile(&v.expression, &variables)
            .map_err(|e| error(at("validations", i, "expression"), e))?;
        let message_expression = v
            .message_expression
            .as_deref()
            .map(|m| Expression::compile(m, &variables))
            .transpose()
            .map_err(|e| error(at("validations", i, "messageExpression"), e))?;
        validations.push(Validation {
            expression,
            message: v.message.clone(),
            message_expression,
        });
    }
    Ok(Compiled {
        match_conditions,
        validations,
    })
}

/// The audits of every policy of `inventory` that a binding enforces, in
/// policy name order. A policy whose expressions do not compile was
/// reported when it was read and is left out.
pub fn audits(
    policies: &[ValidatingAdmissionPolicy],
    bindings: &[ValidatingAdmissionPolicyBinding],
) -> Vec<Audit> {
    let mut by_policy: BTreeMap<&str, Vec<&ValidatingAdmissionPolicyBinding>> = BTreeMap::new();
    for binding in bindings {
        if let Some(policy) = binding.spec.as_ref().and_then(|s| s.policy_name.as_deref()) {
            by_policy.entry(policy).or_default().push(binding);
        }
    }
    let mut sorted: Vec<&ValidatingAdmissionPolicy> = policies.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    sorted.dedup_by(|a, b| a.metadata.name == b.metadata.name);
    sorted
        .into_iter()
        .filter_map(|policy| {
            let name = policy.metadata.name.as_deref()?;
            let bindings = by_policy.get(name)?;
            audit(policy, bindings)
        })
        .collect()
}

/// The audits of the operator's cached policies and bindings, compiled
/// again only when one of them changed (by name and resourceVersion), so
/// that an evaluation costs no compilation.
pub fn cached_audits(
    policies: &[Arc<ValidatingAdmissionPolicy>],
    bindings: &[Arc<ValidatingAdmissionPolicyBinding>],
) -> Arc<Vec<Audit>> {
    type Versions = Vec<(Option<String>, Option<String>)>;
    static CACHE: Mutex<Option<(Versions, Arc<Vec<Audit>>)>> = Mutex::new(None);
    let version = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (m.name.clone(), m.resource_version.clone())
    };
    // Caches list objects in no particular order.
    let mut versions: Versions = policies.iter().map(|p| version(&p.metadata)).collect();
    versions.sort();
    let mut binding_versions: Versions = bindings.iter().map(|b| version(&b.metadata)).collect();
    binding_versions.sort();
    versions.push((None, None));
    versions.extend(binding_versions);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((cached, audits)) = cache.as_ref()
        && *cached == versions
    {
        return audits.clone();
    }
    let policies: Vec<ValidatingAdmissionPolicy> =
        policies.iter().map(|p| p.as_ref().clone()).collect();
    let bindings: Vec<ValidatingAdmissionPolicyBinding> =
        bindings.iter().map(|b| b.as_ref().clone()).collect();
    let audits = Arc::new(audits(&policies, &bindings));
    *cache = Some((versions, audits.clone()));
    audits
}

fn audit(
    policy: &ValidatingAdmissionPolicy,
    bindings: &[&ValidatingAdmissionPolicyBinding],
) -> Option<Audit> {
    let name = policy.metadata.name.clone()?;
    let spec = policy.spec.as_ref()?;
    let compiled = compile(policy).ok()?;
    let mut compiled_bindings: Vec<Binding> = bindings
        .iter()
        .filter_map(|b| {
            let binding_spec = b.spec.as_ref()?;
            let actions = binding_spec.validation_actions.clone().unwrap_or_default();
            Some(Binding {
                name: b.metadata.name.clone().unwrap_or_default(),
                match_resources: binding_spec.match_resources.clone(),
                param_ref: binding_spec.param_ref.clone(),
                severity: severity_of(&actions),
                actions: actions.join(","),
            })
        })
        .collect();
    compiled_bindings.sort_by(|a, b| a.name.cmp(&b.name));
    let severity = compiled_bindings
        .iter()
        .map(|b| b.severity)
        .max()
        .unwrap_or(Severity::Low);
    let check = describe(Description {
        id: format!("{CHECK_PREFIX}{name}"),
        title: format!("ValidatingAdmissionPolicy {name}"),
        severity,
        category: Category::Custom,
        description: format!(
            "The cluster's ValidatingAdmissionPolicy `{name}`, evaluated on existing objects: \
             each finding is a validation the object fails under one of the policy's bindings."
        ),
        remediation: "Change the object so that it meets the policy, or the policy or its \
                      binding so that it does not select the object."
            .into(),
        frameworks: Vec::new(),
    });
    Some(Audit {
        check,
        name,
        constraints: spec.match_constraints.clone(),
        param_kind: spec.param_kind.as_ref().map(|p| {
            (
                p.api_version.clone().unwrap_or_default(),
                p.kind.clone().unwrap_or_default(),
            )
        }),
        fail_on_error: spec.failure_policy.as_deref() != Some("Ignore"),
        match_conditions: compiled.match_conditions,
        validations: compiled.validations,
        bindings: compiled_bindings,
    })
}

impl Audit {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a violation for each validation `subject` fails under each
    /// binding that selects it.
    pub fn run(&self, subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
        let Some(object) = object_json(subject, cx.inventory) else {
            return;
        };
        let target = MatchTarget::of(&object, cx.inventory);
        if !self
            .constraints
            .as_ref()
            .is_some_and(|c| target.matches(c, false))
        {
            return;
        }
        for binding in &self.bindings {
            if binding
                .match_resources
                .as_ref()
                .is_some_and(|m| !target.matches(m, true))
            {
                continue;
            }
            self.run_binding(binding, &object, &target, cx.inventory, out);
        }
    }

    fn run_binding(
        &self,
        binding: &Binding,
        object: &Json,
        target: &MatchTarget,
        inventory: &Inventory,
        out: &mut Violations,
    ) {
        let path = FieldPath::new("metadata");
        let mut report = |message: String, error: bool| {
            if error && !self.fail_on_error {
                return;
            }
            out.object(
                path.clone(),
                format!(
                    "{message} (binding {}, {})",
                    binding.name,
                    if binding.actions.is_empty() {
                        "no action"
                    } else {
                        &binding.actions
                    }
                ),
            )
            .severity(binding.severity);
        };
        if self.param_kind.is_some() && binding.param_ref.is_some() && inventory.config_maps_unread
        {
            // Absent parameters would read as "not found" and deny every
            // object; say instead that this binding cannot be judged here.
            report(
                format!(
                    "{EVALUATION_ERROR}: the binding's parameters are not read here \
                     (the operator does not read ConfigMaps); audit it with palisade scan"
                ),
                true,
            );
            return;
        }
        let params = match self.params(binding, target, inventory) {
            Ok(params) => params,
            Err(message) => {
                if let Some(message) = message {
                    report(message, false);
                }
                return;
            }
        };
        for param in params {
            let inputs = Inputs {
                object: Some(object.clone()),
                namespace_object: target.namespace_object.clone(),
                params: param,
                request: Some(target.request(object)),
                ..Inputs::default()
            };
            let inputs = inputs.bound();
            match self.conditions_hold(&inputs) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(message) => {
                    report(message, true);
                    continue;
                }
            }
            for validation in &self.validations {
                match validation.expression.evaluate_bool_in(&inputs) {
                    Ok(true) => {}
                    Ok(false) => report(validation.message(&inputs), false),
                    Err(e) => report(
                        format!(
                            "{EVALUATION_ERROR} in `{}`: {e}",
                            validation.expression.source()
                        ),
                        true,
                    ),
                }
            }
        }
    }

    /// Whether every match condition holds; an error names the condition.
    fn conditions_hold(&self, inputs: &Bound<'_>) -> Result<bool, String> {
        for (name, condition) in &self.match_conditions {
            match condition.evaluate_bool_in(inputs) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    return Err(format!(
                        "{EVALUATION_ERROR} in match condition `{name}`: {e}"
                    ));
                }
            }
        }
        Ok(true)
    }

    /// The parameter objects to evaluate with: `[None]` for a policy
    /// without parameters. `Err(None)` skips the binding
    /// (`parameterNotFoundAction: Allow`), `Err(Some(message))` rejects.
    fn params(
        &self,
        binding: &Binding,
        target: &MatchTarget,
        inventory: &Inventory,
    ) -> Result<Vec<Option<Json>>, Option<String>> {
        let Some((api_version, kind)) = &self.param_kind else {
            return Ok(vec![None]);
        };
        let Some(param_ref) = &binding.param_ref else {
            return Err(Some(format!(
                "{EVALUATION_ERROR}: the policy takes parameters but the binding has no paramRef"
            )));
        };
        if !(api_version == "v1" && kind == "ConfigMap") {
            return Err(Some(format!(
                "{EVALUATION_ERROR}: parameters of kind {api_version}/{kind} are not read \
                 (only v1 ConfigMaps are)"
            )));
        }
        let namespace = param_ref
            .namespace
            .clone()
            .or_else(|| target.namespace.clone())
            .unwrap_or_default();
        let mut found: Vec<&k8s_openapi::api::core::v1::ConfigMap> = inventory
            .config_maps
            .iter()
            .filter(|c| c.metadata.namespace.as_deref().unwrap_or("default") == namespace)
            .filter(|c| match (&param_ref.name, &param_ref.selector) {
                (Some(name), _) => c.metadata.name.as_deref() == Some(name),
                (None, Some(selector)) => {
                    crate::model::selector_matches(selector, c.metadata.labels.as_ref())
                }
                (None, None) => false,
            })
            .collect();
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        if found.is_empty() {
            return match param_ref.parameter_not_found_action.as_deref() {
                Some("Allow") => Err(None),
                _ => Err(Some(format!(
                    "no params found for policy binding with `Deny` parameterNotFoundAction \
                     (ConfigMap {namespace}/{})",
                    param_ref.name.as_deref().unwrap_or("<selector>")
                ))),
            };
        }
        Ok(found
            .into_iter()
            .map(|c| {
                let mut value = serde_json::to_value(c).unwrap_or_else(|_| json!({}));
                if let Json::Object(map) = &mut value {
                    map.insert("apiVersion".into(), "v1".into());
                    map.insert("kind".into(), "ConfigMap".into());
                }
                Some(value)
            })
            .collect())
    }
}

impl Validation {
    /// The API server's message: `messageExpression`, else `message`, else
    /// `failed expression: <expression>`.
    fn message(&self, inputs: &Bound<'_>) -> String {
        self.message_expression
            .as_ref()
            .and_then(|m| m.evaluate_string_in(inputs).ok())
            .filter(|m| !m.trim().is_empty())
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| format!("failed expression: {}", self.expression.source()))
    }
}

#[cfg(test)]
mod tests;

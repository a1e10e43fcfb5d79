//! Schemas of fields whose Rust types would let the API server accept
//! values the operator cannot read back: every date is an RFC 3339 time it
//! can parse, every integer fits its type, every string and list is bounded.
//! A stored object that still breaks these (written before the CRDs were
//! tightened) is reported and skipped by the operator, never fatal.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Largest integer the schemas accept for 64-bit fields: the largest that
/// a JSON number holds exactly, far above any generation.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Longest free text copied from user input (an annotation's reason): the
/// API server's limit on all of an object's annotations together.
pub const MAX_TEXT: u32 = 262_144;

/// An RFC 3339 time from 1970 to 9998 with at most nine fractional digits:
/// what the operator's time type holds (it stops late in 9999).
pub const TIME_PATTERN: &str = concat!(
    r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])",
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?",
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
);

/// A `metav1.Time` within [`TIME_PATTERN`].
pub fn time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time",
        "maxLength": 64,
        "pattern": TIME_PATTERN,
    })
}

/// `metav1.Condition` as upstream bounds it, with a bounded time and
/// generation.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 16,
        "items": {
            "description": "One aspect of the object's state (`metav1.Condition`).",
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": described(time(generator), "When the status last changed."),
                "message": {
                    "description": "Details, for people.",
                    "type": "string",
                    "maxLength": 32768,
                },
                "observedGeneration": described(
                    generation(generator),
                    "The `metadata.generation` the condition was set for.",
                ),
                "reason": {
                    "description": "Why the condition is in its status, in CamelCase.",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                },
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {
                    "description": "The condition, e.g. `Compliant` or `Valid`.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                },
            },
        },
    })
}

/// `schema` with a description.
fn described(mut schema: Schema, description: &str) -> Schema {
    schema.insert("description".to_owned(), description.into());
    schema
}

/// A `metadata.generation`-like counter.
pub fn generation(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "maximum": MAX_SAFE_INTEGER,
    })
}

/// A `metav1.LabelSelector`, bounded, with the operators it knows.
pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "matchLabels": {
                "description": "Labels the object must carry, with these values.",
                "type": "object",
                "maxProperties": 64,
                "additionalProperties": {"type": "string", "maxLength": 63},
            },
            "matchExpressions": {
                "description": "Requirements on labels, all of which must hold.",
                "type": "array",
                "maxItems": 64,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "maxLength": 317},
                        "operator": {
                            "type": "string",
                            "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                        },
                        "values": {
                            "type": "array",
                            "maxItems": 256,
                            "items": {"type": "string", "maxLength": 63},
                        },
                    },
                },
            },
        },
    })
}

/// A duration of at most two parts, each of at most six digits (`30m`,
/// `1h30m`, `604800s`): the largest, `999999h999999h`, is still within what
/// CEL's `duration()` holds, so the range rule can never fail to evaluate.
pub const DURATION_PATTERN: &str = "^([0-9]{1,6}(ms|s|m|h)){1,2}$";

/// A duration such as `30m` or `1h30m`, from one minute to seven days.
/// The range rule is evaluated only on values of [`DURATION_PATTERN`]
/// (the pattern refuses the others): a rule that fails to evaluate on a
/// value stored under older CRDs would refuse every later write of the
/// object, its status included.
pub fn rescan_interval(_: &mut SchemaGenerator) -> Schema {
    let rule = format!(
        "!self.matches('{DURATION_PATTERN}') || \
         (duration(self) >= duration('1m') && duration(self) <= duration('168h'))"
    );
    json_schema!({
        "type": "string",
        "maxLength": 16,
        "pattern": DURATION_PATTERN,
        "x-kubernetes-validations": [{
            "rule": rule,
            "message": "must be between 1m and 168h (7 days)",
        }],
    })
}

/// Any JSON value, kept as written (a custom check's `params`).
pub fn free_form(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

//! Generated sections of the Markdown documentation.
//!
//! A generated section sits between `<!-- BEGIN GENERATED: NAME -->` and
//! `<!-- END GENERATED -->` in a hand-written page, so the page keeps its
//! prose while the reference tables follow the code: the operator's flags
//! come from its clap definition, the Helm values from the chart's
//! `values.schema.json` (descriptions, types) and `values.yaml` (defaults).
//! `scripts/gen-docs.sh` rewrites them with the hidden `palisade docs
//! refresh` command; a test fails when a committed page is stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, Args, CommandFactory};
use serde_json::Value;

/// The section with the table of `palisade operator` flags.
pub const OPERATOR_FLAGS: &str = "operator flags";
/// The section with the table of the Helm chart's values.
pub const HELM_VALUES: &str = "helm values";

const BEGIN_PREFIX: &str = "<!-- BEGIN GENERATED: ";
const BEGIN_SUFFIX: &str = " -->";
const END_MARKER: &str = "<!-- END GENERATED -->";

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: invalid {format}: {message}")]
    Parse {
        file: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("line {line}: `{BEGIN_PREFIX}{name}{BEGIN_SUFFIX}` has no `{END_MARKER}` after it")]
    Unterminated { line: usize, name: String },
    #[error(
        "line {line}: unknown generated section `{name}` (known: `{OPERATOR_FLAGS}`, `{HELM_VALUES}`)"
    )]
    UnknownSection { line: usize, name: String },
    #[error(
        "line {line}: the `{HELM_VALUES}` section needs the chart: pass --chart DIR (e.g. helm/palisade)"
    )]
    ChartMissing { line: usize },
    #[error("{file}: `{path}`: {message}")]
    Schema {
        file: PathBuf,
        path: String,
        message: String,
    },
}

/// `palisade docs` (hidden): maintenance of the generated documentation.
#[derive(Args, Debug)]
pub struct DocsArgs {
    #[command(subcommand)]
    pub command: DocsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum DocsCommand {
    /// Print FILE with every generated section rewritten from the code.
    Refresh {
        /// A Markdown page with generated sections, e.g. docs/operations.md.
        file: PathBuf,
        /// The Helm chart whose values.schema.json and values.yaml describe
        /// the `helm values` section.
        #[arg(long, value_name = "DIR")]
        chart: Option<PathBuf>,
    },
}

/// Runs `palisade docs`; exit status 2 on any error, nothing on stdout then.
pub fn run(args: &DocsArgs) -> ExitCode {
    let DocsCommand::Refresh { file, chart } = &args.command;
    match refresh_file(file, chart.as_deref()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

/// The content of `file` with its generated sections regenerated.
pub fn refresh_file(file: &Path, chart: Option<&Path>) -> Result<String, DocsError> {
    let text = read(file)?;
    let chart = chart.map(Chart::load).transpose()?;
    refresh(&text, chart.as_ref()).map_err(|err| match err {
        // Name the page in errors about its markers.
        DocsError::Unterminated { .. }
        | DocsError::UnknownSection { .. }
        | DocsError::ChartMissing { .. } => DocsError::Parse {
            file: file.to_path_buf(),
            format: "generated section",
            message: err.to_string(),
        },
        other => other,
    })
}

/// A Helm chart's values description: the schema and the default values.
pub struct Chart {
    schema_file: PathBuf,
    schema: Value,
    values: Value,
}

impl Chart {
    /// Reads `values.schema.json` and `values.yaml` of the chart in `dir`.
    pub fn load(dir: &Path) -> Result<Chart, DocsError> {
        let schema_file = dir.join("values.schema.json");
        let values_file = dir.join("values.yaml");
        let schema =
            serde_json::from_str(&read(&schema_file)?).map_err(|err| DocsError::Parse {
                file: schema_file.clone(),
                format: "JSON",
                message: err.to_string(),
            })?;
        let values: Value =
            serde_norway::from_str(&read(&values_file)?).map_err(|err| DocsError::Parse {
                file: values_file.clone(),
                format: "YAML",
                message: err.to_string(),
            })?;
        Ok(Chart {
            schema_file,
            schema,
            values,
        })
    }
}

fn read(file: &Path) -> Result<String, DocsError> {
    std::fs::read_to_string(file).map_err(|source| DocsError::Read {
        file: file.to_path_buf(),
        source,
    })
}

/// Rewrites every generated section of a Markdown page.
pub fn refresh(text: &str, chart: Option<&Chart>) -> Result<String, DocsError> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((index, line)) = lines.next() {
        out.push_str(line);
        let Some(name) = section_name(line) else {
            continue;
        };
        let line_number = index + 1;
        let body = section_body(name, line_number, chart)?;
        // Skip the old body up to and including the end marker.
        let end = lines
            .by_ref()
            .find(|(_, line)| line.trim_end() == END_MARKER);
        let Some((_, end_line)) = end else {
            return Err(DocsError::Unterminated {
                line: line_number,
                name: name.to_string(),
            });
        };
        out.push_str(&body);
        // A blank line keeps the end marker out of the table.
        out.push('\n');
        out.push_str(end_line);
    }
    Ok(out)
}

fn section_name(line: &str) -> Option<&str> {
    line.trim_end()
        .strip_prefix(BEGIN_PREFIX)?
        .strip_suffix(BEGIN_SUFFIX)
}

fn section_body(name: &str, line: usize, chart: Option<&Chart>) -> Result<String, DocsError> {
    match name {
        OPERATOR_FLAGS => Ok(operator_flags_markdown()),
        HELM_VALUES => helm_values_markdown(chart.ok_or(DocsError::ChartMissing { line })?),
        _ => Err(DocsError::UnknownSection {
            line,
            name: name.to_string(),
        }),
    }
}

/// The table of `palisade operator` flags, from the clap definition.
pub fn operator_flags_markdown() -> String {
    let cli = crate::cli::Cli::command();
    let operator = cli
        .find_subcommand("operator")
        .expect("the CLI has an operator subcommand");
    let mut out = String::from(
        "<!-- Generated from the flags of `palisade operator` by scripts/gen-docs.sh; do not edit. -->\n\n\
         | Flag | Environment | Default | Meaning |\n\
         | --- | --- | --- | --- |\n",
    );
    for arg in operator.get_arguments() {
        if matches!(arg.get_id().as_str(), "help" | "version") || arg.is_hide_set() {
            continue;
        }
        let env = arg
            .get_env()
            .map(|env| format!("`{}`", env.to_string_lossy()))
            .unwrap_or_else(|| "—".to_string());
        let _ = writeln!(
            out,
            "| `{}` | {env} | {} | {} |",
            flag_usage(arg),
            flag_default(arg),
            table_cell(&flag_help(arg)),
        );
    }
    out
}

/// `--name VALUE`, `--name a|b` for a closed set, or `--name` for a switch.
fn flag_usage(arg: &Arg) -> String {
    let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
    if !arg.get_action().takes_values() {
        return format!("--{long}");
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_string())
        .collect();
    let value = if !possible.is_empty() {
        possible.join("\\|")
    } else if let Some(names) = arg.get_value_names() {
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        arg.get_id().as_str().to_uppercase()
    };
    let list = if arg.get_value_delimiter().is_some() {
        ",…"
    } else {
        ""
    };
    format!("--{long} {value}{list}")
}

fn flag_default(arg: &Arg) -> String {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return "off".to_string();
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| format!("`{}`", value.to_string_lossy()))
        .collect();
    if defaults.is_empty() {
        "—".to_string()
    } else {
        defaults.join(", ")
    }
}

fn flag_help(arg: &Arg) -> String {
    arg.get_long_help()
        .or_else(|| arg.get_help())
        .map(|help| help.to_string())
        .unwrap_or_default()
}

/// One line of a Markdown table cell: new lines become spaces, `|` is
/// escaped.
fn table_cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The table of the chart's values: every leaf of `values.schema.json`
/// (objects with inline `properties` are walked; everything else, `$ref`s
/// included, is a leaf) with its type and description, and its default from
/// `values.yaml`. A leaf without a description is an error.
pub fn helm_values_markdown(chart: &Chart) -> Result<String, DocsError> {
    let mut rows = Vec::new();
    collect_values(chart, &chart.schema, "", &mut rows)?;
    let mut out = String::from(
        "<!-- Generated from helm/palisade/values.schema.json and values.yaml by scripts/gen-docs.sh; do not edit. -->\n\n\
         | Value | Type | Default | Description |\n\
         | --- | --- | --- | --- |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            row.path,
            row.kind,
            row.default,
            table_cell(&row.description)
        );
    }
    Ok(out)
}

struct ValueRow {
    path: String,
    kind: String,
    default: String,
    description: String,
}

fn collect_values(
    chart: &Chart,
    schema: &Value,
    path: &str,
    rows: &mut Vec<ValueRow>,
) -> Result<(), DocsError> {
    let properties = schema.get("properties").and_then(Value::as_object);
    match properties {
        // An object with inline properties is documented through them, in
        // key order (serde_json sorts object keys, so the table is sorted).
        // A property typed by a `$ref` is one row, described where it is
        // used, like a free-form object.
        Some(properties) if !properties.is_empty() => {
            for (key, property) in properties {
                // `global` is reserved by Helm for subcharts, not a setting.
                if path.is_empty() && key == "global" {
                    continue;
                }
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_values(chart, property, &child, rows)?;
            }
            Ok(())
        }
        _ => {
            let description = schema
                .get("description")
                .and_then(Value::as_str)
                .ok_or_else(|| DocsError::Schema {
                    file: chart.schema_file.clone(),
                    path: path.to_string(),
                    message: "has no description".to_string(),
                })?;
            rows.push(ValueRow {
                path: path.to_string(),
                kind: describe_type(&chart.schema, schema, 0),
                default: value_default(&chart.values, path),
                description: description.to_string(),
            });
            Ok(())
        }
    }
}

/// The type of a schema for people: `string`, `integer \| null`, the values
/// of an `enum`, through local `$ref`s and the alternatives of `anyOf` and
/// `oneOf`.
fn describe_type(root: &Value, schema: &Value, depth: usize) -> String {
    // A `$ref` cycle cannot describe a value; stop rather than recurse.
    if depth > 16 {
        return "any".to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|value| format!("`{}`", serde_json::to_string(value).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    match schema.get("type") {
        Some(Value::String(kind)) => return kind.clone(),
        Some(Value::Array(kinds)) => {
            return kinds
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
        _ => {}
    }
    if let Some(target) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
    {
        return describe_type(root, target, depth + 1);
    }
    if let Some(constant) = schema.get("const") {
        return json_type(constant).to_string();
    }
    let alternatives = ["anyOf", "oneOf"]
        .iter()
        .find_map(|key| schema.get(*key).and_then(Value::as_array));
    if let Some(alternatives) = alternatives {
        let mut kinds: Vec<String> = Vec::new();
        for alternative in alternatives {
            let kind = describe_type(root, alternative, depth + 1);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        return kinds.join(" \\| ");
    }
    "any".to_string()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value at a dotted path of values.yaml as compact JSON in a code span.
fn value_default(values: &Value, path: &str) -> String {
    let found = path
        .split('.')
        .try_fold(values, |value, key| value.get(key));
    match found {
        None => "—".to_string(),
        Some(value) => {
            let json = serde_json::to_string(value).expect("a JSON value serializes");
            format!("`{}`", json.replace('|', "\\|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_table_lists_every_operator_flag_with_env_and_default() {
        let table = operator_flags_markdown();
        for row in [
            "| `--concurrency CONCURRENCY` | `PALISADE_CONCURRENCY` | `4` | How many objects are evaluated at once |",
            "| `--log-format text\\|json` |",
            "| `--leader-election` | `PALISADE_LEADER_ELECTION` | off |",
            "| `--namespaces NAMESPACES,…` |",
        ] {
            assert!(table.contains(row), "{row} missing from\n{table}");
        }
        assert!(!table.contains("--help"), "{table}");
    }

    #[test]
    fn refresh_replaces_only_the_section_body() {
        let page = "# Title\n\nprose\n<!-- BEGIN GENERATED: operator flags -->\nSTALE BODY\n<!-- END GENERATED -->\nmore prose\n";
        let refreshed = refresh(page, None).unwrap();
        assert!(refreshed.starts_with(
            "# Title\n\nprose\n<!-- BEGIN GENERATED: operator flags -->\n<!-- Generated"
        ));
        assert!(refreshed.ends_with("|\n\n<!-- END GENERATED -->\nmore prose\n"));
        assert!(!refreshed.contains("STALE BODY"));
        // Idempotent.
        assert_eq!(refresh(&refreshed, None).unwrap(), refreshed);
    }

    #[test]
    fn bad_markers_are_errors_with_the_line() {
        let unterminated = "a\n<!-- BEGIN GENERATED: operator flags -->\nold\n";
        assert_eq!(
            refresh(unterminated, None).unwrap_err().to_string(),
            "line 2: `<!-- BEGIN GENERATED: operator flags -->` has no `<!-- END GENERATED -->` after it"
        );
        let unknown = "<!-- BEGIN GENERATED: nope -->\n<!-- END GENERATED -->\n";
        assert!(matches!(
            refresh(unknown, None),
            Err(DocsError::UnknownSection { line: 1, .. })
        ));
        let values = "<!-- BEGIN GENERATED: helm values -->\n<!-- END GENERATED -->\n";
        assert!(matches!(
            refresh(values, None),
            Err(DocsError::ChartMissing { line: 1 })
        ));
    }

    fn chart(schema: Value, values: Value) -> Chart {
        Chart {
            schema_file: PathBuf::from("values.schema.json"),
            schema,
            values,
        }
    }

    #[test]
    fn values_table_walks_objects_and_takes_defaults_from_values() {
        let chart = chart(
            serde_json::json!({
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "description": "Operator replicas."},
                    "image": {"type": "object", "properties": {
                        "repository": {"type": "string", "description": "Image | repository."},
                        "tag": {"type": ["string", "null"], "description": "Tag."}
                    }}
                }
            }),
            serde_json::json!({"replicas": 1, "image": {"repository": "ghcr.io/x/y"}}),
        );
        let table = helm_values_markdown(&chart).unwrap();
        assert!(table.contains("| `replicas` | integer | `1` | Operator replicas. |"));
        assert!(table.contains(
            "| `image.repository` | string | `\"ghcr.io/x/y\"` | Image \\| repository. |"
        ));
        assert!(table.contains("| `image.tag` | string \\| null | — | Tag. |"));
    }

    #[test]
    fn types_follow_refs_enums_and_alternatives() {
        let chart = chart(
            serde_json::json!({
                "type": "object",
                "definitions": {
                    "duration": {"type": "string", "pattern": "^[0-9]+s$"},
                    "resources": {"type": "object", "properties": {
                        "limits": {"type": "object"}
                    }}
                },
                "properties": {
                    "global": {"type": "object", "description": "Helm's."},
                    "pullPolicy": {"enum": ["Always", "Never"], "description": "Pull."},
                    "lease": {
                        "anyOf": [{"const": ""}, {"$ref": "#/definitions/duration"}],
                        "description": "Lease."
                    },
                    "count": {"anyOf": [{"type": "integer"}, {"const": null}], "description": "N."},
                    "resources": {"$ref": "#/definitions/resources", "description": "Resources."}
                }
            }),
            serde_json::json!({"resources": {"limits": {"cpu": "1"}}}),
        );
        let table = helm_values_markdown(&chart).unwrap();
        for row in [
            "| `pullPolicy` | `\"Always\"` \\| `\"Never\"` | — | Pull. |",
            "| `lease` | string | — | Lease. |",
            "| `count` | integer \\| null | — | N. |",
            "| `resources` | object | `{\"limits\":{\"cpu\":\"1\"}}` | Resources. |",
        ] {
            assert!(table.contains(row), "{row} missing from\n{table}");
        }
        assert!(!table.contains("global"), "{table}");
    }

    #[test]
    fn a_value_without_description_is_an_error() {
        let chart = chart(
            serde_json::json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}),
            serde_json::json!({}),
        );
        assert_eq!(
            helm_values_markdown(&chart).unwrap_err().to_string(),
            "values.schema.json: `replicas`: has no description"
        );
    }
}

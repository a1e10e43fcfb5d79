//! Reading a ScanPolicy document from a file (`palisade scan --policy`).

use std::path::Path;

use serde_json::Value;

use super::documents::parse_yaml;
use super::{LoadError, read};
use crate::crd::ScanPolicySpec;

const API_VERSION: &str = "palisade.dev/v1alpha1";
const KIND: &str = "ScanPolicy";

/// Reads the one ScanPolicy document in `path`. Errors name the file and,
/// for a field of the wrong shape, the field.
pub fn read_policy(path: &Path) -> Result<ScanPolicySpec, LoadError> {
    let name = path.display().to_string();
    let bytes = read::read_file(path, &name, read::MAX_FILE_SIZE)?;
    let text = read::decode_text(bytes, &name)?;
    parse_policy(&name, &text)
}

/// Parses the text of a policy file called `name`.
pub fn parse_policy(name: &str, text: &str) -> Result<ScanPolicySpec, LoadError> {
    let error = |message: String| LoadError::Policy {
        file: name.to_owned(),
        message,
    };
    let mut documents = Vec::new();
    for document in parse_yaml(name, text) {
        documents.push(document?);
    }
    let document = match documents.len() {
        1 => documents.remove(0),
        0 => return Err(error(format!("no {KIND} document in the file"))),
        n => return Err(error(format!("expected one {KIND} document, found {n}"))),
    };
    let line = document.line;
    let type_of = |field: &str| document.value.get(field).and_then(Value::as_str);
    if type_of("apiVersion") != Some(API_VERSION) || type_of("kind") != Some(KIND) {
        return Err(error(format!(
            "line {line}: expected `apiVersion: {API_VERSION}` and `kind: {KIND}`"
        )));
    }
    let spec = document.value.get("spec").cloned().unwrap_or(Value::Null);
    let spec = if spec.is_null() {
        Value::Object(Default::default())
    } else {
        spec
    };
    serde_path_to_error::deserialize(spec).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            "spec".to_owned()
        } else {
            format!("spec.{path}")
        };
        error(format!("field `{field}`: {}", err.into_inner()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_policy() {
        let text = "apiVersion: palisade.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: default}\nspec:\n  exceptions:\n  - checks: [privileged-container]\n    reason: vendor image\n";
        let spec = parse_policy("p.yaml", text).expect("parses");
        assert_eq!(spec.exceptions.len(), 1);
        let empty = parse_policy(
            "p.yaml",
            "apiVersion: palisade.dev/v1alpha1\nkind: ScanPolicy\n",
        );
        assert_eq!(empty.expect("parses"), ScanPolicySpec::default());
    }

    #[test]
    fn errors_name_file_and_field() {
        let text = "apiVersion: palisade.dev/v1alpha1\nkind: ScanPolicy\nspec:\n  severityOverrides:\n  - check: x\n    severity: extreme\n";
        let err = parse_policy("p.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "p.yaml: field `spec.severityOverrides[0].severity`: unknown variant `extreme`"
            ),
            "{err}"
        );
        let err = parse_policy("p.yaml", "apiVersion: v1\nkind: ConfigMap\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected `apiVersion: palisade.dev/v1alpha1`"),
            "{err}"
        );
        let err = parse_policy("p.yaml", "a: [").unwrap_err().to_string();
        assert!(
            err.starts_with("p.yaml:") && err.contains("invalid YAML"),
            "{err}"
        );
    }
}

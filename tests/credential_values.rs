//! Credentials found in manifests are reported by where they are, never by
//! what they are: no output format of `palisade scan` repeats a value that a
//! credential check flags (ConfigMap data, env literals, container args).

use std::process::Command;

/// Distinctive values, so that a leak in any output is unmistakable.
const VALUES: &[&str] = &[
    "Hunter2-in-configmap",
    "Hunter2-in-env",
    "Hunter2-in-args",
    "Hunter2-in-url",
    "AKIAIOSFODNN7EXAMPLE",
];

const MANIFEST: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  DB_PASSWORD: Hunter2-in-configmap
  aws: AKIAIOSFODNN7EXAMPLE
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
spec:
  containers:
  - name: app
    image: api:1.0
    args: ["--password=Hunter2-in-args"]
    env:
    - {name: PWD, value: Hunter2-in-env}
    - {name: DATABASE_URL, value: "postgres://app:Hunter2-in-url@db/app"}
"#;

#[test]
fn no_output_format_repeats_a_flagged_credential() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    for format in ["table", "json", "yaml", "sarif", "junit", "openreports"] {
        let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["scan", "--output", format])
            .arg(&file)
            .env("NO_COLOR", "1")
            .output()
            .expect("palisade runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{format}: {stderr}");
        for check in [
            "secret-in-config-map",
            "secret-literal-in-env",
            "secret-literal-in-args",
        ] {
            assert!(stdout.contains(check), "{format}: no {check} finding");
        }
        for value in VALUES {
            assert!(
                !stdout.contains(value) && !stderr.contains(value),
                "{format} repeats `{value}`"
            );
        }
    }
}

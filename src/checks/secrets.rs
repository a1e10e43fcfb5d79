//! Secrets and credentials in pod specs and ConfigMaps: secrets exposed
//! through environment variables, and credentials written into the manifest
//! itself (env literals, container arguments, ConfigMap data).
//!
//! Every container counts, init and ephemeral ones included. Messages never
//! repeat a value: the finding would leak what it reports.

use k8s_openapi::api::core::v1::ConfigMap;

use super::credential_shapes::{Found, credential_in};
use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{ContainerEntry, FieldPath};

pub static CHECKS: &[&Check] = &[
    &SECRET_ENV_VAR,
    &SECRET_LITERAL_IN_ENV,
    &SECRET_LITERAL_IN_ARGS,
    &SECRET_IN_CONFIG_MAP,
];

/// Secrets in environment variables leak through crash dumps, logs and child processes.
pub static SECRET_ENV_VAR: Check = Check {
    id: "secret-env-var",
    title: "Secret exposed as environment variable",
    category: Category::Secrets,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "A Secret read into an environment variable (`valueFrom.secretKeyRef` or \
                  `envFrom.secretRef`) is inherited by every child process and often ends up \
                  in crash reports, debug endpoints and logs. A mounted file can be read only \
                  by the process that needs it and is updated when the Secret rotates.",
    remediation: "Mount the Secret as a volume (`volumes[].secret`, read-only) and have the \
                  application read the file.",
    frameworks: &["cis-k8s:5.4.1", "mitre:T1552"],
    aliases: &[
        alias(Tool::Checkov, "CKV_K8S_35"),
        alias(Tool::KubeLinter, "read-secret-from-env-var"),
    ],
    scope: Scope::Object,
    run: secret_env_var,
};

/// A credential written into the manifest is readable by everyone who can
/// read the workload, and lives in git history forever.
///
/// The rule, so that it can be predicted and argued with:
/// - the variable has a non-empty literal `value` (not `valueFrom`), and
/// - its name is credential-like: split into words (on `_`, `-`, `.` and
///   camelCase), it contains `password`, `passwd`, `pass`, `pwd`, `passphrase`,
///   `secret`, `token`, `credential(s)`, `creds` or `bearer` (or a word ending
///   in `password`, `passwd`, `secret` or `token`, like `PGPASSWORD`), or the word pairs
///   `api key`, `access key`, `private key`, `secret key`, `signing key`,
///   `encryption key`, `master key`, `account key`, `storage key`, `auth key`
///   (also written as one word, `APIKEY`), or is `AZURE_…_KEY` or
///   `OCI_CLI_KEY_CONTENT`;
/// - unless its last word says it holds something about the credential
///   rather than the credential itself (`PASSWORD_FILE`, `TOKEN_PATH`,
///   `TOKEN_TTL`, `SECRET_NAME`, `AWS_ACCESS_KEY_ID`, `TOKEN_URL`, …), or the
///   value is a placeholder: only `$(VAR)` references, an absolute file path,
///   or a boolean (`MYSQL_ALLOW_EMPTY_PASSWORD=yes`).
///
/// An env var named `pwd`/`PWD` on its own is the shell's working directory
/// when its value is a path, and a password otherwise (`PWD=hunter2`).
///
/// Whatever the name, a value with the shape of a credential is flagged: a
/// PEM private key, an AWS access key id, a JSON Web Token, a URL with a
/// password (`postgres://user:pass@host`), written as is or base64 encoded.
pub static SECRET_LITERAL_IN_ENV: Check = Check {
    id: "secret-literal-in-env",
    title: "Credential written literally in an environment variable",
    category: Category::Secrets,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "An environment variable whose name says it holds a credential (password, \
                  token, secret, API or private key…) is given a literal value, or a value \
                  has the shape of a credential (private key, AWS access key id, JSON Web \
                  Token, password in a URL, also base64 encoded): anyone who can read the \
                  workload, its manifests or their git history can read the credential.",
    remediation: "Move the value into a Secret (or an external secret store), mount it as a \
                  file or reference it with `valueFrom.secretKeyRef`, and rotate the exposed \
                  credential.",
    frameworks: &["nsa-cisa", "mitre:T1552"],
    aliases: &[
        alias(Tool::Kubescape, "C-0012"),
        alias(Tool::Polaris, "sensitiveContainerEnvVar"),
        alias(Tool::KubeLinter, "env-var-secret"),
    ],
    scope: Scope::Object,
    run: secret_literal_in_env,
};

fn secret_env_var(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        for var in c.container.env.iter().flatten() {
            let Some(selector) = var
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            else {
                continue;
            };
            let path = c
                .path
                .field("env")
                .named(&var.name)
                .field("valueFrom")
                .field("secretKeyRef");
            let message = format!(
                "container `{}` reads key `{}` of secret `{}` into env var `{}`",
                c.name(),
                selector.key,
                selector.name,
                var.name
            );
            out.container(c, path, message);
        }
        for (index, source) in c.container.env_from.iter().flatten().enumerate() {
            let Some(secret) = source.secret_ref.as_ref() else {
                continue;
            };
            let path = c.path.field("envFrom").index(index).field("secretRef");
            let message = format!(
                "container `{}` loads every key of secret `{}` into its environment",
                c.name(),
                secret.name
            );
            out.container(c, path, message);
        }
    }
}

fn secret_literal_in_env(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        for var in c.container.env.iter().flatten() {
            let Some(value) = var.value.as_deref().filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let Some(what) = literal_credential(&var.name, value) else {
                continue;
            };
            let path = c.path.field("env").named(&var.name).field("value");
            let message = format!("container `{}` sets `{}` to {what}", c.name(), var.name);
            out.container(c, path, message);
        }
    }
}

/// What an env var or flag named `name` with literal `value` holds, if it
/// is a credential: by the value's shape first, then by the name.
fn literal_credential(name: &str, value: &str) -> Option<String> {
    if let Some(found) = credential_in(value) {
        return Some(literal(found));
    }
    let named = names_credential(name) && !is_placeholder(value);
    let pwd = name.eq_ignore_ascii_case("pwd") && !is_path_like(value);
    (named || pwd).then(|| "a literal value".to_owned())
}

/// "a literal private key", "a literal base64-encoded JSON Web Token".
fn literal(found: Found) -> String {
    let what = found.describe();
    match what.split_once(' ') {
        Some((_, rest)) if !found.base64 && rest == "PEM private key" => {
            "a literal private key".to_owned()
        }
        Some((_, rest)) => format!("a literal {rest}"),
        None => what,
    }
}

/// Whether a `PWD` value is a directory, as the shell sets it: absolute,
/// home-relative or relative paths, and `$(VAR)` references.
fn is_path_like(value: &str) -> bool {
    let value = value.trim();
    let windows_drive = value.len() >= 3
        && value.as_bytes()[0].is_ascii_alphabetic()
        && value[1..].starts_with(":\\");
    ["/", "~", "./", "../"].iter().any(|p| value.starts_with(p))
        || matches!(value, "." | "..")
        || windows_drive
        || only_references(value)
}

/// A credential passed on a command line is visible to every process on the
/// node (`ps`, `/proc/<pid>/cmdline`) and in the manifest.
///
/// Each item of `command` and `args` is split on whitespace (so that a
/// `sh -c` script is read too), and flagged when a token is
/// `--<name>=<value>` or `--<name> <value>` with a credential name (the
/// rule of [`SECRET_LITERAL_IN_ENV`]: `--password`, `--db-password`,
/// `--api-key`, `--token`…) and a value that is not a placeholder, or when
/// any token has the shape of a credential (private key, AWS access key id,
/// JSON Web Token, password in a URL, also base64 encoded).
pub static SECRET_LITERAL_IN_ARGS: Check = Check {
    id: "secret-literal-in-args",
    title: "Credential written literally in container arguments",
    category: Category::Secrets,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A container's `command` or `args` passes a credential literally: a flag \
                  named like one (`--password=…`, `--api-key …`) with a literal value, or a \
                  value shaped like one (private key, AWS access key id, JSON Web Token, \
                  password in a URL). Command lines are readable by every process on the \
                  node and by anyone who can read the workload or its manifests.",
    remediation: "Pass the credential from a Secret: mount it as a file and point the \
                  program at the file (`--password-file`), or reference an environment \
                  variable set by `valueFrom.secretKeyRef` with `$(VAR)`; rotate the \
                  exposed credential.",
    frameworks: &["nsa-cisa", "mitre:T1552"],
    aliases: &[],
    scope: Scope::Object,
    run: secret_literal_in_args,
};

fn secret_literal_in_args(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        for (field, items) in [
            ("command", &c.container.command),
            ("args", &c.container.args),
        ] {
            for (index, item) in items.iter().flatten().enumerate() {
                let next = items.as_ref().and_then(|all| all.get(index + 1));
                if let Some(what) = credential_in_argument(item, next.map(String::as_str)) {
                    report_argument(out, c, field, index, &what);
                }
            }
        }
    }
}

fn report_argument(
    out: &mut Violations,
    c: &ContainerEntry,
    field: &str,
    index: usize,
    what: &str,
) {
    let path = c.path.field(field).index(index);
    let message = format!(
        "container `{}` passes {what} in `{field}[{index}]`",
        c.name()
    );
    out.container(c, path, message);
}

/// The credential one argument passes: read token by token; a flag whose
/// value is the next argument looks at `next`.
fn credential_in_argument(item: &str, next: Option<&str>) -> Option<String> {
    let tokens: Vec<&str> = item.split_whitespace().collect();
    for (position, token) in tokens.iter().enumerate() {
        if let Some(found) = credential_in(token) {
            return Some(literal(found));
        }
        let Some((dashes, name, value)) = flag(token) else {
            continue;
        };
        // `--password hunter2`: the value is the next token, or the next argument.
        let value = value.or_else(|| {
            let following = tokens.get(position + 1).copied();
            following.or(next.filter(|_| tokens.len() == 1))
        });
        let value = value.map(|v| v.trim_matches(|c| c == '"' || c == '\''));
        let Some(value) = value.filter(|v| !v.is_empty() && !v.starts_with('-')) else {
            continue;
        };
        if names_credential(name) && !is_placeholder(value) && !is_env_reference(value) {
            return Some(format!("a literal value for `{dashes}{name}`"));
        }
    }
    None
}

/// A command-line flag: `--name=value`, `--name` (value in the next token),
/// or Go's single-dash `-name=value` (only with `=`, so that short option
/// clusters such as `-it` are not read as names). Returns the dashes, the
/// name and the value written with it.
fn flag(token: &str) -> Option<(&'static str, &str, Option<&str>)> {
    if let Some(rest) = token.strip_prefix("--") {
        return match rest.split_once('=') {
            Some((name, value)) => Some(("--", name, Some(value))),
            None => Some(("--", rest, None)),
        };
    }
    let (name, value) = token.strip_prefix('-')?.split_once('=')?;
    (name.len() > 1).then_some(("-", name, Some(value)))
}

/// `$VAR` and `${VAR}`: a shell expanding a variable set elsewhere.
fn is_env_reference(value: &str) -> bool {
    value.starts_with('$')
}

/// A ConfigMap is not meant for credentials: it is readable by anyone who
/// may read ConfigMaps in the namespace (often far more people than may read
/// Secrets), shown by `kubectl describe`, and stored unencrypted.
///
/// Each `data` and `binaryData` entry is checked:
/// - by its key, with the rule of [`SECRET_LITERAL_IN_ENV`] (`password`,
///   `db_pwd`, `secret`, `token`, `api_key`, `access-key`…; `pwd` alone
///   counts), when the value is a single non-empty line that is not a
///   placeholder (file contents under such a key are judged by shape);
/// - by its value's shape, under any key: a PEM private key, an AWS access
///   key id, a JSON Web Token, a password in a URL, as written or base64
///   encoded (the whole value, or one word of it, such as a kubeconfig's
///   `client-key-data`).
pub static SECRET_IN_CONFIG_MAP: Check = Check {
    id: "secret-in-config-map",
    title: "Credential stored in a ConfigMap",
    category: Category::Secrets,
    severity: Severity::High,
    applies: Applies::ConfigMap,
    description: "A ConfigMap key is named like a credential (password, secret, token, API \
                  or access key) and holds a literal value, or a value has the shape of a \
                  credential (private key, AWS access key id, JSON Web Token, password in a \
                  URL, also base64 encoded). ConfigMaps are readable more widely than \
                  Secrets and are not encrypted at rest. Checked in `palisade scan`; the \
                  operator does not read ConfigMaps.",
    remediation: "Move the value into a Secret (or an external secret store) and mount it \
                  from there; rotate the exposed credential.",
    frameworks: &["cis-k8s:5.4.1", "nsa-cisa", "mitre:T1552"],
    aliases: &[
        alias(Tool::Trivy, "KSV0109"),
        alias(Tool::Kubescape, "C-0012"),
        alias(Tool::Polaris, "sensitiveConfigmapContent"),
        alias(Tool::KubeLinter, "configmap-with-credentials"),
    ],
    scope: Scope::Object,
    run: secret_in_config_map,
};

fn secret_in_config_map(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::ConfigMap(config_map) = subject else {
        return;
    };
    for (key, value, path) in config_map_entries(config_map) {
        let what = if let Some(found) = credential_in(&value) {
            found.describe()
        } else if config_key_names_credential(key) && is_single_literal(&value) {
            "a literal value under a credential name".to_owned()
        } else {
            continue;
        };
        out.object(path, format!("key `{key}` holds {what}"));
    }
}

/// Every entry of `data` and `binaryData` (binary values read as UTF-8 where
/// they are text) with its path.
fn config_map_entries(config_map: &ConfigMap) -> Vec<(&str, String, FieldPath)> {
    let text = config_map.data.iter().flatten().map(|(key, value)| {
        let path = FieldPath::new("data").key(key);
        (key.as_str(), value.clone(), path)
    });
    let binary = config_map
        .binary_data
        .iter()
        .flatten()
        .filter_map(|(key, bytes)| {
            let value = String::from_utf8(bytes.0.clone()).ok()?;
            Some((key.as_str(), value, FieldPath::new("binaryData").key(key)))
        });
    text.chain(binary).collect()
}

/// A ConfigMap key names a credential by the env var rule, and `pwd` on its
/// own counts (no shell sets a ConfigMap key).
fn config_key_names_credential(key: &str) -> bool {
    names_credential(key) || key.eq_ignore_ascii_case("pwd")
}

/// One line of text that could be a credential: not empty, not a file's
/// contents, not a placeholder.
fn is_single_literal(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty() && !value.contains('\n') && !is_placeholder(value)
}

/// Words that make a variable name a credential on their own.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "pass",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "tokens",
    "credential",
    "credentials",
    "creds",
    "bearer",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "clientsecret",
];

/// Endings that make a run-together word a credential: `PGPASSWORD`,
/// `CLIENTSECRET`, `AUTHTOKEN`.
const CREDENTIAL_ENDINGS: &[&str] = &["password", "passwd", "secret", "token"];

fn is_credential_word(word: &str) -> bool {
    CREDENTIAL_WORDS.contains(&word) || CREDENTIAL_ENDINGS.iter().any(|e| word.ends_with(e))
}

/// Words that, followed by `key`, name a key that is a credential.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "account",
    "storage",
    "auth",
];

/// Last words that describe a credential without being one: where it is
/// stored, how long it lives, what it is called.
const DESCRIPTIVE_SUFFIXES: &[&str] = &[
    "file",
    "path",
    "dir",
    "directory",
    "mount",
    "location",
    "ttl",
    "timeout",
    "expiry",
    "expiration",
    "expires",
    "lifetime",
    "age",
    "interval",
    "duration",
    "seconds",
    "secs",
    "ms",
    "minutes",
    "hours",
    "days",
    "length",
    "len",
    "size",
    "count",
    "limit",
    "min",
    "max",
    "name",
    "names",
    "id",
    "ref",
    "url",
    "uri",
    "endpoint",
    "host",
    "port",
    "header",
    "enabled",
    "enable",
    "disabled",
    "required",
    "mode",
    "type",
    "kind",
    "format",
    "algorithm",
    "alg",
    "version",
    "issuer",
    "audience",
    "scope",
    "field",
    "provider",
    "policy",
    "namespace",
    "prefix",
    "selector",
    "label",
    "store",
    "backend",
    "class",
    "volume",
    "rotation",
    "refresh",
    "stdin",
    "command",
    "cmd",
    "env",
    "var",
    "prompt",
];

/// Splits an environment variable name into lower-case words on `_`, `-`,
/// `.` and camelCase boundaries: `dbPassword_FILE` → `db`, `password`, `file`.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for ch in name.chars() {
        if !ch.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if ch.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        current.push(ch.to_ascii_lowercase());
    }
    words.push(current);
    words.retain(|w| !w.is_empty());
    words
}

/// Whether an environment variable name says it holds a credential (see
/// [`SECRET_LITERAL_IN_ENV`] for the rule).
pub fn names_credential(name: &str) -> bool {
    let words = words(name);
    let Some(last) = words.last() else {
        return false;
    };
    if DESCRIPTIVE_SUFFIXES.contains(&last.as_str()) {
        return false;
    }
    let has_word = words.iter().any(|w| is_credential_word(w))
        // `PWD` alone is the shell's working directory; `DB_PWD` is a password.
        || (words.len() > 1 && words.iter().any(|w| w == "pwd"));
    let has_key_pair = words
        .windows(2)
        .any(|pair| pair[1] == "key" && KEY_QUALIFIERS.contains(&pair[0].as_str()));
    // Cloud SDK conventions: AZURE_STORAGE_KEY, AZURE_BATCH_KEY, OCI_CLI_KEY_CONTENT.
    let cloud_key = (words[0] == "azure" && last == "key")
        || words
            .iter()
            .map(String::as_str)
            .eq(["oci", "cli", "key", "content"]);
    has_word || has_key_pair || cloud_key
}

/// Values that are not a credential whatever the name: references to other
/// variables, file paths, switches.
fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    let is_bool = ["true", "false", "yes", "no", "on", "off"]
        .iter()
        .any(|b| value.eq_ignore_ascii_case(b));
    let is_path = value.starts_with('/') && !value.contains(char::is_whitespace);
    is_bool || is_path || only_references(value)
}

/// Whether the value consists only of `$(VAR)` references (which Kubernetes
/// expands from other variables) and punctuation.
fn only_references(value: &str) -> bool {
    let mut rest = value;
    let mut literal = String::new();
    while let Some(start) = rest.find("$(") {
        literal.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                literal.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    literal.push_str(rest);
    value.contains("$(") && !literal.chars().any(|c| c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::{is_placeholder, names_credential};
    use crate::checks::testing::{findings, paths};

    #[test]
    fn credential_names() {
        for name in [
            "DB_PASSWORD",
            "dbPassword",
            "MYSQL_ROOT_PASSWORD",
            "PGPASSWORD",
            "SMTP_PASS",
            "DB_PWD",
            "JWT_SECRET",
            "SECRET_KEY_BASE",
            "GITHUB_TOKEN",
            "API_KEY",
            "APIKEY",
            "apiKey",
            "AWS_SECRET_ACCESS_KEY",
            "STRIPE_PRIVATE_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AZURE_STORAGE_KEY",
            "OCI_CLI_KEY_CONTENT",
            "OAUTH_CLIENT_SECRET",
        ] {
            assert!(names_credential(name), "{name} should be a credential");
        }
        for name in [
            "PASSWORD_FILE",
            "DB_PASSWORD_PATH",
            "TOKEN_TTL",
            "TOKEN_URL",
            "SECRET_NAME",
            "AWS_ACCESS_KEY_ID",
            "PASSWORD_MIN_LENGTH",
            "VAULT_TOKEN_PATH",
            "TOKENIZERS_PARALLELISM",
            "PWD",
            "BYPASS_CACHE",
            "CACHE_KEY",
            "KEYCLOAK_URL",
            "GREETING",
        ] {
            assert!(!names_credential(name), "{name} should not be a credential");
        }
    }

    #[test]
    fn placeholder_values() {
        assert!(is_placeholder("$(DB_PASSWORD)"));
        assert!(is_placeholder("$(USER):$(PASS)"));
        assert!(is_placeholder("/var/run/secrets/gcp/key.json"));
        assert!(is_placeholder("yes"));
        assert!(!is_placeholder("hunter2"));
        assert!(!is_placeholder("user:$(PASS)"));
    }

    const ENV: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: app
        image: api:1.0
        env:
        - {name: DB_PASSWORD, value: hunter2}
        - {name: DB_PASSWORD_FILE, value: /run/secrets/db}
        - {name: TOKEN_TTL, value: "3600"}
        - {name: GREETING, value: hello}
        - name: API_TOKEN
          valueFrom: {secretKeyRef: {name: api, key: token}}
        - name: TLS_KEY
          value: |
            -----BEGIN RSA PRIVATE KEY-----
            MIIB
            -----END RSA PRIVATE KEY-----
        envFrom:
        - configMapRef: {name: settings}
        - secretRef: {name: db}
      initContainers:
      - name: init
        image: busybox:1.36
        env: [{name: ADMIN_TOKEN, value: "$(API_TOKEN)"}]
"#;

    #[test]
    fn secret_literal_in_env_flags_credentials_and_private_keys() {
        let base = "spec.template.spec.containers[name=app].env";
        assert_eq!(
            paths(ENV, "secret-literal-in-env"),
            [
                format!("{base}[name=DB_PASSWORD].value"),
                format!("{base}[name=TLS_KEY].value"),
            ]
        );
        let messages: Vec<_> = findings(ENV, "secret-literal-in-env")
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(
            messages,
            [
                "container `app` sets `DB_PASSWORD` to a literal value",
                "container `app` sets `TLS_KEY` to a literal private key",
            ]
        );
    }

    #[test]
    fn secret_literal_in_env_passes_references() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: api:1.0
    env:
    - name: DB_PASSWORD
      valueFrom: {secretKeyRef: {name: db, key: password}}
    - {name: GITHUB_TOKEN, value: ""}
"#;
        assert!(paths(yaml, "secret-literal-in-env").is_empty());
    }

    #[test]
    fn secret_env_var_flags_secret_key_refs_and_env_from() {
        let base = "spec.template.spec.containers[name=app]";
        assert_eq!(
            paths(ENV, "secret-env-var"),
            [
                format!("{base}.envFrom[1].secretRef"),
                format!("{base}.env[name=API_TOKEN].valueFrom.secretKeyRef"),
            ]
        );
        let messages: Vec<_> = findings(ENV, "secret-env-var")
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(
            messages,
            [
                "container `app` loads every key of secret `db` into its environment",
                "container `app` reads key `token` of secret `api` into env var `API_TOKEN`",
            ]
        );
    }

    #[test]
    fn secret_env_var_passes_mounted_secrets() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: api:1.0
    env: [{name: MODE, value: production}]
    envFrom: [{configMapRef: {name: settings}}]
    volumeMounts: [{name: db, mountPath: /run/secrets/db, readOnly: true}]
  volumes:
  - {name: db, secret: {secretName: db}}
"#;
        assert!(paths(yaml, "secret-env-var").is_empty());
    }

    fn pod_env(env: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: shop}}\nspec:\n  \
             containers:\n  - name: app\n    image: api:1.0\n    env:\n{env}"
        )
    }

    #[test]
    fn secret_literal_in_env_flags_credential_shapes_under_any_name() {
        let yaml = pod_env(
            "    - {name: DATABASE_URL, value: \"postgres://app:s3cr3t@db:5432/app\"}\n\
             \x20   - {name: UPSTREAM, value: AKIAIOSFODNN7EXAMPLE}\n\
             \x20   - {name: HEADER, value: \"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\"}\n\
             \x20   - {name: BLOB, value: cG9zdGdyZXM6Ly9hcHA6czNjcjN0QGRiOjU0MzIvYXBw}\n",
        );
        let messages: Vec<_> = findings(&yaml, "secret-literal-in-env")
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(
            messages,
            [
                "container `app` sets `BLOB` to a literal base64-encoded password in a URL",
                "container `app` sets `DATABASE_URL` to a literal password in a URL",
                "container `app` sets `HEADER` to a literal JSON Web Token",
                "container `app` sets `UPSTREAM` to a literal AWS access key id",
            ]
        );
        for message in &messages {
            assert!(!message.contains("s3cr3t") && !message.contains("AKIA"));
        }
    }

    #[test]
    fn secret_literal_in_env_passes_harmless_urls_and_values() {
        let yaml = pod_env(
            "    - {name: DATABASE_URL, value: \"postgres://app:$(DB_PASSWORD)@db/app\"}\n\
             \x20   - {name: ENDPOINT, value: \"https://api.example.com/v1\"}\n\
             \x20   - {name: GREETING, value: aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=}\n",
        );
        assert!(paths(&yaml, "secret-literal-in-env").is_empty());
    }

    #[test]
    fn pwd_is_a_password_unless_it_is_a_path() {
        let yaml = pod_env("    - {name: PWD, value: hunter2}\n    - {name: pwd, value: s3cret}\n");
        assert_eq!(
            paths(&yaml, "secret-literal-in-env"),
            [
                "spec.containers[name=app].env[name=PWD].value",
                "spec.containers[name=app].env[name=pwd].value",
            ]
        );
        for path in ["/app", "~/work", "./data", "..", "$(HOME)", "C:\\\\app"] {
            let yaml = pod_env(&format!("    - {{name: PWD, value: '{path}'}}\n"));
            assert!(paths(&yaml, "secret-literal-in-env").is_empty(), "{path}");
        }
    }

    fn pod_args(args: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: shop}}\nspec:\n  \
             containers:\n  - name: app\n    image: api:1.0\n    args: {args}\n"
        )
    }

    #[test]
    fn secret_literal_in_args_flags_credential_flags_and_shapes() {
        let yaml = pod_args(
            "[\"--password=hunter2\", \"--api-key\", \"abc123\", \"--port=80\", \
             \"mysql -u root --db-password=s3cret\", \"--upstream=redis://:pw@redis:6379\"]",
        );
        let found = findings(&yaml, "secret-literal-in-args");
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.path.as_str(), f.message.as_str()))
            .collect();
        let base = "spec.containers[name=app].args";
        assert_eq!(
            summary,
            [
                (
                    &*format!("{base}[0]"),
                    "container `app` passes a literal value for `--password` in `args[0]`"
                ),
                (
                    &*format!("{base}[1]"),
                    "container `app` passes a literal value for `--api-key` in `args[1]`"
                ),
                (
                    &*format!("{base}[4]"),
                    "container `app` passes a literal value for `--db-password` in `args[4]`"
                ),
                (
                    &*format!("{base}[5]"),
                    "container `app` passes a literal password in a URL in `args[5]`"
                ),
            ]
        );
    }

    #[test]
    fn secret_literal_in_args_reads_go_style_single_dash_flags() {
        let yaml = pod_args("[\"-password=hunter2\", \"-it\", \"-p=80\"]");
        let found = findings(&yaml, "secret-literal-in-args");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "container `app` passes a literal value for `-password` in `args[0]`"
        );
    }

    #[test]
    fn secret_literal_in_args_passes_references_and_files() {
        let script = pod_args(
            "[\"sh\", \"-c\", \"echo $PASS | docker login -u ci --password-stdin registry\"]",
        );
        assert!(paths(&script, "secret-literal-in-args").is_empty());
        let yaml = pod_args(
            "[\"--password=$(DB_PASSWORD)\", \"--password-file=/run/secrets/db\", \
             \"--token\", \"$TOKEN\", \"--enable-token-auth=true\", \"--secret-name=db\", \
             \"--api-key\", \"--verbose\"]",
        );
        assert!(paths(&yaml, "secret-literal-in-args").is_empty());
    }

    fn config_map(data: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: shop}}\n{data}"
        )
    }

    #[test]
    fn secret_in_config_map_flags_credential_keys_and_shapes() {
        let yaml = config_map(
            "data:\n  DB_PASSWORD: hunter2\n  pwd: s3cret\n  api-key: abc\n  \
             config.yaml: |\n    db: postgres://app:s3cr3t@db/app\n  \
             tls.key: |\n    -----BEGIN PRIVATE KEY-----\n    MIIB\n    -----END PRIVATE KEY-----\n  \
             kubeconfig: |\n    users:\n    - user:\n        client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlCCi0tLS0tRU5EIFJTQSBQUklWQVRFIEtFWS0tLS0tCg==\n\
             binaryData:\n  aws: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=\n",
        );
        let found = findings(&yaml, "secret-in-config-map");
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.path.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("binaryData[aws]", "key `aws` holds an AWS access key id"),
                (
                    "data[DB_PASSWORD]",
                    "key `DB_PASSWORD` holds a literal value under a credential name"
                ),
                (
                    "data[api-key]",
                    "key `api-key` holds a literal value under a credential name"
                ),
                (
                    "data[config.yaml]",
                    "key `config.yaml` holds a password in a URL"
                ),
                (
                    "data[kubeconfig]",
                    "key `kubeconfig` holds a base64-encoded PEM private key"
                ),
                (
                    "data[pwd]",
                    "key `pwd` holds a literal value under a credential name"
                ),
                ("data[tls.key]", "key `tls.key` holds a PEM private key"),
            ]
        );
        assert_eq!(found[0].object.kind, "ConfigMap");
    }

    #[test]
    fn secret_in_config_map_passes_settings() {
        let yaml = config_map(
            "data:\n  PASSWORD_FILE: /run/secrets/db\n  TOKEN_TTL: \"3600\"\n  \
             SECRET_NAME: db\n  password: \"\"\n  token: $(TOKEN)\n  \
             nginx.conf: |\n    server { listen 80; }\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n",
        );
        assert!(paths(&yaml, "secret-in-config-map").is_empty());
        assert!(paths(&config_map(""), "secret-in-config-map").is_empty());
    }
}

//! Secrets and credentials in pod specs: secrets exposed through environment
//! variables, and credentials written into the manifest itself.
//!
//! Every container counts, init and ephemeral ones included. Messages never
//! repeat a value: the finding would leak what it reports.

use crate::engine::{
    Applies, Category, Check, Context, Severity, Subject, Tool, Violations, alias,
};

pub static CHECKS: &[&Check] = &[&SECRET_ENV_VAR, &SECRET_LITERAL_IN_ENV];

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
/// Whatever the name, a value holding a PEM private key is flagged.
pub static SECRET_LITERAL_IN_ENV: Check = Check {
    id: "secret-literal-in-env",
    title: "Credential written literally in an environment variable",
    category: Category::Secrets,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "An environment variable whose name says it holds a credential (password, \
                  token, secret, API or private key…) is given a literal value, or a value \
                  holds a private key: anyone who can read the workload, its manifests or \
                  their git history can read the credential.",
    remediation: "Move the value into a Secret (or an external secret store), mount it as a \
                  file or reference it with `valueFrom.secretKeyRef`, and rotate the exposed \
                  credential.",
    frameworks: &["nsa-cisa", "mitre:T1552"],
    aliases: &[
        alias(Tool::Kubescape, "C-0012"),
        alias(Tool::Polaris, "sensitiveContainerEnvVar"),
        alias(Tool::KubeLinter, "env-var-secret"),
    ],
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
            let what = if holds_private_key(value) {
                "a literal private key"
            } else if names_credential(&var.name) && !is_placeholder(value) {
                "a literal value"
            } else {
                continue;
            };
            let path = c.path.field("env").named(&var.name).field("value");
            let message = format!("container `{}` sets `{}` to {what}", c.name(), var.name);
            out.container(c, path, message);
        }
    }
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

/// A PEM private key block (`-----BEGIN RSA PRIVATE KEY-----` and variants).
fn holds_private_key(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    upper
        .find("-BEGIN")
        .is_some_and(|begin| upper[begin..].contains("PRIVATE KEY-"))
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
}

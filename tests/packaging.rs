//! What can be checked of the packaging without a container engine or
//! GitHub: the Dockerfile and its build context, the image name everywhere it
//! is written, the GitHub Action (parsed, and its steps run with bash against
//! a local release), the pre-commit hook, and the generated documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const IMAGE_REPOSITORY: &str = "ghcr.io/palisade-dev/palisade";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("palisade runs")
}

// ---------------------------------------------------------------- Dockerfile

/// One Dockerfile instruction: keyword (upper case) and its arguments, with
/// continuation lines joined and comments dropped.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn dockerfile() -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(continued) => {
                current.push_str(continued);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_uppercase(),
                    args: args.trim().to_string(),
                });
                current.clear();
            }
        }
    }
    instructions
}

/// The instructions of the last stage (after the last FROM).
fn final_stage(instructions: &[Instruction]) -> &[Instruction] {
    let last_from = instructions
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("the Dockerfile has a FROM");
    &instructions[last_from..]
}

fn cargo_bin_name() -> String {
    // The `name` of the first [[bin]] table of Cargo.toml.
    let manifest = read("Cargo.toml");
    let bin = manifest
        .split("[[bin]]")
        .nth(1)
        .expect("Cargo.toml declares a [[bin]]");
    bin.lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .expect("the [[bin]] has a name")
}

#[test]
fn dockerfile_final_stage_is_minimal_and_runs_as_a_numeric_non_root_user() {
    let instructions = dockerfile();
    let stage = final_stage(&instructions);
    let base = &stage[0].args;
    assert!(
        base.starts_with("gcr.io/distroless/static") || base == "scratch",
        "final base image {base} should be distroless/static or scratch"
    );
    let user = stage
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .expect("the final stage sets USER");
    for id in user.args.split(':') {
        let id: u32 = id
            .parse()
            .unwrap_or_else(|_| panic!("USER {} must be numeric (uid[:gid])", user.args));
        assert_ne!(id, 0, "USER {} must not be root", user.args);
    }
    // Nothing in the final stage runs a shell (there is none) or writes.
    assert!(
        stage.iter().all(|i| i.keyword != "RUN"),
        "the final stage has no shell to RUN with"
    );
    // The uid agrees with the Deployment's securityContext.
    let deployment = yaml("manifests/deployment.yaml");
    let run_as_user = &deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"];
    assert_eq!(
        run_as_user.as_u64().map(|uid| uid.to_string()),
        user.args.split(':').next().map(str::to_string),
        "manifests/deployment.yaml runAsUser and the Dockerfile USER differ"
    );
}

#[test]
fn dockerfile_entrypoint_is_the_cargo_binary_and_cmd_a_real_subcommand() {
    let instructions = dockerfile();
    let stage = final_stage(&instructions);
    let exec_form = |keyword: &str| -> Vec<String> {
        let instruction = stage
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
            .unwrap_or_else(|| panic!("the final stage sets {keyword}"));
        serde_json::from_str(&instruction.args)
            .unwrap_or_else(|err| panic!("{keyword} must be the JSON exec form: {err}"))
    };
    let entrypoint = exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, vec![format!("/{}", cargo_bin_name())]);
    let copied_binary = stage
        .iter()
        .any(|i| i.keyword == "COPY" && i.args.ends_with(&format!(" {}", entrypoint[0])));
    assert!(copied_binary, "the final stage copies {}", entrypoint[0]);
    let cmd = exec_form("CMD");
    let mut help = cmd.clone();
    help.push("--help".to_string());
    let help: Vec<&str> = help.iter().map(String::as_str).collect();
    let output = palisade(&help);
    assert!(
        output.status.success(),
        "CMD {cmd:?} is not a palisade command: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn dockerfile_builds_a_static_locked_release_binary() {
    let instructions = dockerfile();
    let build = instructions
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .expect("a RUN cargo build");
    for flag in [
        "--locked",
        "--release",
        "--target x86_64-unknown-linux-musl",
        &format!("--bin {}", cargo_bin_name()),
    ] {
        assert!(build.args.contains(flag), "cargo build lacks {flag}");
    }
}

/// Paths the builder stage copies from the build context.
fn copied_sources(instructions: &[Instruction]) -> Vec<String> {
    instructions
        .iter()
        .filter(|i| i.keyword == "COPY" && !i.args.starts_with("--from"))
        .flat_map(|i| {
            let mut parts: Vec<&str> = i.args.split_whitespace().collect();
            parts.pop(); // the destination
            parts.into_iter().map(str::to_string).collect::<Vec<_>>()
        })
        .collect()
}

fn dockerignore_patterns() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn dockerignore_keeps_target_out_and_what_the_build_copies_in() {
    let patterns = dockerignore_patterns();
    for excluded in ["target", ".git", "fuzz"] {
        assert!(
            patterns.iter().any(|p| p == excluded),
            ".dockerignore must exclude {excluded}/"
        );
    }
    let instructions = dockerfile();
    let copied = copied_sources(&instructions);
    for needed in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        assert!(
            copied.iter().any(|c| c == needed),
            "the build copies {needed}"
        );
    }
    for source in &copied {
        assert!(root().join(source).exists(), "COPY {source}: no such path");
        assert!(
            !patterns.iter().any(|p| p == source),
            "COPY {source} but .dockerignore excludes it"
        );
    }
}

/// Cargo must load the manifest from exactly what the image build copies
/// (Cargo.toml names its benches, so their files must be there).
#[test]
fn the_copied_build_context_is_a_complete_cargo_package() {
    let context = tempfile::tempdir().expect("temp dir");
    for source in copied_sources(&dockerfile()) {
        copy_recursively(&root().join(&source), &context.path().join(&source));
    }
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(context.path())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo cannot load the image's build context: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy_recursively(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_recursively(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::copy(from, to).unwrap_or_else(|err| panic!("{}: {err}", from.display()));
    }
}

// --------------------------------------------------------------- image name

/// Every `docker build -t IMAGE .` written in a file.
fn documented_build_tags(path: &str) -> Vec<String> {
    read(path)
        .lines()
        .filter_map(|line| {
            let rest = line.split("docker build -t ").nth(1)?;
            let (image, context) = rest.split_once(' ')?;
            assert_eq!(
                context.trim(),
                ".",
                "{path}: build from the repository root"
            );
            Some(image.to_string())
        })
        .collect()
}

#[test]
fn image_name_is_the_same_in_docs_dockerfile_manifests_and_chart() {
    let cargo_version = read("Cargo.toml")
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix("version")?.trim().strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_string())
        })
        .expect("Cargo.toml has a version");
    let expected = format!("{IMAGE_REPOSITORY}:{cargo_version}");
    for path in [
        "Dockerfile",
        "docs/getting-started.md",
        "docs/operations.md",
    ] {
        let tags = documented_build_tags(path);
        assert!(!tags.is_empty(), "{path} documents the build command");
        for tag in tags {
            assert_eq!(tag, expected, "{path}");
        }
    }
    let deployment = yaml("manifests/deployment.yaml");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers[0]["image"], Value::from(expected.clone()));

    // The chart, when present: repository from values.yaml, tag from
    // values.yaml or else the chart's appVersion.
    if root().join("helm/palisade/values.yaml").exists() {
        let values = yaml("helm/palisade/values.yaml");
        let chart = yaml("helm/palisade/Chart.yaml");
        let tag = match values["image"]["tag"].as_str() {
            Some("") | None => chart["appVersion"].as_str().expect("appVersion"),
            Some(tag) => tag,
        };
        let repository = values["image"]["repository"]
            .as_str()
            .expect("image.repository");
        assert_eq!(format!("{repository}:{tag}"), expected, "helm/palisade");
    }
}

// ------------------------------------------------------------ GitHub Action

fn action() -> Value {
    yaml("action.yml")
}

/// Names of `inputs.NAME` referenced in `${{ … }}` expressions of a text.
fn referenced(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expression in text.split("${{").skip(1) {
        let expression = expression.split("}}").next().unwrap_or_default();
        for word in expression.split_whitespace() {
            if let Some(name) = word.strip_prefix(prefix) {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn steps(action: &Value) -> &Vec<Value> {
    action["runs"]["steps"].as_array().expect("runs.steps")
}

#[test]
fn action_inputs_are_declared_and_used() {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let declared: BTreeSet<String> = action["inputs"]
        .as_object()
        .expect("inputs")
        .keys()
        .cloned()
        .collect();
    let used = referenced(&read("action.yml"), "inputs.");
    assert_eq!(declared, used, "declared inputs and inputs used differ");
    for input in ["paths", "fail-on", "output", "sarif-file", "version"] {
        assert!(declared.contains(input), "input {input}");
    }
    assert_eq!(action["inputs"]["version"]["default"], "latest");
    for (name, input) in action["inputs"].as_object().unwrap() {
        assert!(
            input["description"].is_string(),
            "input {name} has a description"
        );
    }
    // Inputs reach scripts only through env: never pasted into the script.
    for step in steps(&action) {
        let script = step["run"].as_str().unwrap_or_default();
        assert!(
            !script.contains("${{"),
            "step {} interpolates into its script",
            step["name"]
        );
        assert_eq!(step["shell"], "bash", "composite run steps need a shell");
    }
    // Every output comes from a step that exists.
    let ids: BTreeSet<&str> = steps(&action)
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for (name, output) in action["outputs"].as_object().expect("outputs") {
        let value = output["value"].as_str().expect("output value");
        for reference in referenced(value, "steps.") {
            let step = reference.split('.').next().unwrap();
            assert!(
                ids.contains(step),
                "output {name} reads unknown step {step}"
            );
        }
    }
}

#[test]
fn action_passes_only_flags_that_palisade_scan_has() {
    let action = action();
    let help = palisade(&["scan", "--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let mut passed = BTreeSet::new();
    for step in steps(&action) {
        let script = step["run"]
            .as_str()
            .unwrap_or_default()
            .replace("\\\n", " ");
        for line in script.lines().filter(|l| l.contains("scan ")) {
            let invocation = line.split(" scan ").nth(1).unwrap_or_default();
            for word in invocation.split_whitespace() {
                let word = word.trim_matches(|c| c == '"' || c == '(' || c == ')');
                if word.starts_with("--") && word.len() > 2 {
                    passed.insert(word.to_string());
                }
            }
        }
        // Options collected in an array for later: `options+=(--policy …)`.
        for line in script.lines().filter(|l| l.contains("options+=(")) {
            for word in line.split_whitespace() {
                let word = word.trim_start_matches("options+=(");
                if word.starts_with("--") {
                    passed.insert(word.to_string());
                }
            }
        }
    }
    for flag in ["--output", "--fail-on", "--policy"] {
        assert!(passed.contains(flag), "the action passes {flag}");
    }
    for flag in &passed {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "the action passes {flag}, which `palisade scan` does not have"
        );
    }
}

/// A release as the action expects it, served from a directory:
/// `<base>/download/v<version>/` and `<base>/latest/download/`, each with
/// `palisade-<target>.tar.gz` and `sha256sums.txt`. The archived `palisade`
/// is a small script that runs the binary under test (which is too large, in
/// a debug build, to archive in every test).
struct LocalRelease {
    dir: tempfile::TempDir,
}

fn runner_target() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("ARM64", "aarch64-unknown-linux-musl"),
        _ => ("X64", "x86_64-unknown-linux-musl"),
    }
}

impl LocalRelease {
    fn new(corrupt_checksum: bool) -> LocalRelease {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, target) = runner_target();
        let asset = format!("palisade-{target}.tar.gz");
        let launcher = format!(
            "#!/bin/sh\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_palisade")
        );
        for release in ["download/v0.1.0", "latest/download"] {
            let release = dir.path().join(release);
            fs::create_dir_all(&release).unwrap();
            fs::write(release.join("palisade"), &launcher).unwrap();
            run_ok(
                Command::new("tar")
                    .args(["-czf", &asset, "palisade"])
                    .current_dir(&release),
            );
            fs::remove_file(release.join("palisade")).unwrap();
            let sums = run_ok(Command::new("sha256sum").arg(&asset).current_dir(&release));
            let mut sums = String::from_utf8(sums.stdout).unwrap();
            if corrupt_checksum {
                sums = format!("{}{}", "0".repeat(64), &sums[64..]);
            }
            fs::write(release.join("sha256sums.txt"), sums).unwrap();
        }
        LocalRelease { dir }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The result of running the action's steps like a runner would.
struct ActionRun {
    /// Exit status of the step that failed, or 0.
    status: i32,
    failed_step: Option<String>,
    outputs: BTreeMap<String, String>,
    log: String,
}

/// Runs the composite action's steps with bash, evaluating the few
/// expressions it uses (`inputs.*`, `runner.os`, `runner.arch`,
/// `steps.*.outputs.*`), in `workdir`. Stops at the first failing step, as
/// a runner does.
fn run_action(inputs: &[(&str, &str)], workdir: &Path) -> ActionRun {
    let action = action();
    let (arch, _) = runner_target();
    let runner_temp = tempfile::tempdir().expect("temp dir");
    let mut step_outputs: BTreeMap<String, String> = BTreeMap::new();
    let context = |expression: &str, step_outputs: &BTreeMap<String, String>| -> String {
        let expression = expression.trim();
        if let Some(name) = expression.strip_prefix("inputs.") {
            let given = inputs.iter().find(|(key, _)| *key == name).map(|(_, v)| *v);
            let default = action["inputs"][name]["default"].as_str();
            return given.or(default).unwrap_or_default().to_string();
        }
        if let Some(path) = expression.strip_prefix("steps.") {
            return step_outputs.get(path).cloned().unwrap_or_default();
        }
        match expression {
            "runner.os" => "Linux".to_string(),
            "runner.arch" => arch.to_string(),
            other => panic!("the harness does not know the expression {other}"),
        }
    };
    let evaluate = |text: &str, step_outputs: &BTreeMap<String, String>| -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed expression") + start;
            out.push_str(&context(&rest[start + 3..end], step_outputs));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    };
    let mut log = String::new();
    let mut result = None;
    for (index, step) in steps(&action).iter().enumerate() {
        let id = step["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or(format!("step{index}"));
        let output_file = runner_temp.path().join(format!("output-{index}"));
        fs::write(&output_file, "").unwrap();
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(step["run"].as_str().expect("a run step"))
            .current_dir(workdir)
            .env("RUNNER_TEMP", runner_temp.path())
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_PATH", runner_temp.path().join("path"))
            .env("NO_COLOR", "1");
        if let Some(env) = step["env"].as_object() {
            for (key, value) in env {
                command.env(
                    key,
                    evaluate(value.as_str().unwrap_or_default(), &step_outputs),
                );
            }
        }
        let output = command.output().expect("bash runs");
        log.push_str(&String::from_utf8_lossy(&output.stdout));
        log.push_str(&String::from_utf8_lossy(&output.stderr));
        for line in fs::read_to_string(&output_file).unwrap().lines() {
            let (key, value) = line.split_once('=').expect("name=value outputs");
            step_outputs.insert(format!("{id}.outputs.{key}"), value.to_string());
        }
        if !output.status.success() {
            result = Some((output.status.code().unwrap_or(-1), id));
            break;
        }
    }
    let mut outputs = BTreeMap::new();
    for (name, output) in action["outputs"].as_object().unwrap() {
        let value = evaluate(output["value"].as_str().unwrap(), &step_outputs);
        outputs.insert(name.clone(), value);
    }
    let (status, failed_step) = match result {
        Some((status, step)) => (status, Some(step)),
        None => (0, None),
    };
    ActionRun {
        status,
        failed_step,
        outputs,
        log,
    }
}

#[test]
fn action_installs_the_release_and_fails_on_findings_with_sarif_written() {
    let release = LocalRelease::new(false);
    let url = release.url();
    let sarif = tempfile::tempdir().unwrap();
    let sarif_file = sarif.path().join("out/palisade.sarif");
    let run = run_action(
        &[
            (
                "paths",
                "tests/fixtures/scan/privileged.yaml tests/fixtures/scan/clean.yaml",
            ),
            ("fail-on", "high"),
            ("sarif-file", sarif_file.to_str().unwrap()),
            ("download-url", &url),
            ("version", "0.1.0"),
        ],
        root(),
    );
    assert_eq!(run.status, 1, "{}", run.log);
    assert_eq!(run.failed_step.as_deref(), Some("scan"), "{}", run.log);
    assert_eq!(run.outputs["exit-code"], "1");
    let report = palisade(&[
        "scan",
        "--output",
        "json",
        "--fail-on",
        "none",
        "tests/fixtures/scan/privileged.yaml",
        "tests/fixtures/scan/clean.yaml",
    ]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        run.outputs["findings"],
        report["summary"]["findings"].to_string(),
        "the findings output is summary.findings"
    );
    assert_eq!(run.outputs["sarif-file"], sarif_file.to_str().unwrap());
    let sarif: Value = serde_json::from_str(&fs::read_to_string(&sarif_file).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        run.log.contains("privileged-container"),
        "the table is in the log"
    );
}

#[test]
fn action_passes_with_fail_on_none_from_the_latest_release() {
    let release = LocalRelease::new(false);
    let url = release.url();
    let run = run_action(
        &[
            ("paths", "tests/fixtures/scan/privileged.yaml"),
            ("fail-on", "none"),
            ("output", "junit"),
            ("download-url", &url),
        ],
        root(),
    );
    assert_eq!(run.status, 0, "{}", run.log);
    assert_eq!(run.outputs["exit-code"], "0");
    assert_ne!(run.outputs["findings"], "0");
    assert_eq!(run.outputs["sarif-file"], "", "no SARIF unless asked");
    assert!(run.log.contains("<testsuites"), "junit output in the log");
}

#[test]
fn action_refuses_a_binary_whose_checksum_does_not_match() {
    let release = LocalRelease::new(true);
    let url = release.url();
    let run = run_action(&[("download-url", &url)], root());
    assert_eq!(run.failed_step.as_deref(), Some("install"), "{}", run.log);
    assert!(run.log.contains("checksum mismatch"), "{}", run.log);
    assert_eq!(run.outputs["exit-code"], "", "the scan never ran");
}

#[test]
fn action_reports_input_errors_as_exit_code_2() {
    let release = LocalRelease::new(false);
    let url = release.url();
    let run = run_action(
        &[
            ("paths", "tests/fixtures/scan/invalid.yaml"),
            ("download-url", &url),
        ],
        root(),
    );
    assert_eq!(run.status, 2, "{}", run.log);
    assert_eq!(run.outputs["exit-code"], "2");
    assert!(run.log.contains("invalid YAML"), "{}", run.log);
}

// --------------------------------------------------------------- pre-commit

#[test]
fn pre_commit_hook_runs_palisade_scan_serially() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hook = hooks
        .as_array()
        .expect("a list of hooks")
        .iter()
        .find(|hook| hook["id"] == "palisade-scan")
        .expect("the palisade-scan hook");
    assert_eq!(hook["entry"], format!("{} scan", cargo_bin_name()).as_str());
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["require_serial"], true);
    let files = hook["files"].as_str().expect("files pattern");
    assert!(files.contains("ya?ml") && files.contains("json"), "{files}");
}

// ---------------------------------------------------------- generated docs

fn refreshed(page: &str) -> String {
    let mut args = vec!["docs", "refresh", page];
    if root().join("helm/palisade/values.schema.json").exists() {
        args.extend(["--chart", "helm/palisade"]);
    }
    let output = palisade(&args);
    assert!(
        output.status.success(),
        "palisade docs refresh {page}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn docs_operations_md_generated_sections_are_up_to_date() {
    let committed = read("docs/operations.md");
    assert!(
        committed.contains("<!-- BEGIN GENERATED: operator flags -->"),
        "docs/operations.md has the generated flags table"
    );
    if root().join("helm/palisade/values.schema.json").exists() {
        assert!(
            committed.contains("<!-- BEGIN GENERATED: helm values -->"),
            "docs/operations.md has the generated Helm values table"
        );
    }
    assert!(
        committed == refreshed("docs/operations.md"),
        "docs/operations.md is stale: run scripts/gen-docs.sh"
    );
}

#[test]
fn docs_refresh_names_the_file_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    fs::write(&page, "<!-- BEGIN GENERATED: operator flags -->\nno end\n").unwrap();
    let output = palisade(&["docs", "refresh", page.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("error: {}:", page.display())) && stderr.contains("line 1"),
        "{stderr}"
    );
    let missing: PathBuf = dir.path().join("missing.md");
    let output = palisade(&["docs", "refresh", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}

// ---------------------------------------------------------------- time

/// docs/architecture.md says jiff is the only time library, in the whole
/// dependency tree.
#[test]
fn jiff_is_the_only_time_library() {
    let lock = read("Cargo.lock");
    let packages: BTreeSet<&str> = lock
        .lines()
        .filter_map(|line| line.strip_prefix("name = "))
        .map(|name| name.trim_matches('"'))
        .collect();
    assert!(packages.contains("jiff"));
    for other in ["chrono", "time", "chrono-tz", "humantime"] {
        assert!(!packages.contains(other), "Cargo.lock has {other}");
    }
    assert!(read("docs/architecture.md").contains("`jiff` is the only time library"));
}

//! YAML as Kubernetes reads it, proved against the real API server: each
//! document goes through `kubectl create --dry-run=server` (kubectl's YAML
//! decoding, then the server's typed decoding and defaulting) and through
//! Palisade's loader. Where kubectl and the server accept a document,
//! Palisade must read the same values; where they refuse it, Palisade must
//! report an input error.

mod common;

use std::fs;

use palisade::loader::Loader;
use palisade::model::Resource;
use serde_json::Value;

/// A Pod document with `spec` as given (indented two spaces).
fn pod(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{spec}"
    )
}

/// What the API server makes of `text`: the object, or `None` if refused.
fn server_view(dir: &std::path::Path, name: &str, text: &str) -> Option<Value> {
    let file = dir.join(format!("{name}.yaml"));
    fs::write(&file, text).unwrap();
    let output = common::kubectl_output(&[
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        file.to_str().unwrap(),
    ]);
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("kubectl prints JSON"))
}

/// What Palisade's loader makes of `text`: the Pod as JSON, or `None` if it
/// reports an input error.
fn palisade_view(text: &str) -> Option<Value> {
    let loaded = Loader::new().load_text("case.yaml", text);
    if !loaded.errors.is_empty() {
        return None;
    }
    match &loaded.objects[..] {
        [object] => match &object.resource {
            Resource::Pod(pod) => Some(serde_json::to_value(pod).unwrap()),
            other => panic!("expected a Pod, got {other:?}"),
        },
        objects => panic!("expected one object, got {}", objects.len()),
    }
}

struct Case {
    name: &'static str,
    spec: &'static str,
    /// Fields compared when both accept the document.
    pointers: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "yaml11-booleans",
        spec: "  containers:\n  - name: a\n    image: nginx\n    securityContext:\n      privileged: yes\n      allowPrivilegeEscalation: on\n      readOnlyRootFilesystem: N\n      runAsNonRoot: Off\n",
        pointers: &[
            "/spec/containers/0/securityContext/privileged",
            "/spec/containers/0/securityContext/allowPrivilegeEscalation",
            "/spec/containers/0/securityContext/readOnlyRootFilesystem",
            "/spec/containers/0/securityContext/runAsNonRoot",
        ],
    },
    Case {
        name: "go-integers",
        spec: "  securityContext:\n    runAsUser: 0x3E8\n    runAsGroup: 1_000\n  containers:\n  - name: a\n    image: nginx\n    volumeMounts: [{name: s, mountPath: /s}]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0644}\n",
        pointers: &[
            "/spec/securityContext/runAsUser",
            "/spec/securityContext/runAsGroup",
            "/spec/volumes/0/secret/defaultMode",
        ],
    },
    Case {
        name: "yes-in-a-string-field",
        spec: "  containers:\n  - name: a\n    image: nginx\n    env:\n    - {name: DEBUG, value: yes}\n",
        pointers: &[],
    },
    Case {
        name: "quoted-yes",
        spec: "  containers:\n  - name: a\n    image: nginx\n    env:\n    - {name: DEBUG, value: 'yes'}\n",
        pointers: &["/spec/containers/0/env/0/value"],
    },
    Case {
        name: "merge-key-first",
        spec: "  containers:\n  - &base\n    name: a\n    image: nginx\n    securityContext: {privileged: true}\n  - <<: *base\n    name: b\n",
        pointers: &[
            "/spec/containers/1/name",
            "/spec/containers/1/image",
            "/spec/containers/1/securityContext/privileged",
        ],
    },
    Case {
        name: "merge-key-after-an-explicit-key",
        spec: "  containers:\n  - &base\n    name: a\n    image: nginx\n  - image: busybox\n    <<: *base\n    name: b\n",
        pointers: &["/spec/containers/1/name", "/spec/containers/1/image"],
    },
    Case {
        name: "duplicate-key",
        spec: "  containers:\n  - name: a\n    image: nginx\n    image: busybox\n",
        pointers: &["/spec/containers/0/image"],
    },
    Case {
        name: "merge-key-list",
        spec: "  containers:\n  - &one {name: a, image: nginx, securityContext: {privileged: true}}\n  - &two {name: c, image: busybox, securityContext: {privileged: false}, workingDir: /w}\n  - <<: [*one, *two]\n    name: b\n",
        pointers: &[
            "/spec/containers/2/image",
            "/spec/containers/2/securityContext/privileged",
            "/spec/containers/2/workingDir",
        ],
    },
];

#[test]
fn palisade_reads_yaml_as_the_api_server_does() {
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let text = pod(case.name, case.spec);
        let server = server_view(dir.path(), case.name, &text);
        let palisade = palisade_view(&text);
        match (&server, &palisade) {
            (Some(server), Some(palisade)) => {
                for pointer in case.pointers {
                    assert!(
                        server.pointer(pointer).is_some(),
                        "{}: {pointer}",
                        case.name
                    );
                    assert_eq!(
                        palisade.pointer(pointer),
                        server.pointer(pointer),
                        "{}: {pointer}",
                        case.name
                    );
                }
            }
            (None, None) => assert!(case.pointers.is_empty(), "{}", case.name),
            _ => panic!(
                "{}: the server {} it, Palisade {} it",
                case.name,
                if server.is_some() {
                    "accepts"
                } else {
                    "refuses"
                },
                if palisade.is_some() {
                    "accepts"
                } else {
                    "refuses"
                },
            ),
        }
    }
}

#[test]
fn plain_y_and_n_are_booleans_where_a_name_belongs() {
    let dir = tempfile::tempdir().unwrap();
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\n  namespace: default\nspec:\n  containers: [{name: a, image: nginx}]\n";
    assert!(server_view(dir.path(), "y", text).is_none());
    assert!(palisade_view(text).is_none());
    let quoted = text.replace("name: y\n", "name: 'y'\n");
    assert!(server_view(dir.path(), "quoted-y", &quoted).is_some());
    assert!(palisade_view(&quoted).is_some());
}

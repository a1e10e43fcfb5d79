#!/usr/bin/env python3
"""Generates a corpus of Kubernetes manifests for scale benchmarks.

    bench/gen.py N OUTDIR [--seed S] [--as-dump]
    bench/gen.py N FILE --one-file [--seed S] [--as-dump]

Writes exactly N objects (YAML documents) into OUTDIR as multi-document YAML
files, one file per namespace plus one for cluster-scoped RBAC, the way
manifests are laid out in a typical GitOps repository; with --one-file, the
same objects in the same order go into the single file FILE instead. The mix covers every
kind Palisade scans (Deployments, StatefulSets, DaemonSets, CronJobs, Jobs,
Pods, ServiceAccounts, Roles, ClusterRoles, RoleBindings, ClusterRoleBindings,
Namespaces, NetworkPolicies) and kinds it skips (Services, ConfigMaps).
Workloads are a mix of hardened, ordinary and sloppy specs, so the scanner has
both clean objects and plenty of findings to report.

The output depends only on N and the seed: the same arguments give the same
bytes, so timings from different runs and tools compare like for like.
Only the standard library is used.
"""

import argparse
import json
import os
import random
import re
import shutil

# Relative weights of each kind among the namespaced objects.
KIND_WEIGHTS = [
    ("Deployment", 24),
    ("StatefulSet", 5),
    ("DaemonSet", 3),
    ("CronJob", 5),
    ("Job", 3),
    ("Pod", 4),
    ("Service", 14),
    ("ConfigMap", 9),
    ("ServiceAccount", 11),
    ("Role", 6),
    ("RoleBinding", 7),
    ("NetworkPolicy", 4),
]

# Objects per namespace file, on average (the Namespace object included).
OBJECTS_PER_NAMESPACE = 40
# Share of all objects that are cluster-scoped ClusterRoles and bindings.
CLUSTER_RBAC_SHARE = 0.04

TEAMS = ["payments", "search", "checkout", "identity", "ledger", "media",
         "catalog", "billing", "notify", "ingest", "reports", "gateway"]
APPS = ["api", "web", "worker", "cache", "db", "queue", "auth", "proxy",
        "indexer", "scheduler", "exporter", "sync", "mailer", "uploader"]
IMAGES = ["nginx", "redis", "postgres", "python", "node", "golang", "envoyproxy/envoy",
          "bitnami/kafka", "prom/node-exporter", "busybox", "alpine", "grafana/agent"]
REGISTRIES = ["", "docker.io/", "ghcr.io/acme/", "registry.example.com/platform/"]

PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./:@-]*$")
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value):
    """A YAML scalar: plain where unambiguous, JSON-quoted otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if PLAIN.match(value) and value.lower() not in YAML_WORDS and ": " not in value:
        return value
    return json.dumps(value)


def emit(value, indent=0):
    """Block-style YAML lines for dicts, lists and scalars, as kubectl writes it."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{scalar(key)}:")
                lines.extend(emit(item, indent + 2))
            elif isinstance(item, (dict, list)):
                lines.append(f"{pad}{scalar(key)}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{scalar(key)}: {scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = emit(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {scalar(item)}")
    return lines


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, items):
        return self.rng.choice(items)

    # -- containers ---------------------------------------------------------

    def image(self, profile):
        name = self.pick(REGISTRIES) + self.pick(IMAGES)
        if profile == "hardened":
            digest = "%064x" % self.rng.getrandbits(256)
            return f"{name}:1.{self.rng.randint(0, 30)}.{self.rng.randint(0, 9)}@sha256:{digest}"
        if profile == "sloppy" and self.chance(0.5):
            return self.pick([name, name + ":latest"])
        return f"{name}:{self.rng.randint(1, 9)}.{self.rng.randint(0, 30)}"

    def resources(self, profile):
        if profile == "sloppy" and self.chance(0.7):
            return None
        cpu = self.pick(["50m", "100m", "250m", "500m", "1"])
        mem = self.pick(["64Mi", "128Mi", "256Mi", "512Mi", "1Gi"])
        res = {"requests": {"cpu": cpu, "memory": mem}}
        if profile == "hardened" or self.chance(0.6):
            res["limits"] = {"cpu": self.pick(["500m", "1", "2"]), "memory": mem}
        return res

    def security_context(self, profile):
        if profile == "hardened":
            return {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }
        if profile == "ordinary":
            if self.chance(0.4):
                return None
            ctx = {"allowPrivilegeEscalation": False}
            if self.chance(0.5):
                ctx["readOnlyRootFilesystem"] = True
            if self.chance(0.3):
                ctx["capabilities"] = {"drop": ["NET_RAW"]}
            return ctx
        ctx = {}
        if self.chance(0.3):
            ctx["privileged"] = True
        if self.chance(0.3):
            ctx["runAsUser"] = 0
        if self.chance(0.3):
            ctx["capabilities"] = {"add": [self.pick(["SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE"])]}
        if self.chance(0.3):
            ctx["allowPrivilegeEscalation"] = True
        return ctx or None

    def env(self, profile, app):
        env = [
            {"name": "APP_NAME", "value": app},
            {"name": "LOG_LEVEL", "value": self.pick(["info", "debug", "warn"])},
        ]
        if self.chance(0.4):
            env.append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{app}-db", "key": "password"}}})
        if profile == "sloppy" and self.chance(0.4):
            env.append({"name": "API_TOKEN", "value": "%032x" % self.rng.getrandbits(128)})
        return env

    def probe(self, port):
        if self.chance(0.5):
            return {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10}
        return {"tcpSocket": {"port": port}}

    def container(self, profile, name, app, port):
        container = {
            "name": name,
            "image": self.image(profile),
        }
        if profile != "sloppy" or self.chance(0.5):
            container["imagePullPolicy"] = self.pick(["IfNotPresent", "Always"])
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        container["env"] = self.env(profile, app)
        resources = self.resources(profile)
        if resources:
            container["resources"] = resources
        if profile == "hardened" or (profile == "ordinary" and self.chance(0.7)):
            container["livenessProbe"] = self.probe(port)
            container["readinessProbe"] = self.probe(port)
        ctx = self.security_context(profile)
        if ctx:
            container["securityContext"] = ctx
        mounts = [{"name": "config", "mountPath": "/etc/" + app, "readOnly": True}]
        if profile == "hardened":
            mounts.append({"name": "tmp", "mountPath": "/tmp"})
        container["volumeMounts"] = mounts
        return container

    def pod_spec(self, profile, app, namespace, restart=None):
        port = self.pick([8080, 8443, 9090, 3000, 5432, 6379])
        containers = [self.container(profile, app, app, port)]
        if self.chance(0.35):
            containers.append(self.container(profile, "metrics", app, 9100))
        spec = {}
        if profile == "hardened":
            spec["serviceAccountName"] = app
            spec["automountServiceAccountToken"] = False
            spec["securityContext"] = {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
        elif profile == "ordinary":
            if self.chance(0.6):
                spec["serviceAccountName"] = app
            if self.chance(0.5):
                spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        else:
            if self.chance(0.2):
                spec["hostNetwork"] = True
            if self.chance(0.15):
                spec["hostPID"] = True
            if self.chance(0.1):
                spec["serviceAccount"] = "default"
        if restart:
            spec["restartPolicy"] = restart
        if self.chance(0.2):
            spec["initContainers"] = [{
                "name": "migrate",
                "image": self.image(profile),
                "command": ["/bin/migrate", "--up"],
                "securityContext": self.security_context(profile) or {},
            }]
        spec["containers"] = containers
        volumes = [{"name": "config", "configMap": {"name": f"{app}-config"}}]
        if profile == "hardened":
            volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
        if profile == "sloppy" and self.chance(0.25):
            path = self.pick(["/var/run/docker.sock", "/var/log", "/", "/run/containerd/containerd.sock"])
            volumes.append({"name": "host", "hostPath": {"path": path}})
            containers[0]["volumeMounts"].append({"name": "host", "mountPath": "/host"})
        spec["volumes"] = volumes
        return spec

    # -- objects ------------------------------------------------------------

    def profile(self):
        roll = self.rng.random()
        return "hardened" if roll < 0.35 else "ordinary" if roll < 0.8 else "sloppy"

    @staticmethod
    def meta(name, namespace, app=None, annotations=None):
        meta = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        if app:
            meta["labels"] = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": namespace or name}
        if annotations:
            meta["annotations"] = annotations
        return meta

    def template(self, profile, app, namespace, restart=None):
        return {
            "metadata": {"labels": {"app.kubernetes.io/name": app}},
            "spec": self.pod_spec(profile, app, namespace, restart),
        }

    def workload(self, kind, name, namespace):
        profile = self.profile()
        annotations = None
        if profile == "sloppy" and self.chance(0.2):
            annotations = {"palisade.dev/ignore": "privileged-container",
                           "palisade.dev/ignore-reason": "node agent, reviewed"}
        meta = self.meta(name, namespace, name, annotations)
        selector = {"matchLabels": {"app.kubernetes.io/name": name}}
        if kind == "Deployment":
            spec = {"replicas": self.pick([1, 2, 3, 5]), "selector": selector,
                    "template": self.template(profile, name, namespace)}
            return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
        if kind == "StatefulSet":
            spec = {"serviceName": name, "replicas": self.pick([1, 3]), "selector": selector,
                    "template": self.template(profile, name, namespace),
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]}
            return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
        if kind == "DaemonSet":
            spec = {"selector": selector, "template": self.template(profile, name, namespace)}
            return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
        if kind == "Job":
            spec = {"backoffLimit": 3, "template": self.template(profile, name, namespace, "Never")}
            return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": spec}
        if kind == "CronJob":
            spec = {"schedule": f"{self.rng.randint(0, 59)} {self.rng.randint(0, 23)} * * *",
                    "concurrencyPolicy": "Forbid",
                    "jobTemplate": {"spec": {"template": self.template(profile, name, namespace, "OnFailure")}}}
            return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": spec}
        # A bare Pod.
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": self.pod_spec(profile, name, namespace)}

    def service(self, name, namespace):
        return {"apiVersion": "v1", "kind": "Service", "metadata": self.meta(name, namespace, name),
                "spec": {"selector": {"app.kubernetes.io/name": name},
                         "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}

    def config_map(self, name, namespace):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.meta(name + "-config", namespace, name),
                "data": {"LOG_FORMAT": "json", "config.yaml": "listen: :8080\nupstream: http://backend\n"}}

    def service_account(self, name, namespace):
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": self.meta(name, namespace, name)}
        if self.chance(0.5):
            sa["automountServiceAccountToken"] = False
        return sa

    def rules(self, broad):
        if broad:
            return self.pick([
                [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
                [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
                [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
                 {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
                [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
                  "verbs": ["create", "update"]}],
                [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
            ])
        return [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]

    def role(self, name, namespace):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": self.meta(name, namespace), "rules": self.rules(self.chance(0.3))}

    def role_binding(self, name, namespace, role, account):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": self.meta(name, namespace),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}

    def network_policy(self, name, namespace, app):
        if self.chance(0.4):
            return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": self.meta(name, namespace),
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": self.meta(name, namespace),
                "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
                         "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                                      "ports": [{"protocol": "TCP", "port": 8080}]}]}}

    def namespace(self, name):
        labels = {"team": name.split("-")[0]}
        if self.chance(0.6):
            labels["pod-security.kubernetes.io/enforce"] = self.pick(["restricted", "baseline"])
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}

    def namespaced_objects(self, namespace, count):
        """`count` objects of one namespace, its Namespace object first."""
        objects = [self.namespace(namespace)]
        kinds = [k for k, _ in KIND_WEIGHTS]
        weights = [w for _, w in KIND_WEIGHTS]
        apps, roles, accounts = [], [], []
        for i in range(count - 1):
            kind = self.rng.choices(kinds, weights)[0]
            name = f"{self.pick(APPS)}-{i:03d}"
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"):
                objects.append(self.workload(kind, name, namespace))
                apps.append(name)
            elif kind == "Service":
                objects.append(self.service(name, namespace))
            elif kind == "ConfigMap":
                objects.append(self.config_map(name, namespace))
            elif kind == "ServiceAccount":
                objects.append(self.service_account(name, namespace))
                accounts.append(name)
            elif kind == "Role":
                objects.append(self.role(name, namespace))
                roles.append(name)
            elif kind == "RoleBinding":
                role = self.pick(roles) if roles else "view"
                account = self.pick(accounts) if accounts else "default"
                objects.append(self.role_binding(name, namespace, role, account))
            else:
                objects.append(self.network_policy(name, namespace, self.pick(apps) if apps else name))
        return objects

    def cluster_rbac(self, count, namespaces):
        objects = []
        for i in range(count):
            name = f"platform-{self.pick(APPS)}-{i:03d}"
            if i % 2 == 0:
                objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                "metadata": {"name": name}, "rules": self.rules(self.chance(0.4))})
            else:
                role = self.pick(["view", "edit", "cluster-admin", objects[-1]["metadata"]["name"]])
                namespace = self.pick(namespaces)
                if i == 1:
                    # The classic mistake, made once: a custom role granted
                    # to everyone who can authenticate.
                    role = objects[-1]["metadata"]["name"]
                    subject = {"kind": "Group", "name": "system:authenticated",
                               "apiGroup": "rbac.authorization.k8s.io"}
                else:
                    subject = self.rng.choices([
                        {"kind": "ServiceAccount", "name": f"{self.pick(APPS)}-000", "namespace": namespace},
                        {"kind": "ServiceAccount", "name": "default", "namespace": namespace},
                        {"kind": "Group", "name": "oidc:platform-admins", "apiGroup": "rbac.authorization.k8s.io"},
                        {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"},
                    ], [55, 10, 20, 15])[0]
                objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                                "metadata": {"name": name},
                                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                            "name": role},
                                "subjects": [subject]})
        return objects


def fields_v1(value):
    """The field set a server-side apply records for `value` (lists whole)."""
    if isinstance(value, dict):
        return {f"f:{key}": fields_v1(item) for key, item in value.items()}
    return {}


def as_dumped(obj, index):
    """`obj` as `kubectl get -o yaml` shows an object applied with
    `kubectl apply`: server-set metadata, the last-applied-configuration
    annotation and the managedFields of the apply."""
    applied = json.dumps(obj, separators=(",", ":"), sort_keys=True)
    meta = dict(obj["metadata"])
    annotations = dict(meta.get("annotations", {}))
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = applied + "\n"
    meta["annotations"] = annotations
    meta["uid"] = f"00000000-0000-4000-8000-{index:012d}"
    meta["resourceVersion"] = str(1000 + index)
    meta["creationTimestamp"] = "2026-12-01T00:00:00Z"
    meta["managedFields"] = [{
        "apiVersion": obj["apiVersion"],
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}),
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "time": "2026-12-01T00:00:00Z",
    }]
    return {**obj, "metadata": meta}


def write_file(path, objects):
    with open(path, "w") as out:
        for obj in objects:
            out.write("---\n")
            out.write("\n".join(emit(obj)))
            out.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="number of objects to generate")
    parser.add_argument("outdir", help="directory to write (replaced if it exists), or the file with --one-file")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--one-file", action="store_true",
                        help="write every object into the one file OUTDIR")
    parser.add_argument("--as-dump", action="store_true",
                        help="write each object as `kubectl get -o yaml` shows it after "
                             "`kubectl apply`: uid, resourceVersion, creationTimestamp, "
                             "managedFields and the last-applied-configuration annotation")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("count must be at least 1")

    gen = Generator(args.seed)
    cluster_count = int(args.count * CLUSTER_RBAC_SHARE)
    namespaced = args.count - cluster_count
    namespace_count = max(1, round(namespaced / OBJECTS_PER_NAMESPACE))
    names = [f"{TEAMS[i % len(TEAMS)]}-{i // len(TEAMS):03d}" for i in range(namespace_count)]

    files = []
    for i, namespace in enumerate(names):
        # Spread the remainder so every namespace gets its share.
        count = namespaced // namespace_count + (1 if i < namespaced % namespace_count else 0)
        files.append((f"{namespace}.yaml", gen.namespaced_objects(namespace, count)))
    if cluster_count:
        files.append(("cluster-rbac.yaml", gen.cluster_rbac(cluster_count, names)))
    written = sum(len(objects) for _, objects in files)
    assert written == args.count, (written, args.count)
    if args.as_dump:
        index = iter(range(written))
        files = [(name, [as_dumped(obj, next(index)) for obj in objects]) for name, objects in files]

    if args.one_file:
        parent = os.path.dirname(args.outdir)
        if parent:
            os.makedirs(parent, exist_ok=True)
        write_file(args.outdir, [obj for _, objects in files for obj in objects])
        print(f"wrote {written} objects in 1 file to {args.outdir}")
        return
    if os.path.isdir(args.outdir):
        shutil.rmtree(args.outdir)
    os.makedirs(args.outdir)
    for name, objects in files:
        write_file(os.path.join(args.outdir, name), objects)
    print(f"wrote {written} objects in {len(files)} files to {args.outdir}")


if __name__ == "__main__":
    main()

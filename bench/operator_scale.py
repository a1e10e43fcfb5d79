#!/usr/bin/env python3
"""Scale benchmark of `palisade operator` against the real test cluster.

Driven by bench/operator-scale.sh, which builds the release binary and starts
and stops the cluster; this program fills the cluster and measures:

- how long the controller manager takes to create the ReplicaSets and Pods;
- the operator's time from start to every report written;
- its peak resident memory (VmHWM) and CPU time;
- API server requests by verb and resource while it runs (the API server's
  `apiserver_request_total`, before/after), and its own write counters;
- the report writes of an idle forced full resync (resourceVersion changes of
  every report; target 0);
- change-to-report latency: a Deployment is patched to add or remove a
  finding, and the time until its ScanReport shows it is measured.

Results go to stdout as a table and to a JSON file. Only the standard library
and PyYAML (for the kubeconfig) are needed; kubectl applies the objects.
"""

import argparse
import concurrent.futures
import http.client
import json
import math
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

GROUP = "palisade.dev"
VERSION = "v1alpha1"
NAMESPACE_PREFIX = "scale-"

# Kinds the operator lists and watches, as (group, resource) in the API
# server's metrics labels.
WATCHED = {
    ("", "pods"), ("apps", "replicasets"), ("apps", "deployments"),
    ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"),
    ("batch", "cronjobs"), ("", "replicationcontrollers"), ("", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
    ("networking.k8s.io", "networkpolicies"), ("", "namespaces"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    (GROUP, "scanpolicies"), (GROUP, "scanreports"), (GROUP, "clusterscanreports"),
}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Generated objects


def hardened_container(name, image):
    return {
        "name": name,
        "image": f"{image}@sha256:{'a' * 64}",
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 10001, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "200m", "memory": "128Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
    }


def ordinary_container(name, image, j):
    container = {"name": name, "image": f"{image}:1.{j % 20}",
                 "ports": [{"containerPort": 8080}]}
    if j % 2:
        container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    if j % 3:
        container["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000}
    return container


def sloppy_container(name, image, j):
    container = {"name": name, "image": f"{image}:latest",
                 "securityContext": {"privileged": j % 2 == 0, "runAsUser": 0}}
    if j % 3 == 0:
        container["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
        container["volumeMounts"] = [{"name": "sock", "mountPath": "/var/run/docker.sock"}]
    return container


IMAGES = ["nginx", "redis", "python", "node", "envoyproxy/envoy", "busybox", "alpine"]


def profile_of(j):
    """4 in 10 workloads hardened, 4 ordinary, 2 sloppy."""
    return ("hardened", "hardened", "hardened", "hardened", "ordinary", "ordinary",
            "ordinary", "ordinary", "sloppy", "sloppy")[j % 10]


def deployment(ns, j, accounts, replicas=1, paused=False):
    image = IMAGES[j % len(IMAGES)]
    profile = profile_of(j)
    if profile == "hardened":
        containers = [hardened_container("app", image)]
        if j % 3 == 0:
            containers.append(hardened_container("sidecar", "envoyproxy/envoy"))
    elif profile == "ordinary":
        containers = [ordinary_container("app", image, j)]
        if j % 3 == 0:
            containers.append(ordinary_container("sidecar", "busybox", j + 1))
    else:
        containers = [sloppy_container("app", image, j)]
    spec = {"containers": containers,
            "serviceAccountName": f"sa-{j % accounts}" if accounts and j % 4 else "default"}
    if profile == "hardened":
        spec["automountServiceAccountToken"] = False
        spec["securityContext"] = {"runAsNonRoot": True,
                                   "seccompProfile": {"type": "RuntimeDefault"}}
    if profile == "sloppy":
        spec["hostPID"] = j % 4 == 0
        if j % 3 == 0:
            spec["volumes"] = [{"name": "sock",
                                "hostPath": {"path": "/var/run/docker.sock"}}]
    name = f"wl-{j}"
    labels = {"app": name, "team": f"team-{j % 12}"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"replicas": replicas, "paused": paused,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


ROLE_RULES = [
    [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}],
    [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
     {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
      "verbs": ["create", "update"]}],
    [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]}],
]


def role(ns, j):
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": f"role-{j}", "namespace": ns},
            "rules": ROLE_RULES[j % len(ROLE_RULES)]}


def role_binding(ns, j, accounts):
    if accounts and j % 5 != 4:
        subject = {"kind": "ServiceAccount", "name": f"sa-{j % accounts}", "namespace": ns}
    elif j % 2:
        subject = {"kind": "User", "name": f"user-{j}@example.com",
                   "apiGroup": "rbac.authorization.k8s.io"}
    else:
        subject = {"kind": "Group", "name": f"team-{j % 12}",
                   "apiGroup": "rbac.authorization.k8s.io"}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"rb-{j}", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": f"role-{j}"},
            "subjects": [subject]}


def spread(total, parts, index):
    """How many of `total` objects go to part `index` of `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def namespace_name(i):
    return f"{NAMESPACE_PREFIX}{i:03d}"


def namespaces_of(args):
    return [namespace_name(i) for i in range(args.namespaces)]


def namespace_objects(args):
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": ns, "labels": {"bench": "operator-scale"}}}
            for ns in namespaces_of(args)]


def rbac_objects(args):
    """ServiceAccounts, Roles and RoleBindings, namespace by namespace."""
    for i, ns in enumerate(namespaces_of(args)):
        accounts = spread(args.service_accounts, args.namespaces, i)
        for j in range(accounts):
            yield {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": f"sa-{j}", "namespace": ns}}
        roles = spread(args.roles, args.namespaces, i)
        for j in range(roles):
            yield role(ns, j)
        for j in range(roles):
            yield role_binding(ns, j, accounts)


def workload_objects(args):
    for i, ns in enumerate(namespaces_of(args)):
        accounts = spread(args.service_accounts, args.namespaces, i)
        for j in range(spread(args.workloads, args.namespaces, i)):
            yield deployment(ns, j, accounts, args.replicas, args.no_controllers)


# --------------------------------------------------------------------------
# The API server


class ApiError(Exception):
    """An API server answer other than 2xx."""

    def __init__(self, method, path, code, body):
        super().__init__(f"{method} {path}: HTTP {code}: {body[:300]}")
        self.code = code


class Cluster:
    """Admin access to the API server, from the admin kubeconfig. Each
    thread keeps one TLS connection (a handshake per request would cost the
    fill more CPU than the request itself)."""

    def __init__(self, kubeconfig, kubectl):
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        with open(kubeconfig) as f:
            config = yaml.safe_load(f)
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        parsed = urllib.parse.urlsplit(self.server)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.token = config["users"][0]["user"]["token"]
        self.context = ssl.create_default_context()
        if "certificate-authority-data" in cluster:
            import base64
            self.context.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        else:
            self.context.load_verify_locations(cafile=cluster["certificate-authority"])
        self.config = config
        self.local = threading.local()

    def connection(self, timeout):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                               timeout=timeout)
            self.local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def drop_connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
        self.local.conn = None

    def request(self, path, method="GET", body=None, content_type=None, accept=None,
                timeout=60, attempts=5):
        """One request; connection errors, 429 and 5xx are retried (with
        backoff) up to `attempts` times, each attempt bounded by `timeout`."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                conn = self.connection(timeout)
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.drop_connection()
                if last:
                    raise ApiError(method, path, 0, f"connection: {e}") from e
                time.sleep(0.2 * 2 ** attempt)
                continue
            if 200 <= resp.status < 300:
                return payload
            if (resp.status == 429 or resp.status >= 500) and not last:
                time.sleep(0.2 * 2 ** attempt)
                continue
            raise ApiError(method, path, resp.status, payload.decode(errors="replace"))
        raise AssertionError("unreachable")

    def get_json(self, path, **kw):
        return json.loads(self.request(path, **kw))

    def count(self, path):
        """Objects in a list, without transferring them: limit=1 and the
        remaining count (which the API server gives only without selectors)."""
        sep = "&" if "?" in path else "?"
        body = self.get_json(f"{path}{sep}limit=1",
                             accept="application/json;as=PartialObjectMetadataList;"
                                    "g=meta.k8s.io;v=v1")
        items = len(body.get("items") or [])
        return items + int(body.get("metadata", {}).get("remainingItemCount") or 0)

    def metadata_list(self, path):
        """Every object's metadata (namespace, name, resourceVersion)."""
        out, cont = {}, None
        while True:
            sep = "&" if "?" in path else "?"
            page = f"{path}{sep}limit=2000" + (f"&continue={cont}" if cont else "")
            body = self.get_json(page, accept="application/json;as=PartialObjectMetadataList;"
                                               "g=meta.k8s.io;v=v1")
            for item in body.get("items") or []:
                m = item["metadata"]
                out[(m.get("namespace"), m["name"])] = m["resourceVersion"]
            cont = body.get("metadata", {}).get("continue")
            if not cont:
                return out

    def kubectl(self, *args, check=True, capture=True, timeout=300):
        """kubectl with the admin kubeconfig; a call that hangs is stopped
        after `timeout` seconds (and fails, or returns "" when not checked)."""
        try:
            result = subprocess.run(
                [self.kubectl_path, "--kubeconfig", self.kubeconfig,
                 "--request-timeout=60s", *args],
                capture_output=capture, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            if check:
                raise RuntimeError(f"kubectl {' '.join(args)}: no answer within {timeout}s")
            return ""
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def request_totals(self):
        """apiserver_request_total summed by (verb, group, resource)."""
        text = self.request("/metrics").decode()
        totals = {}
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, value = line[len("apiserver_request_total{"):].rsplit("} ", 1)
            labels = {}
            for part in labels_text.split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = (labels.get("verb", ""), labels.get("group", ""), resource)
            totals[key] = totals.get(key, 0) + float(value)
        return totals


def delta(after, before):
    return {k: int(v - before.get(k, 0)) for k, v in after.items() if v - before.get(k, 0) > 0}


def operator_requests(d):
    """The part of a request-count delta the operator can have made: any
    request on palisade.dev, and LIST/WATCH of the kinds it watches. (The
    controller manager's watches are long-lived and were opened before.)"""
    out = {}
    for (verb, group, resource), n in d.items():
        base = resource.split("/")[0]
        if group == GROUP or (verb in ("LIST", "WATCH") and (group, base) in WATCHED):
            out[f"{verb} {group + '/' if group else ''}{resource}"] = n
    return dict(sorted(out.items()))


# Verbs of apiserver_request_total that write (an update shows as PUT).
WRITE_VERBS = ("POST", "CREATE", "PUT", "UPDATE", "PATCH", "APPLY", "DELETE",
               "DELETECOLLECTION")


def other_writes(d):
    """Writes neither on palisade.dev nor of Events (which the operator
    writes too) in a request-count delta: during a scan, the controller
    manager's, as nothing else writes then."""
    out = {}
    for (verb, group, resource), n in d.items():
        if (verb in WRITE_VERBS and group != GROUP
                and not resource.startswith("events")):
            out[f"{verb} {group + '/' if group else ''}{resource}"] = n
    return dict(sorted(out.items()))


def by_verb(d):
    out = {}
    for key, n in d.items():
        verb = key.split(" ", 1)[0]
        out[verb] = out.get(verb, 0) + n
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------
# Phases


RESOURCES = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts",
             "Role": "roles", "RoleBinding": "rolebindings", "Deployment": "deployments"}


def object_path(obj):
    api = obj["apiVersion"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    ns = obj["metadata"].get("namespace")
    scope = f"/namespaces/{ns}" if ns else ""
    return f"{base}{scope}/{RESOURCES[obj['kind']]}/{obj['metadata']['name']}"


def apply_objects(cluster, objects, parallel, what):
    """Server-side applies every object (one PATCH each, `parallel` at a
    time, so a rerun on a kept cluster changes nothing). Returns (applied,
    failed, seconds); a failed object is logged and skipped."""
    work = queue.Queue(maxsize=parallel * 64)
    done = {"applied": 0, "failed": 0}
    lock = threading.Lock()

    def worker():
        while True:
            obj = work.get()
            if obj is None:
                return
            try:
                cluster.request(object_path(obj) + "?fieldManager=operator-scale&force=true",
                                method="PATCH", body=obj,
                                content_type="application/apply-patch+yaml", timeout=60)
                key = "applied"
            except ApiError as e:
                log(f"  not applied: {e}")
                key = "failed"
            with lock:
                done[key] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(parallel)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    last_log = t0
    for obj in objects:
        work.put(obj)
        now = time.monotonic()
        if now - last_log >= 15:
            log(f"  {what}: {done['applied']} applied in {now - t0:.0f}s "
                f"({done['applied'] / (now - t0):.0f}/s, load {os.getloadavg()[0]:.1f})")
            last_log = now
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    log(f"{what}: {done['applied']} applied in {seconds:.1f}s "
        f"({done['applied'] / max(seconds, 1e-9):.0f}/s)"
        + (f", {done['failed']} FAILED" if done["failed"] else ""))
    return done["applied"], done["failed"], seconds


def wait_controller_manager(cluster, args, t_created):
    """Waits (at most --kcm-timeout seconds) until the controller manager
    has created a ReplicaSet per Deployment and `replicas` Pods per
    ReplicaSet. Returns the populate fields it measured."""
    want_rs = args.workloads
    want_pods = args.workloads * args.replicas
    log(f"waiting up to {args.kcm_timeout}s for the controller manager to create "
        f"{want_rs} ReplicaSets and {want_pods} Pods")
    deadline = time.monotonic() + args.kcm_timeout
    rs = pods = 0
    rs_done = None
    last_log = 0
    while True:
        rs = cluster.count("/apis/apps/v1/replicasets")
        pods = cluster.count("/api/v1/pods")
        now = time.monotonic()
        if rs >= want_rs and rs_done is None:
            rs_done = now - t_created
        if (rs >= want_rs and pods >= want_pods) or now >= deadline:
            break
        if now - last_log > 30:
            log(f"  controller manager: {rs}/{want_rs} ReplicaSets, {pods}/{want_pods} Pods "
                f"after {now - t_created:.0f}s (load {os.getloadavg()[0]:.1f})")
            last_log = now
        time.sleep(2)
    t_kcm = time.monotonic() - t_created
    complete = rs >= want_rs and pods >= want_pods
    log(f"controller manager: {rs} ReplicaSets, {pods} Pods after {t_kcm:.0f}s"
        + ("" if complete else f" (TIMED OUT after --kcm-timeout {args.kcm_timeout}s: "
                               "it goes on creating them while the operators run)"))
    return {
        "replicasets_created_seconds": round(rs_done, 1) if rs_done else None,
        "pods_created_seconds": round(t_kcm, 1) if complete else None,
        "replicasets": rs,
        "pods": pods,
        "complete": complete,
    }


def populate(cluster, args, result):
    # (A label selector would make the API server leave out the remaining
    # count; nothing else in the test cluster makes these kinds.)
    existing = cluster.count("/apis/apps/v1/deployments")
    if existing == args.workloads and args.reuse:
        log(f"cluster already holds {existing} benchmark Deployments; not creating them")
        result["populate"] = {"reused": True}
        return
    applied = {}
    failed = 0
    for what, objects in (("namespaces", namespace_objects(args)),
                          ("service accounts, roles and bindings", rbac_objects(args)),
                          ("Deployments", workload_objects(args))):
        n, bad, seconds = apply_objects(cluster, objects, args.parallel, what)
        applied[what] = {"objects": n, "seconds": round(seconds, 1),
                         "per_second": round(n / max(seconds, 1e-9), 1)}
        failed += bad
    t_created = time.monotonic()
    result["populate"] = {"reused": False, "applied": applied, "failed": failed,
                          "paused_deployments": args.no_controllers,
                          "replicas": args.replicas}
    if args.no_controllers:
        log("Deployments are paused (--no-controllers): the controller manager creates "
            "no ReplicaSets or Pods for them")
        return
    if args.kcm_timeout <= 0:
        log("not waiting for the controller manager (--kcm-timeout 0)")
        return
    result["populate"].update(wait_controller_manager(cluster, args, t_created))


def install_operator_rbac(cluster, repo):
    for f in ("crds/palisade.yaml", "manifests/namespace.yaml", "manifests/rbac.yaml"):
        cluster.kubectl("apply", "--server-side", "--force-conflicts",
                        "--field-manager=operator-scale", "-f", os.path.join(repo, f))
    cluster.kubectl("wait", "--for=condition=established", "--timeout=60s",
                    f"crd/scanreports.{GROUP}", f"crd/clusterscanreports.{GROUP}",
                    f"crd/scanpolicies.{GROUP}")
    # RBAC takes effect when the authorizer's informers have seen it.
    for _ in range(100):
        out = cluster.kubectl("auth", "can-i", "list", "scanreports.palisade.dev",
                              "--as=system:serviceaccount:palisade-system:palisade",
                              check=False)
        if out.strip() == "yes":
            break
        time.sleep(0.2)
    token = cluster.kubectl("create", "token", "palisade", "-n", "palisade-system",
                            "--duration=4h").strip()
    config = json.loads(json.dumps(cluster.config))
    for user in config["users"]:
        user["user"] = {"token": token}
    path = os.path.join(os.path.dirname(cluster.kubeconfig), "operator.kubeconfig")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    os.chmod(path, 0o600)
    return path


def expected_reports(cluster):
    """One report per top-level workload, ServiceAccount, Role, RoleBinding,
    Namespace, ClusterRole and ClusterRoleBinding."""
    counts = {
        "Deployment": cluster.count("/apis/apps/v1/deployments"),
        "ServiceAccount": cluster.count("/api/v1/serviceaccounts"),
        "Role": cluster.count("/apis/rbac.authorization.k8s.io/v1/roles"),
        "RoleBinding": cluster.count("/apis/rbac.authorization.k8s.io/v1/rolebindings"),
        "Namespace": cluster.count("/api/v1/namespaces"),
        "ClusterRole": cluster.count("/apis/rbac.authorization.k8s.io/v1/clusterroles"),
        "ClusterRoleBinding": cluster.count(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
    }
    return counts


def delete_reports(cluster, parallel, timeout=600):
    """Clean slate: reports of an earlier run would make the scan look done.
    One delete-collection request per namespace (kubectl deletes one object
    per request)."""
    namespaces = {ns for ns, _ in cluster.metadata_list(f"/apis/{GROUP}/{VERSION}/scanreports")}

    def one(ns):
        cluster.request(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/scanreports", method="DELETE",
                        timeout=300)

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, sorted(namespaces)))
    cluster.request(f"/apis/{GROUP}/{VERSION}/clusterscanreports", method="DELETE", timeout=300)
    deadline = time.monotonic() + timeout
    while (left := report_count(cluster)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} reports of an earlier run still there {timeout}s "
                               "after deleting them")
        time.sleep(0.5)


def report_count(cluster):
    return (cluster.count(f"/apis/{GROUP}/{VERSION}/scanreports")
            + cluster.count(f"/apis/{GROUP}/{VERSION}/clusterscanreports"))


class Operator:
    def __init__(self, binary, kubeconfig, work, resync):
        self.port = free_port()
        self.log_path = os.path.join(work, "operator.log")
        self.log_file = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "operator", "--kubeconfig", kubeconfig,
             "--metrics-addr", f"127.0.0.1:{self.port}", "--resync-interval", resync,
             "--log-format", "json"],
            stdout=self.log_file, stderr=subprocess.STDOUT)
        self.peak_sampled_kib = 0

    def status(self):
        """(VmRSS, VmHWM) in KiB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
        self.peak_sampled_kib = max(self.peak_sampled_kib, values.get("VmRSS", 0))
        return values.get("VmRSS", 0), values.get("VmHWM", 0)

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def metrics(self):
        """The operator's metrics as {name{labels}: value}."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=10) as resp:
                text = resp.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_sum(metrics, name):
    return sum(v for k, v in (metrics or {}).items()
               if k == name or k.startswith(name + "{"))


def metric_by_label(metrics, name):
    return {k[len(name):]: v for k, v in (metrics or {}).items()
            if k.startswith(name + "{")}


def wait_initial_scan(cluster, operator, expected, args):
    """Polls (at most --scan-timeout seconds) until the reports reach the
    expected count. Returns (seconds from operator start or None, count)."""
    log(f"waiting up to {args.scan_timeout}s for {expected} reports")
    deadline = operator.started + args.scan_timeout
    last_log = 0
    count = 0
    while time.monotonic() < deadline:
        if not operator.alive():
            raise RuntimeError(f"the operator exited; see {operator.log_path}")
        operator.status()
        count = report_count(cluster)
        now = time.monotonic()
        if count >= expected:
            return now - operator.started, count
        if now - last_log > 15:
            metrics = operator.metrics()
            queue_depth = metric_sum(metrics, "palisade_queue_depth") if metrics else None
            log(f"  {count}/{expected} reports after {now - operator.started:.0f}s, "
                f"queue {queue_depth}, RSS {operator.status()[0] // 1024} MiB, "
                f"load {os.getloadavg()[0]:.1f}")
            last_log = now
        time.sleep(0.5)
    log(f"TIMED OUT: {count} of {expected} reports after --scan-timeout {args.scan_timeout}s")
    return None, count


def all_report_versions(cluster):
    versions = cluster.metadata_list(f"/apis/{GROUP}/{VERSION}/scanreports")
    versions.update(cluster.metadata_list(f"/apis/{GROUP}/{VERSION}/clusterscanreports"))
    return versions


def wait_queue_idle(operator, timeout, settle=3.0):
    """Waits (at most `timeout` seconds) until the queue is empty and
    evaluations stop moving for `settle` seconds. Returns the seconds it
    took, or None when it did not settle: on a cluster whose controller
    manager is still creating objects there is always new work."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if not operator.alive():
            raise RuntimeError(f"the operator exited; see {operator.log_path}")
        metrics = operator.metrics()
        operator.status()
        if metrics is None:
            # No answer (a busy operator): that is not an empty queue.
            since = time.monotonic()
            time.sleep(0.5)
            continue
        evals = metric_sum(metrics, "palisade_evaluations_total")
        queue_depth = metric_sum(metrics, "palisade_queue_depth")
        if evals != last or queue_depth:
            last, since = evals, time.monotonic()
        elif time.monotonic() - since >= settle:
            return time.monotonic() - t0
        time.sleep(0.5)
    log(f"the operator's queue did not settle within {timeout}s "
        f"(depth {metric_sum(operator.metrics(), 'palisade_queue_depth')})")
    return None


def metrics_answer(operator, timeout=120):
    """The operator's metrics, asked again until it answers (at most
    `timeout` seconds; then an empty set)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = operator.metrics()
        if metrics is not None:
            return metrics
        time.sleep(1)
    log(f"the operator's /metrics did not answer within {timeout}s")
    return {}


def parse_duration(text):
    """Seconds in a duration like 90s, 5m, 1h or 1h30m."""
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in "smh" and number:
            total += int(number) * {"s": 1, "m": 60, "h": 3600}[ch]
            number = ""
        else:
            raise ValueError(f"not a duration: {text}")
    if number:
        raise ValueError(f"duration needs a unit (s, m, h): {text}")
    return total


def idle_resync(cluster, operator, args, result):
    """Waits for the next periodic full resync and counts the report writes
    it makes."""
    before_versions = all_report_versions(cluster)
    m0 = metrics_answer(operator)
    last = metric_sum(m0, "palisade_last_full_resync_timestamp_seconds")
    evals0 = metric_sum(m0, "palisade_evaluations_total")
    writes0 = metric_sum(m0, "palisade_api_writes_total")
    api0 = cluster.request_totals()
    # The next resync is at most one interval away; a minute more for a
    # loaded machine.
    timeout = parse_duration(args.resync_interval) + 60
    log(f"waiting up to {timeout}s for the next periodic full resync")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not operator.alive():
            raise RuntimeError(f"the operator exited; see {operator.log_path}")
        m = operator.metrics()
        operator.status()
        if m is not None and metric_sum(
                m, "palisade_last_full_resync_timestamp_seconds") != last:
            break
        time.sleep(0.5)
    else:
        log(f"TIMED OUT: no full resync within {timeout}s")
        result["idle_resync"] = {"timed_out": True}
        return
    t0 = time.monotonic()
    settled = wait_queue_idle(operator, args.settle_timeout)
    seconds = time.monotonic() - t0
    m1 = metrics_answer(operator)
    after_versions = all_report_versions(cluster)
    changed = sum(1 for k, v in after_versions.items() if before_versions.get(k) != v)
    gone = sum(1 for k in before_versions if k not in after_versions)
    result["idle_resync"] = {
        "reports": len(before_versions),
        "evaluations": int(metric_sum(m1, "palisade_evaluations_total") - evals0),
        "report_writes": changed + gone,
        "operator_api_writes": int(metric_sum(m1, "palisade_api_writes_total") - writes0),
        "seconds": round(seconds, 1),
        "settled": settled is not None,
        "api_requests": operator_requests(delta(cluster.request_totals(), api0)),
    }
    log(f"idle resync: {result['idle_resync']['evaluations']} evaluations in {seconds:.1f}s, "
        f"{changed + gone} report writes")


def summary_of(cluster, ns, name):
    try:
        report = cluster.get_json(
            f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/scanreports/deployment-{name}",
            timeout=10)
    except ApiError as e:
        if e.code == 404:
            return None
        raise
    return json.dumps((report.get("status") or {}).get("summary"), sort_keys=True)


def change_latency(cluster, operator, args, result):
    """Flips hostNetwork on hardened Deployments (adds, then removes a
    high-severity finding) and times each until the report's summary moves."""
    targets = []
    j = 0
    while len(targets) < (args.changes + 1) // 2:
        i = len(targets) % args.namespaces
        per_ns = spread(args.workloads, args.namespaces, i)
        # The k-th hardened workload of namespace i (j % 10 in 0..3).
        k = len(targets) // args.namespaces
        j = (k // 4) * 10 + k % 4
        if j >= per_ns:
            break
        targets.append((namespace_name(i), f"wl-{j}"))
    latencies = []
    for n in range(args.changes):
        ns, name = targets[(n // 2) % len(targets)]
        host = n % 2 == 0
        before = summary_of(cluster, ns, name)
        patch = {"spec": {"template": {"spec": {"hostNetwork": host}}}}
        t0 = time.monotonic()
        cluster.request(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", method="PATCH",
                        body=patch, content_type="application/strategic-merge-patch+json")
        deadline = t0 + 30
        while time.monotonic() < deadline:
            if summary_of(cluster, ns, name) != before:
                latencies.append(time.monotonic() - t0)
                break
            time.sleep(0.01)
        else:
            log(f"  {ns}/{name}: the report did not change within 30s")
            latencies.append(float("inf"))
        operator.status()
        time.sleep(args.change_gap)
    finite = sorted(latencies)
    result["change_latency"] = {
        "changes": len(latencies),
        "timed_out": sum(1 for x in latencies if x == float("inf")),
        "p50_seconds": round(percentile(finite, 50), 3),
        "p99_seconds": round(percentile(finite, 99), 3),
        "max_seconds": round(finite[-1], 3) if finite else None,
    }
    log(f"change-to-report: p50 {result['change_latency']['p50_seconds']}s, "
        f"p99 {result['change_latency']['p99_seconds']}s")


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    # Nearest rank.
    index = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def machine():
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpus": cpus, "cpu_model": model, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": os.uname().release}


# --------------------------------------------------------------------------
# trivy-operator, side by side (--with-trivy-operator)

TRIVY_NAMESPACE = "trivy-system"
TRIVY_GROUP = "aquasecurity.github.io"
# The reports of its config-audit and RBAC-assessment scanners.
TRIVY_REPORTS = ["configauditreports", "clusterconfigauditreports",
                 "rbacassessmentreports", "clusterrbacassessmentreports"]


class TrivyOperator(Operator):
    """trivy-operator built from its Go module, run as a process beside the
    cluster (like Palisade here), with the cluster admin's kubeconfig, only
    its config-audit and RBAC-assessment scanners, and the checks embedded
    in it (nothing is downloaded)."""

    def __init__(self, binary, kubeconfig, work):
        self.port = free_port()
        probe_port = free_port()
        self.log_path = os.path.join(work, "trivy-operator.log")
        self.log_file = open(self.log_path, "w")
        env = dict(os.environ, KUBECONFIG=kubeconfig,
                   OPERATOR_NAMESPACE=TRIVY_NAMESPACE,
                   OPERATOR_TARGET_NAMESPACES="",
                   OPERATOR_METRICS_BIND_ADDRESS=f"127.0.0.1:{self.port}",
                   OPERATOR_HEALTH_PROBE_BIND_ADDRESS=f"127.0.0.1:{probe_port}",
                   OPERATOR_CONFIG_AUDIT_SCANNER_ENABLED="true",
                   OPERATOR_RBAC_ASSESSMENT_SCANNER_ENABLED="true",
                   OPERATOR_VULNERABILITY_SCANNER_ENABLED="false",
                   OPERATOR_SBOM_GENERATION_ENABLED="false",
                   OPERATOR_CLUSTER_SBOM_CACHE_ENABLED="false",
                   OPERATOR_EXPOSED_SECRET_SCANNER_ENABLED="false",
                   OPERATOR_INFRA_ASSESSMENT_SCANNER_ENABLED="false",
                   OPERATOR_CLUSTER_COMPLIANCE_ENABLED="false",
                   OPERATOR_LEADER_ELECTION_ENABLED="false")
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary], env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT)
        self.peak_sampled_kib = 0


def install_trivy_operator(cluster, crds_dir):
    """Its CRDs (from its module's deploy/helm/crds) and the ConfigMap that
    makes it use the checks embedded in it."""
    for name in sorted(os.listdir(crds_dir)):
        if name.endswith(".yaml"):
            cluster.kubectl("apply", "--server-side", "--force-conflicts",
                            "--field-manager=operator-scale", "-f",
                            os.path.join(crds_dir, name))
    cluster.kubectl("wait", "--for=condition=established", "--timeout=60s",
                    *[f"crd/{r}.{TRIVY_GROUP}" for r in TRIVY_REPORTS])
    cluster.kubectl("create", "namespace", TRIVY_NAMESPACE, check=False)
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "trivy-operator-trivy-config",
                           "namespace": TRIVY_NAMESPACE},
              "data": {"trivy.useEmbeddedRegoPolicies": "true",
                       "trivy.useBuiltinRegoPolicies": "false"}}
    path = os.path.join(os.path.dirname(cluster.kubeconfig), "trivy-config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    cluster.kubectl("apply", "--server-side", "--force-conflicts",
                    "--field-manager=operator-scale", "-f", path)


def trivy_report_count(cluster):
    return sum(cluster.count(f"/apis/{TRIVY_GROUP}/v1alpha1/{r}") for r in TRIVY_REPORTS)


def trivy_operator_run(cluster, args, result, save):
    """Runs trivy-operator until its report count stops growing for
    --trivy-settle seconds; time to reports is the time of the last new
    report. Its reports are deleted first, so a rerun starts clean."""
    install_trivy_operator(cluster, args.trivy_operator_crds)
    for resource in TRIVY_REPORTS:
        cluster.kubectl("delete", f"{resource}.{TRIVY_GROUP}", "--all", "-A",
                        "--wait=false", check=False)
    deadline = time.monotonic() + 600
    while (left := trivy_report_count(cluster)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} trivy-operator reports of an earlier run still there "
                               "600s after deleting them")
        time.sleep(1)
    load_before = os.getloadavg()[0]
    work = os.path.dirname(args.out)
    operator = TrivyOperator(args.trivy_operator, cluster.kubeconfig, work)
    log(f"trivy-operator started (pid {operator.process.pid}); waiting up to "
        f"{args.scan_timeout}s until no new report comes for {args.trivy_settle}s")
    count, last_change, cpu_at_last = 0, 0.0, 0.0
    deadline = operator.started + args.scan_timeout
    last_log = 0
    t = result["trivy_operator"] = {"version": args.trivy_operator_version,
                                    "settle_seconds": args.trivy_settle,
                                    "load_before": round(load_before, 2)}

    def record(timed_out):
        rss, hwm = operator.status()
        t.update({
            "reports": count,
            "reports_by_kind": {r: cluster.count(f"/apis/{TRIVY_GROUP}/v1alpha1/{r}")
                                for r in TRIVY_REPORTS},
            "seconds_to_last_report": round(last_change, 1),
            "cpu_seconds_to_last_report": round(cpu_at_last, 1),
            "total_cpu_seconds": round(operator.cpu_seconds(), 1),
            "seconds_run": round(time.monotonic() - operator.started, 1),
            "peak_rss_mib": round(hwm / 1024, 1),
            "final_rss_mib": round(rss / 1024, 1),
            "load_during": round(os.getloadavg()[1], 2),
            "timed_out": timed_out,
        })
        save()

    try:
        while True:
            if not operator.alive():
                raise RuntimeError(f"trivy-operator exited; see {operator.log_path}")
            operator.status()
            now = time.monotonic()
            current = trivy_report_count(cluster)
            if current != count:
                count, last_change = current, now - operator.started
                cpu_at_last = operator.cpu_seconds()
            elif count and now - operator.started - last_change >= args.trivy_settle:
                timed_out = False
                break
            if now >= deadline:
                log(f"TIMED OUT: trivy-operator still writing reports after "
                    f"--scan-timeout {args.scan_timeout}s")
                timed_out = True
                break
            if now - last_log > 15:
                log(f"  trivy-operator: {count} reports after {now - operator.started:.0f}s, "
                    f"RSS {operator.status()[0] // 1024} MiB, load {os.getloadavg()[0]:.1f}")
                last_log = now
                record(None)
            time.sleep(1)
        record(timed_out)
        log(f"trivy-operator: {count} reports, the last {last_change:.1f}s after start "
            f"(CPU {cpu_at_last:.1f}s); VmHWM {t['peak_rss_mib']:.0f} MiB")
    finally:
        operator.stop()


def seconds_text(value, timed_out=False):
    if value is None:
        return "not reached" + (" (timed out)" if timed_out else "")
    return f"{value:.1f} s"


def operator_rows(result, op):
    rows = [
        ("Reports written", f"{op.get('reports', 0):,} (expected {op['expected_reports']:,})"),
        ("Operator start to all reports written",
         seconds_text(op.get("initial_scan_seconds"), op.get("initial_scan_timed_out"))),
        ("Operator CPU time for that", f"{op.get('initial_scan_cpu_seconds', 0):.1f} s"),
        ("Queue empty after all reports were written",
         seconds_text(op.get("queue_empty_after_seconds"))),
        ("Peak RSS (VmHWM), whole run", f"{op.get('peak_rss_mib', 0):.0f} MiB"),
        ("RSS when idle after the scan", f"{op.get('idle_rss_mib', 0):.0f} MiB"),
    ]
    r = result.get("idle_resync")
    if r and r.get("timed_out"):
        rows.append(("Idle full resync", "did not come (timed out)"))
    elif r:
        rows.append(("Idle full resync: evaluations / report writes",
                     f"{r['evaluations']:,} / {r['report_writes']} (target 0)"))
    c = result.get("change_latency")
    if c:
        rows.append((f"Change to report, {c['changes']} changes: p50 / p99",
                     f"{c['p50_seconds']:.2f} s / {c['p99_seconds']:.2f} s (target p99 < 2)"))
    if op.get("report_writes_to_idle") is not None:
        rows.append(("Report writes from start until the queue was empty",
                     f"{op['report_writes_to_idle']:,}"))
    if op.get("report_writes_per_second") is not None:
        rows.append(("Report writes to the initial scan / per second",
                     f"{op['report_writes']:,} / {op['report_writes_per_second']:.0f}"))
    if op.get("other_writes_during_scan") is not None:
        rows.append(("Controller manager's writes meanwhile (Events left out)",
                     f"{sum(op['other_writes_during_scan'].values()):,}"))
    if op.get("api_requests_by_verb"):
        rows.append(("API requests to the initial scan, by verb",
                     ", ".join(f"{k} {v:,}" for k, v in op["api_requests_by_verb"].items())))
    return rows


def print_table(result):
    op = result.get("operator")
    config = result["config"]
    rows = [
        ("Workloads (Deployments)",
         f"{config['workloads']:,}"
         + (", paused (no ReplicaSets or Pods)" if config["no_controllers"]
            else f", {config['replicas']} replica(s) each")),
        ("Namespaces / Roles / RoleBindings / ServiceAccounts",
         f"{config['namespaces']:,} / {config['roles']:,} / {config['roles']:,} / "
         f"{config['service_accounts']:,}"),
    ]
    pop = result.get("populate", {})
    for what, a in pop.get("applied", {}).items():
        rows.append((f"Applied: {what}", f"{a['objects']:,} in {a['seconds']} s "
                                         f"({a['per_second']:.0f}/s)"))
    if "complete" in pop:
        rows.append(("Controller manager: all ReplicaSets / Pods created",
                     f"{pop.get('replicasets_created_seconds')} s / "
                     f"{pop.get('pods_created_seconds')} s"
                     + ("" if pop.get("complete") else
                        f" (incomplete: {pop['replicasets']:,} / {pop['pods']:,})")))
    if op:
        rows += operator_rows(result, op)
    load = result["load"]
    rows.append(("Load average (1 min) at start / end",
                 f"{load['start']:.2f} / {load.get('end', os.getloadavg()[0]):.2f}"))
    t = result.get("trivy_operator")
    if t and "reports" in t:
        rows += [
            (f"trivy-operator {t['version']}: reports",
             f"{t['reports']:,} {t['reports_by_kind']}"),
            ("trivy-operator: start to its last report",
             f"{t['seconds_to_last_report']:.1f} s"
             + (" (still writing when stopped)" if t.get("timed_out") is not False else "")),
            ("trivy-operator: CPU time for that", f"{t['cpu_seconds_to_last_report']:.1f} s"),
            ("trivy-operator: peak RSS (VmHWM)", f"{t['peak_rss_mib']:.0f} MiB"),
        ]
    if result.get("error"):
        rows.append(("Run ended early", result["error"]))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'Measure'.ljust(width)} | Value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    print()


def wait_first_resync(operator, timeout):
    """Waits (at most `timeout` seconds) for the full evaluation the
    operator queues once its caches have synced."""
    log(f"waiting up to {timeout}s for the operator's first full evaluation to be queued")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not operator.alive():
            raise RuntimeError(f"the operator exited; see {operator.log_path}")
        operator.status()
        metrics = operator.metrics()
        if metric_sum(metrics, "palisade_last_full_resync_timestamp_seconds") > 0:
            return
        time.sleep(0.5)
    log(f"TIMED OUT: no full evaluation queued within {timeout}s")


def count_report_writes(requests):
    return sum(n for key, n in requests.items()
               if key.split(" ", 1)[0] in WRITE_VERBS and not key.startswith("DELETE")
               and f" {GROUP}/" in f" {key.split(' ', 1)[1]}"
               and "scanpolicies" not in key)


def palisade_run(cluster, args, result, save):
    """Runs the operator to all reports, then the idle resync and changes.
    Each phase's numbers are saved as soon as they are measured."""
    operator_kubeconfig = install_operator_rbac(cluster, args.repo)
    expected = expected_reports(cluster)
    total_expected = sum(expected.values())
    log(f"expecting {total_expected} reports: {expected}")
    if args.keep_reports:
        log("keeping the reports already in the cluster (--keep-reports): the operator "
            "starts on a cluster it has scanned before")
    else:
        delete_reports(cluster, args.parallel)

    api_before = cluster.request_totals()
    load_before = os.getloadavg()[0]
    operator = Operator(args.binary, operator_kubeconfig, args.work, args.resync_interval)
    op = result["operator"] = {"expected_reports": total_expected, "expected_by_kind": expected,
                               "load_before": round(load_before, 2)}
    try:
        log(f"operator started (pid {operator.process.pid}), resync every {args.resync_interval}")
        scan_seconds, count = wait_initial_scan(cluster, operator, total_expected, args)
        cpu = operator.cpu_seconds()
        api_after = cluster.request_totals()
        rss, hwm = operator.status()
        log(f"{count} reports written {scan_seconds or float('nan'):.1f}s after start "
            f"(CPU {cpu:.1f}s); VmHWM {hwm // 1024} MiB")
        requests = operator_requests(delta(api_after, api_before))
        background = other_writes(delta(api_after, api_before))
        # Every report is one write (object and status in one apply): what
        # the API server took per second during the scan.
        report_writes = count_report_writes(requests)
        op.update({
            "reports": count,
            "initial_scan_seconds": round(scan_seconds, 1) if scan_seconds else None,
            "initial_scan_timed_out": scan_seconds is None,
            "initial_scan_cpu_seconds": round(cpu, 1),
            "load_during_scan": round(os.getloadavg()[1], 2),
            "hwm_after_scan_mib": round(hwm / 1024, 1),
            "api_requests": requests,
            "api_requests_by_verb": by_verb(requests),
            "other_writes_during_scan": background,
            "report_writes": report_writes,
            "report_writes_per_second": round(report_writes / scan_seconds, 1)
            if scan_seconds else None,
        })
        save()
        if scan_seconds is not None and args.keep_reports:
            # The reports were there before it started: its work is the
            # full evaluation that follows the caches' sync.
            wait_first_resync(operator, args.scan_timeout)
        if scan_seconds is not None:
            log(f"waiting up to {args.settle_timeout}s for the operator's queue to empty")
            settle = wait_queue_idle(operator, args.settle_timeout)
            op["queue_empty_after_seconds"] = round(settle, 1) if settle is not None else None
            op["cpu_seconds_to_idle"] = round(operator.cpu_seconds(), 1)
            op["report_writes_to_idle"] = count_report_writes(
                operator_requests(delta(cluster.request_totals(), api_before)))
            rss, hwm = operator.status()
            op["idle_rss_mib"] = round(rss / 1024, 1)
            op["operator_metrics_writes"] = metric_by_label(metrics_answer(operator),
                                                            "palisade_api_writes_total")
            save()
            if not args.skip_resync:
                idle_resync(cluster, operator, args, result)
                save()
            if args.changes:
                change_latency(cluster, operator, args, result)
    finally:
        if operator.alive():
            rss, hwm = operator.status()
            op["peak_rss_mib"] = round(hwm / 1024, 1)
            op["peak_sampled_rss_mib"] = round(operator.peak_sampled_kib / 1024, 1)
            op["final_rss_mib"] = round(rss / 1024, 1)
            op["total_cpu_seconds"] = round(operator.cpu_seconds(), 1)
        operator.stop()
        save()


class Stopped(Exception):
    """SIGTERM or SIGINT: the run stops, and what was measured is kept."""


def on_signal(signum, _frame):
    raise Stopped(f"stopped by signal {signum}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workloads", type=int, default=10000)
    parser.add_argument("--namespaces", type=int,
                        help="default: one per 100 workloads")
    parser.add_argument("--roles", type=int, help="default: one per 5 workloads")
    parser.add_argument("--service-accounts", type=int, help="default: one per 10 workloads")
    parser.add_argument("--replicas", type=int, default=1,
                        help="replicas of each Deployment (Pods the controller manager makes)")
    parser.add_argument("--no-controllers", action="store_true",
                        help="paused Deployments: no ReplicaSets or Pods are created")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--change-gap", type=float, default=0.5)
    parser.add_argument("--resync-interval", default="10m")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--kcm-timeout", type=int, default=3600)
    parser.add_argument("--scan-timeout", type=int, default=1800)
    parser.add_argument("--settle-timeout", type=int, default=120)
    parser.add_argument("--reuse", action="store_true",
                        help="keep objects already in the cluster when the counts match")
    parser.add_argument("--skip-resync", action="store_true")
    parser.add_argument("--keep-reports", action="store_true",
                        help="do not delete the reports first: measure a restart")
    parser.add_argument("--trivy-operator", help="trivy-operator binary: run it after Palisade")
    parser.add_argument("--trivy-operator-crds", help="its CRDs (deploy/helm/crds of its module)")
    parser.add_argument("--trivy-operator-version", default="unknown")
    parser.add_argument("--trivy-settle", type=int, default=60,
                        help="seconds without a new trivy-operator report that end its run")
    parser.add_argument("--skip-palisade", action="store_true",
                        help="run only trivy-operator (with --trivy-operator)")
    args = parser.parse_args()
    if args.workloads < 0 or args.replicas < 0:
        parser.error("--workloads and --replicas cannot be negative")
    if args.namespaces is None:
        args.namespaces = max(1, args.workloads // 100)
    if args.roles is None:
        args.roles = args.workloads // 5
    if args.service_accounts is None:
        args.service_accounts = args.workloads // 10
    if args.namespaces < 1:
        parser.error("--namespaces must be at least 1")
    try:
        parse_duration(args.resync_interval)
    except ValueError as e:
        parser.error(f"--resync-interval: {e}")
    if args.trivy_operator and (args.no_controllers or args.replicas == 0):
        parser.error("trivy-operator audits a Deployment through its ReplicaSet, and skips "
                     "ReplicaSets without replicas: with --no-controllers or --replicas 0 "
                     "it would leave the Deployments out of the comparison")
    return args


def main():
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    cluster = Cluster(args.kubeconfig, args.kubectl)
    result = {
        "config": {k: getattr(args, k) for k in
                   ("workloads", "namespaces", "roles", "service_accounts", "replicas",
                    "no_controllers", "changes", "resync_interval", "parallel",
                    "keep_reports")},
        "binary": args.binary,
        "machine": machine(),
        "load": {"start": os.getloadavg()[0]},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    def save():
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, args.out)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        populate(cluster, args, result)
        save()
        if not args.skip_palisade:
            palisade_run(cluster, args, result, save)
        if args.trivy_operator:
            trivy_operator_run(cluster, args, result, save)
    except (Stopped, RuntimeError, ApiError) as e:
        result["error"] = str(e)
        log(f"run ended early: {e}; what was measured is kept")
    result["load"]["end"] = os.getloadavg()[0]
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    print_table(result)
    print(f"results: {args.out}")
    missed = []
    if result.get("idle_resync", {}).get("report_writes", 0) != 0:
        missed.append("idle resync writes")
    if result.get("change_latency", {}).get("p99_seconds", 0) >= 2:
        missed.append("change-to-report p99")
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())

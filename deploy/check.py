"""Offline validation of deploy/, run by deploy/check with its pinned tools.

Every YAML file in deploy/ is classified (a file this script does not know is
an error, so nothing slips through unchecked):

- Kubernetes objects (deploy/kubernetes/**, but for the kinds below) are
  validated strictly against the Kubernetes OpenAPI schemas bundled by
  kubernetes-validate, or against deploy/schemas/ for custom resources;
- kustomization.yaml files must be a Kustomization or a Component, and are
  checked by building them;
- patches (listed under `patches:`) are partial objects: they are checked in
  the output of the overlay that applies them, which is validated strictly;
- the configuration (base/config/) and the Slack app manifests (slack/) are
  parsed here and checked against the binary by `cargo test --test deploy`.

Then the base and every overlay are built with `kubectl kustomize` (each
overlay also with its commented optional components enabled), every object of
every build is validated, and the promises of each overlay are checked.
"""

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SCHEMAS = DEPLOY / "schemas"
OVERLAYS = ["single-sqlite", "ha-postgres"]
NAMESPACE = "watchkeeper"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
# Secrets the Deployment may read, by variable: they must never be inlined.
SECRET_VARS = {
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_WEBHOOK_SECRET",
}

# What playbook `kubernetes` actions patch (restart, scale); nothing else is written.
PLAYBOOK_PATCHES = {"deployments", "statefulsets", "deployments/scale", "statefulsets/scale"}
CRD = K8S / "crd" / "playbooks.watchkeeper.dev.yaml"
PLAYBOOKS = ROOT / "playbooks"

failures = []
counts = {"files": 0, "objects": 0, "builds": 0}


def rel(path):
    return str(pathlib.Path(path).resolve().relative_to(ROOT))


def fail(where, message):
    failures.append(f"{where}: {message}")
    print(f"FAIL {where}: {message}")


def expect(condition, where, message):
    if not condition:
        fail(where, message)
    return condition


def load_all(text, where):
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        fail(where, f"not YAML: {err}")
        return []


def object_name(obj):
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


def local_schema(obj):
    api = str(obj.get("apiVersion", "")).replace("/", "-")
    path = SCHEMAS / f"{str(obj.get('kind', '')).lower()}-{api}.json"
    return path if path.is_file() else None


def validate_object(obj, where, version):
    """Validates one Kubernetes object strictly; True when valid."""
    counts["objects"] += 1
    where = f"{where}: {object_name(obj)}"
    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        return expect(False, where, "not a Kubernetes object (apiVersion and kind required)")
    schema_file = local_schema(obj)
    if schema_file:
        schema = json.loads(schema_file.read_text())
        errors = sorted(
            jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path)
        )
        for err in errors:
            path = ".".join(str(p) for p in err.path)
            fail(where, f"{path}: {err.message} (schema {rel(schema_file)})")
        return not errors
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return True
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        return expect(False, where, f"{path}: {err.message} (Kubernetes {version}, strict)")
    except kubernetes_validate.SchemaNotFoundError:
        return expect(
            False,
            where,
            f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version}; "
            "a custom resource needs one in deploy/schemas/",
        )


# ---- the files ---------------------------------------------------------------


def patch_files():
    """Files listed under `patches:` of some kustomization."""
    patches = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        doc = yaml.safe_load(kustomization.read_text()) or {}
        for patch in doc.get("patches") or []:
            if isinstance(patch, dict) and "path" in patch:
                patches.add((kustomization.parent / patch["path"]).resolve())
    return patches


def check_files(version):
    print("== every YAML file in deploy/")
    patches = patch_files()
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        counts["files"] += 1
        where = rel(path)
        docs = load_all(path.read_text(), where)
        if path.name == "kustomization.yaml":
            for doc in docs:
                expect(
                    str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io/")
                    and doc.get("kind") in ("Kustomization", "Component"),
                    where,
                    "a kustomization.yaml must be a Kustomization or a Component",
                )
            print(f"ok   {where} (kustomization, built below)")
        elif path.resolve() in patches:
            for doc in docs:
                expect(
                    isinstance(doc, dict) and {"apiVersion", "kind", "metadata"} <= doc.keys(),
                    where,
                    "a patch names apiVersion, kind and metadata.name",
                )
            print(f"ok   {where} (patch, validated as merged into its overlay below)")
        elif K8S / "base" / "config" in path.parents:
            expect(len(docs) == 1 and isinstance(docs[0], dict), where, "one YAML mapping")
            print(f"ok   {where} (configuration; `watchkeeper check` in tests/deploy.rs)")
        elif path.parent == DEPLOY / "slack":
            check_slack_manifest(path, docs)
        elif K8S in path.parents:
            valid = all([validate_object(doc, where, version) for doc in docs])
            expect(docs, where, "no objects")
            if valid and docs:
                kinds = ", ".join(object_name(d) for d in docs)
                print(f"ok   {where} ({kinds})")
        else:
            fail(where, "a YAML file deploy/check does not know how to validate")


def check_slack_manifest(path, docs):
    where = rel(path)
    if not expect(len(docs) == 1 and isinstance(docs[0], dict), where, "one YAML mapping"):
        return
    manifest = docs[0]
    settings = manifest.get("settings") or {}
    socket_mode = "socket-mode" in path.name
    expect(
        settings.get("socket_mode_enabled") is socket_mode,
        where,
        f"socket_mode_enabled must be {str(socket_mode).lower()} in this file",
    )
    commands = (manifest.get("features") or {}).get("slash_commands") or []
    expect([c.get("command") for c in commands] == ["/wk"], where, "declares the /wk command")
    urls = [c.get("url") for c in commands] + [
        (settings.get("event_subscriptions") or {}).get("request_url"),
        (settings.get("interactivity") or {}).get("request_url"),
    ]
    if socket_mode:
        expect(urls == [None, None, None], where, "a Socket Mode manifest has no request URLs")
    else:
        expect(
            urls
            == [
                "https://watchkeeper.example.com/slack/commands",
                "https://watchkeeper.example.com/slack/events",
                "https://watchkeeper.example.com/slack/interactivity",
            ],
            where,
            "request URLs are the service's /slack/* endpoints",
        )
    print(f"ok   {where} (Slack app manifest; compared with the binary in tests/deploy.rs)")


# ---- the builds --------------------------------------------------------------


def kustomize(directory):
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        fail(rel(directory) if ROOT in directory.parents else str(directory), result.stderr.strip())
        return None
    return result.stdout


def only(docs, kind, where):
    found = [d for d in docs if d.get("kind") == kind]
    expect(len(found) == 1, where, f"exactly one {kind}, found {len(found)}")
    return found[0] if found else None


def env_of(container):
    return {e["name"]: e for e in container.get("env") or []}


def secret_refs(docs):
    """(secret, key, optional) for every secretKeyRef of every pod template."""
    refs = set()
    for doc in docs:
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in spec.get("containers") or []:
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"], bool(ref.get("optional"))))
    return refs


def check_build(name, docs, version):
    """What every build of the service must hold."""
    where = f"build {name}"
    for doc in docs:
        validate_object(doc, where, version)
        meta = doc.get("metadata") or {}
        if doc.get("kind") in CLUSTER_SCOPED:
            continue
        expect(
            meta.get("namespace") == NAMESPACE,
            where,
            f"{object_name(doc)} is not in namespace {NAMESPACE}",
        )
    expect(
        not [d for d in docs if d.get("kind") == "Secret"],
        where,
        "Secrets are referenced by name, never generated or inlined",
    )
    by_kind_name = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for d in docs}
    deployment = only(docs, "Deployment", where)
    if not deployment:
        return None
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    labels = pod["metadata"].get("labels") or {}
    containers = {c["name"]: c for c in spec["containers"]}
    container = containers.get("watchkeeper")
    if not expect(container, where, "a container named watchkeeper"):
        return None
    env = env_of(container)
    expect(
        (env.get("WATCHKEEPER_LISTEN") or {}).get("value") == "0.0.0.0:3000",
        where,
        "WATCHKEEPER_LISTEN=0.0.0.0:3000",
    )
    for var in SECRET_VARS & env.keys():
        expect(
            "secretKeyRef" in (env[var].get("valueFrom") or {}),
            where,
            f"{var} comes from a Secret (secretKeyRef), never a literal value",
        )
    expect("SLACK_BOT_TOKEN" in env, where, "SLACK_BOT_TOKEN is set from a Secret")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    expect(ports.get("http") == 3000, where, "container port `http` is 3000")
    probes = {
        probe: (container.get(probe) or {}).get("httpGet") or {}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    expect(probes["readinessProbe"].get("path") == "/readyz", where, "readiness on /readyz")
    expect(probes["livenessProbe"].get("path") == "/healthz", where, "liveness on /healthz")
    expect(probes["startupProbe"].get("path") == "/healthz", where, "startup on /healthz")
    for probe, get in probes.items():
        expect(get.get("port") in ("http", 3000), where, f"{probe} on the http port")
    pod_security = spec.get("securityContext") or {}
    security = container.get("securityContext") or {}
    expect(pod_security.get("runAsNonRoot") is True, where, "pod runAsNonRoot")
    expect(pod_security.get("runAsUser") == 10001, where, "pod runs as uid 10001 (the image's user)")
    expect(
        (pod_security.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
        where,
        "seccomp RuntimeDefault",
    )
    expect(security.get("readOnlyRootFilesystem") is True, where, "readOnlyRootFilesystem")
    expect(security.get("allowPrivilegeEscalation") is False, where, "no privilege escalation")
    expect(
        (security.get("capabilities") or {}).get("drop") == ["ALL"], where, "capabilities drop ALL"
    )
    expect(
        "memory" in ((container.get("resources") or {}).get("limits") or {}),
        where,
        "a memory limit",
    )
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for path in ("/etc/watchkeeper", "/var/lib/watchkeeper", "/tmp"):
        expect(path in mounts and mounts[path] in volumes, where, f"a volume mounted at {path}")
    config = volumes.get(mounts.get("/etc/watchkeeper"), {}).get("configMap") or {}
    expect(
        ("ConfigMap", config.get("name")) in by_kind_name,
        where,
        f"the config volume's ConfigMap {config.get('name')} is in the build",
    )
    account = spec.get("serviceAccountName")
    expect(("ServiceAccount", account) in by_kind_name, where, f"ServiceAccount {account}")
    for binding in [d for d in docs if d.get("kind") in ("RoleBinding", "ClusterRoleBinding")]:
        for subject in binding.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                expect(
                    (subject.get("name"), subject.get("namespace")) == (account, NAMESPACE),
                    where,
                    f"{object_name(binding)} binds {account} in {NAMESPACE}",
                )
    for role in [d for d in docs if d.get("kind") in ("Role", "ClusterRole")]:
        for rule in role.get("rules") or []:
            verbs = set(rule.get("verbs") or [])
            writes = verbs - {"get", "list", "watch"}
            if not writes:
                continue
            resources = set(rule.get("resources") or [])
            expect(
                writes == {"patch"}
                and rule.get("apiGroups") == ["apps"]
                and resources <= PLAYBOOK_PATCHES,
                where,
                f"{object_name(role)} writes only what playbook kubernetes actions patch "
                f"({sorted(PLAYBOOK_PATCHES)}); has {sorted(writes)} on {sorted(resources)}",
            )
    service = only(docs, "Service", where)
    if service:
        selector = service["spec"].get("selector") or {}
        expect(
            selector and selector.items() <= labels.items(), where, "the Service selects the pods"
        )
        for port in service["spec"].get("ports") or []:
            expect(port.get("targetPort") in ports, where, "the Service targets a named pod port")
    pdb = only(docs, "PodDisruptionBudget", where)
    if pdb:
        match = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
        expect(match and match.items() <= labels.items(), where, "the PDB selects the pods")
    return deployment


def check_single_sqlite(docs, deployment):
    where = "build overlays/single-sqlite"
    spec = deployment["spec"]
    expect(spec.get("replicas") == 1, where, "exactly 1 replica (SQLite has one writer)")
    expect((spec.get("strategy") or {}).get("type") == "Recreate", where, "strategy Recreate")
    container = spec["template"]["spec"]["containers"][0]
    url = (env_of(container).get("WATCHKEEPER_DATABASE_URL") or {}).get("value", "")
    expect(
        url.startswith("sqlite:///var/lib/watchkeeper/"),
        where,
        f"the SQLite file is on the data volume (got {url!r})",
    )
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    claim = (volumes.get("data", {}).get("persistentVolumeClaim") or {}).get("claimName")
    expect(
        ("PersistentVolumeClaim", claim) in {(d["kind"], d["metadata"]["name"]) for d in docs},
        where,
        f"the data volume is the PersistentVolumeClaim in the build ({claim})",
    )
    expect("emptyDir" not in volumes.get("data", {}), where, "the data volume is not an emptyDir")


def check_ha_postgres(docs, deployment):
    where = "build overlays/ha-postgres"
    spec = deployment["spec"]
    expect(spec.get("replicas") == 3, where, "3 replicas")
    container = spec["template"]["spec"]["containers"][0]
    url = env_of(container).get("WATCHKEEPER_DATABASE_URL") or {}
    ref = (url.get("valueFrom") or {}).get("secretKeyRef") or {}
    expect(
        (ref.get("name"), ref.get("key"), ref.get("optional", False))
        == ("watchkeeper-database", "url", False),
        where,
        "WATCHKEEPER_DATABASE_URL from Secret watchkeeper-database, key url (required)",
    )
    pdb = only(docs, "PodDisruptionBudget", where)
    if pdb:
        expect(pdb["spec"].get("minAvailable") == 2, where, "PDB minAvailable 2")
        expect("maxUnavailable" not in pdb["spec"], where, "PDB has only minAvailable")
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    expect("emptyDir" in volumes.get("data", {}), where, "var/ on an emptyDir per pod")


def with_components(overlay):
    """The overlay's kustomization with its commented `components:` enabled,
    in a copy of deploy/kubernetes; returns the copy's overlay folder."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="watchkeeper-deploy-"))
    shutil.copytree(K8S, tmp / "kubernetes")
    path = tmp / "kubernetes" / "overlays" / overlay / "kustomization.yaml"
    lines = path.read_text().splitlines()
    enabled = []
    for line in lines:
        if re.match(r"^# components:\s*$", line) or re.match(r"^#   - \.\./\.\./extras/", line):
            line = line[2:]
        enabled.append(line)
    text = "\n".join(enabled) + "\n"
    expect(text != path.read_text(), f"overlays/{overlay}", "has a commented components: block")
    path.write_text(text)
    return tmp, path.parent


def check_builds(version):
    all_refs = set()
    for name, directory in [("base", K8S / "base")] + [
        (f"overlays/{o}", K8S / "overlays" / o) for o in OVERLAYS
    ]:
        print(f"== kubectl kustomize deploy/kubernetes/{name}")
        before = len(failures)
        output = kustomize(directory)
        if output is None:
            continue
        counts["builds"] += 1
        docs = load_all(output, f"build {name}")
        deployment = check_build(name, docs, version)
        all_refs |= secret_refs(docs)
        if deployment and name == "overlays/single-sqlite":
            check_single_sqlite(docs, deployment)
        if deployment and name == "overlays/ha-postgres":
            check_ha_postgres(docs, deployment)
        if len(failures) == before:
            print(f"ok   {len(docs)} objects: " + ", ".join(object_name(d) for d in docs))

    for overlay in OVERLAYS:
        name = f"overlays/{overlay} + extras/ingress + extras/servicemonitor"
        print(f"== kubectl kustomize deploy/kubernetes/{name}")
        before = len(failures)
        tmp, directory = with_components(overlay)
        try:
            output = kustomize(directory)
        finally:
            shutil.rmtree(tmp)
        if output is None:
            continue
        counts["builds"] += 1
        docs = load_all(output, f"build {name}")
        check_build(name, docs, version)
        kinds = {d.get("kind") for d in docs}
        expect({"Ingress", "ServiceMonitor"} <= kinds, name, "the components add their objects")
        for ingress in [d for d in docs if d.get("kind") == "Ingress"]:
            paths = {
                p["path"]
                for rule in ingress["spec"].get("rules") or []
                for p in (rule.get("http") or {}).get("paths") or []
            }
            expect(
                paths == {"/slack/", "/webhooks/github"},
                name,
                f"the Ingress exposes only /slack/ and /webhooks/github (got {sorted(paths)})",
            )
        if len(failures) == before:
            print(f"ok   {len(docs)} objects, Ingress and ServiceMonitor in {NAMESPACE}")
    return all_refs


def check_documented_secrets(refs):
    """Every Secret key the manifests read appears in README.md's
    `kubectl create secret generic NAME ...` command for that Secret."""
    print("== Secrets referenced by the manifests, as created in README.md")
    where = "README.md"
    doc = ROOT / "README.md"
    if not expect(doc.is_file(), where, "missing"):
        return
    text = doc.read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n", " ", block)
        commands += [line for line in joined.splitlines() if "create secret generic" in line]
    for secret, key, optional in sorted(refs):
        creating = [c for c in commands if re.search(rf"create secret generic {secret}(\s|$)", c)]
        documented = any(re.search(rf"--from-(literal|file)={re.escape(key)}=", c) for c in creating)
        if expect(documented, where, f"no `kubectl create secret generic {secret} --from-…={key}=…`"):
            print(f"ok   {secret}/{key}" + (" (optional)" if optional else ""))


def structural(schema, where, inside_combinator=False):
    """Kubernetes' structural schema rules that a generated schema can break:
    every node has a type (or preserves unknown fields), and nodes under
    oneOf/anyOf/allOf/not set no type, default or nullable of their own."""
    keep = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string")
    if inside_combinator:
        for key in ("type", "default", "nullable", "additionalProperties"):
            expect(key not in schema, where, f"`{key}` inside oneOf/anyOf/allOf is not structural")
    elif not keep:
        expect("type" in schema, where, "no type (a structural schema needs one, or x-kubernetes-preserve-unknown-fields)")
    for name, sub in (schema.get("properties") or {}).items():
        structural(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        structural(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        structural(schema["additionalProperties"], f"{where}{{}}")
    for combinator in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(schema.get(combinator) or []):
            structural(sub, f"{where}/{combinator}[{i}]", inside_combinator=True)


def check_crd():
    """The Playbook CRD (validated as a Kubernetes object with the other
    files) has a structural schema, and every example playbook fits it."""
    print("== Playbook CRD")
    where = rel(CRD)
    if not expect(CRD.is_file(), where, "missing: watchkeeper crd > " + where):
        return
    docs = load_all(CRD.read_text(), where)
    crd = only(docs, "CustomResourceDefinition", where)
    if not crd:
        return
    expect(crd["metadata"]["name"] == "playbooks.watchkeeper.dev", where, "named playbooks.watchkeeper.dev")
    versions = crd["spec"].get("versions") or []
    expect(len(versions) == 1 and versions[0].get("served") and versions[0].get("storage"), where, "one served, stored version")
    schema = versions[0]["schema"]["openAPIV3Schema"]
    before = len(failures)
    structural(schema, f"{where}: openAPIV3Schema")
    spec_schema = schema["properties"]["spec"]
    validator = jsonschema.Draft202012Validator(spec_schema)
    checked = 0
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        for doc in load_all(path.read_text(), rel(path)):
            checked += 1
            for err in validator.iter_errors(doc):
                fail(rel(path), f"{'.'.join(str(p) for p in err.path)}: {err.message} (CRD schema)")
    expect(checked > 0, rel(PLAYBOOKS), "no example playbooks to validate against the CRD")
    if len(failures) == before:
        print(f"ok   {where}: structural; {checked} example playbooks fit its schema")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubernetes-version", required=True)
    version = parser.parse_args().kubernetes_version
    check_files(version)
    refs = check_builds(version)
    check_documented_secrets(refs)
    check_crd()
    if failures:
        print(f"deploy/check: {len(failures)} problem(s)")
        return 1
    print(
        f"deploy/check: ok — {counts['files']} YAML files, {counts['builds']} builds, "
        f"{counts['objects']} objects valid for Kubernetes {version}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

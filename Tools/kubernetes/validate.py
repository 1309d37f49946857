#!/usr/bin/env python3
"""Check what `faultline export kubernetes` wrote, offline, as a cluster would.

    python3 Tools/kubernetes/validate.py DIR [--kubernetes-version 1.31.0]

- Every built-in object (Namespace, Secret, ConfigMap, Service, StatefulSet, Job) against the Kubernetes
  OpenAPI schema of the stated version, strictly (no unknown fields), with kubernetes-validate (PyPI).
- Every Chaos Mesh object against chaos-mesh-v1alpha1.schema.json (written from Chaos Mesh's documented
  v1alpha1 API: action, mode, selector, direction, target, delay, loss, duplicate, bandwidth, duration,
  templates, deadline, ...), and each Workflow Task's container as a Pod, strictly, like the built-ins.
- What no schema can say: the Workflow's entry and children exist, every template is reachable and none
  is its own ancestor, no branch outlasts the entry's deadline, percentages are at most 100, every pod a
  selector names is a pod some StatefulSet makes; every projected item's key is in its ConfigMap or
  Secret; every StatefulSet has its headless Service; every node config in the ConfigMap parses, and
  each of its peers is a pod of a StatefulSet whose Service publishes its DNS name; the kustomization
  lists every file.

Prints one line per problem (file: kind/name: where: what) and exits 1 if there was any, else prints a
summary and exits 0. Needs PyYAML, jsonschema and kubernetes-validate (pip install kubernetes-validate).
"""
import argparse
import json
import os
import re
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHAOS_API = "chaos-mesh.org/v1alpha1"


def go_duration_ms(text):
    total = 0.0
    for number, unit in re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]
    return total


class Checker:
    def __init__(self, folder, version):
        self.folder = folder
        self.version = version
        self.problems = []
        self.counts = {}
        self.objects = []  # (file, object)

    def problem(self, file, obj, where, what):
        kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
        name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj, dict) else "?"
        self.problems.append(f"{file}: {kind}/{name}: {where}: {what}")

    def load(self):
        kustomization = os.path.join(self.folder, "kustomization.yaml")
        if not os.path.exists(kustomization):
            self.problems.append(f"{self.folder}: no kustomization.yaml")
            return
        with open(kustomization) as f:
            listed = (yaml.safe_load(f) or {}).get("resources", [])
        present = sorted(n for n in os.listdir(self.folder) if n.endswith(".yaml") and n != "kustomization.yaml")
        for name in present:
            if name not in listed:
                self.problems.append(f"kustomization.yaml: resources: {name} is in the folder but not listed")
        for name in listed:
            path = os.path.join(self.folder, name)
            if not os.path.exists(path):
                self.problems.append(f"kustomization.yaml: resources: {name} does not exist")
                continue
            with open(path) as f:
                try:
                    docs = [d for d in yaml.safe_load_all(f) if d is not None]
                except yaml.YAMLError as error:
                    self.problems.append(f"{name}: not YAML: {error}")
                    continue
            for doc in docs:
                self.objects.append((name, doc))

    def builtin(self, file, obj):
        try:
            kubernetes_validate.validate(obj, self.version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.absolute_path)
            self.problem(file, obj, path or "(object)", error.message)
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError,
                kubernetes_validate.VersionNotSupportedError) as error:
            self.problem(file, obj, "kind", error.message)

    def run(self):
        self.load()
        with open(os.path.join(HERE, "chaos-mesh-v1alpha1.schema.json")) as f:
            chaos_schema = json.load(f)
        chaos = jsonschema.Draft202012Validator(chaos_schema)
        by_kind = {}
        for file, obj in self.objects:
            if not isinstance(obj, dict):
                self.problems.append(f"{file}: a document is not an object")
                continue
            by_kind.setdefault(obj.get("kind"), []).append((file, obj))
            self.counts[obj.get("kind")] = self.counts.get(obj.get("kind"), 0) + 1
            if obj.get("apiVersion") == CHAOS_API:
                for error in sorted(chaos.iter_errors(obj), key=lambda e: list(e.absolute_path)):
                    path = ".".join(str(p) for p in error.absolute_path)
                    self.problem(file, obj, path or "(object)", error.message)
            else:
                self.builtin(file, obj)
        self.cross_checks(by_kind)
        return self.problems

    def cross_checks(self, by_kind):
        namespaces = {o["metadata"]["name"] for _, o in by_kind.get("Namespace", [])}
        services = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for _, o in by_kind.get("Service", [])}
        configmaps = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for _, o in by_kind.get("ConfigMap", [])}
        secrets = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for _, o in by_kind.get("Secret", [])}
        pods = {}  # (namespace, pod) -> statefulset name
        for file, obj in self.objects:
            ns = (obj.get("metadata") or {}).get("namespace")
            if obj.get("kind") != "Namespace" and ns not in namespaces:
                self.problem(file, obj, "metadata.namespace", f"'{ns}' is not a Namespace of the export")
        for file, sts in by_kind.get("StatefulSet", []):
            ns, name = sts["metadata"].get("namespace"), sts["metadata"]["name"]
            spec = sts.get("spec", {})
            service = services.get((ns, spec.get("serviceName")))
            if service is None:
                self.problem(file, sts, "spec.serviceName", f"no Service '{spec.get('serviceName')}'")
            else:
                if service["spec"].get("clusterIP") != "None":
                    self.problem(file, sts, "spec.serviceName", "its Service is not headless (clusterIP: None)")
                selector = service["spec"].get("selector", {})
                labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
                if any(labels.get(k) != v for k, v in selector.items()):
                    self.problem(file, sts, "spec.template.metadata.labels", "the Service's selector does not match the pods")
            for i in range(spec.get("replicas", 1)):
                pods[(ns, f"{name}-{i}")] = name
            self.check_volumes(file, sts, spec.get("template", {}).get("spec", {}), ns, configmaps, secrets)
        for file, job in by_kind.get("Job", []):
            self.check_volumes(file, job, job["spec"]["template"]["spec"], job["metadata"].get("namespace"),
                               configmaps, secrets)
        # Node configs: JSON, and every peer a pod with a published DNS name.
        for file, cm in by_kind.get("ConfigMap", []):
            for key, text in (cm.get("data") or {}).items():
                if not (key.startswith("node.") and key.endswith(".json")):
                    continue
                try:
                    config = json.loads(text)
                except ValueError as error:
                    self.problem(file, cm, f"data.{key}", f"not JSON: {error}")
                    continue
                peers = config.get("peers", [])
                if config.get("peersFile"):
                    listed = json.loads((cm.get("data") or {}).get(os.path.basename(config["peersFile"]), "[]"))
                    if not any(p.get("name") == config.get("name") for p in listed):
                        self.problem(file, cm, f"data.{key}.peersFile", f"{config['peersFile']} does not list {config.get('name')}")
                    peers = [p for p in listed if p.get("name") != config.get("name")]
                for peer in peers:
                    host = peer.get("host", "")
                    pod, _, service = host.partition(".")
                    ns = cm["metadata"].get("namespace")
                    if pods.get((ns, pod)) != service or (ns, service) not in services:
                        self.problem(file, cm, f"data.{key}.peers.{peer.get('name')}", f"'{host}' is no pod of a StatefulSet behind Service '{service}'")
                    elif not services[(ns, service)]["spec"].get("publishNotReadyAddresses"):
                        self.problem(file, cm, f"data.{key}", f"Service {service} publishes only ready pods: peers cannot find each other before they are ready")
        for file, wf in by_kind.get("Workflow", []):
            self.check_workflow(file, wf, pods)

    def check_volumes(self, file, obj, pod_spec, ns, configmaps, secrets):
        for volume in pod_spec.get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                for kind, store, field in (("configMap", configmaps, "data"), ("secret", secrets, "stringData")):
                    if kind not in source:
                        continue
                    ref = source[kind]
                    target = store.get((ns, ref.get("name")))
                    if target is None:
                        self.problem(file, obj, f"volumes.{volume['name']}", f"no {kind} '{ref.get('name')}'")
                        continue
                    for item in ref.get("items", []):
                        if item["key"] not in (target.get(field) or {}):
                            self.problem(file, obj, f"volumes.{volume['name']}.{kind}.items", f"no key '{item['key']}' in {ref['name']}")

    def check_workflow(self, file, wf, pods):
        spec = wf.get("spec", {})
        templates = spec.get("templates", [])
        names = [t.get("name") for t in templates]
        by_name = {t.get("name"): t for t in templates}
        for name in {n for n in names if names.count(n) > 1}:
            self.problem(file, wf, "spec.templates", f"template name '{name}' is used twice")
        if spec.get("entry") not in by_name:
            self.problem(file, wf, "spec.entry", f"'{spec.get('entry')}' is no template")
            return
        for t in templates:
            for child in t.get("children", []):
                if child not in by_name:
                    self.problem(file, wf, f"templates.{t['name']}.children", f"'{child}' is no template")
        reached, stack = set(), [(spec["entry"], ())]
        while stack:
            name, ancestors = stack.pop()
            if name in ancestors:
                self.problem(file, wf, f"templates.{name}", "is its own ancestor")
                continue
            reached.add(name)
            for child in by_name.get(name, {}).get("children", []):
                if child in by_name:
                    stack.append((child, ancestors + (name,)))
        for name in names:
            if name not in reached:
                self.problem(file, wf, f"templates.{name}", "is never reached from the entry")

        def length(name, seen=()):
            t = by_name.get(name, {})
            if name in seen:
                return 0
            own = go_duration_ms(t["deadline"]) if "deadline" in t else 0
            kids = [length(c, seen + (name,)) for c in t.get("children", []) if c in by_name]
            if t.get("templateType") == "Serial":
                inner = sum(kids)
            elif t.get("templateType") == "Parallel":
                inner = max(kids, default=0)
            else:
                inner = 0
            return max(own, inner) if t.get("templateType") not in ("Serial", "Parallel") else inner
        entry = by_name[spec["entry"]]
        if "deadline" in entry:
            needed = length(spec["entry"])
            if needed > go_duration_ms(entry["deadline"]):
                self.problem(file, wf, f"templates.{entry['name']}.deadline",
                             f"{entry['deadline']} is shorter than its children take ({int(needed)} ms)")
        ns = wf["metadata"].get("namespace")
        for t in templates:
            for kind in ("networkChaos", "podChaos", "timeChaos"):
                chaos = t.get(kind)
                if not chaos:
                    continue
                for where, selector in (("selector", chaos.get("selector", {})),
                                        ("target.selector", (chaos.get("target") or {}).get("selector", {}))):
                    for pod_ns, names in (selector.get("pods") or {}).items():
                        for pod in names:
                            if (pod_ns, pod) not in pods:
                                self.problem(file, wf, f"templates.{t['name']}.{kind}.{where}.pods",
                                             f"'{pod_ns}/{pod}' is no pod of a StatefulSet")
                        if pod_ns != ns:
                            self.problem(file, wf, f"templates.{t['name']}.{kind}.{where}.pods",
                                         f"namespace '{pod_ns}' is not the Workflow's '{ns}'")
                for field, key in (("loss", "loss"), ("duplicate", "duplicate"), ("corrupt", "corrupt")):
                    value = (chaos.get(field) or {}).get(key)
                    if value is not None and float(value) > 100:
                        self.problem(file, wf, f"templates.{t['name']}.{kind}.{field}", f"{value} is over 100 percent")
            task = t.get("task")
            if task and isinstance(task.get("container"), dict):
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": t["name"], "namespace": ns},
                       "spec": {"restartPolicy": "Never", "containers": [task["container"]],
                                "volumes": task.get("volumes", [])}}
                before = len(self.problems)
                self.builtin(file, pod)
                for i in range(before, len(self.problems)):
                    self.problems[i] = self.problems[i].replace(f"Pod/{t['name']}", f"Workflow/{wf['metadata']['name']}: task {t['name']} as a Pod")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--kubernetes-version", default="1.31.0")
    args = parser.parse_args()
    checker = Checker(args.folder, args.kubernetes_version)
    problems = checker.run()
    for line in problems:
        print(line)
    if problems:
        print(f"{args.folder}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(checker.counts.items()))
    print(f"{args.folder}: ok ({kinds}; Kubernetes {args.kubernetes_version} strict, Chaos Mesh v1alpha1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Every deployment manifest is accepted by a real kube-apiserver (1.20, test/cluster):
`kubectl apply --dry-run=server` of the sidecar manifests and of the Helm chart rendered for each
documented values file (each with its NetworkPolicy and system:auth-delegator binding), with kubectl's schema validation (unknown fields are errors) and the
server's own validation and defaulting. The server's answer must keep every field we sent: an
apiserver silently drops fields it does not know (a newer API, a feature gate that is off)."""
import glob
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402

# Fields the server rewrites in a way that is not a loss.
QUANTITY_EQUIVALENTS = {("1", 1), (1, "1"), ("2", 2), (2, "2")}


def missing_fields(sent, returned, path=""):
    """Every path in `sent` that `returned` lacks or changed (a subset check)."""
    if isinstance(sent, dict):
        if not isinstance(returned, dict):
            return [path or "."]
        problems = []
        for key, value in sent.items():
            if key not in returned:
                problems.append("%s.%s" % (path, key))
            else:
                problems += missing_fields(value, returned[key], "%s.%s" % (path, key))
        return problems
    if isinstance(sent, list):
        if not isinstance(returned, list) or len(returned) != len(sent):
            return [path]
        problems = []
        for i, (a, b) in enumerate(zip(sent, returned)):
            problems += missing_fields(a, b, "%s[%d]" % (path, i))
        return problems
    if sent != returned and (sent, returned) not in QUANTITY_EQUIVALENTS:
        return ["%s (sent %r, got %r)" % (path, sent, returned)]
    return []


def dry_run(cluster, path, label):
    """Applies `path` with --dry-run=server; checks each object came back whole."""
    with open(path) as f:
        sent = [d for d in yaml.safe_load_all(f) if d]
    result = cluster.kubectl("apply", "--dry-run=server", "-o", "json", "-f", path)
    answer = yaml.safe_load(result.stdout)
    returned = answer["items"] if answer.get("kind") == "List" else [answer]
    lib.check(len(returned) == len(sent), "%s: sent %d objects, the server answered %d" % (
        label, len(sent), len(returned)))
    by_key = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o
              for o in returned}
    for obj in sent:
        key = (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        lib.check(key in by_key, "%s: no answer for %s among %s" % (label, key, sorted(by_key)))
        lost = missing_fields(obj, by_key[key])
        lib.check(not lost, "%s: the apiserver dropped or changed %s in %s/%s" % (
            label, ", ".join(lost), obj["kind"], obj["metadata"]["name"]))
    print("ok   %-40s %d objects accepted (server dry run)" % (label, len(sent)))
    return sent


def main():
    cluster = lib.Cluster()
    try:
        work = lib.work_dir()
        for namespace in ("informerd", "team-a"):
            cluster.ensure_namespace(namespace)

        # The sidecar form: each file, as a user applies them.
        sidecar_files = sorted(glob.glob(lib.SIDECAR + "/*.yaml"))
        lib.check(len(sidecar_files) == 3, "expected 3 sidecar manifests, found %s" % sidecar_files)
        kinds = []
        for path in sidecar_files:
            kinds += [o["kind"] for o in dry_run(cluster, path, path)]
        lib.check(sorted(kinds) == ["ConfigMap", "Deployment", "Role", "RoleBinding",
                                    "ServiceAccount"], "sidecar kinds: %s" % kinds)

        # The chart, for each documented values file, rendered for this cluster's API versions
        # (as helm install asks the cluster): a PodDisruptionBudget is policy/v1beta1 on 1.20.
        api_versions = cluster.kubectl("api-versions").stdout.split()
        for name, values, release, namespace in lib.RENDERINGS:
            text, documents = lib.render_documents(values, release, namespace, api_versions)
            path = os.path.join(work, "chart-%s.yaml" % name)
            with open(path, "w") as f:
                f.write(text)
            sent = dry_run(cluster, path, "chart (%s values)" % name)
            lib.check({"ServiceAccount", "ConfigMap", "Service", "Deployment", "NetworkPolicy",
                       "ClusterRoleBinding"} <= {o["kind"] for o in sent},
                      "chart (%s): kinds %s" % (name, [o["kind"] for o in sent]))
            lib.check(any(o["kind"] == "ClusterRoleBinding" and
                          o["roleRef"]["name"] == "system:auth-delegator" for o in sent),
                      "chart (%s): no system:auth-delegator binding" % name)
            if name == "replicas":
                lib.check({"PodDisruptionBudget"} <= {o["kind"] for o in sent} and
                          sum(1 for o in sent if o["kind"] == "Service") == 2,
                          "chart (replicas): kinds %s" % [o["kind"] for o in sent])

        # The checks above can fail: a typo'd field is refused by kubectl's schema validation,
        # and an invalid object by the server.
        _, documents = lib.render_documents([], "informerd", "informerd")
        deployment = next(o for _, o, _ in documents if o["kind"] == "Deployment")
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbee"] = {}
        bad = os.path.join(work, "typo.yaml")
        with open(bad, "w") as f:
            yaml.safe_dump(deployment, f)
        result = cluster.kubectl("apply", "--dry-run=server", "-f", bad, check=False)
        lib.check(result.returncode != 0 and "readinessProbee" in result.stderr,
                  "a misspelled field was accepted: %s%s" % (result.stdout, result.stderr))
        del deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbee"]
        deployment["spec"]["template"]["metadata"]["labels"] = {"other": "labels"}
        with open(bad, "w") as f:
            yaml.safe_dump(deployment, f)
        result = cluster.kubectl("apply", "--dry-run=server", "-f", bad, check=False)
        lib.check(result.returncode != 0 and "selector" in result.stderr,
                  "a Deployment whose selector matches no pod was accepted: %s%s" % (
                      result.stdout, result.stderr))
        print("ok   invalid manifests are refused (schema and server validation)")
    finally:
        cluster.stop()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()

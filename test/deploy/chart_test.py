#!/usr/bin/python3
"""The Helm chart's renderings, read as Kubernetes would read them: for the default values and
every example values file, the RBAC is exactly get/list/watch on the configured resources in their
scope, the ConfigMap holds exactly the configured informers, and the Deployment is wired together
(ports, probes, config mount, ServiceAccount, hardening). Also the sidecar manifests' wiring and
the chart's refusal of values it cannot turn into RBAC. (Applying them to a real apiserver:
manifests_dry_run_test and rbac_test.)"""
import glob
import os
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    found = of_kind(objects, kind)
    assert len(found) == 1, "expected one %s, found %d" % (kind, len(found))
    return found[0]


def rule_of(resource):
    plural, _, group = resource.partition(".")
    return {"apiGroups": [group], "resources": [plural], "verbs": ["get", "list", "watch"]}


def render(values_text=None, release="informerd", namespace="informerd"):
    files = []
    if values_text is not None:
        handle, path = tempfile.mkstemp(suffix=".yaml", dir=os.environ.get("TEST_TMPDIR"))
        with os.fdopen(handle, "w") as f:
            f.write(values_text)
        files.append(path)
    return [o for _, o, _ in lib.render_documents(files, release, namespace)[1]]


def chart_values(values_files):
    values = {}
    for path in [lib.CHART + "/values.yaml"] + list(values_files):
        with open(path) as f:
            values = lib.render.merge_values(values, yaml.safe_load(f))
    return values


class Renderings(unittest.TestCase):
    def check_rendering(self, values_files, release, namespace):
        values = chart_values(values_files)
        objects = [o for _, o, _ in lib.render_documents(values_files, release, namespace)[1]]
        informers = values["informers"]
        account = one(objects, "ServiceAccount")["metadata"]["name"]
        self.assertEqual(account, values["serviceAccount"]["name"] or release)

        # The configuration is the values' informers (and config keys), verbatim.
        config = yaml.safe_load(one(objects, "ConfigMap")["data"]["informerd.yaml"])
        self.assertEqual(config, dict(values["config"], resources=informers))

        # RBAC: one ClusterRole rule per cluster-wide informer, one Role per namespaced one.
        cluster_wide = [i for i in informers if not i.get("namespace")]
        namespaced = [i for i in informers if i.get("namespace")]
        if cluster_wide:
            role = one(objects, "ClusterRole")
            self.assertEqual(role["rules"], [rule_of(i["resource"]) for i in cluster_wide])
            binding = one(objects, "ClusterRoleBinding")
            self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                  "kind": "ClusterRole",
                                                  "name": role["metadata"]["name"]})
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": account,
                                                    "namespace": namespace}])
        else:
            self.assertEqual(of_kind(objects, "ClusterRole") + of_kind(objects, "ClusterRoleBinding"), [])
        roles = {r["metadata"]["name"]: r for r in of_kind(objects, "Role")}
        bindings = of_kind(objects, "RoleBinding")
        self.assertEqual(len(roles), len(namespaced))
        self.assertEqual(len(bindings), len(namespaced))
        granted = []
        for binding in bindings:
            role = roles[binding["roleRef"]["name"]]
            self.assertEqual(binding["roleRef"]["kind"], "Role")
            self.assertEqual(binding["metadata"]["namespace"], role["metadata"]["namespace"])
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": account,
                                                    "namespace": namespace}])
            [rule] = role["rules"]
            granted.append((role["metadata"]["namespace"], rule))
        self.assertEqual(sorted(map(str, granted)), sorted(
            str((i["namespace"], rule_of(i["resource"]))) for i in namespaced))

        # The Deployment: hardening, probes, ports, config mount, identity.
        deployment = one(objects, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], account)
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
        [container] = pod["containers"]
        security = container["securityContext"]
        self.assertEqual(security["allowPrivilegeEscalation"], False)
        self.assertEqual(security["readOnlyRootFilesystem"], True)
        self.assertEqual(security["runAsNonRoot"], True)
        self.assertEqual(security["capabilities"], {"drop": ["ALL"]})
        self.assertEqual(set(container["resources"]), {"requests", "limits"})
        self.assertEqual(container["image"], "%s:%s" % (values["image"]["repository"],
                                                        values["image"]["tag"] or "0.1.0"))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports, {"grpc": 50051, "metrics": 9090})
        args = dict(a.split("=", 1) for a in container["args"])
        self.assertEqual(args["--listen"], "0.0.0.0:%d" % ports["grpc"])
        # Plaintext on the pod's address is refused unless asked for (TLS is not set up yet).
        self.assertEqual(args["--insecure-allow-plaintext"], "true")
        self.assertEqual(args["--metrics-listen"], "0.0.0.0:%d" % ports["metrics"])
        self.assertEqual(container["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        self.assertEqual(container["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        mount_dir, key = os.path.split(args["--config"])
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == mount_dir)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        config_map = one(objects, "ConfigMap")
        self.assertEqual(volume["configMap"]["name"], config_map["metadata"]["name"])
        self.assertIn(key, config_map["data"])
        self.assertEqual(pod["terminationGracePeriodSeconds"], 15)

        # The Service selects the pods and targets their named ports.
        service = one(objects, "Service")
        self.assertEqual(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(set(service["spec"]["selector"].items()) <= set(labels.items()))
        self.assertEqual({p["targetPort"] for p in service["spec"]["ports"]}, set(ports))
        for obj in objects:
            if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
                self.assertEqual(obj["metadata"]["namespace"], namespace, obj["kind"])
        return objects

    def test_default_values(self):
        objects = self.check_rendering([], "informerd", "informerd")
        self.assertEqual(of_kind(objects, "Role"), [])

    def test_namespaced_example_has_no_cluster_wide_permission(self):
        objects = self.check_rendering([lib.EXAMPLES + "/namespaced.yaml"], "informerd-team-a", "team-a")
        self.assertEqual(len(of_kind(objects, "Role")), 3)

    def test_crd_example(self):
        objects = self.check_rendering([lib.EXAMPLES + "/crd.yaml"], "informerd-crd", "informerd")
        self.assertIn(rule_of("widgets.example.informerd.io"), one(objects, "ClusterRole")["rules"])
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertEqual(pod["tolerations"][0]["key"], "dedicated")
        self.assertEqual(pod["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertEqual(pod["containers"][0]["resources"]["limits"]["memory"], "1Gi")

    def test_every_example_values_file_is_tested(self):
        documented = sorted(f for _, files, _, _ in lib.RENDERINGS for f in files)
        self.assertEqual(documented, sorted(glob.glob(lib.EXAMPLES + "/*.yaml")))

    def test_a_changed_configuration_changes_the_pod_template(self):
        def checksum(values):
            return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"]
        self.assertNotEqual(checksum(None), checksum("informers: [{resource: pods}]\n"))
        self.assertNotEqual(checksum(None), checksum("config: {maxObjectBytes: 65536}\n"))
        self.assertEqual(checksum(None), checksum("logLevel: debug\n"))

    def test_options(self):
        objects = render("rbac: {create: false}\nserviceAccount: {create: false, name: existing}\n"
                         "image: {tag: '9.9'}\nextraArgs: ['--context=x']\nimagePullSecrets: [{name: r}]\n")
        kinds = {o["kind"] for o in objects}
        self.assertEqual(kinds, {"ConfigMap", "Service", "Deployment"})
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "existing")
        self.assertEqual(pod["containers"][0]["image"], "informerd:9.9")
        self.assertEqual(pod["containers"][0]["args"][-1], "--context=x")
        self.assertEqual(pod["imagePullSecrets"], [{"name": "r"}])
        # An existing ServiceAccount still gets the chart's RBAC when rbac.create is on.
        objects = render("serviceAccount: {create: false, name: existing}\n")
        self.assertEqual(one(objects, "ClusterRoleBinding")["subjects"][0]["name"], "existing")

    def test_extra_rules_and_on_demand_informers(self):
        extra = {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list", "watch"]}
        objects = render("informers: [{resource: pods, namespace: a}]\nconfig: {allowOnDemand: true}\n"
                         "rbac: {extraRules: [%s]}\n" % yaml.safe_dump(extra, default_flow_style=True).strip())
        self.assertEqual(one(objects, "ClusterRole")["rules"], [extra])
        self.assertEqual(one(objects, "Role")["rules"], [rule_of("pods")])
        config = yaml.safe_load(one(objects, "ConfigMap")["data"]["informerd.yaml"])
        self.assertEqual(config, {"allowOnDemand": True, "resources": [{"resource": "pods",
                                                                        "namespace": "a"}]})
        objects = render("informers: []\nconfig: {allowOnDemand: true}\n")
        config = yaml.safe_load(one(objects, "ConfigMap")["data"]["informerd.yaml"])
        self.assertEqual(config, {"allowOnDemand": True, "resources": []})
        self.assertEqual(of_kind(objects, "ClusterRole"), [])

    def test_values_the_rbac_cannot_be_derived_from_are_refused(self):
        for values, message in (
                ("informers: [{resource: apps/v1/deployments}]\n", "plural.group"),
                ("informers: []\n", "list at least one resource")):
            with self.assertRaises(AssertionError) as raised:
                render(values)
            self.assertIn(message, str(raised.exception))


class Sidecar(unittest.TestCase):
    def test_wiring(self):
        objects = []
        for path in sorted(glob.glob(lib.SIDECAR + "/*.yaml")):
            with open(path) as f:
                objects += [o for o in yaml.safe_load_all(f) if o]
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        account = one(objects, "ServiceAccount")["metadata"]
        self.assertEqual(pod["serviceAccountName"], account["name"])
        containers = {c["name"]: c for c in pod["containers"]}
        self.assertEqual(set(containers), {"app", "informerd"})
        informerd = containers["informerd"]
        args = dict(a.split("=", 1) for a in informerd["args"])
        self.assertEqual(args["--listen"], "127.0.0.1:50051")  # the pod's loopback only
        self.assertEqual({e["name"]: e["value"] for e in containers["app"]["env"]},
                         {"INFORMERD_ADDRESS": "127.0.0.1:50051"})
        self.assertEqual(informerd["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        self.assertEqual(informerd["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        self.assertEqual(args["--metrics-listen"], "0.0.0.0:%d" % informerd["ports"][0]["containerPort"])
        for container in containers.values():
            self.assertEqual(container["securityContext"]["capabilities"], {"drop": ["ALL"]})
            self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
            self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        # The Role grants get/list/watch on exactly what the configuration watches, in its namespace.
        config_map = one(objects, "ConfigMap")
        mount = next(m for m in informerd["volumeMounts"]
                     if m["mountPath"] == os.path.dirname(args["--config"]))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        self.assertEqual(volume["configMap"]["name"], config_map["metadata"]["name"])
        config = yaml.safe_load(config_map["data"][os.path.basename(args["--config"])])
        role = one(objects, "Role")
        namespace = role["metadata"]["namespace"]
        self.assertEqual({i.get("namespace") for i in config["resources"]}, {namespace})
        [rule] = role["rules"]
        self.assertEqual(rule["apiGroups"], [""])
        self.assertEqual(rule["verbs"], ["get", "list", "watch"])
        self.assertEqual(sorted(rule["resources"]), sorted(i["resource"] for i in config["resources"]))
        binding = one(objects, "RoleBinding")
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": account["name"],
                                                "namespace": account["namespace"]}])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or not result.testsRun else 0)

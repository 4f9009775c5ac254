#!/usr/bin/python3
"""The Helm chart's renderings, read as Kubernetes would read them: for the default values and
every example values file, the RBAC is exactly get/list/watch on the configured resources in their
scope plus the system:auth-delegator binding, the ConfigMap holds exactly the configured
informers, and the Deployment is wired together (ports, probes on the probe port, config mount,
ServiceAccount, hardening, TLS from the Secret, Webhook authorization), with a NetworkPolicy in
front that admits no peer to the probe port. Also the
security values (TLS off, client CA, token audiences, the NetworkPolicy's peers or none), the
README's self-signed quick-start certificate, the sidecar manifests' wiring (a unix socket in a
shared emptyDir) and the chart's refusal of values it cannot turn into RBAC. (Applying them to a
real apiserver: manifests_dry_run_test and rbac_test.)"""
import glob
import os
import subprocess
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


def delegator_bindings(objects):
    return [b for b in of_kind(objects, "ClusterRoleBinding")
            if b["roleRef"]["name"] == "system:auth-delegator"]


def args_of(container):
    return dict(a.split("=", 1) for a in container["args"])


def volume_mounted_at(pod, container, directory):
    """The pod volume `container` mounts at `directory` (whole, not a subPath)."""
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
    assert "subPath" not in mount, mount
    return next(v for v in pod["volumes"] if v["name"] == mount["name"]), mount


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

        # informerd's callers are reviewed with its ServiceAccount: system:auth-delegator.
        [delegator] = delegator_bindings(objects)
        self.assertEqual(delegator["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                "kind": "ClusterRole",
                                                "name": "system:auth-delegator"})
        self.assertEqual(delegator["subjects"], [{"kind": "ServiceAccount", "name": account,
                                                  "namespace": namespace}])
        read_bindings = [b for b in of_kind(objects, "ClusterRoleBinding") if b is not delegator]

        # RBAC: one ClusterRole rule per cluster-wide informer, one Role per namespaced one.
        cluster_wide = [i for i in informers if not i.get("namespace")]
        namespaced = [i for i in informers if i.get("namespace")]
        if cluster_wide:
            role = one(objects, "ClusterRole")
            self.assertEqual(role["rules"], [rule_of(i["resource"]) for i in cluster_wide])
            [binding] = read_bindings
            self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                  "kind": "ClusterRole",
                                                  "name": role["metadata"]["name"]})
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": account,
                                                    "namespace": namespace}])
        else:
            self.assertEqual(of_kind(objects, "ClusterRole") + read_bindings, [])
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
        self.assertEqual(ports, {"grpc": 50051, "metrics": 9090, "probes": 9091})
        args = args_of(container)
        self.assertEqual(args["--listen"], "0.0.0.0:%d" % ports["grpc"])
        self.assertEqual(args["--metrics-listen"], "0.0.0.0:%d" % ports["metrics"])
        # The kubelet's probes on the probe port, which has connections of its own.
        self.assertEqual(args["--probe-listen"], "0.0.0.0:%d" % ports["probes"])
        # Every call is authorized by a SubjectAccessReview, whatever informerd's defaults.
        self.assertEqual(args["--authorization-mode"], "Webhook")
        self.check_tls(pod, container, values["tls"], release)
        self.assertEqual(container["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "probes"})
        self.assertEqual(container["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "probes"})
        mount_dir, key = os.path.split(args["--config"])
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == mount_dir)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        config_map = one(objects, "ConfigMap")
        self.assertEqual(volume["configMap"]["name"], config_map["metadata"]["name"])
        self.assertIn(key, config_map["data"])
        self.assertEqual(pod["terminationGracePeriodSeconds"], 15)

        # The Service selects the pods and targets their named ports, the probe port excepted: the
        # kubelet probes the pod itself, and nothing else needs it.
        services = {o["metadata"]["name"]: o for o in of_kind(objects, "Service")}
        self.assertEqual(set(services), {release} | (
            {release + "-headless"} if values["service"]["headless"] else set()))
        service = services[release]
        self.assertEqual(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(set(service["spec"]["selector"].items()) <= set(labels.items()))
        self.assertEqual({p["targetPort"] for p in service["spec"]["ports"]}, {"grpc", "metrics"})
        self.assertNotIn("clusterIP", service["spec"])
        self.check_replicas(objects, values, deployment, services.get(release + "-headless"))
        for obj in objects:
            if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
                self.assertEqual(obj["metadata"]["namespace"], namespace, obj["kind"])
        self.check_network_policy(objects, values["networkPolicy"], labels, ports)
        return objects

    def check_replicas(self, objects, values, deployment, headless):
        """Several replicas: the PodDisruptionBudget (only then), the preferred spread over nodes,
        and the headless Service when asked for."""
        replicas = values["replicaCount"]
        self.assertEqual(deployment["spec"]["replicas"], replicas)
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod = deployment["spec"]["template"]["spec"]
        if replicas > 1 and values["podDisruptionBudget"]["enabled"]:
            pdb = one(objects, "PodDisruptionBudget")
            self.assertEqual(pdb["spec"], {
                "maxUnavailable": values["podDisruptionBudget"]["maxUnavailable"],
                "selector": {"matchLabels": selector}})
        else:
            self.assertEqual(of_kind(objects, "PodDisruptionBudget"), [])
        if values["affinity"]:
            self.assertEqual(pod["affinity"], values["affinity"])
        elif replicas > 1 and values["podAntiAffinity"] == "preferred":
            self.assertEqual(pod["affinity"], {"podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100, "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector}}}]}})
        else:
            self.assertNotIn("affinity", pod)
        if headless is not None:
            # The pods' own addresses, for clients balancing with round_robin: the gRPC port only.
            self.assertEqual(headless["spec"]["clusterIP"], "None")
            self.assertEqual(headless["spec"]["selector"], selector)
            self.assertNotIn("publishNotReadyAddresses", headless["spec"])  # ready pods only
            self.assertEqual(headless["spec"]["ports"], [{
                "name": "grpc", "port": values["grpc"]["port"], "targetPort": "grpc",
                "protocol": "TCP", "appProtocol": "grpc"}])

    def check_tls(self, pod, container, tls, release):
        """TLS from the Secret, mounted whole, readable by informerd's group only; or plaintext,
        explicitly allowed."""
        args = args_of(container)
        if not tls["enabled"]:
            self.assertEqual(args["--insecure-allow-plaintext"], "true")
            for flag in ("--tls-cert-file", "--tls-private-key-file", "--client-ca-file"):
                self.assertNotIn(flag, args)
            self.assertEqual([v for v in pod["volumes"] if "secret" in v], [])
            return
        self.assertNotIn("--insecure-allow-plaintext", args)
        directory, cert = os.path.split(args["--tls-cert-file"])
        key_directory, key = os.path.split(args["--tls-private-key-file"])
        self.assertEqual(directory, key_directory)
        self.assertEqual(args["--tls-reload-interval"], tls["reloadInterval"])
        volume, mount = volume_mounted_at(pod, container, directory)
        self.assertTrue(mount["readOnly"])
        secret_name = tls["secretName"] or release + "-tls"
        self.assertEqual(volume["secret"], {
            "secretName": secret_name, "defaultMode": 0o440,
            "items": [{"key": "tls.crt", "path": cert}, {"key": "tls.key", "path": key}]})
        self.assertEqual((cert, key), ("tls.crt", "tls.key"))
        # Mode 0440 files are owned by the pod's fsGroup: informerd's group must be it.
        self.assertEqual(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"])
        if tls["clientCA"]["enabled"]:
            ca_directory, ca_file = os.path.split(args["--client-ca-file"])
            ca_volume, ca_mount = volume_mounted_at(pod, container, ca_directory)
            self.assertTrue(ca_mount["readOnly"])
            self.assertEqual(ca_volume["secret"], {
                "secretName": tls["clientCA"]["secretName"] or secret_name, "defaultMode": 0o440,
                "items": [{"key": tls["clientCA"]["key"], "path": ca_file}]})
        else:
            self.assertNotIn("--client-ca-file", args)

    def check_network_policy(self, objects, policy, pod_labels, ports):
        if not policy["enabled"]:
            self.assertEqual(of_kind(objects, "NetworkPolicy"), [])
            return
        network_policy = one(objects, "NetworkPolicy")
        spec = network_policy["spec"]
        # It applies to informerd's pods, and to nothing else.
        self.assertTrue(set(spec["podSelector"]["matchLabels"].items()) <= set(pod_labels.items()))
        self.assertEqual(spec["podSelector"]["matchLabels"], one(objects, "Deployment")["spec"][
            "selector"]["matchLabels"])
        self.assertEqual(spec["policyTypes"], ["Ingress"])
        self.assertEqual(spec["ingress"], [
            {"ports": [{"port": ports["grpc"], "protocol": "TCP"}], "from": policy["grpcFrom"]},
            {"ports": [{"port": ports["metrics"], "protocol": "TCP"}],
             "from": policy["metricsFrom"]},
        ] + policy["extraIngress"])
        for rule in spec["ingress"]:
            self.assertTrue(rule["from"], "an empty `from` admits every source")
            # The probe port is admitted for no peer: only the node (the kubelet), which a
            # NetworkPolicy always admits, reaches it.
            self.assertNotIn(ports["probes"], [p.get("port") for p in rule.get("ports", [])])

    def test_default_values(self):
        objects = self.check_rendering([], "informerd", "informerd")
        self.assertEqual(of_kind(objects, "Role"), [])
        # Secure by default: TLS from informerd-tls, a NetworkPolicy admitting gRPC from pods
        # labelled informerd-client=true in any namespace and metrics from "monitoring".
        container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        args = args_of(container)
        self.assertEqual(args["--tls-cert-file"], "/etc/informerd/tls/tls.crt")
        self.assertEqual(args["--tls-private-key-file"], "/etc/informerd/tls/tls.key")
        self.assertNotIn("--insecure-allow-plaintext", args)
        self.assertNotIn("--authentication-token-audiences", args)
        ingress = one(objects, "NetworkPolicy")["spec"]["ingress"]
        self.assertEqual(ingress[0]["from"], [{"namespaceSelector": {}, "podSelector": {
            "matchLabels": {"informerd-client": "true"}}}])
        self.assertEqual(ingress[1]["from"], [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}])

    def test_namespaced_example_has_no_cluster_wide_read_permission(self):
        objects = self.check_rendering([lib.EXAMPLES + "/namespaced.yaml"], "informerd-team-a", "team-a")
        self.assertEqual(len(of_kind(objects, "Role")), 3)
        # Cluster-wide, only the right to ask the apiserver about informerd's callers.
        self.assertEqual(of_kind(objects, "ClusterRole"), [])
        self.assertEqual(of_kind(objects, "ClusterRoleBinding"), delegator_bindings(objects))

    def test_mtls_example(self):
        objects = self.check_rendering([lib.EXAMPLES + "/mtls.yaml"], "informerd", "informerd")
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        args = args_of(pod["containers"][0])
        self.assertEqual(args["--client-ca-file"], "/etc/informerd/client-ca/ca.crt")
        self.assertEqual(args["--authentication-token-audiences"], "informerd")
        volume, _ = volume_mounted_at(pod, pod["containers"][0], "/etc/informerd/client-ca")
        self.assertEqual(volume["secret"]["secretName"], "informerd-cert")

    def test_crd_example(self):
        objects = self.check_rendering([lib.EXAMPLES + "/crd.yaml"], "informerd-crd", "informerd")
        self.assertIn(rule_of("widgets.example.informerd.io"), one(objects, "ClusterRole")["rules"])
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertEqual(pod["tolerations"][0]["key"], "dedicated")
        self.assertEqual(pod["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertEqual(pod["containers"][0]["resources"]["limits"]["memory"], "1Gi")

    def test_replicas_example(self):
        objects = self.check_rendering([lib.EXAMPLES + "/replicas.yaml"], "informerd-ha", "informerd")
        self.assertEqual(one(objects, "Deployment")["spec"]["replicas"], 3)
        self.assertEqual(one(objects, "PodDisruptionBudget")["apiVersion"], "policy/v1")
        self.assertIn("informerd-ha-headless", [o["metadata"]["name"] for o in of_kind(objects, "Service")])

    def test_one_replica_has_no_disruption_budget_spread_or_headless_service(self):
        objects = render()
        self.assertEqual(of_kind(objects, "PodDisruptionBudget"), [])
        self.assertNotIn("affinity", one(objects, "Deployment")["spec"]["template"]["spec"])
        self.assertEqual([o["metadata"]["name"] for o in of_kind(objects, "Service")], ["informerd"])
        # A headless Service works with one replica too.
        objects = render("service: {headless: true}\n")
        self.assertEqual(sorted(o["metadata"]["name"] for o in of_kind(objects, "Service")),
                         ["informerd", "informerd-headless"])
        self.assertEqual(of_kind(objects, "PodDisruptionBudget"), [])

    def test_replica_options(self):
        for values in ("replicaCount: 2\n", "replicaCount: 2\npodDisruptionBudget: {enabled: false}\n",
                       "replicaCount: 2\npodDisruptionBudget: {maxUnavailable: 2}\n",
                       "replicaCount: 2\npodAntiAffinity: ''\n",
                       "replicaCount: 4\naffinity: {nodeAffinity: {requiredDuringSchedulingIgnored"
                       "DuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: k, "
                       "operator: Exists}]}]}}}\n"):
            with self.subTest(values=values):
                path = os.path.join(lib.work_dir(), "values.yaml")
                with open(path, "w") as f:
                    f.write(values)
                self.check_rendering([path], "informerd", "informerd")
        with self.assertRaises(AssertionError) as raised:
            render("podAntiAffinity: required\n")
        self.assertIn('podAntiAffinity must be \"preferred\" or', str(raised.exception))

    def test_the_disruption_budget_follows_the_clusters_api_versions(self):
        """policy/v1 where the cluster serves it (1.21+, and helm template's default), else
        policy/v1beta1 (Kubernetes 1.20)."""
        path = os.path.join(lib.work_dir(), "values.yaml")
        with open(path, "w") as f:
            f.write("replicaCount: 2\n")
        for api_versions, expected in ((None, "policy/v1"),
                                       (["v1", "apps/v1", "policy/v1beta1", "policy/v1"], "policy/v1"),
                                       (["v1", "apps/v1", "policy/v1beta1"], "policy/v1beta1")):
            _, documents = lib.render_documents([path], "informerd", "informerd", api_versions)
            pdb = one([o for _, o, _ in documents], "PodDisruptionBudget")
            self.assertEqual(pdb["apiVersion"], expected, api_versions)

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
        self.assertEqual(kinds, {"ConfigMap", "Service", "Deployment", "NetworkPolicy"})
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "existing")
        self.assertEqual(pod["containers"][0]["image"], "informerd:9.9")
        self.assertEqual(pod["containers"][0]["args"][-1], "--context=x")
        self.assertEqual(pod["imagePullSecrets"], [{"name": "r"}])
        # An existing ServiceAccount still gets the chart's RBAC when rbac.create is on.
        objects = render("serviceAccount: {create: false, name: existing}\n")
        self.assertEqual([b["subjects"][0]["name"] for b in of_kind(objects, "ClusterRoleBinding")],
                         ["existing", "existing"])

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

    def test_tls_disabled_is_plaintext_asked_for_explicitly(self):
        objects = render("tls: {enabled: false}\n")
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.check_tls(pod, pod["containers"][0], {"enabled": False}, "informerd")
        self.assertEqual(args_of(pod["containers"][0])["--authorization-mode"], "Webhook")
        self.assertEqual(pod["containers"][0]["volumeMounts"],
                         [{"name": "config", "mountPath": "/etc/informerd", "readOnly": True},
                          {"name": "tmp", "mountPath": "/tmp"}])

    def test_tls_secret_names_and_client_ca(self):
        for values, secret, ca_secret, ca_key in (
                ("tls: {secretName: mine}\n", "mine", None, None),
                ("tls: {clientCA: {enabled: true}}\n", "informerd-tls", "informerd-tls", "ca.crt"),
                ("tls: {secretName: mine, clientCA: {enabled: true}}\n", "mine", "mine", "ca.crt"),
                ("tls: {clientCA: {enabled: true, secretName: clients, key: bundle.pem}}\n",
                 "informerd-tls", "clients", "bundle.pem")):
            pod = one(render(values), "Deployment")["spec"]["template"]["spec"]
            container = pod["containers"][0]
            volume, _ = volume_mounted_at(pod, container, "/etc/informerd/tls")
            self.assertEqual(volume["secret"]["secretName"], secret, values)
            args = args_of(container)
            if ca_secret is None:
                self.assertNotIn("--client-ca-file", args)
                continue
            self.assertEqual(args["--client-ca-file"], "/etc/informerd/client-ca/" + ca_key)
            volume, _ = volume_mounted_at(pod, container, "/etc/informerd/client-ca")
            self.assertEqual(volume["secret"]["secretName"], ca_secret, values)
            self.assertEqual(volume["secret"]["items"], [{"key": ca_key, "path": ca_key}])

    def test_client_ca_needs_tls(self):
        with self.assertRaises(AssertionError) as raised:
            render("tls: {enabled: false, clientCA: {enabled: true}}\n")
        self.assertIn("tls.clientCA needs tls.enabled", str(raised.exception))

    def test_network_policy_disabled_or_customised(self):
        self.assertEqual(of_kind(render("networkPolicy: {enabled: false}\n"), "NetworkPolicy"), [])
        extra = {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 50051}]}
        policy = one(render(
            "networkPolicy:\n"
            "  grpcFrom: [{namespaceSelector: {matchLabels: {team: a}}}]\n"
            "  metricsFrom: [{namespaceSelector: {matchExpressions: [{key: monitoring, operator: Exists}]},"
            " podSelector: {matchLabels: {app: prometheus}}}]\n"
            "  extraIngress: [%s]\n" % yaml.safe_dump(extra, default_flow_style=True).strip()),
            "NetworkPolicy")
        # A list in the values replaces the default list whole (no default podSelector left).
        self.assertEqual(policy["spec"]["ingress"][0]["from"], [
            {"namespaceSelector": {"matchLabels": {"team": "a"}}}])
        self.assertEqual(policy["spec"]["ingress"][1]["from"], [
            {"namespaceSelector": {"matchExpressions": [{"key": "monitoring", "operator": "Exists"}]},
             "podSelector": {"matchLabels": {"app": "prometheus"}}}])
        self.assertEqual(policy["spec"]["ingress"][2:], [extra])

    def test_an_empty_peer_list_is_refused_it_would_admit_everyone(self):
        for values in ("networkPolicy: {grpcFrom: []}\n", "networkPolicy: {metricsFrom: []}\n"):
            with self.assertRaises(AssertionError) as raised:
                render(values)
            self.assertIn("an empty `from` admits every source", str(raised.exception))
        self.assertEqual(of_kind(render("networkPolicy: {enabled: false, grpcFrom: []}\n"),
                                 "NetworkPolicy"), [])

    def test_rbac_create_false_binds_nothing(self):
        objects = render("rbac: {create: false}\n")
        self.assertEqual(of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"), [])

    def test_the_readme_self_signed_certificate_serves_the_release(self):
        """The README's quick-start command makes a certificate for the chart's Service names (and
        for a port-forward to localhost), with its key."""
        work = lib.work_dir()
        cert, key = lib.quick_start_certificate(work, "my-release", "my-namespace")
        text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext",
                               "subjectAltName"], capture_output=True, text=True, check=True).stdout
        names = {n.strip() for n in text.split("\n", 1)[1].split(",")}
        service = one(render(release="my-release", namespace="my-namespace"), "Service")
        self.assertEqual(service["metadata"]["name"], "my-release")
        # And the headless Service's name, which round_robin clients dial (service.headless).
        services = of_kind(render("service: {headless: true}\n", release="my-release",
                                  namespace="my-namespace"), "Service")
        self.assertIn("my-release-headless", [o["metadata"]["name"] for o in services])
        self.assertEqual(names, {"DNS:my-release", "DNS:my-release.my-namespace",
                                 "DNS:my-release.my-namespace.svc",
                                 "DNS:my-release.my-namespace.svc.cluster.local",
                                 "DNS:my-release-headless.my-namespace.svc",
                                 "DNS:localhost", "IP Address:127.0.0.1"})
        public = [subprocess.run(command, capture_output=True, check=True).stdout for command in (
            ["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
            ["openssl", "pkey", "-in", key, "-pubout"])]
        self.assertEqual(public[0], public[1])
        # Self-signed: its own CA, which clients pass as --cacert.
        verify = subprocess.run(["openssl", "verify", "-CAfile", cert, cert], capture_output=True,
                                text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

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
        # gRPC on a unix socket in an emptyDir that both containers mount, and no gRPC port.
        socket = "/var/run/informerd/informerd.sock"
        self.assertEqual(args["--listen"], "unix://" + socket)
        self.assertEqual(args["--listen-socket-mode"], "0660")
        self.assertEqual(args["--authorization-mode"], "AlwaysAllow")
        self.assertNotIn("--insecure-allow-plaintext", args)
        self.assertEqual({e["name"]: e["value"] for e in containers["app"]["env"]},
                         {"INFORMERD_ADDRESS": "unix://" + socket})
        volumes = []
        for container in containers.values():
            volume, mount = volume_mounted_at(pod, container, os.path.dirname(socket))
            # informerd creates the socket; the application only connects to it.
            self.assertEqual(mount.get("readOnly", False), container is containers["app"])
            volumes.append(volume)
        self.assertEqual(volumes[0], volumes[1])
        self.assertIn("emptyDir", volumes[0])
        self.assertEqual([p["name"] for p in informerd["ports"]], ["metrics", "probes"])
        # Mode 0660: the socket's group is the fsGroup, which every container of the pod has.
        self.assertEqual(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"])
        # Only the two containers share the socket's volume.
        self.assertEqual(sum(1 for c in containers.values() for m in c.get("volumeMounts", [])
                             if m["name"] == volumes[0]["name"]), 2)
        self.assertEqual(informerd["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "probes"})
        self.assertEqual(informerd["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "probes"})
        container_ports = {p["name"]: p["containerPort"] for p in informerd["ports"]}
        self.assertEqual(args["--metrics-listen"], "0.0.0.0:%d" % container_ports["metrics"])
        self.assertEqual(args["--probe-listen"], "0.0.0.0:%d" % container_ports["probes"])
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

#!/usr/bin/python3
"""The Helm chart's default rendering enforces the cluster's RBAC on informerd's callers, proven
against a real kube-apiserver (test/cluster): the chart's ServiceAccount, RBAC (with its
system:auth-delegator binding) and ConfigMap are applied for real, and the real informerd binary
runs as that ServiceAccount (a TokenRequest token) with the Deployment's arguments, unchanged but
for local paths and ports (TLS with the README's self-signed certificate, --authorization-mode
from the chart). Two other ServiceAccounts call it with TokenRequest tokens for the audience the
chart's arguments expect:

- "app" (namespace team-a), whose Role allows get/list/watch on pods in team-a only: List, Get and
  Subscribe of pods in team-a answer exactly team-a's pods (a pod created in team-b while the
  stream is open never arrives); pods in team-b, in all namespaces, and deployments in team-a are
  PERMISSION_DENIED with a message naming system:serviceaccount:team-a:app and the check;
  ListResources in team-a shows pods only, cluster-wide and in team-b nothing;
- "stranger" (team-a), bound to nothing: PERMISSION_DENIED everywhere, ListResources empty;
- no token, a token that is not one, and app's token made for another audience: UNAUTHENTICATED.

informerctl (the real binary, --token-file and --cacert) gets the same answers. The daemon writes
exactly one audit line per call, naming its caller with the call's decision and status, and no
token appears anywhere in its log."""
import json
import os
import re
import subprocess
import sys
import time

import grpc
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402
import rbac_test  # noqa: E402  (the Deployment's arguments run locally: rbac_test.daemon_args)

INFORMERD = "cmd/informerd/informerd"
INFORMERCTL = "cmd/informerctl/informerctl"
PROTO_ROOT = "proto"
PROTO = "informerd/v1/informerd.proto"

APP = "system:serviceaccount:team-a:app"
STRANGER = "system:serviceaccount:team-a:stranger"
NO_CREDENTIALS = ("no credentials: send a bearer token (authorization: Bearer …) or a client "
                  "certificate")
REJECTED = "the bearer token was rejected by the apiserver"
# test/cluster/cluster.sh's --api-audiences: what a TokenReview without audiences requires.
APISERVER_AUDIENCE = "https://kubernetes.default.svc"
OTHER_AUDIENCE = "https://not-informerd.example.com"

POD_SPEC = {"containers": [{"name": "c", "image": "registry.example.com/app:1"}]}

# app may read pods in its own namespace and nothing else; stranger has no binding at all.
CALLERS = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: team-a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team-a}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-reads-pods, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
  - {kind: ServiceAccount, name: app, namespace: team-a}
"""


def pod(name, namespace):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": POD_SPEC}


def seed(cluster):
    """Pods a1, a2 in team-a and b1 in team-b; a Deployment in team-a (which app may not read)."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "d", "namespace": "team-a"},
                  "spec": {"selector": {"matchLabels": {"app": "d"}},
                           "template": {"metadata": {"labels": {"app": "d"}}, "spec": POD_SPEC}}}
    objects = [pod("a1", "team-a"), pod("a2", "team-a"), pod("b1", "team-b"), deployment]
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def can_i(cluster, user, verb, resource, namespace):
    scope = ["--all-namespaces"] if namespace is None else ["-n", namespace]
    result = cluster.kubectl("auth", "can-i", verb, resource, "--as", user, *scope, check=False)
    return result.stdout.strip() == "yes"


def wait_until(what, predicate, timeout=15):
    """The RBAC authorizer learns of new bindings through a watch: the tests wait for them, so
    that informerd never caches a denial that comes only from the apiserver being behind."""
    deadline = time.monotonic() + timeout
    while not predicate():
        lib.check(time.monotonic() < deadline, "never true within %ds: %s" % (timeout, what))
        time.sleep(0.2)


def generate_stubs(out_dir):
    subprocess.run(
        ["/usr/bin/protoc", "-I" + PROTO_ROOT, "--python_out=" + out_dir, "--grpc_out=" + out_dir,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", os.path.join(PROTO_ROOT, PROTO)],
        check=True)
    sys.path.insert(0, out_dir)
    from informerd.v1 import informerd_pb2, informerd_pb2_grpc
    return informerd_pb2, informerd_pb2_grpc


def arg_value(args, flag):
    for arg in args:
        name, _, value = arg.partition("=")
        if name == flag:
            return value
    return None


class Caller:
    """Calls informerd's Informer service with one bearer token (or none), returning exactly
    what came back: ("OK", answer) or (status code name, details). Each call is appended to
    `calls` as the audit line should tell it: (user, method, resource, namespace, code), `user`
    being who the token is ("" for none)."""

    def __init__(self, pb2, stub, token, user, calls):
        self.pb2, self.stub, self.user, self.calls = pb2, stub, user, calls
        self.metadata = [("authorization", "Bearer " + token)] if token else []

    def record(self, method, resource, namespace, code):
        self.calls.append((self.user, method, resource, namespace, code))

    def _call(self, method, request):
        try:
            answer = "OK", method(request, metadata=self.metadata, timeout=20)
        except grpc.RpcError as error:
            answer = error.code().name, error.details()
        self.record(type(request).__name__[:-len("Request")], getattr(request, "resource", ""),
                    request.namespace, answer[0])
        return answer

    def list(self, namespace, resource="pods"):
        """("OK", [(namespace, name) of each item]) or the error."""
        code, answer = self._call(self.stub.List,
                                  self.pb2.ListRequest(resource=resource, namespace=namespace))
        if code != "OK":
            return code, answer
        items = [json.loads(item)["metadata"] for item in answer.items]
        return code, sorted((m.get("namespace", ""), m["name"]) for m in items)

    def get(self, namespace, name):
        """("OK", (namespace, name) of the object) or the error."""
        code, answer = self._call(self.stub.Get, self.pb2.GetRequest(
            resource="pods", namespace=namespace, name=name))
        if code != "OK":
            return code, answer
        metadata = json.loads(answer.object)["metadata"]
        return code, (metadata["namespace"], metadata["name"])

    def list_resources(self, namespace):
        """("OK", [resource names]) or the error."""
        code, answer = self._call(self.stub.ListResources,
                                  self.pb2.ListResourcesRequest(namespace=namespace))
        if code != "OK":
            return code, answer
        return code, sorted(info.resource + ("." + info.group if info.group else "")
                            for info in answer.resources)

    def subscribe(self, namespace):
        """A stream of pods in `namespace` ("" for all): the call, to read and cancel."""
        return self.stub.Subscribe(self.pb2.SubscribeRequest(resource="pods", namespace=namespace),
                                   metadata=self.metadata, timeout=30)

    def subscribe_refused(self, namespace):
        """(events that arrived, code, details) of a stream expected to be refused."""
        call, events = self.subscribe(namespace), []
        try:
            for event in call:
                events.append((event.namespace, event.name))
                if len(events) > 10:
                    call.cancel()
        except grpc.RpcError as error:
            self.record("Subscribe", "pods", namespace, error.code().name)
            return events, error.code().name, error.details()
        self.record("Subscribe", "pods", namespace, "OK")
        return events, "OK", ""


def expect(label, actual, expected):
    lib.check(actual == expected, "%s:\n  got      %r\n  expected %r" % (label, actual, expected))


def denied(user, check):
    return "PERMISSION_DENIED", 'user "%s" cannot %s' % (user, check)


def check_app(cluster, pb2, app):
    """app reads pods in team-a, exactly, and nothing else."""
    team_a = [("team-a", "a1"), ("team-a", "a2")]
    expect("app: List pods in team-a", app.list("team-a"), ("OK", team_a))
    expect("app: Get pods a1 in team-a", app.get("team-a", "a1"), ("OK", ("team-a", "a1")))
    # The allowed decisions are cached now: what follows must still be decided per namespace.
    expect("app: List pods in team-b", app.list("team-b"),
           denied(APP, 'list pods in namespace "team-b"'))
    expect("app: List pods in all namespaces", app.list(""),
           denied(APP, "list pods at the cluster scope"))
    expect("app: Get pods b1 in team-b", app.get("team-b", "b1"),
           denied(APP, 'get pods "b1" in namespace "team-b"'))
    expect("app: List deployments.apps in team-a", app.list("team-a", "deployments.apps"),
           denied(APP, 'list deployments.apps in namespace "team-a"'))
    for namespace, check in (("team-b", 'list pods in namespace "team-b"'),
                             ("", "list pods at the cluster scope")):
        expect("app: Subscribe pods in %r" % namespace, app.subscribe_refused(namespace),
               ([],) + denied(APP, check))
    expect("app: ListResources in team-a", app.list_resources("team-a"), ("OK", ["pods"]))
    expect("app: ListResources cluster-wide", app.list_resources(""), ("OK", []))
    expect("app: ListResources in team-b", app.list_resources("team-b"), ("OK", []))

    # Subscribe in team-a: the snapshot is team-a's pods; then a pod created in team-b, then one
    # in team-a: the next event is team-a's (all-namespaces watch events arrive in the
    # apiserver's order, so a leaked team-b pod would come first).
    call = app.subscribe("team-a")
    events = iter(call)
    try:
        snapshot = []
        for event in events:
            if event.type == pb2.Event.SYNCED:
                break
            snapshot.append((pb2.Event.Type.Name(event.type), event.namespace, event.name))
        expect("app: Subscribe pods in team-a, the snapshot", sorted(snapshot),
               [("ADDED", "team-a", "a1"), ("ADDED", "team-a", "a2")])
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod("b2", "team-b")))
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod("a3", "team-a")))
        event = next(events)
        expect("app: Subscribe pods in team-a, the event after creating b2 then a3",
               (pb2.Event.Type.Name(event.type), event.namespace, event.name),
               ("ADDED", "team-a", "a3"))
    finally:
        call.cancel()
    app.record("Subscribe", "pods", "team-a", "CANCELLED")
    print("ok   app: pods in team-a listed, got and streamed (a pod created in team-b did not "
          "arrive); team-b, all namespaces and deployments PERMISSION_DENIED naming %s; "
          "ListResources pods in team-a only" % APP)


def check_stranger(stranger):
    for namespace, where in (("team-a", 'in namespace "team-a"'),
                             ("team-b", 'in namespace "team-b"'),
                             ("", "at the cluster scope")):
        expect("stranger: List pods in %r" % namespace, stranger.list(namespace),
               denied(STRANGER, "list pods " + where))
        expect("stranger: Subscribe pods in %r" % namespace, stranger.subscribe_refused(namespace),
               ([],) + denied(STRANGER, "list pods " + where))
        expect("stranger: ListResources in %r" % namespace, stranger.list_resources(namespace),
               ("OK", []))
    expect("stranger: Get pods a1 in team-a", stranger.get("team-a", "a1"),
           denied(STRANGER, 'get pods "a1" in namespace "team-a"'))
    print("ok   stranger: PERMISSION_DENIED in team-a, team-b and all namespaces; ListResources "
          "empty")


def check_unauthenticated(nobody, bogus, wrong_audience, audiences):
    unauthenticated = ("UNAUTHENTICATED", NO_CREDENTIALS)
    expect("no token: List pods in team-a", nobody.list("team-a"), unauthenticated)
    expect("no token: Get pods a1 in team-a", nobody.get("team-a", "a1"), unauthenticated)
    expect("no token: Subscribe pods in team-a", nobody.subscribe_refused("team-a"),
           ([],) + unauthenticated)
    expect("no token: ListResources", nobody.list_resources(""), unauthenticated)
    expect("a token that is not one: List pods in team-a", bogus.list("team-a"),
           ("UNAUTHENTICATED", REJECTED + ": invalid bearer token"))
    # The TokenReview asks for the audiences informerd requires: the apiserver names them.
    expect("app's token for another audience: List pods in team-a", wrong_audience.list("team-a"),
           ("UNAUTHENTICATED", REJECTED + ': [invalid bearer token, token audiences ["%s"] is '
            'invalid for the target audiences [%s]]' % (
                OTHER_AUDIENCE, " ".join('"%s"' % a for a in audiences))))
    print("ok   no token, a bogus token and a token for another audience: UNAUTHENTICATED")


def check_informerctl(work, address, ca, server_name, app_token, calls):
    """The client people use: the same answers through --token-file and --cacert."""
    token_file = os.path.join(work, "app.token")
    with open(token_file, "w") as f:
        f.write(app_token + "\n")
    os.chmod(token_file, 0o600)

    def ctl(*args):
        result = subprocess.run([INFORMERCTL, "--address", address, "--cacert", ca,
                                 "--tls-server-name", server_name, "--token-file", token_file] +
                                list(args), capture_output=True, text=True, timeout=30)
        return result.returncode, result.stdout, result.stderr

    expect("informerctl list pods -n team-a", ctl("list", "pods", "-n", "team-a", "-o", "name"),
           (0, "pods/a1\npods/a2\npods/a3\n", ""))
    expect("informerctl resources -n team-a", ctl("resources", "-n", "team-a", "-o", "name"),
           (0, "pods\n", ""))
    expect("informerctl list pods -n team-b", ctl("list", "pods", "-n", "team-b"),
           (1, "", 'informerctl: PERMISSION_DENIED: user "%s" cannot list pods in namespace '
                   '"team-b"\n' % APP))
    calls += [(APP, "List", "pods", "team-a", "OK"), (APP, "ListResources", "", "team-a", "OK"),
              (APP, "List", "pods", "team-b", "PERMISSION_DENIED")]
    print("ok   informerctl --token-file --cacert: app lists team-a, is refused team-b")


AUDIT_LINE = re.compile(r'user="(.*)" peer="ipv4:127\.0\.0\.1:\d+" method="(\w+)" '
                        r'resource="(.*)" namespace="(.*)" decision=(\w+) code=(\w+)')
DECISIONS = {"OK": "allow", "CANCELLED": "allow", "PERMISSION_DENIED": "deny",
             "UNAUTHENTICATED": "unauthenticated"}


def audit_lines(log):
    """The audit lines of informerd's JSON log: [(user, method, resource, namespace, decision,
    code)]."""
    lines = []
    for line in log.splitlines():
        entry = json.loads(line)
        if entry.get("component") == "audit":
            match = AUDIT_LINE.fullmatch(entry["msg"])
            lib.check(match, "an audit line not in the documented form: " + line)
            lines.append(match.groups())
    return lines


def check_audit(daemon, calls, tokens):
    """One audit line per call, naming its caller, with the call's decision and status; no token
    anywhere in the log."""
    expected = sorted((user, method, resource, namespace, DECISIONS[code], code)
                      for user, method, resource, namespace, code in calls)
    daemon.wait_for(lambda log: len(audit_lines(log)) >= len(expected), 10,
                    "did not write %d audit lines" % len(expected))
    expect("the audit lines", sorted(audit_lines(daemon.log())), expected)
    log = daemon.log()
    for label, token in tokens.items():
        lib.check(token not in log, "the log contains %s's token:\n%s" % (label, log))
    # Nor any part of a JWT (a token's header always starts this way).
    lib.check("eyJ" not in log, "the log contains something like a JWT:\n" + log)
    print("ok   %d audit lines, one per call, each naming its caller (%s, %s, \"\" without a "
          "valid token) with its decision and status; no token in the log" % (
              len(expected), APP, STRANGER))


def main():
    for binary in (INFORMERD, INFORMERCTL):
        lib.check(os.access(binary, os.X_OK), "%s not built" % binary)
    work = lib.work_dir()
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs)
    pb2, pb2_grpc = generate_stubs(stubs)
    cluster = lib.Cluster()
    daemon = None
    try:
        for namespace in ("informerd", "team-a", "team-b"):
            cluster.ensure_namespace(namespace)
        seed(cluster)

        # The default rendering, as `helm install informerd -n informerd` makes it.
        _, documents = lib.render_documents([], "informerd", "informerd")
        objects = [o for _, o, _ in documents]
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        delegator = [o for o in objects if o["kind"] == "ClusterRoleBinding" and
                     o["roleRef"]["name"] == "system:auth-delegator"]
        expect("the chart's system:auth-delegator binding's subjects",
               [s for o in delegator for s in o["subjects"]],
               [{"kind": "ServiceAccount", "name": account, "namespace": "informerd"}])
        identity = [o for o in objects if o["kind"] in (
            "ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role",
            "RoleBinding")]
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(identity))
        cluster.kubectl("apply", "-f", "-", stdin=CALLERS)
        informerd_user = "system:serviceaccount:informerd:" + account
        wait_until("the chart's account may create TokenReviews and SubjectAccessReviews and "
                   "list pods; app may list pods in team-a",
                   lambda: can_i(cluster, informerd_user, "create",
                                 "tokenreviews.authentication.k8s.io", None) and
                   can_i(cluster, informerd_user, "create",
                         "subjectaccessreviews.authorization.k8s.io", None) and
                   can_i(cluster, informerd_user, "list", "pods", None) and
                   can_i(cluster, APP, "list", "pods", "team-a"))

        config_map = next(o for o in objects if o["kind"] == "ConfigMap")
        config_path = os.path.join(work, "informerd.yaml")
        with open(config_path, "w") as f:
            f.write(config_map["data"]["informerd.yaml"])
        informerd_token = cluster.service_account_token("informerd", account)
        kubeconfig = cluster.token_kubeconfig(os.path.join(work, "informerd.kubeconfig"),
                                              informerd_token)
        tls_dir = os.path.join(work, "tls")
        os.makedirs(tls_dir)
        service = next(o for o in objects if o["kind"] == "Service")["metadata"]["name"]
        certificate, key = lib.quick_start_certificate(tls_dir, service, "informerd")
        args, _ = rbac_test.daemon_args(deployment, config_path, kubeconfig, (certificate, key))
        lib.check(arg_value(args, "--tls-cert-file") == certificate,
                  "the chart's Deployment serves no TLS: %s" % args)

        # The callers' tokens are for the audience the chart's arguments make informerd require
        # (none: the apiserver's own).
        audiences = arg_value(args, "--authentication-token-audiences")
        audiences = audiences.split(",") if audiences else None
        tokens = {
            "app": cluster.service_account_token("team-a", "app", audiences),
            "stranger": cluster.service_account_token("team-a", "stranger", audiences),
            "app (another audience)": cluster.service_account_token(
                "team-a", "app", [OTHER_AUDIENCE]),
            "informerd": informerd_token,
        }

        started = time.monotonic()
        daemon = lib.Daemon(INFORMERD, args)
        daemon.wait_for(lambda log: {"pods", "deployments.apps", "nodes"} <= set(
            rbac_test.synced_counts(log)), 30, "did not sync pods, deployments.apps and nodes")
        match = re.search(r"gRPC listening on ([^\s\"]+)", daemon.log())
        lib.check(match, "no gRPC address in the log:\n" + daemon.log())
        port = match.group(1).rpartition(":")[2]
        address = "127.0.0.1:" + port
        # The certificate is for the Service's DNS names: check it as a client in the cluster
        # would.
        server_name = "%s.informerd.svc" % service
        with open(certificate, "rb") as f:
            channel = grpc.secure_channel(
                address, grpc.ssl_channel_credentials(f.read()),
                options=[("grpc.ssl_target_name_override", server_name)])
        stub = pb2_grpc.InformerStub(channel)

        calls = []
        check_app(cluster, pb2, Caller(pb2, stub, tokens["app"], APP, calls))
        check_stranger(Caller(pb2, stub, tokens["stranger"], STRANGER, calls))
        check_unauthenticated(
            Caller(pb2, stub, None, "", calls), Caller(pb2, stub, "not-a-token", "", calls),
            Caller(pb2, stub, tokens["app (another audience)"], "", calls),
            audiences or [APISERVER_AUDIENCE])
        check_informerctl(work, address, certificate, server_name, tokens["app"], calls)
        channel.close()
        check_audit(daemon, calls, tokens)
        status = daemon.stop()
        lib.check(status == 0, "informerd exited %s after SIGTERM; log:\n%s" % (
            status, daemon.log()))
        access_flags = [a for a in args if a.startswith(("--authorization-mode",
                                                         "--authentication-token"))]
        print("ok   informerd as informerd:%s with the chart's arguments (%s): %.1fs from its "
              "start to its exit" % (account, " ".join(access_flags) or "no access flags",
                                     time.monotonic() - started))
    finally:
        if daemon is not None:
            daemon.stop()
        cluster.stop()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()

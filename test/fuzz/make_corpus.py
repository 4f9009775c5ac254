#!/usr/bin/env python3
"""Writes the seed corpora test/fuzz/corpus/<target>/ from captured apiserver output.

   test/fuzz/make_corpus.py CAPTURE_DIR [CORPUS_ROOT]

CAPTURE_DIR holds what test/fuzz/capture_seeds.sh fetched from the test harness's real
kube-apiserver (LIST bodies *_list*.json, WATCH bodies *_watch*.jsonl, Status bodies
status_*.json, kubeconfigs kubeconfig_*), secrets already removed. Each seed file is named after
where it came from and the options it selects; the targets read a leading options byte (two for
watch_event_decoder: options, then the seed of the piece sizes), see each *_fuzzer.cc. The
selectors and configuration seeds come from this repository (README, deploy/, test configs) and
the selectors kubectl users write.
"""
import json
import pathlib
import re
import sys

capture = pathlib.Path(sys.argv[1])
root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent / "corpus")
repo = pathlib.Path(__file__).resolve().parents[2]


def write(target, name, data):
    directory = root / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


lists = sorted(capture.glob("*_list*.json"))
watches = sorted(capture.glob("*_watch*.jsonl"))
statuses = sorted(capture.glob("status_*.json"))

# watch_event_decoder: byte 0 options (bit0 keep managedFields, bits1-2 limit 32Mi/64/512/4096,
# bit3 extra field paths), byte 1 piece-size seed.
for path in watches:
    body = path.read_bytes()
    for flags, tag in [(0x00, "default"), (0x01, "keep-managed-fields"), (0x04, "limit512"),
                       (0x08, "extra-fields")]:
        write("watch_event_decoder", f"{path.stem}.{tag}", bytes([flags, 7]) + body)
    for i, line in enumerate(body.splitlines(keepends=True)):
        write("watch_event_decoder", f"{path.stem}.event{i}", bytes([0x00, i]) + line)
# A body cut inside an event (Finish must refuse it) and a final event without its newline.
first = watches[0].read_bytes().splitlines(keepends=True)[0]
write("watch_event_decoder", "cut-inside-event", bytes([0, 1]) + first[: len(first) // 2])
write("watch_event_decoder", "no-final-newline", bytes([0, 2]) + first.rstrip(b"\n"))

# list_decoder: byte 0 options (bit0 keep managedFields, bits1-2 limit 32Mi/128/1024/4096,
# bits3-4 item type none/Pod v1/Widget example.com/v1, bit5 extra field paths).
for path in lists:
    body = path.read_bytes()
    item_type = 0x08 if path.name.startswith("pod") else 0x10 if path.name.startswith("widget") else 0
    for flags, tag in [(0x00, "default"), (0x01 | item_type, "keep-managed-fields.typed"),
                       (0x04 | item_type, "limit1024.typed"), (0x20, "extra-fields")]:
        write("list_decoder", f"{path.stem}.{tag}", bytes([flags]) + body)
for path in statuses:
    write("list_decoder", path.stem, b"\x00" + path.read_bytes())

# object_scanner: byte 0 options (bit0 keep managedFields, bit1 extra field paths). Objects as
# watch events carry them (kind and apiVersion included).
objects = []
for path in watches:
    for line in path.read_bytes().splitlines():
        event = json.loads(line)
        objects.append((f"{path.stem}.{event['type'].lower()}", event["object"]))
for path in lists:
    page = json.loads(path.read_bytes())
    for item in page.get("items", [])[:3]:
        objects.append((f"{path.stem}.item", item))
for path in statuses:
    objects.append((path.stem, json.loads(path.read_bytes())))
for i, (name, obj) in enumerate(objects):
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    write("object_scanner", f"{i:02d}.{name}", bytes([i % 4]) + text)

# Label selectors: what kubectl users write (kubectl get -l ...), and the README's.
label_selectors = [
    "app=web", "app==web", "app!=web", "tier in (frontend,backend)", "env notin (prod, qa)",
    "app", "!canary", "app=web,tier!=db", "app.kubernetes.io/name=informerd",
    "app.kubernetes.io/instance in (a, b),app.kubernetes.io/managed-by=Helm",
    "replicas>2", "replicas<10", "environment in (production),tier in (frontend)",
    "partition", "!partition", "k in ()", "example.com/owner=team-a,size=42",
    "  app = web , tier in ( a , b ) ", "controller-revision-hash=7d9f8c6b5",
    "pod-template-hash,statefulset.kubernetes.io/pod-name=db-0", "",
]
for i, text in enumerate(label_selectors):
    write("label_selector", f"{i:02d}", text)

# Field selectors (kubectl get --field-selector ...).
field_selectors = [
    "metadata.name=web-1", "metadata.namespace!=kube-system", "status.phase=Running",
    "spec.nodeName=node-1,status.phase!=Succeeded", "metadata.name==db-0",
    "involvedObject.kind=Pod,involvedObject.name=web-1", "type=kubernetes.io/tls",
    r"metadata.name=a\,b\=c\\d", "spec.schedulerName=default-scheduler,,", "",
    "status.podIP=10.0.0.7", "spec.restartPolicy=Never",
]
for i, text in enumerate(field_selectors):
    write("field_selector", f"{i:02d}", text)

# Configuration files: the repository's examples and the configurations its tests use.
configs = [repo / "deploy/config/informerd.yaml"]
configs += sorted(repo.glob("examples/**/*.yaml"))
for path in configs:
    if path.exists():
        write("config", path.relative_to(repo).as_posix().replace("/", "_"), path.read_bytes())
sidecar = repo / "deploy/sidecar/configmap.yaml"
if sidecar.exists():
    # The informerd.yaml embedded in the sidecar's ConfigMap, unindented.
    text = sidecar.read_text()
    match = re.search(r"informerd\.yaml: \|\n((?:    .*\n|\n)+)", text)
    if match:
        write("config", "deploy_sidecar_configmap.informerd.yaml",
              re.sub(r"(?m)^    ", "", match.group(1)))
for name, text in {
    "on-demand.yaml": "resources:\n- resource: pods\nallowOnDemand: true\n"
                      "onDemandGracePeriod: 1h30m\nonDemandResources: [pods, deployments.apps, "
                      "'*.example.com']\nmaxOnDemandInformers: 32\n",
    "selectors.yaml": "resources:\n- resource: pods\n  namespace: shop\n  labelSelector: "
                      "app in (web, db)\n  fieldSelector: status.phase!=Succeeded\n"
                      "  stripManagedFields: false\n  indexes: [spec.nodeName]\n"
                      "maxObjectBytes: 1048576\nsubscriberQueueCapacity: 256\n",
}.items():
    write("config", name, text)
for text in ["90s", "1h30m", "500ms", "0s"]:
    write("config", f"duration-{text}", text)
for text in ["pods", "deployments.apps", "*.example.com", "*"]:
    write("config", f"pattern-{text.replace('*', 'any')}", text)

# Kubeconfigs: the harness's, secrets already replaced; and the forms the harness does not use
# (inline base64 data, an exec plugin, several files' worth of entries), written by hand.
for path in sorted(capture.glob("kubeconfig_*")):
    write("kubeconfig", path.name, path.read_bytes())
write("kubeconfig", "inline-data", """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://[::1]:6443
    certificate-authority-data: bm90IGEgcmVhbCBjZXJ0aWZpY2F0ZQ==
    tls-server-name: kubernetes.default
users:
- name: u
  user:
    client-certificate-data: bm90IGEgY2VydA==
    client-key-data: bm90IGEga2V5
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: shop}
current-context: ctx
""")
write("kubeconfig", "exec-plugin", """apiVersion: v1
kind: Config
clusters:
- name: eks
  cluster:
    server: https://example.invalid
    insecure-skip-tls-verify: true
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {audience: sts, nested: [1, 2]}
users:
- name: iam
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/get-token
      args: [--cluster, eks]
      env: [{name: AWS_PROFILE, value: dev}]
      interactiveMode: Never
      provideClusterInfo: true
- name: other
  user:
    tokenFile: ../token
    as: admin
    auth-provider: {name: oidc}
contexts:
- {name: a, context: {cluster: eks, user: iam}}
- {name: b, context: {cluster: eks, user: other}}
current-context: a
preferences: {}
""")

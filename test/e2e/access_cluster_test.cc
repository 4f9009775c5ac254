// End-to-end against a real kube-apiserver: the informerd binary serving TLS with
// --authorization-mode=Webhook, authenticated to the apiserver as the harness's admin, verifies
// each caller with a TokenReview or its client certificate and authorizes each read with a
// SubjectAccessReview, so that the apiserver's own RBAC decides. Callers: ServiceAccount tokens
// from the TokenRequest API (one allowed to read pods in one namespace, one allowed nothing, one
// for the wrong audience, one whose ServiceAccount was deleted), an invalid token, no credentials,
// the harness's alice by client certificate, and a client certificate from another CA. For each,
// List, Get, Subscribe and ListResources in the allowed namespace, in another one and across all
// namespaces end with exact statuses, and nothing of a namespace the caller may not read ever
// arrives. Then an open Subscribe ends PERMISSION_DENIED once its RoleBinding is deleted, within
// the (shortened) authorization cache TTL.
//
// One cluster and one daemon serve every test case (a static fixture); the revocation case works
// with a ServiceAccount of its own, so the cases may run in any order.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test/common/test_pki.h"
#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

constexpr char kA[] = "acl-a";
constexpr char kB[] = "acl-b";
// The audience informerd requires (--authentication-token-audiences).
constexpr char kAudience[] = "informerd";
// The apiserver's own audience (cluster.sh's --api-audiences): a token made for the apiserver.
constexpr char kApiserverAudience[] = "https://kubernetes.default.svc";
// --authorization-webhook-cache-authorized-ttl: also how often an open Subscribe is authorized
// again.
constexpr seconds kAuthorizedTtl{2};

constexpr char kConfig[] = R"(resources:
  - resource: pods
  - resource: configmaps
    namespace: acl-b
)";

constexpr char kReaderUser[] = "system:serviceaccount:acl-a:reader";
constexpr char kNobodyUser[] = "system:serviceaccount:acl-a:nobody";
constexpr char kStreamerUser[] = "system:serviceaccount:acl-a:streamer";

std::string PodYaml(const std::string& ns, const std::string& name) {
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: {}}}
spec:
  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name, ns);
}

// A Role that may get, list and watch pods in `ns`, bound to ServiceAccount `account` of `ns`.
std::string PodReaderYaml(const std::string& ns, const std::string& account) {
  return fmt::format(R"(---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {1}-pods, namespace: {0}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {1}-pods, namespace: {0}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {1}-pods}}
subjects:
- {{kind: ServiceAccount, name: {1}, namespace: {0}}}
)",
                     ns, account);
}

constexpr char kSetup[] = R"(apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: acl-a}}
- {apiVersion: v1, kind: Namespace, metadata: {name: acl-b}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: reader, namespace: acl-a}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: nobody, namespace: acl-a}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: streamer, namespace: acl-a}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: ghost, namespace: acl-a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-b, namespace: acl-b}, data: {k: v}}
)";

// A token of ServiceAccount `ns/account` for `audience`, from the TokenRequest API (kubectl 1.20
// has no `kubectl create token`; `create --raw` posts the request as it is).
std::string ServiceAccountToken(const TestCluster& cluster, const std::string& ns,
                                const std::string& account, const std::string& audience) {
  const std::string answer = KubectlOk(
      cluster,
      {"create", "--raw",
       fmt::format("/api/v1/namespaces/{}/serviceaccounts/{}/token", ns, account), "-f", "-"},
      fmt::format(R"({{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {{"audiences": ["{}"], "expirationSeconds": 3600}}}})",
                  audience));
  const std::string marker = "\"token\":\"";
  const std::size_t at = answer.find(marker);
  INFO(answer);
  REQUIRE(at != std::string::npos);
  const std::string token =
      answer.substr(at + marker.size(), answer.find('"', at + marker.size()) - at - marker.size());
  REQUIRE(std::count(token.begin(), token.end(), '.') == 2);  // a JWT
  return token;
}

// Waits until the apiserver's RBAC says `user` may (or may not) `verb` pods in `ns`: RoleBindings
// reach its authorizer through a watch.
void AwaitCanI(const TestCluster& cluster, const std::string& user, const std::string& verb,
               const std::string& ns, bool allowed) {
  const bool reached = WaitUntil(
      [&] {
        absl::StatusOr<SubprocessResult> result = cluster.Kubectl(
            Identity::kAdminToken, {"auth", "can-i", verb, "pods", "-n", ns, "--as", user});
        return result.ok() && (result->exit_code == 0) == allowed;
      },
      seconds(20), milliseconds(100));
  INFO(fmt::format("{} {} pods in {}: expected {}", user, verb, ns, allowed));
  REQUIRE(reached);
}

// How a caller connects: TLS trusting informerd's CA, with a client certificate and a bearer
// token (sent as `authorization: Bearer …` on every call) when given.
struct Caller {
  std::string name;  // for messages
  std::string token;
  daemon::testing::KeyAndCertificate client;  // empty: no client certificate
};

struct Env {
  std::unique_ptr<TestCluster> cluster;
  daemon::testing::TestCa serving_ca{"informerd-serving-ca"};
  daemon::testing::TestCa other_ca{"another-client-ca"};
  Caller reader;            // pods in acl-a
  Caller reader_apiserver;  // the same ServiceAccount, a token for the apiserver's audience
  Caller nobody;            // no permissions
  Caller ghost;             // a token whose ServiceAccount was deleted
  Caller invalid;           // a token string no authenticator knows
  Caller anonymous;         // no credentials
  Caller alice;             // the harness's alice by client certificate: a cluster-wide reader
  Caller admin;             // the harness's admin by client certificate: may do anything
  Caller forged;            // CN=admin, O=system:masters, signed by another CA
  std::string streamer_token;
  std::unique_ptr<Daemon> daemon;  // after `cluster`: destroyed first
};

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path) << text;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::shared_ptr<grpc::Channel> ChannelFor(const Env& env, const Caller& caller) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = env.serving_ca.certificate_pem();
  ssl.pem_private_key = caller.client.private_key_pem;
  ssl.pem_cert_chain = caller.client.certificate_pem;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!caller.token.empty()) {
    credentials =
        grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(caller.token));
  }
  // A connection of its own per caller: the client certificate is the connection's.
  grpc::ChannelArguments args;
  args.SetString("informerd.e2e.caller", caller.name);
  return grpc::CreateCustomChannel(env.daemon->address(), credentials, args);
}

Env& SharedEnv() {
  static std::unique_ptr<Env> env;
  if (env) return *env;
  auto fresh = std::make_unique<Env>();
  fresh->cluster = StartCluster();
  TestCluster& cluster = *fresh->cluster;
  ApplyOk(cluster, kSetup);
  // The ghost's token is made, then its ServiceAccount deleted, before anything reviews it (the
  // apiserver caches successful authentications for a few seconds).
  fresh->ghost = {"ghost", ServiceAccountToken(cluster, kA, "ghost", kAudience), {}};
  KubectlOk(cluster, {"delete", "serviceaccount", "ghost", "-n", kA});
  CreateOk(cluster, PodYaml(kA, "a-1") + PodYaml(kA, "a-2") + PodYaml(kA, "a-3") +
                        PodYaml(kB, "b-1") + PodYaml(kB, "b-2") + PodYaml(kB, "b-3") +
                        PodReaderYaml(kA, "reader") + PodReaderYaml(kA, "streamer"));
  fresh->reader = {"reader", ServiceAccountToken(cluster, kA, "reader", kAudience), {}};
  fresh->reader_apiserver = {"reader for the apiserver",
                             ServiceAccountToken(cluster, kA, "reader", kApiserverAudience),
                             {}};
  fresh->nobody = {"nobody", ServiceAccountToken(cluster, kA, "nobody", kAudience), {}};
  fresh->streamer_token = ServiceAccountToken(cluster, kA, "streamer", kAudience);
  fresh->invalid = {"invalid", "not-a-token-anyone-issued", {}};
  fresh->anonymous = {"anonymous", "", {}};
  fresh->alice = {"alice",
                  "",
                  {ReadFile(cluster.client_cert_file(Identity::kAliceCert)),
                   ReadFile(cluster.client_key_file(Identity::kAliceCert))}};
  fresh->admin = {"admin",
                  "",
                  {ReadFile(cluster.client_cert_file(Identity::kAdminCert)),
                   ReadFile(cluster.client_key_file(Identity::kAdminCert))}};
  fresh->forged = {"forged admin", "", fresh->other_ca.IssueClient("admin", {"system:masters"})};
  AwaitCanI(cluster, kReaderUser, "watch", kA, true);
  AwaitCanI(cluster, kStreamerUser, "watch", kA, true);

  const daemon::testing::KeyAndCertificate serving = fresh->serving_ca.IssueServer("informerd", 1);
  fresh->daemon = Daemon::Start(
      cluster, kConfig, Identity::kAdminToken,
      {"--tls-cert-file", Write("acl-tls.crt", serving.certificate_pem), "--tls-private-key-file",
       Write("acl-tls.key", serving.private_key_pem), "--client-ca-file", cluster.ca_file(),
       "--authorization-mode=Webhook",
       fmt::format("--authentication-token-audiences={}", kAudience),
       fmt::format("--authorization-webhook-cache-authorized-ttl={}s", kAuthorizedTtl.count()),
       "--authorization-webhook-cache-unauthorized-ttl=1s"});
  Daemon& daemon = *fresh->daemon;
  // Synced, as admin sees it.
  auto admin = v1::Informer::NewStub(ChannelFor(*fresh, fresh->admin));
  INFO(daemon.log());
  REQUIRE(AwaitSynced(*admin, {"pods", "configmaps"}, seconds(30)));
  env = std::move(fresh);
  return *env;
}

// "CODE_NAME message".
std::string Text(const grpc::Status& status) {
  static const std::map<grpc::StatusCode, std::string> kNames = {
      {grpc::OK, "OK"},
      {grpc::NOT_FOUND, "NOT_FOUND"},
      {grpc::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {grpc::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {grpc::UNAUTHENTICATED, "UNAUTHENTICATED"},
      {grpc::UNAVAILABLE, "UNAVAILABLE"},
  };
  auto it = kNames.find(status.error_code());
  const std::string code =
      it == kNames.end() ? std::to_string(static_cast<int>(status.error_code())) : it->second;
  return status.error_message().empty() ? code : code + " " + status.error_message();
}

std::vector<std::string> Names(const std::vector<ObjectKey>& keys) {
  std::vector<std::string> names;
  for (const ObjectKey& key : keys) names.push_back(key.namespace_name + "/" + key.name);
  return names;
}

// What one caller gets for each read of pods, as "CODE message" texts and object names.
struct Outcomes {
  std::string list_a, list_b, list_all;
  std::vector<std::string> listed_a, listed_b, listed_all;
  std::string get_a, get_b, get_all;
  std::string subscribe_a, subscribe_b, subscribe_all;
  std::vector<std::string> snapshot_a, snapshot_b, snapshot_all;
  std::string resources_all, resources_a, resources_b;
  // "resource@namespace objects=N subscribers=N" per informer shown.
  std::vector<std::string> shown_all, shown_a, shown_b;
};

std::vector<std::string> ListedNames(const ListOutcome& outcome) {
  std::vector<ObjectKey> keys;
  for (const std::string& item : outcome.response.items()) keys.push_back(KeyOf(item));
  return Names(keys);
}

// Subscribes, reads until SYNCED or the end of the stream (whichever first), cancels; the status
// ("OK" while open) and every object that arrived.
std::pair<std::string, std::vector<std::string>> SubscribeOnce(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& ns) {
  Subscriber subscriber(channel, SubscribeTo("pods", ns), seconds(20));
  subscriber.WaitFor([](const std::vector<v1::Event>& events) { return HasSynced(events); },
                     seconds(20));
  std::optional<grpc::Status> status = subscriber.status();
  std::vector<std::string> names;
  for (const v1::Event& event : subscriber.events()) {
    if (event.type() == v1::Event::SYNCED) continue;
    names.push_back(event.namespace_() + "/" + event.name());
  }
  std::sort(names.begin(), names.end());
  if (!status) return {HasSynced(subscriber.events()) ? "OK" : "no SYNCED within 20s", names};
  return {Text(*status), names};
}

// Drops " subscribers=N" from Resources' texts.
std::vector<std::string> WithoutSubscribers(std::vector<std::string> shown) {
  for (std::string& text : shown) text = text.substr(0, text.find(" subscribers="));
  return shown;
}

std::pair<std::string, std::vector<std::string>> Resources(v1::Informer::Stub& stub,
                                                           const std::string& ns) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(20));
  v1::ListResourcesRequest request;
  request.set_namespace_(ns);
  v1::ListResourcesResponse response;
  const grpc::Status status = stub.ListResources(&context, request, &response);
  std::vector<std::string> shown;
  for (const v1::ResourceInfo& info : response.resources()) {
    shown.push_back(fmt::format("{}@{} objects={} subscribers={}", info.resource(),
                                info.namespace_(), info.object_count(), info.subscriber_count()));
  }
  return {Text(status), shown};
}

Outcomes Read(const Env& env, const Caller& caller) {
  const std::shared_ptr<grpc::Channel> channel = ChannelFor(env, caller);
  auto stub = v1::Informer::NewStub(channel);
  Outcomes out;
  ListOutcome list = List(*stub, "pods", kA);
  out.list_a = Text(list.status);
  out.listed_a = ListedNames(list);
  list = List(*stub, "pods", kB);
  out.list_b = Text(list.status);
  out.listed_b = ListedNames(list);
  list = List(*stub, "pods", "");
  out.list_all = Text(list.status);
  out.listed_all = ListedNames(list);
  out.get_a = Text(Get(*stub, "pods", kA, "a-1").status);
  out.get_b = Text(Get(*stub, "pods", kB, "b-1").status);
  out.get_all = Text(Get(*stub, "pods", "", "b-1").status);
  std::tie(out.subscribe_a, out.snapshot_a) = SubscribeOnce(channel, kA);
  std::tie(out.subscribe_b, out.snapshot_b) = SubscribeOnce(channel, kB);
  std::tie(out.subscribe_all, out.snapshot_all) = SubscribeOnce(channel, "");
  std::tie(out.resources_all, out.shown_all) = Resources(*stub, "");
  std::tie(out.resources_a, out.shown_a) = Resources(*stub, kA);
  std::tie(out.resources_b, out.shown_b) = Resources(*stub, kB);
  return out;
}

using NameList = std::vector<std::string>;
const NameList kPodsA = {"acl-a/a-1", "acl-a/a-2", "acl-a/a-3"};
const NameList kPodsB = {"acl-b/b-1", "acl-b/b-2", "acl-b/b-3"};

// Every read refused with the same status, nothing returned.
void CheckAllRefused(const Outcomes& out, const std::string& list_a, const std::string& list_b,
                     const std::string& list_all, const std::string& get_a,
                     const std::string& get_b, const std::string& get_all,
                     const std::string& resources) {
  CHECK(out.list_a == list_a);
  CHECK(out.list_b == list_b);
  CHECK(out.list_all == list_all);
  CHECK(out.get_a == get_a);
  CHECK(out.get_b == get_b);
  CHECK(out.get_all == get_all);
  // A Subscribe needs list first (then watch): its denial names list.
  CHECK(out.subscribe_a == list_a);
  CHECK(out.subscribe_b == list_b);
  CHECK(out.subscribe_all == list_all);
  CHECK(out.listed_a == NameList{});
  CHECK(out.listed_b == NameList{});
  CHECK(out.listed_all == NameList{});
  CHECK(out.snapshot_a == NameList{});
  CHECK(out.snapshot_b == NameList{});
  CHECK(out.snapshot_all == NameList{});
  CHECK(out.resources_all == resources);
  CHECK(out.resources_a == resources);
  CHECK(out.resources_b == resources);
  CHECK(out.shown_all == NameList{});
  CHECK(out.shown_a == NameList{});
  CHECK(out.shown_b == NameList{});
}

std::string Denied(const std::string& user, const std::string& what) {
  return fmt::format("PERMISSION_DENIED user \"{}\" cannot {}", user, what);
}

// Whether a log line has every one of `fragments`, within 5 s.
bool AuditLogged(const Daemon& daemon, const std::vector<std::string>& fragments) {
  return WaitUntil(
      [&] {
        std::istringstream lines(daemon.log());
        std::string line;
        while (std::getline(lines, line)) {
          if (std::all_of(fragments.begin(), fragments.end(), [&](const std::string& fragment) {
                return line.find(fragment) != std::string::npos;
              })) {
            return true;
          }
        }
        return false;
      },
      seconds(5), milliseconds(50));
}

TEST_CASE("each caller reads exactly what the apiserver's RBAC lets it read", "[cluster]") {
  Env& env = SharedEnv();
  Daemon& daemon = *env.daemon;
  INFO(daemon.log());

  SECTION("a ServiceAccount with a Role for pods in acl-a: acl-a only, nothing of acl-b") {
    const Outcomes out = Read(env, env.reader);
    CHECK(out.list_a == "OK");
    CHECK(out.listed_a == kPodsA);
    CHECK(out.get_a == "OK");
    CHECK(out.subscribe_a == "OK");
    CHECK(out.snapshot_a == kPodsA);
    CHECK(out.list_b == Denied(kReaderUser, "list pods in namespace \"acl-b\""));
    CHECK(out.get_b == Denied(kReaderUser, "get pods \"b-1\" in namespace \"acl-b\""));
    CHECK(out.subscribe_b == Denied(kReaderUser, "list pods in namespace \"acl-b\""));
    CHECK(out.list_all == Denied(kReaderUser, "list pods at the cluster scope"));
    CHECK(out.get_all == Denied(kReaderUser, "get pods \"b-1\" at the cluster scope"));
    CHECK(out.subscribe_all == Denied(kReaderUser, "list pods at the cluster scope"));
    // Nothing of acl-b, not even in a snapshot.
    CHECK(out.listed_b == NameList{});
    CHECK(out.snapshot_b == NameList{});
    CHECK(out.listed_all == NameList{});
    CHECK(out.snapshot_all == NameList{});
    // ListResources: nothing cluster-wide; in acl-a the all-namespaces pods informer without its
    // counts (they would tell about acl-b), and not acl-b's configmaps; nothing in acl-b.
    CHECK(out.resources_all == "OK");
    CHECK(out.shown_all == NameList{});
    CHECK(out.resources_a == "OK");
    CHECK(out.shown_a == NameList{"pods@ objects=0 subscribers=0"});
    CHECK(out.resources_b == "OK");
    CHECK(out.shown_b == NameList{});
    // The denial was audited under the ServiceAccount's name.
    CHECK(AuditLogged(daemon, {fmt::format("[audit] user=\"{}\"", kReaderUser),
                               "method=\"List\" resource=\"pods\" namespace=\"acl-b\" "
                               "decision=deny code=PERMISSION_DENIED"}));
  }

  SECTION("a ServiceAccount with no permission: every read denied, ListResources empty") {
    CheckAllRefused(Read(env, env.nobody), Denied(kNobodyUser, "list pods in namespace \"acl-a\""),
                    Denied(kNobodyUser, "list pods in namespace \"acl-b\""),
                    Denied(kNobodyUser, "list pods at the cluster scope"),
                    Denied(kNobodyUser, "get pods \"a-1\" in namespace \"acl-a\""),
                    Denied(kNobodyUser, "get pods \"b-1\" in namespace \"acl-b\""),
                    Denied(kNobodyUser, "get pods \"b-1\" at the cluster scope"), "OK");
  }

  SECTION("the allowed ServiceAccount's token made for the apiserver's audience: unauthenticated") {
    const std::string refused =
        "UNAUTHENTICATED the bearer token was rejected by the apiserver: [invalid bearer token, "
        "token "
        "audiences [\"https://kubernetes.default.svc\"] is invalid for the target audiences "
        "[\"informerd\"]]";
    CheckAllRefused(Read(env, env.reader_apiserver), refused, refused, refused, refused, refused,
                    refused, refused);
  }

  SECTION("a token of a deleted ServiceAccount: unauthenticated") {
    const std::string refused =
        "UNAUTHENTICATED the bearer token was rejected by the apiserver: [invalid bearer token, "
        "serviceaccounts \"ghost\" not found]";
    CheckAllRefused(Read(env, env.ghost), refused, refused, refused, refused, refused, refused,
                    refused);
  }

  SECTION("a token nobody issued: unauthenticated") {
    const std::string refused =
        "UNAUTHENTICATED the bearer token was rejected by the apiserver: invalid bearer token";
    CheckAllRefused(Read(env, env.invalid), refused, refused, refused, refused, refused, refused,
                    refused);
  }

  SECTION("no credentials: unauthenticated") {
    const std::string refused =
        "UNAUTHENTICATED no credentials: send a bearer token (authorization: Bearer …) or a "
        "client "
        "certificate";
    CheckAllRefused(Read(env, env.anonymous), refused, refused, refused, refused, refused, refused,
                    refused);
  }

  SECTION("alice by a client certificate of the client CA: a cluster-wide reader") {
    const Outcomes out = Read(env, env.alice);
    CHECK(out.list_a == "OK");
    CHECK(out.listed_a == kPodsA);
    CHECK(out.list_b == "OK");
    CHECK(out.listed_b == kPodsB);
    CHECK(out.list_all == "OK");
    NameList all = kPodsA;
    all.insert(all.end(), kPodsB.begin(), kPodsB.end());
    CHECK(out.listed_all == all);
    CHECK(out.get_a == "OK");
    CHECK(out.get_b == "OK");
    // Allowed cluster-wide, so told what is wrong with the request.
    CHECK(out.get_all ==
          "NOT_FOUND pods \"b-1\" not found: pods is namespaced and no namespace was given");
    CHECK(out.subscribe_a == "OK");
    CHECK(out.snapshot_a == kPodsA);
    CHECK(out.subscribe_b == "OK");
    CHECK(out.snapshot_b == kPodsB);
    CHECK(out.subscribe_all == "OK");
    CHECK(out.snapshot_all == all);
    // ListResources: cluster-wide both informers with their counts (subscriber counts left out:
    // the streams this section cancelled may not all have ended on the server yet); in acl-a the
    // all-namespaces informer without counts; in acl-b that and acl-b's configmaps informer.
    CHECK(out.resources_all == "OK");
    CHECK(WithoutSubscribers(out.shown_all) ==
          NameList{fmt::format("pods@ objects={}",
                               KubectlKeys(*env.cluster, {"pods", "--all-namespaces"}).size()),
                   "configmaps@acl-b objects=1"});
    CHECK(out.resources_a == "OK");
    CHECK(out.shown_a == NameList{"pods@ objects=0 subscribers=0"});
    CHECK(out.resources_b == "OK");
    CHECK(out.shown_b ==
          NameList{"pods@ objects=0 subscribers=0", "configmaps@acl-b objects=1 subscribers=0"});
    CHECK(AuditLogged(daemon, {"[audit] user=\"alice\"", "method=\"Subscribe\"",
                               "namespace=\"acl-b\" decision=allow"}));
  }
}

TEST_CASE("a client certificate from another CA fails the TLS handshake", "[cluster]") {
  Env& env = SharedEnv();
  INFO(env.daemon->log());
  // CN=admin, O=system:masters: what the harness's admin certificate says, from the wrong CA.
  // Every call fails before it reaches the service: the connection never comes up. A valid
  // bearer token on top changes nothing.
  const std::string refused = "UNAVAILABLE failed to connect to all addresses";
  for (const Caller& caller : {env.forged, Caller{"forged admin with the reader's token",
                                                  env.reader.token, env.forged.client}}) {
    INFO(caller.name);
    const Outcomes out = Read(env, caller);
    const std::vector<std::pair<const char*, std::string>> calls = {
        {"List acl-a", out.list_a},
        {"List acl-b", out.list_b},
        {"List all", out.list_all},
        {"Get acl-a", out.get_a},
        {"Get acl-b", out.get_b},
        {"Get all", out.get_all},
        {"Subscribe acl-a", out.subscribe_a},
        {"Subscribe acl-b", out.subscribe_b},
        {"Subscribe all", out.subscribe_all},
        {"ListResources", out.resources_all},
        {"ListResources acl-a", out.resources_a},
        {"ListResources acl-b", out.resources_b},
    };
    for (const auto& [call, text] : calls) {
      INFO(call);
      CHECK_THAT(text, Catch::Matchers::StartsWith(refused));
    }
    CHECK(out.listed_a == NameList{});
    CHECK(out.listed_b == NameList{});
    CHECK(out.listed_all == NameList{});
    CHECK(out.snapshot_a == NameList{});
    CHECK(out.snapshot_b == NameList{});
    CHECK(out.snapshot_all == NameList{});
  }
  // The harness's admin certificate, from the client CA, over the same kind of channel: served.
  const Outcomes admin = Read(env, env.admin);
  CHECK(admin.list_all == "OK");
  CHECK(admin.snapshot_b == kPodsB);
}

// Sets label tick=`tick` on pod `name` of acl-a; the pod as the apiserver returned it.
ObjectKey Tick(const TestCluster& cluster, const std::string& name, int tick) {
  return KeyOf(KubectlOk(
      cluster,
      {"patch", "pod", name, "-n", kA, "--type=merge", "-p",
       fmt::format(R"({{"metadata":{{"labels":{{"tick":"{}"}}}}}})", tick), "-o", "json"}));
}

TEST_CASE("deleting the RoleBinding ends an open Subscribe PERMISSION_DENIED within the TTL",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  INFO(daemon.log());
  // The stream's allowed decision may have been cached just before the revocation (TTL), and the
  // re-authorization that finds it expired comes at most one more TTL later (a recheck landing
  // a moment before the entry expires is answered from the cache); the rest is slack for the
  // apiserver's RBAC watch, the review and a loaded host.
  const auto bound = 2 * kAuthorizedTtl + seconds(4);
  const std::string user = kStreamerUser;
  const Caller streamer{"streamer", env.streamer_token, {}};
  Subscriber stream(ChannelFor(env, streamer), SubscribeTo("pods", kA));
  REQUIRE(stream.WaitFor([](const std::vector<v1::Event>& events) { return HasSynced(events); },
                         seconds(20)));
  // Allowed streams survive their re-authorization, and keep delivering.
  CHECK_FALSE(stream.WaitForEnd(kAuthorizedTtl + seconds(1)).has_value());
  const ObjectKey before = Tick(cluster, "a-2", 0);
  CHECK(stream.WaitFor(
      [&](const std::vector<v1::Event>& events) {
        return std::any_of(events.begin(), events.end(), [&](const v1::Event& event) {
          return event.resource_version() == before.resource_version;
        });
      },
      seconds(10)));
  const std::size_t delivered_before = stream.count();

  KubectlOk(cluster, {"delete", "rolebinding", "streamer-pods", "-n", kA});
  const Clock::time_point revoked_at = Clock::now();
  // Pods keep changing after the revocation until the stream ends (and beyond).
  std::set<std::string> changed_after_revocation;
  std::optional<grpc::Status> end;
  Clock::time_point ended_at;
  for (int tick = 1; !end && Clock::now() < revoked_at + bound + seconds(10); ++tick) {
    changed_after_revocation.insert(Tick(cluster, "a-2", tick).resource_version);
    end = stream.WaitForEnd(milliseconds(250));
    ended_at = Clock::now();
  }
  const auto took = std::chrono::duration_cast<milliseconds>(ended_at - revoked_at);
  const std::string timing = fmt::format("the stream {} {} ms after the RoleBinding was deleted",
                                         end ? "ended" : "was still open", took.count());
  std::fprintf(stderr, "%s\n", timing.c_str());
  INFO(timing);
  REQUIRE(end.has_value());
  CHECK(Text(*end) == fmt::format("PERMISSION_DENIED the stream's permission was revoked: user "
                                  "\"{}\" cannot list pods in namespace \"acl-a\"",
                                  user));
  CHECK(took <= bound);
  // Changes after the stream's end: a pod modified and one created.
  std::set<std::string> changed_after_end;
  for (int tick = 100; tick < 103; ++tick) {
    changed_after_end.insert(Tick(cluster, "a-3", tick).resource_version);
  }
  CreateOk(cluster, PodYaml(kA, "a-late"));
  std::this_thread::sleep_for(seconds(1));

  // Asserted: every event delivered after the revocation arrived within `bound` of it (changes
  // made between the revocation and the denial may legitimately arrive: that is the cached
  // decision's TTL); no change made after the stream's end (a modified pod, a created one) ever
  // arrived; every object was of acl-a.
  const std::vector<v1::Event> events = stream.events();
  const std::vector<Clock::time_point> arrivals = stream.arrivals();
  REQUIRE(events.size() == arrivals.size());
  std::vector<std::string> late;
  for (std::size_t i = delivered_before; i < events.size(); ++i) {
    if (arrivals[i] > revoked_at + bound) late.push_back(Describe(events[i]));
    if (changed_after_end.count(events[i].resource_version()) > 0 || events[i].name() == "a-late") {
      late.push_back("after the end: " + Describe(events[i]));
    }
  }
  CHECK(late == NameList{});
  for (const v1::Event& event : events) {
    if (event.type() != v1::Event::SYNCED) CHECK(event.namespace_() == kA);
  }
  std::size_t delivered_after_revocation = 0;
  for (const v1::Event& event : events) {
    delivered_after_revocation += changed_after_revocation.count(event.resource_version());
  }
  // Informational: changes between the revocation and the decision may be delivered (the TTL).
  std::fprintf(stderr, "%zu of %zu changes after the revocation were delivered before the end\n",
               delivered_after_revocation, changed_after_revocation.size());

  // Subscribing again is refused at once, without a snapshot; so is a List.
  auto stub = v1::Informer::NewStub(ChannelFor(env, streamer));
  const std::string denied = Denied(user, fmt::format("list pods in namespace \"{}\"", kA));
  CHECK(Text(SubscribeError(*stub, SubscribeTo("pods", kA))) == denied);
  CHECK(Text(List(*stub, "pods", kA).status) == denied);
  // The stream's audit line: ended by the denial.
  CHECK(AuditLogged(daemon, {fmt::format("[audit] user=\"{}\"", user), "method=\"Subscribe\"",
                             "namespace=\"acl-a\" decision=deny code=PERMISSION_DENIED"}));
  KubectlOk(cluster, {"delete", "pod", "a-late", "-n", kA, "--grace-period=0", "--force"});
}

}  // namespace
}  // namespace informerd::test::e2e

// The real-cluster harness itself: TestCluster (cluster_fixture.h) and cluster.sh bring up a
// kube-apiserver whose authentication, RBAC, compaction, restart and clean-up behave as the
// later tests assume.
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "test/cluster/cluster_fixture.h"

namespace informerd::test {
namespace {

using std::chrono::steady_clock;

std::unique_ptr<TestCluster> StartCluster(const ClusterOptions& options = {}) {
  absl::StatusOr<std::unique_ptr<TestCluster>> cluster = TestCluster::Start(options);
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  return *std::move(cluster);
}

SubprocessResult Kubectl(const TestCluster& cluster, Identity identity,
                         const std::vector<std::string>& args) {
  absl::StatusOr<SubprocessResult> result = cluster.Kubectl(identity, args);
  INFO(fmt::format("kubectl as {}: {}", IdentityName(identity), CommandLine(args)));
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return *std::move(result);
}

// Runs kubectl and requires success; returns its stdout.
std::string KubectlOk(const TestCluster& cluster, Identity identity,
                      const std::vector<std::string>& args) {
  SubprocessResult result = Kubectl(cluster, identity, args);
  INFO(fmt::format("kubectl as {}: {}\nstdout: {}\nstderr: {}", IdentityName(identity),
                   CommandLine(args), result.out, result.err));
  REQUIRE(result.exit_code == 0);
  return result.out;
}

void ApplyOk(const TestCluster& cluster, const std::string& yaml) {
  absl::Status applied = cluster.ApplyYaml(yaml);
  INFO(applied.ToString());
  REQUIRE(applied.ok());
}

std::string ResourceVersion(const TestCluster& cluster, const std::string& kind_and_name,
                            const std::string& ns) {
  std::string rv =
      KubectlOk(cluster, Identity::kAdminToken,
                {"get", kind_and_name, "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}"});
  REQUIRE(!rv.empty());
  return rv;
}

// A watch that ends by itself: the server closes it after `seconds`, or at once after an error.
std::string WatchFrom(const TestCluster& cluster, const std::string& resource_path,
                      const std::string& resource_version, int seconds = 2) {
  return KubectlOk(cluster, Identity::kAdminToken,
                   {"get", "--raw",
                    fmt::format("{}?watch=1&resourceVersion={}&timeoutSeconds={}", resource_path,
                                resource_version, seconds)});
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// True once `pid` has exited (reaping it if it is our child: the fixture makes us a subreaper).
bool Exited(pid_t pid) {
  pid_t done = waitpid(pid, nullptr, WNOHANG);
  if (done == pid) return true;
  if (done == 0) return false;
  return kill(pid, 0) != 0 && errno == ESRCH;
}

bool AllExitWithin(const std::vector<pid_t>& pids, std::chrono::seconds limit) {
  const auto deadline = steady_clock::now() + limit;
  for (pid_t pid : pids) {
    while (!Exited(pid)) {
      if (steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return true;
}

constexpr char kNamespaceAndPod[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: smoke
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  namespace: smoke
spec:
  containers:
  - name: c
    image: registry.invalid/never-pulled:1
)";

TEST_CASE("admin writes; alice reads by token and by certificate; bob is forbidden", "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  REQUIRE(Contains(cluster->url(), "https://127.0.0.1:"));
  REQUIRE(std::filesystem::exists(cluster->ca_file()));
  REQUIRE(!cluster->token(Identity::kAliceToken).empty());
  REQUIRE(cluster->token(Identity::kAliceCert).empty());
  REQUIRE(std::filesystem::exists(cluster->client_cert_file(Identity::kAliceCert)));

  ApplyOk(*cluster, kNamespaceAndPod);
  // Client-certificate admin: O=system:masters makes it a cluster admin too.
  KubectlOk(*cluster, Identity::kAdminCert,
            {"create", "configmap", "cm1", "-n", "smoke", "--from-literal=k=v"});

  for (Identity alice : {Identity::kAliceToken, Identity::kAliceCert}) {
    INFO(IdentityName(alice));
    CHECK(KubectlOk(*cluster, alice, {"get", "pods", "-n", "smoke", "-o", "name"}) == "pod/p1\n");
    CHECK(KubectlOk(*cluster, alice, {"get", "namespace", "smoke", "-o", "name"}) ==
          "namespace/smoke\n");
    CHECK(KubectlOk(*cluster, alice,
                    {"get", "configmap", "cm1", "-n", "smoke", "-o", "jsonpath={.data.k}"}) == "v");
    // Read-only, and not secrets: alice is not an admin under either credential.
    SubprocessResult create = Kubectl(*cluster, alice, {"create", "configmap", "x", "-n", "smoke"});
    CHECK(create.exit_code != 0);
    CHECK(Contains(create.err, "configmaps is forbidden"));
    CHECK(Contains(create.err, "User \"alice\" cannot create resource \"configmaps\""));
    SubprocessResult secrets = Kubectl(*cluster, alice, {"get", "secrets", "-n", "smoke"});
    CHECK(secrets.exit_code != 0);
    CHECK(Contains(secrets.err, "Forbidden"));
  }

  SubprocessResult bob = Kubectl(*cluster, Identity::kBobToken, {"get", "pods", "-n", "smoke"});
  CHECK(bob.exit_code != 0);
  CHECK(Contains(bob.err, "Forbidden"));
  CHECK(Contains(bob.err, "User \"bob\" cannot list resource \"pods\""));
  // The raw status code, as informerd's client will see it.
  SubprocessResult bob_raw =
      Kubectl(*cluster, Identity::kBobToken, {"get", "--raw", "/api/v1/namespaces/smoke/pods"});
  CHECK(bob_raw.exit_code != 0);
  CHECK(Contains(bob_raw.err, "Forbidden"));
}

TEST_CASE(
    "with the watch cache, compaction expires paginated lists; a restart expires watches "
    "and keeps the data",
    "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  ApplyOk(*cluster, kNamespaceAndPod);
  const std::string uid =
      KubectlOk(*cluster, Identity::kAdminToken,
                {"get", "pod", "p1", "-n", "smoke", "-o", "jsonpath={.metadata.uid}"});
  const std::string old_rv = ResourceVersion(*cluster, "pod/p1", "smoke");
  for (const char* label : {"step=1", "step=2"}) {
    KubectlOk(*cluster, Identity::kAdminToken,
              {"label", "pod", "p1", "-n", "smoke", label, "--overwrite"});
  }
  // A list with a limit at an exact resourceVersion is read from etcd, not from the cache.
  const std::string paged_list =
      fmt::format("/api/v1/namespaces/smoke/pods?limit=1&resourceVersion={}", old_rv);
  CHECK(Contains(KubectlOk(*cluster, Identity::kAdminToken, {"get", "--raw", paged_list}),
                 "\"name\":\"p1\""));

  absl::StatusOr<int64_t> revision = cluster->CompactEtcd();
  INFO(revision.status().ToString());
  REQUIRE(revision.ok());
  CHECK(*revision >= std::stoll(old_rv) + 2);

  SubprocessResult expired_list =
      Kubectl(*cluster, Identity::kAdminToken, {"get", "--raw", paged_list});
  INFO(expired_list.err);
  CHECK(expired_list.exit_code != 0);
  CHECK(Contains(expired_list.err, "Expired"));
  CHECK(Contains(expired_list.err, "too old"));
  // Watches are served from the apiserver's cache, whose window still holds old_rv.
  std::string cached_watch = WatchFrom(*cluster, "/api/v1/namespaces/smoke/pods", old_rv);
  CHECK(Contains(cached_watch, "\"type\":\"MODIFIED\""));
  CHECK(!Contains(cached_watch, "\"type\":\"ERROR\""));

  const pid_t old_pid = cluster->apiserver_pid();
  const std::string old_url = cluster->url();
  absl::Status restarted = cluster->RestartApiserver();
  INFO(restarted.ToString());
  REQUIRE(restarted.ok());
  CHECK(cluster->apiserver_pid() != old_pid);
  CHECK(Exited(old_pid));
  CHECK(cluster->url() == old_url);
  // etcd kept everything.
  CHECK(KubectlOk(*cluster, Identity::kAliceToken,
                  {"get", "pod", "p1", "-n", "smoke", "-o", "jsonpath={.metadata.uid}"}) == uid);
  CHECK(KubectlOk(*cluster, Identity::kAliceToken,
                  {"get", "pod", "p1", "-n", "smoke", "-o", "jsonpath={.metadata.labels.step}"}) ==
        "2");
  // The new cache starts at the current revision: a watch from before it gets 410 Gone.
  std::string expired_watch = WatchFrom(*cluster, "/api/v1/namespaces/smoke/pods", old_rv);
  CHECK(Contains(expired_watch, "\"type\":\"ERROR\""));
  CHECK(Contains(expired_watch, "\"code\":410"));
  CHECK(Contains(expired_watch, "too old resource version"));
}

TEST_CASE(
    "without the watch cache, compaction makes a watch from an old resourceVersion fail "
    "with 410",
    "[cluster]") {
  ClusterOptions options;
  options.watch_cache = false;
  std::unique_ptr<TestCluster> cluster = StartCluster(options);
  KubectlOk(*cluster, Identity::kAdminToken, {"create", "namespace", "smoke"});
  KubectlOk(*cluster, Identity::kAdminToken,
            {"create", "configmap", "cm1", "-n", "smoke", "--from-literal=k=0"});
  const std::string old_rv = ResourceVersion(*cluster, "configmap/cm1", "smoke");
  // Two newer revisions: compacting at the newest removes old_rv + 1, where the watch would start.
  for (const char* label : {"step=1", "step=2"}) {
    KubectlOk(*cluster, Identity::kAdminToken,
              {"label", "configmap", "cm1", "-n", "smoke", label, "--overwrite"});
  }
  const std::string path = "/api/v1/namespaces/smoke/configmaps";
  std::string before = WatchFrom(*cluster, path, old_rv, 1);
  CHECK(Contains(before, "\"type\":\"MODIFIED\""));
  CHECK(!Contains(before, "\"type\":\"ERROR\""));

  absl::StatusOr<int64_t> revision = cluster->CompactEtcd();
  INFO(revision.status().ToString());
  REQUIRE(revision.ok());

  std::string after = WatchFrom(*cluster, path, old_rv, 1);
  INFO(after);
  CHECK(Contains(after, "\"type\":\"ERROR\""));
  CHECK(Contains(after, "\"code\":410"));
  CHECK(Contains(after, "too old"));
  CHECK(!Contains(after, "\"type\":\"MODIFIED\""));
  // From the compaction revision on, watching still works.
  std::string current = WatchFrom(*cluster, path, std::to_string(*revision), 1);
  CHECK(!Contains(current, "\"type\":\"ERROR\""));
}

TEST_CASE("the destructor stops etcd and kube-apiserver and removes the directory", "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  const std::vector<pid_t> pids = {cluster->apiserver_pid(), cluster->etcd_pid()};
  const std::string dir = cluster->dir();
  REQUIRE(pids[0] > 1);
  REQUIRE(pids[1] > 1);
  REQUIRE(!Exited(pids[0]));
  REQUIRE(!Exited(pids[1]));
  cluster.reset();
  // Dead and reaped at once, not eventually.
  CHECK(AllExitWithin(pids, std::chrono::seconds(0)));
  CHECK(!std::filesystem::exists(dir));
}

TEST_CASE("the watchdog stops the cluster when its owner process dies", "[cluster]") {
  // The owner stands in for a test process killed before its destructors could run.
  pid_t owner = -1;
  char sleep_path[] = "/bin/sleep";
  char seconds[] = "600";
  char* argv[] = {sleep_path, seconds, nullptr};
  REQUIRE(posix_spawn(&owner, sleep_path, nullptr, nullptr, argv, environ) == 0);

  ClusterOptions options;
  options.owner_pid = owner;
  std::unique_ptr<TestCluster> cluster = StartCluster(options);
  const std::vector<pid_t> pids = {cluster->apiserver_pid(), cluster->etcd_pid()};
  REQUIRE(!Exited(pids[0]));
  REQUIRE(!Exited(pids[1]));

  REQUIRE(kill(owner, SIGKILL) == 0);
  REQUIRE(waitpid(owner, nullptr, 0) == owner);
  // The watchdog polls once a second; stopping takes about one more.
  CHECK(AllExitWithin(pids, std::chrono::seconds(20)));
}

}  // namespace
}  // namespace informerd::test

// TestCluster: a real etcd + kube-apiserver (Kubernetes 1.20) on loopback for one test.
//
// Every test that needs a real apiserver starts one of these (tests tagged "cluster"). It drives
// test/cluster/cluster.sh (a data dependency, found through Bazel's runfiles): Start() runs
// `cluster.sh start` in a fresh temporary directory and reads the DIR/env it writes; the
// destructor runs `cluster.sh stop`, reaps the daemons and deletes the directory (kept if
// INFORMERD_KEEP_CLUSTER_DIR is set, for post-mortems). The cluster serves TLS with its own CA,
// RBAC authorization, and these identities (see cluster.sh for the exact grants):
//   admin (token or client certificate, group system:masters)  may do anything;
//   alice (token or client certificate)  get/list/watch on common objects, not secrets;
//   bob (token)  authenticated, allowed nothing.
// No controller-manager or scheduler runs: pods stay Pending, namespaces never finish deleting.
//
// The kube-apiserver binary is $INFORMERD_KUBE_APISERVER, else build_kube_apiserver.sh's cached
// build; Start() fails at once, saying how to build it, when there is none (see
// KubeApiserverBinary). Process-wide effect: Start() makes the test process a child subreaper
// (prctl), so the daemons become its children and it reaps them when they stop; and
// `cluster.sh start` gets --owner-pid, so a watchdog stops the cluster if the test dies without
// running the destructor.
//
// Threads: one test thread owns a TestCluster. Kubectl() and the accessors may be called from
// several threads at once; RestartApiserver() and CompactEtcd() must not overlap other calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test/common/run_subprocess.h"

namespace informerd::test {

// Who talks to the apiserver. Each has a kubeconfig in DIR/kubeconfig/<IdentityName>.
enum class Identity {
  kAdminToken,  // user "admin", group system:masters, bearer token
  kAdminCert,   // the same user by client certificate (CN=admin, O=system:masters)
  kAliceToken,  // user "alice", read-only on the ClusterRole informerd-test-reader
  kAliceCert,   // the same user by client certificate (CN=alice)
  kBobToken,    // user "bob", no permissions
};

// "admin-token", "admin-cert", "alice-token", "alice-cert", "bob-token".
std::string_view IdentityName(Identity identity);

struct ClusterOptions {
  // kube-apiserver --watch-cache. With the cache (Kubernetes' default), watches are served from
  // the apiserver's memory: an etcd compaction does not expire them, only falling out of the
  // cache window (or an apiserver restart) does. Without it, watches go to etcd and a compaction
  // makes older resourceVersions fail with 410.
  bool watch_cache = true;
  // Extra kube-apiserver flags ("--flag=value"), kept across RestartApiserver().
  std::vector<std::string> apiserver_args;
  // The watchdog stops the cluster once this process is gone; 0 means the test process.
  pid_t owner_pid = 0;
};

class TestCluster {
 public:
  // Starts a cluster; takes a few seconds. Fails with the script's message (which ends with the
  // tail of the apiserver's or etcd's log) if it does not come up.
  static absl::StatusOr<std::unique_ptr<TestCluster>> Start(const ClusterOptions& options = {});

  // Stops the cluster (see Stop()); errors are printed to stderr, since a destructor cannot
  // report them.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Stops both daemons and waits until they are gone. Idempotent.
  absl::Status Stop();

  // Runs /usr/bin/kubectl with `identity`'s kubeconfig and a per-cluster discovery cache, then
  // `args`. A failed kubectl is a result (exit_code != 0), not an error; errors are "could not
  // run" and timeouts.
  absl::StatusOr<SubprocessResult> Kubectl(Identity identity, const std::vector<std::string>& args,
                                           const std::string& stdin_text = "") const;

  // `kubectl apply -f -` as `identity` (default admin); an error carries kubectl's stderr.
  absl::Status ApplyYaml(const std::string& yaml, Identity identity = Identity::kAdminToken) const;

  // Compacts etcd at its current revision, so that every older resourceVersion is gone from
  // etcd. Returns that revision.
  absl::StatusOr<int64_t> CompactEtcd();

  // Stops kube-apiserver and starts it again on the same port with the same flags and etcd;
  // returns once /readyz is ok. Data survives; watches break; the watch cache starts afresh.
  absl::Status RestartApiserver();

  // "https://127.0.0.1:PORT".
  const std::string& url() const { return Env("APISERVER_URL"); }
  const std::string& ca_file() const { return Env("CA_FILE"); }
  // "http://127.0.0.1:PORT" (plain HTTP, no auth: for etcdctl).
  const std::string& etcd_endpoint() const { return Env("ETCD_ENDPOINT"); }
  const std::string& dir() const { return dir_; }
  const std::string& apiserver_log() const { return Env("APISERVER_LOG"); }
  pid_t apiserver_pid() const;
  pid_t etcd_pid() const;
  // The kubeconfig file of an identity (server, CA and credentials; one context, current).
  std::string kubeconfig(Identity identity) const;
  // The bearer token of a token identity; empty for certificate identities.
  std::string token(Identity identity) const;
  // The client certificate and key files of a certificate identity; empty for token identities.
  std::string client_cert_file(Identity identity) const;
  std::string client_key_file(Identity identity) const;

 private:
  TestCluster(std::string script, std::string kube_apiserver, std::string dir)
      : script_(std::move(script)),
        kube_apiserver_(std::move(kube_apiserver)),
        dir_(std::move(dir)) {}

  // Runs `cluster.sh COMMAND DIR ARGS...`; an error if it exits non-zero, carrying its stderr.
  absl::StatusOr<SubprocessResult> RunScript(const std::string& command,
                                             const std::vector<std::string>& args = {}) const;
  // (Re)reads DIR/env.
  absl::Status LoadEnv();
  const std::string& Env(const std::string& key) const;
  std::string IdentityEnv(const std::string& prefix, Identity identity) const;
  // Reaps the processes in `pids` once they have exited (they are our children: subreaper).
  static void Reap(const std::vector<pid_t>& pids);

  std::string script_;
  std::string kube_apiserver_;
  std::string dir_;
  std::map<std::string, std::string> env_;
  bool stopped_ = false;
  // Every daemon pid this cluster has had, for reaping (restarts add apiserver pids).
  std::vector<pid_t> pids_;
};

// The path of test/cluster/cluster.sh in the runfiles.
absl::StatusOr<std::string> ClusterScriptPath();

// $INFORMERD_KUBE_APISERVER (FailedPrecondition if it is not an executable file), else the
// cached build that `build_kube_apiserver.sh --check` prints. Never builds (that takes minutes,
// longer than a test may wait): without a cached build it fails at once, FailedPrecondition, with
// a message that gives the command that builds it.
absl::StatusOr<std::string> KubeApiserverBinary();

}  // namespace informerd::test

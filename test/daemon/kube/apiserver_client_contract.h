// The apiserver client's contract suite: one set of Catch2 cases (apiserver_client_contract.cc,
// tag "[contract]") that every test binary linking this library runs against the backend it
// provides: the fake apiserver (apiserver_client_contract_fake_test.cc) or a real kube-apiserver
// 1.20 with etcd (apiserver_client_contract_cluster_test.cc). The cases are the behaviours both
// can show on demand and the product relies on: LIST pagination and resourceVersion rules, GET
// and 404s, WATCH order, bookmarks and timeoutSeconds, 410 after a compaction, selectors, 401,
// a too-large resourceVersion, WatchList on a server without it, discovery, and the TokenReview
// and SubjectAccessReview POSTs of delegated authentication and authorization. A case that passes
// on one backend and fails on the other shows where the fake differs from the real thing.
//
// Faults only the fake can produce (cut connections, garbage, scripted answers) and what only
// the real cluster has (client certificates, RBAC) stay in apiserver_client_test.cc and
// apiserver_client_cluster_test.cc.
//
// Threads and ownership: each test binary defines MakeContractBackend(); the suite calls it once,
// on the first case that needs a backend, shares that backend between all cases of the run (a
// real cluster takes seconds to start) and destroys it when the run ends. Cases run one at a
// time on Catch2's thread and keep to namespaces of their own, so they do not see each other's
// objects.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::test {

// The objects cases make. Pods for what the informers mostly watch; ConfigMaps where the exact
// sequence of watch events matters, since deleting a pod on a real apiserver first sets its
// deletionTimestamp (a MODIFIED event) while the fake deletes at once.
enum class ObjectKind { kPod, kConfigMap };

// "pods", "configmaps": the resource's path segment.
const char* PluralOf(ObjectKind kind);

using LabelMap = std::map<std::string, std::string>;

// A server the contract cases run against, and the means to change what it stores. Every
// method is called on the test thread only.
class ContractBackend {
 public:
  virtual ~ContractBackend() = default;

  // For messages: "fake apiserver", "kube-apiserver 1.20 + etcd".
  virtual std::string name() const = 0;

  // A RestConfig for the server (its URL and CA) with `credentials` and `identity`, the way a
  // kubeconfig would give them.
  virtual daemon::RestConfig Config(std::shared_ptr<daemon::CredentialSource> credentials,
                                    const std::string& identity) const = 0;
  // A bearer token the server accepts for everything the cases do (creating reviews included).
  virtual std::string valid_token() const = 0;
  // The token of a reader, for the review cases: an audience-agnostic token (a static token
  // file's) of user "alice" (uid "uid-alice", group system:authenticated), whom RBAC lets get,
  // list and watch pods and configmaps anywhere but not secrets. User "bob" may read nothing.
  virtual std::string reader_token() const = 0;

  // Makes `ns` exist; the real apiserver refuses objects in a namespace that does not.
  virtual absl::Status CreateNamespace(const std::string& ns) = 0;
  // Creates an object with `labels`; returns its resourceVersion.
  virtual absl::StatusOr<std::string> Create(ObjectKind kind, const std::string& ns,
                                             const std::string& name, const LabelMap& labels) = 0;
  // Sets one label (added, or overwritten), keeping the others; returns the new
  // resourceVersion.
  virtual absl::StatusOr<std::string> SetLabel(ObjectKind kind, const std::string& ns,
                                               const std::string& name, const std::string& key,
                                               const std::string& value) = 0;
  virtual absl::Status Delete(ObjectKind kind, const std::string& ns, const std::string& name) = 0;

  // Compacts storage at the current revision: from now on a LIST at an older resourceVersion
  // and a continue token issued before fail with 410 Expired.
  virtual absl::Status CompactStorage() = 0;
  // From now on a watch cannot start at a resourceVersion older than the current one: the server
  // answers with an ERROR event carrying 410 Expired. (A real apiserver serves watches from its
  // watch cache, which keeps events an etcd compaction removed, and loses them when it
  // restarts.) Connections to the server may break; clients made afterwards work.
  virtual absl::Status ForgetWatchHistory() = 0;
};

// Defined by each test binary: the backend its run uses. An error fails every contract case
// with its message.
absl::StatusOr<std::unique_ptr<ContractBackend>> MakeContractBackend();

}  // namespace informerd::test

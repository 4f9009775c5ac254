// The apiserver client's contract suite (apiserver_client_contract.h) against the fake apiserver
// (test/fakeapi), set up like the real cluster of apiserver_client_contract_cluster_test: TLS, a
// bearer token required on every request, Kubernetes 1.20's answer to WatchList (422), the
// resources the cases and discovery need, and review answers for test/cluster's users (alice's
// static token and RBAC grant, bob with nothing).
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/daemon/kube/apiserver_client_contract.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

constexpr char kToken[] = "contract-token";
constexpr char kReaderToken[] = "alice-static-token";

fakeapi::ResourceType Events() {
  fakeapi::ResourceType t;
  t.version = "v1";
  t.plural = "events";
  t.kind = "Event";
  t.short_names = {"ev"};
  return t;
}

fakeapi::ResourceType CustomResourceDefinitions() {
  fakeapi::ResourceType t;
  t.group = "apiextensions.k8s.io";
  t.version = "v1";
  t.plural = "customresourcedefinitions";
  t.kind = "CustomResourceDefinition";
  t.short_names = {"crd", "crds"};
  t.namespaced = false;
  return t;
}

class FakeBackend final : public ContractBackend {
 public:
  absl::Status Start() {
    fakeapi::ServerOptions options;
    options.tls = true;
    options.resources.push_back(Events());
    options.resources.push_back(CustomResourceDefinitions());
    options.watch_list = fakeapi::WatchListSupport::kRejectedLikeOldServer;
    options.git_version = "v1.20.2";
    options.review_apis = true;
    absl::Status started = fake_.Start(options);
    if (!started.ok()) return started;
    fake_.RequireToken(kToken);
    SetUpReviews();
    return absl::OkStatus();
  }

  std::string name() const override { return "fake apiserver"; }

  daemon::RestConfig Config(std::shared_ptr<daemon::CredentialSource> credentials,
                            const std::string& identity) const override {
    return MakeRestConfig(fake_.base_url(), fake_.ca_pem(), std::move(credentials), identity);
  }

  std::string valid_token() const override { return kToken; }
  std::string reader_token() const override { return kReaderToken; }

  absl::Status CreateNamespace(const std::string& ns) override {
    return fake_.Upsert("namespaces", "", ns).status();
  }

  absl::StatusOr<std::string> Create(ObjectKind kind, const std::string& ns,
                                     const std::string& name, const LabelMap& labels) override {
    const auto key = std::make_tuple(kind, ns, name);
    if (labels_.count(key) != 0) {
      return absl::AlreadyExistsError(
          fmt::format("{} \"{}\" already exists", PluralOf(kind), name));
    }
    labels_[key] = labels;
    return Put(kind, ns, name);
  }

  absl::StatusOr<std::string> SetLabel(ObjectKind kind, const std::string& ns,
                                       const std::string& name, const std::string& key,
                                       const std::string& value) override {
    auto it = labels_.find(std::make_tuple(kind, ns, name));
    if (it == labels_.end()) {
      return absl::NotFoundError(fmt::format("{} \"{}\" not found", PluralOf(kind), name));
    }
    it->second[key] = value;
    return Put(kind, ns, name);
  }

  absl::Status Delete(ObjectKind kind, const std::string& ns, const std::string& name) override {
    labels_.erase(std::make_tuple(kind, ns, name));
    return fake_.Delete(PluralOf(kind), ns, name).status();
  }

  absl::Status CompactStorage() override {
    fake_.Compact();
    return absl::OkStatus();
  }

  absl::Status ForgetWatchHistory() override {
    fake_.Compact();
    return absl::OkStatus();
  }

 private:
  // test/cluster's alice: a static token; RBAC's ClusterRole informerd-test-reader (reads, not
  // secrets) bound to her by informerd-test-reader-alice.
  void SetUpReviews() {
    fakeapi::TokenIdentity alice;
    alice.username = "alice";
    alice.uid = "uid-alice";
    alice.groups = {"system:authenticated"};
    fake_.reviews().AddToken(kReaderToken, alice);
    fakeapi::AccessRule secrets;
    secrets.user = "alice";
    secrets.resource = "secrets";
    fake_.reviews().Deny(secrets);
    for (const char* verb : {"get", "list", "watch"}) {
      fakeapi::AccessRule read;
      read.user = "alice";
      read.verb = verb;
      fake_.reviews().Allow(
          read,
          "RBAC: allowed by ClusterRoleBinding \"informerd-test-reader-alice\" of "
          "ClusterRole \"informerd-test-reader\" to User \"alice\"");
    }
  }

  absl::StatusOr<std::string> Put(ObjectKind kind, const std::string& ns, const std::string& name) {
    fakeapi::ObjectSpec spec;
    spec.labels = labels_.at(std::make_tuple(kind, ns, name));
    absl::StatusOr<std::uint64_t> rv = fake_.Upsert(PluralOf(kind), ns, name, spec);
    if (!rv.ok()) return rv.status();
    return std::to_string(*rv);
  }

  fakeapi::FakeApiServer fake_;
  // The labels of every object the cases made, since an update replaces the whole object.
  std::map<std::tuple<ObjectKind, std::string, std::string>, LabelMap> labels_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ContractBackend>> MakeContractBackend() {
  auto backend = std::make_unique<FakeBackend>();
  absl::Status started = backend->Start();
  if (!started.ok()) return started;
  return backend;
}

}  // namespace informerd::test

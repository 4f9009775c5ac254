// The apiserver client's contract suite (apiserver_client_contract.h) against a real
// kube-apiserver 1.20 with etcd (test/cluster), with the watch cache on as in any real cluster.
// The cases talk to it as admin by token; changes are made with kubectl.
#include <memory>
#include <string>
#include <vector>

#include "daemon/kube/auth/file_contents.h"
#include "fmt/format.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/api_test_support.h"
#include "test/daemon/kube/apiserver_client_contract.h"

namespace informerd::test {
namespace {

std::string LabelsJson(const LabelMap& labels) {
  std::string json;
  for (const auto& [key, value] : labels) {
    json += fmt::format("{}\"{}\":\"{}\"", json.empty() ? "" : ",", key, value);
  }
  return "{" + json + "}";
}

class ClusterBackend final : public ContractBackend {
 public:
  absl::Status Start() {
    absl::StatusOr<std::unique_ptr<TestCluster>> cluster = TestCluster::Start();
    if (!cluster.ok()) return cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<std::string> ca = daemon::ReadFileContents(cluster_->ca_file());
    if (!ca.ok()) return ca.status();
    ca_pem_ = *std::move(ca);
    return absl::OkStatus();
  }

  std::string name() const override { return "kube-apiserver 1.20 + etcd"; }

  daemon::RestConfig Config(std::shared_ptr<daemon::CredentialSource> credentials,
                            const std::string& identity) const override {
    return MakeRestConfig(cluster_->url(), ca_pem_, std::move(credentials), identity);
  }

  std::string valid_token() const override { return cluster_->token(Identity::kAdminToken); }
  std::string reader_token() const override { return cluster_->token(Identity::kAliceToken); }

  absl::Status CreateNamespace(const std::string& ns) override {
    return Kubectl({"create", "namespace", ns}).status();
  }

  absl::StatusOr<std::string> Create(ObjectKind kind, const std::string& ns,
                                     const std::string& name, const LabelMap& labels) override {
    const std::string metadata = fmt::format(R"({{"name":"{}","namespace":"{}","labels":{}}})",
                                             name, ns, LabelsJson(labels));
    const std::string manifest =
        kind == ObjectKind::kPod
            ? fmt::format(R"({{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{{"containers":)"
                          R"([{{"name":"c","image":"registry.invalid/never-pulled:1"}}]}}}})",
                          metadata)
            : fmt::format(R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{},)"
                          R"("data":{{"k":"v"}}}})",
                          metadata);
    return Kubectl({"create", "-f", "-", "-o", "jsonpath={.metadata.resourceVersion}"}, manifest);
  }

  absl::StatusOr<std::string> SetLabel(ObjectKind kind, const std::string& ns,
                                       const std::string& name, const std::string& key,
                                       const std::string& value) override {
    // A patch prints the object it made (`kubectl label -o` prints the one it read).
    return Kubectl({"patch", PluralOf(kind), name, "-n", ns, "--type=merge", "-p",
                    fmt::format(R"({{"metadata":{{"labels":{{"{}":"{}"}}}}}})", key, value), "-o",
                    "jsonpath={.metadata.resourceVersion}"});
  }

  absl::Status Delete(ObjectKind kind, const std::string& ns, const std::string& name) override {
    return Kubectl({"delete", PluralOf(kind), name, "-n", ns, "--wait=false"}).status();
  }

  absl::Status CompactStorage() override { return cluster_->CompactEtcd().status(); }

  absl::Status ForgetWatchHistory() override {
    absl::Status compacted = CompactStorage();
    if (!compacted.ok()) return compacted;
    // The watch cache kept what etcd no longer has; a new apiserver starts a new cache at the
    // current revision.
    return cluster_->RestartApiserver();
  }

 private:
  // kubectl as admin; its stdout, or an error with its stderr.
  absl::StatusOr<std::string> Kubectl(const std::vector<std::string>& args,
                                      const std::string& stdin_text = "") const {
    absl::StatusOr<SubprocessResult> result =
        cluster_->Kubectl(Identity::kAdminToken, args, stdin_text);
    if (!result.ok()) return result.status();
    if (result->exit_code != 0) {
      return absl::InternalError(fmt::format("kubectl {} exited with {}: {}", CommandLine(args),
                                             result->exit_code, result->err));
    }
    return result->out;
  }

  std::unique_ptr<TestCluster> cluster_;
  std::string ca_pem_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ContractBackend>> MakeContractBackend() {
  auto backend = std::make_unique<ClusterBackend>();
  absl::Status started = backend->Start();
  if (!started.ok()) return started;
  return backend;
}

}  // namespace informerd::test

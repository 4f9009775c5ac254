// The kubeconfigs of a real apiserver (test/cluster/cluster.sh writes them as kubectl users
// would) load into the RestConfig that the apiserver client will use: server, CA and
// credentials as the harness reports them.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "daemon/kube/auth/client_config.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using informerd::test::Identity;
using informerd::test::IdentityName;
using informerd::test::TestCluster;
using testing::ReadAll;

TEST_CASE("the harness's token and certificate kubeconfigs load field for field", "[cluster]") {
  absl::StatusOr<std::unique_ptr<TestCluster>> cluster = TestCluster::Start();
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  const TestCluster& c = **cluster;

  for (Identity identity : {Identity::kAdminToken, Identity::kAdminCert, Identity::kAliceCert}) {
    const std::string name(IdentityName(identity));
    INFO(name);
    ClientConfigOptions options;
    options.kubeconfig_path = c.kubeconfig(identity);
    absl::StatusOr<RestConfig> config = LoadRestConfig(options);
    INFO(config.status().ToString());
    REQUIRE(config.ok());
    CHECK(config->server.ToString() == c.url());
    CHECK(config->server.path_prefix.empty());
    CHECK(config->tls.ca_pem == ReadAll(c.ca_file()));
    CHECK_FALSE(config->tls.insecure_skip_tls_verify);
    CHECK(config->identity ==
          "user \"" + name + "\" (context \"" + name + "\" in " + c.kubeconfig(identity) + ")");

    absl::StatusOr<std::shared_ptr<const Credentials>> credentials = config->credentials->Current();
    REQUIRE(credentials.ok());
    CHECK((*credentials)->bearer_token == c.token(identity));
    if (identity == Identity::kAdminToken) {
      CHECK(!(*credentials)->bearer_token.empty());
      CHECK((*credentials)->client_cert_pem.empty());
    } else {
      CHECK((*credentials)->client_cert_pem == ReadAll(c.client_cert_file(identity)));
      CHECK((*credentials)->client_key_pem == ReadAll(c.client_key_file(identity)));
    }
  }
}

}  // namespace
}  // namespace informerd::daemon

// Specification of ReadCallCredentials (daemon/service/call_credentials.*): what a call presented,
// read from a real gRPC server context: the authorization metadata (one value, or several
// refused), the verified client certificate's user on an mTLS connection (and why one names
// nobody), and the peer's address.
#include "daemon/service/call_credentials.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/listen_address.h"
#include "daemon/service/grpc_server.h"
#include "daemon/service/server_credentials.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/temp_dir.h"
#include "test/common/test_pki.h"

namespace informerd::daemon {
namespace {

using std::chrono::seconds;
using testing::KeyAndCertificate;
using testing::TempDir;
using testing::TestCa;

// Records the credentials of each ListResources call.
class CredentialsRecorder final : public v1::Informer::CallbackService {
 public:
  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* context,
                                          const v1::ListResourcesRequest*,
                                          v1::ListResourcesResponse*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = ReadCallCredentials(*context);
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  CallCredentials last() {
    std::lock_guard<std::mutex> lock(mu_);
    REQUIRE(last_.has_value());
    return *last_;
  }

 private:
  std::mutex mu_;
  std::optional<CallCredentials> last_;
};

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

struct Served {
  CredentialsRecorder recorder;
  std::unique_ptr<GrpcServer> server;
};

std::unique_ptr<Served> Serve(const std::string& address, const ServerTransportOptions& options) {
  auto listen = ParseListenAddress(address);
  REQUIRE(listen.ok());
  auto transport = MakeServerTransport(*listen, options);
  INFO(transport.status().ToString());
  REQUIRE(transport.ok());
  auto served = std::make_unique<Served>();
  auto server =
      GrpcServer::Start(address, transport->credentials, {&served->recorder}, NullLogger());
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  served->server = *std::move(server);
  return served;
}

// One ListResources call with `metadata`; requires it to get through.
void Call(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
          const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::Informer::NewStub(grpc::CreateCustomChannel(target, credentials, args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
  v1::ListResourcesResponse response;
  const grpc::Status status = stub->ListResources(&context, {}, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
}

std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca_pem,
                                              const KeyAndCertificate* client = nullptr) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  if (client != nullptr) {
    ssl.pem_private_key = client->private_key_pem;
    ssl.pem_cert_chain = client->certificate_pem;
  }
  return grpc::SslCredentials(ssl);
}

TEST_CASE("plaintext: the authorization metadata exactly as sent, and the peer") {
  auto served = Serve("127.0.0.1:0", {});
  const std::string target = served->server->address();

  Call(target, grpc::InsecureChannelCredentials());
  CallCredentials none = served->recorder.last();
  CHECK_FALSE(none.authorization.has_value());
  CHECK(none.malformed.empty());
  CHECK_FALSE(none.certificate_user.has_value());
  CHECK(none.certificate_error.empty());
  CHECK(none.peer.rfind("ipv4:127.0.0.1:", 0) == 0);

  // Not judged here: even a value that is not "Bearer <token>" is passed on as it is.
  for (const char* value : {"Bearer abc.def", "  bearer  x y ", "Basic dTpw", ""}) {
    INFO(value);
    Call(target, grpc::InsecureChannelCredentials(), {{"authorization", value}});
    CallCredentials sent = served->recorder.last();
    REQUIRE(sent.authorization.has_value());
    CHECK(*sent.authorization == value);
    CHECK(sent.malformed.empty());
  }
}

TEST_CASE("several authorization values are malformed, and none of them is passed on") {
  auto served = Serve("127.0.0.1:0", {});
  Call(served->server->address(), grpc::InsecureChannelCredentials(),
       {{"authorization", "Bearer first"}, {"authorization", "Bearer second"}});
  CallCredentials sent = served->recorder.last();
  CHECK(sent.malformed == "the call sent several authorization values; send one");
  CHECK_FALSE(sent.authorization.has_value());
}

TEST_CASE("mTLS: the verified client certificate's user; none without a certificate") {
  TestCa server_ca("server-ca");
  TestCa client_ca("client-ca");
  TempDir dir;
  const KeyAndCertificate server_cert = server_ca.IssueServer("informerd", 1);
  ServerTransportOptions options;
  options.tls_cert_file = dir.Write("tls.crt", server_cert.certificate_pem);
  options.tls_private_key_file = dir.Write("tls.key", server_cert.private_key_pem, 0600);
  options.client_ca_file = dir.Write("client-ca.crt", client_ca.certificate_pem());
  auto served = Serve("127.0.0.1:0", options);
  const std::string target =
      "localhost:" + served->server->address().substr(served->server->address().rfind(':') + 1);

  const KeyAndCertificate alice = client_ca.IssueClient("alice", {"team-a", "readers"});
  Call(target, Tls(server_ca.certificate_pem(), &alice), {{"authorization", "Bearer t"}});
  CallCredentials with_cert = served->recorder.last();
  REQUIRE(with_cert.certificate_user.has_value());
  CHECK(with_cert.certificate_user->name == "alice");
  CHECK(with_cert.certificate_user->groups ==
        std::vector<std::string>{"team-a", "readers", "system:authenticated"});
  CHECK(with_cert.certificate_error.empty());
  CHECK(with_cert.authorization == "Bearer t");  // both are read; the authenticator decides

  Call(target, Tls(server_ca.certificate_pem()));
  CallCredentials without = served->recorder.last();
  CHECK_FALSE(without.certificate_user.has_value());
  CHECK(without.certificate_error.empty());

  // Verified, but naming nobody: reported, so that the call is refused rather than anonymous.
  const KeyAndCertificate nameless = client_ca.IssueClient("", {"team-a"});
  Call(target, Tls(server_ca.certificate_pem(), &nameless));
  CallCredentials unnamed = served->recorder.last();
  CHECK_FALSE(unnamed.certificate_user.has_value());
  CHECK(unnamed.certificate_error ==
        "the client certificate names no user: its subject has no Common Name (CN)");
}

}  // namespace
}  // namespace informerd::daemon

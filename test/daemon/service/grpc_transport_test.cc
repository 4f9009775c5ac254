// Specification of the gRPC port's transport: the credentials (daemon/service/server_credentials.*)
// and how GrpcServer binds them (daemon/service/grpc_server.*). In-process, over real sockets:
// TLS with certificates made by the test, client certificates, certificate rotation on disk under
// an open Subscribe stream, unix sockets and their file, and plaintext refused where other hosts
// could connect.
#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/listen_address.h"
#include "daemon/service/grpc_server.h"
#include "daemon/service/informer_service.h"
#include "daemon/service/server_credentials.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/sinks/ostream_sink.h"
#include "test/common/informer_service_test_support.h"
#include "test/common/temp_dir.h"
#include "test/common/test_pki.h"
#include "test/common/wait_until.h"

namespace informerd::daemon {
namespace {

using std::chrono::seconds;
using testing::KeyAndCertificate;
using testing::ReplaceFile;
using testing::TempDir;
using testing::TestCa;

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

ListenAddress Address(const std::string& text) {
  auto address = ParseListenAddress(text);
  REQUIRE(address.ok());
  return *address;
}

// The credentials for `address`; fails the test if they cannot be made.
std::shared_ptr<grpc::ServerCredentials> Credentials(const std::string& address,
                                                     const ServerTransportOptions& options) {
  auto transport = MakeServerTransport(Address(address), options);
  INFO(transport.status().ToString());
  REQUIRE(transport.ok());
  return transport->credentials;
}

std::string ErrorOf(const std::string& address, const ServerTransportOptions& options) {
  auto transport = MakeServerTransport(Address(address), options);
  REQUIRE_FALSE(transport.ok());
  CHECK(transport.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(transport.status().message());
}

// A channel of its own (no subchannel shared with other channels): each one makes a new
// connection, with a new handshake.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target,
                                          std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, std::move(credentials), args);
}

std::shared_ptr<grpc::ChannelCredentials> TrustingCa(const std::string& ca_pem,
                                                     const KeyAndCertificate* client = nullptr) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  if (client != nullptr) {
    ssl.pem_private_key = client->private_key_pem;
    ssl.pem_cert_chain = client->certificate_pem;
  }
  return grpc::SslCredentials(ssl);
}

std::string Property(const grpc::AuthContext& auth, const char* name) {
  std::string value;
  for (const grpc::string_ref& ref : auth.FindPropertyValues(name)) {
    value.assign(ref.data(), ref.size());
  }
  return value;
}

// Answers Get with what the server knows of the caller's certificate: its common name in
// resource_version and the PEM in object (both empty without one), what the service's
// authentication will read; ListResources with nothing. (The health service's stubs cannot be
// linked here: they would register reflection.proto a second time, beside gRPC's reflection
// library.)
class PeerEcho final : public v1::Informer::CallbackService {
 public:
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const v1::GetRequest*,
                                v1::GetResponse* response) override {
    if (auto auth = context->auth_context()) {
      response->set_resource_version(Property(*auth, GRPC_X509_CN_PROPERTY_NAME));
      response->set_object(Property(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME));
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* context,
                                          const v1::ListResourcesRequest*,
                                          v1::ListResourcesResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Serves every test server that has no services of its own.
PeerEcho& Echo() {
  static PeerEcho* const echo = new PeerEcho;
  return *echo;
}

struct ProbeResult {
  grpc::Status status;
  std::string server_common_name;  // from the server's certificate, with TLS
};

// A ListResources call: whether the channel gets through, and to which certificate.
ProbeResult Probe(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Informer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListResourcesRequest request;
  v1::ListResourcesResponse response;
  ProbeResult result;
  result.status = stub->ListResources(&context, request, &response);
  if (result.status.ok() && context.auth_context()) {
    result.server_common_name = Property(*context.auth_context(), GRPC_X509_CN_PROPERTY_NAME);
  }
  return result;
}

grpc::Status CallGet(const std::shared_ptr<grpc::Channel>& channel, v1::GetResponse* response) {
  auto stub = v1::Informer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::GetRequest request;
  return stub->Get(&context, request, response);
}

// The server's TLS files in a temporary directory.
struct TlsFiles {
  explicit TlsFiles(const KeyAndCertificate& server, const std::string& client_ca_pem = "") {
    cert = dir.Write("tls.crt", server.certificate_pem);
    key = dir.Write("tls.key", server.private_key_pem, 0600);
    if (!client_ca_pem.empty()) client_ca = dir.Write("client-ca.crt", client_ca_pem);
  }
  ServerTransportOptions Options(seconds reload = seconds(60)) const {
    ServerTransportOptions options;
    options.tls_cert_file = cert;
    options.tls_private_key_file = key;
    options.client_ca_file = client_ca;
    options.reload_interval = reload;
    return options;
  }
  TempDir dir;
  std::string cert, key, client_ca;
};

std::unique_ptr<GrpcServer> StartServer(const std::string& address,
                                        std::shared_ptr<grpc::ServerCredentials> credentials,
                                        const std::vector<grpc::Service*>& services = {},
                                        GrpcServerOptions options = {},
                                        std::shared_ptr<spdlog::logger> logger = NullLogger()) {
  std::vector<grpc::Service*> served = services;
  if (served.empty()) served.push_back(&Echo());
  auto server = GrpcServer::Start(address, std::move(credentials), served, std::move(logger),
                                  std::move(options));
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return *std::move(server);
}

// ---- Plaintext ---------------------------------------------------------------------------------

TEST_CASE("plaintext is refused on an address other hosts can reach, naming the ways out") {
  for (const char* address : {"0.0.0.0:50051", "[::]:1", "10.1.2.3:1", "informerd.example:1"}) {
    INFO(address);
    CHECK(ErrorOf(address, {}) ==
          fmt::format("--listen {}: refusing plaintext gRPC on an address other hosts can reach; "
                      "serve TLS with --tls-cert-file and --tls-private-key-file, or accept "
                      "plaintext with --insecure-allow-plaintext",
                      address));
  }
}

TEST_CASE("plaintext is allowed on loopback and unix sockets, and anywhere when insisted on") {
  for (const char* address : {"127.0.0.1:0", "localhost:0", "[::1]:0", "unix:/tmp/x.sock"}) {
    INFO(address);
    auto transport = MakeServerTransport(Address(address), {});
    REQUIRE(transport.ok());
    CHECK(transport->credentials);
    CHECK_FALSE(transport->exposed_plaintext);
    CHECK(transport->description == "plaintext (a local address)");
  }
  ServerTransportOptions insecure;
  insecure.insecure_allow_plaintext = true;
  auto transport = MakeServerTransport(Address("0.0.0.0:0"), insecure);
  REQUIRE(transport.ok());
  CHECK(transport->exposed_plaintext);
  CHECK(transport->description ==
        "plaintext on an address other hosts can reach (--insecure-allow-plaintext)");
  // And it serves.
  auto server = StartServer("0.0.0.0:0", transport->credentials);
  const std::string port = server->address().substr(server->address().rfind(':') + 1);
  CHECK(Probe(NewChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials())).status.ok());
}

// ---- TLS files checked at start-up ----------------------------------------------------------

TEST_CASE("TLS files are checked at start-up: one line naming the flag, the file and the problem") {
  TestCa ca("test-ca");
  const KeyAndCertificate server = ca.IssueServer("informerd", 2);
  const KeyAndCertificate other = ca.IssueServer("other", 3);
  TlsFiles files(server);
  ServerTransportOptions options = files.Options();

  SECTION("good files: TLS, described for the log") {
    auto transport = MakeServerTransport(Address("0.0.0.0:0"), options);
    REQUIRE(transport.ok());
    CHECK_FALSE(transport->exposed_plaintext);
    CHECK(transport->description.rfind("TLS with " + files.cert + " (CN=informerd, expires ", 0) ==
          0);
    CHECK(transport->description.find("; client certificates not requested; files re-read "
                                      "every 60s") != std::string::npos);
  }
  SECTION("a missing certificate file") {
    options.tls_cert_file = files.dir.Path("missing.crt");
    CHECK(ErrorOf("0.0.0.0:0", options) == "--tls-cert-file " + options.tls_cert_file +
                                               ": cannot read it: No such file or directory");
  }
  SECTION("an empty certificate file") {
    options.tls_cert_file = files.dir.Write("empty.crt", "");
    CHECK(ErrorOf("0.0.0.0:0", options) ==
          "--tls-cert-file " + options.tls_cert_file + ": the file is empty");
  }
  SECTION("a certificate file without a certificate (the key given twice)") {
    options.tls_cert_file = files.key;
    CHECK(ErrorOf("0.0.0.0:0", options) ==
          "--tls-cert-file " + files.key +
              ": no PEM certificate in it (expected \"-----BEGIN CERTIFICATE-----\")");
  }
  SECTION("a damaged certificate") {
    std::string damaged = server.certificate_pem;
    damaged.replace(damaged.find('\n') + 10, 20, std::string(20, '*'));
    options.tls_cert_file = files.dir.Write("damaged.crt", damaged);
    const std::string error = ErrorOf("0.0.0.0:0", options);
    CHECK(error.rfind("--tls-cert-file " + options.tls_cert_file +
                          ": certificate 1 is not a valid PEM certificate: ",
                      0) == 0);
    CHECK(error.find('\n') == std::string::npos);
  }
  SECTION("a missing key file") {
    options.tls_private_key_file = files.dir.Path("missing.key");
    CHECK(ErrorOf("0.0.0.0:0", options) == "--tls-private-key-file " +
                                               options.tls_private_key_file +
                                               ": cannot read it: No such file or directory");
  }
  SECTION("a key file that holds a certificate") {
    options.tls_private_key_file = files.cert;
    const std::string error = ErrorOf("0.0.0.0:0", options);
    CHECK(error.rfind("--tls-private-key-file " + files.cert + ": not a PEM private key (", 0) ==
          0);
    CHECK(error.find('\n') == std::string::npos);
  }
  SECTION("an encrypted key") {
    options.tls_private_key_file = files.dir.Write(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAg\n"
        "-----END ENCRYPTED PRIVATE KEY-----\n");
    CHECK(ErrorOf("0.0.0.0:0", options) == "--tls-private-key-file " +
                                               options.tls_private_key_file +
                                               ": the key is encrypted; informerd needs it "
                                               "unencrypted");
  }
  SECTION("the key of another certificate") {
    options.tls_private_key_file = files.dir.Write("other.key", other.private_key_pem);
    CHECK(ErrorOf("0.0.0.0:0", options) ==
          "--tls-private-key-file " + options.tls_private_key_file +
              ": not the private key of the certificate in --tls-cert-file " + files.cert);
  }
  SECTION("a missing client CA file") {
    options.client_ca_file = files.dir.Path("missing-ca.crt");
    CHECK(ErrorOf("0.0.0.0:0", options) == "--client-ca-file " + options.client_ca_file +
                                               ": cannot read it: No such file or directory");
  }
  SECTION("a client CA file without a certificate") {
    options.client_ca_file = files.dir.Write("ca.txt", "not a certificate\n");
    CHECK(ErrorOf("0.0.0.0:0", options) ==
          "--client-ca-file " + options.client_ca_file +
              ": no PEM certificate in it (expected \"-----BEGIN CERTIFICATE-----\")");
  }
  SECTION("a client CA bundle: every certificate counted") {
    TestCa second("second-ca");
    options.client_ca_file =
        files.dir.Write("bundle.crt", ca.certificate_pem() + second.certificate_pem());
    auto transport = MakeServerTransport(Address("0.0.0.0:0"), options);
    REQUIRE(transport.ok());
    CHECK(transport->description.find("client certificates verified against " +
                                      options.client_ca_file + " (2 CA certificate(s))") !=
          std::string::npos);
  }
}

// ---- TLS
// -----------------------------------------------------------------------------------------

TEST_CASE("TLS: a client trusting the server's CA is served; any other client fails") {
  TestCa ca("server-ca");
  TestCa other_ca("other-ca");
  TlsFiles files(ca.IssueServer("informerd-server", 2));
  auto server = StartServer("127.0.0.1:0", Credentials("0.0.0.0:0", files.Options()));
  const std::string target = server->address();

  const ProbeResult trusted = Probe(NewChannel(target, TrustingCa(ca.certificate_pem())));
  INFO(trusted.status.error_message());
  CHECK(trusted.status.ok());
  CHECK(trusted.server_common_name == "informerd-server");

  // The handshake fails: the client cannot verify the server's certificate.
  const ProbeResult untrusted = Probe(NewChannel(target, TrustingCa(other_ca.certificate_pem())));
  CHECK(untrusted.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  // A plaintext client does not get through either.
  const ProbeResult plaintext = Probe(NewChannel(target, grpc::InsecureChannelCredentials()));
  CHECK(plaintext.status.error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE(
    "TLS with --client-ca-file: the client CA's certificates are verified and visible to "
    "the service; none is fine; another CA's is refused") {
  TestCa server_ca("server-ca");
  TestCa client_ca("client-ca");
  TestCa other_ca("other-ca");
  TlsFiles files(server_ca.IssueServer("informerd-server", 2), client_ca.certificate_pem());
  auto server = StartServer("127.0.0.1:0", Credentials("0.0.0.0:0", files.Options()));
  const std::string target = server->address();

  SECTION("a certificate from the client CA: the server reads its CN and PEM") {
    const KeyAndCertificate alice = client_ca.IssueClient("alice", {"team-a", "readers"});
    v1::GetResponse response;
    const grpc::Status status =
        CallGet(NewChannel(target, TrustingCa(server_ca.certificate_pem(), &alice)), &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.resource_version() == "alice");
    CHECK(response.object() == alice.certificate_pem);
  }
  SECTION("no client certificate: served, with no certificate identity") {
    v1::GetResponse response;
    const grpc::Status status =
        CallGet(NewChannel(target, TrustingCa(server_ca.certificate_pem())), &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.resource_version().empty());
    CHECK(response.object().empty());
  }
  SECTION("a certificate from another CA: the handshake fails") {
    const KeyAndCertificate mallory = other_ca.IssueClient("alice", {"system:masters"});
    v1::GetResponse response;
    const grpc::Status status =
        CallGet(NewChannel(target, TrustingCa(server_ca.certificate_pem(), &mallory)), &response);
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("TLS without --client-ca-file: client certificates are not asked for") {
  TestCa server_ca("server-ca");
  TestCa client_ca("client-ca");
  TlsFiles files(server_ca.IssueServer("informerd-server", 2));
  auto server = StartServer("127.0.0.1:0", Credentials("0.0.0.0:0", files.Options()));
  const KeyAndCertificate alice = client_ca.IssueClient("alice", {});
  v1::GetResponse response;
  const grpc::Status status = CallGet(
      NewChannel(server->address(), TrustingCa(server_ca.certificate_pem(), &alice)), &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(response.resource_version().empty());
  CHECK(response.object().empty());
}

TEST_CASE(
    "TLS rotation: new files are served to new connections within the reload interval; "
    "an open Subscribe stream keeps receiving events") {
  TestCa ca("server-ca");
  TlsFiles files(ca.IssueServer("first-certificate", 2));

  testing::FakeResolver resolver;
  ResourceRegistry registry;
  const core::SteadyClock clock;
  core::CacheOptions cache_options;
  std::shared_ptr<core::Cache> cache = core::Cache::Create(cache_options, clock);
  ServedResource served;
  served.resource = testing::PodsResource();
  served.cache = cache;
  REQUIRE(registry.Add(std::move(served)).ok());
  testing::Sync(*cache, {{"default", "a", 5}}, 10);
  InformerService service(resolver, registry, testing::AllowEveryone());
  auto server =
      StartServer("127.0.0.1:0", Credentials("0.0.0.0:0", files.Options(seconds(1))), {&service});
  const std::string target = server->address();

  auto stream_channel = NewChannel(target, TrustingCa(ca.certificate_pem()));
  auto stub = v1::Informer::NewStub(stream_channel);
  testing::Stream stream(*stub, testing::SubscribeTo("pods"));
  CHECK(testing::Describe(stream.Read(2)) ==
        std::vector<std::string>{"ADDED default/a rv=5", "SYNCED rv=10"});
  REQUIRE(stream.context().auth_context());
  CHECK(Property(*stream.context().auth_context(), GRPC_X509_CN_PROPERTY_NAME) ==
        "first-certificate");

  // Rotate, as cert-manager does: a new key and certificate (another serial and CN), each file
  // replaced whole.
  const KeyAndCertificate second = ca.IssueServer("second-certificate", 3);
  ReplaceFile(files.key, second.private_key_pem);
  ReplaceFile(files.cert, second.certificate_pem);
  const auto rotated = std::chrono::steady_clock::now();
  std::string seen;
  REQUIRE(test::WaitUntil(
      [&] {
        seen = Probe(NewChannel(target, TrustingCa(ca.certificate_pem()))).server_common_name;
        return seen == "second-certificate";
      },
      seconds(20), std::chrono::milliseconds(200)));
  // Within a reload interval or two (the watcher also compares file times, in whole seconds).
  CHECK(std::chrono::steady_clock::now() - rotated < seconds(5));

  // The stream opened before the rotation was not dropped: it receives what happens next.
  cache->ApplyWatchEvent(testing::Added({"default", "b", 11}));
  CHECK(testing::Describe(stream.Read(1)) == std::vector<std::string>{"ADDED default/b rv=11"});
  stream.context().TryCancel();
  CHECK(stream.Finish().error_code() == grpc::StatusCode::CANCELLED);
  service.Shutdown();
  server->Shutdown(std::chrono::milliseconds(0));
}

// ---- Unix sockets -------------------------------------------------------------------------------

// A short directory under /tmp: a socket path must fit in 107 bytes, and $TEST_TMPDIR may not.
class SocketDir {
 public:
  SocketDir() {
    char pattern[] = "/tmp/informerd-test-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~SocketDir() { std::filesystem::remove_all(path_); }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

unsigned FileMode(const std::string& path) {
  struct stat info {};
  REQUIRE(lstat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

bool IsSocket(const std::string& path) {
  struct stat info {};
  return lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

// A unix socket bound at `path`; listening if `listen`. Closed (the file stays) on destruction.
class RawSocket {
 public:
  RawSocket(const std::string& path, bool listen) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    if (listen) REQUIRE(::listen(fd_, 4) == 0);
  }
  ~RawSocket() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

TEST_CASE("unix socket: serves, with the socket file's mode as configured (0660 by default)") {
  SocketDir dir;
  const std::string path = dir.Path("grpc.sock");
  const std::string address = "unix://" + path;
  {
    auto server = StartServer(address, grpc::InsecureServerCredentials());
    CHECK(server->address() == address);  // reported as given
    CHECK(IsSocket(path));
    CHECK(FileMode(path) == 0660);
    CHECK(Probe(NewChannel(address, grpc::InsecureChannelCredentials())).status.ok());
    server->Shutdown(std::chrono::milliseconds(0));
  }
  // gRPC removes the socket file when it stops.
  CHECK_FALSE(std::filesystem::exists(path));

  GrpcServerOptions options;
  options.unix_socket_mode = 0600;
  auto server = StartServer("unix:" + path, grpc::InsecureServerCredentials(), {}, options);
  CHECK(server->address() == "unix:" + path);
  CHECK(FileMode(path) == 0600);
  CHECK(Probe(NewChannel("unix:" + path, grpc::InsecureChannelCredentials())).status.ok());
}

TEST_CASE("unix socket: the mode is applied even against a permissive umask") {
  SocketDir dir;
  const std::string path = dir.Path("grpc.sock");
  const mode_t previous = umask(0);
  GrpcServerOptions options;
  options.unix_socket_mode = 0640;
  auto server = StartServer("unix://" + path, grpc::InsecureServerCredentials(), {}, options);
  umask(previous);
  CHECK(FileMode(path) == 0640);
}

TEST_CASE("unix socket: a stale socket file is replaced; the removal is logged") {
  SocketDir dir;
  const std::string path = dir.Path("grpc.sock");
  RawSocket(path, /*listen=*/false);  // bound and closed: the file stays, nothing serves on it
  REQUIRE(IsSocket(path));
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  auto server = StartServer("unix://" + path, grpc::InsecureServerCredentials(), {}, {}, logger);
  CHECK(Probe(NewChannel("unix://" + path, grpc::InsecureChannelCredentials())).status.ok());
  CHECK(log.str().find("removed the stale socket file " + path + " (nothing was serving on it)") !=
        std::string::npos);
}

TEST_CASE("unix socket: a socket another process serves on is not taken over") {
  SocketDir dir;
  const std::string path = dir.Path("grpc.sock");
  RawSocket other(path, /*listen=*/true);
  auto server =
      GrpcServer::Start("unix://" + path, grpc::InsecureServerCredentials(), {}, NullLogger());
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message() ==
        fmt::format("cannot listen on unix://{}: another process is serving on {}", path, path));
  CHECK(IsSocket(path));
}

TEST_CASE("unix socket: a file that is not a socket is an error and is left as it is") {
  SocketDir dir;
  const std::string path = dir.Path("grpc.sock");
  std::ofstream(path) << "precious";
  auto server =
      GrpcServer::Start("unix://" + path, grpc::InsecureServerCredentials(), {}, NullLogger());
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message() ==
        fmt::format("cannot listen on unix://{}: {} exists and is not a socket (left as it is: "
                    "remove it or choose another path)",
                    path, path));
  std::ifstream in(path);
  std::string contents;
  std::getline(in, contents);
  CHECK(contents == "precious");
}

TEST_CASE("unix socket: a directory that does not exist is a start-up error") {
  SocketDir dir;
  const std::string address = "unix://" + dir.Path("missing/grpc.sock");
  auto server = GrpcServer::Start(address, grpc::InsecureServerCredentials(), {}, NullLogger());
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message() ==
        fmt::format("cannot listen on {} (does the directory exist, and may informerd create "
                    "files in it?); choose another with --listen",
                    address));
}

TEST_CASE("unix socket with TLS: served like TCP") {
  SocketDir dir;
  TestCa ca("server-ca");
  TlsFiles files(ca.IssueServer("informerd-server", 2));
  const std::string address = "unix://" + dir.Path("tls.sock");
  auto server = StartServer(address, Credentials(address, files.Options()));
  // The client checks the certificate against the name it was given for the server.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(address, TrustingCa(ca.certificate_pem()), args);
  const ProbeResult result = Probe(channel);
  INFO(result.status.error_message());
  CHECK(result.status.ok());
  CHECK(result.server_common_name == "informerd-server");
}

}  // namespace
}  // namespace informerd::daemon

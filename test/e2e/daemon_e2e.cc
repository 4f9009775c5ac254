#include "test/e2e/daemon_e2e.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace informerd::test {

using std::chrono::seconds;

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path) << text;
  return path;
}

std::string PodsOnlyConfig() {
  return WriteTempFile("pods-only.yaml", "resources:\n  - resource: pods\n");
}

Upstream::Upstream() {
  REQUIRE(server_.Start().ok());
  for (const char* name : {"web-1", "web-2", "db-1"}) {
    REQUIRE(server_.Upsert("pods", "default", name).ok());
  }
  kubeconfig_ = WriteTempFile("kubeconfig-" + std::to_string(server_.port()),
                              "apiVersion: v1\nkind: Config\n"
                              "clusters:\n- name: fake\n  cluster:\n    server: " +
                                  server_.base_url() +
                                  "\n"
                                  "users:\n- name: tester\n  user:\n    token: t0ken\n"
                                  "contexts:\n- name: fake\n  context:\n    cluster: fake\n"
                                  "    user: tester\ncurrent-context: fake\n");
}

std::pair<Subprocess, std::string> StartDaemon(const Upstream& upstream, const std::string& config,
                                               const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {kInformerdBinary,      "--config", config,       "--kubeconfig",
                                   upstream.kubeconfig(), "--listen", "127.0.0.1:0"};
  if (std::find(extra_args.begin(), extra_args.end(), "--metrics-listen") == extra_args.end()) {
    argv.insert(argv.end(), {"--metrics-listen", "127.0.0.1:0"});
  }
  const bool probe_port_given =
      std::any_of(extra_args.begin(), extra_args.end(), [](const std::string& arg) {
        return arg == "--probe-listen" || arg.rfind("--probe-listen=", 0) == 0;
      });
  if (!probe_port_given) argv.insert(argv.end(), {"--probe-listen", "127.0.0.1:0"});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return StartDaemonWith(argv);
}

std::pair<Subprocess, std::string> StartDaemonWith(const std::vector<std::string>& argv) {
  auto daemon = Subprocess::Start(argv);
  REQUIRE(daemon.ok());
  std::string address = LoggedAddress(*daemon, "gRPC listening on ");
  return {std::move(*daemon), std::move(address)};
}

std::string LoggedAddress(Subprocess& daemon, const std::string& marker) {
  std::string text = daemon.stderr_text();
  if (text.find(marker) == std::string::npos) {
    auto line = daemon.WaitForLine(marker, seconds(20));
    INFO(daemon.stderr_text());
    REQUIRE(line.ok());
    text = *line;
  }
  const auto start = text.find(marker) + marker.size();
  return text.substr(start, text.find_first_of(" \"\n", start) - start);
}

std::string MetricsAddress(Subprocess& daemon) {
  // Logged before the gRPC address, so usually read already.
  return LoggedAddress(daemon, "metrics listening on ");
}

std::string ProbeAddress(Subprocess& daemon) {
  return LoggedAddress(daemon, "probes listening on ");
}

HttpReply Get(const std::string& address, const std::string& target) {
  auto reply = HttpGet(address, target);
  INFO(target << ": " << reply.status().ToString());
  REQUIRE(reply.ok());
  return *std::move(reply);
}

ServingStatus Health(const std::string& address, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response.status();
}

ServingStatus AwaitHealth(const std::string& address, const std::string& service,
                          ServingStatus wanted, std::chrono::seconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  auto status = Health(address, service);
  while (status != wanted && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = Health(address, service);
  }
  return status;
}

namespace {

// "0100007F:1F90" (/proc/net/tcp's IPv4 address, in host order, and port, in hex) →
// "127.0.0.1:8080"; an IPv4-mapped IPv6 address (a dual-stack socket) as its IPv4 address; "::"
// as "[::]"; other IPv6 addresses as "[32 hex digits]".
std::string ProcNetAddress(const std::string& hex) {
  const auto colon = hex.find(':');
  std::string ip = hex.substr(0, colon);
  const std::string port = std::to_string(std::stoul(hex.substr(colon + 1), nullptr, 16));
  if (ip.size() == 32) {
    // Four 32-bit words, each in host order: ::ffff:a.b.c.d is 0, 0, 0xFFFF0000, a.b.c.d.
    if (ip == std::string(32, '0')) return "[::]:" + port;
    if (ip.compare(0, 24, "0000000000000000FFFF0000") != 0) return "[" + ip + "]:" + port;
    ip = ip.substr(24);
  }
  const unsigned long value = std::stoul(ip, nullptr, 16);
  return std::to_string(value & 0xff) + "." + std::to_string((value >> 8) & 0xff) + "." +
         std::to_string((value >> 16) & 0xff) + "." + std::to_string((value >> 24) & 0xff) + ":" +
         port;
}

}  // namespace

std::set<std::string> ListeningAddresses(pid_t pid) {
  std::set<std::string> inodes;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
    std::error_code error;
    const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
    if (!error && target.rfind("socket:[", 0) == 0) {
      inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  std::set<std::string> addresses;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (state == "0A" && inodes.count(inode) > 0) addresses.insert(ProcNetAddress(local));
    }
  }
  return addresses;
}

bool LogHas(Subprocess& daemon, const std::string& needle, std::chrono::milliseconds timeout) {
  return daemon.stderr_text().find(needle) != std::string::npos ||
         daemon.WaitForLine(needle, timeout).ok();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace informerd::test

// What List answers cost the daemon while slow clients read them (list_encoder.h): 100 clients
// each ask for a page of 500 pods of about 4 KB (2 MB) and read nothing, so that each answer waits
// in the server behind HTTP/2 flow control. The answers point at the cached objects, so the
// daemon's memory grows by a few megabytes, not by 100 copies of a page (it used to hold two
// copies of each: the response message and its serialized bytes).
//
// The slow clients speak HTTP/2 over raw sockets: a gRPC client would read the answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Harness;
using testing::ObjectSpec;

// Resident memory of this process (the server runs in it), from /proc/self/statm.
std::size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0;
  std::size_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

void AppendFrame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream,
                 const std::string& payload) {
  const uint32_t length = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(length >> 16));
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(length));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(stream >> shift));
  out += payload;
}

// An HPACK literal header field without indexing, new name (RFC 7541, 6.2.2); short strings.
void AppendHeader(std::string& out, const std::string& name, const std::string& value) {
  REQUIRE(name.size() < 127);
  REQUIRE(value.size() < 127);
  out.push_back('\0');
  out.push_back(static_cast<char>(name.size()));
  out += name;
  out.push_back(static_cast<char>(value.size()));
  out += value;
}

// Connects to 127.0.0.1:port and sends one List call (resource "pods", limit 500) over HTTP/2,
// then reads nothing: the server may send 64 KiB (the default window) and must hold the rest.
int SlowListClient(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  AppendFrame(bytes, 0x4, 0, 0, "");    // SETTINGS: the defaults
  AppendFrame(bytes, 0x4, 0x1, 0, "");  // SETTINGS ACK of the server's
  std::string headers;
  AppendHeader(headers, ":method", "POST");
  AppendHeader(headers, ":scheme", "http");
  AppendHeader(headers, ":path", "/informerd.v1.Informer/List");
  AppendHeader(headers, ":authority", fmt::format("127.0.0.1:{}", port));
  AppendHeader(headers, "content-type", "application/grpc");
  AppendHeader(headers, "te", "trailers");
  AppendFrame(bytes, 0x1, 0x4, 1, headers);  // HEADERS, END_HEADERS
  // ListRequest{resource: "pods", limit: 500}.
  const std::string request = std::string("\x0a\x04pods\x30\xf4\x03", 9);
  std::string message(1, '\0');  // not compressed
  const uint32_t length = static_cast<uint32_t>(request.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    message.push_back(static_cast<char>(length >> shift));
  message += request;
  AppendFrame(bytes, 0x0, 0x1, 1, message);  // DATA, END_STREAM
  REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  return fd;
}

TEST_CASE("100 clients that read nothing of a 2 MB List answer each cost the daemon little") {
  Harness harness;
  auto cache = harness.AddCache();
  std::vector<ObjectSpec> pods;
  for (int i = 0; i < 2000; ++i) {
    ObjectSpec pod(fmt::format("ns-{}", i % 4), fmt::format("pod-{:04}", i), 10 + i);
    pod.padding = 4000;
    pods.push_back(std::move(pod));
  }
  testing::Sync(*cache, pods, 5000);
  // Warm up: one slow reader, answered, so that the first call's one-time allocations are made.
  std::vector<int> clients = {SlowListClient(harness.port)};
  REQUIRE(testing::WaitUntil([&] { return harness.service->list_stats().pages == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::size_t before = ResidentBytes();

  for (int i = 0; i < 100; ++i) clients.push_back(SlowListClient(harness.port));
  REQUIRE(testing::WaitUntil([&] { return harness.service->list_stats().pages == 101; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::size_t grown = ResidentBytes() - std::min(before, ResidentBytes());
  INFO("resident memory grew by " << grown / 1024 << " KiB for 100 answers of about 2 MB");
  // Copies of the answers would be 200 MB at least. Under AddressSanitizer every allocation
  // carries redzones and freed memory waits in its quarantine: 76 MB was measured there, still a
  // third of what copies would take.
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t kBound = std::size_t{120} << 20;
#else
  constexpr std::size_t kBound = std::size_t{40} << 20;
#endif
  CHECK(grown < kBound);
  for (const int fd : clients) close(fd);
}

}  // namespace
}  // namespace informerd::daemon

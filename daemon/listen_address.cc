#include "daemon/listen_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";
constexpr std::string_view kUnixAbstractPrefix = "unix-abstract:";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

absl::Status NotAnAddress(std::string_view text) {
  return absl::InvalidArgumentError(
      fmt::format("\"{}\" is not HOST:PORT or unix:PATH (for example 127.0.0.1:50051 or "
                  "unix:///run/informerd/grpc.sock)",
                  text));
}

absl::StatusOr<ListenAddress> ParseUnix(std::string_view text) {
  ListenAddress address;
  address.kind = ListenAddress::Kind::kUnix;
  address.text = std::string(text);
  std::string_view path = text.substr(kUnixPrefix.size());
  if (StartsWith(path, "//")) {
    // The URI form: unix://AUTHORITY/PATH with an empty authority, so the path is absolute.
    path.remove_prefix(2);
    if (!StartsWith(path, "/")) {
      return absl::InvalidArgumentError(fmt::format(
          "\"{}\": the unix:// form needs an absolute path (unix:///{}), or write unix:{}", text,
          path, path));
    }
  }
  if (path.empty())
    return absl::InvalidArgumentError(fmt::format("\"{}\" has no socket path", text));
  if (path.size() > kMaxUnixSocketPathBytes) {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\": the socket path is {} bytes, longer than the {} a unix socket path "
                    "may have",
                    text, path.size(), kMaxUnixSocketPathBytes));
  }
  address.socket_path = std::string(path);
  return address;
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  if (StartsWith(text, kUnixAbstractPrefix)) {
    return absl::InvalidArgumentError(fmt::format(
        "\"{}\": abstract unix sockets are not supported (they have no file permissions, so any "
        "process could connect); use unix:PATH",
        text));
  }
  if (StartsWith(text, kUnixPrefix)) return ParseUnix(text);
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return NotAnAddress(text);
  }
  const std::string_view port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
    return NotAnAddress(text);
  }
  const unsigned long number = std::stoul(std::string(port));
  if (number > 65535) return NotAnAddress(text);
  ListenAddress address;
  address.kind = ListenAddress::Kind::kTcp;
  address.text = std::string(text);
  address.host = std::string(text.substr(0, colon));
  address.port = static_cast<int>(number);
  return address;
}

bool ListenAddress::IsLocal() const {
  if (is_unix()) return true;
  std::string bare = host;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  if (absl::AsciiStrToLower(bare) == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, bare.c_str(), &v6) == 1) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6.s6_addr, kLoopback, sizeof kLoopback) == 0) return true;
    return std::memcmp(v6.s6_addr, kMappedPrefix, sizeof kMappedPrefix) == 0 &&
           v6.s6_addr[12] == 127;
  }
  return false;
}

std::string ListenAddress::ForGrpc() const {
  if (is_unix()) return std::string(kUnixPrefix) + socket_path;
  return text;
}

}  // namespace informerd::daemon

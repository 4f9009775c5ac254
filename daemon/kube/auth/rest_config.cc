#include "daemon/kube/auth/rest_config.h"

#include <cctype>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

absl::Status Invalid(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("\"{}\" is not a URL such as https://host:6443 ({})", text, why));
}

}  // namespace

std::string ServerUrl::Authority() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string ServerUrl::ToString() const {
  return fmt::format("{}://{}{}", scheme, Authority(), path_prefix);
}

absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view text) {
  ServerUrl url;
  const std::size_t separator = text.find("://");
  if (separator == std::string_view::npos) return Invalid(text, "no scheme");
  url.scheme = Lower(text.substr(0, separator));
  if (url.scheme != "https" && url.scheme != "http") {
    return Invalid(text, fmt::format("scheme {} is neither https nor http", url.scheme));
  }
  std::string_view rest = text.substr(separator + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  path = path.substr(0, path.find_first_of("?#"));

  if (authority.find('@') != std::string_view::npos) {
    return Invalid(text, "user information in the URL is not supported");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid(text, "unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid(text, "unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return Invalid(text, "empty port");
    }
  } else {
    const std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) {
        return Invalid(text, "an IPv6 address must be in brackets");
      }
      if (port_text.empty()) return Invalid(text, "empty port");
    }
  }
  if (url.host.empty()) return Invalid(text, "no host");
  if (port_text.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
  } else {
    unsigned long port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        return Invalid(text, fmt::format("port \"{}\" is not a number from 1 to 65535", port_text));
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) {
      return Invalid(text, fmt::format("port \"{}\" is not a number from 1 to 65535", port_text));
    }
    url.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path_prefix = std::string(path);
  return url;
}

}  // namespace informerd::daemon

// Specification of kubeconfig server URLs (daemon/kube/auth/rest_config.*).
#include "daemon/kube/auth/rest_config.h"

#include <catch2/catch.hpp>
#include <string>

namespace informerd::daemon {
namespace {

ServerUrl Parse(const std::string& text) {
  absl::StatusOr<ServerUrl> url = ParseServerUrl(text);
  INFO(text << ": " << url.status().ToString());
  REQUIRE(url.ok());
  return *url;
}

std::string Error(const std::string& text) {
  absl::StatusOr<ServerUrl> url = ParseServerUrl(text);
  REQUIRE_FALSE(url.ok());
  return std::string(url.status().message());
}

TEST_CASE("server URLs: scheme, host, default and explicit ports, path prefix") {
  ServerUrl plain = Parse("https://api.example.com");
  CHECK(plain.scheme == "https");
  CHECK(plain.host == "api.example.com");
  CHECK(plain.port == 443);
  CHECK(plain.path_prefix.empty());
  CHECK(plain.ToString() == "https://api.example.com:443");

  CHECK(Parse("HTTP://localhost").port == 80);
  CHECK(Parse("HTTP://localhost").scheme == "http");
  ServerUrl prefixed = Parse("https://rancher.example:8443/k8s/clusters/c-abc/?x=1#f");
  CHECK(prefixed.port == 8443);
  CHECK(prefixed.path_prefix == "/k8s/clusters/c-abc");
  CHECK(prefixed.ToString() == "https://rancher.example:8443/k8s/clusters/c-abc");
  CHECK(Parse("https://k/").path_prefix.empty());

  ServerUrl v6 = Parse("https://[2001:db8::1]:6443");
  CHECK(v6.host == "2001:db8::1");
  CHECK(v6.port == 6443);
  CHECK(v6.Authority() == "[2001:db8::1]:6443");
  CHECK(Parse("https://[::1]").port == 443);
}

TEST_CASE("malformed server URLs say what is wrong") {
  CHECK(Error("api.example.com:6443") ==
        "\"api.example.com:6443\" is not a URL such as https://host:6443 (no scheme)");
  CHECK(Error("ftp://k") ==
        "\"ftp://k\" is not a URL such as https://host:6443 (scheme ftp is neither https nor "
        "http)");
  CHECK(Error("https://:443") ==
        "\"https://:443\" is not a URL such as https://host:6443 (no host)");
  CHECK(Error("https://k:0") ==
        "\"https://k:0\" is not a URL such as https://host:6443 (port \"0\" is not a number from 1 "
        "to 65535)");
  CHECK(Error("https://k:99999").find("port \"99999\"") != std::string::npos);
  CHECK(Error("https://k:").find("empty port") != std::string::npos);
  CHECK(Error("https://::1:6443").find("must be in brackets") != std::string::npos);
  CHECK(Error("https://[::1").find("unterminated IPv6") != std::string::npos);
  CHECK(Error("https://u:p@k").find("user information") != std::string::npos);
}

}  // namespace
}  // namespace informerd::daemon

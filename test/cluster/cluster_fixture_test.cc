// TestCluster::Start without a usable kube-apiserver: it fails at once, saying how to build one,
// instead of building inside the test (minutes, past any test timeout). Nothing is built or
// started: the cache is an empty temporary directory, and the build tools are stubs that record
// being called and fail.
#include "test/cluster/cluster_fixture.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

namespace informerd::test {
namespace {

const char kBuildCommand[] =
    "export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)";

std::string Tmp(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

// Puts stubs of the build tools first in PATH; returns the file they append their calls to.
std::string StubBuildTools() {
  const std::string stubs = Tmp("stubs");
  const std::string calls = Tmp("stub-calls");
  REQUIRE((mkdir(stubs.c_str(), 0755) == 0 || errno == EEXIST));
  for (const char* tool : {"apt-get", "apt-cache", "dpkg", "go", "make", "tar"}) {
    const std::string path = stubs + "/" + tool;
    std::ofstream(path) << "#!/bin/sh\necho \"" << tool << " $*\" >>" << calls << "\nexit 97\n";
    REQUIRE(chmod(path.c_str(), 0755) == 0);
  }
  setenv("PATH", (stubs + ":" + std::getenv("PATH")).c_str(), 1);
  return calls;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE(
    "without a cached kube-apiserver, TestCluster::Start fails at once with the build command") {
  const std::string calls = StubBuildTools();
  setenv("INFORMERD_CACHE_DIR", Tmp("empty-cache").c_str(), 1);
  setenv("INFORMERD_KUBE_SOURCE_VERSION", "9.9.9-test", 1);

  SECTION("INFORMERD_KUBE_APISERVER unset, nothing cached") {
    unsetenv("INFORMERD_KUBE_APISERVER");
    const auto start = std::chrono::steady_clock::now();
    auto cluster = TestCluster::Start();
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(cluster.ok());
    INFO(cluster.status().ToString());
    CHECK(cluster.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(cluster.status().message().find(kBuildCommand) != std::string::npos);
    CHECK(cluster.status().message().find("kube-apiserver 9.9.9-test is not built in " +
                                          Tmp("empty-cache")) != std::string::npos);
    CHECK(took < std::chrono::seconds(30));
    // Nothing was built, or started being built.
    CHECK(ReadFile(calls).empty());
  }
  SECTION("INFORMERD_KUBE_APISERVER names no executable file") {
    setenv("INFORMERD_KUBE_APISERVER", Tmp("no-such-kube-apiserver").c_str(), 1);
    auto cluster = TestCluster::Start();
    REQUIRE_FALSE(cluster.ok());
    INFO(cluster.status().ToString());
    CHECK(cluster.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(cluster.status().message().find(
              "INFORMERD_KUBE_APISERVER=" + Tmp("no-such-kube-apiserver") +
              " is not an executable file") != std::string::npos);
    CHECK(cluster.status().message().find(kBuildCommand) != std::string::npos);
    CHECK(ReadFile(calls).empty());
  }
}

}  // namespace
}  // namespace informerd::test

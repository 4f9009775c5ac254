// End-to-end: the real informerctl binary against the real Informer service (an in-process
// server over a cache the test fills, test/common/informer_service_test_support.h): a list too
// large for one answer within gRPC's default 4 MiB receive limit, which informerctl (a
// default-configured gRPC client) reads in pages.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"
#include "test/common/run_subprocess.h"

namespace informerd::daemon {
namespace {

using informerd::test::RunSubprocess;
using informerd::test::SubprocessOptions;
using informerd::test::SubprocessResult;

const char kInformerctl[] = "cmd/informerctl/informerctl";

SubprocessResult Run(const testing::Harness& harness, std::vector<std::string> args) {
  args.insert(args.begin(), {kInformerctl, "--address", fmt::format("127.0.0.1:{}", harness.port)});
  SubprocessOptions options;
  options.env = {{"INFORMERD_ADDRESS", ""}};
  options.timeout = std::chrono::seconds(60);
  auto result = RunSubprocess(args, options);
  REQUIRE(result.ok());
  UNSCOPED_INFO("stderr:\n" << result->err);
  return *result;
}

// 2,000 pods of about 4 KB: 8 MB of JSON, twice what one answer to a default client may hold.
void AddPods(testing::Harness& harness) {
  std::vector<testing::ObjectSpec> pods;
  for (int i = 0; i < 2000; ++i) {
    testing::ObjectSpec pod(fmt::format("ns-{}", i % 4), fmt::format("pod-{:04}", i), 10 + i);
    pod.padding = 4000;
    pods.push_back(std::move(pod));
  }
  testing::Sync(*harness.AddCache(), pods, 3000);
}

std::size_t Lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST_CASE("informerctl lists 2,000 pods of about 4 KB in pages of 500 (its default)") {
  testing::Harness harness;
  AddPods(harness);
  const SubprocessResult names = Run(harness, {"list", "pods", "-o", "name"});
  CHECK(names.exit_code == 0);
  CHECK(names.err.empty());
  CHECK(Lines(names.out) == 2000);
  CHECK(names.out.rfind("pods/pod-0000\npods/pod-0004\n", 0) == 0);
  CHECK(harness.service->list_stats().pages >= 4);
  // -o json: one List object, at the first page's resource version.
  const SubprocessResult json = Run(harness, {"list", "pods", "-o", "json", "--chunk-size", "700"});
  CHECK(json.exit_code == 0);
  CHECK(json.out.find("\"resourceVersion\": \"3000\"") != std::string::npos);
  CHECK(json.out.find("pod-1999") != std::string::npos);
}

TEST_CASE(
    "informerctl list --chunk-size 0 asks for one answer: informerd refuses it, naming its "
    "bound, where the client's own 4 MiB limit used to fail it") {
  SECTION("informerd's bound") {
    testing::Harness harness;
    AddPods(harness);
    const SubprocessResult whole = Run(harness, {"list", "pods", "--chunk-size", "0"});
    CHECK(whole.exit_code == 1);
    CHECK(whole.out.empty());
    CHECK(whole.err.rfind("informerctl: RESOURCE_EXHAUSTED: the list of pods (all namespaces) "
                          "would take ",
                          0) == 0);
    CHECK(whole.err.find("(--max-list-response-bytes=4128768); list it in pages with limit and "
                         "continue") != std::string::npos);
  }
  SECTION("without it (as before informerd bounded its answers), the client fails on its own") {
    testing::HarnessOptions options;
    options.service.max_list_response_bytes = std::size_t{1} << 30;
    testing::Harness harness(options);
    AddPods(harness);
    const SubprocessResult whole = Run(harness, {"list", "pods", "--chunk-size", "0"});
    CHECK(whole.exit_code == 1);
    CHECK(whole.err.find("RESOURCE_EXHAUSTED") != std::string::npos);
    CHECK(whole.err.find("larger than max") != std::string::npos);
    // Paged, the same list is read.
    const SubprocessResult paged = Run(harness, {"list", "pods", "-o", "name"});
    CHECK(paged.exit_code == 0);
    CHECK(Lines(paged.out) == 2000);
  }
}

}  // namespace
}  // namespace informerd::daemon

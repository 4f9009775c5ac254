// Tests of cmd/informerctl/command_line.*: what each command line turns into. (Usage errors as
// the user sees them are tested on the binary, in informerctl_test.cc.)
#include "cmd/informerctl/command_line.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace informerd::ctl {
namespace {

using std::chrono::milliseconds;

absl::StatusOr<Invocation> Parse(std::vector<const char*> args, const char* env = nullptr) {
  args.insert(args.begin(), "informerctl");
  return ParseCommandLine(static_cast<int>(args.size()), args.data(), env);
}

TEST_CASE("ParseDuration reads Go-style durations") {
  CHECK(ParseDuration("0") == milliseconds(0));
  CHECK(ParseDuration("500ms") == milliseconds(500));
  CHECK(ParseDuration("10s") == milliseconds(10000));
  CHECK(ParseDuration("2m") == milliseconds(120000));
  CHECK(ParseDuration("1h30m") == milliseconds(5400000));
  CHECK(ParseDuration("1m0s500ms") == milliseconds(60500));
  for (const char* bad : {"", "10", "s", "1.5s", "-1s", "10x", "1m 2s", "9999999999s"}) {
    INFO(bad);
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
}

TEST_CASE("defaults: address from the environment, else loopback; table; all namespaces") {
  auto invocation = Parse({"list", "pods"});
  REQUIRE(invocation.ok());
  CHECK(invocation->address == "127.0.0.1:50051");
  CHECK(invocation->command == Command::kList);
  CHECK(invocation->resource == "pods");
  CHECK(invocation->all_namespaces);
  CHECK(invocation->namespace_name.empty());
  CHECK(invocation->output == OutputFormat::kTable);
  CHECK_FALSE(invocation->timeout.has_value());

  invocation = Parse({"resources"}, "10.0.0.1:7000");
  REQUIRE(invocation.ok());
  CHECK(invocation->address == "10.0.0.1:7000");
  invocation = Parse({"resources", "--address", "unix:/run/informerd.sock"}, "10.0.0.1:7000");
  REQUIRE(invocation.ok());
  CHECK(invocation->address == "unix:/run/informerd.sock");
  invocation = Parse({"resources"}, "");
  REQUIRE(invocation.ok());
  CHECK(invocation->address == "127.0.0.1:50051");
}

TEST_CASE("flags go before or after the command, short or long") {
  auto invocation = Parse({"-n", "prod", "watch", "deployments.apps", "--selector=app=web",
                           "--field-selector", "metadata.name=x", "--resource-version", "42",
                           "--bookmarks", "-ojson", "--timeout", "30s"});
  REQUIRE(invocation.ok());
  CHECK(invocation->command == Command::kWatch);
  CHECK(invocation->resource == "deployments.apps");
  CHECK(invocation->namespace_name == "prod");
  CHECK_FALSE(invocation->all_namespaces);
  CHECK(invocation->label_selector == "app=web");
  CHECK(invocation->field_selector == "metadata.name=x");
  CHECK(invocation->resource_version == "42");
  CHECK(invocation->bookmarks);
  CHECK(invocation->output == OutputFormat::kJson);
  CHECK(invocation->timeout == milliseconds(30000));
}

TEST_CASE("get takes a resource and a name; a namespace is optional") {
  auto invocation = Parse({"get", "nodes", "n1", "-o", "name"});
  REQUIRE(invocation.ok());
  CHECK(invocation->command == Command::kGet);
  CHECK(invocation->resource == "nodes");
  CHECK(invocation->name == "n1");
  CHECK(invocation->namespace_name.empty());
  CHECK_FALSE(invocation->all_namespaces);
  CHECK(invocation->output == OutputFormat::kName);
}

TEST_CASE("get and list take --min-resource-version; other commands refuse it") {
  auto got = Parse({"get", "pods", "web-1", "-n", "default", "--min-resource-version", "42"});
  REQUIRE(got.ok());
  CHECK(got->min_resource_version == "42");
  auto listed = Parse({"list", "pods", "--min-resource-version=7", "-l", "app=web"});
  REQUIRE(listed.ok());
  CHECK(listed->min_resource_version == "7");
  CHECK(Parse({"list", "pods"})->min_resource_version.empty());
  // Passed as typed: informerd says what is wrong with it.
  CHECK(Parse({"list", "pods", "--min-resource-version", "abc"})->min_resource_version == "abc");
  for (const std::vector<const char*>& args :
       std::vector<std::vector<const char*>>{{"watch", "pods", "--min-resource-version", "42"},
                                             {"resources", "--min-resource-version", "42"},
                                             {"list", "pods", "--min-resource-version"}}) {
    const auto refused = Parse(args);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(Parse({"watch", "pods", "--min-resource-version", "42"}).status().message() ==
        "--min-resource-version does not apply to watch (see informerctl --help)");
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--min-resource-version RV") != std::string::npos);
}

TEST_CASE("list takes --chunk-size, 500 by default as kubectl's; other commands refuse it") {
  CHECK(Parse({"list", "pods"})->chunk_size == 500);
  CHECK(Parse({"list", "pods", "--chunk-size", "20"})->chunk_size == 20);
  CHECK(Parse({"list", "pods", "--chunk-size=0"})->chunk_size == 0);
  CHECK(Parse({"watch", "pods", "--chunk-size", "20"}).status().message() ==
        "--chunk-size does not apply to watch (see informerctl --help)");
  CHECK(Parse({"get", "pods", "x", "--chunk-size", "20"}).status().message() ==
        "--chunk-size does not apply to get (see informerctl --help)");
  for (const char* bad : {"-1", "ten", "", "1e3", "9999999999"}) {
    const auto refused = Parse({"list", "pods", "--chunk-size", bad});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().message() == std::string("--chunk-size: \"") + bad +
                                            "\" is not a whole number of objects (0 for one "
                                            "answer) (see informerctl --help)");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--chunk-size N") != std::string::npos);
}

TEST_CASE("resources takes a namespace: what the caller may list there") {
  auto invocation = Parse({"resources", "-n", "team-a"});
  REQUIRE(invocation.ok());
  CHECK(invocation->command == Command::kResources);
  CHECK(invocation->namespace_name == "team-a");
  CHECK_FALSE(invocation->all_namespaces);
  auto cluster_wide = Parse({"resources"});
  REQUIRE(cluster_wide.ok());
  CHECK(cluster_wide->all_namespaces);
  CHECK_FALSE(Parse({"resources", "-l", "a=b"}).ok());
}

TEST_CASE("help wins over everything else") {
  auto invocation = Parse({"list", "--help"});
  REQUIRE(invocation.ok());
  CHECK(invocation->action == Invocation::Action::kPrintHelp);
  CHECK(invocation->help_text.find("Usage: informerctl") != std::string::npos);
}

TEST_CASE("usage errors are InvalidArgument, one line") {
  for (const std::vector<const char*>& args :
       std::vector<std::vector<const char*>>{{},
                                             {"watch"},
                                             {"get", "pods", "a", "b"},
                                             {"list", "pods", "-A", "-n", "x"},
                                             {"list", "pods", "-n", ""},
                                             {"get", "pods", ""},
                                             {"list", ""},
                                             {"watch", "pods", "--resource"},
                                             {"--address", "", "resources"}}) {
    const auto invocation = Parse(args);
    REQUIRE_FALSE(invocation.ok());
    CHECK(invocation.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(invocation.status().message().find('\n') == absl::string_view::npos);
  }
}

}  // namespace
}  // namespace informerd::ctl

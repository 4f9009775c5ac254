// Specification of informerd's command-line flags (daemon/options.*).
#include "daemon/options.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace informerd::daemon {
namespace {

absl::StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "informerd");
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

std::string ErrorOf(std::vector<std::string> args) {
  auto options = Parse(std::move(args));
  REQUIRE_FALSE(options.ok());
  CHECK(options.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(options.status().message());
}

TEST_CASE("defaults: loopback listen address, info level, text logs") {
  auto options = Parse({"--config", "c.yaml"});
  REQUIRE(options.ok());
  CHECK(options->action == Options::Action::kRun);
  CHECK(options->config_path == "c.yaml");
  CHECK(options->listen_address == "127.0.0.1:50051");
  CHECK(options->log_level == "info");
  CHECK(options->log_format == LogFormat::kText);
  CHECK(options->kubeconfig_path.empty());
  CHECK(options->context.empty());
  CHECK(options->metrics_listen_address == "0.0.0.0:9090");
}

TEST_CASE("--metrics-listen takes HOST:PORT, or none (or nothing) to turn the metrics port off") {
  auto options = Parse({"--config", "c", "--metrics-listen", "127.0.0.1:0"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address == "127.0.0.1:0");
  options = Parse({"--config", "c", "--metrics-listen", "[::]:9100"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address == "[::]:9100");
  options = Parse({"--config", "c", "--metrics-listen", "none"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address.empty());
  options = Parse({"--config", "c", "--metrics-listen", ""});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address.empty());
  CHECK(ErrorOf({"--config", "c", "--metrics-listen", "9090"}) ==
        "--metrics-listen: \"9090\" is not HOST:PORT or none (for example 0.0.0.0:9090)");
}

TEST_CASE("every flag is taken, in --flag=value and --flag value forms") {
  auto options = Parse({"--config=c.yaml", "--kubeconfig", "/k", "--context=dev",
                        "--listen=0.0.0.0:7000", "--log-level", "debug", "--log-format=json"});
  REQUIRE(options.ok());
  CHECK(options->kubeconfig_path == "/k");
  CHECK(options->context == "dev");
  CHECK(options->listen_address == "0.0.0.0:7000");
  CHECK(options->log_level == "debug");
  CHECK(options->log_format == LogFormat::kJson);
}

TEST_CASE("--help and --version need no config") {
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->action == Options::Action::kPrintHelp);
  CHECK(help->help_text.find("--listen HOST:PORT") != std::string::npos);
  CHECK(help->help_text.find("--metrics-listen HOST:PORT") != std::string::npos);
  auto version = Parse({"--version"});
  REQUIRE(version.ok());
  CHECK(version->action == Options::Action::kPrintVersion);
}

TEST_CASE("bad flags give one-line errors naming the flag") {
  CHECK(ErrorOf({}) ==
        "--config is required: a YAML file listing the resources to inform on (example: "
        "deploy/config/informerd.yaml)");
  CHECK(ErrorOf({"--config", "c", "--bogus"}) ==
        "unrecognised option '--bogus' (see informerd --help)");
  CHECK(ErrorOf({"--config"}) ==
        "the required argument for option '--config' is missing (see informerd --help)");
  CHECK(ErrorOf({"--config", "c", "--log-level", "loud"}) ==
        "--log-level: \"loud\" is not one of trace, debug, info, warn, error");
  CHECK(ErrorOf({"--config", "c", "--log-format", "xml"}) ==
        "--log-format: \"xml\" is not one of text, json");
  CHECK(ErrorOf({"--config", "c", "--listen", "50051"}) ==
        "--listen: \"50051\" is not HOST:PORT (for example 127.0.0.1:50051)");
  CHECK(ErrorOf({"--config", "c", "--listen", "h:99999"}) ==
        "--listen: \"h:99999\" is not HOST:PORT (for example 127.0.0.1:50051)");
  CHECK(ErrorOf({"--config", "c", "--listen", "h:"}) ==
        "--listen: \"h:\" is not HOST:PORT (for example 127.0.0.1:50051)");
  CHECK(ErrorOf({"--config", "c", "stray"}) ==
        "too many positional options have been specified on the command line (see informerd "
        "--help)");
}

}  // namespace
}  // namespace informerd::daemon

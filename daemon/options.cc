#include "daemon/options.h"

#include <boost/program_options.hpp>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace po = boost::program_options;
namespace {

// host:port with a numeric port up to 65535 (the host is checked when it is bound).
bool IsHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  return colon != std::string::npos && colon != 0 && colon + 1 != address.size() &&
         address.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
         address.size() - colon - 1 <= 5 && std::stoul(address.substr(colon + 1)) <= 65535;
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv) {
  Options options;
  std::string log_format = "text";
  po::options_description described(
      "informerd: one shared Kubernetes watch per resource, served over gRPC.\n\n"
      "Usage: informerd --config FILE [flags]\n\nFlags");
  // clang-format off
  described.add_options()
      ("config", po::value(&options.config_path)->value_name("FILE"),
       "YAML file listing the resources to inform on (required; see deploy/config/)")
      ("kubeconfig", po::value(&options.kubeconfig_path)->value_name("FILE"),
       "kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster config)")
      ("context", po::value(&options.context)->value_name("NAME"),
       "kubeconfig context (default: its current-context)")
      ("listen", po::value(&options.listen_address)->value_name("HOST:PORT"),
       "gRPC listen address (default 127.0.0.1:50051; port 0 picks a free port)")
      ("metrics-listen", po::value(&options.metrics_listen_address)->value_name("HOST:PORT"),
       "address for /metrics, /healthz and /readyz (default 0.0.0.0:9090; \"none\" turns it off)")
      ("log-level", po::value(&options.log_level)->value_name("LEVEL"),
       "trace, debug, info, warn or error (default info)")
      ("log-format", po::value(&log_format)->value_name("FORMAT"),
       "text or json (default text)")
      ("version", "print the version and exit")
      ("help", "print this help and exit");
  // clang-format on

  po::variables_map values;
  try {
    // Positional arguments are not accepted: every setting has a name.
    const po::positional_options_description no_positionals;
    po::store(
        po::command_line_parser(argc, argv).options(described).positional(no_positionals).run(),
        values);
    po::notify(values);
  } catch (const po::error& e) {
    return absl::InvalidArgumentError(fmt::format("{} (see informerd --help)", e.what()));
  }

  if (values.count("help")) {
    std::ostringstream text;
    text << described;
    options.action = Options::Action::kPrintHelp;
    options.help_text = text.str();
    return options;
  }
  if (values.count("version")) {
    options.action = Options::Action::kPrintVersion;
    return options;
  }
  if (options.config_path.empty()) {
    return absl::InvalidArgumentError(
        "--config is required: a YAML file listing the resources to inform on "
        "(example: deploy/config/informerd.yaml)");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (kLevels.count(options.log_level) == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "--log-level: \"{}\" is not one of trace, debug, info, warn, error", options.log_level));
  }
  if (log_format == "text") {
    options.log_format = LogFormat::kText;
  } else if (log_format == "json") {
    options.log_format = LogFormat::kJson;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("--log-format: \"{}\" is not one of text, json", log_format));
  }
  if (!IsHostPort(options.listen_address)) {
    return absl::InvalidArgumentError(fmt::format(
        "--listen: \"{}\" is not HOST:PORT (for example 127.0.0.1:50051)", options.listen_address));
  }
  if (options.metrics_listen_address == "none") options.metrics_listen_address.clear();
  if (!options.metrics_listen_address.empty() && !IsHostPort(options.metrics_listen_address)) {
    return absl::InvalidArgumentError(
        fmt::format("--metrics-listen: \"{}\" is not HOST:PORT or none (for example 0.0.0.0:9090)",
                    options.metrics_listen_address));
  }
  return options;
}

}  // namespace informerd::daemon

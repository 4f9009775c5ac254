// Options: informerd's command-line flags, parsed without side effects.
//
// Called once from cmd/informerd/main.cc before anything starts. Parsing never prints or exits:
// it returns either the options to run with, a request to print help or the version, or an
// InvalidArgument status whose message is the one-line error for the user.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace informerd::daemon {

enum class LogFormat { kText, kJson };

struct Options {
  enum class Action { kRun, kPrintHelp, kPrintVersion };
  Action action = Action::kRun;
  // The text for kPrintHelp.
  std::string help_text;

  std::string config_path;
  // Empty: $KUBECONFIG, then ~/.kube/config, then in-cluster config (see README).
  std::string kubeconfig_path;
  // Empty: the kubeconfig's current-context.
  std::string context;
  // host:port for the gRPC server. Loopback by default: safe for a sidecar. Port 0 picks one.
  std::string listen_address = "127.0.0.1:50051";
  // host:port for the metrics port (/metrics, /healthz, /readyz); empty when disabled
  // (--metrics-listen none). All interfaces by default: Prometheus and the kubelet's probes
  // reach a pod at its IP. Port 0 picks one.
  std::string metrics_listen_address = "0.0.0.0:9090";
  // trace, debug, info, warn, error.
  std::string log_level = "info";
  LogFormat log_format = LogFormat::kText;
};

absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv);

}  // namespace informerd::daemon

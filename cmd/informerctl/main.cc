// informerctl: a command-line client for informerd's Informer API, for people.
//
// Parses the command line (command_line.h) and runs the command (commands.h); nothing else lives
// here but quieting gRPC's own log. Exit status: 0 success, 1 an error from informerd or the
// connection, 2 a usage error.
#include <grpc/support/log.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cmd/informerctl/command_line.h"
#include "cmd/informerctl/commands.h"

namespace {

void DiscardGrpcLog(gpr_log_func_args*) {}

}  // namespace

int main(int argc, char** argv) {
  // gRPC logs a failed TLS handshake (and more) on stderr itself, which would come before, and
  // repeat, informerctl's own one-line error carrying the same text. $GRPC_VERBOSITY or
  // $GRPC_TRACE brings it back for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr && std::getenv("GRPC_TRACE") == nullptr) {
    gpr_set_log_function(DiscardGrpcLog);
  }
  const auto invocation =
      informerd::ctl::ParseCommandLine(argc, argv, std::getenv("INFORMERD_ADDRESS"));
  if (!invocation.ok()) {
    std::fprintf(stderr, "informerctl: %s\n", std::string(invocation.status().message()).c_str());
    return 2;
  }
  if (invocation->action == informerd::ctl::Invocation::Action::kPrintHelp) {
    std::fputs(invocation->help_text.c_str(), stdout);
    return 0;
  }
  const absl::Status status = informerd::ctl::RunCommand(*invocation, stdout, stderr);
  if (!status.ok()) {
    std::fprintf(stderr, "informerctl: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

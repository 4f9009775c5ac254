// Commands: runs one parsed informerctl invocation against informerd over gRPC.
//
// Called once from main() with the parsed command line. Resolves the connection flags
// (connection.h: reads the files they name, a kubeconfig user's credentials; a failure there is
// returned before any call), opens a channel to the address, plaintext or TLS, makes the call with
// the bearer token if there is one, and writes the formatted result to `out` and notes ("No
// resources found.") to `err`.
// A failed call comes back as a status whose message is "<gRPC code name>: <informerd's message>",
// with a hint appended where informerctl knows more (the address it could not reach, a TLS
// handshake that failed, the resource version to resume a watch from); main prints it after "informerctl: " and exits 1.
// A watch ends with OK on Ctrl-C or SIGTERM, when informerd ends the stream normally, or when
// an explicit --timeout runs out.
#pragma once

#include <cstdio>

#include "absl/status/status.h"
#include "cmd/informerctl/command_line.h"

namespace informerd::ctl {

absl::Status RunCommand(const Invocation& invocation, std::FILE* out, std::FILE* err);

}  // namespace informerd::ctl

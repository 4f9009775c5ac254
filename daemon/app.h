// RunDaemon: informerd's main path, from parsed options to a clean exit.
//
// Called by cmd/informerd/main.cc on the main thread, which becomes the daemon's Asio I/O thread:
// it handles SIGTERM/SIGINT (stop accepting, end streams, return OK). Returns an error status for
// anything that prevents start-up (bad config, port in use); main prints it and exits non-zero.
#pragma once

#include "absl/status/status.h"
#include "daemon/options.h"

namespace informerd::daemon {

absl::Status RunDaemon(const Options& options);

}  // namespace informerd::daemon

// ReadFileContents: a whole small file (kubeconfig, certificate, key, token) into memory.
//
// Used while loading apiserver connection settings (daemon/kube/auth/kubeconfig.*, daemon/kube/auth/in_cluster.*)
// and by credential sources that re-read token files (daemon/kube/auth/credentials.*). Any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace informerd::daemon {

// The file's bytes. Errors read "file PATH: <strerror>" (for example "file /x/key.pem: No such
// file or directory"), so that callers can prefix the kubeconfig file and field they came from.
// A missing file is NotFound, a directory or unreadable file FailedPrecondition.
absl::StatusOr<std::string> ReadFileContents(const std::string& path);

}  // namespace informerd::daemon

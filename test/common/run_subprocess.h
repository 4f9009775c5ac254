// RunSubprocess: runs a program to completion and captures its exit code, stdout and stderr.
//
// Test support for the real-cluster harness (cluster_fixture.h), which drives test/cluster/
// cluster.sh and kubectl through it; usable by any test that needs to run a tool. Synchronous:
// the calling thread blocks until the program exits or its deadline passes; calls from several
// threads are independent (each waits for its own child only, never for "any child").
//
// The child runs in its own process group, so that a timeout kills it together with anything it
// started in that group; daemons that must outlive it (cluster.sh's etcd and kube-apiserver) put
// themselves in their own sessions and redirect their stdio, or they would hold the pipes open
// until the deadline.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::test {

struct SubprocessResult {
  // The exit status, or 128 + the signal number if a signal ended the program (as shells report).
  int exit_code = 0;
  // Not named stdout/stderr: those are macros in <cstdio>.
  std::string out;
  std::string err;
};

struct SubprocessOptions {
  // Fed to the program's stdin (which is empty if this is).
  std::string stdin_text;
  // Added to the environment the test runs in, replacing variables of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  // After this long the process group is killed and the call fails with DeadlineExceeded.
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

// Runs argv (argv[0] is looked up in PATH if it has no slash). Errors: the program could not be
// started, or it exceeded the deadline (the message then holds what it had written so far). A
// non-zero exit is not an error: it is in the result.
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options = {});

// For messages: argv joined by spaces.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace informerd::test

// Subprocess: starts a program for an end-to-end test and reads its stderr line by line.
//
// Owned by one test; every call comes from the test's thread. The child gets its own process
// group, and the destructor kills that group and reaps it, so a failing test leaves no stray
// daemon behind. stdout is inherited; stderr is captured so tests can wait for log lines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::test {

class Subprocess {
 public:
  // argv[0] is the program path.
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  ~Subprocess();

  // Reads stderr until a line contains `needle`; returns that line. Fails on EOF or timeout.
  absl::StatusOr<std::string> WaitForLine(const std::string& needle,
                                          std::chrono::milliseconds timeout);

  // Sends `signal` to the child.
  void Signal(int signal);

  // Waits for the child to exit; returns its exit code, or 128+signal if it was killed.
  absl::StatusOr<int> Wait(std::chrono::milliseconds timeout);

  // Everything read from stderr so far, for failure messages.
  const std::string& stderr_text() const { return stderr_text_; }

  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int stderr_fd) : pid_(pid), stderr_fd_(stderr_fd) {}
  // Reads what is available within `timeout`; false on EOF or timeout.
  bool ReadMore(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string stderr_text_;
  std::size_t scanned_ = 0;  // stderr_text_ before this offset has been matched already
  std::optional<int> exit_code_;
};

}  // namespace informerd::test

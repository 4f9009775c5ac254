// Helpers of the benchmarks that run informerd and fakeapi_server as separate processes
// (overload_bench, fanout_bench): finding the binaries in the runfiles, starting and stopping
// processes, reading their CPU time and memory from /proc, plain HTTP GETs (metrics, the fake),
// and the addresses informerd logs. Linux only. Every failure that leaves the benchmark without
// a figure is fatal (Die), as a benchmark has nothing useful to do after it.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace informerd::bench {

// Prints "<program>: <message>" on stderr and exits 1.
[[noreturn]] void Die(const std::string& message);

// "0-1,3" into `set`; false if malformed.
bool ParseCpuList(const std::string& list, cpu_set_t& set);

bool Exists(const std::string& path);
// A file of the runfiles: relative to the working directory (bazel run and bazel test run in
// the workspace's runfiles directory), or under the binary's runfiles, RUNFILES_DIR, TEST_SRCDIR.
std::string Runfile(const std::string& argv0, const std::string& path);
void WriteFile(const std::string& path, const std::string& text);
std::string ReadFile(const std::string& path);

// A child process, sent SIGTERM (SIGKILL after 20 s) and reaped when destroyed.
class Process {
 public:
  // Starts argv with stderr to `log`; with `stdout_pipe`, stdout is readable with ReadLine.
  // With `cpus`, the program runs under taskset -c `cpus` (pinned from its first instruction, so
  // every thread it starts is too).
  Process(std::vector<std::string> args, const std::string& log, bool stdout_pipe,
          const std::string& cpus = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // One line of the child's stdout (without the newline); blocks.
  std::string ReadLine();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  int stdout_ = -1;
};

// User + system CPU seconds of a process, every thread ("self" for this one).
double CpuSeconds(const std::string& pid);
// A /proc/PID/status field in kB ("VmRSS", "VmHWM"), as bytes.
std::size_t StatusBytes(pid_t pid, const std::string& field);
// Resets VmHWM to the current resident set (Linux >= 4.0).
bool ResetPeak(pid_t pid);

// HTTP/1.1 GET on 127.0.0.1:port, one request per connection; the body (de-chunked) of a 200.
std::optional<std::string> HttpGet(int port, const std::string& target);

// A log line's address after `marker` ("gRPC listening on 127.0.0.1:PORT"), waiting up to a
// minute for it to be logged.
std::string LoggedAddress(const std::string& log, const std::string& marker);
int PortOf(const std::string& address);

}  // namespace informerd::bench

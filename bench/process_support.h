// Helpers of the benchmarks that run informerd and other programs as separate processes
// (overload_bench, fanout_bench, side_by_side): finding the binaries in the runfiles, starting
// and stopping processes, reading their CPU time and memory from /proc, plain HTTP GETs
// (metrics, the fake), and the addresses informerd logs. Linux only. Every failure that leaves
// the benchmark without a figure is fatal (Die), as a benchmark has nothing useful to do after
// it; the processes it started do not outlive it.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace informerd::bench {

// Prints "<program>: <message>" on stderr, sends SIGTERM to every Process not yet destroyed (they
// would outlive the benchmark otherwise) and exits 1.
[[noreturn]] void Die(const std::string& message);

// "0-1,3" into `set`; false if malformed.
bool ParseCpuList(const std::string& list, cpu_set_t& set);

bool Exists(const std::string& path);
// A file of the runfiles: relative to the working directory (bazel run and bazel test run in
// the workspace's runfiles directory), or under the binary's runfiles, RUNFILES_DIR, TEST_SRCDIR;
// nullopt if it is in none of them.
std::optional<std::string> FindRunfile(const std::string& argv0, const std::string& path);
// FindRunfile's path; dies if there is none.
std::string Runfile(const std::string& argv0, const std::string& path);
void WriteFile(const std::string& path, const std::string& text);
std::string ReadFile(const std::string& path);

// A child process, sent SIGTERM (SIGKILL after 20 s) and reaped when destroyed; Die sends it
// SIGTERM too. It runs under setpriv --pdeathsig TERM (when /usr/bin/setpriv exists), so that it
// gets SIGTERM if this program ends without stopping it (a crash). Start processes from the main
// thread: the signal comes when the thread that started the process ends.
class Process {
 public:
  // Starts argv with stderr to `log`; with `stdout_pipe`, stdout is readable with ReadLine.
  // With `cpus`, the program runs under taskset -c `cpus` (pinned from its first instruction, so
  // every thread it starts is too).
  Process(const std::vector<std::string>& args, const std::string& log, bool stdout_pipe,
          const std::string& cpus = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // One line of the child's stdout (without the newline); blocks; empty at end of file.
  std::string ReadLine();
  pid_t pid() const { return pid_; }
  // The file its stderr goes to.
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = 0;
  int stdout_ = -1;
  std::string log_;
};

// User + system CPU seconds of a process, every thread ("self" for this one).
double CpuSeconds(const std::string& pid);
double CpuSeconds(pid_t pid);
// A /proc/PID/status field in kB ("VmRSS", "VmHWM"), as bytes ("self" for this process).
std::size_t StatusBytes(const std::string& pid, const std::string& field);
std::size_t StatusBytes(pid_t pid, const std::string& field);
// Resets VmHWM to the current resident set (Linux >= 4.0).
bool ResetPeak(pid_t pid);

// A TCP connection to 127.0.0.1:port (close-on-exec), whose reads time out after
// `read_timeout_seconds`; -1 if it cannot connect.
int ConnectLoopback(int port, int read_timeout_seconds);

// HTTP/1.1 GET on 127.0.0.1:port, one request per connection; the body (de-chunked) of a 200.
std::optional<std::string> HttpGet(int port, const std::string& target);

// A log line's address after `marker` ("gRPC listening on 127.0.0.1:PORT"), waiting up to a
// minute for it to be logged.
std::string LoggedAddress(const std::string& log, const std::string& marker);
int PortOf(const std::string& address);

}  // namespace informerd::bench

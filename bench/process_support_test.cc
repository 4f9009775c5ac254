// bench/process_support: a benchmark that dies (Die) leaves none of the processes it started
// running. A forked child of this test starts `sleep 600` as a Process and calls Die; the test
// checks that the child exited 1 and that the sleep ends within seconds instead of 600.
#include "bench/process_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

// Whether the process runs (exists and is not a zombie waiting for its parent).
bool Running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const std::size_t end = text.rfind(')');
  return end != std::string::npos && end + 2 < text.size() && text[end + 2] != 'Z';
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "FAIL: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main() {
  int fds[2];
  if (pipe(fds) != 0) return Fail("pipe");
  const pid_t child = fork();
  if (child < 0) return Fail("fork");
  if (child == 0) {
    close(fds[0]);
    informerd::bench::Process sleeper({"/bin/sleep", "600"}, "/dev/null", /*stdout_pipe=*/false);
    const std::string pid = std::to_string(sleeper.pid()) + "\n";
    if (write(fds[1], pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) std::_Exit(9);
    close(fds[1]);
    informerd::bench::Die("dying on purpose: the test checks that the sleep ends too");
  }
  close(fds[1]);
  char buffer[32] = {};
  const ssize_t n = read(fds[0], buffer, sizeof buffer - 1);
  close(fds[0]);
  int status = 0;
  if (waitpid(child, &status, 0) != child) return Fail("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
    return Fail("the child did not exit 1 (Die): status " + std::to_string(status));
  }
  if (n <= 0) return Fail("the child did not report the sleep's pid");
  const pid_t sleeper = static_cast<pid_t>(std::atoi(buffer));
  if (sleeper <= 0) return Fail(std::string("bad pid: ") + buffer);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Running(sleeper)) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(sleeper, SIGKILL);
      return Fail("the sleep (pid " + std::to_string(sleeper) + ") outlived Die by 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("PASS: Die stopped the sleep (pid %d)\n", static_cast<int>(sleeper));
  return 0;
}

#include "bench/process_support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "fmt/format.h"

extern char** environ;

namespace informerd::bench {

using Clock = std::chrono::steady_clock;

namespace {

// The processes started and not yet destroyed, for Die to stop.
std::mutex children_mutex;
std::vector<pid_t> children;

}  // namespace

void Die(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  {
    std::lock_guard<std::mutex> lock(children_mutex);
    for (const pid_t pid : children) kill(pid, SIGTERM);
  }
  std::exit(1);
}

bool ParseCpuList(const std::string& list, cpu_set_t& set) {
  std::istringstream items(list);
  std::string item;
  bool any = false;
  while (std::getline(items, item, ',')) {
    char* end = nullptr;
    const long first = std::strtol(item.c_str(), &end, 10);
    long last = first;
    if (*end == '-') last = std::strtol(end + 1, &end, 10);
    if (*end != '\0' || first < 0 || last < first || last >= CPU_SETSIZE) return false;
    for (long cpu = first; cpu <= last; ++cpu) CPU_SET(static_cast<int>(cpu), &set);
    any = true;
  }
  return any;
}

bool Exists(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0;
}

std::optional<std::string> FindRunfile(const std::string& argv0, const std::string& path) {
  std::vector<std::string> candidates = {path, argv0 + ".runfiles/informerd/" + path};
  for (const char* variable : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* root = std::getenv(variable)) {
      candidates.push_back(std::string(root) + "/informerd/" + path);
    }
  }
  for (const std::string& candidate : candidates) {
    if (Exists(candidate)) return candidate;
  }
  return std::nullopt;
}

std::string Runfile(const std::string& argv0, const std::string& path) {
  std::optional<std::string> found = FindRunfile(argv0, path);
  if (!found) Die("cannot find " + path + " in the runfiles");
  return *found;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) Die("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Process::Process(const std::vector<std::string>& args, const std::string& log, bool stdout_pipe,
                 const std::string& cpus)
    : log_(log) {
  std::vector<std::string> command;
  if (access("/usr/bin/setpriv", X_OK) == 0) {
    command = {"/usr/bin/setpriv", "--pdeathsig", "TERM", "--"};
  }
  if (!cpus.empty()) command.insert(command.end(), {"/usr/bin/taskset", "-c", cpus});
  command.insert(command.end(), args.begin(), args.end());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int out[2] = {-1, -1};
  if (stdout_pipe) {
    if (pipe(out) != 0) Die("pipe failed");
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
  }
  std::vector<char*> argv;
  for (std::string& arg : command) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (posix_spawn(&pid_, command[0].c_str(), &actions, nullptr, argv.data(), environ) != 0) {
    Die("cannot start " + args[0]);
  }
  {
    std::lock_guard<std::mutex> lock(children_mutex);
    children.push_back(pid_);
  }
  posix_spawn_file_actions_destroy(&actions);
  if (stdout_pipe) {
    close(out[1]);
    stdout_ = out[0];
  }
}

Process::~Process() {
  {
    std::lock_guard<std::mutex> lock(children_mutex);
    children.erase(std::remove(children.begin(), children.end(), pid_), children.end());
  }
  if (stdout_ >= 0) close(stdout_);
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Process::ReadLine() {
  std::string line;
  char c;
  while (read(stdout_, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

double CpuSeconds(const std::string& pid) {
  const std::string stat = ReadFile("/proc/" + pid + "/stat");
  const std::size_t end = stat.rfind(')');  // The command may contain spaces.
  if (end == std::string::npos) return 0;
  std::istringstream fields(stat.substr(end + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // Fields 3.. follow the command; utime and stime are the 14th and 15th.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double CpuSeconds(pid_t pid) { return CpuSeconds(std::to_string(pid)); }

std::size_t StatusBytes(const std::string& pid, const std::string& field) {
  std::ifstream status("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

std::size_t StatusBytes(pid_t pid, const std::string& field) {
  return StatusBytes(std::to_string(pid), field);
}

bool ResetPeak(pid_t pid) {
  std::ofstream clear("/proc/" + std::to_string(pid) + "/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

int ConnectLoopback(int port, int read_timeout_seconds) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{read_timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::optional<std::string> HttpGet(int port, const std::string& target) {
  const int fd = ConnectLoopback(port, /*read_timeout_seconds=*/10);
  if (fd < 0) return std::nullopt;
  const std::string request =
      fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string reply;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) reply.append(buffer, static_cast<size_t>(n));
  close(fd);
  const std::size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return std::nullopt;
  std::string text = reply.substr(body + 4);
  if (reply.substr(0, body).find("chunked") != std::string::npos) {
    // De-chunk.
    std::string plain;
    std::size_t at = 0;
    while (at < text.size()) {
      const std::size_t eol = text.find("\r\n", at);
      if (eol == std::string::npos) break;
      const std::size_t size = std::strtoul(text.c_str() + at, nullptr, 16);
      if (size == 0) break;
      plain.append(text, eol + 2, size);
      at = eol + 2 + size + 2;
    }
    text = std::move(plain);
  }
  return text;
}

std::string LoggedAddress(const std::string& log, const std::string& marker) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    const std::string text = ReadFile(log);
    const std::size_t at = text.find(marker);
    if (at != std::string::npos) {
      const std::size_t start = at + marker.size();
      const std::size_t end = text.find_first_of(" \"\n", start);
      if (end != std::string::npos) return text.substr(start, end - start);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Die("informerd did not log '" + marker + "'; its log: " + log);
}

int PortOf(const std::string& address) {
  return std::atoi(address.substr(address.rfind(':') + 1).c_str());
}

}  // namespace informerd::bench

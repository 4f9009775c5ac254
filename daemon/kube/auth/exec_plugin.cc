#include "daemon/kube/auth/exec_plugin.h"

#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "absl/status/status.h"
#include "daemon/kube/auth/pem.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// Plugins print a few kilobytes; anything beyond this is a broken plugin, not credentials.
constexpr std::size_t kMaxStdout = 1 << 20;
// Enough stderr for a useful message; the rest is dropped (the tail is the interesting part).
constexpr std::size_t kMaxStderrInMessage = 4096;

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct ProcessResult {
  int exit_code = 0;    // when it exited
  int term_signal = 0;  // when a signal ended it
  bool timed_out = false;
  bool stdout_too_long = false;
  std::string out;
  std::string err;
};

std::string ErrnoText(int error) { return std::strerror(error); }

// Reads what is available on `fd` into `sink` (up to `limit` bytes kept). Returns false at EOF
// or on an error other than EINTR/EAGAIN.
bool ReadSome(int fd, std::string& sink, std::size_t limit, bool* overflow) {
  char buffer[16384];
  const ssize_t n = read(fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  const std::size_t room = limit > sink.size() ? limit - sink.size() : 0;
  if (static_cast<std::size_t>(n) > room && overflow != nullptr) *overflow = true;
  sink.append(buffer, std::min(room, static_cast<std::size_t>(n)));
  return true;
}

// Runs `path` with `argv` and `env`, stdin /dev/null, in its own process group; collects its
// output until it exits, or kills the group at the deadline. Stops reading once the plugin itself
// has exited, so a background process that inherited its stdout cannot hold us up.
absl::StatusOr<ProcessResult> RunProcess(const std::string& path,
                                         const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Fd null_in(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) return absl::InternalError(fmt::format("/dev/null: {}", ErrnoText(errno)));
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(fmt::format("pipe2: {}", ErrnoText(errno)));
  }
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(fmt::format("pipe2: {}", ErrnoText(errno)));
  }
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_in.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Own process group, killed as a whole at the deadline. Default SIGPIPE and an empty signal
  // mask, whatever the daemon has set up for itself (an ignored signal survives exec).
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t default_signals, no_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigemptyset(&no_signals);
  posix_spawnattr_setsigdefault(&attributes, &default_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> args = argv;
  std::vector<std::string> environment = env;
  std::vector<char*> c_args, c_env;
  for (std::string& arg : args) c_args.push_back(arg.data());
  c_args.push_back(nullptr);
  for (std::string& variable : environment) c_env.push_back(variable.data());
  c_env.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error =
      posix_spawn(&pid, path.c_str(), &actions, &attributes, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) {
    return absl::FailedPreconditionError(
        fmt::format("cannot run {}: {}", path, ErrnoText(spawn_error)));
  }
  null_in.Reset();
  out_w.Reset();
  err_w.Reset();

  ProcessResult result;
  int wait_status = 0;
  bool reaped = false;
  while (out_r.get() >= 0 || err_r.get() >= 0 || !reaped) {
    if (!reaped) {
      const pid_t done = waitpid(pid, &wait_status, WNOHANG);
      if (done == pid) reaped = true;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      // After the plugin's exit this only stops a process it left behind that keeps writing.
      result.timed_out = !reaped;
      break;
    }
    // Once the plugin has exited, only what is already in the pipes counts: poll without
    // waiting and stop at the first quiet moment.
    int wait_ms = 0;
    if (!reaped) {
      wait_ms = static_cast<int>(std::min<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1, 20));
    }
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
    const int ready = poll(fds, 2, wait_ms);
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(fmt::format("poll: {}", ErrnoText(errno)));
    }
    if (ready <= 0) {
      if (reaped) break;
      continue;
    }
    if (fds[0].fd >= 0 && fds[0].revents != 0 &&
        !ReadSome(out_r.get(), result.out, kMaxStdout, &result.stdout_too_long)) {
      out_r.Reset();
    }
    if (fds[1].fd >= 0 && fds[1].revents != 0 &&
        !ReadSome(err_r.get(), result.err, kMaxStdout, nullptr)) {
      err_r.Reset();
    }
  }
  if (!reaped) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(wait_status)) result.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) result.term_signal = WTERMSIG(wait_status);
  return result;
}

bool IsExecutableFile(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) == 0;
}

// client-go runs the command through Go's exec.Command, which looks a name without a slash up in
// $PATH (an empty entry means the current directory).
std::string FindExecutable(const std::string& command, const std::string& path_variable) {
  if (command.find('/') != std::string::npos) return IsExecutableFile(command) ? command : "";
  std::size_t start = 0;
  while (start <= path_variable.size()) {
    std::size_t end = path_variable.find(':', start);
    if (end == std::string::npos) end = path_variable.size();
    std::string dir = path_variable.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = fmt::format("{}/{}", dir, command);
    if (IsExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

std::string TrimSpace(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string StderrTail(const std::string& err) {
  std::string trimmed = TrimSpace(err);
  if (trimmed.size() <= kMaxStderrInMessage) return trimmed;
  return "..." + trimmed.substr(trimmed.size() - kMaxStderrInMessage);
}

// "; stderr: ...; installHint: ..." for whichever of the two there is.
std::string Details(const std::string& err, const std::string& install_hint) {
  std::string details;
  const std::string tail = StderrTail(err);
  if (!tail.empty()) details += fmt::format("; stderr: {}", tail);
  if (!install_hint.empty()) details += fmt::format("; installHint: {}", TrimSpace(install_hint));
  return details;
}

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// A string member: absent or null is "", another type an error.
absl::StatusOr<std::string> StringMember(const rapidjson::Value& object, const char* name,
                                         std::string_view where) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr || value->IsNull()) return std::string();
  if (!value->IsString()) {
    return absl::InvalidArgumentError(fmt::format("{}{} is not a string", where, name));
  }
  return std::string(value->GetString(), value->GetStringLength());
}

int ParseDigits(std::string_view text, std::size_t pos, std::size_t count, bool* ok) {
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (i >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) {
      *ok = false;
      return 0;
    }
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

absl::StatusOr<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" is not an RFC 3339 time such as 2024-05-01T12:00:00Z", text));
  };
  bool ok = true;
  const int year = ParseDigits(text, 0, 4, &ok);
  const int month = ParseDigits(text, 5, 2, &ok);
  const int day = ParseDigits(text, 8, 2, &ok);
  const int hour = ParseDigits(text, 11, 2, &ok);
  const int minute = ParseDigits(text, 14, 2, &ok);
  const int second = ParseDigits(text, 17, 2, &ok);
  if (!ok || text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return invalid();
  }
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 ||
      day > kDaysInMonth[month - 1] + (month == 2 && IsLeap(year) ? 1 : 0) || hour > 23 ||
      minute > 59 || second > 59) {
    return invalid();
  }
  std::size_t pos = 19;
  int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return invalid();
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int64_t offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '+' ? 1 : -1;
    const int offset_hours = ParseDigits(text, pos + 1, 2, &ok);
    const int offset_minutes = ParseDigits(text, pos + 4, 2, &ok);
    if (!ok || pos + 3 >= text.size() || text[pos + 3] != ':' || offset_hours > 23 ||
        offset_minutes > 59) {
      return invalid();
    }
    offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
    pos += 6;
  } else {
    return invalid();
  }
  if (pos != text.size()) return invalid();
  const int64_t seconds =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_seconds;
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos)));
}

std::string ExecInfoJson(const ExecConfig& exec, const ExecClusterInfo& cluster) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  const auto key = [&writer](const char* name) { writer.Key(name); };
  const auto string = [&writer](const std::string& value) {
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  writer.StartObject();
  key("kind");
  writer.String("ExecCredential");
  key("apiVersion");
  string(exec.api_version);
  key("spec");
  writer.StartObject();
  // client-go sends spec.interactive always; informerd never has a terminal to offer.
  key("interactive");
  writer.Bool(false);
  if (exec.provide_cluster_info) {
    key("cluster");
    writer.StartObject();
    key("server");
    string(cluster.server);
    if (!cluster.tls_server_name.empty()) {
      key("tls-server-name");
      string(cluster.tls_server_name);
    }
    if (cluster.insecure_skip_tls_verify) {
      key("insecure-skip-tls-verify");
      writer.Bool(true);
    }
    if (!cluster.ca_pem.empty()) {
      // []byte in Go's JSON: base64.
      key("certificate-authority-data");
      string(EncodeBase64(cluster.ca_pem));
    }
    if (!cluster.config_json.empty()) {
      key("config");
      writer.RawValue(cluster.config_json.data(), cluster.config_json.size(),
                      rapidjson::kObjectType);
    }
    writer.EndObject();
  }
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<Credentials> ParseExecCredential(std::string_view json,
                                                std::string_view api_version) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(fmt::format(
        "stdout is not JSON: {} (at offset {})",
        rapidjson::GetParseError_En(document.GetParseError()), document.GetErrorOffset()));
  }
  if (!document.IsObject()) return absl::InvalidArgumentError("stdout is not a JSON object");
  absl::StatusOr<std::string> kind = StringMember(document, "kind", "");
  if (!kind.ok()) return kind.status();
  if (*kind != "ExecCredential") {
    return absl::InvalidArgumentError(
        fmt::format("stdout has kind \"{}\", not \"ExecCredential\"", *kind));
  }
  absl::StatusOr<std::string> version = StringMember(document, "apiVersion", "");
  if (!version.ok()) return version.status();
  if (*version != api_version) {
    return absl::InvalidArgumentError(
        fmt::format("the plugin returned apiVersion \"{}\"; the kubeconfig asks for \"{}\"",
                    *version, api_version));
  }
  const rapidjson::Value* status = Member(document, "status");
  if (status == nullptr || status->IsNull()) {
    return absl::InvalidArgumentError("the plugin returned no status");
  }
  if (!status->IsObject()) return absl::InvalidArgumentError("status is not an object");
  Credentials credentials;
  for (auto [name, target] :
       {std::pair<const char*, std::string*>{"token", &credentials.bearer_token},
        std::pair<const char*, std::string*>{"clientCertificateData", &credentials.client_cert_pem},
        std::pair<const char*, std::string*>{"clientKeyData", &credentials.client_key_pem}}) {
    absl::StatusOr<std::string> value = StringMember(*status, name, "status.");
    if (!value.ok()) return value.status();
    *target = *std::move(value);
  }
  if (credentials.bearer_token.empty() && credentials.client_cert_pem.empty() &&
      credentials.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "the plugin returned neither a token nor a client certificate and key");
  }
  if (credentials.client_cert_pem.empty() != credentials.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "the plugin returned only a client certificate or only a key, not both");
  }
  if (!credentials.client_cert_pem.empty()) {
    if (absl::Status pair =
            CheckClientKeyPair(credentials.client_cert_pem, credentials.client_key_pem);
        !pair.ok()) {
      return absl::InvalidArgumentError(fmt::format(
          "status.clientCertificateData/clientKeyData: {}", std::string(pair.message())));
    }
  }
  absl::StatusOr<std::string> expiry = StringMember(*status, "expirationTimestamp", "status.");
  if (!expiry.ok()) return expiry.status();
  if (!expiry->empty()) {
    absl::StatusOr<std::chrono::system_clock::time_point> time = ParseRfc3339(*expiry);
    if (!time.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("status.expirationTimestamp: {}", std::string(time.status().message())));
    }
    credentials.expiry = *time;
  }
  return credentials;
}

ExecCredentialSource::ExecCredentialSource(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<const Credentials>> ExecCredentialSource::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  const bool expired =
      cached_ != nullptr && cached_->expiry.has_value() &&
      (options_.clock ? options_.clock() : std::chrono::system_clock::now()) > *cached_->expiry;
  if (cached_ != nullptr && !invalidated_ && !expired) return cached_;
  absl::StatusOr<Credentials> fresh = Run();
  if (!fresh.ok()) return fresh.status();
  invalidated_ = false;
  cached_ = std::make_shared<const Credentials>(*std::move(fresh));
  return cached_;
}

void ExecCredentialSource::Invalidate(const std::shared_ptr<const Credentials>& rejected) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rejected == nullptr || rejected == cached_) invalidated_ = true;
}

absl::StatusOr<Credentials> ExecCredentialSource::Run() const {
  const ExecConfig& exec = options_.exec;
  const std::string path = FindExecutable(exec.command, options_.environment.Get("PATH"));
  if (path.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: exec plugin {} not found{}{}", options_.identity, exec.command,
        exec.command.find('/') == std::string::npos ? " in $PATH" : " or not executable",
        Details("", exec.install_hint)));
  }
  // The daemon's environment, then the kubeconfig's exec.env, then KUBERNETES_EXEC_INFO: later
  // definitions win, as with Go's exec.Cmd.
  std::map<std::string, std::string> variables = options_.environment.variables();
  for (const auto& [name, value] : exec.env) variables[name] = value;
  variables["KUBERNETES_EXEC_INFO"] = ExecInfoJson(exec, options_.cluster);
  std::vector<std::string> env;
  env.reserve(variables.size());
  for (const auto& [name, value] : variables) env.push_back(fmt::format("{}={}", name, value));
  std::vector<std::string> argv = {exec.command};
  argv.insert(argv.end(), exec.args.begin(), exec.args.end());

  absl::StatusOr<ProcessResult> run = RunProcess(path, argv, env, options_.timeout);
  if (!run.ok()) {
    return absl::Status(
        run.status().code(),
        fmt::format("{}: exec plugin {}: {}{}", options_.identity, exec.command,
                    std::string(run.status().message()), Details("", exec.install_hint)));
  }
  if (run->timed_out) {
    return absl::DeadlineExceededError(fmt::format(
        "{}: exec plugin {} did not finish within {} ms and was killed{}", options_.identity,
        exec.command, options_.timeout.count(), Details(run->err, exec.install_hint)));
  }
  if (run->term_signal != 0 || run->exit_code != 0) {
    const std::string how = run->term_signal != 0
                                ? fmt::format("was killed by signal {}", run->term_signal)
                                : fmt::format("failed with exit code {}", run->exit_code);
    return absl::UnauthenticatedError(fmt::format("{}: exec plugin {} {}{}", options_.identity,
                                                  exec.command, how,
                                                  Details(run->err, exec.install_hint)));
  }
  if (run->stdout_too_long) {
    return absl::InvalidArgumentError(fmt::format("{}: exec plugin {} printed more than {} bytes",
                                                  options_.identity, exec.command, kMaxStdout));
  }
  absl::StatusOr<Credentials> credentials = ParseExecCredential(run->out, exec.api_version);
  if (!credentials.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: exec plugin {}: {}{}", options_.identity, exec.command,
                    std::string(credentials.status().message()), Details(run->err, "")));
  }
  return credentials;
}

}  // namespace informerd::daemon

#include "daemon/kube/auth/credentials.h"

#include <cctype>

#include "daemon/kube/auth/file_contents.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

std::string TrimSpace(const std::string& text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

// The token in `path`, or why there is none.
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileContents(path);
  if (!contents.ok()) return contents.status();
  std::string token = TrimSpace(*contents);
  if (token.empty()) return absl::FailedPreconditionError(fmt::format("file {} is empty", path));
  return token;
}

}  // namespace

WallClock SystemWallClock() {
  return [] { return std::chrono::system_clock::now(); };
}

absl::StatusOr<std::shared_ptr<FileTokenSource>> FileTokenSource::Create(Options options) {
  if (!options.clock) options.clock = SystemWallClock();
  std::shared_ptr<FileTokenSource> source(new FileTokenSource(std::move(options)));
  const Options& o = source->options_;
  std::lock_guard<std::mutex> lock(source->mu_);
  source->last_read_ = o.clock();
  absl::StatusOr<std::string> token = ReadToken(o.path);
  if (!token.ok() && o.fallback_token.empty()) {
    return absl::Status(token.status().code(), fmt::format("{}: {}", o.description,
                                                           std::string(token.status().message())));
  }
  if (!token.ok() && o.on_warning) {
    o.on_warning(absl::Status(token.status().code(),
                              fmt::format("{}: {}; using the `token` given beside it",
                                          o.description, std::string(token.status().message()))));
  }
  Credentials credentials;
  credentials.bearer_token = token.ok() ? *token : o.fallback_token;
  credentials.client_cert_pem = o.client_cert_pem;
  credentials.client_key_pem = o.client_key_pem;
  source->current_ = std::make_shared<const Credentials>(std::move(credentials));
  return source;
}

absl::StatusOr<std::shared_ptr<const Credentials>> FileTokenSource::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (invalidated_ || options_.clock() - last_read_ >= options_.refresh_period) {
    // A failed re-read keeps the last good token: bound service-account tokens stay valid for a
    // while after kubelet starts rotating them, and a request with an old token that still works
    // is better than no request at all.
    (void)RefreshLocked();
  }
  return current_;
}

void FileTokenSource::Invalidate(const std::shared_ptr<const Credentials>& rejected) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rejected == nullptr || rejected == current_) invalidated_ = true;
}

absl::Status FileTokenSource::RefreshLocked() {
  last_read_ = options_.clock();
  invalidated_ = false;
  absl::StatusOr<std::string> token = ReadToken(options_.path);
  if (!token.ok()) {
    absl::Status warning(token.status().code(),
                         fmt::format("{}: cannot re-read the token ({}); still using the last one",
                                     options_.description, std::string(token.status().message())));
    if (options_.on_warning) options_.on_warning(warning);
    return warning;
  }
  // Same token, same pointer: callers compare pointers to notice rotations.
  if (*token == current_->bearer_token) return absl::OkStatus();
  Credentials credentials = *current_;
  credentials.bearer_token = *std::move(token);
  current_ = std::make_shared<const Credentials>(std::move(credentials));
  return absl::OkStatus();
}

}  // namespace informerd::daemon

#include "test/common/scripted_list_watch_client.h"

#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <utility>

#include "core/http_status.h"
#include "fmt/format.h"

namespace informerd::test {

daemon::HttpResult HttpOk(std::string body) {
  daemon::HttpResult result;
  result.http_status = 200;
  result.body = std::move(body);
  return result;
}

daemon::HttpResult HttpError(int http_status, std::string reason, std::string message,
                             std::optional<std::chrono::seconds> retry_after) {
  core::KubeStatus status;
  status.code = http_status;
  status.status = "Failure";
  status.reason = std::move(reason);
  status.message = std::move(message);
  daemon::HttpResult result;
  result.http_status = http_status;
  result.body = fmt::format(
      R"({{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{}","reason":"{}","code":{}}})",
      status.message, status.reason, http_status);
  result.retry_after = retry_after;
  result.status = absl::Status(core::StatusCodeForHttpError(http_status), status.message);
  result.kube_status = std::move(status);
  return result;
}

daemon::HttpResult ConnectionLost(std::string message) {
  daemon::HttpResult result;
  // As ApiServerClient reports a stream cut after its 200 header: the status stays 200.
  result.http_status = 200;
  result.status = absl::UnavailableError(std::move(message));
  return result;
}

// ---- ScriptedWatch ----------------------------------------------------------------------

ScriptedWatch::ScriptedWatch(std::string path_and_query, daemon::ListWatchClient::Strand strand,
                             daemon::ListWatchClient::BytesCallback on_bytes,
                             daemon::ListWatchClient::EndCallback on_end)
    : path_and_query_(std::move(path_and_query)),
      strand_(std::move(strand)),
      on_bytes_(std::make_shared<daemon::ListWatchClient::BytesCallback>(std::move(on_bytes))),
      on_end_(std::make_shared<daemon::ListWatchClient::EndCallback>(std::move(on_end))) {}

void ScriptedWatch::Open() { Push(std::string()); }

void ScriptedWatch::Push(std::string bytes) {
  if (!open()) return;
  boost::asio::post(strand_,
                    [cancelled = cancelled_, on_bytes = on_bytes_, bytes = std::move(bytes)] {
                      if (!*cancelled) (*on_bytes)(bytes);
                    });
}

void ScriptedWatch::End(daemon::HttpResult result) {
  if (!open()) return;
  ended_ = true;
  boost::asio::post(
      strand_, [cancelled = cancelled_, on_end = on_end_, result = std::move(result)]() mutable {
        if (!*cancelled) (*on_end)(std::move(result));
      });
  on_bytes_.reset();
  on_end_.reset();
}

void ScriptedWatch::Cancel() {
  *cancelled_ = true;
  // Callbacks already posted hold their own references.
  on_bytes_.reset();
  on_end_.reset();
}

// ---- ScriptedListWatchClient ------------------------------------------------------------

ScriptedListWatchClient::ScriptedListWatchClient(boost::asio::io_context& io)
    : strand_(boost::asio::make_strand(io)), work_(boost::asio::make_work_guard(io)) {}

ScriptedListWatchClient::~ScriptedListWatchClient() {
  // The callbacks may hold the objects under test; let them go before the watches' owners.
  for (const auto& watch : watches_) watch->Cancel();
}

bool ScriptedListWatchClient::Matches(std::string_view path, std::string_view path_and_query) {
  if (path_and_query.substr(0, path.size()) != path) return false;
  if (path_and_query.size() == path.size()) return true;
  if (!path.empty() && (path.back() == '?' || path.back() == '&' || path.back() == '=')) {
    return true;
  }
  const char next = path_and_query[path.size()];
  return next == '?' || next == '&';
}

void ScriptedListWatchClient::Get(std::string path_and_query, std::string accept,
                                  GetCallback done) {
  requests_.push_back(Request{Request::Verb::kGet, path_and_query, std::move(accept)});
  for (auto it = scripts_.begin(); it != scripts_.end(); ++it) {
    if (Matches(it->path, path_and_query)) {
      daemon::HttpResult result = std::move(it->result);
      scripts_.erase(it);
      Answer(std::move(done), std::move(result));
      return;
    }
  }
  waiting_.push_back(WaitingGet{std::move(path_and_query), std::move(done)});
}

void ScriptedListWatchClient::ScriptGet(std::string path, daemon::HttpResult result) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (Matches(path, it->path_and_query)) {
      GetCallback done = std::move(it->done);
      waiting_.erase(it);
      Answer(std::move(done), std::move(result));
      return;
    }
  }
  scripts_.push_back(Script{std::move(path), std::move(result)});
}

void ScriptedListWatchClient::Answer(GetCallback done, daemon::HttpResult result) {
  // Posted, never called inline: the contract says callbacks run on the strand, later.
  boost::asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

std::vector<std::string> ScriptedListWatchClient::WaitingGets() const {
  std::vector<std::string> out;
  for (const WaitingGet& get : waiting_) out.push_back(get.path_and_query);
  return out;
}

daemon::WatchHandle ScriptedListWatchClient::Watch(std::string path_and_query,
                                                   BytesCallback on_bytes, EndCallback on_end) {
  requests_.push_back(Request{Request::Verb::kWatch, path_and_query, ""});
  auto watch = std::make_shared<ScriptedWatch>(std::move(path_and_query), strand_,
                                               std::move(on_bytes), std::move(on_end));
  watches_.push_back(watch);
  return daemon::WatchHandle(watch);
}

ScriptedWatch& ScriptedListWatchClient::LastWatch() {
  REQUIRE_FALSE(watches_.empty());
  return *watches_.back();
}

std::size_t ScriptedListWatchClient::open_watches() const {
  std::size_t n = 0;
  for (const auto& watch : watches_) n += watch->open() ? 1 : 0;
  return n;
}

std::vector<std::string> ScriptedListWatchClient::RequestLines(std::size_t from) const {
  std::vector<std::string> out;
  for (std::size_t i = from; i < requests_.size(); ++i) {
    const Request& request = requests_[i];
    out.push_back(fmt::format("{} {}", request.verb == Request::Verb::kGet ? "GET" : "WATCH",
                              request.path_and_query));
  }
  return out;
}

}  // namespace informerd::test

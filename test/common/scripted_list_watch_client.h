// ScriptedListWatchClient: a daemon::ListWatchClient (daemon/kube/list_watch_client.h) whose
// answers the test writes, for in-process tests of Informer, Discovery and SharedInformerFactory.
// No sockets and no threads: callbacks are posted to a strand of the test's io_context, and run
// when the test runs it (io.poll()), so every step happens exactly when the test says.
//
//   GET    Answered from the scripts (ScriptGet): the oldest script whose path matches, or, if
//          none does yet, held until one is written. A script written while matching GETs wait
//          answers the oldest of them.
//   WATCH  Opened at once and listed in watches(): the test pushes body bytes into it (after
//          Open(), the empty piece that says its headers arrived, when it matters) and ends it
//          with an HttpResult, as a server would. Cancelling the WatchHandle marks it cancelled;
//          nothing pushed after that (or still queued on the strand) reaches the caller.
//   Every request is recorded in order (requests(), RequestLines()).
//
// A path matches when the request's path-and-query starts with it and the match ends at a
// boundary: the end, or before '?' or '&' (or the path itself ends with '?', '&' or '='). So
// "/api" matches "/api" but not "/apis" or "/api/v1", and "/api/v1/pods" matches every LIST of
// pods; "/api/v1/pods?limit=500&continue=" matches only continued pages.
//
// Single-threaded: the test thread makes the calls and runs the io_context. The client keeps the
// io_context from running out of work, so io.poll() can be called again and again.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/kube/list_watch_client.h"

namespace informerd::test {

// A 200 answer with `body`.
daemon::HttpResult HttpOk(std::string body);
// An error answer as the apiserver sends it: a Status body with `reason` and `message`, the
// code from core/http_status.h's table, and Retry-After when given.
daemon::HttpResult HttpError(int http_status, std::string reason, std::string message,
                             std::optional<std::chrono::seconds> retry_after = std::nullopt);
// No answer at all (connection refused or reset): HTTP status 0, Unavailable.
daemon::HttpResult ConnectionLost(std::string message = "connection reset by peer");

// One watch opened through the client; also the stream its WatchHandle owns.
class ScriptedWatch final : public daemon::WatchStream {
 public:
  ScriptedWatch(std::string path_and_query, daemon::ListWatchClient::Strand strand,
                daemon::ListWatchClient::BytesCallback on_bytes,
                daemon::ListWatchClient::EndCallback on_end);

  const std::string& path_and_query() const { return path_and_query_; }

  // Posts an empty piece to on_bytes, as ApiServerClient does when a 200 answer's headers arrive:
  // the watch is open. Ignored once ended or cancelled.
  void Open();
  // Posts `bytes` to on_bytes, as one piece of the 200 stream. Ignored once ended or cancelled.
  void Push(std::string bytes);
  // Posts the end of the watch to on_end (once; later calls are ignored). A 200 with OK status
  // is a clean end (timeoutSeconds ran out); ConnectionLost() a stream broken mid-way; an
  // HttpError a non-200 answer.
  void End(daemon::HttpResult result);

  bool cancelled() const { return *cancelled_; }
  bool ended() const { return ended_; }
  // Neither cancelled nor ended.
  bool open() const { return !*cancelled_ && !ended_; }

  // daemon::WatchStream: called by the WatchHandle. Drops the callbacks.
  void Cancel() override;

 private:
  const std::string path_and_query_;
  daemon::ListWatchClient::Strand strand_;
  std::shared_ptr<daemon::ListWatchClient::BytesCallback> on_bytes_;
  std::shared_ptr<daemon::ListWatchClient::EndCallback> on_end_;
  std::shared_ptr<bool> cancelled_ = std::make_shared<bool>(false);
  bool ended_ = false;
};

class ScriptedListWatchClient final : public daemon::ListWatchClient {
 public:
  struct Request {
    enum class Verb { kGet, kWatch };
    Verb verb;
    std::string path_and_query;
    std::string accept;
  };

  explicit ScriptedListWatchClient(boost::asio::io_context& io);
  ~ScriptedListWatchClient() override;
  ScriptedListWatchClient(const ScriptedListWatchClient&) = delete;
  ScriptedListWatchClient& operator=(const ScriptedListWatchClient&) = delete;

  // daemon::ListWatchClient.
  void Get(std::string path_and_query, std::string accept, GetCallback done) override;
  [[nodiscard]] daemon::WatchHandle Watch(std::string path_and_query, BytesCallback on_bytes,
                                          EndCallback on_end) override;
  Strand strand() const override { return strand_; }

  // Answers the oldest waiting GET that `path` matches with `result`, or else the next such GET
  // to arrive. Scripts for the same path are used in the order they were written.
  void ScriptGet(std::string path, daemon::HttpResult result);
  // Scripts not used yet.
  std::size_t unused_scripts() const { return scripts_.size(); }
  // The GETs waiting for a script, oldest first.
  std::vector<std::string> WaitingGets() const;

  // Every Watch() ever opened, oldest first.
  const std::vector<std::shared_ptr<ScriptedWatch>>& watches() const { return watches_; }
  // The newest watch; fails the test if there is none.
  ScriptedWatch& LastWatch();
  // Watches neither cancelled nor ended.
  std::size_t open_watches() const;

  // Every request, in the order it was made.
  const std::vector<Request>& requests() const { return requests_; }
  // The same as "GET /api" and "WATCH /api/v1/pods?watch=1&...", from the `from`-th on.
  std::vector<std::string> RequestLines(std::size_t from = 0) const;

  // Whether `path` matches the request `path_and_query` (see the top of this file).
  static bool Matches(std::string_view path, std::string_view path_and_query);

 private:
  struct WaitingGet {
    std::string path_and_query;
    GetCallback done;
  };
  struct Script {
    std::string path;
    daemon::HttpResult result;
  };
  void Answer(GetCallback done, daemon::HttpResult result);

  Strand strand_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<Request> requests_;
  std::deque<WaitingGet> waiting_;
  std::deque<Script> scripts_;
  std::vector<std::shared_ptr<ScriptedWatch>> watches_;
};

}  // namespace informerd::test

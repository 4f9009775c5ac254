// RequestLog: what the fake apiserver saw: every request (method, target, headers, the status
// it was answered with) and the watches open right now, per resource.
//
// Tests read it to assert client behaviour ("the daemon presented the rotated token", "it holds
// exactly one watch on pods", "it resumed from RV 42 without relisting"). Written by connection
// handlers on the I/O thread, read from the test thread; thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace informerd::fakeapi {

struct RequestRecord {
  std::string method;
  std::string target;  // Path and query, as sent.
  std::string path;    // Decoded path.
  std::map<std::string, std::string> query;  // Decoded parameters.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // A POST's body (a review), as sent.
  int status = 0;  // The HTTP status answered (200 for a watch stream, 0 if none was sent).

  // Case-insensitive header lookup; "" when absent.
  std::string Header(std::string_view name) const;
  // "" when absent.
  std::string Param(const std::string& name) const;
  bool IsWatch() const;
};

class RequestLog {
 public:
  void Record(RequestRecord record);
  std::vector<RequestRecord> Snapshot() const;
  void Clear();
  // Waits until `predicate` holds for at least `count` records.
  bool WaitForRequests(const std::function<bool(const RequestRecord&)>& predicate,
                       std::size_t count, std::chrono::milliseconds timeout) const;

  void WatchOpened(const std::string& resource);
  void WatchClosed(const std::string& resource);
  int OpenWatches(const std::string& resource) const;
  // Waits until exactly `count` watches are open on `resource`.
  bool WaitForOpenWatches(const std::string& resource, int count,
                          std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<RequestRecord> records_;
  std::map<std::string, int> open_watches_;
};

// Keeps one watch counted as open for as long as it lives.
class OpenWatchToken {
 public:
  OpenWatchToken(RequestLog& log, std::string resource);
  ~OpenWatchToken();
  OpenWatchToken(const OpenWatchToken&) = delete;
  OpenWatchToken& operator=(const OpenWatchToken&) = delete;

 private:
  RequestLog& log_;
  const std::string resource_;
};

}  // namespace informerd::fakeapi

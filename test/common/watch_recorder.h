// WatchRecorder: the receiving end of one ListWatchClient::Watch in a test. Feeds the stream's
// bytes to a core::WatchEventDecoder as they arrive (on the client's strand) and records how the
// watch ended; the test thread waits for events or the end. Copies share one state, so the
// callbacks may outlive the recorder the test holds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/watch_event_decoder.h"
#include "daemon/kube/list_watch_client.h"

namespace informerd::test {

class WatchRecorder {
 public:
  // `wait`: how long WaitForEvents and WaitForEnd wait unless told otherwise.
  explicit WatchRecorder(std::chrono::milliseconds wait = std::chrono::seconds(20));

  daemon::ListWatchClient::BytesCallback OnBytes() const;
  daemon::ListWatchClient::EndCallback OnEnd() const;

  // Whether `count` events have been decoded before the timeout.
  bool WaitForEvents(std::size_t count) const { return WaitForEvents(count, wait_); }
  bool WaitForEvents(std::size_t count, std::chrono::milliseconds timeout) const;
  // How the watch ended; nullopt if it has not by the timeout.
  std::optional<daemon::HttpResult> WaitForEnd() const { return WaitForEnd(wait_); }
  std::optional<daemon::HttpResult> WaitForEnd(std::chrono::milliseconds timeout) const;

  // Whether the client said the watch is open (the empty piece on_bytes gets when the 200
  // headers arrive) before the timeout.
  bool WaitForOpen(std::chrono::milliseconds timeout) const;
  // How many times it said so (the contract: at most once, and never for a non-200 answer).
  int opens() const;

  std::vector<core::WatchEvent> events() const;
  // How many pieces the body arrived in (on_bytes calls with bytes; the empty one is opens()).
  std::size_t pieces() const;
  // How many times on_end was called (the contract: at most once).
  int ends() const;
  // The first decoding error, OK if none.
  absl::Status decode_status() const;
  // Whether the bytes so far end between events (nothing of a next event is buffered).
  bool EndsBetweenEvents() const;

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    core::WatchEventDecoder decoder{core::WatchDecoderOptions{}};
    std::vector<core::WatchEvent> events;
    std::size_t pieces = 0;
    int opens = 0;
    int ends = 0;
    absl::Status decode_status;
    std::optional<daemon::HttpResult> end;
  };
  std::chrono::milliseconds wait_;
  std::shared_ptr<State> state_;
};

}  // namespace informerd::test

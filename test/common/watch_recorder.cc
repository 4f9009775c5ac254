#include "test/common/watch_recorder.h"

#include <utility>

namespace informerd::test {

WatchRecorder::WatchRecorder(std::chrono::milliseconds wait)
    : wait_(wait), state_(std::make_shared<State>()) {}

daemon::ListWatchClient::BytesCallback WatchRecorder::OnBytes() const {
  return [state = state_](std::string_view bytes) {
    std::lock_guard<std::mutex> lock(state->mu);
    if (bytes.empty()) {
      // The client's word that the 200 headers arrived: not a piece of the body.
      ++state->opens;
      state->cv.notify_all();
      return;
    }
    ++state->pieces;
    absl::Status fed = state->decoder.Feed(bytes, state->events);
    if (!fed.ok() && state->decode_status.ok()) state->decode_status = fed;
    state->cv.notify_all();
  };
}

daemon::ListWatchClient::EndCallback WatchRecorder::OnEnd() const {
  return [state = state_](daemon::HttpResult result) {
    std::lock_guard<std::mutex> lock(state->mu);
    ++state->ends;
    state->end = std::move(result);
    state->cv.notify_all();
  };
}

bool WatchRecorder::WaitForEvents(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->events.size() >= count; });
}

std::optional<daemon::HttpResult> WatchRecorder::WaitForEnd(
    std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] { return state_->end.has_value(); });
  return state_->end;
}

std::vector<core::WatchEvent> WatchRecorder::events() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->events;
}

bool WatchRecorder::WaitForOpen(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->opens > 0; });
}

int WatchRecorder::opens() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->opens;
}

std::size_t WatchRecorder::pieces() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->pieces;
}

int WatchRecorder::ends() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->ends;
}

absl::Status WatchRecorder::decode_status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->decode_status;
}

bool WatchRecorder::EndsBetweenEvents() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->decoder.buffered_bytes() == 0;
}

}  // namespace informerd::test

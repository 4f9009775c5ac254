#include "test/fakeapi/load_generator.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>

#include "test/fakeapi/synthetic_objects.h"

namespace informerd::fakeapi {
namespace {

std::vector<std::string> KeysOf(const std::vector<std::pair<std::string, std::string>>& objects) {
  std::vector<std::string> keys;
  keys.reserve(objects.size());
  for (const auto& [ns, name] : objects) keys.push_back(ns + "/" + name);
  return keys;
}

// Events are produced in small bursts every tick; with a steady clock the rate holds on average.
constexpr std::chrono::milliseconds kTick(5);
}  // namespace

LoadGenerator::LoadGenerator(boost::asio::io_context& io, FakeStore& store, std::string resource,
                             std::vector<std::pair<std::string, std::string>> objects,
                             double events_per_second)
    : strand_(boost::asio::make_strand(io)),
      timer_(strand_),
      store_(store),
      resource_(std::move(resource)),
      keys_(KeysOf(objects)),
      events_per_second_(events_per_second) {}

void LoadGenerator::Start() {
  boost::asio::post(strand_, [self = shared_from_this()] {
    self->started_ = std::chrono::steady_clock::now();
    self->Arm();
  });
}

void LoadGenerator::Stop() {
  boost::asio::post(strand_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->timer_.cancel();
  });
}

std::uint64_t LoadGenerator::events_generated() const { return published_.load(); }

void LoadGenerator::Arm() {
  if (stopped_ || keys_.empty() || events_per_second_ <= 0) return;
  timer_.expires_after(kTick);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->OnTick(ec); });
}

void LoadGenerator::OnTick(boost::system::error_code ec) {
  if (ec || stopped_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const auto due = static_cast<std::uint64_t>(elapsed * events_per_second_);
  if (generated_ < due) {
    const std::uint64_t count = due - generated_;
    // A key whose object a test deleted is skipped, and counted all the same.
    last_stamp_ = std::max(last_stamp_, RealtimeUnixNanos());
    (void)store_.TouchKeys(resource_, keys_, next_, static_cast<std::size_t>(count), last_stamp_);
    next_ = static_cast<std::size_t>((next_ + count) % keys_.size());
    generated_ = due;
  }
  published_.store(generated_);
  Arm();
}

}  // namespace informerd::fakeapi

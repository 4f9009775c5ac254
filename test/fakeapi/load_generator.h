// LoadGenerator: load mode's writer. Touches the objects of one resource round-robin at a fixed
// rate, so that watchers receive a steady stream of MODIFIED events whose object bytes are the
// stored ones (no serialization per event, see synthetic_objects.h). Each timer tick makes the
// events due since the last one as one batch (FakeStore::TouchKeys: one lock, one wake per
// watcher), so the cost per event stays small at 100,000 events per second.
//
// Each batch's revisions carry the batch's CLOCK_REALTIME time as their send-time stamp
// (never earlier than the previous batch's); it shows in the bytes of objects built with a stamp
// slot (SyntheticLoad::stamp_send_time) and nowhere else.
//
// Owned by FakeApiServer; runs as a timer on the server's io_context. Start/Stop are posted to
// its strand, so any thread may call them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test/fakeapi/fake_store.h"

namespace informerd::fakeapi {

class LoadGenerator : public std::enable_shared_from_this<LoadGenerator> {
 public:
  // `objects`: (namespace, name) pairs to modify in turn.
  LoadGenerator(boost::asio::io_context& io, FakeStore& store, std::string resource,
                std::vector<std::pair<std::string, std::string>> objects,
                double events_per_second);
  void Start();
  void Stop();
  std::uint64_t events_generated() const;

 private:
  void Arm();
  void OnTick(boost::system::error_code ec);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  FakeStore& store_;
  const std::string resource_;
  const std::vector<std::string> keys_;  // The objects' store keys ("namespace/name").
  const double events_per_second_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t generated_ = 0;
  std::size_t next_ = 0;
  std::uint64_t last_stamp_ = 0;  // Unix ns of the previous batch.
  bool stopped_ = false;
  std::atomic<std::uint64_t> published_{0};  // generated_, readable from any thread.
};

}  // namespace informerd::fakeapi

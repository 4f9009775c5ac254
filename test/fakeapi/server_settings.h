// ServerSettings: the fake apiserver's switches that tests flip at run time (the bearer token it
// requires, how it answers WatchList, the bookmark interval, how it cuts watch streams into
// chunks), plus fixed facts the handlers need (the advertised address and version).
//
// Owned by FakeApiServer; read by connection handlers on the I/O thread for every request and
// written from the test thread, hence the lock. Each getter returns a copy.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "test/fakeapi/list_options.h"

namespace informerd::fakeapi {

class ServerSettings {
 public:
  // Requests must carry `Authorization: Bearer TOKEN` or get 401; nullopt: anyone may ask.
  void RequireToken(std::optional<std::string> token);
  std::optional<std::string> required_token() const;

  void set_watch_list_support(WatchListSupport support);
  WatchListSupport watch_list_support() const;

  void set_bookmark_interval(std::chrono::milliseconds interval);
  std::chrono::milliseconds bookmark_interval() const;

  // When non-zero, watch output is cut into chunks of at most this many bytes, so that events
  // span chunks (clients must not assume one event per chunk).
  void set_watch_chunk_bytes(std::size_t bytes);
  std::size_t watch_chunk_bytes() const;

  // As the watch cache before Kubernetes 1.27 did: a LIST at resourceVersion=0 ignores `limit`
  // and returns everything at once.
  void set_rv0_ignores_limit(bool ignores);
  bool rv0_ignores_limit() const;

  void set_server_address(std::string address);
  std::string server_address() const;

  void set_git_version(std::string version);
  std::string git_version() const;

  // Whether the review APIs (review_api.h) are served and listed by discovery.
  void set_review_apis(bool on);
  bool review_apis() const;

 private:
  mutable std::mutex mutex_;
  std::optional<std::string> token_;
  WatchListSupport watch_list_ = WatchListSupport::kEnabled;
  std::chrono::milliseconds bookmark_interval_{5000};
  std::size_t watch_chunk_bytes_ = 0;
  bool rv0_ignores_limit_ = true;
  std::string server_address_;
  std::string git_version_ = "v1.29.0";
  bool review_apis_ = false;
};

}  // namespace informerd::fakeapi

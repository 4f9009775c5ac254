#include "test/fakeapi/server_settings.h"

namespace informerd::fakeapi {

void ServerSettings::RequireToken(std::optional<std::string> token) {
  std::lock_guard<std::mutex> lock(mutex_);
  token_ = std::move(token);
}

std::optional<std::string> ServerSettings::required_token() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return token_;
}

void ServerSettings::set_watch_list_support(WatchListSupport support) {
  std::lock_guard<std::mutex> lock(mutex_);
  watch_list_ = support;
}

WatchListSupport ServerSettings::watch_list_support() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return watch_list_;
}

void ServerSettings::set_bookmark_interval(std::chrono::milliseconds interval) {
  std::lock_guard<std::mutex> lock(mutex_);
  bookmark_interval_ = interval;
}

std::chrono::milliseconds ServerSettings::bookmark_interval() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bookmark_interval_;
}

void ServerSettings::set_watch_chunk_bytes(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  watch_chunk_bytes_ = bytes;
}

std::size_t ServerSettings::watch_chunk_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return watch_chunk_bytes_;
}

void ServerSettings::set_rv0_ignores_limit(bool ignores) {
  std::lock_guard<std::mutex> lock(mutex_);
  rv0_ignores_limit_ = ignores;
}

bool ServerSettings::rv0_ignores_limit() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rv0_ignores_limit_;
}

void ServerSettings::set_server_address(std::string address) {
  std::lock_guard<std::mutex> lock(mutex_);
  server_address_ = std::move(address);
}

std::string ServerSettings::server_address() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return server_address_;
}

void ServerSettings::set_git_version(std::string version) {
  std::lock_guard<std::mutex> lock(mutex_);
  git_version_ = std::move(version);
}

std::string ServerSettings::git_version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return git_version_;
}

void ServerSettings::set_review_apis(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  review_apis_ = on;
}

bool ServerSettings::review_apis() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return review_apis_;
}

}  // namespace informerd::fakeapi

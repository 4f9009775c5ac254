#include "test/fakeapi/request_log.h"

#include <algorithm>
#include <cctype>

namespace informerd::fakeapi {

std::string RequestRecord::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return "";
}

std::string RequestRecord::Param(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

bool RequestRecord::IsWatch() const {
  const std::string watch = Param("watch");
  return watch == "1" || watch == "true" || watch == "True" || watch == "t";
}

void RequestLog::Record(RequestRecord record) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(std::move(record));
  }
  changed_.notify_all();
}

std::vector<RequestRecord> RequestLog::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

void RequestLog::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  records_.clear();
}

bool RequestLog::WaitForRequests(const std::function<bool(const RequestRecord&)>& predicate,
                                 std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    return static_cast<std::size_t>(std::count_if(records_.begin(), records_.end(), predicate)) >=
           count;
  });
}

void RequestLog::WatchOpened(const std::string& resource) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++open_watches_[resource];
  }
  changed_.notify_all();
}

void RequestLog::WatchClosed(const std::string& resource) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --open_watches_[resource];
  }
  changed_.notify_all();
}

int RequestLog::OpenWatches(const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = open_watches_.find(resource);
  return it == open_watches_.end() ? 0 : it->second;
}

bool RequestLog::WaitForOpenWatches(const std::string& resource, int count,
                                    std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    auto it = open_watches_.find(resource);
    return (it == open_watches_.end() ? 0 : it->second) == count;
  });
}

OpenWatchToken::OpenWatchToken(RequestLog& log, std::string resource)
    : log_(log), resource_(std::move(resource)) {
  log_.WatchOpened(resource_);
}

OpenWatchToken::~OpenWatchToken() { log_.WatchClosed(resource_); }

}  // namespace informerd::fakeapi

#include "test/fakeapi/fault_script.h"

namespace informerd::fakeapi {

const char* VerbName(Verb verb) {
  switch (verb) {
    case Verb::kList:
      return "list";
    case Verb::kListContinue:
      return "list-continue";
    case Verb::kGet:
      return "get";
    case Verb::kWatch:
      return "watch";
    case Verb::kDiscovery:
      return "discovery";
    case Verb::kCreate:
      return "create";
  }
  return "?";
}

Fault Fault::HttpError(int code, std::string reason, std::string message,
                       int retry_after_seconds) {
  Fault f;
  f.kind = FaultKind::kHttpError;
  f.status_code = code;
  f.reason = std::move(reason);
  f.message = std::move(message);
  f.retry_after_seconds = retry_after_seconds;
  return f;
}

Fault Fault::TooManyRequests(int retry_after_seconds) {
  return HttpError(429, "TooManyRequests", "Too many requests, please try again later.",
                   retry_after_seconds);
}

Fault Fault::ServiceUnavailable(int retry_after_seconds) {
  return HttpError(503, "ServiceUnavailable",
                   "The server is currently unable to handle the request", retry_after_seconds);
}

Fault Fault::Expired() {
  return HttpError(410, "Expired", "too old resource version (scripted)");
}

Fault Fault::Delay(std::chrono::milliseconds delay) {
  Fault f;
  f.kind = FaultKind::kDelay;
  f.delay = delay;
  return f;
}

Fault Fault::DropConnection() {
  Fault f;
  f.kind = FaultKind::kDropConnection;
  return f;
}

Fault Fault::Stall(std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kStall;
  f.after_events = after_events;
  return f;
}

Fault Fault::MalformedJson(std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kMalformedJson;
  f.after_events = after_events;
  return f;
}

Fault Fault::HugeObject(std::size_t bytes, std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kHugeObject;
  f.object_bytes = bytes;
  f.after_events = after_events;
  return f;
}

Fault Fault::WatchErrorEvent(int code, std::string reason, std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kWatchErrorEvent;
  f.status_code = code;
  f.reason = std::move(reason);
  f.after_events = after_events;
  return f;
}

Fault Fault::ExpiredEvent(std::size_t after_events) {
  return WatchErrorEvent(410, "Expired", after_events);
}

Fault Fault::GoneEvent(std::size_t after_events) {
  return WatchErrorEvent(410, "Gone", after_events);
}

Fault Fault::CloseMidChunk(std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kCloseMidChunk;
  f.after_events = after_events;
  return f;
}

Fault Fault::CloseMidJson(std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kCloseMidJson;
  f.after_events = after_events;
  return f;
}

Fault Fault::EndWatch(std::size_t after_events) {
  Fault f;
  f.kind = FaultKind::kEndWatch;
  f.after_events = after_events;
  return f;
}

void FaultScript::Add(const std::string& resource, Verb verb, const Fault& fault, int times) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Discovery is not per resource: every discovery fault lands in one queue.
  auto& queue = queues_[{verb == Verb::kDiscovery ? std::string("*") : resource, verb}];
  for (int i = 0; i < times; ++i) queue.push_back(fault);
}

std::optional<Fault> FaultScript::TakeLocked(const std::string& resource, Verb verb) {
  for (const std::string& key : {resource, std::string("*")}) {
    auto it = queues_.find({key, verb});
    if (it != queues_.end() && !it->second.empty()) {
      Fault fault = std::move(it->second.front());
      it->second.pop_front();
      return fault;
    }
  }
  return std::nullopt;
}

std::optional<Fault> FaultScript::Take(const std::string& resource, Verb verb) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (verb == Verb::kDiscovery) return TakeLocked("*", verb);
  if (verb == Verb::kListContinue) {
    if (auto fault = TakeLocked(resource, Verb::kListContinue)) return fault;
    return TakeLocked(resource, Verb::kList);
  }
  return TakeLocked(resource, verb);
}

std::size_t FaultScript::Pending(const std::string& resource, Verb verb) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = queues_.find({verb == Verb::kDiscovery ? std::string("*") : resource, verb});
  return it == queues_.end() ? 0 : it->second.size();
}

void FaultScript::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  queues_.clear();
}

}  // namespace informerd::fakeapi

#include "daemon/informers/informer.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>
#include <type_traits>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// How often a long list (initial sync or relist) logs how far it has got.
constexpr std::chrono::seconds kListProgressInterval{10};

// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are), as Go's
// url.Values.Encode does for selectors such as "app in (a,b)" or "metadata.name!=x".
std::string EncodeQueryValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

class QueryBuilder {
 public:
  explicit QueryBuilder(std::string path) : text_(std::move(path)) {}
  void Add(const char* key, const std::string& value) {
    text_ += first_ ? '?' : '&';
    first_ = false;
    text_ += key;
    text_ += '=';
    text_ += EncodeQueryValue(value);
  }
  void AddIfSet(const char* key, const std::string& value) {
    if (!value.empty()) Add(key, value);
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
  bool first_ = true;
};

void AddSelectors(QueryBuilder& query, const InformerOptions& options) {
  query.AddIfSet("labelSelector", options.label_selector);
  query.AddIfSet("fieldSelector", options.field_selector);
}

// The reflector's view of a failed request: HTTP status, Status body, Retry-After.
core::ApiError ToApiError(const HttpResult& result) {
  // No answer, or a 2xx whose body broke (a watch stream cut or stalled after its 200 header):
  // a transport failure, not an HTTP error. A failed request never has a 2xx code of its own.
  if (result.http_status == 0 || (result.http_status >= 200 && result.http_status < 300)) {
    return core::ApiError::Transport(std::string(result.status.message()));
  }
  core::ApiError error =
      core::ApiError::Http(result.http_status, result.kube_status, result.retry_after);
  error.message = std::string(result.status.message());
  return error;
}

// The code a failure is counted under in the metrics: the Kubernetes code, or 0 when there was
// no error response (no response at all, or a watch stream that broke after its 200).
int MetricsCode(const core::ApiError& error) {
  return error.status || error.http_status != 200 ? error.code() : 0;
}

}  // namespace

std::string Informer::ListPath(const InformerOptions& options, const core::ListParams& params) {
  QueryBuilder query(options.resource.CollectionPath(options.namespace_name));
  AddSelectors(query, options);
  if (params.limit > 0) query.Add("limit", std::to_string(params.limit));
  query.AddIfSet("continue", params.continue_token);
  // An absent resourceVersion is the consistent read (""); "0" means any cached state.
  query.AddIfSet("resourceVersion", params.resource_version);
  query.AddIfSet("resourceVersionMatch", params.resource_version_match);
  return query.Take();
}

std::string Informer::WatchPath(const InformerOptions& options, const core::WatchParams& params) {
  QueryBuilder query(options.resource.CollectionPath(options.namespace_name));
  query.Add("watch", "1");
  AddSelectors(query, options);
  if (params.allow_watch_bookmarks) query.Add("allowWatchBookmarks", "true");
  query.AddIfSet("resourceVersion", params.resource_version);
  query.AddIfSet("resourceVersionMatch", params.resource_version_match);
  if (params.send_initial_events) query.Add("sendInitialEvents", "true");
  if (params.timeout_seconds > 0) {
    query.Add("timeoutSeconds", std::to_string(params.timeout_seconds));
  }
  return query.Take();
}

std::shared_ptr<Informer> Informer::Create(ListWatchClient& client, InformerOptions options,
                                           std::shared_ptr<core::Cache> cache,
                                           const core::Clock& clock,
                                           std::shared_ptr<spdlog::logger> logger) {
  return std::make_shared<Informer>(Token{}, client, std::move(options), std::move(cache), clock,
                                    std::move(logger));
}

Informer::Informer(Token, ListWatchClient& client, InformerOptions options,
                   std::shared_ptr<core::Cache> cache, const core::Clock& clock,
                   std::shared_ptr<spdlog::logger> logger)
    : client_(client),
      options_(std::move(options)),
      cache_(std::move(cache)),
      clock_(clock),
      logger_(std::move(logger)),
      own_random_(options_.random
                      ? nullptr
                      : std::make_unique<core::SeededRandomSource>(std::random_device{}())),
      reflector_(options_.reflector, *cache_, clock,
                 options_.random ? *options_.random : *own_random_),
      timer_(options_.timers ? options_.timers->CreateTimer()
                             : SteadyTimerFactory(client.strand()).CreateTimer()) {}

Informer::~Informer() = default;

void Informer::Start() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] {
    if (self->stopped_) return;
    self->logger_->info("{}: starting initial sync", self->options_.resource.QualifiedName());
    self->list_started_ = self->clock_.Now();
    self->Execute(self->reflector_.Start());
  });
}

void Informer::Stop() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] {
    if (self->stopped_) return;
    self->stopped_ = true;
    self->CancelInFlight();
    self->reflector_.Stop("informer stopped");
    self->Publish();
  });
}

core::ReflectorStatus Informer::status() const {
  core::ReflectorStatus status;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status = status_;
  }
  // Published at the informer's last step, which may be long ago (a watch that keeps failing
  // steps once per backoff, an open quiet one not at all): its freshness is as of now.
  status.RefreshFreshness(clock_.Now(), options_.reflector.max_staleness);
  return status;
}

void Informer::Publish() {
  core::ReflectorStatus status = reflector_.status();
  if (!too_large_.empty()) status.skipped_object = latest_too_large_;
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(status);
}

void Informer::CancelInFlight() {
  ++generation_;
  watch_.Cancel();
  watch_decoder_.reset();
  timer_->Cancel();
}

void Informer::Execute(core::ReflectorAction action) {
  const core::ReflectorState before = logged_state_;
  LogTransition(action);
  std::visit(
      [this](auto& step) {
        using Step = std::decay_t<decltype(step)>;
        if constexpr (std::is_same_v<Step, core::ListAction>) {
          CancelInFlight();
          SendList(step.params);
        } else if constexpr (std::is_same_v<Step, core::WatchAction>) {
          CancelInFlight();
          OpenWatch(step.params);
        } else if constexpr (std::is_same_v<Step, core::WaitAction>) {
          CancelInFlight();
          ArmTimer(step.duration);
        } else if constexpr (std::is_same_v<Step, core::StoppedAction>) {
          CancelInFlight();
        }
        // IdleAction: carry on with what is in progress.
      },
      action);
  Publish();
  if (logged_state_ == core::ReflectorState::kGone && before != core::ReflectorState::kGone &&
      options_.on_resource_gone) {
    options_.on_resource_gone();
  }
}

void Informer::LogTransition(const core::ReflectorAction& action) {
  const core::ReflectorStatus status = reflector_.status();
  const std::string name = options_.resource.QualifiedName();
  if (std::holds_alternative<core::WaitAction>(action) && !status.last_error.ok()) {
    logger_->warn("{}: {}; retrying in {} ms ({} consecutive failures)", name,
                  std::string(status.last_error.message()),
                  std::get<core::WaitAction>(action).duration.count(), status.consecutive_failures);
  }
  if (status.state == logged_state_) return;
  if (status.state == core::ReflectorState::kWatching &&
      logged_state_ == core::ReflectorState::kListing) {
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - list_started_);
    logger_->info("{}: synced {} objects at resourceVersion {} in {} ms; watching", name,
                  cache_->Stats().object_count, status.resource_version, elapsed.count());
  } else if (status.state == core::ReflectorState::kListing &&
             logged_state_ != core::ReflectorState::kNotStarted) {
    list_started_ = clock_.Now();
    const char* reason = "resync";
    for (std::size_t i = 0; i < status.relists.size(); ++i) {
      if (status.relists[i] > logged_relists_[i]) {
        reason = core::RelistReasonName(static_cast<core::RelistReason>(i));
      }
    }
    logger_->info("{}: relisting, reason {}{}", name, reason,
                  status.last_error.ok()
                      ? ""
                      : fmt::format(" (last error: {})", std::string(status.last_error.message())));
  } else if (status.state == core::ReflectorState::kGone) {
    logger_->warn(
        "{}: the apiserver answers 404 (not found) for it; asking discovery, and looking "
        "again every {} s",
        name, options_.reflector.gone_retry_interval.count());
  }
  logged_state_ = status.state;
  logged_relists_ = status.relists;
}

void Informer::NoteListProgress(std::size_t objects) {
  // A new list started since the last call (list_started_ is set as each list begins).
  if (list_progress_logged_ < list_started_) {
    list_progress_logged_ = list_started_;
    listed_objects_ = 0;
  }
  listed_objects_ += objects;
  const core::Clock::TimePoint now = clock_.Now();
  if (now - list_progress_logged_ < kListProgressInterval) return;
  list_progress_logged_ = now;
  logger_->info("{}: {}: {} objects so far ({} s)", options_.resource.QualifiedName(),
                reflector_.synced() ? "relist" : "initial sync", listed_objects_,
                std::chrono::duration_cast<std::chrono::seconds>(now - list_started_).count());
}

void Informer::SendList(const core::ListParams& params) {
  const uint64_t generation = generation_;
  if (params.continue_token.empty()) too_large_in_list_.clear();  // a new list
  if (!list_decoder_) {
    // An item without kind/apiVersion gets the list's, or failing that the resource's.
    list_decoder_.emplace(options_.scan, options_.max_event_bytes,
                          core::ItemType{options_.resource.kind, options_.resource.GroupVersion()});
  }
  client_.Get(ListPath(options_, params), "",
              [self = shared_from_this(), generation](HttpResult result) {
                self->OnListResult(generation, std::move(result));
              });
}

void Informer::OnListResult(uint64_t generation, HttpResult result) {
  if (stopped_ || generation != generation_) return;
  if (!result.status.ok()) {
    list_decoder_.reset();
    core::ApiError error = ToApiError(result);
    upstream_metrics_.CountError(MetricsCode(error));
    Execute(reflector_.OnListFailed(std::move(error)));
    return;
  }
  auto page = list_decoder_->Decode(result.body);
  result.body = std::string();  // the page's bytes now live in the records
  if (!page.ok()) {
    list_decoder_.reset();
    const std::string why =
        fmt::format("malformed LIST response: {}", std::string(page.status().message()));
    logger_->warn("{}: {}", options_.resource.QualifiedName(), why);
    upstream_metrics_.CountError(0);
    Execute(reflector_.OnListFailed(core::ApiError::Transport(why)));
    return;
  }
  const bool last_page = page->metadata.continue_token.empty();
  upstream_metrics_.CountListObjects(page->items.size() + page->skipped.size());
  NoteListProgress(page->items.size() + page->skipped.size());
  // A skipped item is simply not in the list: the list's end deletes it from the cache as absent.
  for (const core::SkippedObject& skipped : page->skipped) {
    NoteTooLarge(skipped, "a LIST item");
    too_large_in_list_.insert(skipped.Describe());
  }
  core::ReflectorAction action = reflector_.OnListPage(std::move(*page));
  if (last_page) {
    // The decoder keeps a buffer as large as the largest page: let it go once the list is done.
    list_decoder_.reset();
    // A complete list has just said which objects are over the limit now.
    too_large_.swap(too_large_in_list_);
    too_large_in_list_.clear();
  }
  Execute(std::move(action));
}

void Informer::NoteTooLarge(const core::SkippedObject& object, const char* what) {
  upstream_metrics_.CountObjectTooLarge();
  const std::string key = object.Describe();
  latest_too_large_ = fmt::format(
      "skipping {}: {} of {} bytes, larger than the {}-byte limit on one object (maxObjectBytes)",
      key, what, object.bytes, object.limit);
  if (too_large_.insert(key).second) {
    logger_->warn("{}: {}; it is not served until it fits", options_.resource.QualifiedName(),
                  latest_too_large_);
  }
}

void Informer::NoteFits(const core::ObjectRecord& object) {
  too_large_.erase(
      core::SkippedObject{object.namespace_name.str(), object.name.str(), "", "", 0, 0}.Describe());
}

std::optional<core::WatchEvent> Informer::TooLargeReplacement(const core::WatchEvent& event) const {
  const core::SkippedObject& skipped = *event.skipped;
  if (reflector_.state() != core::ReflectorState::kWatching) return std::nullopt;
  if (event.type == core::WatchEventType::kBookmark || event.type == core::WatchEventType::kError) {
    return std::nullopt;
  }
  core::WatchEvent replacement;
  const core::GetResult cached =
      skipped.name.empty() ? core::GetResult() : cache_->Get(skipped.namespace_name, skipped.name);
  if (cached.object) {
    // The apiserver has replaced (or deleted) what the cache holds, and the cache cannot hold the
    // new state: it must not go on serving the old one.
    replacement.type = core::WatchEventType::kDeleted;
    replacement.object = *cached.object;
    replacement.object.resource_version =
        skipped.resource_version.empty() ? cached.resource_version : skipped.resource_version;
    return replacement;
  }
  if (skipped.resource_version.empty()) return std::nullopt;
  replacement.type = core::WatchEventType::kBookmark;
  replacement.resource_version = skipped.resource_version;
  return replacement;
}

bool Informer::DeliverWatchEvents(std::vector<core::WatchEvent> events) {
  std::vector<core::WatchEvent> batch;
  const auto flush = [this, &batch] {
    if (batch.empty()) return true;
    core::ReflectorAction action = reflector_.OnWatchEvents(std::move(batch));
    batch.clear();
    if (std::holds_alternative<core::IdleAction>(action)) return true;
    Execute(std::move(action));
    return false;
  };
  // The status is published after every batch: events move the resource version, and the end
  // of a WatchList's initial events syncs the resource, without any new action to carry out.
  const auto finish = [this, &flush] {
    if (!flush()) return false;
    Publish();
    return true;
  };
  const bool any_skipped = std::any_of(events.begin(), events.end(),
                                       [](const core::WatchEvent& e) { return e.skipped; });
  if (!any_skipped && too_large_.empty()) {
    batch = std::move(events);
    return finish();
  }
  for (core::WatchEvent& event : events) {
    if (!event.skipped) {
      if (event.type == core::WatchEventType::kAdded ||
          event.type == core::WatchEventType::kModified ||
          event.type == core::WatchEventType::kDeleted) {
        NoteFits(event.object);
      }
      batch.push_back(std::move(event));
      continue;
    }
    NoteTooLarge(*event.skipped, "a watch event");
    // An object deleted upstream ends its episode: a new one by that name is logged afresh.
    if (event.type == core::WatchEventType::kDeleted) too_large_.erase(event.skipped->Describe());
    // The replacement depends on what the events before it did to the cache and the reflector.
    if (!flush()) return false;
    if (std::optional<core::WatchEvent> replacement = TooLargeReplacement(event)) {
      batch.push_back(std::move(*replacement));
    }
  }
  return finish();
}

void Informer::OpenWatch(const core::WatchParams& params) {
  const uint64_t generation = generation_;
  core::WatchDecoderOptions decoder_options;
  decoder_options.scan = options_.scan;
  decoder_options.max_event_bytes = options_.max_event_bytes;
  decoder_options.start_resource_version = params.resource_version;
  watch_decoder_.emplace(std::move(decoder_options));
  watch_events_received_ = false;
  watch_opened_ = false;
  watch_ = client_.Watch(
      WatchPath(options_, params),
      [self = shared_from_this(), generation](std::string_view bytes) {
        self->OnWatchBytes(generation, bytes);
      },
      [self = shared_from_this(), generation](HttpResult result) {
        self->OnWatchEnd(generation, std::move(result));
      });
}

void Informer::OnWatchBytes(uint64_t generation, std::string_view bytes) {
  if (stopped_ || generation != generation_ || !watch_decoder_) return;
  if (!watch_opened_) {
    // The first piece of a 200 stream (an empty one when its headers arrive): the watch is open.
    watch_opened_ = true;
    core::ReflectorAction action = reflector_.OnWatchStarted();
    const bool idle = std::holds_alternative<core::IdleAction>(action);
    Execute(std::move(action));
    if (!idle) return;
  }
  if (bytes.empty()) return;
  std::vector<core::WatchEvent> events;
  const absl::Status decoded = watch_decoder_->Feed(bytes, events);
  if (!events.empty()) {
    upstream_metrics_.CountEvents(events);
    // A WatchList's initial events are its list.
    if (reflector_.state() == core::ReflectorState::kListing) NoteListProgress(events.size());
    watch_events_received_ = true;
    if (!DeliverWatchEvents(std::move(events))) return;
  }
  if (!decoded.ok()) {
    // Garbage: nothing after it can be trusted. Close the stream and let the reflector restart
    // the watch from the last good resource version.
    logger_->warn("{}: {}", options_.resource.QualifiedName(), std::string(decoded.message()));
    upstream_metrics_.CountError(0);
    const bool received = watch_events_received_;
    CancelInFlight();
    Execute(reflector_.OnWatchEnded(core::ApiError::Transport(std::string(decoded.message())),
                                    received));
  }
}

void Informer::OnWatchEnd(uint64_t generation, HttpResult result) {
  if (stopped_ || generation != generation_) return;
  if (result.http_status == 200 && watch_decoder_) {
    // A clean end can leave a last event without its newline.
    std::vector<core::WatchEvent> events;
    const absl::Status finished =
        result.status.ok() ? watch_decoder_->Finish(events) : absl::OkStatus();
    if (!events.empty()) {
      upstream_metrics_.CountEvents(events);
      watch_events_received_ = true;
      if (!DeliverWatchEvents(std::move(events))) return;
    }
    if (!finished.ok()) {
      result.status = finished;
      result.http_status = 0;
    }
  }
  const bool received = watch_events_received_;
  watch_decoder_.reset();
  std::optional<core::ApiError> error;
  if (!result.status.ok()) {
    error = ToApiError(result);
    upstream_metrics_.CountError(MetricsCode(*error));
  }
  Execute(reflector_.OnWatchEnded(std::move(error), received));
}

void Informer::ArmTimer(std::chrono::milliseconds duration) {
  const uint64_t generation = generation_;
  timer_->Arm(duration, [self = shared_from_this(), generation] {
    if (self->stopped_ || generation != self->generation_) return;
    self->Execute(self->reflector_.OnTimer());
  });
}

}  // namespace informerd::daemon

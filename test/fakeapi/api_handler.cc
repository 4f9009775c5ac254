#include "test/fakeapi/api_handler.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/escaping.h"
#include "fmt/format.h"
#include "test/fakeapi/fake_discovery.h"
#include "test/fakeapi/json_writer.h"
#include "test/fakeapi/k8s_status.h"
#include "test/fakeapi/review_api.h"
#include "test/fakeapi/selectors.h"

namespace informerd::fakeapi {
namespace {

SimpleReply StatusReply(const ApiStatus& status) {
  SimpleReply reply;
  reply.status = status.code;
  reply.body = status.ToJson();
  if (status.retry_after_seconds > 0) {
    reply.headers.emplace_back("Retry-After", std::to_string(status.retry_after_seconds));
  }
  return reply;
}

SimpleReply JsonReply(std::string body) {
  SimpleReply reply;
  reply.body = std::move(body);
  return reply;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) segments.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

std::string HeaderValue(const HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < key.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(key[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return value;
  }
  return "";
}

bool AcceptsJson(const std::string& accept) {
  if (accept.empty()) return true;
  return accept.find("application/json") != std::string::npos ||
         accept.find("*/*") != std::string::npos ||
         accept.find("application/*") != std::string::npos;
}

// What the apiserver answers for a group it does not serve (an unknown group, or a deleted CRD's):
// its mux has no route for the path, and Go's http.NotFound writes plain text, not a Status.
SimpleReply PageNotFoundReply() {
  SimpleReply reply;
  reply.status = 404;
  reply.body = "404 page not found\n";
  reply.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return reply;
}

bool ServesGroup(const std::vector<ResourceType>& types, const std::string& group) {
  return std::any_of(types.begin(), types.end(),
                     [&](const ResourceType& type) { return type.group == group; });
}

int StatusOf(const Reply& reply) {
  if (auto* simple = std::get_if<SimpleReply>(&reply)) return simple->status;
  if (std::holds_alternative<DropReply>(reply)) return 0;
  return 200;
}

// How the apiserver words the refusal of a field `type` does not support: core kinds with field
// labels of their own (k8s.io/kubernetes/pkg/apis/core/v1/conversion.go) and custom resources
// say "field label not supported"; other built-in kinds have only the metadata fields and say so.
FieldLabelErrors FieldLabelErrorsOf(const ResourceType& type) {
  static const char* const kOwnFieldLabels[] = {
      "Pod", "Node", "ReplicationController", "Event", "Namespace", "Secret"};
  if (type.group.empty()) {
    for (const char* kind : kOwnFieldLabels) {
      if (type.kind == kind) return FieldLabelErrors::kFieldLabelNotSupported;
    }
    return FieldLabelErrors::kNotAKnownFieldSelector;
  }
  // Built-in groups: apps, batch, policy, ... and *.k8s.io. A CRD's group has a dot in it.
  const std::string suffix = ".k8s.io";
  const bool built_in =
      type.group.find('.') == std::string::npos ||
      (type.group.size() > suffix.size() &&
       type.group.compare(type.group.size() - suffix.size(), suffix.size(), suffix) == 0);
  return built_in ? FieldLabelErrors::kNotAKnownFieldSelector
                  : FieldLabelErrors::kFieldLabelNotSupported;
}

// Faults that replace the whole response, whatever the verb.
std::optional<Reply> WholeResponseFault(const Fault& fault, Verb verb) {
  switch (fault.kind) {
    case FaultKind::kHttpError: {
      ApiStatus status = GenericStatus(
          fault.status_code, fault.reason,
          fault.message.empty() ? fmt::format("scripted fault: HTTP {}", fault.status_code)
                                : fault.message);
      status.retry_after_seconds = fault.retry_after_seconds;
      return Reply(StatusReply(status));
    }
    case FaultKind::kDropConnection:
      return Reply(DropReply{});
    case FaultKind::kStall:
      if (verb == Verb::kWatch) return std::nullopt;  // The stream handles "after N events".
      return Reply(StallReply{false});
    default:
      return std::nullopt;
  }
}

ObjectPtr HugeObject(const ResourceType& type, const std::string& ns, std::size_t bytes,
                     std::uint64_t revision) {
  ObjectIdentity identity{type.namespaced ? (ns.empty() ? "default" : ns) : "", "huge-object",
                          "0f0f0f0f-0000-4000-8000-000000000064", NowRfc3339()};
  BuiltObject built = BuildHugeObject(type, identity, bytes);
  auto object = std::make_shared<StoredObject>();
  object->namespace_name = identity.namespace_name;
  object->name = identity.name;
  object->uid = identity.uid;
  object->labels = std::make_shared<const Labels>();
  object->resource_version = revision;
  object->body = std::move(built.body);
  return object;
}

void AppendObject(BufferChain& out, const ObjectPtr& object) {
  AppendObjectJson(out, *object, object->body);
}

// A body that is not JSON, shaped like the start of a real one.
std::string MalformedBody(const std::string& real) {
  std::string body = real;
  if (body.size() >= 2) body.resize(body.size() - 2);  // Drop the closing "]}".
  body += ",{\"kind\":]}";
  return body;
}

}  // namespace

std::string EncodeContinueToken(std::uint64_t revision, const std::string& last_key) {
  JsonWriter w;
  w.StartObject();
  w.Key("v");
  w.String("meta.k8s.io/v1");
  w.Key("rv");
  w.Uint64(revision);
  w.Key("start");
  // The next page starts just after the last key: the key followed by a NUL byte.
  const std::string start = last_key + std::string(1, '\0');
  w.String(start.data(), static_cast<rapidjson::SizeType>(start.size()));
  w.EndObject();
  return absl::WebSafeBase64Escape(w.Take());
}

std::optional<ContinuePosition> DecodeContinueToken(const std::string& token) {
  std::string json;
  if (!absl::WebSafeBase64Unescape(token, &json)) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  if (!doc.HasMember("v") || !doc["v"].IsString() ||
      std::string(doc["v"].GetString()) != "meta.k8s.io/v1") {
    return std::nullopt;
  }
  if (!doc.HasMember("rv") || !doc["rv"].IsUint64() || !doc.HasMember("start") ||
      !doc["start"].IsString()) {
    return std::nullopt;
  }
  return ContinuePosition{doc["rv"].GetUint64(),
                          std::string(doc["start"].GetString(), doc["start"].GetStringLength())};
}

ApiHandler::ApiHandler(ResourceCatalog& catalog, FakeStore& store, FaultScript& faults,
                       RequestLog& log, ServerSettings& settings, ReviewTable& reviews)
    : catalog_(catalog),
      store_(store),
      faults_(faults),
      log_(log),
      settings_(settings),
      reviews_(reviews) {}

Reply ApiHandler::Handle(const HttpRequest& request) {
  RequestRecord record;
  record.method = request.method;
  record.target = request.target;
  record.headers = request.headers;
  record.body = request.body;
  auto target = ParseTarget(request.target);
  Reply reply = [&]() -> Reply {
    if (!target.ok()) return StatusReply(BadRequestStatus(std::string(target.status().message())));
    record.path = target->path;
    record.query = target->query;
    return Route(request, *target);
  }();
  record.status = StatusOf(reply);
  log_.Record(std::move(record));
  return reply;
}

Reply ApiHandler::Route(const HttpRequest& request, const RequestTarget& target) {
  if (auto token = settings_.required_token()) {
    if (HeaderValue(request, "Authorization") != "Bearer " + *token) {
      return StatusReply(UnauthorizedStatus());
    }
  }
  if (!AcceptsJson(HeaderValue(request, "Accept"))) return StatusReply(NotAcceptableStatus());
  if (settings_.review_apis() &&
      (target.path == kTokenReviewPath || target.path == kSubjectAccessReviewPath)) {
    // Reviews can only be created.
    if (request.method != "POST") return StatusReply(MethodNotAllowedStatus(request.method));
    return ServeReview(request, target.path);
  }
  const std::vector<std::string> segments = SplitPath(target.path);
  // A group nobody serves has no route whatever the method (the review groups when the review
  // APIs are off among them).
  if (segments.size() >= 2 && segments[0] == "apis" &&
      !ServesGroup(DiscoverableTypes(), segments[1])) {
    return PageNotFoundReply();
  }
  if (request.method != "GET") return StatusReply(MethodNotAllowedStatus(request.method));

  if (segments.empty()) return StatusReply(PathNotFoundStatus());
  if (segments.size() == 1 && segments[0] == "version") {
    return JsonReply(VersionJson(settings_.git_version()));
  }
  const bool core = segments[0] == "api";
  const bool named = segments[0] == "apis";
  if (!core && !named) return StatusReply(PathNotFoundStatus());
  // Discovery: /api, /api/v1, /apis, /apis/G, /apis/G/V.
  if ((core && segments.size() <= 2) || (named && segments.size() <= 3)) {
    return ServeDiscovery(segments);
  }
  ResourcePath path;
  std::string group;
  std::string version;
  std::size_t i;
  if (core) {
    version = segments[1];
    i = 2;
  } else {
    group = segments[1];
    version = segments[2];
    i = 3;
  }
  if (segments[i] == "watch") {
    path.legacy_watch = true;
    ++i;
  }
  std::vector<std::string> rest(segments.begin() + static_cast<std::ptrdiff_t>(i), segments.end());
  std::string plural;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    path.namespace_name = rest[1];
    plural = rest[2];
    if (rest.size() == 4) path.name = rest[3];
    if (rest.size() > 4) return StatusReply(PathNotFoundStatus());  // Subresources.
  } else if (!rest.empty()) {
    plural = rest[0];
    if (rest.size() == 2) path.name = rest[1];
    if (rest.size() > 2) return StatusReply(PathNotFoundStatus());
  } else {
    return StatusReply(PathNotFoundStatus());
  }
  auto type = catalog_.Find(group, version, plural);
  if (!type) return StatusReply(PathNotFoundStatus());
  if (!type->namespaced && !path.namespace_name.empty()) return StatusReply(PathNotFoundStatus());
  path.type = std::move(*type);
  return ServeResource(path, target);
}

std::vector<ResourceType> ApiHandler::DiscoverableTypes() const {
  std::vector<ResourceType> types = catalog_.All();
  if (settings_.review_apis()) {
    for (ResourceType& type : ReviewResourceTypes()) types.push_back(std::move(type));
  }
  return types;
}

Reply ApiHandler::ServeReview(const HttpRequest& request, const std::string& path) {
  const bool token_review = path == kTokenReviewPath;
  std::chrono::milliseconds delay{0};
  if (std::optional<Fault> fault =
          faults_.Take(token_review ? kTokenReviewsKey : kSubjectAccessReviewsKey, Verb::kCreate)) {
    if (auto reply = WholeResponseFault(*fault, Verb::kCreate)) return std::move(*reply);
    if (fault->kind == FaultKind::kMalformedJson) return MalformedReviewReply(path);
    if (fault->kind == FaultKind::kDelay) delay = fault->delay;
  }
  const std::string content_type = HeaderValue(request, "Content-Type");
  SimpleReply reply = token_review ? ServeTokenReview(reviews_, content_type, request.body)
                                   : ServeSubjectAccessReview(reviews_, content_type, request.body);
  reply.delay = delay;
  return reply;
}

Reply ApiHandler::ServeDiscovery(const std::vector<std::string>& segments) {
  if (auto fault = faults_.Take("*", Verb::kDiscovery)) {
    if (auto reply = WholeResponseFault(*fault, Verb::kDiscovery)) return std::move(*reply);
    if (fault->kind == FaultKind::kMalformedJson) return JsonReply("{\"kind\":\"APIResourceList\",");
  }
  const std::vector<ResourceType> types = DiscoverableTypes();
  if (segments[0] == "api") {
    if (segments.size() == 1) return JsonReply(ApiVersionsJson(settings_.server_address()));
    if (auto list = ResourceListJson(types, "", segments[1])) return JsonReply(std::move(*list));
    return StatusReply(PathNotFoundStatus());
  }
  if (segments.size() == 1) return JsonReply(GroupListJson(types));
  if (segments.size() == 2) {
    if (auto group = GroupJson(types, segments[1])) return JsonReply(std::move(*group));
    return StatusReply(PathNotFoundStatus());
  }
  if (auto list = ResourceListJson(types, segments[1], segments[2])) {
    return JsonReply(std::move(*list));
  }
  return StatusReply(PathNotFoundStatus());
}

Reply ApiHandler::ServeResource(const ResourcePath& path, const RequestTarget& target) {
  auto options = ParseListOptions(target.query);
  if (!options.ok()) return StatusReply(BadRequestStatus(std::string(options.status().message())));
  if (path.legacy_watch) options->watch = true;
  Verb verb;
  if (options->watch) {
    verb = Verb::kWatch;
  } else if (!path.name.empty()) {
    verb = Verb::kGet;
  } else if (!options->continue_token.empty()) {
    verb = Verb::kListContinue;
  } else {
    verb = Verb::kList;
  }
  std::optional<Fault> fault = faults_.Take(path.type.Key(), verb);
  // A delay is a review fault; anywhere else it is used up and means nothing.
  if (fault && fault->kind == FaultKind::kDelay) fault.reset();
  if (fault) {
    if (auto reply = WholeResponseFault(*fault, verb)) return std::move(*reply);
  }
  switch (verb) {
    case Verb::kWatch:
      return ServeWatch(path, std::move(*options), std::move(fault));
    case Verb::kGet:
      return ServeGet(path, fault);
    default:
      return ServeList(path, std::move(*options), fault);
  }
}

Reply ApiHandler::ServeGet(const ResourcePath& path, const std::optional<Fault>& fault) {
  auto object = store_.Get(path.type.Key(), path.namespace_name, path.name);
  if (!object.ok()) return StatusReply(NotFoundStatus(path.type.plural, path.type.group, path.name));
  ObjectPtr served = *object;
  if (fault && fault->kind == FaultKind::kHugeObject) {
    served = HugeObject(path.type, path.namespace_name, fault->object_bytes,
                        (*object)->resource_version);
  }
  BodyReply reply;
  AppendObject(reply.body, served);
  if (fault && fault->kind == FaultKind::kMalformedJson) {
    return JsonReply(reply.body.ToString().substr(0, reply.body.size() / 2));
  }
  if (fault && (fault->kind == FaultKind::kCloseMidJson || fault->kind == FaultKind::kCloseMidChunk)) {
    reply.truncate_at = reply.body.size() / 2;
  }
  return reply;
}

Reply ApiHandler::ServeList(const ResourcePath& path, ListOptions options,
                            const std::optional<Fault>& fault) {
  std::vector<FieldError> errors = ValidateListOptions(options, settings_.watch_list_support());
  if (!errors.empty()) return StatusReply(InvalidListOptionsStatus(errors));
  auto labels = LabelSelector::Parse(options.label_selector);
  if (!labels.ok()) return StatusReply(BadRequestStatus(std::string(labels.status().message())));
  auto fields = FieldSelector::Parse(options.field_selector, FieldLabelErrorsOf(path.type));
  if (!fields.ok()) return StatusReply(BadRequestStatus(std::string(fields.status().message())));
  if (options.limit < 0) options.limit = 0;

  FakeStore::ListRequest request;
  request.namespace_name = path.namespace_name;
  request.limit = static_cast<std::size_t>(options.limit);
  WatchFilter filter{"", "", std::move(*labels), std::move(*fields)};
  if (!filter.labels.empty() || !filter.fields.empty()) {
    request.filter = [&filter](const StoredObject& object) { return filter.Matches(object); };
  }
  const std::string& rv = options.resource_version;
  if (!options.continue_token.empty()) {
    if (!rv.empty() && rv != "0") {
      return StatusReply(
          BadRequestStatus("specifying resource version is not allowed when using continue"));
    }
    auto position = DecodeContinueToken(options.continue_token);
    if (!position) {
      return StatusReply(BadRequestStatus(fmt::format(
          "continue key is not valid: illegal base64 data or malformed JSON in \"{}\"",
          options.continue_token)));
    }
    request.at_revision = position->revision;
    request.start_key = position->start_key;
  } else if (rv == "0" && settings_.rv0_ignores_limit()) {
    // Served from the watch cache, which ignored `limit` before Kubernetes 1.27.
    request.limit = 0;
  } else if (!rv.empty() && rv != "0") {
    auto revision = ParseResourceVersion(rv);
    if (!revision) {
      return StatusReply(BadRequestStatus(fmt::format("invalid resource version: {}", rv)));
    }
    // Exact, and (the legacy meaning) no resourceVersionMatch with a limit: a read at that
    // revision. The watch cache cannot paginate, so the apiserver sends a list with a limit to
    // etcd, where an RV without resourceVersionMatch has always meant exactly that revision
    // (k8s.io/apiserver/pkg/storage/etcd3/store.go, "legacy case").
    const bool exact = options.resource_version_match == "Exact" ||
                       (options.resource_version_match.empty() && request.limit > 0);
    if (exact) {
      request.at_revision = *revision;
    } else if (*revision > store_.Revision()) {
      // NotOlderThan, or unset without a limit: the apiserver waits for the cache to catch up,
      // then gives up.
      return StatusReply(TooLargeResourceVersionStatus(*revision, store_.Revision()));
    }
  }
  auto result = store_.List(path.type.Key(), request);
  if (!result.ok()) {
    if (absl::IsOutOfRange(result.status())) {
      if (!options.continue_token.empty()) return StatusReply(ExpiredContinueStatus());
      return StatusReply(ExpiredListStatus());
    }
    if (absl::IsUnavailable(result.status())) {
      ApiStatus status = TooLargeResourceVersionStatus(request.at_revision.value_or(0),
                                                       store_.Revision());
      return StatusReply(status);
    }
    return StatusReply(PathNotFoundStatus());
  }

  BodyReply reply;
  BufferChain& out = reply.body;
  std::string metadata = fmt::format("{{\"resourceVersion\":\"{}\"", result->revision);
  if (result->more) {
    metadata += fmt::format(",\"continue\":\"{}\"",
                            EncodeContinueToken(result->revision, result->last_key));
    if (result->remaining) {
      metadata += fmt::format(",\"remainingItemCount\":{}", *result->remaining);
    }
  }
  metadata += "}";
  out.AppendCopy(fmt::format("{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
                             path.type.kind, path.type.GroupVersion(), metadata));
  bool first = true;
  if (fault && fault->kind == FaultKind::kHugeObject) {
    AppendObject(out, HugeObject(path.type, path.namespace_name, fault->object_bytes,
                                 result->revision));
    first = false;
  }
  for (const ObjectPtr& object : result->items) {
    if (!first) out.AppendCopy(",");
    first = false;
    AppendObject(out, object);
  }
  out.AppendCopy("]}");
  if (fault && fault->kind == FaultKind::kMalformedJson) {
    return JsonReply(MalformedBody(out.ToString()));
  }
  if (fault && (fault->kind == FaultKind::kCloseMidJson || fault->kind == FaultKind::kCloseMidChunk)) {
    reply.truncate_at = out.size() / 2;
  }
  return reply;
}

Reply ApiHandler::ServeWatch(const ResourcePath& path, ListOptions options,
                             std::optional<Fault> fault) {
  std::vector<FieldError> errors = ValidateListOptions(options, settings_.watch_list_support());
  if (!errors.empty()) return StatusReply(InvalidListOptionsStatus(errors));
  auto labels = LabelSelector::Parse(options.label_selector);
  if (!labels.ok()) return StatusReply(BadRequestStatus(std::string(labels.status().message())));
  auto fields = FieldSelector::Parse(options.field_selector, FieldLabelErrorsOf(path.type));
  if (!fields.ok()) return StatusReply(BadRequestStatus(std::string(fields.status().message())));

  WatchReply reply;
  reply.resource = path.type.Key();
  reply.fault = std::move(fault);
  reply.chunk_bytes = settings_.watch_chunk_bytes();
  if (options.timeout_seconds && *options.timeout_seconds > 0) {
    reply.timeout = std::chrono::seconds(*options.timeout_seconds);
  }
  if (options.allow_watch_bookmarks) reply.bookmark_interval = settings_.bookmark_interval();

  // Where the stream starts (https://kubernetes.io/docs/reference/using-api/api-concepts/
  // "Semantics for watch"): unset or "0" -> the current state as ADDED events, then changes;
  // a revision -> the changes after it. WatchList (sendInitialEvents=true) -> the current state
  // as ADDED events, then a bookmark marking its end; sendInitialEvents=false -> changes only.
  const std::string& rv = options.resource_version;
  std::optional<std::uint64_t> after;
  bool end_bookmark = false;
  if (options.send_initial_events == true) {
    end_bookmark = true;
  } else if (rv.empty() || rv == "0") {
    if (options.send_initial_events == false) after = store_.Revision();
  } else {
    after = ParseResourceVersion(rv);
    if (!after) return StatusReply(BadRequestStatus(fmt::format("invalid resource version: {}", rv)));
  }
  auto start = store_.Subscribe(path.type.Key(), after);
  if (!start.ok()) {
    if (absl::IsOutOfRange(start.status())) {
      // The watch cache answers an expired RV on the stream itself: 200, then an ERROR event.
      reply.error_event = EncodeErrorEventLine(
          GenericStatus(410, "Expired", std::string(start.status().message())));
      return reply;
    }
    return StatusReply(PathNotFoundStatus());
  }
  WatchFilter filter{path.namespace_name, path.name, std::move(*labels), std::move(*fields)};
  reply.feed = std::make_unique<WatchFeed>(store_, path.type, std::move(*start), std::move(filter),
                                           end_bookmark);
  return reply;
}

}  // namespace informerd::fakeapi

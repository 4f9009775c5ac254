// The resources, get, list and watch commands; see commands.h.
#include "cmd/informerctl/commands.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "cmd/informerctl/connection.h"
#include "cmd/informerctl/interrupt.h"
#include "cmd/informerctl/output.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::ctl {
namespace {

using Clock = std::chrono::system_clock;

constexpr std::chrono::seconds kDefaultTimeout(10);

// gRPC's canonical code names, as every gRPC implementation and grpcurl print them.
const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// The status main() prints. `hint` (may be empty) goes in parentheses after the server's message.
absl::Status RpcError(const grpc::Status& status, const std::string& hint) {
  std::string message =
      fmt::format("{}: {}", CodeName(status.error_code()), status.error_message());
  if (!hint.empty()) message += fmt::format(" ({})", hint);
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
}

// A failure that happened before informerd answered: the connection never became ready. A TLS
// handshake that failed (gRPC's message names the handshake, or the certificate whose name did
// not match) gets its own hint: the usual causes are the CA and the name.
std::string ConnectionHint(const grpc::Status& status, grpc::Channel& channel,
                           const ChannelSettings& settings) {
  const bool connection_failure = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                                  status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  if (!connection_failure || channel.GetState(false) == GRPC_CHANNEL_READY) return "";
  const std::string message = absl::AsciiStrToLower(status.error_message());
  if (settings.tls &&
      (absl::StrContains(message, "handshake") || absl::StrContains(message, "peer certificate"))) {
    return fmt::format(
        "the TLS handshake with informerd at {} failed: is its certificate signed by the CA in "
        "--cacert and valid for the address's host (or --tls-server-name), and does it serve TLS?",
        settings.address);
  }
  return fmt::format("cannot reach informerd at {}; set --address or INFORMERD_ADDRESS",
                     settings.address);
}

void Write(std::FILE* out, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

// A channel and a stub for one command.
struct Connection {
  explicit Connection(const ChannelSettings& settings)
      : settings(settings), channel(OpenChannel(settings)), stub(v1::Informer::NewStub(channel)) {}

  // The call's deadline and credentials.
  void Prepare(const Invocation& invocation, std::chrono::milliseconds fallback,
               grpc::ClientContext* context) const {
    const std::chrono::milliseconds timeout = invocation.timeout.value_or(fallback);
    if (timeout.count() > 0) context->set_deadline(Clock::now() + timeout);
    AddCallCredentials(settings, context);
  }

  std::string Hint(const grpc::Status& status) const {
    return ConnectionHint(status, *channel, settings);
  }

  const ChannelSettings& settings;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Informer::Stub> stub;
};

ObjectView ViewOf(const Invocation& invocation) {
  return ObjectView{invocation.output, invocation.resource, invocation.all_namespaces};
}

absl::Status Resources(const Invocation& invocation, const ChannelSettings& settings,
                       std::FILE* out, std::FILE* err) {
  Connection connection(settings);
  grpc::ClientContext context;
  connection.Prepare(invocation, kDefaultTimeout, &context);
  v1::ListResourcesRequest request;
  // -n: the resources the caller may list in that namespace (informerd shows a caller only what
  // it may list, cluster-wide by default).
  if (!invocation.all_namespaces) request.set_namespace_(invocation.namespace_name);
  v1::ListResourcesResponse response;
  const grpc::Status status = connection.stub->ListResources(&context, request, &response);
  if (!status.ok()) {
    return RpcError(status, connection.Hint(status));
  }
  if (response.resources_size() == 0 && invocation.output != OutputFormat::kJson) {
    Write(err, "No resources found.\n");
    return absl::OkStatus();
  }
  auto text = FormatResources(response, invocation.output);
  if (!text.ok()) return text.status();
  Write(out, *text);
  return absl::OkStatus();
}

// How many times list starts again from the first page when its list expires while paging (the
// resource changed more meanwhile than informerd's replay window holds, or informerd relisted).
constexpr int kListRestarts = 2;

absl::Status List(const Invocation& invocation, const ChannelSettings& settings, std::FILE* out,
                  std::FILE* err) {
  Connection connection(settings);
  // Every page's items, in order, with the list's resource version: one answer for FormatList.
  v1::ListResponse response;
  for (int restarts = 0;; ++restarts) {
    response.Clear();
    std::string token;
    grpc::Status status;
    do {
      // --timeout applies to each request, as kubectl's --request-timeout does.
      grpc::ClientContext context;
      connection.Prepare(invocation, kDefaultTimeout, &context);
      v1::ListRequest request;
      request.set_resource(invocation.resource);
      request.set_namespace_(invocation.namespace_name);
      request.set_label_selector(invocation.label_selector);
      request.set_field_selector(invocation.field_selector);
      request.set_limit(static_cast<int64_t>(invocation.chunk_size));
      if (token.empty()) {
        request.set_min_resource_version(invocation.min_resource_version);
      } else {
        request.set_continue_(token);
      }
      v1::ListResponse page;
      status = connection.stub->List(&context, request, &page);
      if (!status.ok()) break;
      for (std::string& item : *page.mutable_items()) response.add_items(std::move(item));
      response.set_resource_version(page.resource_version());
      token = page.continue_();
    } while (!token.empty());
    if (status.ok()) break;
    // Only a continued page can expire: the list is read again, from a newer state.
    if (status.error_code() != grpc::StatusCode::OUT_OF_RANGE || token.empty() ||
        restarts == kListRestarts) {
      return RpcError(status, connection.Hint(status));
    }
    Write(err, fmt::format("informerctl: the list expired while paging ({}); listing again from "
                           "the start\n",
                           status.error_message()));
  }
  if (response.items_size() == 0 && invocation.output != OutputFormat::kJson) {
    // kubectl's wording, on stderr so that scripts reading stdout see nothing.
    Write(err, invocation.all_namespaces ? "No resources found.\n"
                                         : fmt::format("No resources found in {} namespace.\n",
                                                       invocation.namespace_name));
    return absl::OkStatus();
  }
  auto text = FormatList(response, ViewOf(invocation), Clock::now());
  if (!text.ok()) return text.status();
  Write(out, *text);
  return absl::OkStatus();
}

absl::Status Get(const Invocation& invocation, const ChannelSettings& settings, std::FILE* out) {
  Connection connection(settings);
  grpc::ClientContext context;
  connection.Prepare(invocation, kDefaultTimeout, &context);
  v1::GetRequest request;
  request.set_resource(invocation.resource);
  request.set_namespace_(invocation.namespace_name);
  request.set_name(invocation.name);
  request.set_min_resource_version(invocation.min_resource_version);
  v1::GetResponse response;
  const grpc::Status status = connection.stub->Get(&context, request, &response);
  if (!status.ok()) {
    return RpcError(status, connection.Hint(status));
  }
  auto text = FormatGet(response, ViewOf(invocation), Clock::now());
  if (!text.ok()) return text.status();
  Write(out, *text);
  return absl::OkStatus();
}

// What a user can do after a watch ended with `status`, given the last resource version that is
// a valid resume point ("" when none is).
std::string ResumeHint(const grpc::Status& status, const std::string& resume_from) {
  switch (status.error_code()) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::UNAVAILABLE:
      if (resume_from.empty()) return "";
      return fmt::format("resume with --resource-version {}", resume_from);
    case grpc::StatusCode::OUT_OF_RANGE:
      return "watch again without --resource-version to start from the current state";
    default:
      return "";
  }
}

// Events per Subscribe message informerctl asks for (SubscribeRequest.max_events_per_message).
constexpr uint32_t kWatchEventsPerMessage = 256;

absl::Status Watch(const Invocation& invocation, const ChannelSettings& settings, std::FILE* out) {
  grpc::ClientContext context;
  // Before the channel exists, so that gRPC's threads inherit the blocked signals.
  InterruptWatcher interrupt([&context] { context.TryCancel(); });
  Connection connection(settings);
  // A watch has no deadline unless one is asked for.
  connection.Prepare(invocation, std::chrono::milliseconds(0), &context);
  v1::SubscribeRequest request;
  request.set_resource(invocation.resource);
  request.set_namespace_(invocation.namespace_name);
  request.set_label_selector(invocation.label_selector);
  request.set_field_selector(invocation.field_selector);
  request.set_resource_version(invocation.resource_version);
  request.set_allow_bookmarks(invocation.bookmarks);
  // Several events per message when several wait (a snapshot above all): a fraction of the
  // messages for the server and for us. A batch holds under 1 MiB of objects plus one, within
  // gRPC's default 4 MiB receive limit for any object etcd stores (1.5 MiB at most by default).
  request.set_max_events_per_message(kWatchEventsPerMessage);
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader =
      connection.stub->Subscribe(&context, request);

  WatchPrinter printer(ViewOf(invocation));
  // The events of an initial snapshot carry each object's own resource version, which is no
  // place to resume from; resume points start with SYNCED (or at once when resuming already).
  bool resumable = !invocation.resource_version.empty();
  std::string resume_from = invocation.resource_version;
  v1::Event message;
  absl::Status printed = absl::OkStatus();
  const auto print = [&](const v1::Event& event) {
    auto text = printer.Print(event, Clock::now());
    if (!text.ok()) {
      printed = text.status();
      return;
    }
    Write(out, *text);
    if (event.type() == v1::Event::SYNCED) resumable = true;
    if (resumable && !event.resource_version().empty()) resume_from = event.resource_version();
  };
  while (printed.ok() && reader->Read(&message)) {
    if (message.batch_size() == 0) {
      print(message);
      continue;
    }
    for (const v1::Event& event : message.batch()) {
      print(event);
      if (!printed.ok()) break;
    }
  }
  if (!printed.ok()) {
    context.TryCancel();
    reader->Finish();
    return printed;
  }
  const grpc::Status status = reader->Finish();
  if (interrupt.interrupted() || status.ok()) return absl::OkStatus();
  // An explicit --timeout that runs out on an established watch is its normal end.
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && invocation.timeout &&
      connection.channel->GetState(false) == GRPC_CHANNEL_READY) {
    return absl::OkStatus();
  }
  std::string hint = connection.Hint(status);
  if (hint.empty()) hint = ResumeHint(status, resume_from);
  return RpcError(status, hint);
}

}  // namespace

absl::Status RunCommand(const Invocation& invocation, std::FILE* out, std::FILE* err) {
  const absl::StatusOr<ChannelSettings> settings = ResolveChannelSettings(
      invocation.address, invocation.connection, daemon::Environment::FromProcess());
  if (!settings.ok()) return settings.status();
  switch (invocation.command) {
    case Command::kResources:
      return Resources(invocation, *settings, out, err);
    case Command::kGet:
      return Get(invocation, *settings, out);
    case Command::kList:
      return List(invocation, *settings, out, err);
    case Command::kWatch:
      return Watch(invocation, *settings, out);
  }
  return absl::InternalError("unknown command");
}

}  // namespace informerd::ctl

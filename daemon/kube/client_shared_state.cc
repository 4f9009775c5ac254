#include "daemon/kube/client_shared_state.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cctype>
#include <utility>

#include "core/http_status.h"
#include "daemon/kube/tls_context.h"
#include "daemon/version.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

namespace asio = boost::asio;

// How much of a body that is not a Status goes into an error message.
constexpr std::size_t kBodySnippetBytes = 200;

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kBodySnippetBytes)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  if (text.size() > kBodySnippetBytes) out += "...";
  return out;
}

}  // namespace

ApiServerClient::SharedState::SharedState(asio::io_context& io, RestConfig config,
                                          ApiClientOptions options)
    : strand_(asio::make_strand(io)),
      config_(std::move(config)),
      options_(std::move(options)),
      tls_(config_.server.scheme == "https"),
      verify_name_(TlsVerifyName(config_.tls, config_.server)),
      credential_worker_(std::make_shared<client_internal::CredentialWorker>()),
      idle_(options_.max_idle_connections, options_.idle_connection_timeout) {
  if (options_.user_agent.empty()) options_.user_agent = fmt::format("informerd/{}", kVersion);
}

std::string ApiServerClient::SharedState::Describe(const std::string& path_and_query,
                                                   std::string_view method) const {
  return fmt::format("{} {}{}", method, config_.server.ToString(), path_and_query);
}

void ApiServerClient::SharedState::FetchCredentials(
    std::function<void(absl::StatusOr<CredentialsPtr>)> done) {
  auto self = shared_from_this();
  const bool posted = credential_worker_->Post([self, done]() mutable {
    absl::StatusOr<CredentialsPtr> credentials = self->config_.credentials->Current();
    if (credentials.ok() && *credentials == nullptr) {
      credentials = absl::InternalError("the credential source returned no credentials");
    }
    asio::post(self->strand_, [done = std::move(done), credentials = std::move(credentials)]() {
      done(credentials);
    });
  });
  if (!posted) {
    asio::post(strand_, [done = std::move(done)] {
      done(absl::CancelledError("the apiserver client is shutting down"));
    });
  }
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> ApiServerClient::SharedState::TlsContextFor(
    const Credentials& credentials) {
  if (!tls_) return std::shared_ptr<asio::ssl::context>();
  if (tls_context_ && tls_context_cert_ == credentials.client_cert_pem &&
      tls_context_key_ == credentials.client_key_pem) {
    return tls_context_;
  }
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
      MakeTlsContext(config_.tls, credentials);
  if (!context.ok()) return context.status();
  tls_context_ = *context;
  tls_context_cert_ = credentials.client_cert_pem;
  tls_context_key_ = credentials.client_key_pem;
  return tls_context_;
}

std::unique_ptr<client_internal::Connection> ApiServerClient::SharedState::TakeIdle(
    const Credentials& credentials) {
  return idle_.Take(credentials.client_cert_pem);
}

void ApiServerClient::SharedState::PutIdle(std::unique_ptr<Connection> connection) {
  if (closed()) return connection->Close();
  idle_.Put(std::move(connection));
}

std::uint64_t ApiServerClient::SharedState::Register(std::weak_ptr<Abortable> operation) {
  const std::uint64_t id = next_operation_id_++;
  active_.emplace(id, std::move(operation));
  return id;
}

void ApiServerClient::SharedState::Unregister(std::uint64_t id) {
  if (id != 0) active_.erase(id);
}

void ApiServerClient::SharedState::Close() {
  closed_.store(true, std::memory_order_release);
  credential_worker_->Stop();
  asio::post(strand_, [self = shared_from_this()] {
    self->idle_.CloseAll();
    std::unordered_map<std::uint64_t, std::weak_ptr<Abortable>> active;
    active.swap(self->active_);
    for (auto& [id, weak] : active) {
      if (std::shared_ptr<Abortable> operation = weak.lock()) operation->Abort();
    }
  });
}

absl::Status ApiServerClient::SharedState::HttpError(
    const std::string& request, int http_status, std::string_view reason,
    const std::optional<core::KubeStatus>& kube_status, std::string_view body) const {
  std::string message = fmt::format("{}: HTTP {} {}", request, http_status, reason);
  if (kube_status && !kube_status->message.empty()) {
    message += fmt::format(": {}", kube_status->message);
  } else if (!kube_status && !body.empty()) {
    message += fmt::format(" (the body is not a Kubernetes Status: \"{}\")", Printable(body));
  }
  if (http_status == 401) {
    message += fmt::format(" (the apiserver did not accept the credentials of {})",
                           config_.identity.empty() ? "this client" : config_.identity);
  } else if (http_status == 403) {
    message += fmt::format(" (authenticated as {})",
                           config_.identity.empty() ? "this client" : config_.identity);
  }
  return absl::Status(core::StatusCodeForHttpError(http_status), message);
}

}  // namespace informerd::daemon

// ApiServerClient::SharedState: what the client and its pending operations share. The settings
// (RestConfig, ApiClientOptions, the strand), the credential thread, the TLS context for the
// current client certificate, the pool of idle connections, the registry of running operations
// that the client aborts when it is destroyed, and the wording of HTTP error answers. Also
// Abortable, the interface those operations implement. Internal to
// //daemon/kube:apiserver_client.
//
// Threads and ownership: shared by the ApiServerClient and every pending RequestExchange, watch
// stream and ConnectionOpener, so it lives while any of them does. Its settings are immutable;
// its mutable state is touched only on the strand, except the closed flag (atomic) and Close(),
// which the client's destructor calls from any thread. Credentials are fetched on the
// CredentialWorker's thread and handed back on the strand.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/object_record.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/apiserver_connection.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"
#include "daemon/kube/connection_pool.h"
#include "daemon/kube/credential_worker.h"
#include "daemon/kube/request_support.h"

namespace informerd::daemon {

namespace client_internal {

// An operation the client can abort when it is destroyed.
class Abortable {
 public:
  virtual ~Abortable() = default;
  virtual void Abort() = 0;  // On the strand.
};

}  // namespace client_internal

class ApiServerClient::SharedState
    : public std::enable_shared_from_this<ApiServerClient::SharedState> {
 public:
  using Strand = client_internal::Strand;
  using CredentialsPtr = client_internal::CredentialsPtr;
  using Connection = client_internal::Connection;
  using Abortable = client_internal::Abortable;

  SharedState(boost::asio::io_context& io, RestConfig config, ApiClientOptions options);

  Strand strand() const { return strand_; }
  const RestConfig& config() const { return config_; }
  const ApiClientOptions& options() const { return options_; }
  bool tls() const { return tls_; }
  const std::string& verify_name() const { return verify_name_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // "GET https://127.0.0.1:6443/api/v1/pods?limit=500" ("POST ..." with that method).
  std::string Describe(const std::string& path_and_query, std::string_view method = "GET") const;

  // Current() on the credential thread, the answer on the strand.
  void FetchCredentials(std::function<void(absl::StatusOr<CredentialsPtr>)> done);

  // The TLS context presenting `credentials`' client certificate; rebuilt when it changes.
  // On the strand.
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> TlsContextFor(
      const Credentials& credentials);

  // An idle connection that presented the same client certificate and is not too old. On the
  // strand.
  std::unique_ptr<Connection> TakeIdle(const Credentials& credentials);
  // Into the idle pool, or closed once the client is closed. On the strand.
  void PutIdle(std::unique_ptr<Connection> connection);

  // The running operations, aborted by Close(). Register returns the id for Unregister (0 is
  // never used, so that 0 can mean "not registered"). On the strand.
  std::uint64_t Register(std::weak_ptr<Abortable> operation);
  void Unregister(std::uint64_t id);

  // From the client's destructor, any thread.
  void Close();

  // The message of an answer that is not 2xx, with the Status message when there is one.
  absl::Status HttpError(const std::string& request, int http_status, std::string_view reason,
                         const std::optional<core::KubeStatus>& kube_status,
                         std::string_view body) const;

 private:
  Strand strand_;
  const RestConfig config_;
  ApiClientOptions options_;
  const bool tls_;
  const std::string verify_name_;
  const std::shared_ptr<client_internal::CredentialWorker> credential_worker_;
  std::atomic<bool> closed_{false};

  // On the strand.
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::string tls_context_cert_;
  std::string tls_context_key_;
  client_internal::ConnectionPool idle_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Abortable>> active_;
  std::uint64_t next_operation_id_ = 1;  // 0: not registered
};

}  // namespace informerd::daemon

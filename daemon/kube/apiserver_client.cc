// ApiServerClient (daemon/kube/apiserver_client.h): the public face of the client.
// Each call starts an operation (daemon/kube/request_exchange.h, daemon/kube/watch_stream.h) that
// shares the client's SharedState (daemon/kube/client_shared_state.h) and runs on its strand;
// these functions only create, post and cancel, on the caller's thread.
#include "daemon/kube/apiserver_client.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <utility>

#include "daemon/kube/client_shared_state.h"
#include "daemon/kube/request_exchange.h"
#include "daemon/kube/tls_context.h"
#include "daemon/kube/watch_stream.h"
#include "fmt/format.h"

namespace informerd::daemon {

namespace asio = boost::asio;

absl::StatusOr<std::unique_ptr<ApiServerClient>> ApiServerClient::Create(asio::io_context& io,
                                                                         RestConfig config,
                                                                         ApiClientOptions options) {
  if (config.credentials == nullptr) {
    return absl::InvalidArgumentError("the RestConfig has no credential source");
  }
  if (config.server.scheme == "https") {
    // Checks the CA (and the combination of settings) now rather than at the first request.
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        MakeTlsContext(config.tls, Credentials{});
    if (!context.ok()) {
      return absl::InvalidArgumentError(fmt::format("TLS settings for {}: {}",
                                                    config.server.ToString(),
                                                    std::string(context.status().message())));
    }
  }
  auto state = std::make_shared<SharedState>(io, std::move(config), std::move(options));
  return std::unique_ptr<ApiServerClient>(new ApiServerClient(std::move(state)));
}

ApiServerClient::ApiServerClient(std::shared_ptr<SharedState> state) : state_(std::move(state)) {}

ApiServerClient::~ApiServerClient() { state_->Close(); }

void ApiServerClient::Get(std::string path_and_query, std::string accept, GetCallback done) {
  client_internal::RequestSpec spec;
  spec.path_and_query = std::move(path_and_query);
  spec.accept = std::move(accept);
  auto exchange =
      std::make_shared<client_internal::RequestExchange>(state_, std::move(spec), std::move(done));
  asio::post(state_->strand(), [exchange] { exchange->Start(); });
}

void ApiServerClient::Post(std::string path, std::string json_body, PostCallback done) {
  client_internal::RequestSpec spec;
  spec.method = boost::beast::http::verb::post;
  spec.path_and_query = std::move(path);
  spec.json_body = std::move(json_body);
  // Reviews only (see the header): repeating one is harmless.
  spec.replayable = true;
  auto exchange =
      std::make_shared<client_internal::RequestExchange>(state_, std::move(spec), std::move(done));
  asio::post(state_->strand(), [exchange] { exchange->Start(); });
}

WatchHandle ApiServerClient::Watch(std::string path_and_query, BytesCallback on_bytes,
                                   EndCallback on_end) {
  auto stream = std::make_shared<ApiServerWatchStream>(state_, std::move(path_and_query),
                                                       std::move(on_bytes), std::move(on_end));
  asio::post(state_->strand(), [stream] { stream->Start(); });
  return WatchHandle(std::move(stream));
}

boost::asio::strand<boost::asio::io_context::executor_type> ApiServerClient::strand() const {
  return state_->strand();
}

const RestConfig& ApiServerClient::config() const { return state_->config(); }

}  // namespace informerd::daemon

#include "daemon/kube/apiserver_connection.h"

#include <utility>

namespace informerd::daemon::client_internal {

Connection::Connection(Strand strand, std::shared_ptr<asio::ssl::context> tls_context,
                       std::string client_cert_pem)
    : tls_context_(std::move(tls_context)), client_cert_pem_(std::move(client_cert_pem)) {
  if (tls_context_) {
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand, *tls_context_);
  } else {
    plain_ = std::make_unique<beast::tcp_stream>(strand);
  }
}

void Connection::Close() {
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
}

}  // namespace informerd::daemon::client_internal

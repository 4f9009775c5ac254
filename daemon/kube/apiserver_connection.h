// Connection: one connection of the apiserver client to the apiserver, TCP with TLS on top unless
// the server URL is http, with the read buffer that keeps bytes beyond the current response.
// Internal to //daemon/kube:apiserver_client.
//
// Threads and ownership: owned by the request using it (a RequestExchange or a watch stream), by
// a ConnectionOpener while it connects, or by the idle ConnectionPool between requests; used only
// on the client's strand, which its sockets and timers are bound to.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>

#include "daemon/kube/request_support.h"

namespace informerd::daemon::client_internal {

class Connection {
 public:
  // TLS when `tls_context` is set (it is kept alive for as long as the stream that uses it),
  // plain TCP otherwise. `client_cert_pem` is the client certificate the context presents.
  Connection(Strand strand, std::shared_ptr<asio::ssl::context> tls_context,
             std::string client_cert_pem);

  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  beast::ssl_stream<beast::tcp_stream>* tls() { return tls_.get(); }
  beast::flat_buffer& buffer() { return buffer_; }
  const std::string& client_cert_pem() const { return client_cert_pem_; }

  // Calls f(stream) with the stream HTTP goes over.
  template <class F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  // Shuts the socket down and closes it; pending operations complete with an error.
  void Close();

  // When the connection went back into the idle pool.
  SteadyTime idle_since;

 private:
  // Kept alive for as long as the stream that uses it.
  std::shared_ptr<asio::ssl::context> tls_context_;
  // The client certificate this connection presented: a rotated one needs new connections.
  std::string client_cert_pem_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::unique_ptr<beast::tcp_stream> plain_;
  // Bytes read beyond the current response stay with the connection.
  beast::flat_buffer buffer_;
};

}  // namespace informerd::daemon::client_internal

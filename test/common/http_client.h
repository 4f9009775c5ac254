// A blocking HTTP/1.1 client for tests of the metrics port (daemon/admin/http_server.*, the e2e tests):
// one request per call on a fresh connection, or several on one kept-alive HttpConnection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace informerd::test {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  // The server asked to close the connection after this response.
  bool close = false;
};

// One connection to "host:port"; each call sends a request and reads its response.
class HttpConnection {
 public:
  static absl::StatusOr<HttpConnection> Open(
      const std::string& address, std::chrono::seconds timeout = std::chrono::seconds(10));
  HttpConnection(HttpConnection&&) noexcept;
  HttpConnection& operator=(HttpConnection&&) noexcept;
  ~HttpConnection();

  absl::StatusOr<HttpReply> Request(const std::string& method, const std::string& target,
                                    bool keep_alive = true);
  // Sends raw bytes, then reads one response.
  absl::StatusOr<HttpReply> SendRaw(const std::string& bytes);
  // True once the server has closed the connection (a read sees the end of the stream).
  bool ClosedByServer();

  struct State;

 private:
  explicit HttpConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// GET `target` on a fresh connection.
absl::StatusOr<HttpReply> HttpGet(const std::string& address, const std::string& target);

}  // namespace informerd::test

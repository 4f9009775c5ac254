// The fake apiserver's connections: one HttpSession per accepted TCP connection (plain HTTP or
// TLS), in the manner of Boost.Beast's example/http/server/async. A session reads requests,
// asks the ApiHandler what to answer, and writes it: a small response, a LIST page gathered
// from shared object bytes, or a chunked watch stream (with bookmarks, timeoutSeconds and
// scripted faults such as a close in the middle of a chunk).
//
// Each session owns itself (enable_shared_from_this; the pending handlers hold it) and runs on
// its own strand of the server's io_context. A read is always pending, so a client that goes
// away is noticed at once and its watch stops counting as open. The SessionRegistry (owned by
// FakeApiServer) lets any thread ask every live session to close.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <vector>

#include "test/fakeapi/api_handler.h"
#include "test/fakeapi/request_log.h"

namespace informerd::fakeapi {

// What a session needs from the server; all of it outlives every session.
struct SessionContext {
  ApiHandler& handler;
  RequestLog& log;
};

class Session {
 public:
  virtual ~Session() = default;
  // Closes the connection (posted to the session's strand); callable from any thread.
  virtual void Shutdown() = 0;
};

class SessionRegistry {
 public:
  void Add(std::weak_ptr<Session> session);
  void ShutdownAll();
  std::size_t LiveCount() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<Session>> sessions_;
};

// Starts serving an accepted connection; `tls` null means plain HTTP. The socket's executor
// must be a strand.
void StartHttpSession(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls,
                      SessionContext context, SessionRegistry& registry);

// Accepts connections on a bound, listening acceptor and starts a session for each.
class HttpListener : public std::enable_shared_from_this<HttpListener> {
 public:
  HttpListener(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor acceptor,
               boost::asio::ssl::context* tls, SessionContext context,
               SessionRegistry& registry);
  void Run();
  // Stops accepting, then closes every session (posted to the listener's strand, so that no
  // connection accepted in between escapes); callable from any thread.
  void Stop();

 private:
  void DoAccept();
  void OnAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ssl::context* tls_;
  SessionContext context_;
  SessionRegistry& registry_;
};

}  // namespace informerd::fakeapi

#include "test/common/api_test_support.h"

#include <array>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <istream>
#include <stdexcept>

namespace informerd::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One proxied connection: bytes flow both ways until either side closes.
class ProxiedConnection : public std::enable_shared_from_this<ProxiedConnection> {
 public:
  ProxiedConnection(tcp::socket client, std::uint16_t upstream_port)
      : client_(std::move(client)), upstream_(client_.get_executor()), port_(upstream_port) {}

  void Start() {
    auto self = shared_from_this();
    upstream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                            [self](boost::system::error_code ec) {
                              if (ec) return self->Close();
                              self->Pump(self->client_, self->upstream_, self->to_upstream_);
                              self->Pump(self->upstream_, self->client_, self->to_client_);
                            });
  }

 private:
  void Pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buffer) {
    auto self = shared_from_this();
    from.async_read_some(asio::buffer(buffer), [self, &from, &to, &buffer](
                                                   boost::system::error_code ec, std::size_t n) {
      if (ec) return self->Close();
      asio::async_write(to, asio::buffer(buffer.data(), n),
                        [self, &from, &to, &buffer](boost::system::error_code ec, std::size_t) {
                          if (ec) return self->Close();
                          self->Pump(from, to, buffer);
                        });
    });
  }

  void Close() {
    boost::system::error_code ignored;
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    upstream_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
    upstream_.close(ignored);
  }

  tcp::socket client_;
  tcp::socket upstream_;
  const std::uint16_t port_;
  std::array<char, 16384> to_upstream_;
  std::array<char, 16384> to_client_;
};

class CannedConnection : public std::enable_shared_from_this<CannedConnection> {
 public:
  CannedConnection(tcp::socket socket, const CannedHttpServer::Responder& respond,
                   std::atomic<int>& requests)
      : socket_(std::move(socket)), respond_(respond), requests_(requests) {}

  void Start() {
    auto self = shared_from_this();
    asio::async_read_until(
        socket_, request_, "\r\n\r\n", [self](boost::system::error_code ec, std::size_t) {
          if (ec) return;
          ++self->requests_;
          // "GET /target HTTP/1.1"
          std::istream in(&self->request_);
          std::string method;
          std::string target;
          in >> method >> target;
          self->response_ = self->respond_(target);
          asio::async_write(self->socket_, asio::buffer(self->response_),
                            [self](boost::system::error_code, std::size_t) {
                              boost::system::error_code ignored;
                              self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
                              self->socket_.close(ignored);
                            });
        });
  }

 private:
  tcp::socket socket_;
  const CannedHttpServer::Responder& respond_;
  std::atomic<int>& requests_;
  asio::streambuf request_;
  std::string response_;
};

tcp::acceptor ListenOnLoopback(asio::io_context& io) {
  return tcp::acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
}

}  // namespace

IoThread::IoThread()
    : work_(asio::make_work_guard(io_)), thread_([this] {
        io_.run();
        std::lock_guard<std::mutex> lock(mu_);
        ran_out_ = true;
        cv_.notify_all();
      }) {}

IoThread::~IoThread() {
  work_.reset();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return ran_out_; });
  }
  io_.stop();
  thread_.join();
}

RotatingTokenSource::RotatingTokenSource(std::vector<std::string> tokens)
    : tokens_(std::move(tokens)) {
  daemon::Credentials credentials;
  credentials.bearer_token = tokens_.at(0);
  current_ = std::make_shared<const daemon::Credentials>(std::move(credentials));
}

absl::StatusOr<std::shared_ptr<const daemon::Credentials>> RotatingTokenSource::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void RotatingTokenSource::Invalidate(const std::shared_ptr<const daemon::Credentials>& rejected) {
  std::lock_guard<std::mutex> lock(mu_);
  rejected_.push_back(rejected ? rejected->bearer_token : "<null>");
  if (rejected != nullptr && rejected != current_) return;  // Already rotated.
  if (index_ + 1 < tokens_.size()) ++index_;
  daemon::Credentials credentials;
  credentials.bearer_token = tokens_[index_];
  current_ = std::make_shared<const daemon::Credentials>(std::move(credentials));
}

int RotatingTokenSource::invalidations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(rejected_.size());
}

std::vector<std::string> RotatingTokenSource::rejected_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

absl::StatusOr<std::shared_ptr<const daemon::Credentials>> BlockingCredentialSource::Current() {
  std::unique_lock<std::mutex> lock(mu_);
  blocked_thread_ = std::this_thread::get_id();
  cv_.notify_all();
  cv_.wait(lock, [this] { return released_; });
  daemon::Credentials credentials;
  credentials.bearer_token = token_;
  return std::make_shared<const daemon::Credentials>(std::move(credentials));
}

std::optional<std::thread::id> BlockingCredentialSource::WaitUntilBlocked(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return blocked_thread_.has_value(); });
  return blocked_thread_;
}

void BlockingCredentialSource::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  released_ = true;
  cv_.notify_all();
}

CountingTcpProxy::CountingTcpProxy(std::uint16_t upstream_port)
    : acceptor_(ListenOnLoopback(io_)), upstream_port_(upstream_port) {
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { io_.run(); });
}

CountingTcpProxy::~CountingTcpProxy() {
  io_.stop();
  thread_.join();
}

void CountingTcpProxy::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;
    ++connections_;
    std::make_shared<ProxiedConnection>(std::move(socket), upstream_port_)->Start();
    Accept();
  });
}

CannedHttpServer::CannedHttpServer(std::string response)
    : CannedHttpServer(
          Responder([response = std::move(response)](const std::string&) { return response; })) {}

CannedHttpServer::CannedHttpServer(Responder respond)
    : acceptor_(ListenOnLoopback(io_)), respond_(std::move(respond)) {
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { io_.run(); });
}

CannedHttpServer::~CannedHttpServer() {
  io_.stop();
  thread_.join();
}

void CannedHttpServer::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<CannedConnection>(std::move(socket), respond_, requests_)->Start();
    Accept();
  });
}

std::uint16_t UnusedPort() {
  asio::io_context io;
  return ListenOnLoopback(io).local_endpoint().port();
}

daemon::RestConfig MakeRestConfig(const std::string& url, const std::string& ca_pem,
                                  std::shared_ptr<daemon::CredentialSource> credentials,
                                  std::string identity) {
  absl::StatusOr<daemon::ServerUrl> server = daemon::ParseServerUrl(url);
  if (!server.ok()) throw std::runtime_error(std::string(server.status().message()));
  daemon::RestConfig config;
  config.server = *server;
  config.tls.ca_pem = ca_pem;
  config.credentials =
      credentials != nullptr
          ? std::move(credentials)
          : std::make_shared<daemon::StaticCredentialSource>(daemon::Credentials{});
  config.identity = std::move(identity);
  return config;
}

}  // namespace informerd::test

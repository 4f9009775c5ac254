#include "test/common/fault_proxy.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <optional>
#include <stdexcept>
#include <vector>

namespace informerd::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// One forwarded connection: two relays (client → upstream, upstream → client) on the I/O
// thread. Any end, error or cut closes both sockets; the proxy forgets it then.
class FaultProxy::Connection : public std::enable_shared_from_this<FaultProxy::Connection> {
 public:
  enum class CloseReason { kEnded, kCutMidStream, kCutIdle, kCutAll };

  Connection(FaultProxy& proxy, std::uint64_t id, tcp::socket client)
      : proxy_(proxy),
        id_(id),
        client_(std::move(client)),
        upstream_(client_.get_executor()),
        idle_timer_(client_.get_executor()),
        pace_timer_(client_.get_executor()) {}

  void Start() {
    auto self = shared_from_this();
    upstream_.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), proxy_.upstream_port_),
                            [self](const error_code& ec) {
                              if (ec) return self->Close(CloseReason::kEnded);
                              self->ReadFromClient();
                              self->ReadFromUpstream();
                            });
  }

  void Arm(std::size_t budget, std::chrono::milliseconds idle_limit) {
    if (closed_) return;
    budget_ = budget;
    idle_timer_.expires_after(idle_limit);
    auto self = shared_from_this();
    idle_timer_.async_wait([self](const error_code& ec) {
      if (!ec && self->budget_.has_value()) self->Close(CloseReason::kCutIdle);
    });
  }

  void Close(CloseReason reason) {
    if (closed_) return;
    closed_ = true;
    // Counted before the sockets close: a client that sees its connection end then finds it
    // counted.
    {
      std::lock_guard<std::mutex> lock(proxy_.mu_);
      switch (reason) {
        case CloseReason::kEnded:
          break;
        case CloseReason::kCutMidStream:
          ++proxy_.counts_.cut_mid_stream;
          break;
        case CloseReason::kCutIdle:
          ++proxy_.counts_.cut_idle;
          break;
        case CloseReason::kCutAll:
          ++proxy_.counts_.cut_all;
          break;
      }
    }
    error_code ignored;
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
    upstream_.shutdown(tcp::socket::shutdown_both, ignored);
    upstream_.close(ignored);
    idle_timer_.cancel();
    pace_timer_.cancel();
    proxy_.Forget(id_);
  }

  bool closed() const { return closed_; }

 private:
  void ReadFromClient() {
    auto self = shared_from_this();
    client_.async_read_some(
        asio::buffer(to_upstream_), [self](const error_code& ec, std::size_t n) {
          if (ec || self->closed_) return self->Close(CloseReason::kEnded);
          self->CountForwarded(n, /*to_client=*/false);
          asio::async_write(self->upstream_, asio::buffer(self->to_upstream_.data(), n),
                            [self](const error_code& ec, std::size_t) {
                              if (ec || self->closed_) {
                                return self->Close(CloseReason::kEnded);
                              }
                              self->ReadFromClient();
                            });
        });
  }

  void ReadFromUpstream() {
    auto self = shared_from_this();
    upstream_.async_read_some(
        asio::buffer(to_client_), [self](const error_code& ec, std::size_t n) {
          if (ec || self->closed_) return self->Close(CloseReason::kEnded);
          bool cut = false;
          if (self->budget_.has_value()) {
            if (*self->budget_ <= n) {
              n = *self->budget_;
              cut = true;
            } else {
              *self->budget_ -= n;
            }
          }
          const std::size_t rate = self->proxy_.downstream_rate_;
          if (rate == 0) return self->ForwardToClient(n, cut);
          self->pace_timer_.expires_after(std::chrono::microseconds(n * 1'000'000 / rate));
          self->pace_timer_.async_wait([self, n, cut](const error_code&) {
            if (self->closed_) return;
            self->ForwardToClient(n, cut);
          });
        });
  }

  void ForwardToClient(std::size_t n, bool cut) {
    CountForwarded(n, /*to_client=*/true);
    auto self = shared_from_this();
    asio::async_write(client_, asio::buffer(to_client_.data(), n),
                      [self, cut](const error_code& ec, std::size_t) {
                        if (cut) return self->Close(CloseReason::kCutMidStream);
                        if (ec || self->closed_) return self->Close(CloseReason::kEnded);
                        self->ReadFromUpstream();
                      });
  }

  // Counted as the bytes are handed to the other side's socket (before the client can have read
  // them), so that a client never reads more than the counts say.
  void CountForwarded(std::size_t n, bool to_client) {
    std::lock_guard<std::mutex> lock(proxy_.mu_);
    (to_client ? proxy_.counts_.bytes_to_client : proxy_.counts_.bytes_to_upstream) += n;
  }

  FaultProxy& proxy_;
  const std::uint64_t id_;
  tcp::socket client_;
  tcp::socket upstream_;
  asio::steady_timer idle_timer_;
  asio::steady_timer pace_timer_;
  bool closed_ = false;
  // Armed: bytes from upstream still to forward before the cut.
  std::optional<std::size_t> budget_;
  std::array<char, 16 << 10> to_upstream_{};
  std::array<char, 16 << 10> to_client_{};
};

namespace {

tcp::acceptor ListenOnLoopback(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return acceptor;
}

}  // namespace

FaultProxy::FaultProxy(std::uint16_t upstream_port, std::uint64_t seed)
    : acceptor_(ListenOnLoopback(io_)), upstream_port_(upstream_port), random_(seed) {
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { io_.run(); });
}

FaultProxy::~FaultProxy() {
  RunOnIoThread([this] {
    error_code ignored;
    acceptor_.close(ignored);
    std::vector<std::shared_ptr<Connection>> open;
    for (auto& [id, connection] : connections_) open.push_back(connection);
    for (auto& connection : open) connection->Close(Connection::CloseReason::kEnded);
    return 0;
  });
  io_.stop();
  thread_.join();
}

template <class Task>
auto FaultProxy::RunOnIoThread(Task task) -> decltype(task()) {
  std::packaged_task<decltype(task())()> packaged(std::move(task));
  auto result = packaged.get_future();
  asio::post(io_, [&packaged] { packaged(); });
  return result.get();
}

void FaultProxy::Accept() {
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (refusing_) {
        {
          // Counted before the close, so that a client which sees its connection closed
          // also sees it counted.
          std::lock_guard<std::mutex> lock(mu_);
          ++counts_.refused;
        }
        error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
      } else {
        const std::uint64_t id = next_id_++;
        auto connection = std::make_shared<Connection>(*this, id, std::move(socket));
        connections_[id] = connection;
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++counts_.accepted;
          counts_.open = static_cast<int>(connections_.size());
        }
        connection->Start();
      }
    }
    Accept();
  });
}

void FaultProxy::Forget(std::uint64_t id) {
  connections_.erase(id);
  std::lock_guard<std::mutex> lock(mu_);
  counts_.open = static_cast<int>(connections_.size());
}

int FaultProxy::CutMidStream(std::size_t max_bytes, std::chrono::milliseconds idle_limit) {
  if (max_bytes == 0) throw std::invalid_argument("FaultProxy::CutMidStream: max_bytes is 0");
  return RunOnIoThread([&] {
    std::uniform_int_distribution<std::size_t> bytes(1, max_bytes);
    int armed = 0;
    for (auto& [id, connection] : connections_) {
      connection->Arm(bytes(random_), idle_limit);
      ++armed;
    }
    return armed;
  });
}

int FaultProxy::CutAll() {
  return RunOnIoThread([this] {
    std::vector<std::shared_ptr<Connection>> open;
    for (auto& [id, connection] : connections_) open.push_back(connection);
    for (auto& connection : open) connection->Close(Connection::CloseReason::kCutAll);
    return static_cast<int>(open.size());
  });
}

void FaultProxy::SetRefusing(bool refusing) {
  RunOnIoThread([&] {
    refusing_ = refusing;
    return 0;
  });
}

void FaultProxy::SetDownstreamRate(std::size_t bytes_per_second) {
  RunOnIoThread([&] {
    downstream_rate_ = bytes_per_second;
    return 0;
  });
}

FaultProxy::Counts FaultProxy::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

}  // namespace informerd::test

// FaultProxy against an in-process upstream: bytes pass unchanged both ways; an armed connection
// forwards exactly its random budget of the upstream's bytes (a prefix, cut inside a read) and
// then ends; an armed idle one ends at its limit; a rate paces what comes from upstream; refusing
// closes new connections before any byte and stops when told; CutAll ends every connection.
#include "test/common/fault_proxy.h"

#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/common/wait_until.h"

namespace informerd::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

// The byte at offset i of what the streaming upstream sends.
char PatternByte(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

// An upstream on 127.0.0.1 with one thread per connection. kEcho echoes what it reads; kStream
// sends the pattern in 1 KiB writes every 5 ms until the connection breaks; kSilent reads and
// sends nothing.
class Upstream {
 public:
  enum class Mode { kEcho, kStream, kSilent };
  explicit Upstream(Mode mode)
      : mode_(mode), acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~Upstream() {
    stop_ = true;
    error_code ignored;
    // Wakes the accept loop.
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
    for (auto& t : sessions_) t.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void AcceptLoop() {
    while (!stop_) {
      auto socket = std::make_shared<tcp::socket>(io_);
      error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stop_) return;
      sessions_.emplace_back([this, socket] { Serve(*socket); });
    }
  }
  void Serve(tcp::socket& socket) {
    error_code ec;
    if (mode_ == Mode::kEcho) {
      std::array<char, 4096> buffer;
      while (true) {
        const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
        if (ec) return;
        asio::write(socket, asio::buffer(buffer.data(), n), ec);
        if (ec) return;
      }
    } else if (mode_ == Mode::kStream) {
      std::size_t offset = 0;
      while (!stop_) {
        std::string chunk(1024, '\0');
        for (char& c : chunk) c = PatternByte(offset++);
        asio::write(socket, asio::buffer(chunk), ec);
        if (ec) return;
        std::this_thread::sleep_for(milliseconds(5));
      }
    } else {
      std::array<char, 4096> buffer;
      do {
        socket.read_some(asio::buffer(buffer), ec);
      } while (!ec);
    }
  }

  const Mode mode_;
  std::atomic<bool> stop_{false};
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

// A blocking client of the proxy.
struct Client {
  asio::io_context io;
  tcp::socket socket{io};
  explicit Client(std::uint16_t port) {
    socket.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  }
  // Reads until the connection ends; returns everything read.
  std::string ReadToEnd() {
    std::string all;
    std::array<char, 4096> buffer;
    error_code ec;
    while (true) {
      const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) return all;
      all.append(buffer.data(), n);
    }
  }
  // Reads at least `count` bytes (or until the connection ends).
  std::string ReadAtLeast(std::size_t count) {
    std::string all;
    std::array<char, 4096> buffer;
    error_code ec;
    while (all.size() < count) {
      const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      all.append(buffer.data(), n);
    }
    return all;
  }
};

bool IsPatternPrefix(const std::string& bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != PatternByte(i)) return false;
  }
  return true;
}

TEST_CASE("FaultProxy forwards bytes unchanged both ways") {
  Upstream upstream(Upstream::Mode::kEcho);
  FaultProxy proxy(upstream.port());
  Client client(proxy.port());
  const std::string message = "GET / HTTP/1.1\r\n\r\n" + std::string(10000, 'x');
  asio::write(client.socket, asio::buffer(message));
  CHECK(client.ReadAtLeast(message.size()) == message);
  const FaultProxy::Counts counts = proxy.counts();
  CHECK(counts.accepted == 1);
  CHECK(counts.open == 1);
  CHECK(counts.bytes_to_upstream == message.size());
  CHECK(counts.bytes_to_client == message.size());
}

TEST_CASE("FaultProxy cuts an armed connection after a random number of bytes, inside a read") {
  Upstream upstream(Upstream::Mode::kStream);
  for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
    FaultProxy proxy(upstream.port(), seed);
    Client client(proxy.port());
    const std::string before = client.ReadAtLeast(3000);
    REQUIRE(before.size() >= 3000);
    const std::uint64_t forwarded_before = proxy.counts().bytes_to_client;
    REQUIRE(proxy.CutMidStream(2500, milliseconds(10000)) == 1);
    const std::string all = before + client.ReadToEnd();
    INFO("seed " << seed << ", " << all.size() << " bytes, " << forwarded_before
                 << " before arming");
    // Exactly what went through, a prefix of what upstream sent, ended within the budget.
    CHECK(IsPatternPrefix(all));
    const FaultProxy::Counts counts = proxy.counts();
    CHECK(all.size() == counts.bytes_to_client);
    CHECK(counts.bytes_to_client > forwarded_before);
    CHECK(counts.bytes_to_client <= forwarded_before + 2500);
    CHECK(counts.cut_mid_stream == 1);
    CHECK(WaitUntil([&] { return proxy.counts().open == 0; }, milliseconds(2000)));
  }
}

TEST_CASE("FaultProxy cut points differ: the budget is random") {
  Upstream upstream(Upstream::Mode::kStream);
  std::vector<std::uint64_t> after_arming;
  for (std::uint64_t seed : {11, 12, 13}) {
    FaultProxy proxy(upstream.port(), seed);
    Client client(proxy.port());
    client.ReadAtLeast(1000);
    const std::uint64_t before = proxy.counts().bytes_to_client;
    proxy.CutMidStream(100000, milliseconds(10000));
    client.ReadToEnd();
    after_arming.push_back(proxy.counts().bytes_to_client - before);
  }
  INFO(after_arming[0] << " " << after_arming[1] << " " << after_arming[2]);
  CHECK((after_arming[0] != after_arming[1] || after_arming[1] != after_arming[2]));
  // Not at 1 KiB boundaries (the upstream's writes) every time: cuts land inside reads.
  CHECK(
      (after_arming[0] % 1024 != 0 || after_arming[1] % 1024 != 0 || after_arming[2] % 1024 != 0));
}

TEST_CASE("FaultProxy paces what comes from upstream when given a rate") {
  Upstream upstream(Upstream::Mode::kStream);  // about 200 KiB/s
  FaultProxy proxy(upstream.port());
  proxy.SetDownstreamRate(20 << 10);
  Client client(proxy.port());
  const auto started = std::chrono::steady_clock::now();
  const std::string bytes = client.ReadAtLeast(12 << 10);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(IsPatternPrefix(bytes));
  // 12 KiB at 20 KiB/s: 0.6 s (less the first read, which may be small).
  CHECK(took >= milliseconds(400));
  proxy.SetDownstreamRate(0);
  const auto unpaced = std::chrono::steady_clock::now();
  client.ReadAtLeast(40 << 10);
  CHECK(std::chrono::steady_clock::now() - unpaced < milliseconds(1500));
}

TEST_CASE("FaultProxy closes an armed connection that stays idle") {
  Upstream upstream(Upstream::Mode::kSilent);
  FaultProxy proxy(upstream.port());
  Client client(proxy.port());
  REQUIRE(WaitUntil([&] { return proxy.counts().open == 1; }, milliseconds(2000)));
  const auto armed_at = std::chrono::steady_clock::now();
  REQUIRE(proxy.CutMidStream(10, milliseconds(200)) == 1);
  CHECK(client.ReadToEnd().empty());
  CHECK(std::chrono::steady_clock::now() - armed_at >= milliseconds(150));
  CHECK(proxy.counts().cut_idle == 1);
  CHECK(proxy.counts().cut_mid_stream == 0);
}

TEST_CASE("FaultProxy refuses new connections while told to, then forwards again") {
  Upstream upstream(Upstream::Mode::kEcho);
  FaultProxy proxy(upstream.port());
  Client open_before(proxy.port());
  REQUIRE(WaitUntil([&] { return proxy.counts().open == 1; }, milliseconds(2000)));
  proxy.SetRefusing(true);
  {
    Client refused(proxy.port());
    CHECK(refused.ReadToEnd().empty());
  }
  CHECK(proxy.counts().refused == 1);
  // The connection that was open goes on.
  asio::write(open_before.socket, asio::buffer(std::string("still here")));
  CHECK(open_before.ReadAtLeast(10) == "still here");
  proxy.SetRefusing(false);
  Client after(proxy.port());
  asio::write(after.socket, asio::buffer(std::string("hello")));
  CHECK(after.ReadAtLeast(5) == "hello");
  CHECK(proxy.counts().accepted == 2);
}

TEST_CASE("FaultProxy CutAll ends every open connection") {
  Upstream upstream(Upstream::Mode::kEcho);
  FaultProxy proxy(upstream.port());
  Client a(proxy.port());
  Client b(proxy.port());
  REQUIRE(WaitUntil([&] { return proxy.counts().open == 2; }, milliseconds(2000)));
  CHECK(proxy.CutAll() == 2);
  CHECK(a.ReadToEnd().empty());
  CHECK(b.ReadToEnd().empty());
  CHECK(proxy.counts().cut_all == 2);
  CHECK(proxy.counts().open == 0);
}

}  // namespace
}  // namespace informerd::test

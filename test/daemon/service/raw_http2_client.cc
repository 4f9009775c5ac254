#include "test/daemon/service/raw_http2_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace informerd::daemon::testing {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;

void PutUint32(std::string& out, uint32_t value) {
  out.push_back(static_cast<char>(value >> 24));
  out.push_back(static_cast<char>(value >> 16));
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value));
}

uint32_t GetUint32(const std::string& bytes, std::size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + 3]));
}

// An HPACK integer with a 7-bit prefix (RFC 7541 5.1), the string-length form (H = 0).
void PutHpackLength(std::string& out, std::size_t value) {
  if (value < 127) {
    out.push_back(static_cast<char>(value));
    return;
  }
  out.push_back(static_cast<char>(127));
  value -= 127;
  while (value >= 128) {
    out.push_back(static_cast<char>((value % 128) | 128));
    value /= 128;
  }
  out.push_back(static_cast<char>(value));
}

// "Literal Header Field without Indexing — New Name" (RFC 7541 6.2.2).
void PutLiteralHeader(std::string& out, const std::string& name, const std::string& value) {
  out.push_back(0x00);
  PutHpackLength(out, name.size());
  out += name;
  PutHpackLength(out, value.size());
  out += value;
}

}  // namespace

std::string Http2Frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                       const std::string& payload) {
  std::string frame;
  frame.reserve(9 + payload.size());
  const auto length = static_cast<uint32_t>(payload.size());
  frame.push_back(static_cast<char>(length >> 16));
  frame.push_back(static_cast<char>(length >> 8));
  frame.push_back(static_cast<char>(length));
  frame.push_back(static_cast<char>(type));
  frame.push_back(static_cast<char>(flags));
  PutUint32(frame, stream_id & 0x7fffffffu);
  frame += payload;
  return frame;
}

std::string GrpcHeadersFrame(uint32_t stream_id, const std::string& path, bool end_stream) {
  std::string block;
  PutLiteralHeader(block, ":method", "POST");
  PutLiteralHeader(block, ":scheme", "http");
  PutLiteralHeader(block, ":path", path);
  PutLiteralHeader(block, ":authority", "informerd");
  PutLiteralHeader(block, "content-type", "application/grpc");
  PutLiteralHeader(block, "te", "trailers");
  return Http2Frame(kFrameHeaders,
                    static_cast<uint8_t>(kFlagEndHeaders | (end_stream ? kFlagEndStream : 0)),
                    stream_id, block);
}

std::string GrpcMessageFrame(uint32_t stream_id, const std::string& message, bool end_stream) {
  std::string payload;
  payload.push_back(0);  // not compressed
  PutUint32(payload, static_cast<uint32_t>(message.size()));
  payload += message;
  return Http2Frame(kFrameData, end_stream ? kFlagEndStream : 0, stream_id, payload);
}

std::string RstStreamFrame(uint32_t stream_id, uint32_t error_code) {
  std::string payload;
  PutUint32(payload, error_code);
  return Http2Frame(kFrameRstStream, 0, stream_id, payload);
}

std::string PingFrame(uint64_t opaque, bool ack) {
  std::string payload;
  PutUint32(payload, static_cast<uint32_t>(opaque >> 32));
  PutUint32(payload, static_cast<uint32_t>(opaque));
  return Http2Frame(kFramePing, ack ? kFlagAck : 0, 0, payload);
}

RawHttp2Client::RawHttp2Client(const std::string& address) {
  const auto colon = address.rfind(':');
  REQUIRE(colon != std::string::npos);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  REQUIRE(inet_pton(AF_INET, address.substr(0, colon).c_str(), &server.sin_addr) == 1);
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  INFO("connect " << address << ": " << std::strerror(errno));
  REQUIRE(connect(fd_, reinterpret_cast<const sockaddr*>(&server), sizeof server) == 0);
  const int on = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  // The preface before anything else, the reader's SETTINGS ack included.
  REQUIRE(Send(std::string(kPreface, sizeof kPreface - 1) + Http2Frame(kFrameSettings, 0, 0, "")));
  reader_ = std::thread([this] { ReadLoop(); });
}

RawHttp2Client::~RawHttp2Client() {
  shutdown(fd_, SHUT_RDWR);
  reader_.join();
  close(fd_);
}

bool RawHttp2Client::Send(const std::string& bytes) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<Goaway> RawHttp2Client::WaitForGoaway(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return goaway_.has_value() || closed_; });
  return goaway_;
}

bool RawHttp2Client::WaitForClose(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return closed_.load(); });
}

bool RawHttp2Client::WaitForSettings(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return server_settings_.has_value() || closed_; });
  return server_settings_.has_value();
}

std::optional<uint32_t> RawHttp2Client::server_setting(uint16_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!server_settings_) return std::nullopt;
  const std::string& payload = *server_settings_;
  for (std::size_t at = 0; at + 6 <= payload.size(); at += 6) {
    const auto setting = static_cast<uint16_t>((static_cast<uint8_t>(payload[at]) << 8) |
                                               static_cast<uint8_t>(payload[at + 1]));
    if (setting == id) return GetUint32(payload, at + 2);
  }
  return std::nullopt;
}

void RawHttp2Client::ReadLoop() {
  std::string buffer;
  std::vector<char> chunk(64 * 1024);
  while (true) {
    const ssize_t n = recv(fd_, chunk.data(), chunk.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes_received_ += static_cast<uint64_t>(n);
    buffer.append(chunk.data(), static_cast<std::size_t>(n));
    std::size_t at = 0;
    while (buffer.size() - at >= 9) {
      const uint32_t length = (static_cast<uint32_t>(static_cast<uint8_t>(buffer[at])) << 16) |
                              (static_cast<uint32_t>(static_cast<uint8_t>(buffer[at + 1])) << 8) |
                              static_cast<uint32_t>(static_cast<uint8_t>(buffer[at + 2]));
      if (buffer.size() - at < 9 + length) break;
      const auto type = static_cast<uint8_t>(buffer[at + 3]);
      const auto flags = static_cast<uint8_t>(buffer[at + 4]);
      const uint32_t stream_id = GetUint32(buffer, at + 5) & 0x7fffffffu;
      OnFrame(type, flags, stream_id, buffer.substr(at + 9, length));
      at += 9 + length;
    }
    buffer.erase(0, at);
  }
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  changed_.notify_all();
}

void RawHttp2Client::OnFrame(uint8_t type, uint8_t flags, uint32_t /*stream_id*/,
                             const std::string& payload) {
  switch (type) {
    case kFrameSettings:
      if ((flags & kFlagAck) == 0) {
        // Acknowledged before WaitForSettings returns: the server applies its own settings (its
        // stream limit, say) only once they are acknowledged, so frames the test sends next must
        // follow the ACK.
        Send(Http2Frame(kFrameSettings, kFlagAck, 0, ""));
        std::lock_guard<std::mutex> lock(mu_);
        if (!server_settings_) server_settings_ = payload;
        changed_.notify_all();
      }
      break;
    case kFramePing:
      if ((flags & kFlagAck) == 0) {
        ++pings_received_;
        if (answer_pings_ && payload.size() == 8) {
          Send(Http2Frame(kFramePing, kFlagAck, 0, payload));
        }
      }
      break;
    case kFrameHeaders:
      ++headers_received_;
      break;
    case kFrameRstStream:
      ++rst_streams_received_;
      break;
    case kFrameGoaway:
      if (payload.size() >= 8) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!goaway_) {
          goaway_ =
              Goaway{GetUint32(payload, 0) & 0x7fffffffu, GetUint32(payload, 4), payload.substr(8)};
        }
        changed_.notify_all();
      }
      break;
    default:
      break;
  }
}

}  // namespace informerd::daemon::testing

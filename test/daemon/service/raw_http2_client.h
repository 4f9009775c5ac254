// RawHttp2Client: a plaintext HTTP/2 client that writes frames by hand, for tests of what the gRPC
// port does with clients that do not behave as gRPC's own client does: pinging too often,
// opening more streams than the server allows, opening and resetting streams as fast as it can
// (the "rapid reset" flood), going silent on a quiet stream.
//
// It speaks h2c with prior knowledge (the connection preface at once, as gRPC's plaintext clients
// do), encodes headers as HPACK literals without indexing (no Huffman, no dynamic table), and
// never sends more than the test asks: no WINDOW_UPDATE, no pings of its own. A reader thread
// takes every frame the server sends, acknowledges its SETTINGS, acknowledges its PINGs while
// `answer_pings` is on, and keeps what the tests look at (GOAWAY, PING and HEADERS counts, the
// end of the connection).
//
// Frame builders are free functions, so that a flood can build one large buffer of frames and
// write it in one call.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace informerd::daemon::testing {

// HTTP/2 frame types and error codes the tests use (RFC 9113).
inline constexpr uint8_t kFrameData = 0x0;
inline constexpr uint8_t kFrameHeaders = 0x1;
inline constexpr uint8_t kFrameRstStream = 0x3;
inline constexpr uint8_t kFrameSettings = 0x4;
inline constexpr uint8_t kFramePing = 0x6;
inline constexpr uint8_t kFrameGoaway = 0x7;
inline constexpr uint32_t kErrorNoError = 0x0;
inline constexpr uint32_t kErrorCancel = 0x8;
inline constexpr uint32_t kErrorEnhanceYourCalm = 0xb;

// One frame: its 9-byte header and `payload`.
std::string Http2Frame(uint8_t type, uint8_t flags, uint32_t stream_id, const std::string& payload);
// HEADERS (END_HEADERS) opening a gRPC call of `path` ("/pkg.Service/Method") on `stream_id`;
// END_STREAM too when `end_stream` (a call with no request message).
std::string GrpcHeadersFrame(uint32_t stream_id, const std::string& path, bool end_stream);
// DATA carrying one gRPC message (5-byte prefix + `message`), END_STREAM when `end_stream`.
std::string GrpcMessageFrame(uint32_t stream_id, const std::string& message, bool end_stream);
std::string RstStreamFrame(uint32_t stream_id, uint32_t error_code);
std::string PingFrame(uint64_t opaque, bool ack = false);

// What the server sent in its GOAWAY.
struct Goaway {
  uint32_t last_stream_id = 0;
  uint32_t error_code = 0;
  std::string debug_data;
};

class RawHttp2Client {
 public:
  // Connects to `address` ("127.0.0.1:PORT") and sends the preface and an empty SETTINGS. Fails
  // the test if it cannot connect.
  explicit RawHttp2Client(const std::string& address);
  ~RawHttp2Client();
  RawHttp2Client(const RawHttp2Client&) = delete;
  RawHttp2Client& operator=(const RawHttp2Client&) = delete;

  // Writes `bytes` whole (blocking). False once the connection is broken.
  bool Send(const std::string& bytes);

  // Whether the server's PINGs are acknowledged (default true). Off: the client looks like a
  // peer that vanished without closing its connection.
  void set_answer_pings(bool answer) { answer_pings_ = answer; }

  // Waits for the server's GOAWAY; nullopt if none came within `timeout`.
  std::optional<Goaway> WaitForGoaway(std::chrono::milliseconds timeout);
  // Waits until the server has closed the connection (end of stream or reset); false if it is
  // still open after `timeout`.
  bool WaitForClose(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }

  // The server's settings value for `id` (0x3: SETTINGS_MAX_CONCURRENT_STREAMS), once its
  // SETTINGS arrived; nullopt before, or if it did not send that one.
  std::optional<uint32_t> server_setting(uint16_t id);
  // Waits for the server's first SETTINGS; false if they did not come (the connection closed, or
  // `timeout` passed).
  bool WaitForSettings(std::chrono::milliseconds timeout);

  // Counts of frames received so far.
  int pings_received() const { return pings_received_; }
  int headers_received() const { return headers_received_; }
  int rst_streams_received() const { return rst_streams_received_; }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  void ReadLoop();
  void OnFrame(uint8_t type, uint8_t flags, uint32_t stream_id, const std::string& payload);

  int fd_ = -1;
  std::mutex write_mu_;  // one writer at a time: the test's thread and the reader's acks
  std::atomic<bool> answer_pings_{true};
  std::atomic<bool> closed_{false};
  std::atomic<int> pings_received_{0};
  std::atomic<int> headers_received_{0};
  std::atomic<int> rst_streams_received_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::mutex mu_;
  std::condition_variable changed_;
  std::optional<Goaway> goaway_;                // guarded by mu_
  std::optional<std::string> server_settings_;  // guarded by mu_: the first SETTINGS' payload
  std::thread reader_;
};

}  // namespace informerd::daemon::testing

// BufferChain: an HTTP body (a LIST page, a batch of watch events) assembled from pieces without
// copying the big ones.
//
// Objects are stored once as immutable shared bytes (see synthetic_objects.h); a response refers
// to them and keeps them alive (shared ownership) until the socket write completes, while small
// glue (commas, resourceVersion digits, event prefixes) is copied into the chain's own arena. The
// chain is built and written by one connection on its strand; it is not thread-safe.
#pragma once

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace informerd::fakeapi {

class BufferChain {
 public:
  // Copies `bytes` (small glue) into the chain.
  void AppendCopy(std::string_view bytes);
  // Refers to `bytes` without copying; `owner` keeps them alive as long as the chain.
  void AppendShared(std::shared_ptr<const void> owner, std::string_view bytes);

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear();

  // Buffers for a gather write. Valid until the chain is next modified or destroyed.
  std::vector<boost::asio::const_buffer> Buffers() const;
  // The bytes as one string (tests, and the rare paths that must rewrite bytes).
  std::string ToString() const;

 private:
  struct Piece {
    const char* shared_data;  // null: the piece lives in arena_ at `offset`.
    std::size_t offset;
    std::size_t length;
  };
  std::string arena_;
  std::vector<Piece> pieces_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::size_t size_ = 0;
};

}  // namespace informerd::fakeapi

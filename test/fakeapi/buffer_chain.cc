#include "test/fakeapi/buffer_chain.h"

namespace informerd::fakeapi {

void BufferChain::AppendCopy(std::string_view bytes) {
  if (bytes.empty()) return;
  // Adjacent arena pieces merge, so a page of small glue stays one buffer.
  if (!pieces_.empty() && pieces_.back().shared_data == nullptr &&
      pieces_.back().offset + pieces_.back().length == arena_.size()) {
    pieces_.back().length += bytes.size();
  } else {
    pieces_.push_back(Piece{nullptr, arena_.size(), bytes.size()});
  }
  arena_.append(bytes.data(), bytes.size());
  size_ += bytes.size();
}

void BufferChain::AppendShared(std::shared_ptr<const void> owner, std::string_view bytes) {
  if (bytes.empty()) return;
  if (owners_.empty() || owners_.back() != owner) owners_.push_back(std::move(owner));
  pieces_.push_back(Piece{bytes.data(), 0, bytes.size()});
  size_ += bytes.size();
}

void BufferChain::clear() {
  arena_.clear();
  pieces_.clear();
  owners_.clear();
  size_ = 0;
}

std::vector<boost::asio::const_buffer> BufferChain::Buffers() const {
  std::vector<boost::asio::const_buffer> buffers;
  buffers.reserve(pieces_.size());
  for (const Piece& piece : pieces_) {
    const char* data = piece.shared_data ? piece.shared_data : arena_.data() + piece.offset;
    buffers.emplace_back(data, piece.length);
  }
  return buffers;
}

std::string BufferChain::ToString() const {
  std::string out;
  out.reserve(size_);
  for (const auto& buffer : Buffers()) {
    out.append(static_cast<const char*>(buffer.data()), buffer.size());
  }
  return out;
}

}  // namespace informerd::fakeapi

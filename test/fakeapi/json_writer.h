// JsonWriter: RapidJSON's streaming Writer into a StringBuffer, with the std::string overloads
// RapidJSON 1.1 lacks for keys. Every JSON document the fake produces is written with it.
// A value type; used by one thread at a time.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace informerd::fakeapi {

namespace internal {
// Constructed before the Writer base that writes into it.
struct JsonBuffer {
  rapidjson::StringBuffer buffer_;
};
}  // namespace internal

class JsonWriter : private internal::JsonBuffer,
                   public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  JsonWriter() : rapidjson::Writer<rapidjson::StringBuffer>(buffer_) {}
  using rapidjson::Writer<rapidjson::StringBuffer>::Key;
  using rapidjson::Writer<rapidjson::StringBuffer>::String;
  bool Key(const std::string& key) {
    return Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  }
  bool String(const std::string& value) {
    return String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  // The document written so far.
  std::string Take() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }
};

}  // namespace informerd::fakeapi

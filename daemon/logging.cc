#include "daemon/logging.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace informerd::daemon {
namespace {

// %* in the JSON pattern: the message as a quoted, escaped JSON string (RapidJSON escapes it),
// so quotes or newlines in a message never break the one-object-per-line format.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.String(msg.payload.data(), static_cast<rapidjson::SizeType>(msg.payload.size()));
    dest.append(buffer.GetString(), buffer.GetString() + buffer.GetSize());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

Logging::Logging(LogFormat format, const std::string& level)
    : sink_(std::make_shared<spdlog::sinks::stderr_sink_mt>()),
      level_(spdlog::level::from_str(level)) {
  if (format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","msg":%*})");
    sink_->set_formatter(std::move(formatter));
  } else {
    sink_->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%fZ %L [%n] %v", spdlog::pattern_time_type::utc));
  }
}

std::shared_ptr<spdlog::logger> Logging::For(const std::string& component) const {
  auto logger = std::make_shared<spdlog::logger>(component, sink_);
  logger->set_level(level_);
  logger->flush_on(spdlog::level::info);
  return logger;
}

}  // namespace informerd::daemon

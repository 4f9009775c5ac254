// CapturedLog: a spdlog logger whose lines a test reads back, for checking what the daemon logs
// (progress of a long list, readiness changes, warnings) word for word. Each line is kept as
// "LEVEL: message" ("info: pods: initial sync: 3 objects so far (10 s)"), without the time or
// the logger's name, in the order logged. Every level is kept (the logger's level is trace).
//
// Thread-safe: the logger may be used from any thread while the test reads the lines.
#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace informerd::test {

class CapturedLog {
 public:
  CapturedLog()
      : sink_(std::make_shared<Sink>()),
        logger_(std::make_shared<spdlog::logger>("captured", sink_)) {
    logger_->set_level(spdlog::level::trace);
  }

  const std::shared_ptr<spdlog::logger>& logger() const { return logger_; }

  // Every line so far.
  std::vector<std::string> Lines() const { return sink_->Lines(); }
  // The lines that contain `text`.
  std::vector<std::string> Containing(std::string_view text) const {
    std::vector<std::string> out;
    for (std::string& line : Lines()) {
      if (line.find(text) != std::string::npos) out.push_back(std::move(line));
    }
    return out;
  }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> Lines() {
      std::lock_guard<std::mutex> lock(this->mutex_);
      return lines_;
    }

   protected:
    // Called with mutex_ held.
    void sink_it_(const spdlog::details::log_msg& msg) override {
      const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
      std::string line(level.data(), level.size());
      line += ": ";
      line.append(msg.payload.data(), msg.payload.size());
      lines_.push_back(std::move(line));
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace informerd::test

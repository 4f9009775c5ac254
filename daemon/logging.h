// Logging: per-component spdlog loggers that share one stderr sink and one format.
//
// Owned by the daemon's top level (daemon/app.cc) and created before anything else; components
// receive their logger (a shared_ptr) at construction, so there is no global logger registry.
// Formats: text for people, JSON (one object per line) for log pipelines. Per-event logging
// stays at debug/trace; info is for state changes.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "daemon/options.h"

namespace informerd::daemon {

class Logging {
 public:
  Logging(LogFormat format, const std::string& level);

  // A logger whose lines carry `component`; cheap to call, loggers share the sink.
  std::shared_ptr<spdlog::logger> For(const std::string& component) const;

 private:
  spdlog::sink_ptr sink_;
  spdlog::level::level_enum level_;
};

}  // namespace informerd::daemon

// ScriptedRandomSource: a core::RandomSource that returns the values a test lines up, then a
// fixed default, so jitter and random watch timeouts are exact in assertions. Single-threaded.
#pragma once

#include <deque>
#include <initializer_list>

#include "core/random_source.h"

namespace informerd::core {

class ScriptedRandomSource final : public RandomSource {
 public:
  // With no script every draw is `fallback`: 0.5 makes a 800 ms backoff step wait 1200 ms and a
  // watch ask for timeoutSeconds=450.
  explicit ScriptedRandomSource(double fallback = 0.5) : fallback_(fallback) {}

  // The next draws, in order, before falling back to the default again.
  void Script(std::initializer_list<double> values) { script_.insert(script_.end(), values); }
  void SetFallback(double value) { fallback_ = value; }

  double Uniform() override {
    if (script_.empty()) return fallback_;
    const double value = script_.front();
    script_.pop_front();
    return value;
  }

 private:
  std::deque<double> script_;
  double fallback_;
};

}  // namespace informerd::core

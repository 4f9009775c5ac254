// RandomSource: where core/ draws randomness. Jittered backoff and randomized watch timeouts
// exist to spread many clients' requests over time (client-go's reflector does both); tests
// need them to be predictable, so randomness is injected like time is (core/clock.h).
//
// Owned by whoever wires the component and passed by reference. Not thread-safe: one source per
// thread (the daemon keeps one per I/O thread, seeded from std::random_device).
#pragma once

#include <cstdint>
#include <random>

namespace informerd::core {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // A number drawn uniformly from [0, 1).
  virtual double Uniform() = 0;
};

// A seeded pseudo-random generator: the production source, and a reproducible one for tests
// that want many draws without scripting each.
class SeededRandomSource final : public RandomSource {
 public:
  explicit SeededRandomSource(uint64_t seed) : engine_(seed) {}
  double Uniform() override { return distribution_(engine_); }

 private:
  std::mt19937_64 engine_;
  std::uniform_real_distribution<double> distribution_{0.0, 1.0};
};

}  // namespace informerd::core

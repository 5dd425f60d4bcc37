// Capped exponential backoff with decorrelated jitter, for everything that
// retries against a failing environment: the durable store after a failed
// commit, a bridge reconnecting to its upstream, a bridge queue after a
// failed write.
//
// The formula is "decorrelated jitter" from Marc Brooker, "Exponential
// Backoff And Jitter" (AWS Architecture Blog, 2015), as eclipse/mosquitto's
// bridge uses it (src/bridge.c, bridge__backoff_step):
//
//   first delay = base
//   next delay  = min(cap, random_between(base, previous * 3))
//
// Worked example, base 1 s, cap 60 s: 1 s, then somewhere in [1, 3] s, say
// 2.2 s, then in [1, 6.6] s, ... never above 60 s. Growing from the previous
// delay (not from the attempt number) spreads many nodes that lost the same
// upstream at the same moment, so they do not retry in lockstep.
//
// Thread safety: none; each retrying party owns its Backoff.
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry::core {

class Backoff {
 public:
  // REQUIRES: base > 0 and cap >= base (smaller values are raised to that).
  // `seed` feeds the jitter; pass something that differs between instances.
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed);

  // The delay before the next attempt.
  std::chrono::milliseconds Next();
  // After a success: the next failure waits `base` again.
  void Reset() { previous_ = std::chrono::milliseconds{0}; }

  std::chrono::milliseconds base() const { return base_; }
  std::chrono::milliseconds cap() const { return cap_; }

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds previous_{0};
  uint64_t rng_state_;
};

// A seed for Backoff that differs between calls and processes.
uint64_t BackoffSeed(const void* salt);

}  // namespace ferry::core

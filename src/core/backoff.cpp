#include "core/backoff.h"

#include <algorithm>
#include <atomic>

namespace ferry::core {

namespace {

// splitmix64: enough randomness for jitter, no shared state.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed)
    : base_(std::max<std::chrono::milliseconds>(base, std::chrono::milliseconds{1})),
      cap_(std::max(cap, base_)),
      rng_state_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  using std::chrono::milliseconds;
  if (previous_.count() == 0) {
    previous_ = base_;
    return previous_;
  }
  const int64_t base = base_.count();
  const int64_t high = std::max(base, previous_.count() * 3);
  const int64_t span = high - base + 1;
  const int64_t pick =
      base + static_cast<int64_t>(NextRandom(rng_state_) % static_cast<uint64_t>(span));
  previous_ = milliseconds{std::min(cap_.count(), pick)};
  return previous_;
}

uint64_t BackoffSeed(const void* salt) {
  static std::atomic<uint64_t> counter{0};
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         reinterpret_cast<uintptr_t>(salt) ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
}

}  // namespace ferry::core

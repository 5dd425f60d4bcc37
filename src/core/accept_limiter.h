// The accept-rate limit of one listener ([listener.*] max_connection_rate):
// a token bucket that holds one second's worth of connections, so a burst
// up to the rate is taken at once and a longer flood is spread out. While
// the bucket is empty the listener stops accepting; new clients wait in the
// kernel's accept queue (net.core.somaxconn) instead of being refused.
//
// Worked example, rate 100/s: 100 clients arrive together and are all
// accepted; the 101st waits 10 ms for the next token.
//
// Sans-I/O (loop time is passed in); one thread (the acceptor's loop).
#pragma once

#include <algorithm>
#include <cstdint>

namespace ferry::core {

class AcceptLimiter {
 public:
  // `rate_per_s` == 0: no limit.
  explicit AcceptLimiter(uint32_t rate_per_s)
      : rate_(rate_per_s), milli_tokens_(uint64_t{rate_per_s} * 1000) {}

  // Milliseconds until a connection may be accepted; 0 = now.
  uint64_t WaitMs(uint64_t now_ms) {
    if (rate_ == 0) return 0;
    Refill(now_ms);
    if (milli_tokens_ >= 1000) return 0;
    return (1000 - milli_tokens_ + rate_ - 1) / rate_;
  }

  // A connection was accepted. REQUIRES: WaitMs(now) == 0 just before.
  void Take() {
    if (rate_ != 0) milli_tokens_ -= std::min<uint64_t>(milli_tokens_, 1000);
  }

 private:
  void Refill(uint64_t now_ms) {
    if (now_ms > last_ms_) {
      milli_tokens_ = std::min(uint64_t{rate_} * 1000, milli_tokens_ + (now_ms - last_ms_) * rate_);
    }
    last_ms_ = std::max(last_ms_, now_ms);
  }

  uint64_t rate_;
  uint64_t milli_tokens_;  // 1000 per connection
  uint64_t last_ms_ = 0;
};

}  // namespace ferry::core

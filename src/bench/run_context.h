// What every loop thread of one ferry-bench run shares: the options, the
// broker's address, the TLS context, and one block of counters per loop.
//
// RunContext is filled before the loop threads start and read-only after.
// Counters are written by their own loop thread only (Bump is a relaxed load
// and store, not a locked add) and read by the main thread for progress
// lines; the final figures are read after the threads have joined.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "bench/options.h"
#include "core/packet.h"

namespace ferry::bench {

class TlsContext;

struct RunContext {
  const Options* options = nullptr;
  const TlsContext* tls = nullptr;  // null without TLS
  sockaddr_storage broker{};
  sockaddr_storage sub_broker{};  // where subscribers connect: --sub-port, else `broker`
  std::vector<sockaddr_storage> local_addrs;  // --ifaddr, used in turn
  core::ProtocolVersion version = core::ProtocolVersion::kV5;
  uint64_t start_ns = 0;  // CLOCK_MONOTONIC when the run began
  // pubsub: per publisher (index - first_publisher), messages the
  // subscribers received or skipped over, summed over subscribers. Any loop
  // thread adds; the publisher's thread reads. Empty without --window.
  std::unique_ptr<std::atomic<uint64_t>[]> accounted;
  uint64_t first_publisher = 0;
  uint64_t publishers = 0;
};

struct Counters {
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> connect_failed{0};
  std::atomic<uint64_t> closed_by_broker{0};
  std::atomic<uint64_t> subscribed{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> inflight{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> publishers_done{0};
  std::atomic<uint64_t> last_connack_ns{0};
  std::atomic<uint64_t> first_send_ns{0};
  std::atomic<uint64_t> last_send_ns{0};
  std::atomic<uint64_t> first_recv_ns{0};
  std::atomic<uint64_t> last_recv_ns{0};
};

// Adds n to a counter that only the calling thread writes.
inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void Drop(std::atomic<uint64_t>& c, uint64_t n = 1) {
  uint64_t v = c.load(std::memory_order_relaxed);
  c.store(v >= n ? v - n : 0, std::memory_order_relaxed);
}
inline void Set(std::atomic<uint64_t>& c, uint64_t v) { c.store(v, std::memory_order_relaxed); }
inline uint64_t Get(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }

inline uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace ferry::bench

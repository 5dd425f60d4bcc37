// Node-wide counters. Any thread updates them with relaxed atomics.
#pragma once

#include <atomic>
#include <cstdint>

namespace ferry::core {

struct Metrics {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> clients_connected{0};
  std::atomic<int64_t> sessions{0};
  std::atomic<uint64_t> messages_received{0};
  std::atomic<uint64_t> messages_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> publish_received{0};
  std::atomic<uint64_t> publish_sent{0};
  std::atomic<uint64_t> dropped_queue_full{0};
  std::atomic<uint64_t> dropped_slow_client{0};
  std::atomic<uint64_t> dropped_expired{0};
  std::atomic<uint64_t> dropped_too_large{0};
  std::atomic<uint64_t> dropped_no_subscribers{0};
  std::atomic<uint64_t> dropped_not_authorized{0};
  // Messages from another node whose path already named this node.
  std::atomic<uint64_t> dropped_loop{0};
  std::atomic<uint64_t> protocol_errors{0};

  uint64_t dropped_total() const {
    return dropped_queue_full + dropped_slow_client + dropped_expired + dropped_too_large +
           dropped_not_authorized + dropped_loop;
  }
};

inline void Inc(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace ferry::core

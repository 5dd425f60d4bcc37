// Node-wide counters. Any thread updates them with relaxed atomics.
//
// A gauge that ferryctl reports with its maximum keeps a high-water mark
// beside it (`*_max`), raised with RaiseMax after each increment: the most
// the gauge has been since the node started.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ferry::core {

// Raises `max` to `value` if it is lower. Any thread.
template <typename T>
inline void RaiseMax(std::atomic<T>& max, T value) {
  T seen = max.load(std::memory_order_relaxed);
  while (seen < value && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

struct Metrics {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> clients_connected{0};
  std::atomic<int64_t> clients_connected_max{0};
  std::atomic<int64_t> sessions{0};
  std::atomic<int64_t> sessions_max{0};
  std::atomic<uint64_t> messages_received{0};
  std::atomic<uint64_t> messages_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> publish_received{0};
  std::atomic<uint64_t> publish_sent{0};
  // PUBLISH packets by QoS: received as the publisher sent them, sent at the
  // QoS of each delivery.
  std::atomic<uint64_t> publish_received_qos[3] = {0, 0, 0};
  std::atomic<uint64_t> publish_sent_qos[3] = {0, 0, 0};
  std::atomic<uint64_t> dropped_queue_full{0};
  std::atomic<uint64_t> dropped_slow_client{0};
  // QoS 1/2 messages for a connected subscriber whose full queue had held
  // its publishers for [mqtt] max_queue_wait (queue_wait_action = drop).
  std::atomic<uint64_t> dropped_queue_wait{0};
  std::atomic<uint64_t> dropped_expired{0};
  std::atomic<uint64_t> dropped_too_large{0};
  std::atomic<uint64_t> dropped_no_subscribers{0};
  std::atomic<uint64_t> dropped_not_authorized{0};
  // Messages from another node whose path already named this node.
  std::atomic<uint64_t> dropped_loop{0};
  std::atomic<uint64_t> protocol_errors{0};
  // Subscribers disconnected for holding publishers past max_queue_wait
  // (queue_wait_action = disconnect).
  std::atomic<uint64_t> slow_subscribers_disconnected{0};
  // Connections closed because their worker held max_partial_packet_memory
  // in incomplete packets.
  std::atomic<uint64_t> partial_packet_refusals{0};
  // Topic filters refused past max_subscriptions_per_client.
  std::atomic<uint64_t> subscriptions_refused{0};
  // Requests not acknowledged as done because the durable store could not
  // commit them: QoS 1/2 PUBLISHes answered 0x97/0x80 (v5) or closed
  // (3.1.1), SUBSCRIBE/UNSUBSCRIBE closed.
  std::atomic<uint64_t> store_refused{0};

  uint64_t dropped_total() const {
    return dropped_queue_full + dropped_slow_client + dropped_queue_wait + dropped_expired +
           dropped_too_large + dropped_not_authorized + dropped_loop;
  }
};

// Why a listener closed a new connection before its CONNECT.
enum class Refusal : uint8_t {
  kMaxConnections,    // over max_connections: closed as soon as accepted
  kProxyHeader,       // no valid PROXY header (proxy_protocol = true)
  kTlsHandshake,      // the TLS handshake failed
  kWebSocketUpgrade,  // the HTTP request to upgrade to WebSocket was refused
  kFdLimit,           // the node's descriptor budget is used up (fd_budget.h)
};
inline constexpr size_t kRefusalCount = 5;

// As the metrics label it: "max_connections", "proxy_header",
// "tls_handshake", "websocket_upgrade", "fd_limit".
constexpr const char* RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kMaxConnections: return "max_connections";
    case Refusal::kProxyHeader: return "proxy_header";
    case Refusal::kTlsHandshake: return "tls_handshake";
    case Refusal::kWebSocketUpgrade: return "websocket_upgrade";
    case Refusal::kFdLimit: return "fd_limit";
  }
  return "unknown";
}

// The counters of one listener.
struct ListenerCounters {
  // Open connections accepted through it: counted in when the acceptor
  // admits one, out when the connection that owns the socket is freed.
  std::atomic<uint32_t> open{0};
  // Connections admitted (within max_connections).
  std::atomic<uint64_t> accepted{0};
  // Connections that waited in the kernel's accept queue because
  // max_connection_rate was reached (a rate limit delays, never refuses).
  std::atomic<uint64_t> rate_limited{0};
  // Connections closed before CONNECT, by Refusal. kMaxConnections and
  // kFdLimit ones are not in `accepted`; the others are.
  std::atomic<uint64_t> refused[kRefusalCount] = {};

  void Refused(Refusal r) {
    refused[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t refused_for(Refusal r) const {
    return refused[static_cast<size_t>(r)].load(std::memory_order_relaxed);
  }
};

inline void Inc(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

// Adds one to a gauge and raises its high-water mark.
inline void IncGauge(std::atomic<int64_t>& gauge, std::atomic<int64_t>& max) {
  RaiseMax(max, gauge.fetch_add(1, std::memory_order_relaxed) + 1);
}

}  // namespace ferry::core

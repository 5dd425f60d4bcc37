// Small shared vocabulary of the integration-test harness: byte strings, the
// MQTT protocol version, a message as a client library delivered it, and a
// thread-safe queue that carries such messages out of client-library threads.
//
// Thread safety: BlockingQueue may be used from any thread; everything else
// here is plain data.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::testing {

using Bytes = std::vector<uint8_t>;

// Every blocking harness call takes a deadline; this is the usual one.
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

enum class MqttVersion : uint8_t {
  kV311 = 4,  // protocol level 4 [MQTT-3.1.2-2]
  kV5 = 5,
};

// A PUBLISH as a client library (Paho, libmosquitto) handed it to the test.
struct ReceivedMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
};

// TLS files of a test client (PEM paths); empty = not used.
struct TlsClientFiles {
  std::string cafile;    // CAs the server's certificate must chain to
  std::string certfile;  // client certificate, for mutual TLS
  std::string keyfile;   // its key
};

// Unbounded FIFO. Producers are library callback threads; the consumer is the
// test thread, which waits with a deadline.
template <typename T>
class BlockingQueue {
 public:
  void Push(T value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(value));
    }
    cv_.notify_all();
  }

  // Returns the oldest item, or nullopt if none arrived within `timeout`.
  std::optional<T> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !items_.empty(); })) return std::nullopt;
    T value = std::move(items_.front());
    items_.pop_front();
    return value;
  }

  size_t Size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

}  // namespace ferry::testing

// One MQTT client of a ferry-bench run: a TCP (optionally TLS) connection on
// its Worker's loop, speaking just enough MQTT to publish, subscribe and stay
// connected, and counting what it did into the Worker's Counters.
//
// Life: Connect() -> TCP connect -> [TLS handshake] -> CONNECT -> CONNACK ->
// subscriber: SUBSCRIBE -> SUBACK -> receive; publisher: publish once
// StartPublishing() has been called. Close() ends it; the Client object stays
// alive (owned by the Worker) until the loop has finished, so libuv callbacks
// still pending after Close() find it.
//
// Publishing: with -I > 0 a timer sends what is due so far (one message per
// interval since publishing began); a late tick makes up for one missed
// tick, and ticks missed beyond that are dropped rather than sent as a
// burst, so the pace stays what -I says; with -I 0 the Worker calls
// PumpBatch() whenever the socket has room. QoS 1/2 publishes stop at -F
// unacknowledged.
//
// Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "bench/sequence.h"
#include "bench/tls.h"
#include "bench/wire.h"
#include "core/loop.h"
#include "core/packet.h"

namespace ferry::bench {

class Worker;

enum class Role : uint8_t { kPublisher, kSubscriber, kIdle };

struct ClientSpec {
  Role role = Role::kIdle;
  uint64_t index = 0;        // %i
  std::string client_id;
  std::string topic;         // publisher: topic template; subscriber: topic filter
  int qos = 0;
  uint64_t limit = 0;        // publisher: messages to send; 0 = no limit
  int group = 0;             // 0 connects at once; 1 after Worker::StartGroup1
  uint64_t connect_at_ms = 0;  // after its group started
  uint64_t pace_offset_us = 0;  // -I > 0: first message this long after the start,
                                // so that publishers do not all send in the same tick
  uint32_t matching_subscribers = 0;  // pubsub --window: subscribers owed each message
};

class Client {
 public:
  Client(Worker& worker, ClientSpec spec);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Connect();
  // Publishers: publish from now on (or from CONNACK if not yet connected).
  void StartPublishing();
  void StopPublishing();
  // Sends DISCONNECT if connected and closes the connection once what was
  // queued before it has been written.
  void Disconnect();
  // Closes at once, dropping unwritten bytes.
  void Close();
  // Sends one batch of publishes if allowed (max-rate publishers).
  void PumpBatch();
  // Keep alive and handshake timeout; called once a second.
  void Housekeeping(uint64_t now_ms);

  const ClientSpec& spec() const { return spec_; }
  uint64_t sent() const { return sent_; }
  bool connected() const { return state_ == State::kConnected; }
  // True unless --window holds this publisher back.
  bool WindowOpen() const;
  bool closed() const { return state_ == State::kClosed; }
  // The topic of the first publish (for matching against subscriptions).
  const std::string& first_topic() const { return first_topic_; }
  const std::unordered_map<uint32_t, SequenceTracker>& trackers() const { return trackers_; }

  // Unsent bytes above which a publisher waits for the socket to drain.
  static constexpr size_t kHighWater = 256 * 1024;
  // Bytes of PUBLISH packets one max-rate batch encodes.
  static constexpr size_t kBatchBytes = 32 * 1024;
  // Paced messages one tick may send at most beyond those due in one tick:
  // its own and one it missed.
  static constexpr uint64_t kMaxCatchUp = 2;

  // Set by the Worker while this client waits in its ready list or for its
  // --window to open.
  bool queued_ready = false;
  bool queued_window = false;

 private:
  // kLeaving: DISCONNECT sent, waiting for the queued writes before closing.
  enum class State : uint8_t { kIdle, kTcp, kTls, kMqtt, kConnected, kLeaving, kClosed };

  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void OnPaceTimer(uv_timer_t* t);

  void OnTcpConnected();
  void OnBytes(const char* data, size_t len);
  void Parse(const uint8_t* data, size_t len, size_t* consumed);
  void OnPacket(uint8_t first_byte, std::span<const uint8_t> body);
  void OnControlPacket(const core::Packet& packet);
  void OnConnack(const core::Connack& connack);
  void OnPublish(const PublishView& view);
  void OnAck(uint8_t type, uint16_t packet_id);
  void SendConnect();
  void SendSubscribe();
  void BeginPublishing();
  void PublishDue();
  bool CanPublish() const;
  void EncodePublish();
  void QueueAck(uint8_t first_byte, uint16_t packet_id);
  void Flush();
  void WriteRaw(std::string& bytes);
  void OnWritable();
  void CheckDone();
  // Closes after an error; `why` is kept by the Worker for the summary.
  void Fail(bool by_broker, const std::string& why);

  Worker& worker_;
  ClientSpec spec_;
  State state_ = State::kIdle;
  core::UvHandle<uv_tcp_t> tcp_;
  core::UvHandle<uv_timer_t> pace_;
  std::unique_ptr<uv_connect_t> connect_req_;
  std::unique_ptr<TlsSession> tls_;
  std::string in_;    // bytes of an incomplete packet
  std::string out_;   // plaintext waiting for Flush()
  std::string plain_;  // TLS: plaintext of the current read

  core::Publish proto_;  // the publish being sent, payload stamped per message
  std::string first_topic_;
  bool topic_per_message_ = false;
  bool publishing_ = false;
  bool want_publishing_ = false;
  bool done_ = false;
  uint64_t sent_ = 0;
  uint32_t inflight_ = 0;
  uint16_t next_packet_id_ = 0;
  uint64_t pub_start_us_ = 0;  // uv_hrtime, in microseconds
  uint64_t per_tick_ = 1;      // paced messages due in one tick of pace_
  uint64_t missed_ticks_ = 0;  // -I ticks dropped after a stall (see PublishDue)
  uint64_t started_ms_ = 0;
  uint64_t last_write_ms_ = 0;
  std::unordered_map<uint32_t, SequenceTracker> trackers_;
};

}  // namespace ferry::bench

// UpstreamSession: the MQTT client side of a bridge's link, sans-I/O. Bytes
// from the upstream go in (Feed) and come out as events; what to send goes
// into output() for the transport to write; time goes in through Tick. It
// does not touch sockets or timers, so it is tested by feeding it packets
// (tests/unit/bridge/upstream_session_test.cpp), after
// redboltz/async_mqtt's protocol/connection.hpp.
//
// Built on core's codec (core/packet.h), which also gives a 3.1.1 bridge the
// mosquitto bridge bit (protocol level | 0x80): libmosquitto's client cannot
// send it (lib/send_connect.c sets it only when built into the broker), and
// it acknowledges a received PUBLISH as soon as its callback returns
// (lib/handle_publish.c), before a bridge could know the message is safe
// locally. Here acknowledgements wait for Acknowledge().
//
// Outgoing QoS 1/2 messages carry a token (the queue's sequence number) and
// complete with a Published event on PUBACK or PUBCOMP. Incoming QoS 1/2
// messages are acknowledged (PUBACK, PUBREC) when the bridge calls
// Acknowledge, in the order they arrived [MQTT-4.6.0-2]; a QoS 2 message
// received again before its PUBREL is not reported twice [MQTT-4.3.3-10].
//
// Packet identifiers. A message from the bridge's queue is sent with the
// identifier its caller gives (QueuePacketId of its seq, the same after a
// restart), so that a QoS 2 message in flight when this node died goes
// again under the identifier the upstream knows it by [MQTT-4.3.3]: a
// PUBLISH with DUP the upstream answers with PUBREC without delivering it
// twice, or a PUBREL. The session's own packets (SUBSCRIBE, the bridge's
// state message) take identifiers from kOwnPacketIdFirst up, which queue
// messages never use. For a QoS 2 message marked hold_pubrel the PUBREL
// waits for Release(): the caller first records durably that it is
// released, since after a PUBREL the message must never be published again.
//
// A PUBREL delivers only while the upstream keeps the session that sent the
// PUBREC. After a CONNACK with session present 0 (a failover to another
// server, or the upstream lost or expired our session) nothing from before
// is in flight: every message goes again as a new PUBLISH, and a PUBCOMP
// completes a message only after its PUBREC in this exchange, or after a
// PUBREL resent into a resumed session.
//
// Thread safety: none; the bridge's loop thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/message.h"
#include "core/packet.h"
#include "core/status.h"

namespace ferry::bridge {

struct UpstreamOptions {
  core::ProtocolVersion version = core::ProtocolVersion::kV5;
  bool bridge_bit = true;  // 3.1.1 only
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  uint16_t keepalive_s = 60;
  bool clean_start = false;
  uint32_t session_expiry_s = 0;  // v5
  uint16_t receive_maximum = 256;  // v5: most incoming QoS 1/2 unacknowledged
  uint16_t max_inflight = 256;     // outgoing QoS 1/2 window
  std::optional<core::Will> will;
  // v5: sent as user property kBridgeNodeProperty; "" = none.
  std::string node_name;
};

namespace upstream {

struct Connected {
  bool session_present = false;
  std::string upstream_node;  // from the CONNACK's kNodeNameProperty; "" if none
};
struct Refused {
  ReasonCode reason;
  std::string why;
};
struct Published {
  uint64_t token;
  ReasonCode reason;  // >= 0x80: the upstream refused it (v5)
};
// PUBREC for a QoS 2 message sent with hold_pubrel: call Release() once it
// is recorded.
struct Received {
  uint64_t token;
  uint16_t packet_id;
};
struct Message {
  core::Publish publish;
};
struct Subscribed {
  uint16_t packet_id;
  std::vector<ReasonCode> reasons;
};
struct ServerDisconnect {
  ReasonCode reason;
  std::string why;
};

}  // namespace upstream

using UpstreamEvent = std::variant<upstream::Connected, upstream::Refused, upstream::Published,
                                   upstream::Received, upstream::Message, upstream::Subscribed,
                                   upstream::ServerDisconnect>;

// Identifiers below this one are for queue messages (QueuePacketId); the
// session's own packets use it and the ones above.
constexpr uint16_t kOwnPacketIdFirst = 65280;

// The packet identifier of queue message `seq` (>= 1): 1 .. kOwnPacketIdFirst - 1,
// in turn.
constexpr uint16_t QueuePacketId(uint64_t seq) {
  return static_cast<uint16_t>(1 + (seq - 1) % (kOwnPacketIdFirst - 1));
}

// An outgoing QoS 1/2 message still unacknowledged, for a resend after a
// reconnect that resumed the session.
struct UpstreamInflight {
  uint16_t packet_id = 0;
  uint64_t token = 0;
  uint8_t qos = 0;
  bool released = false;  // QoS 2: PUBREC received, PUBREL sent
};

// What to put in one outgoing PUBLISH.
struct OutgoingPublish {
  uint64_t token = 0;
  const core::Message* message = nullptr;  // topic, payload, props, expiry
  uint8_t qos = 0;
  bool retain = false;
  // v5: this node's name, announced after the message's own path in
  // kNodePathProperty; empty = the message's properties as they are.
  std::string_view via;
  // For QoS > 0: the packet identifier (below kOwnPacketIdFirst), or 0 for
  // one of the session's own.
  uint16_t packet_id = 0;
  // It may have been sent before (a restart): DUP [MQTT-3.3.1-1].
  bool dup = false;
  // QoS 2: PUBREC gives a Received event and the PUBREL waits for Release.
  bool hold_pubrel = false;
};

class UpstreamSession {
 public:
  explicit UpstreamSession(UpstreamOptions options);

  const UpstreamOptions& options() const { return options_; }
  // Changes what the next Connect() sends (e.g. without the bridge bit).
  UpstreamOptions& mutable_options() { return options_; }

  // Starts a connection: forgets the previous one's packet state except
  // outgoing messages in flight when the session may resume (clean_start
  // false), and queues CONNECT. `now_ms` is the loop's clock.
  void Connect(uint64_t now_ms);

  // Decodes every complete packet in `bytes` (kept across calls) and appends
  // an event per packet that matters. Errors: the upstream broke the
  // protocol or sent a malformed packet (the reason code says which); the
  // link must be closed.
  ferry::Status Feed(std::span<const uint8_t> bytes, uint64_t now_ms,
                     std::vector<UpstreamEvent>& events);

  bool connected() const { return connected_; }
  // The last CONNACK said session present: the upstream kept what was in
  // flight, and a message released before (PUBREC) may go as PUBREL alone.
  bool resumed() const { return resumed_; }
  // Room for another outgoing QoS 1/2 message.
  bool CanSendQos() const { return inflight_.size() < window_; }
  // No outgoing message in flight uses `packet_id`.
  bool PacketIdFree(uint16_t packet_id) const { return !inflight_.contains(packet_id); }
  uint16_t window() const { return window_; }
  size_t inflight_count() const { return inflight_.size(); }
  // The upstream's limits from CONNACK.
  uint8_t max_qos() const { return max_qos_; }
  bool retain_available() const { return retain_available_; }
  uint32_t max_packet_size() const { return max_packet_size_; }

  // Queues a PUBLISH. QoS is lowered to the upstream's maximum and RETAIN
  // dropped if it has none. Returns false (nothing queued) if the packet
  // would exceed the upstream's maximum packet size: the caller drops it.
  // REQUIRES: connected(); for QoS > 0, CanSendQos() and, if p.packet_id
  // is set, PacketIdFree(p.packet_id).
  bool Publish(const OutgoingPublish& p, uint64_t now_ms);
  // QoS 2 message `token`, which the upstream received (PUBREC) before, is
  // released: PUBREL under `packet_id`, then a Published event on PUBCOMP.
  // For a message released before a restart.
  // REQUIRES: connected(), resumed(), CanSendQos(), PacketIdFree(packet_id).
  void PublishReleased(uint64_t token, uint16_t packet_id, uint64_t now_ms);
  // Releases message `token` after its Received event: PUBREL now if
  // connected, else with the resend after a resumed session. Returns false
  // and does nothing if `packet_id` is no longer that message's or its
  // PUBREC is not from the session in use (it did not resume since).
  bool Release(uint64_t token, uint16_t packet_id, uint64_t now_ms);
  // After a resumed session: the messages in flight, oldest first. The
  // caller resends each with Resend. Empty after a session that did not
  // resume: the caller publishes everything again as new.
  std::vector<UpstreamInflight> InflightForResend() const;
  // Resends one of them: PUBLISH with DUP and its packet identifier, or
  // PUBREL if it was released [MQTT-4.4.0-1].
  bool Resend(const UpstreamInflight& entry, const OutgoingPublish& p, uint64_t now_ms);

  // Queues SUBSCRIBE for `filters` (filter, QoS) with No Local and Retain As
  // Published set (v5). Returns its packet identifier.
  uint16_t Subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters);

  // The local node took incoming message `packet_id`: acknowledge it once
  // every message received before it is acknowledged too.
  void Acknowledge(uint16_t packet_id);

  // Keep alive. Returns false if the upstream has been silent too long (a
  // PINGREQ went unanswered for a keep alive): close the link.
  bool Tick(uint64_t now_ms);

  // Queues DISCONNECT (normal).
  void Disconnect();

  // Bytes to write; the transport takes them.
  std::string& output() { return out_; }

 private:
  struct Inbound {
    uint16_t packet_id;
    uint8_t qos;
    bool acknowledged = false;
  };
  struct OutState {
    uint64_t token;
    uint8_t qos;
    bool released;
    uint64_t order;  // key in inflight_order_
    bool hold_pubrel = false;
    bool received = false;  // PUBREC came, PUBREL held until Release()
  };

  void Send(const core::Packet& packet);
  void HandlePacket(core::Packet&& packet, std::vector<UpstreamEvent>& events,
                    ferry::Status* error);
  void OnConnack(core::Connack&& ack, std::vector<UpstreamEvent>& events, ferry::Status* error);
  void OnPublish(core::Publish&& p, std::vector<UpstreamEvent>& events, ferry::Status* error);
  void OnAck(const core::PubAck& ack, std::vector<UpstreamEvent>& events, ferry::Status* error);
  void FlushAcknowledgements();
  // No session to resume (clean start, or CONNACK with session present 0):
  // the upstream knows none of our packet identifiers, in either direction.
  void ForgetSession();
  uint16_t NextPacketId();
  bool EncodePublish(const OutgoingPublish& p, uint16_t packet_id, uint8_t qos, bool dup);

  UpstreamOptions options_;
  core::ProtocolVersion version_;
  bool connected_ = false;
  bool connack_pending_ = false;
  bool resumed_ = false;
  std::string out_;
  std::vector<uint8_t> in_;
  size_t in_pos_ = 0;

  uint16_t window_ = 0;
  uint8_t max_qos_ = 2;
  bool retain_available_ = true;
  uint32_t max_packet_size_ = 268435460;
  uint16_t next_packet_id_ = kOwnPacketIdFirst;
  std::map<uint16_t, OutState> inflight_;        // outgoing QoS 1/2
  std::map<uint64_t, uint16_t> inflight_order_;  // send order -> packet id
  uint64_t send_counter_ = 0;
  std::set<uint16_t> subscribe_ids_;
  std::deque<Inbound> inbound_;        // awaiting local delivery, arrival order
  std::set<uint16_t> qos2_received_;   // PUBREC sent, awaiting PUBREL

  // Reused for the common PUBLISH whose only property is the node path, so
  // that encoding it allocates nothing.
  core::Properties path_only_;

  uint64_t last_tx_ms_ = 0;
  uint64_t last_rx_ms_ = 0;
  uint64_t ping_sent_ms_ = 0;  // 0: no PINGREQ outstanding
};

}  // namespace ferry::bridge

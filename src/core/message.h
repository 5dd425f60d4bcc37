// The application message as it travels through the broker.
//
// A published message is built once and shared, immutable, by every
// subscriber it goes to (std::shared_ptr<const Message>). What differs per
// subscriber (granted QoS, packet identifier, DUP, subscription identifiers,
// topic alias, remaining expiry) lives beside it in the session, not in it.
//
// Messages that travel between nodes (bridges, later the cluster) carry the
// nodes they passed through, for loop protection. On the wire between nodes
// that is the MQTT v5 user property kNodePathProperty, e.g.
//   ("ferry-path", "edge1@10.0.0.5,hub@10.0.0.1")
// for a message published on edge1 and forwarded by edge1, then by hub: the
// first node is where the message was published (its origin), the number of
// nodes is its hop count. The property stays in `props` as it arrived (so it
// is stored with the message and passed on to v5 subscribers, including
// bridges of other brokers); `path` is its parsed form.
//
// Thread safety: a Message is immutable once shared; the helpers are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/packet.h"
#include "core/status.h"

namespace ferry::core {

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;      // QoS the publisher sent with
  bool retain = false;  // retain flag as published
  // v5 properties that travel with the message: payload format indicator,
  // content type, response topic, correlation data, user properties. Never
  // subscription identifiers or topic alias; message expiry is kept below.
  Properties props;
  // Absolute expiry in Unix milliseconds; 0 when the message never expires.
  uint64_t expiry_at_ms = 0;
  // Unix milliseconds when the broker received it (for remaining expiry).
  uint64_t received_at_ms = 0;
  // Client identifier of the publisher (No Local), empty for broker messages;
  // for a message a route hook's owner injected, the owner's identity.
  std::string origin_client;
  // Nodes the message was forwarded by, oldest first (see the top of this
  // file); empty for a message published on this node.
  std::vector<std::string> path;
  // The route hook owner that injected the message on this node (the
  // cluster, for a message a peer forwarded), empty for one a client
  // published: hooks of that owner are not given it, so a forwarded message
  // is never forwarded on, while origin_client stays the real publisher's.
  std::string injected_by;
  // For this node alone: its subscribers and its hooks get it, but not a
  // hook that carries messages to other nodes (RouteHook::CarriesToPeers),
  // and a retained one is not replicated. A bridge that runs on every node
  // of a cluster marks what it pulls down so: each node's bridge delivers
  // it to that node's subscribers, once each.
  bool node_local = false;
};

using MessagePtr = std::shared_ptr<const Message>;

// The wall clock in Unix milliseconds, the unit of received_at_ms and
// expiry_at_ms.
uint64_t UnixNowMs();
// The wall clock in Unix microseconds.
uint64_t UnixNowUs();

// Takes what a message carries from the v5 properties of a PUBLISH or a will
// (`from` is left moved from): payload format indicator, content type,
// response topic, correlation data, user properties; the Message Expiry
// Interval as expiry_at_ms counted from m.received_at_ms; and the node path
// the user properties carry.
void TakeMessageProperties(Properties&& from, Message& m);

// The properties a message carries (payload format indicator, content type,
// response topic, correlation data, user properties in order) as a blob the
// durable store keeps on disk and cluster peers send each other; others are
// not kept. "" when none of those is set.
//
//   byte 0     format version (1)
//   byte 1     presence flags: 0x01 payload format indicator, 0x02 content
//              type, 0x04 response topic, 0x08 correlation data, 0x10 user
//              properties; other bits zero
//   then, for each flag set, in that order:
//     payload format indicator   1 byte
//     string / binary fields     u32 big-endian length, then the bytes
//     user properties            u32 count, then count x (key, value) as above
std::string EncodeMessageProperties(const Properties& props);
// Decodes a blob; the bytes are untrusted. "" decodes to no properties.
// Errors: Corruption saying what is wrong and at which offset (unknown
// version, unknown flag, a length past the end, trailing bytes).
Result<Properties> DecodeMessageProperties(std::string_view blob);

// The user property that carries Message::path between nodes.
inline constexpr std::string_view kNodePathProperty = "ferry-path";
// A ferry bridge names its own node in a v5 CONNECT with this user
// property; a ferry node answers it with its name in kNodeNameProperty in
// the CONNACK, so the bridge can add the upstream to the path of the
// messages it pulls down from it.
inline constexpr std::string_view kBridgeNodeProperty = "ferry-bridge";
inline constexpr std::string_view kNodeNameProperty = "ferry-node";

// Splits the value of a kNodePathProperty ("a@h,b@h") into node names;
// empty names (",,") are skipped.
std::vector<std::string> ParseNodePath(std::string_view value);
// The inverse: names joined by ','.
std::string FormatNodePath(const std::vector<std::string>& path);
// The path carried by `props` (the last kNodePathProperty wins), or empty.
std::vector<std::string> NodePathOf(const Properties& props);
// Replaces every kNodePathProperty in `props` by one carrying `path` (none if
// `path` is empty), keeping the other user properties in order.
void SetNodePath(Properties& props, const std::vector<std::string>& path);

}  // namespace ferry::core

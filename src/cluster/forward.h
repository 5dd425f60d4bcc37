// The payloads of the frames that carry messages between cluster peers.
//
// kForward: one message, matched on the sending node, for the receiving
// node to route to its own subscribers (never on to other peers):
//
//   u64   seq          0 for QoS 0; else 1, 2, ... per sender incarnation
//                      and receiver: what the receiver acknowledges and
//                      tells duplicates by after a reconnect
//   u8    delivery     0x01 plain: to the receiver's subscribers, but not
//                      its shared groups; others reserved, must be 0
//   u16   group count, then that many str: shared groups ("$share/g/f")
//                      the sender chose the receiver for; it delivers to
//                      one local member of each
//   then the message body, the same bytes for every peer:
//   u8    qos          0..2
//   u8    flags        0x01 retain; others reserved, must be 0
//   u64   expiry_at_ms, u64 received_at_ms   (core/message.h)
//   str   topic, str origin_client
//   blob  properties (core::EncodeMessageProperties; the node path among
//         them, as on an MQTT link), blob payload
//
// kForwardAck: u16 count, then count x (u64 seq, u8 reason code): the
// receiver routed those messages (0x00) or could not keep them (e.g. 0x97,
// its disk is full): the sender then never acknowledges its publisher.
//
// Sans-I/O; every parse treats its bytes as untrusted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/message.h"
#include "core/status.h"

namespace ferry::cluster {

class FieldReader;
class FieldWriter;

// The message body fields (from qos to payload, as above), for every frame
// that carries a message.
void WriteMessageBody(FieldWriter& w, const core::Message& m);
// Errors: Corruption naming the field that does not fit, a QoS above 2,
// reserved flag bits, an invalid topic name, properties that do not decode.
Status ReadMessageBody(FieldReader& r, core::Message& m);

// The body of a kForward frame for `m`, after its head.
std::string EncodeForwardBody(const core::Message& m);
// The head that goes before a body: seq and delivery.
std::string EncodeForwardHead(uint64_t seq, bool plain = true,
                              std::span<const std::string> groups = {});

struct ForwardFrame {
  uint64_t seq = 0;
  bool plain = true;
  std::vector<std::string> groups;
  core::Message message;
};
// Errors: Corruption naming the field that does not fit, an invalid topic
// name, a QoS above 2, reserved flag bits, a group that is no shared
// subscription, properties that do not decode.
Result<ForwardFrame> ParseForward(std::span<const uint8_t> payload);

using ForwardAcks = std::vector<std::pair<uint64_t, uint8_t>>;  // seq, reason code
std::string EncodeForwardAcks(const ForwardAcks& acks);
Result<ForwardAcks> ParseForwardAcks(std::span<const uint8_t> payload);

}  // namespace ferry::cluster

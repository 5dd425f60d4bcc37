// Per-packet decoders behind core::Decode. Private to the codec.
//
// Each reads the variable header and payload of one packet type from `r`,
// field by field in wire order, and returns at the first failure with the
// reason code to answer with. Fixed-header flags other than PUBLISH's have
// already been checked, and trailing bytes are checked by the caller.
#pragma once

#include <cstdint>

#include "core/codec_reader.h"
#include "core/packet.h"

namespace ferry::core::codec {

Status DecodeConnect(Reader& r, Connect& out);
Status DecodeConnack(Reader& r, ProtocolVersion v, Connack& out);
Status DecodePublish(Reader& r, uint8_t flags, ProtocolVersion v, Publish& out);
Status DecodePubAck(Reader& r, PacketType type, ProtocolVersion v, PubAck& out);
Status DecodeSubscribe(Reader& r, ProtocolVersion v, Subscribe& out);
Status DecodeSuback(Reader& r, ProtocolVersion v, Suback& out);
Status DecodeUnsubscribe(Reader& r, ProtocolVersion v, Unsubscribe& out);
Status DecodeUnsuback(Reader& r, ProtocolVersion v, Unsuback& out);
Status DecodeDisconnect(Reader& r, ProtocolVersion v, Disconnect& out);
Status DecodeAuth(Reader& r, ProtocolVersion v, Auth& out);

// A packet identifier, which must not be 0 [MQTT-2.2.1-3]. A 0 is read
// correctly but not allowed, so it is a Protocol Error (0x82) in the sense of
// MQTT 5.0 section 1.2, "data that is not allowed by the protocol".
Status ReadPacketId(Reader& r, uint16_t& id);

// True if `code` is one the specification lists for packets of `type`
// (MQTT 5.0 section 2.4 and the reason code table of each packet).
bool IsReasonCodeAllowed(PacketType type, uint8_t code);

}  // namespace ferry::core::codec

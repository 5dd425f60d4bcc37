// Per-packet encoders behind core::Encode and core::EncodedSize. Private to
// the codec.
//
// For every packet type: FirstByte() is the fixed header's first byte,
// BodySize() the remaining length and PutBody() appends exactly BodySize()
// bytes. They assert on packets we could not have meant to build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/packet.h"

namespace ferry::core::codec {

#define FERRY_CODEC_DECLARE_ENCODER(T)              \
  uint8_t FirstByte(const T& p, ProtocolVersion v); \
  size_t BodySize(const T& p, ProtocolVersion v);   \
  void PutBody(std::string& out, const T& p, ProtocolVersion v)

FERRY_CODEC_DECLARE_ENCODER(Connect);
FERRY_CODEC_DECLARE_ENCODER(Connack);
FERRY_CODEC_DECLARE_ENCODER(Publish);
FERRY_CODEC_DECLARE_ENCODER(PubAck);
FERRY_CODEC_DECLARE_ENCODER(Subscribe);
FERRY_CODEC_DECLARE_ENCODER(Suback);
FERRY_CODEC_DECLARE_ENCODER(Unsubscribe);
FERRY_CODEC_DECLARE_ENCODER(Unsuback);
FERRY_CODEC_DECLARE_ENCODER(Pingreq);
FERRY_CODEC_DECLARE_ENCODER(Pingresp);
FERRY_CODEC_DECLARE_ENCODER(Disconnect);
FERRY_CODEC_DECLARE_ENCODER(Auth);

#undef FERRY_CODEC_DECLARE_ENCODER

}  // namespace ferry::core::codec

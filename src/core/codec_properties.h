// MQTT v5 properties (MQTT 5.0 section 2.2.2): decoding with per-packet
// legality checks, sizing and encoding. Private to the codec.
#pragma once

#include <cstddef>
#include <string>

#include "core/codec_reader.h"
#include "core/packet.h"

namespace ferry::core::codec {

// Where a property block sits; each place allows its own set of properties
// (MQTT 5.0 table 2-4).
enum class PropertyScope : uint8_t {
  kConnect,
  kConnack,
  kPublish,
  kWill,
  kPubResponse,  // PUBACK, PUBREC, PUBREL, PUBCOMP
  kSubscribe,
  kSuback,
  kUnsubscribe,
  kUnsuback,
  kDisconnect,
  kAuth,
};

// Reads a property length and the properties it covers into `props`.
// Errors: 0x81 for a truncated block, an unknown identifier or one not
// allowed in `scope`; 0x82 for a repeated single-occurrence property or a
// value the specification forbids.
Status DecodeProperties(Reader& r, PropertyScope scope, Properties& props);

// Bytes of the property block after its length prefix.
// REQUIRES: every property present is allowed in `scope` (asserted).
size_t PropertiesBodySize(const Properties& props, PropertyScope scope);

// The whole block: length prefix and properties.
size_t PropertiesSize(const Properties& props, PropertyScope scope);

// Appends length prefix and properties, in identifier order.
void PutProperties(std::string& out, const Properties& props, PropertyScope scope);

}  // namespace ferry::core::codec

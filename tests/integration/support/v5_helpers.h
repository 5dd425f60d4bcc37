// MQTT 5.0 properties for byte-level tests of subscriptions, retained
// messages, wills and the v5 features: writers for every property a client
// may send, a reader for every property a server may send (user properties
// in order, repeated subscription identifiers kept), and the v5 parts of the
// CONNACK, DISCONNECT and SUBACK/UNSUBACK that mqtt_wire.h leaves out.
// Written from MQTT 5.0 section 2.2.2 and chapter 3, independent of ferry's
// codec.
//
// Writers take what the test says, without validation; readers return
// nullopt on anything that does not fit and never crash on it.
//
// Thread: any; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "types.h"

namespace ferry::testing::v5 {

// Property identifiers, MQTT 5.0 section 2.2.2.2.
enum PropertyId : uint8_t {
  kPayloadFormatIndicator = 0x01,
  kMessageExpiryInterval = 0x02,
  kContentType = 0x03,
  kResponseTopic = 0x08,
  kCorrelationData = 0x09,
  kSubscriptionIdentifier = 0x0B,
  kSessionExpiryInterval = 0x11,
  kAssignedClientIdentifier = 0x12,
  kServerKeepAlive = 0x13,
  kAuthenticationMethod = 0x15,
  kAuthenticationData = 0x16,
  kRequestProblemInformation = 0x17,
  kWillDelayInterval = 0x18,
  kRequestResponseInformation = 0x19,
  kResponseInformation = 0x1A,
  kServerReference = 0x1C,
  kReasonString = 0x1F,
  kReceiveMaximum = 0x21,
  kTopicAliasMaximum = 0x22,
  kTopicAlias = 0x23,
  kMaximumQos = 0x24,
  kRetainAvailable = 0x25,
  kUserProperty = 0x26,
  kMaximumPacketSize = 0x27,
  kWildcardSubscriptionAvailable = 0x28,
  kSubscriptionIdentifierAvailable = 0x29,
  kSharedSubscriptionAvailable = 0x2A,
};

// Property writers: append the identifier, then the value in its wire form,
// to a property list (which the packet builders prefix with its length).
void AddByte(Bytes* props, PropertyId id, uint8_t value);
void AddU16(Bytes* props, PropertyId id, uint16_t value);
void AddU32(Bytes* props, PropertyId id, uint32_t value);
void AddVarInt(Bytes* props, PropertyId id, uint32_t value);  // REQUIRES: value < 2^28
// UTF-8 string and binary data share the wire form: two-byte length, bytes.
void AddString(Bytes* props, PropertyId id, std::string_view value);
void AddUserProperty(Bytes* props, std::string_view key, std::string_view value);

using UserProperties = std::vector<std::pair<std::string, std::string>>;

// One property as received.
struct Property {
  uint8_t id = 0;
  uint32_t number = 0;  // byte, two/four byte and variable byte integers
  std::string text;     // UTF-8 string or binary data; a user property's key
  std::string value;    // a user property's value
};

// A property list as received, in wire order.
class PropertyList {
 public:
  // Parses a list without its leading length; nullopt on an unknown
  // identifier or a value that overruns the list.
  static std::optional<PropertyList> Parse(const Bytes& bytes);

  bool Has(uint8_t id) const;
  // The first integer property `id`.
  std::optional<uint32_t> Number(uint8_t id) const;
  // Every integer property `id`, in order (subscription identifiers).
  std::vector<uint32_t> Numbers(uint8_t id) const;
  // The first string or binary property `id`.
  std::optional<std::string> Text(uint8_t id) const;
  UserProperties User() const;
  const std::vector<Property>& all() const { return all_; }

 private:
  std::vector<Property> all_;
};

// Parses `raw` as a PUBLISH's property list; an empty list if the bytes do
// not parse (a failure then names the bytes).
PropertyList PublishProperties(const Bytes& raw_properties);

// A v5 CONNACK: acknowledge flags, reason code, properties.
struct ConnackPacket {
  bool session_present = false;
  uint8_t code = 0;
  PropertyList props;
};
std::optional<ConnackPacket> ParseConnack(const Bytes& raw);

// A v5 DISCONNECT: reason code (0 when the body is empty) and properties.
struct DisconnectPacket {
  uint8_t code = 0;
  PropertyList props;
};
std::optional<DisconnectPacket> ParseDisconnect(const Bytes& raw);

// A v5 SUBACK or UNSUBACK: packet identifier, properties, reason codes.
struct SubAckPacket {
  uint8_t type = 0;
  uint16_t packet_id = 0;
  PropertyList props;
  std::vector<uint8_t> codes;
};
std::optional<SubAckPacket> ParseSubAck(const Bytes& raw);

// AUTH with `reason` and `props` (MQTT 5.0 section 3.15).
Bytes Auth(uint8_t reason, const Bytes& props);

}  // namespace ferry::testing::v5

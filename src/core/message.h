// The application message as it travels through the broker.
//
// A published message is built once and shared, immutable, by every
// subscriber it goes to (std::shared_ptr<const Message>). What differs per
// subscriber (granted QoS, packet identifier, DUP, subscription identifiers,
// topic alias, remaining expiry) lives beside it in the session, not in it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/packet.h"

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
  // Client identifier of the publisher (No Local), empty for broker messages.
  std::string origin_client;
};

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace ferry::core

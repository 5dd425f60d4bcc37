// Byte-level helpers for the connect, auth and publish integration tests, on
// top of mqtt_wire.h and RawClient: CONNECT packets with any variable header
// (a wrong protocol name or level, reserved flags, MQTT 3.1's "MQIsdp"), v5
// property lists written and read, acknowledgements parsed with their reason
// codes, and the waits those tests repeat (refused then closed, closed without
// an answer, no packet for a while, the node still serving a new client).
//
// Like mqtt_wire.h, builders take what the test says without validation, and
// parsers return nullopt on anything that does not fit.
//
// Thread: any; RawClient arguments follow RawClient's own rule.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt_wire.h"
#include "raw_client.h"
#include "types.h"
#include "v5_helpers.h"

namespace ferry::testing {

// v5 property identifiers, writers and the received property list come from
// v5_helpers.h.
namespace prop = v5;
using Properties = v5::PropertyList;

// The variable header of a CONNECT, field by field (MQTT 3.1.1 and 5.0
// section 3.1.2; MQTT 3.1 "MQIsdp", level 3, has the same layout).
struct ConnectHeader {
  std::string protocol_name = "MQTT";
  uint8_t level = 4;
  uint8_t flags = 0x02;  // clean session / clean start
  uint16_t keepalive_s = 60;
};

// CONNECT with exactly `header`, an empty property list when the level is 5,
// then each of `payload` as a two-byte-length string (client identifier, will
// topic, ..., password, in the order the flags announce).
Bytes HeaderConnect(const ConnectHeader& header, const std::vector<std::string>& payload);

// PUBLISH fields in the order tests usually give them.
wire::PublishFields PublishOf(std::string topic, std::string payload, int qos,
                              uint16_t packet_id = 0, bool dup = false);

// A CONNACK with its v5 properties (empty for v3).
struct ConnackFields {
  uint8_t flags = 0;  // the acknowledge flags byte, reserved bits included
  uint8_t code = 0;
  Properties props;
};
std::optional<ConnackFields> ParseConnackFields(MqttVersion v, const Bytes& raw);

// PUBACK, PUBREC, PUBREL or PUBCOMP; a v5 short form reads as reason 0.
struct AckFields {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint16_t packet_id = 0;
  uint8_t reason = 0;
};
std::optional<AckFields> ParseAck(MqttVersion v, const Bytes& raw);

// Opens a connection to `port` and completes CONNECT/CONNACK with code 0.
::testing::AssertionResult RawConnect(RawClient& c, uint16_t port,
                                      const wire::ConnectFields& fields);

// Sends a CONNECT and returns the CONNACK (nullopt, with the cause in a test
// failure, if none arrives).
std::optional<ConnackFields> ConnectAndReadConnack(RawClient& c, uint16_t port,
                                                   const wire::ConnectFields& fields);

// Succeeds if the next packet is a CONNACK with `code` and the server then
// closes the connection [MQTT-3.2.2-5] (3.1.1), [MQTT-3.2.2-7] (5.0).
::testing::AssertionResult RefusedWith(RawClient& c, MqttVersion v, uint8_t code,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);

// Succeeds if the server closes the connection without sending anything.
::testing::AssertionResult ClosedSilently(RawClient& c,
                                          std::chrono::milliseconds timeout = kDefaultTimeout);

// Succeeds if the server closes the connection without accepting the CONNECT:
// silently, or for v5 after a CONNACK with a reason code of 0x80 or more,
// which MQTT 5.0 (section 4.13) allows before closing on a malformed packet.
::testing::AssertionResult ClosedWithoutAccepting(
    RawClient& c, MqttVersion v, std::chrono::milliseconds timeout = kDefaultTimeout);

// Succeeds if the next packet is a v5 DISCONNECT with `reason` and the server
// then closes the connection.
::testing::AssertionResult DisconnectedWith(RawClient& c, uint8_t reason,
                                            std::chrono::milliseconds timeout = kDefaultTimeout);

// Succeeds if nothing arrives for `quiet` and the connection stays open.
::testing::AssertionResult NothingArrives(RawClient& c, std::chrono::milliseconds quiet);

// Sends PINGREQ and expects PINGRESP as the next packet [MQTT-3.12.4-1].
::testing::AssertionResult PingPong(RawClient& c,
                                    std::chrono::milliseconds timeout = kDefaultTimeout);

// Subscribes to one filter and returns the SUBACK's codes.
std::optional<std::vector<uint8_t>> RawSubscribe(RawClient& c, MqttVersion v, uint16_t packet_id,
                                                 const std::vector<wire::Subscription>& subs);

// Reads the next PUBLISH (a failure if anything else arrives first).
std::optional<wire::ReceivedPublish> NextPublish(
    RawClient& c, MqttVersion v, std::chrono::milliseconds timeout = kDefaultTimeout);

// Publishes `f` and completes its exchange: PUBACK at QoS 1; PUBREC, PUBREL,
// PUBCOMP at QoS 2. Fails on a reason code of 0x80 or more, or anything else
// arriving in between.
::testing::AssertionResult PublishAndComplete(RawClient& c, MqttVersion v,
                                              const wire::PublishFields& f,
                                              std::chrono::milliseconds timeout = kDefaultTimeout);

// Reads until `n` PUBLISHes have arrived, acknowledging each as a
// well-behaved client does (PUBACK; PUBREC, and PUBCOMP for the PUBREL), and
// appends them to *out in arrival order. Returns once every QoS 2 exchange
// it saw is complete.
::testing::AssertionResult CollectPublishes(RawClient& c, MqttVersion v, size_t n,
                                            std::vector<wire::ReceivedPublish>* out,
                                            std::chrono::milliseconds timeout = kDefaultTimeout);

// A fresh client (both 3.1.1 and 5.0) can still connect and ping: the check
// after any abuse.
::testing::AssertionResult NodeServesNewClients(uint16_t port);

// v3.1.1 or v5 for test names and traces.
const char* VersionName(MqttVersion v);

}  // namespace ferry::testing

#include "connect_helpers.h"

#include <algorithm>
#include <string>

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

std::string Describe(const Bytes& raw) { return raw.empty() ? "nothing" : wire::Hex(raw); }

}  // namespace

Bytes HeaderConnect(const ConnectHeader& header, const std::vector<std::string>& payload) {
  Bytes body;
  wire::AppendString(&body, header.protocol_name);
  body.push_back(header.level);
  body.push_back(header.flags);
  wire::AppendU16(&body, header.keepalive_s);
  if (header.level == 5) body.push_back(0);  // property length
  for (const std::string& field : payload) wire::AppendString(&body, field);
  return wire::Frame(wire::kConnect << 4, body);
}

wire::PublishFields PublishOf(std::string topic, std::string payload, int qos, uint16_t packet_id,
                              bool dup) {
  wire::PublishFields f;
  f.topic = std::move(topic);
  f.payload = std::move(payload);
  f.qos = qos;
  f.packet_id = packet_id;
  f.dup = dup;
  return f;
}

std::optional<ConnackFields> ParseConnackFields(MqttVersion v, const Bytes& raw) {
  const std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p || p->type != wire::kConnack || p->flags != 0) return std::nullopt;
  wire::Reader in(p->body);
  ConnackFields out;
  if (!in.U8(&out.flags) || !in.U8(&out.code)) return std::nullopt;
  if (v == MqttVersion::kV5) {
    Bytes props;
    if (!in.Properties(&props)) return std::nullopt;
    std::optional<Properties> parsed = Properties::Parse(props);
    if (!parsed) return std::nullopt;
    out.props = std::move(*parsed);
  }
  if (!in.AtEnd()) return std::nullopt;
  return out;
}

std::optional<AckFields> ParseAck(MqttVersion v, const Bytes& raw) {
  const std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p || p->type < wire::kPuback || p->type > wire::kPubcomp) return std::nullopt;
  AckFields out;
  out.type = p->type;
  out.flags = p->flags;
  wire::Reader in(p->body);
  if (!in.U16(&out.packet_id)) return std::nullopt;
  if (v == MqttVersion::kV5 && !in.AtEnd()) in.U8(&out.reason);
  return out;
}

::testing::AssertionResult RawConnect(RawClient& c, uint16_t port,
                                      const wire::ConnectFields& fields) {
  if (auto connected = c.Connect(port); !connected) return connected;
  return c.MqttConnect(fields);
}

std::optional<ConnackFields> ConnectAndReadConnack(RawClient& c, uint16_t port,
                                                   const wire::ConnectFields& fields) {
  if (auto connected = c.Connect(port); !connected) {
    ADD_FAILURE() << connected.message();
    return std::nullopt;
  }
  if (auto sent = c.Send(wire::Connect(fields)); !sent) {
    ADD_FAILURE() << sent.message();
    return std::nullopt;
  }
  const std::optional<Bytes> raw = c.ReadPacket();
  if (!raw) {
    ADD_FAILURE() << "no CONNACK: " << c.error();
    return std::nullopt;
  }
  std::optional<ConnackFields> connack = ParseConnackFields(fields.version, *raw);
  if (!connack) ADD_FAILURE() << "not a CONNACK: " << wire::Hex(*raw);
  return connack;
}

::testing::AssertionResult RefusedWith(RawClient& c, MqttVersion v, uint8_t code,
                                       milliseconds timeout) {
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (!raw) return ::testing::AssertionFailure() << "no CONNACK: " << c.error();
  const std::optional<ConnackFields> connack = ParseConnackFields(v, *raw);
  if (!connack) return ::testing::AssertionFailure() << "not a CONNACK: " << wire::Hex(*raw);
  if (connack->code != code) {
    return ::testing::AssertionFailure()
           << "CONNACK code 0x" << std::hex << int{connack->code} << ", expected 0x" << int{code};
  }
  // Session present is 0 on a refused connection [MQTT-3.2.2-4] (3.1.1),
  // [MQTT-3.2.2-6] (5.0).
  if (connack->flags != 0) {
    return ::testing::AssertionFailure() << "CONNACK flags " << wire::Hex(*raw);
  }
  if (!c.IsClosed(timeout)) {
    return ::testing::AssertionFailure() << "still open after the refusing CONNACK: " << c.error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ClosedSilently(RawClient& c, milliseconds timeout) {
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (raw) return ::testing::AssertionFailure() << "received " << Describe(*raw);
  if (!c.IsClosed(milliseconds(0))) {
    return ::testing::AssertionFailure()
           << "still open after " << timeout.count() << " ms (" << c.error() << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ClosedWithoutAccepting(RawClient& c, MqttVersion v,
                                                  milliseconds timeout) {
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (raw) {
    const std::optional<ConnackFields> connack = ParseConnackFields(v, *raw);
    if (v != MqttVersion::kV5 || !connack || connack->code < 0x80) {
      return ::testing::AssertionFailure() << "received " << wire::Hex(*raw);
    }
    if (!c.IsClosed(timeout)) {
      return ::testing::AssertionFailure() << "still open after the refusing CONNACK";
    }
    return ::testing::AssertionSuccess();
  }
  if (!c.IsClosed(milliseconds(0))) {
    return ::testing::AssertionFailure()
           << "still open after " << timeout.count() << " ms (" << c.error() << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult DisconnectedWith(RawClient& c, uint8_t reason, milliseconds timeout) {
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (!raw) return ::testing::AssertionFailure() << "no DISCONNECT: " << c.error();
  const std::optional<uint8_t> got = wire::ParseDisconnect(*raw);
  if (!got) return ::testing::AssertionFailure() << "not a DISCONNECT: " << wire::Hex(*raw);
  if (*got != reason) {
    return ::testing::AssertionFailure()
           << "DISCONNECT reason 0x" << std::hex << int{*got} << ", expected 0x" << int{reason};
  }
  if (!c.IsClosed(timeout)) {
    return ::testing::AssertionFailure() << "still open after DISCONNECT: " << c.error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NothingArrives(RawClient& c, milliseconds quiet) {
  const std::optional<Bytes> raw = c.ReadPacket(quiet);
  if (raw) return ::testing::AssertionFailure() << "unexpected packet " << wire::Hex(*raw);
  if (c.IsClosed(milliseconds(0))) {
    return ::testing::AssertionFailure() << "connection closed: " << c.error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PingPong(RawClient& c, milliseconds timeout) {
  if (auto sent = c.Send(wire::PingReq()); !sent) return sent;
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (!raw) return ::testing::AssertionFailure() << "no PINGRESP: " << c.error();
  if (*raw != Bytes{wire::kPingresp << 4, 0}) {
    return ::testing::AssertionFailure() << "expected PINGRESP, got " << wire::Hex(*raw);
  }
  return ::testing::AssertionSuccess();
}

std::optional<std::vector<uint8_t>> RawSubscribe(RawClient& c, MqttVersion v, uint16_t packet_id,
                                                 const std::vector<wire::Subscription>& subs) {
  if (auto sent = c.Send(wire::Subscribe(v, packet_id, subs)); !sent) {
    ADD_FAILURE() << sent.message();
    return std::nullopt;
  }
  const std::optional<Bytes> raw = c.ReadPacket();
  if (!raw) {
    ADD_FAILURE() << "no SUBACK: " << c.error();
    return std::nullopt;
  }
  const std::optional<wire::RawPacket> p = wire::Parse(*raw);
  const std::optional<wire::Ack> ack = wire::ParseSuback(v, *raw);
  if (!p || p->type != wire::kSuback || !ack || ack->packet_id != packet_id) {
    ADD_FAILURE() << "expected SUBACK " << packet_id << ", got " << wire::Hex(*raw);
    return std::nullopt;
  }
  return ack->codes;
}

std::optional<wire::ReceivedPublish> NextPublish(RawClient& c, MqttVersion v,
                                                 milliseconds timeout) {
  const std::optional<Bytes> raw = c.ReadPacket(timeout);
  if (!raw) {
    ADD_FAILURE() << "no PUBLISH: " << c.error();
    return std::nullopt;
  }
  std::optional<wire::ReceivedPublish> p = wire::ParsePublish(v, *raw);
  if (!p) ADD_FAILURE() << "expected PUBLISH, got " << wire::Hex(*raw);
  return p;
}

::testing::AssertionResult PublishAndComplete(RawClient& c, MqttVersion v,
                                              const wire::PublishFields& f, milliseconds timeout) {
  if (auto sent = c.Send(wire::Publish(v, f)); !sent) return sent;
  if (f.qos == 0) return ::testing::AssertionSuccess();
  // Expects an acknowledgement of `type` for f.packet_id with a success code.
  auto expect = [&](uint8_t type) -> ::testing::AssertionResult {
    const std::optional<Bytes> raw = c.ReadPacket(timeout);
    if (!raw) return ::testing::AssertionFailure() << "no acknowledgement: " << c.error();
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    if (!ack || ack->type != type || ack->packet_id != f.packet_id || ack->reason >= 0x80) {
      return ::testing::AssertionFailure() << "publish to " << f.topic << ": expected packet type "
                                           << int{type} << ", got " << wire::Hex(*raw);
    }
    return ::testing::AssertionSuccess();
  };
  if (f.qos == 1) return expect(wire::kPuback);
  if (auto rec = expect(wire::kPubrec); !rec) return rec;
  if (auto sent = c.Send(wire::PublishAck(wire::kPubrel, v, f.packet_id)); !sent) return sent;
  return expect(wire::kPubcomp);
}

::testing::AssertionResult CollectPublishes(RawClient& c, MqttVersion v, size_t n,
                                            std::vector<wire::ReceivedPublish>* out,
                                            milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t got = 0;
  size_t open_qos2 = 0;
  while (got < n || open_qos2 > 0) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    const std::optional<Bytes> raw = c.ReadPacket(std::max(left, milliseconds(0)));
    if (!raw) {
      return ::testing::AssertionFailure() << got << " of " << n << " PUBLISHes, " << open_qos2
                                           << " QoS 2 exchanges open: " << c.error();
    }
    if (std::optional<wire::ReceivedPublish> p = wire::ParsePublish(v, *raw)) {
      if (p->qos == 1) c.Send(wire::PublishAck(wire::kPuback, v, p->packet_id));
      if (p->qos == 2) {
        c.Send(wire::PublishAck(wire::kPubrec, v, p->packet_id));
        ++open_qos2;
      }
      out->push_back(std::move(*p));
      ++got;
      continue;
    }
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    if (ack && ack->type == wire::kPubrel && open_qos2 > 0) {
      c.Send(wire::PublishAck(wire::kPubcomp, v, ack->packet_id));
      --open_qos2;
      continue;
    }
    return ::testing::AssertionFailure() << "unexpected packet " << wire::Hex(*raw);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NodeServesNewClients(uint16_t port) {
  for (MqttVersion v : {MqttVersion::kV311, MqttVersion::kV5}) {
    wire::ConnectFields f;
    f.version = v;
    f.client_id = std::string("alive-check-") + VersionName(v);
    RawClient c;
    if (auto ok = RawConnect(c, port, f); !ok) {
      return ::testing::AssertionFailure()
             << "a new " << VersionName(v) << " client cannot connect: " << ok.message();
    }
    if (auto ok = PingPong(c); !ok) {
      return ::testing::AssertionFailure()
             << "a new " << VersionName(v) << " client gets no PINGRESP: " << ok.message();
    }
    c.Send(wire::Disconnect(v));
  }
  return ::testing::AssertionSuccess();
}

const char* VersionName(MqttVersion v) { return v == MqttVersion::kV5 ? "v5" : "v3.1.1"; }

}  // namespace ferry::testing

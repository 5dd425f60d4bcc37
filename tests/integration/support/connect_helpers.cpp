#include "connect_helpers.h"

#include <algorithm>
#include <string>

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

// Bounds-checked reader over bytes the broker sent.
class In {
 public:
  explicit In(const Bytes& data, size_t pos = 0) : data_(data), pos_(pos) {}

  bool U8(uint8_t* v) {
    if (pos_ >= data_.size()) return false;
    *v = data_[pos_++];
    return true;
  }
  bool U16(uint16_t* v) {
    uint8_t hi = 0, lo = 0;
    if (!U8(&hi) || !U8(&lo)) return false;
    *v = static_cast<uint16_t>(hi << 8 | lo);
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t hi = 0, lo = 0;
    if (!U16(&hi) || !U16(&lo)) return false;
    *v = static_cast<uint32_t>(hi) << 16 | lo;
    return true;
  }
  bool VarInt(uint32_t* v) {
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!U8(&b)) return false;
      *v |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool String(std::string* s) {
    uint16_t len = 0;
    if (!U16(&len) || len > data_.size() - pos_) return false;
    s->assign(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
              data_.begin() + static_cast<std::ptrdiff_t>(pos_ + len));
    pos_ += len;
    return true;
  }
  bool Take(size_t n, Bytes* out) {
    if (n > data_.size() - pos_) return false;
    out->assign(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
                data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return true;
  }
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  const Bytes& data_;
  size_t pos_;
};

// The wire type of each v5 property (MQTT 5.0 section 2.2.2.2).
enum class PropType { kByte, kU16, kU32, kVarInt, kString, kPair, kUnknown };

PropType TypeOf(uint8_t id) {
  switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
      return PropType::kByte;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
      return PropType::kU16;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
      return PropType::kU32;
    case 0x0B:
      return PropType::kVarInt;
    case 0x03:
    case 0x08:
    case 0x09:
    case 0x12:
    case 0x15:
    case 0x16:
    case 0x1A:
    case 0x1C:
    case 0x1F:
      return PropType::kString;
    case 0x26:
      return PropType::kPair;
    default:
      return PropType::kUnknown;
  }
}

std::string Describe(const Bytes& raw) { return raw.empty() ? "nothing" : wire::Hex(raw); }

}  // namespace

void AppendPropertyU16(Bytes* out, uint8_t id, uint16_t value) {
  out->push_back(id);
  wire::AppendU16(out, value);
}

void AppendPropertyU32(Bytes* out, uint8_t id, uint32_t value) {
  out->push_back(id);
  wire::AppendU32(out, value);
}

void AppendPropertyString(Bytes* out, uint8_t id, std::string_view value) {
  out->push_back(id);
  wire::AppendString(out, value);
}

std::optional<Properties> Properties::Parse(const Bytes& bytes) {
  Properties p;
  In in(bytes);
  while (!in.AtEnd()) {
    uint8_t id = 0;
    in.U8(&id);
    bool ok = false;
    switch (TypeOf(id)) {
      case PropType::kByte: {
        uint8_t v = 0;
        ok = in.U8(&v);
        p.ints_[id] = v;
        break;
      }
      case PropType::kU16: {
        uint16_t v = 0;
        ok = in.U16(&v);
        p.ints_[id] = v;
        break;
      }
      case PropType::kU32: {
        uint32_t v = 0;
        ok = in.U32(&v);
        p.ints_[id] = v;
        break;
      }
      case PropType::kVarInt: {
        uint32_t v = 0;
        ok = in.VarInt(&v);
        p.ints_[id] = v;
        break;
      }
      case PropType::kString: {
        std::string s;
        ok = in.String(&s);
        p.strings_.emplace(id, std::move(s));
        break;
      }
      case PropType::kPair: {
        std::string k, v;
        ok = in.String(&k) && in.String(&v);
        p.strings_.emplace(id, k + "=" + v);
        break;
      }
      case PropType::kUnknown:
        break;
    }
    if (!ok) return std::nullopt;
  }
  return p;
}

std::optional<uint32_t> Properties::Int(uint8_t id) const {
  auto it = ints_.find(id);
  if (it == ints_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Properties::String(uint8_t id) const {
  auto it = strings_.find(id);
  if (it == strings_.end()) return std::nullopt;
  return it->second;
}

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
  In in(p->body);
  ConnackFields out;
  if (!in.U8(&out.flags) || !in.U8(&out.code)) return std::nullopt;
  if (v == MqttVersion::kV5) {
    uint32_t len = 0;
    Bytes props;
    if (!in.VarInt(&len) || !in.Take(len, &props)) return std::nullopt;
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
  In in(p->body);
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

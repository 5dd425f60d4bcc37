#include "session_helpers.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "temp_dir.h"
#include "wait.h"

namespace ferry::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string Describe(const Bytes& raw) {
  const std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p) return "unparsable bytes " + wire::Hex(raw);
  return "packet type " + std::to_string(p->type) + " (" + wire::Hex(raw) + ")";
}

// Reads one packet and parses it; the failure says why nothing usable came.
::testing::AssertionResult ReadRaw(RawClient& raw, Clock::time_point deadline, wire::RawPacket* out,
                                   Bytes* bytes = nullptr) {
  const std::optional<Bytes> packet = raw.ReadPacket(Remaining(deadline));
  if (!packet) return ::testing::AssertionFailure() << "no packet: " << raw.error();
  const std::optional<wire::RawPacket> p = wire::Parse(*packet);
  if (!p) return ::testing::AssertionFailure() << "unparsable packet " << wire::Hex(*packet);
  *out = *p;
  if (bytes != nullptr) *bytes = *packet;
  return ::testing::AssertionSuccess();
}

uint16_t PacketIdOf(const wire::RawPacket& p) {
  return p.body.size() < 2 ? 0 : static_cast<uint16_t>(p.body[0] << 8 | p.body[1]);
}

// v5 acknowledgements may carry a reason code after the packet identifier.
uint8_t ReasonOf(const wire::RawPacket& p) { return p.body.size() > 2 ? p.body[2] : 0; }

// Waits for one acknowledgement of `type` for each identifier in *ids,
// removing each identifier as its acknowledgement arrives.
::testing::AssertionResult AwaitAcks(RawClient& raw, wire::PacketType type, std::set<uint16_t>* ids,
                                     Clock::time_point deadline) {
  while (!ids->empty()) {
    wire::RawPacket p;
    Bytes bytes;
    if (auto read = ReadRaw(raw, deadline, &p, &bytes); !read) {
      return read << " (" << ids->size() << " acknowledgements of type " << int{type}
                  << " still missing)";
    }
    if (p.type != type) {
      return ::testing::AssertionFailure()
             << "expected packet type " << int{type} << ", got " << Describe(bytes);
    }
    if (ReasonOf(p) >= 0x80) {
      return ::testing::AssertionFailure() << "refused: " << Describe(bytes);
    }
    if (ids->erase(PacketIdOf(p)) == 0) {
      return ::testing::AssertionFailure() << "unexpected acknowledgement " << Describe(bytes);
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

Bytes SessionExpiryProperty(uint32_t seconds) {
  Bytes out{0x11};
  wire::AppendU32(&out, seconds);
  return out;
}

wire::ConnectFields Persistent(MqttVersion v, std::string client_id, uint32_t expiry_s) {
  wire::ConnectFields f;
  f.version = v;
  f.client_id = std::move(client_id);
  f.clean_start = false;
  if (v == MqttVersion::kV5) f.properties = SessionExpiryProperty(expiry_s);
  return f;
}

wire::ConnectFields Clean(MqttVersion v, std::string client_id) {
  wire::ConnectFields f;
  f.version = v;
  f.client_id = std::move(client_id);
  f.clean_start = true;
  return f;
}

Bytes DisconnectWithExpiry(uint32_t seconds) {
  Bytes body{0x00};  // reason code: normal disconnection
  const Bytes props = SessionExpiryProperty(seconds);
  wire::AppendVarInt(&body, static_cast<uint32_t>(props.size()));
  body.insert(body.end(), props.begin(), props.end());
  return wire::Frame(wire::kDisconnect << 4, body);
}

::testing::AssertionResult ConnectRaw(RawClient& raw, uint16_t port, const wire::ConnectFields& f,
                                      bool* session_present, std::chrono::milliseconds timeout) {
  if (auto opened = raw.Connect(port, timeout); !opened) return opened;
  if (auto sent = raw.Send(wire::Connect(f)); !sent) return sent;
  const std::optional<Bytes> packet = raw.ReadPacket(timeout);
  if (!packet) {
    return ::testing::AssertionFailure()
           << "no CONNACK for '" << f.client_id << "': " << raw.error();
  }
  const std::optional<wire::Connack> ack = wire::ParseConnack(*packet);
  if (!ack) return ::testing::AssertionFailure() << "not a CONNACK: " << Describe(*packet);
  if (ack->code != 0) {
    return ::testing::AssertionFailure()
           << "CONNACK for '" << f.client_id << "' has code " << int{ack->code};
  }
  if (session_present != nullptr) *session_present = ack->session_present;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SubscribeRaw(RawClient& raw, MqttVersion v, const std::string& filter,
                                        int qos, uint16_t packet_id,
                                        std::chrono::milliseconds timeout) {
  if (auto sent = raw.Send(wire::Subscribe(v, packet_id, {{filter, static_cast<uint8_t>(qos)}}));
      !sent) {
    return sent;
  }
  const std::optional<Bytes> packet = raw.ReadPacket(timeout);
  if (!packet) return ::testing::AssertionFailure() << "no SUBACK: " << raw.error();
  const std::optional<wire::Ack> ack = wire::ParseSuback(v, *packet);
  if (!ack || ack->packet_id != packet_id || ack->codes != std::vector<uint8_t>{uint8_t(qos)}) {
    return ::testing::AssertionFailure()
           << "subscribe to " << filter << " at QoS " << qos << ": got " << Describe(*packet);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult OfflineSubscriber(const NodeProcess& node, const std::string& id,
                                             const std::string& filter, int qos) {
  RawClient s;
  if (auto r = ConnectRaw(s, node.port(), Persistent(MqttVersion::kV5, id)); !r) return r;
  if (auto r = SubscribeRaw(s, MqttVersion::kV5, filter, qos); !r) return r;
  return s.Send(wire::Disconnect(MqttVersion::kV5));
}

::testing::AssertionResult ReadPublish(RawClient& raw, MqttVersion v, wire::ReceivedPublish* out,
                                       std::chrono::milliseconds timeout) {
  const std::optional<Bytes> packet = raw.ReadPacket(timeout);
  if (!packet) return ::testing::AssertionFailure() << "no PUBLISH: " << raw.error();
  const std::optional<wire::ReceivedPublish> p = wire::ParsePublish(v, *packet);
  if (!p) return ::testing::AssertionFailure() << "expected a PUBLISH, got " << Describe(*packet);
  *out = *p;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ExpectPacket(RawClient& raw, wire::PacketType type, wire::RawPacket* out,
                                        std::chrono::milliseconds timeout) {
  wire::RawPacket p;
  Bytes bytes;
  if (auto read = ReadRaw(raw, Clock::now() + timeout, &p, &bytes); !read) return read;
  if (p.type != type) {
    return ::testing::AssertionFailure()
           << "expected packet type " << int{type} << ", got " << Describe(bytes);
  }
  if (out != nullptr) *out = p;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ExpectNothingBeforePingresp(RawClient& raw,
                                                       std::chrono::milliseconds timeout) {
  if (auto sent = raw.Send(wire::PingReq()); !sent) return sent;
  return ExpectPacket(raw, wire::kPingresp, nullptr, timeout);
}

::testing::AssertionResult PublishManyRaw(RawClient& raw, MqttVersion v, const std::string& topic,
                                          int qos, int count,
                                          const std::function<std::string(int)>& payload,
                                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Bytes all;
  std::set<uint16_t> ids;
  for (int i = 0; i < count; ++i) {
    wire::PublishFields f;
    f.topic = topic;
    f.payload = payload(i);
    f.qos = qos;
    f.packet_id = static_cast<uint16_t>(i + 1);
    const Bytes one = wire::Publish(v, f);
    all.insert(all.end(), one.begin(), one.end());
    ids.insert(f.packet_id);
  }
  if (auto sent = raw.Send(all); !sent) return sent;
  if (qos == 1) return AwaitAcks(raw, wire::kPuback, &ids, deadline);
  const std::set<uint16_t> sent_ids = ids;
  if (auto recs = AwaitAcks(raw, wire::kPubrec, &ids, deadline); !recs) return recs;
  Bytes rels;
  for (uint16_t id : sent_ids) {
    const Bytes rel = wire::PublishAck(wire::kPubrel, v, id);
    rels.insert(rels.end(), rel.begin(), rel.end());
  }
  if (auto sent = raw.Send(rels); !sent) return sent;
  ids = sent_ids;
  return AwaitAcks(raw, wire::kPubcomp, &ids, deadline);
}

::testing::AssertionResult ReceiveAndAck(RawClient& raw, MqttVersion v, int count,
                                         std::vector<wire::ReceivedPublish>* out,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::set<uint16_t> awaiting_pubrel;
  int received = 0;
  while (received < count || !awaiting_pubrel.empty()) {
    wire::RawPacket p;
    Bytes bytes;
    if (auto read = ReadRaw(raw, deadline, &p, &bytes); !read) {
      return read << " after " << received << " of " << count << " PUBLISHes";
    }
    if (p.type == wire::kPubrel) {
      awaiting_pubrel.erase(PacketIdOf(p));
      if (auto sent = raw.Send(wire::PublishAck(wire::kPubcomp, v, PacketIdOf(p))); !sent) {
        return sent;
      }
      continue;
    }
    const std::optional<wire::ReceivedPublish> pub = wire::ParsePublish(v, bytes);
    if (!pub) {
      return ::testing::AssertionFailure() << "expected PUBLISH or PUBREL after " << received
                                           << " PUBLISHes, got " << Describe(bytes);
    }
    out->push_back(*pub);
    ++received;
    if (pub->qos == 1) {
      if (auto sent = raw.Send(wire::PublishAck(wire::kPuback, v, pub->packet_id)); !sent) {
        return sent;
      }
    } else if (pub->qos == 2) {
      awaiting_pubrel.insert(pub->packet_id);
      if (auto sent = raw.Send(wire::PublishAck(wire::kPubrec, v, pub->packet_id)); !sent) {
        return sent;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NodeServes(uint16_t port, const std::string& tag) {
  const MqttVersion v = MqttVersion::kV311;
  RawClient raw;
  if (auto c = ConnectRaw(raw, port, Clean(v, "alive-" + tag)); !c) {
    return c << " (node no longer serves new clients)";
  }
  const std::string topic = "alive/" + tag;
  if (auto s = SubscribeRaw(raw, v, topic, 1); !s) return s;
  wire::PublishFields f;
  f.topic = topic;
  f.payload = "still here";
  f.qos = 1;
  f.packet_id = 42;
  if (auto sent = raw.Send(wire::Publish(v, f)); !sent) return sent;
  bool acked = false;
  bool delivered = false;
  const auto deadline = Clock::now() + kDefaultTimeout;
  while (!acked || !delivered) {
    wire::RawPacket p;
    Bytes bytes;
    if (auto read = ReadRaw(raw, deadline, &p, &bytes); !read) return read;
    if (p.type == wire::kPuback && PacketIdOf(p) == 42) {
      acked = true;
    } else if (auto pub = wire::ParsePublish(v, bytes); pub && pub->payload == f.payload) {
      delivered = true;
      if (auto sent = raw.Send(wire::PublishAck(wire::kPuback, v, pub->packet_id)); !sent) {
        return sent;
      }
    } else {
      return ::testing::AssertionFailure() << "unexpected " << Describe(bytes);
    }
  }
  raw.Send(wire::Disconnect(v));
  return ::testing::AssertionSuccess();
}

SysWatcher::SysWatcher(uint16_t port, std::string node_name)
    : port_(port), prefix_("$SYS/brokers/" + node_name + "/") {}

::testing::AssertionResult SysWatcher::Start(const std::string& filter,
                                             const std::string& client_id) {
  if (auto c = ConnectRaw(raw_, port_, Clean(MqttVersion::kV311, client_id)); !c) return c;
  return SubscribeRaw(raw_, MqttVersion::kV311, prefix_ + filter, 0);
}

bool SysWatcher::ReadOne(Clock::time_point deadline) {
  const std::optional<Bytes> packet = raw_.ReadPacket(Remaining(deadline));
  if (!packet) return false;
  const std::optional<wire::ReceivedPublish> p = wire::ParsePublish(MqttVersion::kV311, *packet);
  if (p && p->topic.starts_with(prefix_)) {
    const std::string name = p->topic.substr(prefix_.size());
    latest_[name] = p->payload;
    ++counts_[name];
  }
  return true;
}

::testing::AssertionResult SysWatcher::WaitForValue(
    const std::string& name, const std::function<bool(const std::string&)>& done,
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto it = latest_.find(name);
    if (it != latest_.end() && done(it->second)) return ::testing::AssertionSuccess();
    if (Clock::now() >= deadline || !ReadOne(deadline)) {
      auto failure = ::testing::AssertionFailure() << prefix_ << name << ": ";
      if (it == latest_.end()) return failure << "never received";
      return failure << "last value '" << it->second << "' is not the one awaited";
    }
  }
}

::testing::AssertionResult SysWatcher::WaitForCount(const std::string& name, int n,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (counts_[name] < n) {
    if (Clock::now() >= deadline || !ReadOne(deadline)) {
      return ::testing::AssertionFailure()
             << prefix_ << name << " received " << counts_[name] << " times, awaited " << n;
    }
  }
  return ::testing::AssertionSuccess();
}

std::optional<std::string> SysWatcher::Latest(const std::string& name) const {
  const auto it = latest_.find(name);
  if (it == latest_.end()) return std::nullopt;
  return it->second;
}

int SysWatcher::Count(const std::string& name) const {
  const auto it = counts_.find(name);
  return it == counts_.end() ? 0 : it->second;
}

std::optional<uint64_t> SysWatcher::Number(const std::string& name,
                                           std::chrono::milliseconds timeout) {
  if (!WaitForValue(
          name, [](const std::string& v) { return ParseNumber(v).has_value(); }, timeout)) {
    return std::nullopt;
  }
  return ParseNumber(*Latest(name));
}

std::optional<uint64_t> ParseNumber(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

pid_t NodePid(const NodeProcess& node) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  pid_t found = -1;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const std::string cmdline = ReadFileOrEmpty("/proc/" + std::string(entry->d_name) + "/cmdline");
    // argv is NUL-separated: "<ferryd>\0-c\0<config>\0..."
    std::istringstream args(cmdline);
    std::vector<std::string> argv;
    for (std::string arg; std::getline(args, arg, '\0');) argv.push_back(arg);
    if (argv.size() >= 3 && argv[0] == FerryBinary() && argv[1] == "-c" &&
        argv[2] == node.config_path()) {
      found = static_cast<pid_t>(pid);
      break;
    }
  }
  closedir(proc);
  return found;
}

std::optional<uint64_t> VmRssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (!line.starts_with("VmRSS:")) continue;
    std::istringstream fields(line.substr(6));
    uint64_t kb = 0;
    if (fields >> kb) return kb;
  }
  return std::nullopt;
}

}  // namespace ferry::testing

// The [bridge.NAME] schema: one SectionReader call per key, in the order
// etc/ferry.conf documents them. BridgeConfigKeys() runs it on an absent
// section to list the keys, so the documentation test cannot drift.
#include "bridge/bridge_config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>

namespace ferry::bridge {

namespace {

using core::ConfigErrors;
using core::SectionReader;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kSectionPrefix = "bridge.";
constexpr std::string_view kStartModes[] = {"auto", "manual", "lazy"};
constexpr std::string_view kScopes[] = {"node", "cluster"};
constexpr std::string_view kAddressPolicies[] = {"failover", "round_robin"};
constexpr std::string_view kQueueSyncs[] = {"write", "fsync", "none"};

void ReadAddresses(SectionReader& r, BridgeConfig* c) {
  std::vector<std::string> items;
  if (!r.List("address", &items)) return;
  std::string text;
  r.String("address", &text);
  std::vector<UpstreamAddress> addresses;
  for (const std::string& item : items) {
    auto a = ParseUpstreamAddress(item);
    if (!a.ok()) {
      r.Error("address", "address: " + a.status().message());
      return;
    }
    addresses.push_back(std::move(a).value());
  }
  if (addresses.empty()) {
    r.Error("address", "address: expected one or more host:port, got '" + text + "'");
    return;
  }
  c->addresses = std::move(addresses);
}

// False if the key holds bad rules (reported).
bool ReadRules(SectionReader& r, std::string_view key, const RuleDefaults& defaults,
               std::vector<TopicRule>* out) {
  std::string text;
  if (!r.String(key, &text)) return true;
  auto rules = ParseRules(text, defaults);
  if (!rules.ok()) {
    r.Error(key, std::string(key) + ": " + rules.status().message());
    return false;
  }
  *out = std::move(rules).value();
  return true;
}

bool CheckFileReadable(SectionReader& r, std::string_view key, const std::string& path) {
  if (path.empty()) return true;
  std::ifstream in(path);
  if (in.good()) return true;
  r.Error(key, std::string(key) + ": cannot read '" + path + "'");
  return false;
}

void ReadIdentity(SectionReader& r, std::string_view node_name, BridgeConfig* c) {
  if (r.String("clientid", &c->clientid)) {
    c->clientid = ExpandNode(c->clientid, node_name);
    if (c->clientid.empty() || c->clientid.size() > 65535) {
      r.Error("clientid", "clientid: must be 1 to 65535 bytes");
    }
  }
  int64_t v = 0;
  if (r.Int64("proto_ver", 4, 5, &v)) c->proto_ver = static_cast<uint8_t>(v);
  // An empty value is the same as no value.
  std::string s;
  if (r.String("username", &s) && !s.empty()) c->username = s;
  if (r.String("password", &s) && !s.empty()) c->password = s;
  if (r.String("password_file", &c->password_file)) {
    CheckFileReadable(r, "password_file", c->password_file);
    if (c->password) r.Error("password_file", "password_file: set either password or password_file");
  }
  // [MQTT-3.1.2-22]: 3.1.1 has no password without a user name.
  if (c->proto_ver == 4 && (c->password || !c->password_file.empty()) && !c->username) {
    r.Error(c->password ? "password" : "password_file", "a password needs a username with proto_ver 4");
  }
  r.Bool("bridge_bit", &c->bridge_bit);
  r.Seconds("keepalive", seconds(0), seconds(65535), &c->keepalive);
  r.Bool("clean_start", &c->clean_start);
  r.Seconds("session_expiry", seconds(0), seconds(UINT32_MAX), &c->session_expiry);
}

void ReadTls(SectionReader& r, BridgeConfig* c) {
  r.Bool("tls", &c->tls);
  if (r.String("tls_ca_file", &c->tls_ca_file)) CheckFileReadable(r, "tls_ca_file", c->tls_ca_file);
  if (r.String("tls_cert_file", &c->tls_cert_file)) {
    CheckFileReadable(r, "tls_cert_file", c->tls_cert_file);
  }
  if (r.String("tls_key_file", &c->tls_key_file)) {
    CheckFileReadable(r, "tls_key_file", c->tls_key_file);
  }
  if (c->tls_cert_file.empty() != c->tls_key_file.empty()) {
    r.Error(c->tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file",
            "tls_cert_file and tls_key_file go together");
  }
  r.Bool("tls_verify", &c->tls_verify);
  r.String("tls_server_name", &c->tls_server_name);
}

void ReadConnection(SectionReader& r, BridgeConfig* c) {
  r.Duration("reconnect_min", milliseconds(10), hours(1), &c->reconnect_min);
  r.Duration("reconnect_max", milliseconds(10), hours(24), &c->reconnect_max);
  if (c->reconnect_max < c->reconnect_min) {
    r.Error("reconnect_max", "reconnect_max: must not be below reconnect_min");
  }
  r.Duration("connect_timeout", milliseconds(100), hours(1), &c->connect_timeout);
  r.Integer("max_inflight", 1, 65535, &c->max_inflight);
  size_t choice = 0;
  if (r.Choice("start", kStartModes, &choice)) c->start = static_cast<StartMode>(choice);
  r.Duration("idle_timeout", milliseconds(100), hours(24 * 7), &c->idle_timeout);
}

void ReadNotifications(SectionReader& r, std::string_view node_name, BridgeConfig* c) {
  r.Bool("notifications", &c->notifications);
  r.Bool("notifications_local_only", &c->notifications_local_only);
  c->notification_topic = "$SYS/brokers/" + std::string(node_name) + "/bridges/" + c->name +
                          "/state";
  if (r.String("notification_topic", &c->notification_topic)) {
    c->notification_topic = ExpandNode(c->notification_topic, node_name);
    if (c->notification_topic.empty() ||
        c->notification_topic.find_first_of("+#") != std::string::npos) {
      r.Error("notification_topic", "notification_topic: expected a topic name without wildcards");
    }
  }
}

void ReadBridge(SectionReader& r, const core::RawSection* section, std::string_view bridge_name,
                std::string_view node_name, BridgeConfig* c);

void ReadQueue(SectionReader& r, BridgeConfig* c) {
  r.Size("queue_max_bytes", 64 * 1024, uint64_t{1} << 40, &c->queue_max_bytes);
  r.Duration("queue_max_age", milliseconds(0), hours(24 * 365), &c->queue_max_age);
  size_t choice = 0;
  if (r.Choice("queue_sync", kQueueSyncs, &choice)) c->queue_sync = static_cast<QueueSync>(choice);
  r.Integer("queue_replay_rate", 0, 10000000, &c->queue_replay_rate);
  r.Bool("queue_qos0", &c->queue_qos0);
}

}  // namespace

const char* StartModeName(StartMode m) { return kStartModes[static_cast<size_t>(m)].data(); }
const char* BridgeScopeName(BridgeScope s) { return kScopes[static_cast<size_t>(s)].data(); }

namespace {
// The client id a bridge has unless `clientid` says otherwise: one per node,
// or, for a bridge that runs on one node of a cluster at a time, one for
// all of them, so that its upstream session follows it from node to node.
std::string DefaultClientId(const BridgeConfig& c, std::string_view node_name) {
  return c.scope == BridgeScope::kCluster ? c.name : c.name + "." + std::string(node_name);
}
}  // namespace
const char* QueueSyncName(QueueSync s) { return kQueueSyncs[static_cast<size_t>(s)].data(); }

std::string UpstreamAddress::ToString() const {
  if (!node.empty() && !tls) return node + ":" + std::to_string(port);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "mqtts://" : "") + h + ":" + std::to_string(port);
}

ferry::Result<UpstreamAddress> ParseUpstreamAddress(std::string_view text) {
  UpstreamAddress a;
  std::string_view rest = text;
  bool url = false;
  if (rest.starts_with("mqtts://")) {
    a.tls = true;
    a.port = 8883;
    rest.remove_prefix(8);
    url = true;
  } else if (rest.starts_with("mqtt://")) {
    rest.remove_prefix(7);
    url = true;
  } else if (rest.find("://") != std::string_view::npos) {
    return ferry::Status::InvalidArgument("unknown scheme in '" + std::string(text) +
                                          "' (expected mqtt:// or mqtts://)");
  }
  if (url && !rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  // name@host:port names the ferry node expected at host:port.
  std::string node;
  if (!url) {
    if (size_t at = rest.find('@'); at != std::string_view::npos) {
      std::string_view name = rest.substr(0, at);
      if (name.empty() || !IsBridgeName(name)) {
        return ferry::Status::InvalidArgument("bad node name in '" + std::string(text) + "'");
      }
      rest.remove_prefix(at + 1);
      size_t colon = rest.rfind(':');
      node = std::string(name) + "@" +
             std::string(colon == std::string_view::npos ? rest : rest.substr(0, colon));
    }
  }
  // With a URL the port is optional; host:port needs it.
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return ferry::Status::InvalidArgument("missing ']' in '" + std::string(text) + "'");
    }
    has_port = close + 1 < rest.size() && rest[close + 1] == ':';
  } else {
    has_port = rest.find(':') != std::string_view::npos;
  }
  if (!has_port) {
    if (!url) {
      return ferry::Status::InvalidArgument("expected host:port, got '" + std::string(text) + "'");
    }
    std::string host(rest);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto hp = core::ParseHostPort((host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                  ":" + std::to_string(a.port));
    if (!hp.ok()) {
      return ferry::Status::InvalidArgument("'" + std::string(text) + "': " + hp.status().message());
    }
    a.host = hp->host;
    return a;
  }
  auto hp = core::ParseHostPort(rest);
  if (!hp.ok()) {
    return ferry::Status::InvalidArgument("'" + std::string(text) + "': " + hp.status().message());
  }
  if (hp->port == 0) {
    return ferry::Status::InvalidArgument("'" + std::string(text) + "': port 0 is not an address");
  }
  a.host = hp->host;
  a.port = hp->port;
  a.node = std::move(node);
  return a;
}

bool IsBridgeName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
         });
}

void ReadBridgeSection(const core::RawSection* section, std::string_view bridge_name,
                       std::string_view node_name, ConfigErrors& errors, BridgeConfig* c) {
  const std::string section_name = std::string(kSectionPrefix) + std::string(bridge_name);
  SectionReader r(section, section_name, errors);
  ReadBridge(r, section, bridge_name, node_name, c);
  r.ReportUnknownKeys();
}

namespace {

void ReadBridge(SectionReader& r, const core::RawSection* section, std::string_view bridge_name,
                std::string_view node_name, BridgeConfig* c) {
  c->name = std::string(bridge_name);
  if (section != nullptr) c->origin = section->origin;
  if (section != nullptr) r.Require("address");
  ReadAddresses(r, c);
  size_t choice = 0;
  if (r.Choice("address_policy", kAddressPolicies, &choice)) {
    c->address_policy = static_cast<AddressPolicy>(choice);
  }
  r.Duration("primary_retry", milliseconds(100), hours(24), &c->primary_retry);

  if (r.String("local_prefix", &c->local_prefix)) {
    c->local_prefix = ExpandNode(c->local_prefix, node_name);
  }
  if (r.String("remote_prefix", &c->remote_prefix)) {
    c->remote_prefix = ExpandNode(c->remote_prefix, node_name);
  }
  // Rules are read after the prefixes they default to.
  RuleDefaults defaults{c->local_prefix, c->remote_prefix, std::string(node_name)};
  bool rules_ok = ReadRules(r, "forward", defaults, &c->forward);
  rules_ok = ReadRules(r, "subscribe", defaults, &c->subscribe) && rules_ok;
  if (section != nullptr && rules_ok && c->forward.empty() && c->subscribe.empty()) {
    r.Error("forward", "a bridge needs at least one forward or subscribe rule");
  }
  r.Bool("strip_retain", &c->strip_retain);
  r.Integer("max_hops", 1, 255, &c->max_hops);

  if (r.Choice("scope", kScopes, &choice)) c->scope = static_cast<BridgeScope>(choice);
  c->clientid = DefaultClientId(*c, node_name);
  ReadIdentity(r, node_name, c);
  ReadTls(r, c);
  ReadConnection(r, c);
  ReadNotifications(r, node_name, c);
  ReadQueue(r, c);
}

}  // namespace

ferry::Result<std::vector<BridgeConfig>> ReadBridgeConfigs(const core::RawConfig& raw,
                                                           std::string_view node_name) {
  ConfigErrors errors;
  std::vector<BridgeConfig> out;
  for (const core::RawSection* s : raw.SectionsWithPrefix(kSectionPrefix)) {
    std::string_view name = std::string_view(s->name).substr(kSectionPrefix.size());
    if (!IsBridgeName(name)) {
      errors.Add(s->origin, s->line,
                 "[" + s->name + "] expected [bridge.NAME] with NAME made of A-Z a-z 0-9 _ - "
                 "(at most 64)");
      continue;
    }
    BridgeConfig c;
    size_t before = errors.size();
    ReadBridgeSection(s, name, node_name, errors, &c);
    if (errors.size() == before) out.push_back(std::move(c));
  }
  if (!errors.empty()) return errors.ToStatus();
  return out;
}

namespace {

// A value as the config parser reads it back: quoted if it has surrounding
// spaces, is empty or starts with a quote.
std::string Value(std::string_view v) {
  if (v.empty() || std::isspace(static_cast<unsigned char>(v.front())) ||
      std::isspace(static_cast<unsigned char>(v.back())) || v.front() == '"') {
    return "\"" + std::string(v) + "\"";
  }
  return std::string(v);
}

std::string RulesText(const std::vector<TopicRule>& rules, const BridgeConfig& c) {
  std::string out;
  for (const TopicRule& rule : rules) {
    if (!out.empty()) out += ", ";
    out += rule.ToText(c.local_prefix, c.remote_prefix);
  }
  return out;
}

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

}  // namespace

std::string RenderBridgeSection(const BridgeConfig& c, std::string_view node_name) {
  BridgeConfig d;  // the defaults, as ReadBridge would fill them for this name
  d.name = c.name;
  d.scope = c.scope;
  d.clientid = DefaultClientId(d, node_name);
  d.notification_topic =
      "$SYS/brokers/" + std::string(node_name) + "/bridges/" + c.name + "/state";
  std::string out = "[bridge." + c.name + "]\n";
  auto put = [&](std::string_view key, const std::string& value) {
    out += std::string(key) + " = " + Value(value) + "\n";
  };
  std::string addresses;
  for (const UpstreamAddress& a : c.addresses) {
    addresses += (addresses.empty() ? "" : ", ") + a.ToString();
  }
  put("address", addresses);
  if (c.address_policy != d.address_policy) {
    put("address_policy", std::string(kAddressPolicies[static_cast<size_t>(c.address_policy)]));
  }
  if (c.primary_retry != d.primary_retry) put("primary_retry", Millis(c.primary_retry));
  if (c.local_prefix != d.local_prefix) put("local_prefix", c.local_prefix);
  if (c.remote_prefix != d.remote_prefix) put("remote_prefix", c.remote_prefix);
  if (!c.forward.empty()) put("forward", RulesText(c.forward, c));
  if (!c.subscribe.empty()) put("subscribe", RulesText(c.subscribe, c));
  if (c.strip_retain != d.strip_retain) put("strip_retain", c.strip_retain ? "true" : "false");
  if (c.max_hops != d.max_hops) put("max_hops", std::to_string(c.max_hops));
  if (c.scope != BridgeScope::kNode) put("scope", BridgeScopeName(c.scope));
  if (c.clientid != d.clientid) put("clientid", c.clientid);
  if (c.proto_ver != d.proto_ver) put("proto_ver", std::to_string(c.proto_ver));
  if (c.username) put("username", *c.username);
  if (c.password) put("password", *c.password);
  if (!c.password_file.empty()) put("password_file", c.password_file);
  if (c.bridge_bit != d.bridge_bit) put("bridge_bit", c.bridge_bit ? "true" : "false");
  if (c.keepalive != d.keepalive) put("keepalive", std::to_string(c.keepalive.count()));
  if (c.clean_start != d.clean_start) put("clean_start", c.clean_start ? "true" : "false");
  if (c.session_expiry != d.session_expiry) {
    put("session_expiry", std::to_string(c.session_expiry.count()));
  }
  if (c.tls != d.tls) put("tls", c.tls ? "true" : "false");
  if (!c.tls_ca_file.empty()) put("tls_ca_file", c.tls_ca_file);
  if (!c.tls_cert_file.empty()) put("tls_cert_file", c.tls_cert_file);
  if (!c.tls_key_file.empty()) put("tls_key_file", c.tls_key_file);
  if (c.tls_verify != d.tls_verify) put("tls_verify", c.tls_verify ? "true" : "false");
  if (!c.tls_server_name.empty()) put("tls_server_name", c.tls_server_name);
  if (c.reconnect_min != d.reconnect_min) put("reconnect_min", Millis(c.reconnect_min));
  if (c.reconnect_max != d.reconnect_max) put("reconnect_max", Millis(c.reconnect_max));
  if (c.connect_timeout != d.connect_timeout) put("connect_timeout", Millis(c.connect_timeout));
  if (c.max_inflight != d.max_inflight) put("max_inflight", std::to_string(c.max_inflight));
  if (c.start != d.start) put("start", StartModeName(c.start));
  if (c.idle_timeout != d.idle_timeout) put("idle_timeout", Millis(c.idle_timeout));
  if (c.notifications != d.notifications) put("notifications", c.notifications ? "true" : "false");
  if (c.notifications_local_only != d.notifications_local_only) {
    put("notifications_local_only", c.notifications_local_only ? "true" : "false");
  }
  if (c.notification_topic != d.notification_topic) put("notification_topic", c.notification_topic);
  if (c.queue_max_bytes != d.queue_max_bytes) {
    put("queue_max_bytes", std::to_string(c.queue_max_bytes));
  }
  if (c.queue_max_age != d.queue_max_age) put("queue_max_age", Millis(c.queue_max_age));
  if (c.queue_sync != d.queue_sync) put("queue_sync", QueueSyncName(c.queue_sync));
  if (c.queue_replay_rate != d.queue_replay_rate) {
    put("queue_replay_rate", std::to_string(c.queue_replay_rate));
  }
  if (c.queue_qos0 != d.queue_qos0) put("queue_qos0", c.queue_qos0 ? "true" : "false");
  return out;
}

std::vector<std::string> BridgeConfigKeys() {
  ConfigErrors ignored;
  SectionReader r(nullptr, "bridge.NAME", ignored);
  BridgeConfig unused;
  ReadBridge(r, nullptr, "NAME", "node@host", &unused);
  return r.known_keys();
}

}  // namespace ferry::bridge

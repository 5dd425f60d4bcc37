// The core's typed schema: [node], [log], [listener.tcp.NAME], [mqtt], [sys].
// Each Read* function is the whole schema of its section, written as one
// SectionReader call per key; CoreConfigKeys() runs them on absent sections
// to list the keys, so the documentation test cannot drift from the code.
#include <algorithm>
#include <cctype>

#include "core/config.h"
#include "core/config_internal.h"

namespace ferry::core {

namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kLogLevels[] = {"error", "warn", "info", "debug", "trace"};
constexpr std::string_view kCoreSections[] = {"node", "log", "mqtt", "sys"};
constexpr std::string_view kListenerPrefix = "listener.";

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool IsName(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsNameChar); }

// name@host: see NodeConfig. Peers identify each other by it, so it must be
// one token: no spaces, exactly one '@'.
bool IsNodeName(std::string_view s) {
  size_t at = s.find('@');
  if (at == std::string_view::npos) return false;
  std::string_view host = s.substr(at + 1);
  return IsName(s.substr(0, at)) && !host.empty() && host.find('@') == std::string_view::npos &&
         std::none_of(host.begin(), host.end(),
                      [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

void ReadNode(SectionReader& r, NodeConfig* c) {
  if (r.String("name", &c->name) && !IsNodeName(c->name)) {
    r.Error("name", "name: expected name@host with name made of A-Z a-z 0-9 _ -, got '" +
                        c->name + "'");
  }
  if (r.String("data_dir", &c->data_dir) && c->data_dir.empty()) {
    r.Error("data_dir", "data_dir: must not be empty");
  }
  r.Integer("workers", 0, 64, &c->workers);
  r.Integer("reserved_fds", 16, 1000000, &c->reserved_fds);
  r.String("cookie", &c->cookie);
  r.String("cookie_file", &c->cookie_file);
  if (!c->cookie.empty() && !c->cookie_file.empty()) {
    r.Error("cookie_file", "cookie_file: set cookie or cookie_file, not both");
  }
}

void ReadLog(SectionReader& r, LogConfig* c) {
  size_t level = 0;
  if (r.Choice("level", kLogLevels, &level)) c->level = static_cast<LogLevel>(level);
  r.String("file", &c->file);
}

constexpr std::string_view kListenerTypes[] = {"tcp", "ssl", "ws", "wss"};
constexpr std::string_view kTlsVersions[] = {"1.2", "1.3"};
// In the order of QueueWaitAction.
constexpr std::string_view kQueueWaitActions[] = {"drop", "disconnect"};

bool IsTlsType(std::string_view type) { return type == "ssl" || type == "wss"; }
bool IsWebSocketType(std::string_view type) { return type == "ws" || type == "wss"; }

void ReadTls(SectionReader& r, std::string_view fallback_origin, TlsOptions* t) {
  r.Require("certfile", fallback_origin);
  r.Require("keyfile", fallback_origin);
  r.String("certfile", &t->certfile);
  r.String("keyfile", &t->keyfile);
  r.String("cafile", &t->cafile);
  r.Bool("verify_peer", &t->verify_peer);
  r.Bool("fail_if_no_peer_cert", &t->fail_if_no_peer_cert);
  r.String("ciphers", &t->ciphers);
  r.String("ciphersuites", &t->ciphersuites);
  size_t version = 0;
  if (r.Choice("tls_min_version", kTlsVersions, &version)) {
    t->min_version = std::string(kTlsVersions[version]);
  }
  r.Bool("use_cn_as_username", &t->use_cn_as_username);
  // Settings that would silently do nothing, or verify against nothing.
  if (t->verify_peer && t->cafile.empty()) {
    r.Error("verify_peer", "verify_peer: needs cafile, the CAs client certificates must chain to");
  }
  if (t->fail_if_no_peer_cert && !t->verify_peer) {
    r.Error("fail_if_no_peer_cert", "fail_if_no_peer_cert: needs verify_peer = true");
  }
  if (t->use_cn_as_username && !t->verify_peer) {
    r.Error("use_cn_as_username", "use_cn_as_username: needs verify_peer = true");
  }
}

void ReadListener(SectionReader& r, std::string_view type, std::string_view fallback_origin,
                  ListenerConfig* c) {
  r.Require("bind", fallback_origin);
  HostPort hp;
  if (r.HostPortValue("bind", &hp)) {
    r.String("bind", &c->bind);
    c->host = hp.host;
    c->port = hp.port;
  }
  r.Integer("max_connections", 0, UINT32_MAX, &c->max_connections);
  r.Integer("max_connection_rate", 0, UINT32_MAX, &c->max_connection_rate);
  r.Bool("proxy_protocol", &c->proxy_protocol);
  if (IsWebSocketType(type) && r.String("path", &c->path) &&
      (!c->path.starts_with('/') || c->path.find_first_of(" ?#\t") != std::string::npos)) {
    r.Error("path", "path: expected an HTTP path starting with '/', got '" + c->path + "'");
  }
  if (IsTlsType(type)) ReadTls(r, fallback_origin, &c->tls);
}

void ReadMqtt(SectionReader& r, MqttConfig* c) {
  r.Bool("allow_anonymous", &c->allow_anonymous);
  r.String("password_file", &c->password_file);
  r.String("acl_file", &c->acl_file);
  // 268435455 is the largest Remaining Length the encoding can carry.
  uint64_t size = 0;
  if (r.Size("max_packet_size", 16, 268435455, &size)) c->max_packet_size = static_cast<uint32_t>(size);
  if (r.Size("max_connect_packet_size", 16, 268435455, &size)) {
    c->max_connect_packet_size = static_cast<uint32_t>(size);
  }
  r.Seconds("max_keepalive", seconds(0), seconds(65535), &c->max_keepalive);
  r.Duration("connect_timeout", milliseconds(1), hours(1), &c->connect_timeout);
  r.Integer("receive_maximum", 1, 65535, &c->receive_maximum);
  r.Integer("max_inflight", 1, 65535, &c->max_inflight);
  r.Integer("max_queued_messages", 0, UINT32_MAX, &c->max_queued_messages);
  r.Bool("queue_qos0", &c->queue_qos0);
  r.Seconds("max_session_expiry_interval", seconds(0), seconds(UINT32_MAX),
            &c->max_session_expiry_interval);
  r.Integer("topic_alias_maximum", 0, 65535, &c->topic_alias_maximum);
  r.Bool("retain_available", &c->retain_available);
  r.Bool("wildcard_subscription_available", &c->wildcard_subscription_available);
  r.Bool("shared_subscription_available", &c->shared_subscription_available);
  r.Bool("subscription_identifier_available", &c->subscription_identifier_available);
  r.Integer("max_qos", 0, 2, &c->max_qos);
  r.Size("max_output_buffer", 1024, uint64_t{1} << 32, &c->max_output_buffer);
  r.Duration("max_queue_wait", milliseconds(0), hours(1), &c->max_queue_wait);
  size_t action = 0;
  if (r.Choice("queue_wait_action", kQueueWaitActions, &action)) {
    c->queue_wait_action = static_cast<QueueWaitAction>(action);
  }
  if (!r.Size("max_partial_packet_memory", 1024, uint64_t{1} << 40,
              &c->max_partial_packet_memory)) {
    // Unset: room for a packet of the largest size while the buffer that
    // holds it doubles, and for others' pieces beside it.
    c->max_partial_packet_memory =
        std::max<uint64_t>(c->max_partial_packet_memory, uint64_t{2} * c->max_packet_size);
  } else if (c->max_partial_packet_memory < c->max_packet_size) {
    // Otherwise a packet of the largest size allowed could never be read.
    r.Error("max_partial_packet_memory",
            "max_partial_packet_memory: must be at least max_packet_size (" +
                std::to_string(c->max_packet_size) + " bytes)");
  }
  r.Integer("max_subscriptions_per_client", 0, UINT32_MAX, &c->max_subscriptions_per_client);
  // The server must accept client identifiers of 1 to 23 bytes [MQTT-3.1.3-5].
  r.Integer("max_client_id_length", 23, 65535, &c->max_client_id_length);
  r.Bool("allow_zero_length_clientid", &c->allow_zero_length_clientid);
  r.Bool("persistence", &c->persistence);
  r.Size("store_reserve", 0, uint64_t{1} << 40, &c->store_reserve);
  // A CONNECT limit above the general one would never apply.
  c->max_connect_packet_size = std::min(c->max_connect_packet_size, c->max_packet_size);
}

void ReadSys(SectionReader& r, SysConfig* c) {
  r.Duration("interval", milliseconds(0), hours(24), &c->interval);
}

bool Claimed(std::string_view section, std::span<const std::string_view> extra) {
  return std::any_of(extra.begin(), extra.end(), [&](std::string_view e) {
    return e.ends_with('.') ? section.starts_with(e) : section == e;
  });
}

// [listener.TYPE.NAME]: adds the listener to `config` if it is valid.
void ReadListenerSection(const RawSection& s, Config& config, ConfigErrors& errors) {
  std::string_view rest = std::string_view(s.name).substr(kListenerPrefix.size());
  size_t dot = rest.find('.');
  std::string_view type = rest.substr(0, dot);
  std::string_view name = dot == std::string_view::npos ? "" : rest.substr(dot + 1);
  if (std::find(std::begin(kListenerTypes), std::end(kListenerTypes), type) ==
      std::end(kListenerTypes)) {
    errors.Add(s.origin, s.line,
               "[" + s.name + "] unknown listener type '" + std::string(type) +
                   "' (expected tcp, ssl, ws or wss)");
    return;
  }
  if (!IsName(name)) {
    errors.Add(s.origin, s.line,
               "[" + s.name + "] expected [listener." + std::string(type) +
                   ".NAME] with NAME made of A-Z a-z 0-9 _ -");
    return;
  }
  ListenerConfig l;
  l.type = std::string(type);
  l.name = std::string(name);
  l.origin = s.origin;
  size_t before = errors.size();
  SectionReader r(&s, s.name, errors);
  ReadListener(r, type, s.origin, &l);
  r.ReportUnknownKeys();
  if (errors.size() != before) return;
  // Two listeners on one address would fail at bind time; port 0 is exempt
  // because every such listener gets its own free port.
  for (const auto& other : config.listeners) {
    if (l.port != 0 && other.host == l.host && other.port == l.port) {
      r.Error("bind", "bind: " + l.bind + " is already used by [listener." + other.type + "." +
                          other.name + "]");
      return;
    }
  }
  config.listeners.push_back(std::move(l));
}

template <typename T>
void ReadCoreSection(const RawConfig& raw, std::string_view name,
                     void (*read)(SectionReader&, T*), T* out, ConfigErrors& errors) {
  SectionReader r(raw.FindSection(name), name, errors);
  read(r, out);
  r.ReportUnknownKeys();
}

Config FromRaw(RawConfig raw, std::string_view path, std::span<const std::string_view> extra,
               ConfigErrors& errors) {
  Config config;
  config.path = std::string(path);
  size_t listener_sections = 0;
  for (const RawSection& s : raw.sections()) {
    if (std::find(std::begin(kCoreSections), std::end(kCoreSections), s.name) !=
        std::end(kCoreSections)) {
      continue;
    }
    if (s.name.starts_with(kListenerPrefix)) {
      ++listener_sections;
      ReadListenerSection(s, config, errors);
    } else if (!Claimed(s.name, extra)) {
      errors.Add(s.origin, s.line, "unknown section [" + s.name + "]");
    }
  }
  ReadCoreSection(raw, "node", &ReadNode, &config.node, errors);
  ReadCoreSection(raw, "log", &ReadLog, &config.log, errors);
  ReadCoreSection(raw, "mqtt", &ReadMqtt, &config.mqtt, errors);
  ReadCoreSection(raw, "sys", &ReadSys, &config.sys, errors);
  if (listener_sections == 0) {
    errors.Add(path, 0,
               "no listener: add a [listener.tcp.NAME] (or ssl, ws, wss) section with bind = host:port");
  }
  config.raw = std::move(raw);
  return config;
}

template <typename T>
void AddKeys(std::string_view section, void (*read)(SectionReader&, T*),
             std::vector<std::pair<std::string, std::string>>& out) {
  ConfigErrors ignored;
  SectionReader r(nullptr, section, ignored);
  T unused;
  read(r, &unused);
  for (const auto& k : r.known_keys()) out.emplace_back(std::string(section), k);
}

void ReadTcpKeys(SectionReader& r, ListenerConfig* c) { ReadListener(r, "tcp", "", c); }
void ReadSslKeys(SectionReader& r, ListenerConfig* c) { ReadListener(r, "ssl", "", c); }
void ReadWsKeys(SectionReader& r, ListenerConfig* c) { ReadListener(r, "ws", "", c); }
void ReadWssKeys(SectionReader& r, ListenerConfig* c) { ReadListener(r, "wss", "", c); }

}  // namespace

Result<Config> LoadConfigString(std::string_view text, std::string_view name, char** envp,
                                std::span<const std::string_view> extra_sections) {
  ConfigErrors errors;
  RawConfig raw = internal::ParseRaw(text, name, envp, errors);
  Config config = FromRaw(std::move(raw), name, extra_sections, errors);
  if (!errors.empty()) return errors.ToStatus();
  return config;
}

Result<Config> LoadConfig(const std::string& path, char** envp,
                          std::span<const std::string_view> extra_sections) {
  Result<std::string> text = internal::ReadFile(path);
  if (!text.ok()) return text.status();
  return LoadConfigString(text.value(), path, envp, extra_sections);
}

std::vector<std::pair<std::string, std::string>> CoreConfigKeys() {
  std::vector<std::pair<std::string, std::string>> keys;
  AddKeys("node", &ReadNode, keys);
  AddKeys("log", &ReadLog, keys);
  AddKeys("listener.tcp.NAME", &ReadTcpKeys, keys);
  AddKeys("listener.ssl.NAME", &ReadSslKeys, keys);
  AddKeys("listener.ws.NAME", &ReadWsKeys, keys);
  AddKeys("listener.wss.NAME", &ReadWssKeys, keys);
  AddKeys("mqtt", &ReadMqtt, keys);
  AddKeys("sys", &ReadSys, keys);
  return keys;
}

}  // namespace ferry::core

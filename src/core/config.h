// Node configuration: an INI file plus environment overrides.
//
// Two layers:
//  * RawConfig: section -> key -> value, in file order, each value with its
//    origin ("etc/ferry.conf:42", or "FERRY_NODE__NAME" for an environment
//    override). Other modules read their own sections from it ([bridge.NAME],
//    [cluster], [admin]) and validate them with a SectionReader, which reports
//    errors in the same format as the core.
//  * Config: the sections the core owns ([node], [log], [listener.tcp.NAME],
//    [mqtt], [sys]), typed, defaulted and validated.
//
// File syntax: "[section]" headers and "key = value" lines. Whole-line comments
// start with '#' or ';'; an inline comment is ';' after whitespace ('#' is a
// topic wildcard, so it never starts an inline comment). Leading whitespace is
// ignored (there are no multi-line values). A value wrapped in double quotes
// loses them, so "" is the empty string. Names are case-sensitive. A line
// holding a key is limited to 198 characters (the line buffer of the system
// inih); a repeated key in one section, and a section header that appears
// twice, are errors (naming the line of the first).
//
// Environment overrides: every key can be set by FERRY_<SECTION>__<KEY>, with
// the dots of the section written as "__". The LAST "__" splits section from
// key, and both are lowercased: FERRY_LISTENER__TCP__DEFAULT__BIND sets
// [listener.tcp.default] bind; FERRY_MQTT__MAX_INFLIGHT sets [mqtt]
// max_inflight. An override replaces the file's value or adds the key (and
// the section) if the file lacks it. Any other FERRY_ variable, except those
// in kNonKeyEnvironmentVariables, is an error naming the variable.
//
// Value syntax: booleans true/false, on/off, yes/no, 1/0; decimal integers;
// sizes "1048576", "64KB", "1MB", "1GB" (K = 1024); durations "500ms", "10s",
// "2m", "1h", "1d" (a bare number is seconds); host:port as "0.0.0.0:1883",
// "[::1]:1883" or "localhost:1883" (port 0 = any free port). Relative paths
// (data_dir, log file, password and ACL files) are relative to the working
// directory of the process, not to the config file.
//
// Everything here is a pure function of its arguments or a plain value type;
// any thread may call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/broker_options.h"
#include "core/log.h"
#include "core/status.h"

namespace ferry::core {

// FERRY_ variables that name no config key (FERRY_CONFIG: the config file
// ferryd and ferryctl use when no path is given).
inline constexpr std::string_view kNonKeyEnvironmentVariables[] = {"FERRY_CONFIG"};

// ---------------------------------------------------------------- raw layer

struct ConfigValue {
  std::string value;
  std::string origin;  // "etc/ferry.conf:42" or "FERRY_NODE__NAME"
  int line = 0;        // line in the file; 0 for an environment override
};

struct RawSection {
  std::string name;    // "mqtt", "listener.tcp.default"
  std::string origin;  // where the header is, or the variable that created it
  int line = 0;
  std::vector<std::pair<std::string, ConfigValue>> entries;  // file order

  // nullptr if the key is absent.
  const ConfigValue* Find(std::string_view key) const;
};

class RawConfig {
 public:
  const std::vector<RawSection>& sections() const { return sections_; }
  // nullptr if absent. Pointers stay valid until the RawConfig is changed.
  const RawSection* FindSection(std::string_view name) const;
  const ConfigValue* Find(std::string_view section, std::string_view key) const;
  // Sections whose name starts with `prefix`, in file order
  // ("listener.tcp." gives every TCP listener; "bridge." every bridge).
  std::vector<const RawSection*> SectionsWithPrefix(std::string_view prefix) const;

  // Returns the section, appending an empty one (recording `origin` and
  // `line` as where it starts) if absent.
  RawSection& AddSection(std::string_view name, std::string_view origin, int line);
  // Sets section.key, replacing any earlier value; creates the section if
  // needed with the value's origin.
  void Set(std::string_view section, std::string_view key, ConfigValue value);

 private:
  std::vector<RawSection> sections_;
};

// Reads the file and applies the overrides found in `envp` (a null-terminated
// "NAME=VALUE" array as given to main(); may be null). Errors: IoError if the
// file cannot be read; InvalidArgument listing every syntax error as
// "file:line: message" and every malformed FERRY_ variable, joined by '\n'.
Result<RawConfig> ParseConfigFile(const std::string& path, char** envp);
// The same for text already in memory; `name` stands for the file in origins.
Result<RawConfig> ParseConfigString(std::string_view text, std::string_view name,
                                    char** envp);

// ---------------------------------------------------------------- values

// Each returns InvalidArgument with a message such as "expected an integer in
// 1..65535, got 'x'" (no origin: SectionReader adds it).
Result<bool> ParseBool(std::string_view text);
Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max);
Result<uint64_t> ParseSize(std::string_view text, uint64_t min, uint64_t max);
Result<std::chrono::milliseconds> ParseDuration(std::string_view text,
                                                std::chrono::milliseconds min,
                                                std::chrono::milliseconds max);

struct HostPort {
  std::string host;  // IPv6 addresses without their brackets
  uint16_t port = 0;
};
Result<HostPort> ParseHostPort(std::string_view text);

// ---------------------------------------------------------------- schemas

// Collects errors as "origin: message" and returns them in file order
// (lines of the file by number, then environment variables and whole-file
// errors in the order reported).
class ConfigErrors {
 public:
  void Add(std::string_view origin, int line, std::string_view message);
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  // OK if empty, else InvalidArgument with every error joined by '\n'.
  Status ToStatus() const;

 private:
  struct Error {
    int line;
    std::string text;
  };
  std::vector<Error> errors_;
};

// Validates one section against a schema written as calls, one per key:
//
//   SectionReader r(raw.FindSection("bridge.cloud"), "bridge.cloud", errors);
//   r.Require("address");
//   r.HostPortValue("address", &bridge.address);
//   r.Bool("clean_start", &bridge.clean_start);
//   r.ReportUnknownKeys();
//
// Each reader leaves *out (holding the default) untouched when the key is
// absent or invalid, reports an invalid value as
// "etc/ferry.conf:7: [bridge.cloud] clean_start: expected a boolean ..., got 'x'"
// and returns true only if it stored a value. `section` may be null (the
// section is absent: every key keeps its default). Borrows `section` and
// `errors` for its lifetime.
class SectionReader {
 public:
  SectionReader(const RawSection* section, std::string_view name, ConfigErrors& errors);

  bool String(std::string_view key, std::string* out);
  // A comma-separated list: items trimmed, empty ones dropped.
  bool List(std::string_view key, std::vector<std::string>* out);
  bool Bool(std::string_view key, bool* out);
  bool Int64(std::string_view key, int64_t min, int64_t max, int64_t* out);
  template <typename Int>
  bool Integer(std::string_view key, int64_t min, int64_t max, Int* out) {
    int64_t v = 0;
    if (!Int64(key, min, max, &v)) return false;
    *out = static_cast<Int>(v);
    return true;
  }
  bool Size(std::string_view key, uint64_t min, uint64_t max, uint64_t* out);
  bool Duration(std::string_view key, std::chrono::milliseconds min,
                std::chrono::milliseconds max, std::chrono::milliseconds* out);
  // A duration that must be whole seconds.
  bool Seconds(std::string_view key, std::chrono::seconds min, std::chrono::seconds max,
               std::chrono::seconds* out);
  bool HostPortValue(std::string_view key, HostPort* out);
  // One of `choices`; stores its index.
  bool Choice(std::string_view key, std::span<const std::string_view> choices,
              size_t* out);

  // Reports "[section] missing required key 'k'" against the section header
  // (or `fallback_origin` if the section is absent) unless the key is present.
  void Require(std::string_view key, std::string_view fallback_origin = {});
  // Reports "[section] <message>" against the value of `key` (or the section
  // header if the key is absent): for checks that span several keys.
  void Error(std::string_view key, std::string_view message);
  // Reports "[section] unknown key 'k'" for every key no call above named.
  void ReportUnknownKeys();

  // Every key named so far, in order: the schema of this section.
  const std::vector<std::string>& known_keys() const { return known_keys_; }

 private:
  const ConfigValue* Lookup(std::string_view key);
  void Invalid(std::string_view key, const ConfigValue& value, const Status& why);

  const RawSection* section_;
  std::string name_;
  ConfigErrors& errors_;
  std::vector<std::string> known_keys_;
};

// ---------------------------------------------------------------- typed

struct NodeConfig {
  std::string name = "ferry@127.0.0.1";  // name@host, name in [A-Za-z0-9_-]+
  std::string data_dir = "data";
  uint32_t workers = 0;  // 0 = one per CPU core; at most 64
  uint32_t reserved_fds = 128;  // descriptors MQTT connections may not take
  // The cluster's shared secret, written here or in a file only the node's
  // user may read; the cluster module reads and checks them. Never logged.
  std::string cookie;
  std::string cookie_file;
  bool operator==(const NodeConfig&) const = default;
};

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  std::string file;  // empty = stderr
  bool operator==(const LogConfig&) const = default;
};

// One [listener.TYPE.NAME] section. TYPE is "tcp" (MQTT over TCP), "ssl"
// (over TLS), "ws" (over WebSocket) or "wss" (over WebSocket over TLS).
struct ListenerConfig {
  std::string type;  // "tcp", "ssl", "ws", "wss"
  std::string name;  // NAME, [A-Za-z0-9_-]+
  std::string bind;  // as written, "0.0.0.0:1883"
  std::string host;  // "0.0.0.0", "::1", "localhost"
  uint16_t port = 0;
  uint32_t max_connections = 0;      // 0 = unlimited
  uint32_t max_connection_rate = 0;  // accepted per second; 0 = unlimited
  bool proxy_protocol = false;       // expect a PROXY protocol v1/v2 header first
  std::string path = "/mqtt";        // ws, wss: the path of the upgrade request
  TlsOptions tls;                    // ssl, wss; files are checked at start
  std::string origin;                // where the section starts
  bool operator==(const ListenerConfig&) const = default;
};

struct MqttConfig {
  bool allow_anonymous = true;
  std::string password_file;  // empty = no password file
  std::string acl_file;       // empty = every client may do everything
  uint32_t max_packet_size = 1024 * 1024;
  // Limit before CONNECT is accepted; the loader caps it at max_packet_size.
  uint32_t max_connect_packet_size = 64 * 1024;
  std::chrono::seconds max_keepalive{65535};  // 0 = no limit
  std::chrono::milliseconds connect_timeout{10000};
  uint16_t receive_maximum = 1024;
  uint16_t max_inflight = 32;
  uint32_t max_queued_messages = 1000;  // 0 = unlimited
  bool queue_qos0 = true;
  std::chrono::seconds max_session_expiry_interval{0};  // 0 = no cap
  uint16_t topic_alias_maximum = 65535;
  bool retain_available = true;
  bool wildcard_subscription_available = true;
  bool shared_subscription_available = true;
  bool subscription_identifier_available = true;
  uint8_t max_qos = 2;
  uint64_t max_output_buffer = 1024 * 1024;
  // How long a publisher's acknowledgement waits for a connected
  // subscriber's full queue, and what then happens to that subscriber.
  std::chrono::milliseconds max_queue_wait{500};
  QueueWaitAction queue_wait_action = QueueWaitAction::kDrop;
  uint64_t max_partial_packet_memory = 64 * 1024 * 1024;  // per worker
  uint32_t max_subscriptions_per_client = 10000;          // 0 = unlimited
  uint16_t max_client_id_length = 65535;
  bool allow_zero_length_clientid = true;
  bool persistence = true;
  uint64_t store_reserve = uint64_t{8} << 20;  // bytes; 0 = none
  bool operator==(const MqttConfig&) const = default;
};

struct SysConfig {
  std::chrono::milliseconds interval{10000};  // 0 = no $SYS topics
  bool operator==(const SysConfig&) const = default;
};

struct Config {
  NodeConfig node;
  LogConfig log;
  std::vector<ListenerConfig> listeners;  // file order; never empty once loaded
  MqttConfig mqtt;
  SysConfig sys;
  RawConfig raw;     // everything, including sections for other modules
  std::string path;  // the file loaded (the `name` for LoadConfigString)
};

// Parses, applies overrides and defaults, and validates every core section
// and key. Reports EVERY problem, in file order, joined by '\n', e.g.
//   etc/ferry.conf:42: [mqtt] unknown key 'max_inflite'
//   FERRY_MQTT__MAX_INFLIGHT: [mqtt] max_inflight: expected an integer in 1..65535, got 'x'
// A section the core does not know is an error unless `extra_sections` claims
// it: an entry ending in '.' claims every section starting with it
// ("bridge."), any other entry claims the section of that exact name
// ("cluster"). Claimed sections are left in `raw` for their module to check.
// Errors: IoError if the file cannot be read, InvalidArgument otherwise.
Result<Config> LoadConfig(const std::string& path, char** envp,
                          std::span<const std::string_view> extra_sections = {});
Result<Config> LoadConfigString(std::string_view text, std::string_view name, char** envp,
                                std::span<const std::string_view> extra_sections = {});

// The core schema as (section, key) pairs, for documentation checks;
// listener keys are listed under "listener.TYPE.NAME" for each TYPE.
std::vector<std::pair<std::string, std::string>> CoreConfigKeys();

}  // namespace ferry::core

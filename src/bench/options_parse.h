// The implementation of ParseOptions and Usage; include bench/options.h.
#pragma once

#include <charconv>
#include <cstdlib>
#include <string_view>
#include <unistd.h>

#include "bench/options.h"

namespace ferry::bench {

// Every flag ParseOptions takes: those followed by a value, then switches.
// Anything else is refused as an unknown flag, and Usage() documents each
// one (tests/unit/bench checks both).
inline constexpr std::string_view kValueFlags[] = {
    "-h", "--host", "-p", "--port", "-c", "--count", "-n", "--startnumber", "-i", "--interval",
    "-I", "--interval_of_msg", "-t", "--topic", "-s", "--size", "-q", "--qos", "-L", "--limit",
    "-k", "--keepalive", "-u", "--username", "-P", "--password", "-V", "--version", "--ifaddr",
    "-C", "--clean", "-x", "--session-expiry", "--id", "-F", "--inflight", "-d", "--duration",
    "--loops", "--max-connecting", "--sub-clients", "--sub-topic", "--sub-qos", "--sub-port", "--window",
    "--idle-ms", "--drain-ms", "--cafile", "--cert", "--key", "--broker-pid"};
inline constexpr std::string_view kSwitches[] = {
    "-r", "--retain", "-S", "--tls", "--insecure", "--json", "--quiet", "--exit-after-subscribe"};

namespace parse_internal {

inline bool Known(std::string_view flag) {
  for (std::string_view f : kValueFlags) {
    if (f == flag) return true;
  }
  for (std::string_view f : kSwitches) {
    if (f == flag) return true;
  }
  return false;
}

inline Status Bad(std::string_view flag, std::string_view why) {
  return Status::InvalidArgument(std::string(flag) + ": " + std::string(why));
}

template <typename T>
Status Number(std::string_view flag, std::string_view text, T min, T max, T* out) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Bad(flag, "expected a number in " + std::to_string(min) + ".." +
                         std::to_string(max) + ", got '" + std::string(text) + "'");
  }
  *out = v;
  return Status::Ok();
}

// Milliseconds with an optional fraction ("0.1" is 100 us), as microseconds.
inline Status Micros(std::string_view flag, std::string_view text, uint64_t* out) {
  std::string s(text);
  char* end = nullptr;
  double ms = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(ms >= 0 && ms <= 3600000) ||
      (ms > 0 && ms < 0.001)) {
    return Bad(flag, "expected milliseconds in 0.001..3600000 (or 0), got '" + s + "'");
  }
  *out = static_cast<uint64_t>(ms * 1000 + 0.5);
  return Status::Ok();
}

inline Status Seconds(std::string_view flag, std::string_view text, double* out) {
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(v >= 0) || v > 1e7) {
    return Bad(flag, "expected seconds (e.g. 10, 2.5), got '" + s + "'");
  }
  *out = v;
  return Status::Ok();
}

inline Status Bool(std::string_view flag, std::string_view text, bool* out) {
  if (text == "true" || text == "1" || text == "yes") {
    *out = true;
  } else if (text == "false" || text == "0" || text == "no") {
    *out = false;
  } else {
    return Bad(flag, "expected true or false, got '" + std::string(text) + "'");
  }
  return Status::Ok();
}

inline std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    if (comma > start) out.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Applies one flag that takes a value.
inline Status ApplyValue(std::string_view flag, std::string_view v, Options* o) {
  using P = std::string_view;
  if (flag == "-h" || flag == "--host") { o->host = std::string(v); return Status::Ok(); }
  if (flag == "-p" || flag == "--port") return Number<uint16_t>(flag, v, 1, 65535, &o->port);
  if (flag == "-c" || flag == "--count") return Number<uint32_t>(flag, v, 1, 10000000, &o->clients);
  if (flag == "-n" || flag == "--startnumber") return Number<uint64_t>(flag, v, 0, UINT32_MAX, &o->start_index);
  if (flag == "-i" || flag == "--interval") return Number<uint32_t>(flag, v, 0, 3600000, &o->connect_interval_ms);
  if (flag == "-I" || flag == "--interval_of_msg") return Micros(flag, v, &o->message_interval_us);
  if (flag == "-t" || flag == "--topic") { o->topic = std::string(v); return Status::Ok(); }
  if (flag == "-s" || flag == "--size") return Number<uint32_t>(flag, v, 0, 256 * 1024 * 1024, &o->payload_size);
  if (flag == "-q" || flag == "--qos") return Number<int>(flag, v, 0, 2, &o->qos);
  if (flag == "-L" || flag == "--limit") return Number<uint64_t>(flag, v, 0, UINT64_MAX, &o->limit);
  if (flag == "-k" || flag == "--keepalive") return Number<uint32_t>(flag, v, 0, 65535, &o->keepalive_s);
  if (flag == "-u" || flag == "--username") { o->username = std::string(v); return Status::Ok(); }
  if (flag == "-P" || flag == "--password") { o->password = std::string(v); return Status::Ok(); }
  if (flag == "-V" || flag == "--version") return Number<int>(flag, v, 3, 5, &o->version);
  if (flag == "--ifaddr") { o->ifaddrs = SplitCommas(v); return Status::Ok(); }
  if (flag == "-C" || flag == "--clean") return Bool(flag, v, &o->clean);
  if (flag == "-x" || flag == "--session-expiry") return Number<uint32_t>(flag, v, 0, UINT32_MAX, &o->session_expiry_s);
  if (flag == "--id") { o->client_id = std::string(v); return Status::Ok(); }
  if (flag == "-F" || flag == "--inflight") return Number<uint32_t>(flag, v, 1, 65535, &o->inflight);
  if (flag == "-d" || flag == "--duration") return Seconds(flag, v, &o->duration_s);
  if (flag == "--loops") return Number<uint32_t>(flag, v, 0, 256, &o->loops);
  if (flag == "--max-connecting") return Number<uint32_t>(flag, v, 1, 1000000, &o->max_connecting);
  if (flag == "--sub-clients") return Number<uint32_t>(flag, v, 1, 10000000, &o->sub_clients);
  if (flag == "--sub-topic") { o->sub_topic = std::string(v); return Status::Ok(); }
  if (flag == "--sub-qos") return Number<int>(flag, v, 0, 2, &o->sub_qos);
  if (flag == "--sub-port") return Number<uint16_t>(flag, v, 1, 65535, &o->sub_port);
  if (flag == "--window") return Number<uint32_t>(flag, v, 0, UINT32_MAX, &o->window);
  if (flag == "--idle-ms") return Number<uint32_t>(flag, v, 0, 3600000, &o->idle_ms);
  if (flag == "--drain-ms") return Number<uint32_t>(flag, v, 0, 3600000, &o->drain_ms);
  if (flag == "--cafile") { o->cafile = std::string(v); o->tls = true; return Status::Ok(); }
  if (flag == "--cert") { o->certfile = std::string(v); o->tls = true; return Status::Ok(); }
  if (flag == "--key") { o->keyfile = std::string(v); o->tls = true; return Status::Ok(); }
  if (flag == "--broker-pid") return Number<int>(flag, v, 1, 1 << 30, &o->broker_pid);
  return Bad(P(flag), "unknown flag");
}

// Flags that take no value; false if `flag` is not one.
inline bool ApplySwitch(std::string_view flag, Options* o) {
  if (flag == "-r" || flag == "--retain") o->retain = true;
  else if (flag == "--tls" || flag == "-S") o->tls = true;
  else if (flag == "--insecure") o->insecure = o->tls = true;
  else if (flag == "--json") o->json = true;
  else if (flag == "--quiet") o->quiet = true;
  else if (flag == "--exit-after-subscribe") o->exit_after_subscribe = true;
  else return false;
  return true;
}

inline Status Check(Options* o) {
  bool needs_topic = o->mode != Mode::kConn;
  if (needs_topic && o->topic.empty()) return Bad("-t", "a topic is required");
  if (o->mode == Mode::kSub && o->exit_after_subscribe && o->clean) {
    return Bad("--exit-after-subscribe", "only makes sense with -C false");
  }
  if (!o->keyfile.empty() && o->certfile.empty()) return Bad("--key", "needs --cert");
  if (o->window > 0 && o->mode != Mode::kPubSub) return Bad("--window", "only for pubsub");
  if (o->sub_topic.empty()) o->sub_topic = o->topic;
  if (o->sub_qos < 0) o->sub_qos = o->qos;
  if (o->version == 5 && !o->clean && o->session_expiry_s == 0) o->session_expiry_s = 86400;
  if (o->client_id.empty()) {
    static const char* const kNames[] = {"pub", "sub", "conn", "pubsub"};
    o->client_id = std::string("fb-") + kNames[static_cast<int>(o->mode)] + "-" +
                   std::to_string(getpid()) + "-%i";
  }
  return Status::Ok();
}

}  // namespace parse_internal

inline Result<Options> ParseOptions(int argc, const char* const* argv) {
  namespace pi = parse_internal;
  Options o;
  if (argc < 2) return Status::InvalidArgument("missing mode: pub, sub, conn or pubsub");
  std::string_view mode = argv[1];
  if (mode == "--help" || mode == "help") return Status::InvalidArgument("help");
  if (mode == "pub") o.mode = Mode::kPub;
  else if (mode == "sub") o.mode = Mode::kSub;
  else if (mode == "conn") o.mode = Mode::kConn;
  else if (mode == "pubsub") o.mode = Mode::kPubSub;
  else return Status::InvalidArgument("unknown mode '" + std::string(mode) +
                                      "': expected pub, sub, conn or pubsub");
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help") return Status::InvalidArgument("help");
    if (!arg.starts_with("-")) return pi::Bad(arg, "unexpected argument");
    std::string_view flag = arg;
    std::string_view value;
    size_t eq = arg.find('=');
    if (arg.starts_with("--") && eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (!pi::Known(flag)) return pi::Bad(flag, "unknown flag");
    if (pi::ApplySwitch(arg, &o)) continue;
    if (flag == arg) {
      if (i + 1 >= argc) return pi::Bad(flag, "needs a value");
      value = argv[++i];
    }
    Status st = pi::ApplyValue(flag, value, &o);
    if (!st.ok()) return st;
  }
  Status st = pi::Check(&o);
  if (!st.ok()) return st;
  return o;
}

inline const char* Usage() {
  return R"(usage: ferry-bench pub|sub|conn|pubsub [flags]

  pub     publishers; -L messages in all, or -d seconds
  sub     subscribers; -L messages to receive, or -d seconds
  conn    connect -c clients and keep them idle (-d seconds, or until Ctrl-C)
  pubsub  --sub-clients subscribers, then -c publishers, in one process; loss
          is counted against what the publishers sent

connection
  -h, --host HOST          broker address (localhost)
  -p, --port PORT          broker port (1883)
  -c, --count N            clients (200)
  -n, --startnumber N      index of the first client, %i (0)
  -i, --interval MS        between connects (10); see also --max-connecting
  -k, --keepalive S        keep alive (300)
  -u, --username USER      -P, --password PASS
  -V, --version 3|4|5      MQTT 3.1, 3.1.1 or 5.0 (5)
  -C, --clean true|false   clean session / clean start (true)
  -x, --session-expiry S   v5 session expiry interval (86400 with -C false)
      --id TEMPLATE        client identifier template (fb-MODE-PID-%i)
      --ifaddr A,B,...     local source addresses, used in turn
      --max-connecting N   handshakes in progress per loop (256)
TLS
  -S, --tls                use TLS; --cafile FILE, --cert FILE, --key FILE,
      --insecure           do not verify the broker's certificate
messages
  -t, --topic TEMPLATE     %i client index, %c client id, %s message number
  -s, --size BYTES         payload size (256); 24+ carries the latency stamp
  -q, --qos 0|1|2          QoS (0)
  -r, --retain             publish retained messages
  -I, --interval_of_msg MS per client (1000; 0.1 = 10,000 msg/s); 0 = as fast as the broker takes
  -F, --inflight N         unacknowledged QoS 1/2 publishes per client (32)
  -L, --limit N            pub: messages in all; sub: messages to receive
  -d, --duration S         stop after S seconds
pubsub
  --sub-clients N (1)   --sub-topic FILTER (-t)   --sub-qos Q (-q)
  --sub-port PORT          subscribers connect to this port of -h (-p): another
                           node of a cluster
  --drain-ms MS            wait this long without progress for the last
                           messages once publishing stops (2000)
  --window N               a publisher waits while N of its messages are
                           neither received nor known lost (0 = no limit)
sub
  --exit-after-subscribe   leave once subscribed (with -C false: a session
                           that collects messages while away)
  --idle-ms MS             stop once no message came for MS after the first
output and process
  --loops N                event loops, one thread each (0 = one per core)
  --json                   print the summary as JSON on stdout
  --quiet                  no progress lines on stderr
  --broker-pid PID         report the broker's CPU and RSS beside ours, in the
                           progress lines and the summary
  --help                   this text
)";
}

}  // namespace ferry::bench

// The result of one ferry-bench run, and how it is printed: a few lines for
// people, or one JSON object (--json) for scripts such as bench/run.sh.
//
// Rates are per second over the window in which that thing happened:
// send_rate over the publishing window, recv_rate from the first to the last
// message received, connect_rate from the first connect to the last CONNACK.
// Latencies are nanoseconds. A value that was not measured is -1 in JSON and
// left out of the text.
//
// Stateless; any thread may call these.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/histogram.h"

namespace ferry::bench {

struct Summary {
  std::string mode;
  uint64_t clients = 0;       // publishers, subscribers or idle clients per mode
  uint64_t sub_clients = 0;   // pubsub only
  int qos = 0;
  uint64_t payload_size = 0;
  // Start of the run to its end; a run that waited --drain-ms in vain for
  // lost messages ends at its last progress. CPU percentages use it.
  double elapsed_s = 0;

  uint64_t connected = 0;
  uint64_t connect_failed = 0;
  uint64_t closed_by_broker = 0;
  double connect_s = 0;       // first connect attempt to last CONNACK

  uint64_t sent = 0;
  uint64_t acked = 0;
  double publish_s = 0;

  uint64_t received = 0;
  double first_recv_s = -1;   // since the run started
  double last_recv_s = -1;
  int64_t expected = -1;      // known in pubsub mode and with sub -L
  int64_t lost = -1;
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;

  LatencyHistogram latency;

  double bench_cpu_s = 0;
  int64_t bench_rss = -1;
  double broker_cpu_s = -1;
  int64_t broker_rss_start = -1;  // before the first connect
  int64_t broker_rss = -1;        // at the end, before the clients disconnect

  double ConnectRate() const { return connect_s > 0 ? connected / connect_s : 0; }
  double SendRate() const { return publish_s > 0 ? sent / publish_s : 0; }
  double RecvRate() const {
    double window = last_recv_s - first_recv_s;
    return window > 0 ? received / window : 0;
  }
  double CpuPercent(double cpu_s) const {
    return elapsed_s > 0 && cpu_s >= 0 ? 100.0 * cpu_s / elapsed_s : -1;
  }
};

namespace summary_internal {
inline void Field(std::string& out, const char* key, double v, const char* fmt = "%.3f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  if (out.size() > 1) out += ",";
  out += "\"";
  out += key;
  out += "\":";
  out += buf;
}
inline void Field(std::string& out, const char* key, int64_t v) {
  Field(out, key, static_cast<double>(v), "%.0f");
}
inline double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
}  // namespace summary_internal

inline std::string FormatJson(const Summary& s) {
  using summary_internal::Field;
  auto i = [](uint64_t v) { return static_cast<int64_t>(v); };
  std::string out = "{\"mode\":\"" + s.mode + "\"";
  Field(out, "clients", i(s.clients));
  Field(out, "sub_clients", i(s.sub_clients));
  Field(out, "qos", int64_t{s.qos});
  Field(out, "payload_size", i(s.payload_size));
  Field(out, "elapsed_s", s.elapsed_s);
  Field(out, "connected", i(s.connected));
  Field(out, "connect_failed", i(s.connect_failed));
  Field(out, "closed_by_broker", i(s.closed_by_broker));
  Field(out, "connect_s", s.connect_s);
  Field(out, "connect_rate", s.ConnectRate(), "%.1f");
  Field(out, "sent", i(s.sent));
  Field(out, "acked", i(s.acked));
  Field(out, "publish_s", s.publish_s);
  Field(out, "send_rate", s.SendRate(), "%.1f");
  Field(out, "received", i(s.received));
  Field(out, "first_recv_s", s.first_recv_s);
  Field(out, "last_recv_s", s.last_recv_s);
  Field(out, "recv_rate", s.RecvRate(), "%.1f");
  Field(out, "expected", s.expected);
  Field(out, "lost", s.lost);
  Field(out, "duplicates", i(s.duplicates));
  Field(out, "out_of_order", i(s.out_of_order));
  bool timed = s.latency.Count() > 0;
  auto lat = [&](uint64_t ns) { return timed ? static_cast<int64_t>(ns) : int64_t{-1}; };
  Field(out, "latency_count", i(s.latency.Count()));
  Field(out, "latency_p50_ns", lat(s.latency.Percentile(50)));
  Field(out, "latency_p99_ns", lat(s.latency.Percentile(99)));
  Field(out, "latency_p999_ns", lat(s.latency.Percentile(99.9)));
  Field(out, "latency_max_ns", lat(s.latency.Max()));
  Field(out, "latency_mean_ns", lat(s.latency.Mean()));
  Field(out, "bench_cpu_pct", s.CpuPercent(s.bench_cpu_s), "%.1f");
  Field(out, "bench_rss", s.bench_rss);
  Field(out, "broker_cpu_pct", s.CpuPercent(s.broker_cpu_s), "%.1f");
  Field(out, "broker_rss_start", s.broker_rss_start);
  Field(out, "broker_rss", s.broker_rss);
  out += "}";
  return out;
}

inline std::string FormatText(const Summary& s) {
  using summary_internal::Ms;
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("%s: %llu clients", s.mode.c_str(), static_cast<unsigned long long>(s.clients));
  if (s.sub_clients > 0) add(" + %llu subscribers", static_cast<unsigned long long>(s.sub_clients));
  add(", QoS %d, %llu-byte payloads, %.1f s\n", s.qos,
      static_cast<unsigned long long>(s.payload_size), s.elapsed_s);
  add("connected   %llu (failed %llu, closed by broker %llu) in %.2f s: %.0f/s\n",
      static_cast<unsigned long long>(s.connected), static_cast<unsigned long long>(s.connect_failed),
      static_cast<unsigned long long>(s.closed_by_broker), s.connect_s, s.ConnectRate());
  if (s.sent > 0) {
    add("sent        %llu in %.2f s: %.0f msg/s (acked %llu)\n",
        static_cast<unsigned long long>(s.sent), s.publish_s, s.SendRate(),
        static_cast<unsigned long long>(s.acked));
  }
  if (s.received > 0 || s.expected >= 0) {
    add("received    %llu: %.0f msg/s", static_cast<unsigned long long>(s.received), s.RecvRate());
    if (s.expected >= 0) add(" (expected %lld)", static_cast<long long>(s.expected));
    out += "\n";
    add("lost %lld, duplicates %llu, out of order %llu\n", static_cast<long long>(s.lost),
        static_cast<unsigned long long>(s.duplicates),
        static_cast<unsigned long long>(s.out_of_order));
  }
  if (s.latency.Count() > 0) {
    add("latency     p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
        Ms(s.latency.Percentile(50)), Ms(s.latency.Percentile(99)),
        Ms(s.latency.Percentile(99.9)), Ms(s.latency.Max()));
  }
  add("cpu         bench %.0f%%", s.CpuPercent(s.bench_cpu_s));
  if (s.broker_cpu_s >= 0) add(", broker %.0f%%", s.CpuPercent(s.broker_cpu_s));
  out += " (100% = one core)";
  if (s.broker_rss >= 0) add(", broker RSS %.1f MB", static_cast<double>(s.broker_rss) / 1048576.0);
  out += "\n";
  return out;
}

}  // namespace ferry::bench

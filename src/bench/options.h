// ferry-bench command line: the options of one run and their parser. Flags
// follow emqtt_bench where it has one (-h host, -c clients, -I interval, ...).
//
// Stateless; any thread may call ParseOptions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::bench {

enum class Mode { kPub, kSub, kConn, kPubSub };

struct Options {
  Mode mode = Mode::kPub;
  std::string host = "localhost";
  uint16_t port = 1883;
  uint32_t clients = 200;           // -c
  uint64_t start_index = 0;         // -n
  uint32_t connect_interval_ms = 10;  // -i
  uint64_t message_interval_us = 1000000;  // -I (in ms, fractions allowed); 0 = as fast as the broker takes them
  std::string topic;                // -t, template
  uint32_t payload_size = 256;      // -s
  int qos = 0;                      // -q
  uint64_t limit = 0;               // -L: pub: messages in all; sub: messages to receive
  uint32_t keepalive_s = 300;       // -k
  std::string username;             // -u
  std::string password;             // -P
  int version = 5;                  // -V: 3, 4 or 5
  std::vector<std::string> ifaddrs;  // --ifaddr a,b,c
  bool retain = false;              // -r
  bool clean = true;                // -C true|false
  uint32_t session_expiry_s = 0;    // -x, v5; defaulted when -C false
  std::string client_id = "";       // --id template; default set by the parser
  uint32_t inflight = 32;           // -F: QoS 1/2 publishes awaiting their ack, per client
  double duration_s = 0;            // -d: stop after this long; 0 = no time limit
  uint32_t loops = 0;               // --loops: threads, one libuv loop each; 0 = cores
  uint32_t max_connecting = 256;    // --max-connecting: handshakes in progress, per loop
  // pubsub: subscribers run in the same process and start first.
  uint32_t sub_clients = 1;         // --sub-clients
  std::string sub_topic;            // --sub-topic (default: the -t template)
  uint16_t sub_port = 0;            // --sub-port: subscribers connect there (0: -p), e.g.
                                    // another node of a cluster
  int sub_qos = -1;                 // --sub-qos (default: -q)
  uint32_t drain_ms = 2000;         // --drain-ms: wait for stragglers after publishing
  // --window: a publisher waits while more than this many of its messages
  // are neither received by every matching subscriber nor known lost
  // (skipped over). Bounds the backlog a saturated broker builds up, so the
  // run measures what the broker delivers, not what the kernel buffers.
  uint32_t window = 0;              // 0 = open loop
  bool exit_after_subscribe = false;  // sub: leave right after SUBACK
  uint32_t idle_ms = 0;             // sub: stop this long after the last message; 0 = never
  // TLS
  bool tls = false;
  std::string cafile, certfile, keyfile;
  bool insecure = false;
  // Output
  bool json = false;
  bool quiet = false;
  int broker_pid = 0;               // --broker-pid: report this process's CPU and RSS too
};

// Parses argv (argv[0] is the program, argv[1] the mode). Errors:
// InvalidArgument naming the flag and what was wrong. "--help" yields an
// InvalidArgument whose message is "help"; print Usage() then.
inline Result<Options> ParseOptions(int argc, const char* const* argv);

// The usage text.
inline const char* Usage();

}  // namespace ferry::bench

#include "bench/options_parse.h"  // IWYU pragma: keep

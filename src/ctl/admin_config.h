// The [admin] section of ferry.conf: where a node serves its admin interface,
// read the same way by ferryd (which serves it) and ferryctl (which finds the
// node through it).
//
//   [admin]
//   socket =                      # default <data_dir>/ferry.sock
//   http_bind = 127.0.0.1:18083   # empty = no HTTP API
//   http_token =                  # bearer token; required from non-loopback peers
//   idle_timeout = 10s
//
// Pure functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/config.h"

namespace ferry::ctl {

inline constexpr std::string_view kAdminSection = "admin";

struct AdminConfig {
  std::string socket_path;  // never empty once read
  bool http_enabled = true;
  std::string http_bind = "127.0.0.1:18083";  // as written
  std::string http_host = "127.0.0.1";
  uint16_t http_port = 18083;
  std::string http_token;  // empty = only loopback peers are served
  // An admin connection without a whole request, or whose reader stops
  // reading, for this long is closed.
  std::chrono::milliseconds idle_timeout{10000};
  std::string node_name = "ferry@127.0.0.1";  // [node] name, for messages
};

// Reads [admin] (and [node] data_dir and name, which it depends on) from
// `raw`, adding every problem to `errors` as "file:line: [admin] key: ...".
// Unknown keys in [admin] are errors.
AdminConfig ReadAdminConfig(const core::RawConfig& raw, core::ConfigErrors& errors);

// The [admin] keys, for the documentation check.
std::vector<std::string> AdminConfigKeys();

}  // namespace ferry::ctl

// The node side of the admin interface: a Unix socket speaking the protocol
// of ctl/admin_api.h, and an HTTP listener serving the same commands as a
// small REST API, plus /metrics (Prometheus) and /api/v1/health. Both run
// every command through the node's AdminRegistry (core/admin.h).
//
// HTTP:
//   GET  /api/v1/health           200 {"status":"ok"} while the node accepts
//                                 MQTT connections, else 503 with the reason:
//                                 {"status":"unavailable","reason":"..."};
//                                 503 {"status":"degraded","reason":"..."}
//                                 while it accepts them but cannot keep what
//                                 it promises (its durable store cannot
//                                 write). No token needed.
//   GET  /metrics                 Prometheus text format.
//   GET  /api/v1/<words>?opts     a read command: /api/v1/clients/show/c1,
//                                 /api/v1/clients/list?limit=10&connected
//   POST /api/v1/<words>?opts     any command: /api/v1/clients/kick/c1
// Path segments are percent-decoded (a topic filter a/# is a%2F%23); each
// query parameter becomes an option (--limit=10, --connected). The body is
// one JSON document ({"v":1,"ok":true,"result":...}, or "columns" and
// "rows" for a listing, streamed), or with ?format=ndjson the frames of
// admin_api.h. Errors carry an HTTP status (400 bad argument, 401 token,
// 404 not found, 405 method, 413 too large, 503 unavailable).
//
// Access: the Unix socket is mode 0600 (its owner, and root). An HTTP peer
// on a loopback address needs no token; any other peer must send
// "Authorization: Bearer <[admin] http_token>", and is refused when no token
// is configured. A wrong token is refused from any peer.
//
// Abuse: requests are bounded (kMaxRequestBytes), a connection that stays
// idle (no complete request, or a reader that stops reading) for
// idle_timeout is closed, at most max_connections are served at once, and a
// listing is pulled one page at a time as the client reads it, so a slow or
// hostile client costs a bounded amount of memory and never blocks the loop.
// /api/v1/health always answers: when every slot is taken, the connection
// idle longest without a complete request is closed to make room, and a
// connection let in past the limit may still ask for health (see Admit).
//
// Thread: created, used and destroyed on the main loop's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/admin.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/status.h"
#include "ctl/admin_api.h"

namespace ferry::ctl {

// What /api/v1/health answers.
struct HealthReport {
  bool accepting_connections = false;
  // Accepting, but failing at something the node promises (its durable
  // store cannot write): 503 "degraded", so that a load balancer sends
  // clients to another node.
  bool degraded = false;
  std::string reason;  // why, unless healthy
};

struct AdminServerOptions {
  std::string socket_path;  // empty = no Unix socket
  bool http_enabled = false;
  std::string http_host = "127.0.0.1";
  uint16_t http_port = 0;  // 0 = any free port (see http_address())
  std::string http_token;
  std::chrono::milliseconds idle_timeout{10000};
  size_t max_request_bytes = kMaxRequestBytes;
  size_t max_connections = 64;
  size_t page_rows = 256;
  // /api/v1/health.
  std::function<HealthReport()> health;
  // /metrics: the body, in the Prometheus text format.
  std::function<std::string()> metrics;
};

class AdminServer {
 public:
  // Binds the socket (replacing a stale socket file left by a node that is
  // gone, refusing one that a running node answers on) and the HTTP
  // listener. Borrows `loop` and `registry`, which must outlive the server.
  // Errors: IoError naming the path or address.
  static Result<std::unique_ptr<AdminServer>> Start(core::Loop& loop,
                                                    core::AdminRegistry& registry,
                                                    AdminServerOptions options);
  // Closes every connection and listener and removes the socket file.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // "127.0.0.1:18083" with the bound port; "" when HTTP is off.
  std::string http_address() const;
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  class Conn;
  AdminServer(core::Loop& loop, core::AdminRegistry& registry, AdminServerOptions options);
  Status BindSocket();
  Status BindHttp();
  void Accept(uv_stream_t* listener, bool http);
  void Admit(Conn& fresh);
  void LogRefusal();

  core::Loop& loop_;
  core::AdminRegistry& registry_;
  AdminServerOptions options_;
  core::UvHandle<uv_pipe_t> pipe_;
  core::UvHandle<uv_tcp_t> tcp_;
  bool socket_bound_ = false;
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns_;
  uint64_t accepted_ = 0;  // connections accepted so far
  // Repeated warnings, one line per 10 s with a count; flushed by flush_.
  core::LogLimiter refused_log_{"admin connections refused"};
  core::LogLimiter accept_failed_log_{"admin accept failures"};
  core::UvHandle<uv_timer_t> flush_;
};

// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
bool IsLoopbackAddress(const struct sockaddr* addr);

}  // namespace ferry::ctl

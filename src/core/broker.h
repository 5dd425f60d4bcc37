// The Broker facade: a complete MQTT 3.1, 3.1.1 and 5.0 node.
//
// A Broker owns `workers` I/O threads, each running its own libuv loop and
// owning the connections it accepted and the sessions whose client ids hash
// to it; the router (subscriptions, shared groups, retained messages) shared
// by all of them; and the durable store (SQLite, on its own thread) that keeps
// retained messages and persistent sessions across restarts.
//
// Thread rules: Create, Start, Reload, Shutdown and the accessors are called
// from the thread that runs `main_loop` (ferryd's main thread). Listeners
// accept on that loop and hand sockets to the workers.
//
// Durability: a QoS 1 or 2 PUBLISH that is retained, or that is queued or in
// flight for a persistent session, is acknowledged to its publisher only after
// the store committed it (WAL, synchronous=NORMAL): it survives a SIGKILL of
// the node; a power loss can lose the last commit (see durable_store.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/broker_options.h"
#include "core/loop.h"
#include "core/status.h"

namespace ferry::core {

class AdminRegistry;
struct BrokerContext;
struct Metrics;

// A bound listener, e.g. {"tcp.default", "127.0.0.1", 40313}.
struct BoundListener {
  std::string id;
  std::string host;
  uint16_t port = 0;
};

// A listener as `ferryctl listeners` shows it.
struct ListenerStatus {
  BoundListener bound;            // the address it has (or last had) bound
  std::string type;               // "tcp", "ssl", "ws" or "wss"
  bool proxy_protocol = false;    // connections start with a PROXY header
  uint32_t connections = 0;       // open connections accepted through it
  uint32_t max_connections = 0;   // 0 = unlimited
  uint32_t max_connection_rate = 0;  // new connections per second; 0 = unlimited
  bool running = false;           // accepting new connections
};

class Broker {
 public:
  // Validates what the config loader cannot (e.g. the password and ACL files
  // exist and parse). Errors name the file and line.
  static Result<std::unique_ptr<Broker>> Create(BrokerOptions options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Opens the durable store under data_dir and restores it, binds every
  // listener, starts the workers and the $SYS timer on `main_loop`.
  // Errors: a store that cannot be opened (corrupt, unwritable data_dir), a
  // listener that cannot bind. Nothing is left running on error.
  Status Start(Loop& main_loop);

  const std::vector<BoundListener>& listeners() const;
  const std::string& node_name() const;

  // Re-reads the password file and the ACL file named in `options` (the log
  // level is the caller's). Keeps the old ones and returns the error if a
  // file is bad. Clients stay connected.
  Status Reload(const BrokerOptions& options);

  // Stops accepting, sends v5 clients DISCONNECT 0x8B, closes every
  // connection, flushes the store and joins the workers. `done` runs on the
  // main loop when all of that has finished.
  void Shutdown(std::function<void()> done);

  const Metrics& metrics() const;

  // ---- admin (core/broker_admin.cpp); main loop, after Start().

  // Registers the node's own commands in `registry`: status, broker,
  // clients, subscriptions, routes, retained, listeners, log. Errors: a
  // command already registered under one of those paths.
  Status RegisterAdminCommands(AdminRegistry& registry);
  // True while the node accepts MQTT connections: started, not shutting
  // down, and at least one listener running. Otherwise, if `why` is given,
  // sets it to the reason, e.g. "no MQTT listener is running (stopped:
  // tcp.default)".
  bool AcceptingConnections(std::string* why = nullptr) const;
  // The node's metrics in the Prometheus text exposition format (0.0.4).
  std::string PrometheusMetrics() const;

  std::vector<ListenerStatus> ListenerStatuses() const;
  // Stops accepting on listener `id` (its connected clients stay), or binds
  // it again on the address it had. Errors: NotFound for an unknown id;
  // InvalidArgument if it is already stopped or running; the bind error.
  Status StopListener(std::string_view id);
  Status StartListener(std::string_view id);

 private:
  explicit Broker(BrokerOptions options);
  class Acceptor;
  void PublishSys();

  std::unique_ptr<BrokerContext> ctx_;
  bool started_ = false;
  bool shutting_down_ = false;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::vector<BoundListener> bound_;
  Loop* main_loop_ = nullptr;
  UvHandle<uv_timer_t> sys_timer_;
  UvHandle<uv_async_t> shutdown_async_;
  std::function<void()> shutdown_done_;
};

}  // namespace ferry::core

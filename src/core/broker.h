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
//
// Plug-ins that route beyond this node (bridges, later the cluster) use two
// narrow entry points and nothing else of the core:
//  * Route hooks: a RouteHook registers topic filters (AddHookFilter). They
//    live in the router's trie beside client subscriptions, so a publish is
//    matched against both in one lookup. Each routed message that matches is
//    handed to the hook on the routing thread with a RouteCompletion; the
//    publisher's PUBACK/PUBREC waits for it exactly as it waits for local
//    subscribers and the store's commit.
//  * Injection: Publish() routes a message as if a client had published it
//    and says when every local subscriber has taken it (and any durable write
//    committed), so a bridge acknowledges upstream only then; or that the
//    durable store could not keep it, so a bridge does not acknowledge it.
// Loop protection between nodes is carried on the message (Message::path,
// core/message.h): a message whose path already names this node is dropped
// (metrics().dropped_loop) instead of being delivered a second time.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/broker_options.h"
#include "core/durable_store.h"
#include "core/loop.h"
#include "core/message.h"
#include "core/route_events.h"
#include "core/status.h"

namespace ferry::core {

// The acknowledgement a publisher waits for, as one route hook's share of it.
// Move-only. Complete() may be called from any thread and is idempotent; a
// RouteCompletion destroyed without it completes then, so a hook that drops
// a message (or is shut down) never leaves a publisher waiting forever.
class RouteCompletion {
 public:
  RouteCompletion() = default;  // nobody waits
  explicit RouteCompletion(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~RouteCompletion() { Complete(); }
  RouteCompletion(RouteCompletion&& other) noexcept : fn_(std::exchange(other.fn_, nullptr)) {}
  RouteCompletion& operator=(RouteCompletion&& other) noexcept {
    if (this != &other) {
      Complete();
      fn_ = std::exchange(other.fn_, nullptr);
    }
    return *this;
  }
  RouteCompletion(const RouteCompletion&) = delete;
  RouteCompletion& operator=(const RouteCompletion&) = delete;

  // True if a publisher waits for this completion (it published QoS 1 or 2).
  bool waited_on() const { return fn_ != nullptr; }
  void Complete() {
    if (auto fn = std::exchange(fn_, nullptr)) fn();
  }
  // The hook could not take the message (e.g. its disk stayed full until
  // shutdown): the publisher is never acknowledged, so it sends the message
  // again after it reconnects. Any thread; no-op once completed.
  void Abandon() { fn_ = nullptr; }

 private:
  std::function<void()> fn_;
};

// What a publisher waiting for a routed message is told: kSuccess once the
// message is safe, or why this node could not keep it: kQuotaExceeded (the
// durable store's disk is full) or kUnspecifiedError (another store error).
// A failure is never an acknowledgement: the message may have reached some
// subscribers, but is not on disk where it should be.
using RouteDone = std::function<void(ReasonCode)>;

// Receives the messages routed on this node whose topic matches a filter
// registered for it.
class RouteHook {
 public:
  virtual ~RouteHook() = default;

  // Called once per routed message that matches at least one of the hook's
  // filters, with the tags of every filter that matched (each tag once). Runs
  // on the routing thread: the publishing client's worker loop, or the
  // thread that called Broker::Publish. Must not block: no disk, no waiting.
  // Messages whose origin_client or injected_by is the hook's owner
  // identity are not given to it (No Local, as for a client's own
  // subscription; a module never gets back what it injected).
  // `done` is waited on when the publisher expects an acknowledgement; the
  // hook completes it once the message is safe with it (e.g. written to a
  // durable queue) or once it decided to drop the message.
  virtual void OnRoute(const MessagePtr& message, std::span<const uint32_t> tags,
                       RouteCompletion done) = 0;
  // Whether the hook is also given messages that another node of the
  // cluster forwarded here (PublishForwarded). By default it is not: the
  // node where a message was published gave it to its own hooks, so a
  // bridge configured on every node forwards each message once. A module
  // that acts for the whole cluster (a cluster-wide bridge) says yes.
  virtual bool TakesForwarded() const { return false; }
  // Whether the hook carries messages to other nodes of the cluster: then
  // it is not given those meant for this node alone (Message::node_local).
  virtual bool CarriesToPeers() const { return false; }
  // The same for a hook that is also a remote member of shared groups
  // (Broker::SetSharedHook): `shared` names the groups it was chosen to
  // deliver to, each with the tag of the member (`tags` may then be empty).
  // By default the groups are ignored.
  virtual void OnRouteShared(const MessagePtr& message, std::span<const uint32_t> tags,
                             std::span<const SharedPick> shared, RouteCompletion done) {
    (void)shared;
    OnRoute(message, tags, std::move(done));
  }
};

// How a message another node forwarded is routed here
// (Broker::PublishForwarded).
struct ForwardedDelivery {
  // To this node's subscribers, as a publish here would be, except its
  // shared groups: the sending node chose their members.
  bool plain = true;
  // And to one local member of each of these shared groups ("$share/g/f").
  std::vector<std::string> groups;
};

// Told of every retained message set or deleted on this node (a PUBLISH with
// RETAIN, including an empty one that deletes), except $SYS topics and
// those its owner injected. Runs on the routing thread; must not block.
class RetainedObserver {
 public:
  virtual ~RetainedObserver() = default;
  virtual void OnRetained(const MessagePtr& message) = 0;
};

// The routes other nodes own (the cluster's route table), for `routes list`
// and `routes show` to show beside this node's. Called on the main loop;
// each `done` runs once, on any thread.
class RemoteRouteDirectory {
 public:
  struct Row {
    std::string filter;  // as its node has it: "$share/g/f" for a shared group
    std::string node;
    uint32_t shared_members = 0;  // a shared group's members there; 0 for a plain route
  };
  virtual ~RemoteRouteDirectory() = default;
  // Up to `max` rows that sort after (after_filter, after_node), in
  // (filter, node) order.
  virtual void List(std::string after_filter, std::string after_node, size_t max,
                    std::function<void(std::vector<Row>)> done) = 0;
  // The rows whose filter matches the topic name `topic`.
  virtual void Matching(std::string topic, std::function<void(std::vector<Row>)> done) = 0;
};

// ---- Sessions across nodes: what a cluster plugs in (Broker::SetSessionHook)
// so that a client id has one session in the whole cluster.

// A CONNECT that passed authentication, before its session is chosen.
struct SessionClaimRequest {
  std::string client_id;
  bool clean_start = true;
};

// Where the session of a claimed client id comes from.
struct SessionClaim {
  enum class Outcome : uint8_t {
    kLocal,     // no other node holds it: on as a node alone would go on
    kImported,  // it was on another node and moved here: `session`
    kBusy,      // another CONNECT of the id is under way: CONNACK 0x89
  };
  Outcome outcome = Outcome::kLocal;
  std::optional<StoredSession> session;  // kImported
  uint64_t id = 0;                       // the hook's own, given back to Connected
  std::string why;                       // kBusy: for the log and the v5 reason string
};

class SessionHook {
 public:
  virtual ~SessionHook() = default;
  // Called on the worker that owns the client id for every CONNECT that
  // passed authentication. Returns the claim, or nullopt and then calls
  // `later` exactly once, from any thread; the connection reads nothing
  // until then. Must not block.
  virtual std::optional<SessionClaim> Claim(const SessionClaimRequest& request,
                                            std::function<void(SessionClaim)> later) = 0;
  // The CONNECT of claim `claim_id` ended: CONNACK sent (`connected`), or
  // refused, or the client went away first (an imported session is then
  // kept here, offline). Worker thread; must not block.
  virtual void Connected(const std::string& client_id, uint64_t claim_id, bool connected) = 0;
};

// One of this node's sessions as another node sees it.
struct SessionBrief {
  std::string client_id;
  bool connected = false;
  // Unix ms of its last CONNECT on this node; 0 for a session restored
  // from the store that no client has connected to since. Of two copies of
  // a session the one connected later is the client's.
  uint64_t connected_at_ms = 0;
};

// The clients of the other nodes of a cluster, for `clients show`, `clients
// kick` and `clients list --cluster` (Broker::SetRemoteClients): each runs
// the same command on the other nodes, as `clients show ID --local` would
// run there. Any thread; each `done` runs once, on any thread.
class RemoteClientDirectory {
 public:
  // One page of a listing on another node: its rows (a JSON array, as
  // text) and the cursor of the next page (0 after the last).
  struct Page {
    std::string rows;
    uint64_t next = 0;
  };
  virtual ~RemoteClientDirectory() = default;
  // The other nodes that run now, by name.
  virtual std::vector<std::string> Nodes() = 0;
  // Runs the admin command `words` on `node`: its value (JSON text) or its
  // error (NotFound, InvalidArgument ...; Unavailable if the node did not
  // answer).
  virtual void Call(std::string node, std::vector<std::string> words,
                    std::function<void(Result<std::string>)> done) = 0;
  // The listing `words` on `node`, a page of at most `max_rows` at a time:
  // `cursor` 0 starts it, then each page's `next`.
  virtual void List(std::string node, std::vector<std::string> words, uint64_t cursor,
                    size_t max_rows, std::function<void(Result<Page>)> done) = 0;
};

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

  // ---- Plug-in entry points. Any thread, between Start() and Shutdown().

  // Registers `filter` for `hook` under the owner identity `owner`, with a
  // tag the hook chooses (e.g. the index of a rule). A hook may register many
  // filters; the same (owner, filter, tag) again replaces the hook. The router
  // keeps a reference to `hook` while any of its filters is registered, and a
  // routing thread may still be inside OnRoute just after removal.
  // Errors: InvalidArgument for an invalid topic filter or a $share form.
  Status AddHookFilter(std::string_view owner, std::string_view filter, uint32_t tag,
                       std::shared_ptr<RouteHook> hook);
  // Returns true if the filter was registered.
  bool RemoveHookFilter(std::string_view owner, std::string_view filter, uint32_t tag);
  // Many filters of one (owner, tag) in one step (a peer's routes when it
  // joins or leaves). All are checked first: InvalidArgument, and nothing
  // added, if one is invalid. Return how many were new / were removed.
  Result<size_t> AddHookFilters(std::string_view owner, uint32_t tag,
                                std::span<const std::string> filters,
                                std::shared_ptr<RouteHook> hook);
  size_t RemoveHookFilters(std::string_view owner, uint32_t tag,
                           std::span<const std::string> filters);
  // A remote member of the shared group `group` ("$share/g/f", "$queue/f"):
  // `hook` delivers for (owner, tag) to `members` subscribers elsewhere (0
  // removes it). A publish here picks a remote member only when the group
  // has no local member, in proportion to the counts, and tells the hook
  // through OnRouteShared. Errors: InvalidArgument for a filter that is not
  // a valid shared form.
  Status SetSharedHook(std::string_view owner, std::string_view group, uint32_t tag,
                       uint32_t members, std::shared_ptr<RouteHook> hook);

  // Route events (core/route_events.h): `observer` (nullptr to stop) is told
  // when a route gains its first subscriber or loses its last, and of every
  // change of a shared group's members; the result is the snapshot of the
  // routes at the moment it was set, which those events continue.
  std::vector<RouteEvent> WatchRoutes(std::shared_ptr<RouteObserver> observer);

  // The remote routes `routes list` and `routes show` add (nullptr: none).
  // Main loop.
  void SetRemoteRoutes(std::shared_ptr<RemoteRouteDirectory> directory);
  // The other nodes' clients `clients show`, `clients kick` and `clients
  // list --cluster` reach (nullptr: none). Main loop.
  void SetRemoteClients(std::shared_ptr<RemoteClientDirectory> directory);

  // Retained events: `observer` (nullptr to stop) under the owner identity
  // `owner` is told of each retained message set or deleted from now on;
  // the result is every retained message held at that moment ($SYS
  // excepted), for a node that joins.
  std::vector<MessagePtr> WatchRetained(std::string_view owner,
                                        std::shared_ptr<RetainedObserver> observer);
  // Keeps a retained message (an empty payload deletes) replicated from
  // another node, without delivering it to anyone: in memory and in the
  // durable store, unless the one held for its topic was received later
  // (last writer wins by received_at_ms).
  void StoreRetained(MessagePtr message);
  // Drops every retained message but $SYS ones (a node joining a cluster
  // takes the cluster's); returns how many.
  size_t ClearRetained();
  // Every retained message held now, $SYS ones excepted. Any thread.
  std::vector<MessagePtr> AllRetained() const;

  // Routes `message` as a client's publish would be routed: retained store,
  // subscribers, route hooks (except its origin_client's own). `done`, if
  // set, runs once every local subscriber has taken the message and any
  // durable write has committed (kSuccess) or failed (RouteDone), on
  // whichever thread finished last (it should post to the caller's loop and
  // return). A message whose path names this node is dropped and `done`
  // runs at once with kSuccess.
  // REQUIRES: message->topic is a valid topic name.
  void Publish(MessagePtr message, RouteDone done);
  // The same for a message another node matched and forwarded here, routed
  // as `delivery` says; `done` as for Publish.
  void PublishForwarded(MessagePtr message, ForwardedDelivery delivery, RouteDone done);
  // ---- Sessions across nodes (core/session_transfer.cpp). Any thread,
  // after Start(); each `done` runs once, on a worker thread (it must post
  // to its caller's loop and return).

  // Every CONNECT asks `hook` where its session comes from (nullptr: none).
  void SetSessionHook(std::shared_ptr<SessionHook> hook);
  // The session of `client_id` here, if any (one exported to another node
  // is not, while the hand-off runs: ExportSession).
  void LookupSession(std::string client_id,
                     std::function<void(std::optional<SessionBrief>)> done);
  // Every session here (as LookupSession), in no particular order.
  void ListSessions(std::function<void(std::vector<SessionBrief>)> done);
  // Another node takes the session of `client_id`: its connection here, if
  // any, gets DISCONNECT 0x8E (its Will goes as the specification says).
  // With `clean_start` the session ends here (a delayed Will goes now) and
  // `done` gets nullopt; else `done` gets a copy of it, and it stays here,
  // offline and subscribed, until HandOffSession. nullopt: no session.
  void ExportSession(std::string client_id, bool clean_start,
                     std::function<void(std::optional<StoredSession>)> done);
  // The messages the exported session took since the export (or the last
  // hand-off), in order. With `final` it stops taking any: its
  // subscriptions go and its delayed Will is dropped (the session is resumed
  // elsewhere), but it is kept, and stored, until FinishHandOff.
  void HandOffSession(std::string client_id, bool final,
                      std::function<void(std::vector<StoredMessage>)> done);
  // The other node kept the session (`moved`): it is deleted here. Or it
  // did not: it goes back to being an offline session here.
  void FinishHandOff(std::string client_id, bool moved);
  // Messages another node handed over for a session imported here
  // (SessionClaim::kImported): the first batch goes before what was
  // delivered here since the import, later ones after it; a message
  // already delivered here is dropped. Until the first batch (or `final`)
  // the session sends nothing from its queue. Messages for a session that
  // no longer waits for them are delivered to it all the same. `done` runs
  // once they are stored (OK), with the store's failure, or NotFound if the
  // session is not here.
  void AppendTransferred(std::string client_id, std::vector<StoredMessage> messages, bool final,
                         std::function<void(Status)> done);
  // Closes every client connection (v5 clients get DISCONNECT `reason` with
  // `why`), as a restart of the node would, but the node runs on: sessions
  // stay, and no Will goes. `done` gets how many were closed.
  void DisconnectClients(ReasonCode reason, std::string why, std::function<void(size_t)> done);
  // A copy of the session that another node holds too and that lost (its
  // client connected there later): ended here without its Will; a
  // connection gets DISCONNECT 0x8E. `done(true)` if there was one.
  void DiscardSession(std::string client_id, std::function<void(bool)> done);

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
  // False while the durable store cannot write (a commit failed and none
  // has succeeded since: a full disk, an I/O error), with the reason in
  // *why if given. True when there is no store (persistence = false).
  bool StoreWritable(std::string* why = nullptr) const;
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
  // The ferry_store_* series of PrometheusMetrics (core/broker_store.cpp).
  std::string StorePrometheusMetrics() const;
  void PublishSys();
  void SetConnectionBudget();

  std::unique_ptr<BrokerContext> ctx_;
  bool started_ = false;
  bool shutting_down_ = false;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::vector<BoundListener> bound_;
  Loop* main_loop_ = nullptr;
  uint64_t fd_limit_ = 0;  // RLIMIT_NOFILE once raised
  UvHandle<uv_timer_t> sys_timer_;
  UvHandle<uv_async_t> shutdown_async_;
  std::function<void()> shutdown_done_;
};

}  // namespace ferry::core

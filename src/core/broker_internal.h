// Private to core: the pieces behind the Broker facade.
//
//   Acceptor (main loop)  --fd-->  Worker (one thread, one libuv loop each)
//                                    owns Connections (socket I/O, framing)
//                                    owns Sessions (MQTT state, keyed by client id)
//   Router (shared, locked)  <--  every worker matches publishes here
//   DurableStore (own thread)  <--  persistent sessions and retained messages
//
// A client's session always lives on worker Hash(client id) % workers. A
// connection is accepted by any worker; once its CONNECT names the client,
// the socket moves to the owning worker if it is not already there. So every
// session operation (takeover, delivery, expiry) runs on one thread without
// locks, and a delivery to a subscriber on another worker is a Post to it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/acl.h"
#include "core/auth.h"
#include "core/broker.h"
#include "core/broker_options.h"
#include "core/durable_store.h"
#include "core/loop.h"
#include "core/message.h"
#include "core/metrics.h"
#include "core/packet.h"
#include "core/queue_waits.h"
#include "core/router.h"
#include "core/transport.h"

namespace ferry::core {

class Worker;
class Connection;
class Session;

// State every worker shares. Immutable after start except where noted.
struct BrokerContext {
  BrokerOptions options;
  Router router;
  Metrics metrics;
  std::vector<std::unique_ptr<Worker>> workers;
  // Declared after the workers so that it is destroyed (its thread stopped)
  // before them: its callbacks post to their loops.
  std::unique_ptr<DurableStore> store;  // null when persistence is off
  uint64_t started_unix_ms = 0;
  // The counters of each listener id ("tcp.default"); keys fixed at start.
  // The acceptor counts a connection in when it admits it; the Connection
  // that ends up owning the socket counts it out when it is freed.
  std::map<std::string, ListenerCounters, std::less<>> listener_counters;
  // The transport (TLS, WebSocket, PROXY) of each listener id; keys fixed
  // at creation, so workers read the map without a lock.
  std::map<std::string, std::unique_ptr<TransportFactory>, std::less<>> transports;

  // Where sessions come from when the node is in a cluster (SessionHook);
  // null for a node alone. Read by every CONNECT, set at any time.
  std::atomic<std::shared_ptr<SessionHook>> session_hook;

  // Other nodes' routes for the admin commands; main loop only.
  std::shared_ptr<RemoteRouteDirectory> remote_routes;
  // Other nodes' clients for the admin commands; set on the main loop, read
  // there and by the commands' callbacks on workers (under remote_mu).
  std::mutex remote_mu;
  std::shared_ptr<RemoteClientDirectory> remote_clients;  // guarded by remote_mu
  std::shared_ptr<RemoteClientDirectory> RemoteClients() {
    std::lock_guard lock(remote_mu);
    return remote_clients;
  }

  // The one retained observer (Broker::WatchRetained) and its owner.
  std::mutex retained_watch_mu;
  std::string retained_owner;                            // guarded by retained_watch_mu
  std::shared_ptr<RetainedObserver> retained_observer;  // guarded by retained_watch_mu

  // Swapped on reload; read under auth_mu. Every swap bumps auth_generation,
  // so that workers can keep a copy and take the lock only after a reload.
  std::mutex auth_mu;
  std::shared_ptr<const PasswordFile> passwords;
  std::shared_ptr<const Acl> acl;
  std::atomic<uint64_t> auth_generation{0};

  std::shared_ptr<const PasswordFile> Passwords() {
    std::lock_guard lock(auth_mu);
    return passwords;
  }
  std::shared_ptr<const Acl> GetAcl() {
    std::lock_guard lock(auth_mu);
    return acl;
  }
  uint32_t OwnerOf(std::string_view client_id) const;

  // MQTT connections the descriptor limit allows, over all listeners
  // (fd_budget.h); set by Broker::Start.
  uint64_t max_open_connections = UINT64_MAX;
  // Open connections over all listeners.
  uint64_t OpenConnections() const {
    uint64_t n = 0;
    for (const auto& [id, c] : listener_counters) n += c.open.load(std::memory_order_relaxed);
    return n;
  }
  // Warnings that can repeat thousands of times a second: one line per
  // 10 s each, with a count of the rest (log.h). Any thread; worker 0's
  // housekeeping flushes the counts.
  struct LogLimits {
    LogLimiter max_connections{"connections refused over max_connections", LogLevel::kInfo};
    LogLimiter fd_limit{"connections refused at the descriptor limit", LogLevel::kWarn};
    LogLimiter accept_failed{"accept failures", LogLevel::kWarn};
    LogLimiter hand_over_failed{"hand-over failures", LogLevel::kWarn};
    // Timeouts by kind, so that a flood of one kind hides no other.
    LogLimiter connect_timeout{"connections without a CONNECT in time", LogLevel::kInfo};
    LogLimiter handshake_timeout{"connections without a TLS, WebSocket or PROXY handshake in time",
                                 LogLevel::kInfo};
    LogLimiter keepalive_timeout{"keep alive timeouts", LogLevel::kInfo};
    void Flush() {
      for (LogLimiter* l : {&max_connections, &fd_limit, &accept_failed, &hand_over_failed,
                            &connect_timeout, &handshake_timeout, &keepalive_timeout}) {
        l->Flush();
      }
    }
  };
  LogLimits log_limits;
  // A connection admitted on `listener` is gone.
  void ReleaseListenerSlot(std::string_view listener) {
    auto it = listener_counters.find(listener);
    if (it != listener_counters.end()) it->second.open.fetch_sub(1, std::memory_order_relaxed);
  }
  // A connection on `listener` was closed before its CONNECT for `why`.
  void CountRefusal(std::string_view listener, Refusal why) {
    auto it = listener_counters.find(listener);
    if (it != listener_counters.end()) it->second.Refused(why);
  }
  // Routes `message` to every matching subscriber on every worker. `from` is
  // the calling worker (nullptr from a non-worker thread). If `done` is set it
  // runs on `from`'s loop once every target has taken the message, after a
  // store commit if any of them wrote it to disk; with a failure (RouteDone)
  // if that commit failed.
  // `forwarded`: how a message another node forwarded is routed here.
  void Route(const MessagePtr& message, Worker* from, RouteDone done,
             const ForwardedDelivery* forwarded = nullptr);
  // Tells the retained observer of a retained set or delete, unless its
  // owner injected it.
  void NotifyRetained(const MessagePtr& message);
  // Deletes the retained messages of `doomed`'s topics (memory and store),
  // telling the retained observer if `tell` (an administrator's delete is
  // replicated; a node taking its cluster's set is not).
  void DeleteRetained(const std::vector<MessagePtr>& doomed, bool tell);
};

// A message waiting for, or in, delivery to one session.
struct OutMessage {
  uint64_t seq = 0;
  MessagePtr msg;
  uint8_t qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  uint16_t packet_id = 0;
  StoredMessageState state = StoredMessageState::kQueued;
};

// What a delivery does when the session's limits are reached: the output
// buffer (QoS 0, max_output_buffer) or the queue (max_queued_messages).
enum class OverLimit : uint8_t {
  kDrop,   // drop the message and count it
  // Queue it anyway, for a connected client: a retained message sent for a
  // new subscription (a finite set), or a QoS 1/2 message whose publisher's
  // acknowledgement then waits for room in the queue (WhenQueueHasRoom), so
  // the publisher is slowed down instead of its messages lost.
  kQueue,
};

// A std::deque that allocates nothing while empty: libstdc++'s deque
// allocates its first block (over 500 bytes) on construction, which every
// session, most of them with nothing queued, would pay for.
template <typename T>
class LazyDeque {
 public:
  bool empty() const { return items_ == nullptr; }
  size_t size() const { return items_ == nullptr ? 0 : items_->size(); }
  T& front() { return items_->front(); }
  void push_back(T&& v) {
    if (items_ == nullptr) items_ = std::make_unique<std::deque<T>>();
    items_->push_back(std::move(v));
  }
  template <typename F>
  void ForEach(F&& f) const {
    if (items_ != nullptr) {
      for (const T& v : *items_) f(v);
    }
  }
  // Everything, in order, leaving it empty.
  std::deque<T> TakeAll() {
    std::deque<T> all;
    if (items_ != nullptr) all = std::move(*items_);
    items_.reset();
    return all;
  }
  void pop_front() {
    items_->pop_front();
    if (items_->empty()) items_.reset();
  }

 private:
  std::unique_ptr<std::deque<T>> items_;  // null when empty
};

class Session {
 public:
  Session(Worker& worker, std::string client_id);
  ~Session();

  const std::string& client_id() const { return client_id_; }
  Connection* connection() const { return conn_; }
  bool persistent() const { return persistent_; }

  // Delivery from the router. Returns true if the message was written to the
  // durable store (the publisher's acknowledgement then waits for a commit).
  bool Deliver(const MessagePtr& msg, uint8_t qos, bool retain,
               std::vector<uint32_t> subscription_ids, OverLimit over = OverLimit::kDrop);

  // True while the queue holds max_queued_messages or more.
  bool QueueFull() const;
  // Runs `fn` on this worker once the queue is below max_queued_messages
  // again, the client disconnects, or the session has held its publishers
  // for max_queue_wait (see Shed), whichever comes first.
  void WhenQueueHasRoom(std::function<void()> fn);
  void ReleaseQueueWaiters();
  // False while the session sheds (see Shed), or if max_queue_wait is 0:
  // then a message for its full queue is dropped instead of holding the
  // publisher's acknowledgement.
  bool CanHoldPublishers() const;
  // The session held its publishers for max_queue_wait: release them, and
  // drop (and count) its QoS 1/2 messages while its queue stays full.
  void Shed();

  // Sends what the connection's window allows: inflight first on resume.
  void Pump();
  void ResendInflight();
  void OnPuback(const PubAck& ack);
  void OnPubrec(const PubAck& ack);
  void OnPubcomp(const PubAck& ack);

  Worker& worker_;
  std::string client_id_;
  Connection* conn_ = nullptr;
  bool persistent_ = false;
  bool stored_ = false;  // a row exists in the durable store

 private:
  // See Shed(); until the queue has room again. Here, in the padding after
  // the flags above: ferryd keeps one Session per client.
  bool shedding_ = false;

 public:
  uint32_t expiry_interval_s_ = 0;
  uint64_t disconnected_at_ms_ = 0;  // unix ms; 0 while connected
  std::optional<std::string> username_;

  std::map<std::string, SubscriptionOptions, std::less<>> subscriptions_;
  // The exchanges a session has open. Most sessions, idle ones, have none:
  // the state is allocated by the first one and freed when the last ends
  // (TrimFlight), so that an idle session does not carry ~180 bytes of
  // empty containers.
  struct Flight {
    std::map<uint64_t, OutMessage> inflight;             // by seq, i.e. send order
    std::unordered_map<uint16_t, uint64_t> inflight_ids;  // packet id -> seq
    std::unordered_set<uint16_t> qos2_inbound;  // QoS 2 received, PUBREL not yet
    std::vector<std::function<void()>> queue_waiters;  // see WhenQueueHasRoom
  };
  Flight& flight() {
    if (flight_ == nullptr) flight_ = std::make_unique<Flight>();
    return *flight_;
  }
  const Flight* flight_if_any() const { return flight_.get(); }
  size_t InflightCount() const { return flight_ == nullptr ? 0 : flight_->inflight.size(); }
  bool Qos2Received(uint16_t packet_id) const {
    return flight_ != nullptr && flight_->qos2_inbound.contains(packet_id);
  }
  // True if `packet_id` was a QoS 2 message received and not yet released.
  bool ForgetQos2Received(uint16_t packet_id);
  // Frees the exchange state once nothing is open.
  void TrimFlight();
  LazyDeque<OutMessage> queue_;
  uint32_t queued_qos0_ = 0;  // QoS 0 messages in queue_ (live QoS 0 goes behind them)
  uint16_t next_packet_id_ = 1;
  uint64_t next_seq_ = 1;

  // Unix ms of the last CONNECT that attached to it; 0 if restored from the
  // store and not connected since (SessionBrief::connected_at_ms).
  uint64_t connected_at_ms_ = 0;
  // While the session moves to or from another node (session_transfer.cpp).
  struct Transfer;
  std::unique_ptr<Transfer> transfer_;
  // True while an imported session waits for the messages the other node
  // hands over: its queue is held back so that they go first.
  bool HoldsQueue() const;
  // True while the session is exported to another node.
  bool MovingAway() const;
  // The session was just imported from another node (Worker::Install):
  // hold its queue until the messages handed over arrive.
  void StartImport();
  // Notes a delivery to an imported session; true if it must be queued
  // (held) rather than sent now.
  bool NoteTransferDelivery(const Message& m, bool connected);

  // A will waiting out its delay after an abnormal disconnect.
  std::unique_ptr<Will> pending_will_;  // behind a pointer: most sessions have none
  uint64_t will_due_ms_ = 0;

 private:
  bool Enqueue(OutMessage m, OverLimit over);
  void SendPublish(OutMessage& m);
  uint16_t NextPacketId();
  // The message in flight with `packet_id`, or null.
  OutMessage* FindInflight(uint16_t packet_id);
  void Complete(uint16_t packet_id);

  std::unique_ptr<Flight> flight_;  // see flight()
};

// A session moving between nodes (core/session_transfer.cpp).
struct Session::Transfer {
  // Old node: the session was exported; messages after `exported_upto`
  // (seq) are handed over.
  bool exporting = false;
  uint64_t exported_upto = 0;
  bool handed_off = false;  // its subscriptions are gone (HandOffSession final)
  // New node: the session was imported.
  bool importing = false;
  bool awaiting_first = false;  // its queue is held (HoldsQueue)
  uint64_t handed_seq = 0;      // the next seq for a message handed over
  uint64_t live_from = 0;       // the first seq of a delivery here
  std::unordered_set<uint64_t> seen;  // MessageIdentity of what it was given
};

class Connection {
 public:
  enum class State : uint8_t { kAwaitingConnect, kConnected, kClosing };

  Connection(Worker& worker, uint64_t id, std::string_view listener);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Adopts an accepted socket and, if `start_reading`, starts reading with
  // `pending` as input already read from it.
  Status Open(int fd, std::string peer, std::string pending, bool start_reading = true);
  void StartReading(std::string pending);
  // Stops taking input (kept buffered) until ResumeReading().
  void PauseReading();
  void ResumeReading();

  // Queues bytes; they go out in one write per loop pass.
  void Send(const Packet& packet);
  void SendPublish(const PublishView& publish);
  // PUBACK, PUBREC, PUBREL or PUBCOMP with reason 0x00 and no properties.
  void SendAck(PacketType type, uint16_t packet_id);
  // Bytes queued or being written and not yet confirmed by libuv.
  uint64_t PendingBytes() const { return out_.size() + wire_out_.size() + writing_bytes_; }
  // Stops reading, writes what is queued, then closes.
  void Close();
  void Flush();
  // Closes the socket now; OnClosed follows from the close callback.
  void CloseHandle();
  // What moves to another worker with a connection (see Detach).
  // Move-only; closes the fd if nobody took it.
  struct HandOver {
    HandOver() = default;
    HandOver(HandOver&& other) noexcept;
    HandOver& operator=(HandOver&&) = delete;
    ~HandOver();

    int fd = -1;
    std::string peer;
    std::string listener;
    std::string pending;    // MQTT bytes read after the CONNECT
    std::string unwritten;  // transport bytes still to write (TLS session tickets)
    std::unique_ptr<Transport> transport;  // TLS, WebSocket state; may be null
  };
  // Hands the socket to another worker: a dup of the fd, the input not yet
  // parsed and the transport, and closes this connection without a
  // shutdown. fd < 0 if the socket cannot be handed over: output the
  // transport produced is still unwritten (the connection is closed then),
  // or dup() found no free descriptor (the connection stays as it was).
  HandOver Detach();
  // Puts `transport` between the socket and the MQTT framing. Call before
  // Open() reads anything.
  void SetTransport(std::unique_ptr<Transport> transport) { transport_ = std::move(transport); }
  // What the connection waits for before CONNECT: "TLS handshake",
  // "WebSocket handshake", "PROXY header" or "CONNECT".
  const char* AwaitedStage() const;

  uint64_t id() const { return id_; }
  State state() const { return state_; }
  const std::string& peer() const { return peer_; }
  std::string_view listener() const { return listener_; }
  // The client id: the session's while one is attached, else the one the
  // CONNECT named (kept after the session detached, for the log).
  std::string_view client_id() const;
  void SetClientId(std::string_view id) { own_client_id_ = std::make_unique<std::string>(id); }
  void AttachSession(Session* s);
  void DetachSession();
  std::string Describe() const;

  // Ordered by size so that the fields pack without padding: ferryd keeps
  // one per client.
  Worker& worker_;
  Session* session_ = nullptr;
  uint64_t accepted_ms_ = 0;   // loop time
  uint64_t last_rx_ms_ = 0;    // loop time
  uint64_t closing_since_ms_ = 0;

  // v5 topic aliases, allocated by the first one: most clients use none.
  struct TopicAliases {
    std::unordered_map<uint16_t, std::string> in;   // the client's, by alias
    std::unordered_map<std::string, uint16_t> out;  // ours, by topic name
  };
  TopicAliases& aliases() {
    if (aliases_ == nullptr) aliases_ = std::make_unique<TopicAliases>();
    return *aliases_;
  }
  std::unique_ptr<TopicAliases> aliases_;
  std::unique_ptr<Will> will_;  // behind a pointer: most connections have none

  // v5 limits the client announced.
  uint32_t client_max_packet_ = 268435460;
  uint16_t client_receive_max_ = 65535;
  uint16_t client_topic_alias_max_ = 0;

  uint32_t inbound_unacked_ = 0;
  uint32_t session_expiry_s_ = 0;
  uint16_t keepalive_s_ = 0;
  ProtocolVersion version_ = ProtocolVersion::kV311;
  State state_ = State::kAwaitingConnect;
  bool clean_start_ = true;
  bool bridge_ = false;
  bool request_problem_info_ = true;  // v5
  bool disconnect_graceful_ = false;  // DISCONNECT 0x00 received: no will
  bool dirty_ = false;                // in the worker's flush list

 private:
  friend class Worker;
  void AllocInput(uv_buf_t* buf);
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  // Raw bytes through the transport into in_; false if the connection closed.
  bool ReceiveThroughTransport(std::string_view raw);
  // Decoded bytes through ProcessInput; in_ is charged only for an
  // unfinished packet. False if the connection closed.
  bool ProcessDecoded(std::string_view app);
  // False if in_ cannot grow for `bytes` within max_partial_packet_memory.
  bool AppendInput(std::string_view bytes);
  // Frees in_ (and its charge): the connection reads no more packets.
  void ReleaseInput();
  // True if in_ may hold `capacity` bytes within the worker's
  // max_partial_packet_memory (up to kSmallPartial always may).
  bool InputFits(size_t capacity) const;
  // Closes the connection: its input does not fit max_partial_packet_memory.
  void RefuseInput();
  void ProcessInput();
  // After our shutdown: reads and drops input until the peer closes.
  void DrainUntilPeerCloses();
  // Input read but not parsed yet (while ProcessInput runs: after the
  // packet being handled).
  std::span<const uint8_t> UnreadInput() const;

  // A held-over piece of a packet up to this size is copied in front of the
  // next read into the worker's buffer; a bigger one builds up in in_.
  static constexpr size_t kSmallPartial = 4096;

  bool detached_ = false;
  bool paused_ = false;
  bool draining_ = false;  // our side shut down; reading until the peer closes
  bool input_shared_ = false;  // see in_
  bool counted_ = true;   // counted in ctx.listener_counters until freed
  uint64_t id_;
  std::string_view listener_;  // a key of ctx.listener_counters, fixed at start
  std::string peer_;
  uv_tcp_t* tcp_ = nullptr;  // freed by its close callback
  // Input is read into the worker's read buffer (input_shared_) or, for a
  // large packet, into in_; between reads in_ holds the unparsed rest, if any.
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  size_t in_pos_ = 0;  // start of the unparsed input while ProcessInput runs
  size_t want_ = 0;    // length of the incomplete packet at in_pos_; 0 = unknown
  std::string out_;
  uint64_t writing_bytes_ = 0;
  std::unique_ptr<Transport> transport_;  // null: plain TCP
  std::string wire_out_;  // transport bytes (handshake, alerts) not yet written
  // Only while no session is attached: an attached connection's client id
  // is its session's, held once.
  std::unique_ptr<std::string> own_client_id_;
};

class Worker {
 public:
  friend class WorkerAdmin;  // admin introspection, worker_admin.cpp

  Worker(BrokerContext& ctx, uint32_t index);
  ~Worker();

  void Start();  // spawns the thread
  void Join();
  Loop& loop() { return loop_; }
  uint32_t index() const { return index_; }
  // Loop thread: what every connection of this worker reads into (see
  // Connection::AllocInput); its content lasts until the read callback returns.
  std::vector<uint8_t>& read_buffer() { return read_buffer_; }
  // Loop thread: output buffers of completed writes, kept for connections
  // that start filling an empty output buffer, so that a busy connection
  // does not grow a new one from nothing for every write while an idle one
  // holds none. Keep takes what a write is done with; Reuse swaps a kept
  // buffer into `out` if `out` has no capacity of its own.
  void KeepOutputBuffer(std::string&& buffer);
  void ReuseOutputBuffer(std::string& out);
  BrokerContext& ctx() { return ctx_; }
  bool shutting_down() const { return shutting_down_; }
  // Loop thread: the ACL in force (null: everything allowed), this worker's
  // copy, refreshed when a reload swapped it. Valid until the next call.
  const Acl* CurrentAcl();

  // Any thread: adopt an accepted socket, already counted in
  // ctx.listener_counters by the acceptor.
  void Adopt(int fd, std::string peer, std::string listener, std::string pending);
  // Loop thread: stop everything (v5 clients get DISCONNECT 0x8B).
  void Shutdown();
  // Loop thread: closes every connected client (Broker::DisconnectClients);
  // returns how many.
  size_t DisconnectClients(ReasonCode reason, std::string_view why);

  // Loop thread.
  Connection* FindConnection(uint64_t id);
  Session* FindSession(std::string_view client_id);
  void MarkDirty(Connection& c);
  void OnPacket(Connection& c, Packet&& packet);
  void OnProtocolError(Connection& c, const Status& status);
  // Closes `c`, sending v5 clients DISCONNECT `reason` first unless kSuccess.
  void DisconnectClient(Connection& c, ReasonCode reason, std::string_view why);
  void OnClosed(Connection& c);
  // Delivers `msg` to the sessions of `targets` on this worker. Sets *durable
  // if any wrote it to the store. With `full` (the publisher's acknowledgement
  // can wait), a connected subscriber's full queue takes a QoS 1/2 message
  // anyway and is appended to *full: acknowledge only once each has room.
  void DeliverBatch(const MessagePtr& msg, const std::vector<RouteTarget>& targets,
                    bool* durable, std::vector<Session*>* full);
  // Installs a session restored from the durable store.
  void Restore(StoredSession stored);
  // Installs `stored` as a session of this worker; with `write`, also puts
  // it in the durable store (a session imported from another node).
  Session& Install(StoredSession stored, bool write);
  void RouteMessage(MessagePtr msg, RouteDone done);
  void DropSession(Session& s);

  // Handlers, one per packet type (session_handlers.cpp).
  void HandleConnect(Connection& c, Connect&& p);
  void CheckPasswordThen(Connection& c, std::shared_ptr<const PasswordFile> passwords,
                         Connect&& p);
  void AfterAuthentication(Connection& c, Connect&& p);
  void AdoptConnected(Connection::HandOver h, Connect&& p);
  // Asks the session hook, if any, where the session comes from, then
  // FinishConnect. `adopted`: input read after the CONNECT of a connection
  // handed over from another worker, not yet reading.
  void CompleteConnect(Connection& c, Connect&& p, std::optional<std::string> adopted = {});
  void FinishConnect(Connection& c, Connect&& p, SessionClaim* claim);
  struct PendingConnect;
  void OnClaimed(uint64_t conn_id, PendingConnect& pc, SessionClaim claim, bool later);
  // session_transfer.cpp: the worker's half of the Broker calls.
  std::optional<StoredSession> ExportSession(const std::string& client_id, bool clean_start);
  std::vector<StoredMessage> HandOffSession(const std::string& client_id, bool final);
  void FinishHandOff(const std::string& client_id, bool moved);
  // True if something went to the store; NotFound without the session.
  Result<bool> AppendTransferred(const std::string& client_id,
                                 std::vector<StoredMessage> messages, bool final);
  bool DiscardSession(const std::string& client_id);
  std::vector<SessionBrief> SessionBriefs(const std::string* only) const;
  void HandlePublish(Connection& c, Publish&& p);
  void HandlePubAck(Connection& c, const PubAck& p);
  void HandleSubscribe(Connection& c, Subscribe&& p);
  void HandleUnsubscribe(Connection& c, Unsubscribe&& p);
  void HandleDisconnect(Connection& c, const Disconnect& p);
  void HandleAuth(Connection& c, const Auth& p);
  void SendRetained(Session& s, const std::string& filter, const SubscriptionOptions& o);
  // The durable store could not commit what a QoS 1/2 PUBLISH of `c`
  // needed (rc: StoreFailureReason): a v5 client gets PUBACK or PUBREC with
  // rc; a 3.1.1 client gets no acknowledgement and its connection is closed,
  // so that it publishes again.
  void RefuseUnstored(Connection& c, uint16_t packet_id, bool qos2, ReasonCode rc);
  // kSuccess for OK; kQuotaExceeded for a full disk; else kUnspecifiedError.
  static ReasonCode StoreFailureReason(const Status& st);
  // Sends `ack` on `c`, then runs `then` (may be null) on the connection.
  // With `wait_for_store`, both happen only after the durable store has
  // committed every mutation submitted so far, and only if `c` is still open;
  // if the commit failed, `c` is closed instead (v5: DISCONNECT 0x97 or 0x80).
  void SendWhenDurable(Connection& c, Packet ack, bool wait_for_store,
                       std::function<void(Connection&)> then);
  // Adds or replaces a subscription of `s` (router, session, store); true if
  // it is new. REQUIRES: `filter` was validated; o.worker is this worker.
  bool AddSubscription(Session& s, const std::string& filter, const SubscriptionOptions& o);
  // Removes one; true if it existed.
  bool RemoveSubscription(Session& s, const std::string& filter);
  void EndSessionWill(Session& s, Connection* c);
  void PublishWill(const Will& will, const std::string& client_id);
  void StoreSession(Session& s);

  // Loop thread: sessions holding a publisher's acknowledgement (see
  // queue_waits.h). StartQueueWait is called by a session with its first
  // held acknowledgement; the worker sheds or disconnects it once it has
  // held them for max_queue_wait (slow_subscribers.cpp).
  QueueWaits& queue_waits() { return queue_waits_; }
  void StartQueueWait(Session& s);

  // Bytes of incomplete packets held by this worker's connections (their
  // input buffers), bounded by max_partial_packet_memory. Any thread may
  // read or add (a connection is freed on its worker's thread, but the
  // count stays exact whichever thread does).
  uint64_t partial_bytes() const { return partial_bytes_.load(std::memory_order_relaxed); }
  void AddPartialBytes(int64_t delta) {
    if (delta >= 0) {
      partial_bytes_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
    } else {
      partial_bytes_.fetch_sub(static_cast<uint64_t>(-delta), std::memory_order_relaxed);
    }
  }

 private:
  void Housekeeping();
  void FlushAll();
  // Acts on the sessions that held their publishers for max_queue_wait.
  void ExpireQueueWaits();
  void ArmQueueWaitTimer();
  // Closes every handle of the worker's own so that its loop can end.
  void StopLoop();

  BrokerContext& ctx_;
  uint32_t index_;
  Loop loop_;
  std::thread thread_;
  UvHandle<uv_check_t> flush_;
  UvHandle<uv_prepare_t> flush_before_poll_;
  UvHandle<uv_timer_t> housekeeping_;
  UvHandle<uv_timer_t> queue_wait_timer_;  // armed while queue_waits_ is not empty
  QueueWaits queue_waits_;
  std::atomic<uint64_t> partial_bytes_{0};  // see partial_bytes()
  uint64_t next_conn_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Keyed by a view of the session's own client_id_ (one copy of the id).
  std::unordered_map<std::string_view, std::unique_ptr<Session>, StringHash> sessions_;
  // The ids of sessions_ in order (views of each Session's client_id_), so
  // that admin listings page through them without sorting. Changed only by
  // AddSession and EraseSession.
  std::set<std::string_view> session_ids_;
  Session& AddSession(std::unique_ptr<Session> session);
  void EraseSession(Session& s);
  std::vector<Connection*> dirty_;
  std::vector<uint8_t> read_buffer_ = std::vector<uint8_t>(64 * 1024);
  std::vector<std::string> spare_output_;
  std::shared_ptr<const Acl> acl_;  // see CurrentAcl
  uint64_t acl_generation_ = 0;
  std::vector<uint64_t> closed_;  // connections to free on the next pass
  bool shutting_down_ = false;
};

}  // namespace ferry::core

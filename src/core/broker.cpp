#include "core/broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/accept_limiter.h"
#include "core/broker_internal.h"
#include "core/fd_budget.h"
#include "core/log.h"
#include "core/net_address.h"
#include "core/topic.h"
#include "core/version.h"

namespace ferry::core {

// One descriptor held open (on /dev/null) so that a listener that finds
// none free can still accept, and so refuse, the clients waiting for it:
// the way libuv's uv__emfile_trick and nginx deal with EMFILE.
class SpareFd {
 public:
  SpareFd() { Take(); }
  ~SpareFd() { Release(); }
  SpareFd(const SpareFd&) = delete;
  SpareFd& operator=(const SpareFd&) = delete;
  // Opens the spare again; false if there is no descriptor for it.
  bool Take() {
    if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd_ >= 0;
  }
  // Closes it, freeing one descriptor; false if it was not open.
  bool Release() {
    if (fd_ < 0) return false;
    ::close(fd_);
    fd_ = -1;
    return true;
  }

 private:
  int fd_ = -1;
};

// Accepts on one listening socket from the main loop and deals the sockets
// out to the workers round robin. Accepting on one thread and handing over
// keeps binding simple (port 0 works) and costs one Post per connection.
class Broker::Acceptor {
 public:
  Acceptor(BrokerContext& ctx, Loop& loop, ListenerOptions options)
      : ctx_(ctx), loop_(loop), options_(std::move(options)),
        id_(options_.type + "." + options_.name), limiter_(options_.max_connection_rate) {}
  ~Acceptor() { Stop(); }

  Status Bind(BoundListener* bound) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(options_.port);
    int rc = getaddrinfo(options_.host.empty() ? nullptr : options_.host.c_str(), port.c_str(),
                         &hints, &res);
    if (rc != 0) {
      return Status::InvalidArgument(Where() + "cannot resolve '" + options_.host +
                                     "': " + gai_strerror(rc));
    }
    std::string err;
    for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
        fd_ = fd;
        break;
      }
      err = std::strerror(errno);
      ::close(fd);
    }
    freeaddrinfo(res);
    if (fd_ < 0) {
      return Status::IoError(Where() + "cannot bind " + options_.host + ":" + port + ": " + err);
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    char host[INET6_ADDRSTRLEN] = "";
    uint16_t bound_port = 0;
    if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      bound_port = ntohs(a->sin6_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      bound_port = ntohs(a->sin_port);
    }
    *bound = BoundListener{id_, host, bound_port};
    // Binding again (ferryctl listeners start) reuses the port, even one
    // that was chosen by the system for port 0.
    options_.port = bound_port;
    poll_ = UvHandle<uv_poll_t>::Make();
    uv_poll_init(loop_.get(), poll_.get(), fd_);
    poll_->data = this;
    backoff_ = UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop_.get(), backoff_.get());
    backoff_->data = this;
    Resume();
    return Status::Ok();
  }

  void Stop() {
    poll_.Reset();
    backoff_.Reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool running() const { return fd_ >= 0; }
  // "etc/ferry.conf:12: listener tcp.default: ", naming the section.
  std::string Where() const {
    return (options_.origin.empty() ? "" : options_.origin + ": ") + "listener " + id_ + ": ";
  }
  const std::string& id() const { return id_; }
  const ListenerOptions& options() const { return options_; }

 private:
  void Resume() {
    uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* p, int, int) {
      static_cast<Acceptor*>(p->data)->OnReadable();
    });
  }

  void OnReadable() {
    ListenerCounters& counters = ctx_.listener_counters.find(id_)->second;
    // A spare given up and not taken back (no descriptor was free then).
    spare_fd_.Take();
    for (int i = 0; i < kAcceptsPerCallback; ++i) {
      if (uint64_t wait = limiter_.WaitMs(loop_.Now()); wait > 0) {
        // max_connection_rate: leave the rest in the kernel's queue.
        rate_paused_ = true;
        Pause(wait);
        return;
      }
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        // Saved first: logging (LogLimiter::Admit) may change errno.
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) rate_paused_ = false;  // nobody waits
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
        if (err == EMFILE || err == ENFILE) {
          OutOfDescriptors(counters, err);
        } else if (err == ENOBUFS || err == ENOMEM) {
          // A level-triggered poll would spin: pause accepting briefly and
          // let existing clients go on.
          FERRY_LOG_LIMITED(ctx_.log_limits.accept_failed,
                            "listener %s: accept: %s; pausing for 100 ms", id_.c_str(),
                            std::strerror(err));
          Pause(100);
        }
        return;
      }
      limiter_.Take();
      // Since the rate limit paused accepting, every connection accepted
      // until the queue is empty was waiting in it.
      if (rate_paused_) Inc(counters.rate_limited);
      if (options_.max_connections != 0 &&
          counters.open.load(std::memory_order_relaxed) >= options_.max_connections) {
        counters.Refused(Refusal::kMaxConnections);
        RefuseAtAccept(fd);
        FERRY_LOG_LIMITED(ctx_.log_limits.max_connections,
                          "listener %s: max_connections (%u) reached, refused a connection",
                          id_.c_str(), options_.max_connections);
        continue;
      }
      if (ctx_.OpenConnections() >= ctx_.max_open_connections) {
        counters.Refused(Refusal::kFdLimit);
        RefuseAtAccept(fd);
        FERRY_LOG_LIMITED(ctx_.log_limits.fd_limit,
                          "listener %s: the descriptor limit allows %llu MQTT connections and "
                          "all are open, refused a connection (see [node] reserved_fds)",
                          id_.c_str(), static_cast<unsigned long long>(ctx_.max_open_connections));
        continue;
      }
      // Counted here, on the one thread that admits, so that a burst cannot
      // overshoot the limit before the workers have seen the sockets.
      counters.open.fetch_add(1, std::memory_order_relaxed);
      Inc(counters.accepted);
      Worker& w = *ctx_.workers[next_++ % ctx_.workers.size()];
      w.Adopt(fd, FormatSockaddr(ss), id_, "");
    }
  }

  // accept() found no free descriptor (`err`) although the budget kept a
  // reserve (something else took it). Clients left in the kernel's queue
  // would wait for nothing, and a level-triggered poll would spin: give up
  // the spare descriptor kept for this, accept and refuse the waiting
  // clients (at most kAcceptsPerCallback, the poll calls again for the
  // rest), take the spare back. Without a spare, pause accepting for 100 ms.
  void OutOfDescriptors(ListenerCounters& counters, int err) {
    uint64_t refused = 0;
    if (spare_fd_.Release()) {
      for (int fd; refused < kAcceptsPerCallback &&
                   (fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
        counters.Refused(Refusal::kFdLimit);
        RefuseAtAccept(fd);
        ++refused;
      }
    }
    // If this fails, the next OnReadable tries again.
    spare_fd_.Take();
    if (refused == 0) Pause(100);
    FERRY_LOG_LIMITED(ctx_.log_limits.accept_failed,
                      "listener %s: accept: %s; refused %llu waiting connection(s)%s", id_.c_str(),
                      std::strerror(err), static_cast<unsigned long long>(refused),
                      refused == 0 ? ", pausing for 100 ms" : "");
  }

  // Closes a socket just accepted, before reading anything from it. What
  // the client sent already (its CONNECT) is read and dropped first: closing
  // with unread input would answer with a reset instead of a FIN. The
  // client's connection ends before any CONNACK, which MQTT allows
  // ([MQTT-3.2.2-6] for 3.1.1; a v5 server MAY send CONNACK 0x97 but must
  // have read the CONNECT, i.e. held the descriptor, to do so).
  static void RefuseAtAccept(int fd) {
    char scratch[4096];
    for (int i = 0; i < 16 && ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; ++i) {
    }
    ::close(fd);
  }

  void Pause(uint64_t ms) {
    uv_poll_stop(poll_.get());
    uv_timer_start(backoff_.get(), [](uv_timer_t* t) {
      auto* self = static_cast<Acceptor*>(t->data);
      self->Resume();
      // Accept at once: what waited is taken now, and an empty queue ends
      // the rate-limited spell (see rate_paused_).
      self->OnReadable();
    }, ms, 0);
  }

  // Connections accepted (or refused) per readable callback, so that a
  // flood cannot hold the main loop.
  static constexpr int kAcceptsPerCallback = 256;

  BrokerContext& ctx_;
  Loop& loop_;
  ListenerOptions options_;
  std::string id_;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> backoff_;
  uint32_t next_ = 0;
  AcceptLimiter limiter_;
  // The rate limit paused accepting and the accept queue has not been seen
  // empty since: connections accepted now were delayed by it.
  bool rate_paused_ = false;
  SpareFd spare_fd_;
};

Broker::Broker(BrokerOptions options) : ctx_(std::make_unique<BrokerContext>()) {
  ctx_->options = std::move(options);
}

Broker::~Broker() {
  acceptors_.clear();
  for (auto& w : ctx_->workers) w->Join();
}

const std::vector<BoundListener>& Broker::listeners() const { return bound_; }
const std::string& Broker::node_name() const { return ctx_->options.node_name; }
const Metrics& Broker::metrics() const { return ctx_->metrics; }

Result<std::unique_ptr<Broker>> Broker::Create(BrokerOptions options) {
  std::unique_ptr<Broker> broker(new Broker(std::move(options)));
  if (Status st = broker->Reload(broker->ctx_->options); !st.ok()) return st;
  for (const ListenerOptions& l : broker->ctx_->options.listeners) {
    auto factory = TransportFactory::Create(l);
    if (!factory.ok()) return factory.status();
    broker->ctx_->transports.emplace(l.type + "." + l.name, std::move(factory).value());
  }
  return broker;
}

Status Broker::Reload(const BrokerOptions& options) {
  std::shared_ptr<const PasswordFile> passwords;
  std::shared_ptr<const Acl> acl;
  if (!options.password_file.empty()) {
    auto loaded = PasswordFile::Load(options.password_file);
    if (!loaded.ok()) return loaded.status();
    passwords = std::make_shared<const PasswordFile>(std::move(loaded).value());
  }
  if (!options.acl_file.empty()) {
    auto loaded = Acl::Load(options.acl_file);
    if (!loaded.ok()) return loaded.status();
    acl = std::make_shared<const Acl>(std::move(loaded).value());
  }
  // New TLS certificates and keys apply to new connections.
  for (const ListenerOptions& l : options.listeners) {
    auto it = ctx_->transports.find(l.type + "." + l.name);
    if (it == ctx_->transports.end()) continue;
    if (Status st = it->second->Reload(l); !st.ok()) return st;
  }
  std::lock_guard lock(ctx_->auth_mu);
  ctx_->passwords = std::move(passwords);
  ctx_->acl = std::move(acl);
  ctx_->auth_generation.fetch_add(1, std::memory_order_release);
  ctx_->options.password_file = options.password_file;
  ctx_->options.acl_file = options.acl_file;
  return Status::Ok();
}

// With every listener bound and every worker running, what is open now is
// what the node needs before its first client; the rest of the descriptor
// limit, less the reserve, is for MQTT connections (fd_budget.h).
void Broker::SetConnectionBudget() {
  const BrokerOptions& opt = ctx_->options;
  FdBudget budget{fd_limit_, CountOpenFds(), opt.reserved_fds};
  ctx_->max_open_connections = budget.connections();
  if (budget.limit == kNoFdLimit) {
    FERRY_INFO("no descriptor limit (RLIMIT_NOFILE unlimited or unknown) to budget");
  } else {
    FERRY_INFO("descriptor limit %s: %s open, %s reserved, room for %s MQTT connections",
               FormatCount(budget.limit).c_str(), FormatCount(budget.in_use).c_str(),
               FormatCount(budget.reserved).c_str(), FormatCount(budget.connections()).c_str());
  }
  for (const std::string& w : FdBudgetWarnings(budget, opt.listeners)) {
    FERRY_WARN("%s", w.c_str());
  }
}

Status Broker::Start(Loop& main_loop) {
  main_loop_ = &main_loop;
  fd_limit_ = RaiseFdLimit();
  BrokerOptions& opt = ctx_->options;
  ctx_->started_unix_ms = UnixNowMs();
  unsigned n = opt.workers != 0 ? opt.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) ctx_->workers.push_back(std::make_unique<Worker>(*ctx_, i));
  for (const ListenerOptions& l : opt.listeners) {
    ctx_->listener_counters.try_emplace(l.type + "." + l.name);
  }

  if (opt.persistence) {
    if (::mkdir(opt.data_dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return Status::IoError("cannot create data_dir '" + opt.data_dir +
                             "': " + std::strerror(errno));
    }
    DurableStore::Options so;
    so.path = opt.data_dir + "/ferry.db";
    so.reserve_bytes = opt.store_reserve;
    so.log = [](std::string_view msg) {
      FERRY_WARN("store: %.*s", static_cast<int>(msg.size()), msg.data());
    };
    auto store = DurableStore::Open(so);
    if (!store.ok()) return store.status();
    ctx_->store = std::move(store).value();
    auto state = ctx_->store->LoadAll(UnixNowMs());
    if (!state.ok()) return state.status();
    size_t sessions = state->sessions.size(), retained = state->retained.size();
    for (MessagePtr& m : state->retained) ctx_->router.SetRetained(m);
    for (StoredSession& s : state->sessions) {
      ctx_->workers[ctx_->OwnerOf(s.client_id)]->Restore(std::move(s));
    }
    if (Status st = ctx_->store->Start(); !st.ok()) return st;
    FERRY_INFO("restored %zu sessions and %zu retained messages from %s", sessions, retained,
               so.path.c_str());
  }

  for (const ListenerOptions& l : opt.listeners) {
    auto acceptor = std::make_unique<Acceptor>(*ctx_, main_loop, l);
    BoundListener bound;
    if (Status st = acceptor->Bind(&bound); !st.ok()) {
      acceptors_.clear();
      if (ctx_->store) ctx_->store->Stop();
      return st;
    }
    bound_.push_back(bound);
    acceptors_.push_back(std::move(acceptor));
  }
  for (auto& w : ctx_->workers) w->Start();
  SetConnectionBudget();
  started_ = true;

  if (opt.sys_interval_ms > 0) {
    sys_timer_ = UvHandle<uv_timer_t>::Make();
    uv_timer_init(main_loop.get(), sys_timer_.get());
    sys_timer_->data = this;
    uv_timer_start(sys_timer_.get(), [](uv_timer_t* t) {
      static_cast<Broker*>(t->data)->PublishSys();
    }, opt.sys_interval_ms, opt.sys_interval_ms);
  }
  return Status::Ok();
}

namespace {

// A filter a route hook may register: a valid filter, not a shared form.
Status CheckHookFilter(std::string_view filter) {
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || shared.value().has_value()) {
    return Status::InvalidArgument("'" + std::string(filter) +
                                   "': a route hook cannot use a shared subscription");
  }
  if (Status st = ValidateTopicFilter(filter); !st.ok()) {
    return Status::InvalidArgument("'" + std::string(filter) + "': " + st.message());
  }
  return Status::Ok();
}

}  // namespace

Status Broker::AddHookFilter(std::string_view owner, std::string_view filter, uint32_t tag,
                             std::shared_ptr<RouteHook> hook) {
  if (Status st = CheckHookFilter(filter); !st.ok()) return st;
  // A hook that acts for the whole cluster makes its filters routes here.
  const bool announce = hook != nullptr && hook->TakesForwarded();
  ctx_->router.AddHookFilter(owner, filter, tag, std::move(hook), announce);
  return Status::Ok();
}

Status Broker::SetSharedHook(std::string_view owner, std::string_view group, uint32_t tag,
                             uint32_t members, std::shared_ptr<RouteHook> hook) {
  auto shared = ParseSharedFilter(group);
  if (!shared.ok() || !shared.value().has_value() ||
      !ValidateTopicFilter(shared.value()->filter).ok()) {
    return Status::InvalidArgument("'" + std::string(group) + "' is not a shared subscription");
  }
  ctx_->router.SetSharedHook(owner, group, tag, members, std::move(hook));
  return Status::Ok();
}

Result<size_t> Broker::AddHookFilters(std::string_view owner, uint32_t tag,
                                      std::span<const std::string> filters,
                                      std::shared_ptr<RouteHook> hook) {
  for (const std::string& filter : filters) {
    if (Status st = CheckHookFilter(filter); !st.ok()) return st;
  }
  return ctx_->router.AddHookFilters(owner, tag, filters, hook);
}

size_t Broker::RemoveHookFilters(std::string_view owner, uint32_t tag,
                                 std::span<const std::string> filters) {
  return ctx_->router.RemoveHookFilters(owner, tag, filters);
}

std::vector<RouteEvent> Broker::WatchRoutes(std::shared_ptr<RouteObserver> observer) {
  return ctx_->router.WatchRoutes(std::move(observer));
}

bool Broker::RemoveHookFilter(std::string_view owner, std::string_view filter, uint32_t tag) {
  return ctx_->router.RemoveHookFilter(owner, filter, tag);
}

void Broker::SetRemoteRoutes(std::shared_ptr<RemoteRouteDirectory> directory) {
  ctx_->remote_routes = std::move(directory);
}

void Broker::SetRemoteClients(std::shared_ptr<RemoteClientDirectory> directory) {
  std::lock_guard lock(ctx_->remote_mu);
  ctx_->remote_clients = std::move(directory);
}

std::vector<MessagePtr> Broker::WatchRetained(std::string_view owner,
                                              std::shared_ptr<RetainedObserver> observer) {
  {
    std::lock_guard lock(ctx_->retained_watch_mu);
    ctx_->retained_owner = std::string(owner);
    ctx_->retained_observer = std::move(observer);
  }
  // Taken after the observer is set: a message set in between is both in
  // the snapshot and told, which replication takes twice without harm.
  return AllRetained();
}

std::vector<MessagePtr> Broker::AllRetained() const {
  std::vector<MessagePtr> all = ctx_->router.AllRetained();
  std::erase_if(all, [](const MessagePtr& m) { return m->topic.starts_with("$SYS/"); });
  return all;
}

void Broker::StoreRetained(MessagePtr message) {
  if (!ctx_->router.SetRetainedIfNewer(message) || !ctx_->store) return;
  if (message->payload.empty()) {
    ctx_->store->DeleteRetained(message->topic);
  } else {
    ctx_->store->PutRetained(message);
  }
}

size_t Broker::ClearRetained() {
  std::vector<MessagePtr> all = AllRetained();
  ctx_->DeleteRetained(all, false);
  return all.size();
}

void Broker::Publish(MessagePtr message, RouteDone done) {
  Inc(ctx_->metrics.publish_received);
  ctx_->Route(message, nullptr, std::move(done));
}

void Broker::PublishForwarded(MessagePtr message, ForwardedDelivery delivery, RouteDone done) {
  Inc(ctx_->metrics.publish_received);
  ctx_->Route(message, nullptr, std::move(done), &delivery);
}

bool Broker::AcceptingConnections(std::string* why) const {
  std::string reason;
  if (shutting_down_) {
    reason = "the node is shutting down";
  } else if (!started_) {
    reason = "the node has not started";
  } else if (std::any_of(acceptors_.begin(), acceptors_.end(),
                         [](const auto& a) { return a->running(); })) {
    return true;
  } else {
    reason = "no MQTT listener is running (stopped: ";
    for (size_t i = 0; i < acceptors_.size(); ++i) {
      reason += (i == 0 ? "" : ", ") + acceptors_[i]->id();
    }
    reason += ")";
  }
  if (why != nullptr) *why = std::move(reason);
  return false;
}

std::vector<ListenerStatus> Broker::ListenerStatuses() const {
  std::vector<ListenerStatus> out;
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    const ListenerOptions& o = acceptors_[i]->options();
    ListenerStatus s;
    s.bound = bound_[i];
    s.type = o.type;
    s.proxy_protocol = o.proxy_protocol;
    auto it = ctx_->listener_counters.find(acceptors_[i]->id());
    if (it != ctx_->listener_counters.end()) s.connections = it->second.open.load();
    s.max_connections = o.max_connections;
    s.max_connection_rate = o.max_connection_rate;
    s.running = acceptors_[i]->running();
    out.push_back(std::move(s));
  }
  return out;
}

Status Broker::StopListener(std::string_view id) {
  for (auto& a : acceptors_) {
    if (a->id() != id) continue;
    if (!a->running()) return Status::InvalidArgument("listener " + std::string(id) + " is not running");
    a->Stop();
    FERRY_INFO("listener %s stopped", a->id().c_str());
    return Status::Ok();
  }
  return Status::NotFound("no listener '" + std::string(id) + "'");
}

Status Broker::StartListener(std::string_view id) {
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    Acceptor& a = *acceptors_[i];
    if (a.id() != id) continue;
    if (a.running()) return Status::InvalidArgument("listener " + std::string(id) + " is already running");
    if (Status st = a.Bind(&bound_[i]); !st.ok()) return st;
    FERRY_INFO("listener %s started on %s:%u", a.id().c_str(), bound_[i].host.c_str(),
               bound_[i].port);
    return Status::Ok();
  }
  return Status::NotFound("no listener '" + std::string(id) + "'");
}

void Broker::PublishSys() {
  const Metrics& m = ctx_->metrics;
  const std::string prefix = "$SYS/brokers/" + ctx_->options.node_name + "/";
  const uint64_t now = UnixNowMs();
  auto publish = [&](const char* topic, std::string value) {
    auto msg = std::make_shared<Message>();
    msg->topic = prefix + topic;
    msg->payload = std::move(value);
    msg->retain = true;
    msg->received_at_ms = now;
    ctx_->Route(msg, nullptr, nullptr);
  };
  publish("version", "ferry " FERRY_VERSION);
  publish("uptime", std::to_string((now - ctx_->started_unix_ms) / 1000) + " seconds");
  publish("clients/connected", std::to_string(m.clients_connected.load()));
  publish("clients/total", std::to_string(m.connections_total.load()));
  publish("sessions/count", std::to_string(m.sessions.load()));
  publish("messages/received", std::to_string(m.publish_received.load()));
  publish("messages/sent", std::to_string(m.publish_sent.load()));
  publish("messages/dropped", std::to_string(m.dropped_total()));
  publish("packets/received", std::to_string(m.messages_received.load()));
  publish("packets/sent", std::to_string(m.messages_sent.load()));
  publish("bytes/received", std::to_string(m.bytes_received.load()));
  publish("bytes/sent", std::to_string(m.bytes_sent.load()));
  publish("subscriptions/count", std::to_string(ctx_->router.subscription_count()));
  publish("retained/count", std::to_string(ctx_->router.retained_count()));
}

void Broker::Shutdown(std::function<void()> done) {
  FERRY_INFO("shutting down");
  shutting_down_ = true;
  acceptors_.clear();
  sys_timer_.Reset();
  shutdown_done_ = std::move(done);
  for (auto& w : ctx_->workers) {
    Worker* worker = w.get();
    worker->loop().Post([worker] { worker->Shutdown(); });
  }
  // Joining blocks, so it happens off the main loop; the main loop hears
  // back through an async handle.
  shutdown_async_ = UvHandle<uv_async_t>::Make();
  uv_async_init(main_loop_->get(), shutdown_async_.get(), [](uv_async_t* a) {
    auto* self = static_cast<Broker*>(a->data);
    self->shutdown_async_.Reset();
    if (self->shutdown_done_) self->shutdown_done_();
  });
  shutdown_async_->data = this;
  std::thread([this, async = shutdown_async_.get()] {
    for (auto& w : ctx_->workers) w->Join();
    if (ctx_->store) ctx_->store->Stop();
    uv_async_send(async);
  }).detach();
}

}  // namespace ferry::core

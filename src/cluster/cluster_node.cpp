#include "cluster/cluster_node.h"

#include <malloc.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>
#include <utility>

#include "cluster/cluster_messages.h"
#include "cluster/cluster_node_impl.h"
#include "cluster/forward.h"
#include "core/log.h"

namespace ferry::cluster {
namespace {

constexpr const char* kMembersFile = "/cluster_members.json";
constexpr uint64_t kHousekeepingMs = 200;
constexpr size_t kTrimAfterRoutes = 10000;
constexpr uint64_t kStatsMs = 1000;

uint64_t RandomIncarnation() {
  uint64_t v = 0;
  // A zero incarnation reads as "unknown" on the peers' side.
  while (v == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
      v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
  }
  return v;
}


std::string HostOf(std::string_view node) {
  const size_t at = node.find('@');
  return at == std::string_view::npos ? std::string() : std::string(node.substr(at + 1));
}

}  // namespace

// Hands route events from the workers to the cluster thread.
class ClusterNode::Impl::Observer : public core::RouteObserver {
 public:
  explicit Observer(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  void OnRouteEvent(const core::RouteEvent& e) override {
    gate_->Post([e](Impl& impl) { impl.OnLocalRoute(e); });
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// The route hook of the peers' routes: a message matched on a worker is
// encoded there, once for every peer, and handed to the cluster thread.
class ClusterNode::Impl::Hook : public core::RouteHook {
 public:
  explicit Hook(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  void OnRoute(const core::MessagePtr& message, std::span<const uint32_t> tags,
               core::RouteCompletion done) override {
    OnRouteShared(message, tags, {}, std::move(done));
  }
  void OnRouteShared(const core::MessagePtr& message, std::span<const uint32_t> tags,
                     std::span<const core::SharedPick> shared,
                     core::RouteCompletion done) override {
    auto body = std::make_shared<const std::string>(EncodeForwardBody(*message));
    std::shared_ptr<core::RouteCompletion> held;
    if (done.waited_on()) held = std::make_shared<core::RouteCompletion>(std::move(done));
    const bool posted =
        gate_->Post([t = std::vector<uint32_t>(tags.begin(), tags.end()),
                     s = std::vector<core::SharedPick>(shared.begin(), shared.end()),
                     qos = message->qos, body,
                     held](Impl& impl) { impl.ForwardOut(t, s, qos, body, held); });
    // The node is stopping: the publisher is not acknowledged for what no
    // peer got, and sends it again wherever it reconnects.
    if (!posted && held) held->Abandon();
  }
  bool CarriesToPeers() const override { return true; }

 private:
  std::shared_ptr<Gate> gate_;
};

// Hands retained messages set or deleted on this node to the cluster thread,
// encoded on the routing thread.
class ClusterNode::Impl::RetainedWatch : public core::RetainedObserver {
 public:
  explicit RetainedWatch(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  void OnRetained(const core::MessagePtr& message) override {
    auto body = std::make_shared<const std::string>(EncodeForwardBody(*message));
    gate_->Post([body, topic = message->topic, at = message->received_at_ms,
                 deleted = message->payload.empty()](Impl& impl) {
      impl.OnLocalRetained(body, topic, at, deleted);
    });
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// The remote route table for the admin commands, read on the cluster thread.
class RouteDirectoryImpl : public core::RemoteRouteDirectory {
 public:
  explicit RouteDirectoryImpl(std::shared_ptr<ClusterNode::Impl::Gate> gate)
      : gate_(std::move(gate)) {}
  void List(std::string after_filter, std::string after_node, size_t max,
            std::function<void(std::vector<Row>)> done) override {
    auto answer = [after_filter, after_node, max, done](ClusterNode::Impl& impl) {
      done(impl.ListRoutes(after_filter, after_node, max));
    };
    if (!gate_->Post(answer)) done({});
  }
  void Matching(std::string topic, std::function<void(std::vector<Row>)> done) override {
    if (!gate_->Post([topic, done](ClusterNode::Impl& impl) { done(impl.RoutesMatching(topic)); })) {
      done({});
    }
  }

 private:
  std::shared_ptr<ClusterNode::Impl::Gate> gate_;
};

// ---------------------------------------------------------------- status

std::vector<std::string> ClusterStatus::running_nodes() const {
  std::vector<std::string> out;
  for (const MemberStatus& m : members) {
    if (m.running) out.push_back(m.node);
  }
  return out;
}

std::vector<std::string> ClusterStatus::stopped_nodes() const {
  std::vector<std::string> out;
  for (const MemberStatus& m : members) {
    if (!m.running) out.push_back(m.node);
  }
  return out;
}

// ---------------------------------------------------------------- public

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterNode::~ClusterNode() { Stop(); }

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(ClusterOptions options,
                                                         WatchRoutesFn watch_routes) {
  CoreSeams core;
  core.watch_routes = std::move(watch_routes);
  return Create(std::move(options), std::move(core));
}

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(ClusterOptions options, CoreSeams core) {
  MemberRecord self{options.node, HostOf(options.node), options.listen_port, RandomIncarnation(),
                    core::UnixNowMs()};
  auto loaded = Membership::Load(options.data_dir + kMembersFile, options.cluster, self);
  if (!loaded.ok() && loaded.status().code() != Status::Code::kNotFound) return loaded.status();
  return std::unique_ptr<ClusterNode>(new ClusterNode(
      std::make_unique<Impl>(std::move(options), std::move(core), std::move(self))));
}

const std::string& ClusterNode::node() const { return impl_->node(); }

Status ClusterNode::Start() {
  FERRY_DCHECK(!started_);
  Status st = impl_->Prepare(&port_);
  if (!st.ok()) return st;
  started_ = true;
  thread_ = std::thread([impl = impl_.get()] { impl->Run(); });
  return Status::Ok();
}

void ClusterNode::Stop() {
  if (!started_) return;
  started_ = false;
  impl_->loop().Post([impl = impl_.get()] { impl->Shutdown(); });
  thread_.join();
}

void ClusterNode::Join(std::string target, std::function<void(JoinResult)> done) {
  impl_->loop().Post([impl = impl_.get(), target = std::move(target), done = std::move(done)] {
    impl->Join(target, done);
  });
}

void ClusterNode::Leave(std::function<void(Status)> done) {
  impl_->loop().Post([impl = impl_.get(), done = std::move(done)] { impl->Leave(done); });
}

void ClusterNode::ForceLeave(std::string node, std::function<void(Status)> done) {
  impl_->loop().Post([impl = impl_.get(), node = std::move(node), done = std::move(done)] {
    impl->ForceLeave(node, done);
  });
}

void ClusterNode::GetDiscovery(std::function<void(DiscoveryStatus)> done) {
  impl_->loop().Post(
      [impl = impl_.get(), done = std::move(done)] { done(impl->CurrentDiscovery()); });
}

void ClusterNode::SetDiscovery(bool enabled, std::function<void(Status)> done) {
  impl_->loop().Post([impl = impl_.get(), enabled, done = std::move(done)] {
    impl->SetDiscovery(enabled, done);
  });
}

void ClusterNode::GetStatus(std::function<void(ClusterStatus)> done) {
  impl_->loop().Post([impl = impl_.get(), done = std::move(done)] { done(impl->CurrentStatus()); });
}

void ClusterNode::GetDigest(std::function<void(ClusterDigest)> done) {
  impl_->loop().Post([impl = impl_.get(), done = std::move(done)] { done(impl->Digest()); });
}

ClusterStatus ClusterNode::LatestStatus() const { return *impl_->Published(); }

std::shared_ptr<core::RemoteRouteDirectory> ClusterNode::RouteDirectory() const {
  return std::make_shared<RouteDirectoryImpl>(impl_->gate());
}

void ClusterNode::GetRoutes(std::string node, std::function<void(std::vector<RouteEntry>)> done) {
  impl_->loop().Post([impl = impl_.get(), node = std::move(node), done = std::move(done)] {
    done(impl->RoutesOf(node));
  });
}

// ---------------------------------------------------------------- lifecycle

ClusterNode::Impl::Impl(ClusterOptions options, CoreSeams core, MemberRecord self)
    : options_(std::move(options)),
      core_(std::move(core)),
      self_(std::move(self)),
      members_path_(options_.data_dir + kMembersFile),
      members_(options_.cluster, self_),
      local_(self_.node, self_.incarnation),
      lock_table_(core::UnixNowUs) {}

ClusterNode::Impl::~Impl() = default;

Status ClusterNode::Impl::Listen(uint16_t* port) {
  server_ = core::UvHandle<uv_tcp_t>::Make();
  uv_tcp_init(loop_.get(), server_.get());
  server_->data = this;
  sockaddr_storage addr{};
  if (uv_ip4_addr(options_.listen_host.c_str(), options_.listen_port,
                  reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(options_.listen_host.c_str(), options_.listen_port,
                  reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    server_.Reset();
    return Status::InvalidArgument("cluster listen address '" + options_.listen_host +
                                   "' is not an IP address");
  }
  int rc = uv_tcp_bind(server_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server_.get()), 64,
                   [](uv_stream_t* s, int status) {
                     if (status == 0) static_cast<Impl*>(s->data)->OnConnection();
                   });
  }
  if (rc != 0) {
    server_.Reset();
    return Status::IoError("cannot listen on the cluster port " + options_.listen_host + ":" +
                           std::to_string(options_.listen_port) + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(server_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  *port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::Ok();
}

Status ClusterNode::Impl::Prepare(uint16_t* port) {
  loop_.BindToCurrentThread();
  if (Status st = Listen(port); !st.ok()) return st;
  self_.port = *port;
  auto loaded = Membership::Load(members_path_, options_.cluster, self_);
  members_ = loaded.ok() ? std::move(loaded).value() : Membership(options_.cluster, self_);
  SaveMembers();

  housekeeping_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), housekeeping_.get());
  housekeeping_->data = this;
  uv_timer_start(
      housekeeping_.get(), [](uv_timer_t* t) { static_cast<Impl*>(t->data)->OnHousekeeping(); }, 0,
      kHousekeepingMs);
  delta_timer_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), delta_timer_.get());
  delta_timer_->data = this;

  LoadCleaned();
  LoadDiscovery();
  if (options_.discovery) {
    DiscoverySelf me{options_.cluster, self_.node, self_.host, self_.port, options_.cookie};
    options_.discovery->Start(loop_, me, [this](std::string error) {
      NoteDiscoveryError("registration", std::move(error));
    });
    discovery_timer_ = core::UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop_.get(), discovery_timer_.get());
    discovery_timer_->data = this;
    uv_timer_start(
        discovery_timer_.get(),
        [](uv_timer_t* t) { static_cast<Impl*>(t->data)->OnDiscoveryTick(); }, 0,
        options_.discovery_interval_ms);
  }
  gate_ = std::make_shared<Gate>(*this);
  observer_ = std::make_shared<Observer>(gate_);
  hook_ = std::make_shared<Hook>(gate_);
  retained_watch_ = std::make_shared<RetainedWatch>(gate_);
  claims_hook_ = MakeClaims();
  if (core_.set_session_hook) core_.set_session_hook(claims_hook_);
  if (core_.watch_retained) core_.watch_retained(retained_watch_);
  if (core_.watch_routes) local_.Reset(core_.watch_routes(observer_));
  if (local_.has_delta()) local_.TakeDelta();  // nobody to send it to yet
  published_ = std::make_shared<const ClusterStatus>(CurrentStatus());
  // Back in a cluster it was part of: it may have granted bridge locks
  // before it stopped, which it no longer knows of.
  if (members_.members().size() > 1) bridge_grants_from_ms_ = loop_.Now() + kLockLeaseMs;
  FERRY_INFO("cluster '%s': node %s listening on %s:%u, %zu members known",
             options_.cluster.c_str(), self_.node.c_str(), options_.listen_host.c_str(),
             unsigned{*port}, members_.members().size());
  return Status::Ok();
}

void ClusterNode::Impl::Run() {
  // A peer that vanished makes a write fail with EPIPE on this thread, not
  // kill the process, whether or not the embedding program ignores SIGPIPE.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  loop_.Run();
}

void ClusterNode::Impl::Shutdown() {
  stopping_ = true;
  gate_->Detach();
  // What the peers have not acknowledged is not acknowledged to its
  // publishers either: they send it again after they reconnect.
  for (auto& [node, p] : peers_) {
    for (auto& [seq, held] : p.unacked) {
      if (held.done) held.done->Abandon();
    }
  }
  if (core_.watch_routes) core_.watch_routes(nullptr);
  if (core_.watch_retained) core_.watch_retained(nullptr);
  if (core_.set_session_hook) core_.set_session_hook(nullptr);
  // CONNECTs still waiting for the cluster are refused (0x89): the client
  // comes back to a node that is up.
  for (auto& [id, claim] : claims_) {
    if (!claim.later) continue;
    core::SessionClaim busy;
    busy.outcome = core::SessionClaim::Outcome::kBusy;
    busy.why = "the node is stopping";
    std::exchange(claim.later, nullptr)(std::move(busy));
  }
  for (auto& [node, p] : peers_) {
    RouteChanges changes;
    remote_.Purge(node, changes);
    InstallRoutes(node, changes);
  }
  if (join_) FinishJoin(Status::Unavailable("the node is stopping"));
  for (auto& c : conns_) c->link->Close("node stopping");
  server_.Reset();
  housekeeping_.Reset();
  delta_timer_.Reset();
  discovery_timer_.Reset();
  if (options_.discovery) options_.discovery->Stop();
  loop_.Stop();  // runs what is posted (the links' OnClosed) first
  probes_.clear();
  conns_.clear();
  dead_.clear();
  peers_.clear();
}

// ---------------------------------------------------------------- links

LocalIdentity ClusterNode::Impl::Identity() const {
  LocalIdentity id;
  id.cluster = options_.cluster;
  id.node = self_.node;
  id.cookie = options_.cookie;
  id.incarnation = self_.incarnation;
  return id;
}

void ClusterNode::Impl::OnConnection() {
  auto tcp = core::UvHandle<uv_tcp_t>::Make();
  uv_tcp_init(loop_.get(), tcp.get());
  if (uv_accept(reinterpret_cast<uv_stream_t*>(server_.get()),
                reinterpret_cast<uv_stream_t*>(tcp.get())) != 0) {
    return;
  }
  auto& c = conns_.emplace_back(std::make_unique<Conn>(*this, false, loop_.Now()));
  c->link = PeerLink::Accept(
      loop_, Identity(), std::move(tcp),
      [this](std::string_view node) { return members_.IsRemoved(node); }, *c, options_.link);
}

ClusterNode::Impl::Conn& ClusterNode::Impl::Dial(const PeerAddress& to, std::string_view purpose) {
  auto& c = conns_.emplace_back(std::make_unique<Conn>(*this, true, loop_.Now()));
  c->link = PeerLink::Connect(loop_, Identity(), to, std::string(purpose), *c, options_.link);
  return *c;
}

bool ClusterNode::Impl::Send(Conn& c, FrameType type, std::string_view payload) {
  if (c.link->Send(type, payload)) return true;
  if (c.link->established()) {
    FERRY_WARN("cluster: link to '%s' is over its byte cap; closing it", c.peer().c_str());
    c.link->Close("link byte cap reached");
  }
  return false;
}

void ClusterNode::Impl::OnEstablished(Conn& c) {
  if (stopping_) return;
  c.established = true;
  FERRY_DEBUG("cluster: %s link %s '%s' established", std::string(c.link->peer().purpose).c_str(),
              c.outbound ? "to" : "from", c.peer().c_str());
  if (c.control()) {
    SendMembers(c);  // the peer becomes this node's member when its set arrives
  } else if (join_ && join_->conn == &c) {
    JoinRequest request{self_, members_.epoch(), join_->only_if_clustered};
    Send(c, FrameType::kJoin, EncodeJoinRequest(request));
  }
}

void ClusterNode::Impl::OnFrame(Conn& c, const FrameView& f) {
  if (stopping_) return;
  const bool control = c.control();
  switch (static_cast<FrameType>(f.type)) {
    case FrameType::kMembers:
      if (control) return OnMembers(c, f);
      break;
    case FrameType::kRoutes:
      if (control && c.members_received) return OnRoutes(c, f);
      break;
    case FrameType::kRoutesWanted:
      if (control && c.members_received) return SendSnapshot(c);
      break;
    case FrameType::kLeave:
      if (control) return OnPeerLeft(c);
      break;
    case FrameType::kForceLeave:
      if (control && c.members_received) return OnForceLeave(c, f);
      break;
    case FrameType::kForward:
      if (control && c.members_received) return OnForward(c, f);
      break;
    case FrameType::kForwardAck:
      if (control && c.members_received) return OnForwardAcks(c, f);
      break;
    case FrameType::kRetained:
      if (control && c.members_received) return OnRetained(c, f);
      break;
    case FrameType::kStats:
      if (control && c.members_received) return OnStats(c, f);
      break;
    case FrameType::kLock:
      if (control && c.members_received) return OnLock(c, f);
      break;
    case FrameType::kLockReply:
      if (control && c.members_received) return OnLockReply(c, f);
      break;
    case FrameType::kUnlock:
      if (control && c.members_received) return OnUnlock(c, f);
      break;
    case FrameType::kSessionQuery:
      if (control && c.members_received) return OnSessionQuery(c, f);
      break;
    case FrameType::kSessionQueryReply:
      if (control && c.members_received) return OnSessionQueryReply(c, f);
      break;
    case FrameType::kTakeover:
      if (control && c.members_received) return OnTakeover(c, f);
      break;
    case FrameType::kTakeoverSession:
      if (control && c.members_received) return OnTakeoverSession(c, f);
      break;
    case FrameType::kTakeoverMessages:
      if (control && c.members_received) return OnTakeoverMessages(c, f);
      break;
    case FrameType::kTakeoverEnd:
      if (control && c.members_received) return OnTakeoverEnd(c, f);
      break;
    case FrameType::kTakeoverDone:
      if (control && c.members_received) return OnTakeoverDone(c, f);
      break;
    case FrameType::kSessionList:
      if (control && c.members_received) return OnSessionList(c, f);
      break;
    case FrameType::kAdminCall:
      if (control && c.members_received) return OnAdminCall(c, f);
      break;
    case FrameType::kAdminReply:
      if (control && c.members_received) return OnAdminReply(c, f);
      break;
    case FrameType::kJoin:
      if (!control && !c.outbound) return OnJoinRequest(c, f);
      break;
    case FrameType::kJoinReply:
      if (!control && c.outbound) return OnJoinReply(c, f);
      break;
    default:
      if (f.skippable()) return;
      break;
  }
  FERRY_WARN("cluster: unexpected frame type %u on the %s link with '%s'; closing it",
             unsigned{f.type}, std::string(c.link->peer().purpose).c_str(), c.peer().c_str());
  c.link->Close("unexpected frame type " + std::to_string(f.type));
}

void ClusterNode::Impl::OnClosed(Conn& c, std::string_view why, const HandshakeFailure* refusal) {
  auto it =
      std::find_if(conns_.begin(), conns_.end(), [&](const auto& p) { return p.get() == &c; });
  if (it == conns_.end()) return;
  dead_.push_back(std::move(*it));
  conns_.erase(it);
  std::erase_if(probes_, [&](const auto& probe) { return probe.second == &c; });
  if (stopping_) return;
  if (join_ && join_->conn == &c) {
    join_->conn = nullptr;
    if (!join_->accepted) {
      if (join_->quiet) {
        FERRY_DEBUG("cluster: join through '%s' failed: %.*s", join_->target.c_str(),
                    static_cast<int>(why.size()), why.data());
      } else {
        FERRY_WARN("cluster: join through '%s' failed: %.*s", join_->target.c_str(),
                   static_cast<int>(why.size()), why.data());
      }
      return FinishJoin(Status::Unavailable(std::string(why)));
    }
    return;
  }
  auto peer = peers_.find(c.peer());
  const bool current = peer != peers_.end() && peer->second.control == &c;
  LogClosed(c, current, why, refusal);
  if (!current) return;
  Peer& p = peer->second;
  p.control = nullptr;
  // Since it went down, not since the last failed redial.
  if (p.down_at_ms == 0) p.down_at_ms = loop_.Now();
  const size_t purged = PurgeRoutes(c.peer());
  if (purged > 0) FERRY_INFO("cluster: withdrew %zu routes of '%s'", purged, c.peer().c_str());
  UpdateRunning();
  if (!stopping_) SessionPeerDown(c.peer());
  if (refusal != nullptr && refusal->by_peer && refusal->reason == Refusal::kRemoved) {
    FERRY_WARN("cluster: '%s' says this node was removed from cluster '%s' by force-leave",
               c.peer().c_str(), options_.cluster.c_str());
    GoAlone("removed by force-leave", false);
    return;
  }
  p.redial_at_ms = loop_.Now() + static_cast<uint64_t>(p.backoff.Next().count());
}

void ClusterNode::Impl::LogClosed(const Conn& c, bool current, std::string_view why,
                                  const HandshakeFailure* refusal) const {
  const std::string who = c.peer().empty() ? "an unnamed peer" : "'" + c.peer() + "'";
  if (refusal != nullptr) {
    FERRY_WARN("cluster: link %s %s refused: %s", c.outbound ? "to" : "from", who.c_str(),
               refusal->text.c_str());
  } else if (!c.established && !c.outbound) {
    // Garbage, a wrong protocol, a peer that stalls: one line, and on.
    FERRY_WARN("cluster: connection from %s closed during the handshake: %.*s", who.c_str(),
               static_cast<int>(why.size()), why.data());
  } else if (c.established && (c.members_received || current)) {
    FERRY_INFO("cluster: link with '%s' closed: %.*s", c.peer().c_str(),
               static_cast<int>(why.size()), why.data());
  } else {
    // Mostly redials of a member that is down: every few seconds.
    FERRY_DEBUG("cluster: link with '%s' closed: %.*s", c.peer().c_str(),
                static_cast<int>(why.size()), why.data());
  }
}

void ClusterNode::Impl::Attach(Conn& c) {
  Peer& p = PeerOf(c.peer());
  if (p.control != nullptr && p.control != &c) {
    // Two links with one peer (it restarted, or both dialled): the one the
    // lower name opened stays, so both ends keep the same one.
    const bool mine_first = self_.node < c.peer();
    Conn* old = p.control;
    if (old->outbound == mine_first && c.outbound != mine_first) {
      c.link->Close("a control link with '" + self_.node + "' exists");
      return;
    }
    p.control = &c;
    old->link->Close("replaced by a newer link");
  }
  p.control = &c;
  p.backoff.Reset();
  // A restart (a new process) told from a network that came back.
  const uint64_t incarnation = c.link->peer().incarnation;
  if (p.down_at_ms != 0 && p.seen_incarnation != 0) {
    const uint64_t down_s = (loop_.Now() - std::min(loop_.Now(), p.down_at_ms)) / 1000;
    if (incarnation != p.seen_incarnation) {
      FERRY_INFO("cluster: '%s' is back after %llu s: it restarted", c.peer().c_str(),
                 static_cast<unsigned long long>(down_s));
    } else {
      FERRY_INFO("cluster: '%s' is reachable again after %llu s, the same process: the network "
                 "between the nodes was down",
                 c.peer().c_str(), static_cast<unsigned long long>(down_s));
    }
  }
  p.seen_incarnation = incarnation;
  c.members_received = true;
  SendSnapshot(c);
  SendRetained(c);
  ResumeForwards(p);
  SendSessionList(c);
  UpdateRunning();
  CheckJoinDone();
}

std::shared_ptr<const ClusterStatus> ClusterNode::Impl::Published() const {
  std::lock_guard lock(published_mu_);
  return published_;
}

void ClusterNode::Impl::OnHousekeeping() {
  dead_.clear();
  // A join link is for one request: one that stays open holds nothing up.
  const uint64_t now = loop_.Now();
  for (auto& c : conns_) {
    if (!c->outbound && c->established && !c->control() &&
        now - c->opened_ms > options_.join_timeout_ms) {
      c->link->Close("join request not finished in time");
    }
  }
  local_.PruneRemoved();
  AutoClean();
  Reconcile();
  ProbeCleaned();
  RunPendingHeal();
  ExpireHeld();
  PruneTombstones();
  SessionHousekeeping();
  if (now - stats_at_ms_ >= kStatsMs) SendStats();
  auto status = std::make_shared<ClusterStatus>(CurrentStatus());
  UpdatePartitionAlarm(*status);
  status->alarm_since_ms = alarm_since_ms_;
  {
    std::lock_guard lock(published_mu_);
    published_ = std::move(status);
  }
  if (join_ && join_->accepted && loop_.Now() >= join_->deadline_ms) {
    FinishJoin(Status::Ok());
  }
}

namespace {

// A short hash of `lines`, sorted: equal sets give equal digests.
std::string DigestOf(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const std::string& l : lines) {
    EVP_DigestUpdate(ctx, l.data(), l.size());
    EVP_DigestUpdate(ctx, "\n", 1);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < 8 && i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

std::string RouteLine(const std::string& node, const RouteEntry& e) {
  return node + '\t' + e.route + '\t' + std::to_string(e.shared_members);
}

}  // namespace

ClusterDigest ClusterNode::Impl::Digest() const {
  ClusterDigest d;
  std::vector<std::string> members;
  for (const auto& [node, m] : members_.members()) members.push_back(node);
  d.member_count = members.size();
  d.members = DigestOf(std::move(members));
  std::vector<std::string> routes;
  for (const RouteEntry& e : local_.Present()) routes.push_back(RouteLine(self_.node, e));
  for (const auto& [node, m] : members_.members()) {
    if (node == self_.node) continue;
    for (const RouteEntry& e : remote_.RoutesOf(node)) routes.push_back(RouteLine(node, e));
  }
  d.route_count = routes.size();
  d.routes = DigestOf(std::move(routes));
  std::vector<std::string> retained;
  if (core_.all_retained) {
    for (const core::MessagePtr& m : core_.all_retained()) {
      retained.push_back(m->topic + '\t' + std::to_string(m->qos) + '\t' +
                         std::to_string(m->received_at_ms) + '\t' + m->payload);
    }
  }
  d.retained_count = retained.size();
  d.retained = DigestOf(std::move(retained));
  return d;
}

void ClusterNode::Impl::UpdatePartitionAlarm(const ClusterStatus& s) {
  const bool active = alarm_since_ms_ != 0;
  if (s.unreachable.empty() == !active) return;
  std::string names;
  for (const std::string& n : s.unreachable) names += (names.empty() ? "'" : ", '") + n + "'";
  if (!active) {
    alarm_since_ms_ = core::UnixNowMs();
    const std::string message =
        std::to_string(s.unreachable.size()) + " of " + std::to_string(s.members.size()) +
        " members unreachable for " + std::to_string(options_.link.down_after_ms / 1000) +
        " s or more: " + names;
    FERRY_WARN("cluster: alarm cluster_partition raised: %s; this side goes on serving its "
               "clients, and forwards to the others are dropped until they are back",
               message.c_str());
    return PublishAlarm(true, message);
  }
  const uint64_t lasted_s = (core::UnixNowMs() - alarm_since_ms_) / 1000;
  alarm_since_ms_ = 0;
  const std::string message = "every member reachable again after " + std::to_string(lasted_s) + " s";
  FERRY_INFO("cluster: alarm cluster_partition cleared: %s", message.c_str());
  PublishAlarm(false, message);
}

void ClusterNode::Impl::PublishAlarm(bool activate, const std::string& message) {
  if (!core_.publish_local) return;
  auto m = std::make_shared<core::Message>();
  m->topic = "$SYS/brokers/" + self_.node + "/alarms/" + (activate ? "activate" : "deactivate");
  const uint64_t now = core::UnixNowMs();
  m->payload = nlohmann::json{{"name", "cluster_partition"},
                              {"message", message},
                              {"node", self_.node},
                              {activate ? "activated_at" : "deactivated_at", now}}
                   .dump();
  m->qos = 0;
  m->received_at_ms = now;
  core_.publish_local(std::move(m));
}

// ---------------------------------------------------------------- routes

void ClusterNode::Impl::SendStats() {
  stats_at_ms_ = loop_.Now();
  if (!core_.sessions) return;
  std::string payload;
  FieldWriter(payload).U64(core_.sessions());
  for (auto& [node, p] : peers_) {
    if (Running(p)) p.control->link->Send(FrameType::kStats, payload, 0, kFlagSkippable);
  }
}

void ClusterNode::Impl::OnStats(Conn& c, const FrameView& f) {
  FieldReader r(f.payload);
  uint64_t sessions = 0;
  // Later versions may add fields: read what this one knows.
  if (!r.U64(sessions, "sessions")) return;
  auto p = peers_.find(c.peer());
  if (p != peers_.end()) p->second.sessions = sessions;
}

void ClusterNode::Impl::OnLocalRoute(const core::RouteEvent& e) {
  if (stopping_) return;
  local_.Apply(e);
  if (local_.has_delta() && !uv_is_active(reinterpret_cast<uv_handle_t*>(delta_timer_.get()))) {
    // Events posted together go out as one delta.
    uv_timer_start(
        delta_timer_.get(), [](uv_timer_t* t) { static_cast<Impl*>(t->data)->FlushDelta(); }, 0, 0);
  }
}

size_t ClusterNode::Impl::MaxRouteFrame() const {
  // A quarter of the link's cap, so that a frame always fits beside others,
  // and never more than a peer reads in one frame.
  return std::min<size_t>(options_.link.max_buffered_bytes / 4, options_.link.max_payload);
}

void ClusterNode::Impl::FlushDelta() {
  while (local_.has_delta()) {
    const std::string payload = EncodeRouteUpdate(local_.TakeDelta(MaxRouteFrame()));
    for (auto& [node, p] : peers_) {
      if (p.control != nullptr && p.control->streaming) QueueFrame(*p.control, FrameType::kRoutes, payload);
    }
  }
}

void ClusterNode::Impl::SendSnapshot(Conn& c) {
  FlushDelta();  // the snapshot is as of the last delta; the next follows on
  for (const RouteUpdate& u : local_.Snapshot(options_.snapshot_chunk, MaxRouteFrame())) {
    QueueFrame(c, FrameType::kRoutes, EncodeRouteUpdate(u));
  }
  c.streaming = true;
}

void ClusterNode::Impl::QueueFrame(Conn& c, FrameType type, std::string payload) {
  c.backlog.emplace_back(type, std::move(payload));
  DrainBacklog(c);
}

void ClusterNode::Impl::DrainBacklog(Conn& c) {
  // Up to half the link's cap, so that member sets and heartbeats still fit;
  // more goes when the link has written it all (OnDrained).
  const size_t high_water = options_.link.max_buffered_bytes / 2;
  while (!c.backlog.empty() && c.link->established()) {
    const auto& [type, next] = c.backlog.front();
    const size_t buffered = c.link->buffered_bytes();
    if (buffered > 0 && buffered + next.size() > high_water) return;
    if (!c.link->Send(type, next)) {
      FERRY_WARN("cluster: a frame of %zu bytes exceeds the link cap; closing the link to '%s'",
                 next.size(), c.peer().c_str());
      return c.link->Close("frame larger than the link's byte cap");
    }
    c.backlog.pop_front();
  }
}

void ClusterNode::Impl::OnRoutes(Conn& c, const FrameView& f) {
  auto update = ParseRouteUpdate(f.payload);
  if (!update.ok() || update->origin != c.peer()) {
    const std::string why =
        update.ok() ? "routes of '" + update->origin + "' on its link" : update.status().message();
    FERRY_WARN("cluster: bad route update from '%s': %s; closing the link", c.peer().c_str(),
               why.c_str());
    return c.link->Close("bad route update: " + why);
  }
  RouteChanges changes;
  if (remote_.Apply(*update, changes) == RemoteRoutes::Outcome::kNeedSnapshot) {
    FERRY_DEBUG("cluster: gap in the routes of '%s'; asking for a snapshot", c.peer().c_str());
    Send(c, FrameType::kRoutesWanted, {});
  }
  InstallRoutes(c.peer(), changes);
  if (update->snapshot && !update->more && changes.added.size() > kTrimAfterRoutes) {
    // A large snapshot's chunks were held until its last one: give the
    // memory they took back to the system.
    malloc_trim(0);
  }
}

size_t ClusterNode::Impl::PurgeRoutes(std::string_view node) {
  RouteChanges changes;
  remote_.Purge(node, changes);
  InstallRoutes(std::string(node), changes);
  return changes.added.size() + changes.removed.size() + changes.shared.size();
}

uint32_t ClusterNode::Impl::TagOf(const std::string& node) {
  auto [it, added] = tags_.emplace(node, static_cast<uint32_t>(tag_nodes_.size()));
  if (added) tag_nodes_.push_back(node);
  return it->second;
}

void ClusterNode::Impl::InstallRoutes(const std::string& node, const RouteChanges& changes) {
  if (!core_.add_routes) return;
  const uint32_t tag = TagOf(node);
  for (const RouteEntry& e : changes.shared) {
    // A shared group's members there (0: none left): one delivery per group
    // in the cluster, chosen on the publishing node.
    if (Status st = core_.set_shared(tag, e.route, e.present ? e.shared_members : 0, hook_);
        !st.ok()) {
      FERRY_WARN("cluster: shared group of '%s' not installed: %s", node.c_str(),
                 st.message().c_str());
    }
  }
  if (!changes.removed.empty()) core_.remove_routes(tag, changes.removed);
  if (!changes.added.empty()) {
    Status st = core_.add_routes(tag, changes.added, hook_);
    if (!st.ok()) {
      FERRY_WARN("cluster: routes of '%s' not installed: %s", node.c_str(), st.message().c_str());
    }
  }
}

ClusterStatus ClusterNode::Impl::CurrentStatus() const {
  ClusterStatus s;
  s.cluster = options_.cluster;
  s.self = self_.node;
  s.epoch = members_.epoch();
  s.alarm_since_ms = alarm_since_ms_;
  s.sessions_imported = sessions_imported_;
  s.sessions_exported = sessions_exported_;
  s.sessions_discarded = sessions_discarded_;
  s.locks_held = held_locks_.size();
  s.locks_granted = lock_table_.size();
  const uint64_t now = LoopNow();
  const uint64_t unix_now = core::UnixNowMs();
  for (const auto& [node, m] : members_.members()) {
    MemberStatus ms{node, m.host, m.port, node == self_.node, m.boot_ms, 0, 0};
    if (node == self_.node) {
      ms.routes = local_.size();
      if (core_.sessions) ms.sessions = core_.sessions();
    } else {
      ms.routes = remote_.count_of(node);
      auto p = peers_.find(node);
      if (p != peers_.end() && Running(p->second)) {
        ms.running = true;
        ms.rtt_us = p->second.control->link->rtt_us();
      }
      if (p != peers_.end() && !ms.running && p->second.down_at_ms != 0) {
        const uint64_t down_for = now - std::min(now, p->second.down_at_ms);
        ms.down_since_ms = unix_now - std::min(unix_now, down_for);
        if (down_for >= options_.link.down_after_ms) s.unreachable.push_back(node);
      }
      if (p != peers_.end()) {
        ms.sessions = p->second.sessions;
        ms.forwarded_out = p->second.forwarded_out;
        ms.forward_dropped = p->second.forward_dropped;
        ms.forward_unacked = p->second.unacked.size();
      }
      if (auto in = inbound_.find(node); in != inbound_.end()) ms.forwarded_in = in->second.received;
    }
    s.members.push_back(std::move(ms));
  }
  s.removed.assign(members_.removed().begin(), members_.removed().end());
  return s;
}

namespace {

std::vector<core::RemoteRouteDirectory::Row> Rows(std::vector<RemoteRoutes::Listed> listed) {
  std::vector<core::RemoteRouteDirectory::Row> rows;
  rows.reserve(listed.size());
  for (auto& l : listed) rows.push_back({std::move(l.route), std::move(l.origin), l.shared_members});
  return rows;
}

}  // namespace

std::vector<core::RemoteRouteDirectory::Row> ClusterNode::Impl::ListRoutes(
    const std::string& after_filter, const std::string& after_node, size_t max) const {
  return Rows(remote_.ListAfter(after_filter, after_node, max));
}

std::vector<core::RemoteRouteDirectory::Row> ClusterNode::Impl::RoutesMatching(
    const std::string& topic) const {
  return Rows(remote_.Matching(topic));
}

std::vector<RouteEntry> ClusterNode::Impl::RoutesOf(std::string_view node) const {
  if (node != self_.node) return remote_.RoutesOf(node);
  return local_.Present();
}

ClusterNode::Impl::Peer& ClusterNode::Impl::PeerOf(const std::string& node) {
  auto it = peers_.find(node);
  if (it != peers_.end()) return it->second;
  core::Backoff backoff(std::chrono::milliseconds(options_.redial_min_ms),
                        std::chrono::milliseconds(options_.redial_max_ms), core::BackoffSeed(this));
  Peer& p = peers_.emplace(node, Peer(backoff)).first->second;
  p.down_at_ms = loop_.Now();  // not running until its control link is attached
  return p;
}

bool ClusterNode::Impl::Running(const Peer& p) const {
  return p.control != nullptr && p.control->members_received && p.control->link->established();
}

}  // namespace ferry::cluster

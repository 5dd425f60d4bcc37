// BridgeLink: life cycle, connecting, reconnecting, failover and failback.
// The message flow (queue, sending, pulling down) is in bridge_link_flow.cpp.
#include "bridge/bridge_link.h"

#include <fstream>

#include "core/log.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;
using std::chrono::milliseconds;

// Memory an Outbox keeps before it spills to disk.
constexpr size_t kOutboxMemory = 16 << 20;

const char* StateName(int s) {
  static const char* kNames[] = {"stopped", "idle", "connecting", "connected", "backoff"};
  return kNames[s];
}

}  // namespace

// A TCP (and TLS) connection attempt to the first address while connected
// to a later one: if it succeeds, the primary is back.
class BridgeLink::Probe : public Transport::Handler {
 public:
  explicit Probe(BridgeLink& link) : link_(link) {}
  void Start(const UpstreamAddress& a, std::shared_ptr<SSL_CTX> tls, const TlsOptions& o,
             milliseconds timeout) {
    transport_ = Transport::Start(link_.ctx_.loop, *this, a, std::move(tls), o, timeout);
  }
  void Cancel() {
    if (transport_ != nullptr) transport_->Close();
    transport_ = nullptr;
  }
  void OnConnected(const std::string&) override {
    transport_->Close();
    transport_ = nullptr;
    link_.OnProbeResult(true);
  }
  void OnData(std::span<const uint8_t>) override {}
  void OnWritten(uint64_t) override {}
  void OnClosed(const Status&) override {
    transport_ = nullptr;
    link_.OnProbeResult(false);
  }

 private:
  BridgeLink& link_;
  Transport* transport_ = nullptr;
};

Result<PreparedConfig> PrepareConfig(BridgeConfig config) {
  PreparedConfig p;
  if (!config.password_file.empty()) {
    std::ifstream in(config.password_file);
    std::string line;
    if (!in.good() || !std::getline(in, line)) {
      return Status::InvalidArgument("[bridge." + config.name + "] password_file: cannot read '" +
                                     config.password_file + "'");
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    config.password = line;
  }
  bool tls = false;
  for (const UpstreamAddress& a : config.addresses) tls = tls || config.UsesTls(a);
  if (tls) {
    TlsOptions o{config.tls_ca_file, config.tls_cert_file, config.tls_key_file,
                 config.tls_verify, config.tls_server_name};
    auto ctx = MakeTlsContext(o);
    if (!ctx.ok()) {
      return Status::InvalidArgument("[bridge." + config.name + "] " + ctx.status().message());
    }
    p.tls = std::move(ctx).value();
  }
  p.config = std::move(config);
  return p;
}

Result<std::unique_ptr<BridgeLink>> BridgeLink::Create(PreparedConfig prepared,
                                                       BridgeContext& ctx, bool runtime) {
  const BridgeConfig& c = prepared.config;
  BridgeQueue::Options qo;
  qo.log.dir = ctx.data_dir + "/bridges/" + c.name;
  qo.log.max_bytes = c.queue_max_bytes;
  qo.log.max_age = c.queue_max_age;
  qo.log.warn = [name = c.name](const std::string& line) {
    FERRY_WARN("bridge %s: queue: %s", name.c_str(), line.c_str());
  };
  qo.sync = c.queue_sync;
  qo.queue_qos0 = c.queue_qos0;
  // The link is looked up by name when the post runs, so a late
  // notification for a bridge that is gone is harmless.
  qo.notify = [gate = ctx.gate, find = ctx.find, name = c.name] {
    gate->Post([find, name] {
      if (BridgeLink* link = find(name)) link->OnQueueEvents();
    });
  };
  auto queue = BridgeQueue::Open(std::move(qo));
  if (!queue.ok()) {
    return Status(queue.status().code() == Status::Code::kCorruption
                      ? Status::Corruption("bridge " + c.name + ": " + queue.status().message())
                      : Status::IoError("bridge " + c.name + ": " + queue.status().message()));
  }
  std::shared_ptr<BridgeQueue> shared(std::move(queue).value());
  return std::unique_ptr<BridgeLink>(new BridgeLink(std::move(prepared), ctx, shared, runtime));
}

BridgeLink::BridgeLink(PreparedConfig prepared, BridgeContext& ctx,
                       std::shared_ptr<BridgeQueue> queue, bool runtime)
    : config_(std::move(prepared.config)),
      tls_(std::move(prepared.tls)),
      ctx_(ctx),
      runtime_(runtime),
      identity_("$bridge:" + config_.name),
      queue_(std::move(queue)),
      counters_(std::make_shared<BridgeCounters>()),
      bridge_bit_(config_.bridge_bit),
      outbox_(queue_->recovered_head(), queue_->recovered_next_seq(), kOutboxMemory),
      session_(SessionOptions()),
      backoff_(config_.reconnect_min, config_.reconnect_max, core::BackoffSeed(this)),
      released_(queue_->recovered_released()),
      dup_below_(queue_->recovered_next_seq()) {
  hook_ = std::make_shared<ForwardHook>(
      ForwardHook::Options{ctx_.node_name, config_.max_hops, config_.strip_retain,
                           config_.scope == BridgeScope::kCluster},
      queue_, counters_);
  hook_->SetRules(config_.forward);
  if (queue_->lost_at_recovery() > 0) dropped_other_ += queue_->lost_at_recovery();
  std::lock_guard lock(stats_mu_);
  for (const TopicRule& r : config_.forward) {
    forward_text_.push_back(r.ToText(config_.local_prefix, config_.remote_prefix));
  }
  for (const TopicRule& r : config_.subscribe) {
    subscribe_text_.push_back(r.ToText(config_.local_prefix, config_.remote_prefix));
  }
}

BridgeLink::~BridgeLink() {
  UnregisterHooks();
  if (transport_ != nullptr) transport_->Close();
  if (probe_ != nullptr) {
    probe_->Cancel();
    delete probe_;
  }
}

uint64_t BridgeLink::Now() { return ctx_.loop.Now(); }

UpstreamOptions BridgeLink::SessionOptions() const {
  UpstreamOptions o;
  o.version = config_.proto_ver == 4 ? core::ProtocolVersion::kV311 : core::ProtocolVersion::kV5;
  o.bridge_bit = bridge_bit_;
  o.client_id = config_.clientid;
  if (draining_) {
    // Not the session of the bridge, which runs on another node now: one of
    // this node's own, for as long as the queue takes.
    o.client_id += "." + ctx_.node_name;
    o.username = config_.username;
    o.password = config_.password;
    o.keepalive_s = static_cast<uint16_t>(config_.keepalive.count());
    o.clean_start = true;
    o.receive_maximum = 256;
    o.max_inflight = config_.max_inflight;
    o.node_name = ctx_.node_name;
    return o;
  }
  o.username = config_.username;
  o.password = config_.password;
  o.keepalive_s = static_cast<uint16_t>(config_.keepalive.count());
  o.clean_start = config_.clean_start;
  o.session_expiry_s = config_.clean_start ? 0 : static_cast<uint32_t>(config_.session_expiry.count());
  o.receive_maximum = 256;
  o.max_inflight = config_.max_inflight;
  o.node_name = ctx_.node_name;
  if (config_.notifications && !config_.notifications_local_only) {
    // The upstream announces "0" for us if the link dies.
    core::Will w;
    w.topic = config_.notification_topic;
    w.payload = "0";
    w.qos = 1;
    w.retain = true;
    o.will = std::move(w);
  }
  return o;
}

void BridgeLink::SetState(State s) {
  state_ = s;
  std::lock_guard lock(stats_mu_);
  state_name_ = StateName(static_cast<int>(s));
}

void BridgeLink::SetLastError(const std::string& error) {
  std::lock_guard lock(stats_mu_);
  last_error_ = error;
}

void BridgeLink::RegisterHooks() {
  UnregisterHooks();
  for (size_t i = 0; i < config_.forward.size(); ++i) {
    const std::string filter = config_.forward[i].LocalFilter();
    Status s = ctx_.broker.AddHookFilter(identity_, filter, static_cast<uint32_t>(i), hook_);
    if (!s.ok()) {
      FERRY_WARN("bridge %s: forward rule '%s': %s", config_.name.c_str(), filter.c_str(),
                 s.ToString().c_str());
    }
    registered_.push_back(filter);
  }
}

void BridgeLink::UnregisterHooks() {
  for (size_t i = 0; i < registered_.size(); ++i) {
    ctx_.broker.RemoveHookFilter(identity_, registered_[i], static_cast<uint32_t>(i));
  }
  registered_.clear();
}

std::vector<TopicRule> BridgeLink::Rules(bool forward) const {
  std::lock_guard lock(stats_mu_);
  return forward ? config_.forward : config_.subscribe;
}

void BridgeLink::SetRules(std::vector<TopicRule> forward, std::vector<TopicRule> subscribe) {
  const bool subscriptions_changed = subscribe != config_.subscribe;
  UnregisterHooks();  // tags are indexes into the old rules
  {
    // Other threads read the rules through Rules() and Stats().
    std::lock_guard lock(stats_mu_);
    config_.forward = std::move(forward);
    config_.subscribe = std::move(subscribe);
  }
  hook_->SetRules(config_.forward);
  if (running()) RegisterHooks();
  {
    std::lock_guard lock(stats_mu_);
    forward_text_.clear();
    subscribe_text_.clear();
    for (const TopicRule& r : config_.forward) {
      forward_text_.push_back(r.ToText(config_.local_prefix, config_.remote_prefix));
    }
    for (const TopicRule& r : config_.subscribe) {
      subscribe_text_.push_back(r.ToText(config_.local_prefix, config_.remote_prefix));
    }
  }
  // New subscriptions take effect on a fresh session: reconnect.
  if (subscriptions_changed && state_ == State::kConnected) {
    Disconnect(/*graceful=*/true);
    Connect();
  }
}

void BridgeLink::Start() {
  if (draining_) Stop();  // it runs here now: as itself
  if (running()) return;
  FERRY_INFO("bridge %s: starting (%s, %zu forward and %zu subscribe rules, %llu queued)",
             config_.name.c_str(), StartModeName(config_.start), config_.forward.size(),
             config_.subscribe.size(), static_cast<unsigned long long>(outbox_.queued()));
  RegisterHooks();
  backoff_.Reset();
  address_index_ = 0;
  attempts_in_round_ = 0;
  PublishLocalState(false);
  if (config_.start == StartMode::kLazy && outbox_.empty()) {
    SetState(State::kIdle);
    return;
  }
  Connect();
}

void BridgeLink::Stop() {
  if (!running()) return;
  FERRY_INFO("bridge %s: stopping", config_.name.c_str());
  UnregisterHooks();
  Disconnect(/*graceful=*/true);
  if (probe_ != nullptr) {
    probe_->Cancel();
    delete probe_;
    probe_ = nullptr;
  }
  // Disconnect published "0" if the link was up; otherwise it already was.
  draining_ = false;
  SetState(State::kStopped);
  UpdateStats();
}

void BridgeLink::Drain() {
  if (running() || outbox_.empty()) return;
  FERRY_INFO("bridge %s: runs on another node; sending the %llu message(s) left in this node's "
             "queue as %s.%s",
             config_.name.c_str(), static_cast<unsigned long long>(outbox_.queued()),
             config_.clientid.c_str(), ctx_.node_name.c_str());
  draining_ = true;
  backoff_.Reset();
  address_index_ = 0;
  attempts_in_round_ = 0;
  Connect();
}

void BridgeLink::StopQueue() { queue_->Stop(); }

void BridgeLink::Connect() {
  if (transport_ != nullptr) {
    transport_->Close();
    transport_ = nullptr;
  }
  const UpstreamAddress& a = config_.addresses[address_index_ % config_.addresses.size()];
  {
    std::lock_guard lock(stats_mu_);
    address_in_use_ = a.ToString();
  }
  SetState(State::kConnecting);
  FERRY_DEBUG("bridge %s: connecting to %s", config_.name.c_str(), a.ToString().c_str());
  TlsOptions o{config_.tls_ca_file, config_.tls_cert_file, config_.tls_key_file,
               config_.tls_verify, config_.tls_server_name};
  transport_ = Transport::Start(ctx_.loop, *this, a, config_.UsesTls(a) ? tls_ : nullptr, o,
                                config_.connect_timeout);
  last_activity_ = Now();
  connect_started_ = Now();
}

void BridgeLink::OnConnected(const std::string& peer) {
  session_.mutable_options() = SessionOptions();
  ++generation_;
  session_.Connect(Now());
  FERRY_DEBUG("bridge %s: TCP up to %s, sent CONNECT", config_.name.c_str(), peer.c_str());
  Flush();
}

void BridgeLink::OnData(std::span<const uint8_t> bytes) {
  std::vector<UpstreamEvent> events;
  Status s = session_.Feed(bytes, Now(), events);
  last_activity_ = Now();
  OnUpstreamEvents(events);
  if (!s.ok() && transport_ != nullptr) {  // (an event may have closed it already)
    FERRY_WARN("bridge %s: upstream broke the protocol: %s", config_.name.c_str(),
               s.ToString().c_str());
    transport_->Close();
    transport_ = nullptr;
    return LinkDown(Status::Protocol(s.reason(), "protocol error: " + s.message()));
  }
  if (state_ == State::kConnected) Pump();
  Flush();
  UpdateStats();
}

void BridgeLink::OnClosed(const Status& why) {
  transport_ = nullptr;
  LinkDown(why);
}

void BridgeLink::LinkDown(const Status& why) {
  const bool was_connected = state_ == State::kConnected;
  outbox_.OnLinkDown();
  qos0_unwritten_.clear();
  qos0_by_marker_.clear();
  connected_since_ms_ = 0;
  if (probe_ != nullptr) {
    probe_->Cancel();
    delete probe_;
    probe_ = nullptr;
  }
  SetLastError(why.message());
  if (was_connected) {
    FERRY_WARN("bridge %s: link to %s lost: %s", config_.name.c_str(),
               config_.addresses[address_index_].ToString().c_str(), why.message().c_str());
    PublishLocalState(false);
  } else if (state_ == State::kConnecting) {
    FERRY_INFO("bridge %s: cannot connect to %s: %s", config_.name.c_str(),
               config_.addresses[address_index_].ToString().c_str(), why.message().c_str());
  }
  if (state_ == State::kStopped) return;
  ScheduleReconnect(!was_connected);
  UpdateStats();
}

void BridgeLink::ScheduleReconnect(bool attempt_failed) {
  const size_t n = config_.addresses.size();
  if (attempt_failed) {
    // Try the remaining addresses of this round at once; back off once all
    // of them failed.
    ++attempts_in_round_;
    address_index_ = (address_index_ + 1) % n;
    if (attempts_in_round_ < n) {
      reconnect_at_ = Now();
      SetState(State::kBackoff);
      return;
    }
    attempts_in_round_ = 0;
    if (config_.address_policy == AddressPolicy::kFailover) address_index_ = 0;
  } else {
    // A working link went down: start a round again, from the first address
    // with failover, from the next one with round robin.
    attempts_in_round_ = 0;
    address_index_ = config_.address_policy == AddressPolicy::kFailover ? 0 : (address_index_ + 1) % n;
  }
  const milliseconds delay = backoff_.Next();
  reconnect_at_ = Now() + static_cast<uint64_t>(delay.count());
  SetState(State::kBackoff);
  FERRY_DEBUG("bridge %s: next attempt in %lld ms", config_.name.c_str(),
              static_cast<long long>(delay.count()));
}

void BridgeLink::Disconnect(bool graceful) {
  if (transport_ == nullptr) return;
  if (graceful && state_ == State::kConnected) {
    if (config_.notifications && !config_.notifications_local_only && !draining_) {
      // A normal DISCONNECT discards the will: say "0" ourselves.
      core::MessagePtr m = StateMessage(false);
      session_.Publish({0, m.get(), 0, true, {}}, Now());
    }
    session_.Disconnect();
    Flush();
    transport_->CloseAfterWrites();
  } else {
    transport_->Close();
  }
  transport_ = nullptr;
  outbox_.OnLinkDown();
  qos0_unwritten_.clear();
  qos0_by_marker_.clear();
  connected_since_ms_ = 0;
  if (state_ == State::kConnected) PublishLocalState(false);
}

void BridgeLink::Housekeeping(uint64_t now) {
  switch (state_) {
    case State::kStopped:
      return;
    case State::kIdle:
      if (!outbox_.empty()) Connect();  // lazy: something to send
      return;
    case State::kBackoff:
      if (now >= reconnect_at_) Connect();
      return;
    case State::kConnecting:
      // The transport times out TCP and TLS; the CONNACK is timed here.
      if (now - connect_started_ >= static_cast<uint64_t>(config_.connect_timeout.count()) &&
          transport_ != nullptr && transport_->connected()) {
        transport_->Close();
        transport_ = nullptr;
        LinkDown(Status::IoError("no CONNACK within the connect timeout"));
      }
      return;
    case State::kConnected:
      break;
  }
  if (!session_.connected()) return;  // waiting for CONNACK
  if (!session_.Tick(now)) {
    FERRY_WARN("bridge %s: no answer from the upstream within the keep alive",
               config_.name.c_str());
    if (transport_ != nullptr) transport_->Close();
    transport_ = nullptr;
    LinkDown(Status::IoError("keep alive timeout"));
    return;
  }
  if (draining_ && outbox_.empty() && outbox_.inflight_count() == 0 && control_.empty()) {
    FERRY_INFO("bridge %s: this node's queue is sent; standing by", config_.name.c_str());
    Stop();
    return;
  }
  if (config_.start == StartMode::kLazy && outbox_.empty() && outbox_.inflight_count() == 0 &&
      control_.empty() && now - last_activity_ >= static_cast<uint64_t>(config_.idle_timeout.count())) {
    FERRY_INFO("bridge %s: idle for %lld ms, disconnecting (lazy)", config_.name.c_str(),
               static_cast<long long>(config_.idle_timeout.count()));
    Disconnect(/*graceful=*/true);
    SetState(State::kIdle);
    return;
  }
  if (config_.address_policy == AddressPolicy::kFailover && address_index_ != 0 &&
      probe_ == nullptr && now >= next_probe_at_) {
    StartProbe();
  }
  Pump();
  Flush();
  // What went out on this tick (queue_replay_rate) shows while the
  // upstream is silent too.
  UpdateStats();
}

void BridgeLink::StartProbe() {
  next_probe_at_ = Now() + static_cast<uint64_t>(config_.primary_retry.count());
  const UpstreamAddress& primary = config_.addresses[0];
  TlsOptions o{config_.tls_ca_file, config_.tls_cert_file, config_.tls_key_file,
               config_.tls_verify, config_.tls_server_name};
  probe_ = new Probe(*this);
  probe_->Start(primary, config_.UsesTls(primary) ? tls_ : nullptr, o, config_.connect_timeout);
}

void BridgeLink::OnProbeResult(bool reachable) {
  // The probe object is finished; it goes on a later turn, not inside its
  // own callback (and with the posted task, should the loop stop first).
  std::shared_ptr<Probe> done(probe_);
  probe_ = nullptr;
  ctx_.loop.Post([done] {});
  if (!reachable || state_ != State::kConnected || address_index_ == 0) return;
  FERRY_INFO("bridge %s: first address %s answers again; moving back to it",
             config_.name.c_str(), config_.addresses[0].ToString().c_str());
  // Closing without DISCONNECT lets the old upstream publish our will ("0").
  Disconnect(/*graceful=*/false);
  address_index_ = 0;
  attempts_in_round_ = 0;
  Connect();
}

core::MessagePtr BridgeLink::StateMessage(bool up) const {
  auto m = std::make_shared<core::Message>();
  m->topic = config_.notification_topic;
  m->payload = up ? "1" : "0";
  m->qos = 1;
  m->retain = true;
  m->received_at_ms = core::UnixNowMs();
  m->origin_client = identity_;
  return m;
}

void BridgeLink::PublishLocalState(bool up) {
  if (!config_.notifications || draining_) return;
  ctx_.broker.Publish(StateMessage(up), nullptr);
}

}  // namespace ferry::bridge

// BridgeLink: one configured bridge at work. It owns the bridge's queue, its
// route hook, the Outbox (what to send next), the UpstreamSession (MQTT
// client state) and the Transport (socket), and drives them from the bridge
// thread's loop:
//
//   stopped --Start--> connecting --CONNACK--> connected --link lost--> backoff
//      ^                   |  ^                    |                      |
//      |                   |  +------ retry -------+----------------------+
//      +------ Stop -------+   (lazy: idle <--> connecting when messages wait)
//
// Reconnection. Addresses are tried in order (failover) or in turn
// (round_robin); after a whole round failed, the next attempt waits for the
// backoff (core/backoff.h, reconnect_min .. reconnect_max). With failover, a
// bridge connected to a later address probes the first one every
// primary_retry and moves back as soon as it answers.
//
// Replay starts the moment the link is up: the CONNACK handler sends what
// waits in the queue right away, oldest first, as fast as the upstream's
// window (or queue_replay_rate) allows.
//
// Thread: the bridge thread's loop, except Stats(), which any thread may call.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "bridge/bridge.h"
#include "bridge/bridge_config.h"
#include "bridge/forward_hook.h"
#include "bridge/loop_gate.h"
#include "bridge/outbox.h"
#include "bridge/queue.h"
#include "bridge/transport.h"
#include "bridge/upstream_session.h"
#include "core/backoff.h"
#include "core/broker.h"

namespace ferry::bridge {

// What every bridge of a BridgeSet shares.
class BridgeLink;

struct BridgeContext {
  core::Broker& broker;
  core::Loop& loop;  // the bridge thread's
  std::shared_ptr<LoopGate> gate;
  std::string node_name;
  std::string data_dir;
  // Loop thread: the running link of that name, or nullptr. Work posted for
  // a link looks it up here, so work for a link that is gone is dropped.
  std::function<BridgeLink*(const std::string& name)> find;
};

// A bridge's config with what was read from disk for it ahead of time, so
// that the loop never reads files: the password file and the TLS context.
struct PreparedConfig {
  BridgeConfig config;
  std::shared_ptr<SSL_CTX> tls;  // null if no address uses TLS
};

// Reads what `config` names on disk (blocking). Errors: the password file
// cannot be read; TLS files cannot be loaded (naming them).
ferry::Result<PreparedConfig> PrepareConfig(BridgeConfig config);

class BridgeLink : public Transport::Handler {
 public:
  // Tokens of the link's own publications (the state "1" upstream) have
  // this bit set; queue sequence numbers never reach it.
  static constexpr uint64_t kControlBit = uint64_t{1} << 63;

  // Opens the bridge's queue (blocking disk I/O: start-up or a worker
  // thread). Errors: from BridgeQueue::Open.
  static ferry::Result<std::unique_ptr<BridgeLink>> Create(PreparedConfig prepared,
                                                           BridgeContext& ctx, bool runtime);
  ~BridgeLink() override;

  const BridgeConfig& config() const { return config_; }
  bool runtime() const { return runtime_.load(); }
  // From now on the bridge is kept in data_dir/bridges.conf.
  void set_runtime() { runtime_ = true; }
  bool running() const { return state_ != State::kStopped; }
  // What ferryctl last did to it ("started", "stopped"), for Stats().
  void set_admin_state(std::string held) {
    std::lock_guard lock(stats_mu_);
    held_ = std::move(held);
  }
  // The node it runs on, as far as this node knows ("" if none), and
  // whether it waits here for its turn (scope cluster), for Stats().
  void set_runs_on(std::string node, bool standby = false) {
    std::lock_guard lock(stats_mu_);
    runs_on_ = std::move(node);
    standby_ = standby;
  }

  // Loop thread.
  void Start();
  // Stops: hooks off, state "0" published, DISCONNECT sent. The queue stays.
  void Stop();
  // scope cluster, on a node where the bridge does not run: sends what is
  // left in the queue under a client id of this node's own (clientid.node,
  // clean start, no subscriptions, no notifications) and stops once it is
  // sent. Nothing new is queued meanwhile (no hooks). No-op if running or
  // the queue is empty.
  void Drain();
  bool draining() const { return draining_; }
  bool has_queued() const { return !outbox_.empty(); }
  // Replaces the rules (forward and subscribe) of a running or stopped link.
  void SetRules(std::vector<TopicRule> forward, std::vector<TopicRule> subscribe);
  // Called every housekeeping tick with the loop's time.
  void Housekeeping(uint64_t now_ms);
  // The queue has events (posted by its notify callback).
  void OnQueueEvents();
  // The local node took pulled-down message `packet_id` of connection
  // `generation` (rc kSuccess): acknowledge it upstream. A failure (its
  // durable store could not keep it) is not acknowledged: the link is
  // closed, so that the upstream sends it again after the reconnect.
  void OnLocalDelivery(uint16_t packet_id, uint64_t generation, ReasonCode rc);
  // Stops the queue's storage thread after writing what it holds.
  void StopQueue();

  // Any thread.
  BridgeStats Stats() const;
  // The forward (or subscribe) rules as they are now.
  std::vector<TopicRule> Rules(bool forward) const;

  // Transport::Handler.
  void OnConnected(const std::string& peer) override;
  void OnData(std::span<const uint8_t> bytes) override;
  void OnWritten(uint64_t marker) override;
  void OnClosed(const ferry::Status& why) override;

 private:
  enum class State { kStopped, kIdle, kConnecting, kConnected, kBackoff };
  // The transport of a failback probe to the first address.
  class Probe;

  BridgeLink(PreparedConfig prepared, BridgeContext& ctx, std::shared_ptr<BridgeQueue> queue,
             bool runtime);

  void Connect();
  UpstreamOptions SessionOptions() const;
  // The link failed or ended: schedule what comes next.
  void LinkDown(const ferry::Status& why);
  void ScheduleReconnect(bool whole_round_failed);
  void OnUpstreamEvents(std::vector<UpstreamEvent>& events);
  void OnUpstreamConnected(const upstream::Connected& c);
  void OnUpstreamMessage(core::Publish&& p);
  void Pump();
  void Flush();
  void Disconnect(bool graceful);
  void RegisterHooks();
  void UnregisterHooks();
  void PublishLocalState(bool up);
  core::MessagePtr StateMessage(bool up) const;
  void SetState(State s);
  void SetLastError(const std::string& error);
  void StartProbe();
  void OnProbeResult(bool reachable);
  void UpdateStats();
  uint64_t Now();

  BridgeConfig config_;
  std::shared_ptr<SSL_CTX> tls_;
  BridgeContext& ctx_;
  std::atomic<bool> runtime_;  // read by Stats() on other threads
  const std::string identity_;  // route hook owner and origin of pulled messages
  std::shared_ptr<BridgeQueue> queue_;
  std::shared_ptr<BridgeCounters> counters_;
  std::shared_ptr<ForwardHook> hook_;
  std::vector<std::string> registered_;  // local filters with hooks, by rule index

  State state_ = State::kStopped;
  std::atomic<bool> draining_{false};  // read by Stats()
  // Before session_, which is built from SessionOptions().
  bool bridge_bit_ = true;  // cleared if the upstream refused it
  Outbox outbox_;
  UpstreamSession session_;
  Transport* transport_ = nullptr;  // frees itself; see transport.h
  Probe* probe_ = nullptr;
  core::Backoff backoff_;
  size_t address_index_ = 0;
  size_t attempts_in_round_ = 0;
  uint64_t reconnect_at_ = 0;     // loop ms; when in kBackoff
  uint64_t next_probe_at_ = 0;    // loop ms
  uint64_t last_activity_ = 0;    // loop ms; lazy idle timeout
  uint64_t connect_started_ = 0;  // loop ms; the CONNACK timeout
  uint64_t generation_ = 0;       // connections made; acks of older ones are dropped
  std::string upstream_node_;

  // QoS 0 messages written in a write tagged with a marker: done once that
  // write reaches the socket.
  uint64_t next_marker_ = 1;
  std::vector<uint64_t> qos0_unwritten_;
  std::map<uint64_t, std::vector<uint64_t>> qos0_by_marker_;
  // QoS 2 messages whose released record is written (queue_log.h): while
  // the upstream keeps our session they go as PUBREL, never again as
  // PUBLISH. Kept until their PUBCOMP; emptied when the session is lost.
  std::set<uint64_t> released_;
  // Messages below it were queued before the last restart and may have been
  // sent into the upstream session: they go with DUP. 0 once the upstream
  // started a new session.
  uint64_t dup_below_;
  // Publications of our own (the state "1" upstream), by token.
  uint64_t next_control_token_ = 0;
  std::map<uint64_t, core::MessagePtr> control_;
  // queue_replay_rate
  double tokens_ = 0;
  uint64_t tokens_at_ = 0;

  // Stats shared with other threads.
  mutable std::mutex stats_mu_;
  std::string state_name_ = "stopped";  // guarded by stats_mu_
  std::string address_in_use_;          // guarded by stats_mu_
  std::string last_error_;              // guarded by stats_mu_
  std::string upstream_node_stat_;      // guarded by stats_mu_
  std::string held_;                    // guarded by stats_mu_
  std::string runs_on_;                 // guarded by stats_mu_
  bool standby_ = false;                // guarded by stats_mu_
  std::vector<std::string> forward_text_, subscribe_text_;  // guarded by stats_mu_
  std::atomic<uint64_t> queued_{0};
  std::atomic<uint64_t> inflight_{0};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> dropped_overflow_{0};
  std::atomic<uint64_t> dropped_expired_{0};
  std::atomic<uint64_t> dropped_rejected_{0};
  std::atomic<uint64_t> dropped_other_{0};
  std::atomic<uint64_t> dropped_volatile_{0};  // mirror of the Outbox's
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> connected_since_ms_{0};
};

}  // namespace ferry::bridge

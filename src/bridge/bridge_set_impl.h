// Private to the bridge module: BridgeSet's state (bridge_set.cpp) and its
// runtime operations (bridge_admin.cpp).
//
// Every change to the set of bridges (reload, ferryctl start/stop/rules)
// runs on the bridge thread as one operation at a time: an operation may
// need the thread pool (opening a queue, writing data_dir/bridges.conf), and
// two at once could open one queue directory twice.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridge/bridge.h"
#include "bridge/bridge_link.h"

namespace ferry::bridge {

class BridgeSet::Impl {
 public:
  using Done = std::function<void(ferry::Status)>;

  Impl(core::Broker& broker, std::string node_name, std::string data_dir);
  ~Impl();

  // ---- Start-up and shutdown (bridge_set.cpp).
  ferry::Status Add(PreparedConfig prepared, bool runtime);  // before Start
  ferry::Status Start(core::Loop& main_loop);
  void Shutdown(std::function<void()> done);
  std::vector<BridgeStats> Stats() const;

  // ---- Loop thread (bridge_set.cpp).
  BridgeLink* Find(const std::string& name);
  // Queues `op`, which calls its argument when it is finished; the next op
  // runs then.
  void RunOp(std::function<void(std::function<void()> finished)> op);
  void RunNextOp();
  // Applies a reloaded config's file bridges.
  void Apply(std::vector<BridgeConfig> wanted, std::function<void()> finished);
  // Stops and removes the link `name` (if any) and, with `replacement`,
  // creates and starts a new one; the queue work happens on the thread pool.
  // `done` gets the outcome.
  void Replace(const std::string& name, std::optional<BridgeConfig> replacement, bool runtime,
               bool start, Done done);
  // Writes every runtime bridge to data_dir/bridges.conf (thread pool).
  void PersistRuntime(Done done);
  // Whether bridge `c` starts when the node starts or the config reloads:
  // as ferryctl last left it, else as its start mode says.
  bool ShouldStart(const BridgeConfig& c) const;
  // Records that ferryctl started (or stopped) bridge `name`, in
  // data_dir/bridges.state (thread pool), so that a restart keeps it so.
  void SetAdminState(const std::string& name, bool started, Done done);
  // Writes `text` to `path` atomically on the thread pool; `done` on the loop.
  void WriteInBackground(std::string path, std::string text, Done done);

  // ---- Runtime operations for ferryctl (bridge_admin.cpp); loop thread.
  void StartNamed(const std::string& name, Done done);
  void StopNamed(const std::string& name, Done done);
  struct AdHoc {
    UpstreamAddress target;
    TopicRule rule;  // a forward rule
    std::string name;  // "" = derived from the target
  };
  void StartAdHoc(AdHoc request, std::function<void(ferry::Result<std::string>)> done);
  void StopAdHoc(const UpstreamAddress& target, const std::string& filter,
                 std::function<void(ferry::Result<std::string>)> done);
  // Adds (or, with the same filter, replaces) or removes a rule of bridge
  // `name`; the bridge becomes a runtime bridge.
  void ChangeRule(const std::string& name, bool forward, bool add, TopicRule rule, Done done);

  void Housekeeping();
  void StopAll();

  // ---- Placement of bridges of scope cluster (bridge_set.cpp); loop thread.
  // Starts `link`: at once, or for one of scope cluster on a cluster, once
  // this node holds its lock (Place).
  void StartLink(BridgeLink& link);
  // Stops `link` and lets go of its lock.
  void StopLink(BridgeLink& link);
  // Asks for bridge `name`'s lock, or checks that this node still holds it,
  // and starts, stops or drains it by the answer.
  void Place(const std::string& name);
  void OnClaimed(const std::string& name, bool held, const std::string& holder);
  void OnHeld(const std::string& name, bool held);
  bool Placed(const BridgeLink& link) const {
    return placement_ != nullptr && link.config().scope == BridgeScope::kCluster;
  }
  std::shared_ptr<BridgePlacement> placement_;  // set before Start
  struct Placement {
    bool wanted = false;     // started, by its start mode or ferryctl
    bool asking = false;     // a Claim or Held is out
    uint64_t asked_at = 0;   // loop ms
    bool held = false;       // this node holds its lock: it runs here
  };
  std::map<std::string, Placement> placed_;  // loop thread
  uint64_t last_placed_ms_ = 0;

  core::Loop loop_;
  std::shared_ptr<LoopGate> gate_;
  BridgeContext ctx_;
  // Changed on the loop thread (before Start: the creating thread); read by
  // Stats() from any thread under links_mu_.
  mutable std::mutex links_mu_;
  std::map<std::string, std::unique_ptr<BridgeLink>> links_;
  std::thread thread_;
  core::UvHandle<uv_timer_t> housekeeping_;
  core::Loop* main_loop_ = nullptr;
  std::deque<std::function<void(std::function<void()>)>> ops_;  // loop thread
  bool op_running_ = false;                                     // loop thread
  bool stopping_ = false;  // loop thread: StopAll ran; nothing starts any more
  // From data_dir/bridges.state: bridge name -> started (true) or stopped
  // by ferryctl. Loop thread (before Start: the creating thread).
  std::map<std::string, bool> admin_states_;
};

// The set's per-bridge metrics, Prometheus text format (bridge_admin.cpp).
std::string BridgePrometheusMetrics(const std::vector<BridgeStats>& stats);

}  // namespace ferry::bridge

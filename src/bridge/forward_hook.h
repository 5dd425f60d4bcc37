// ForwardHook: the route hook (core/broker.h) of one bridge. The router hands
// it every local message that matches one of the bridge's forward rules, on
// the publishing worker's thread; it applies the rules (topic remapping, QoS
// cap, retain), the hop limit, and appends the result to the bridge's queue,
// passing the publisher's acknowledgement along so that it waits for the
// queue (queue.h).
//
// Thread safety: OnRoute runs on any routing thread, concurrently; SetRules
// may be called from any thread. Counters are atomics shared with the link.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/queue.h"
#include "bridge/rules.h"
#include "core/broker.h"

namespace ferry::bridge {

// Counters a bridge's threads share.
struct BridgeCounters {
  std::atomic<uint64_t> forwarded{0};     // messages appended to the queue
  std::atomic<uint64_t> dropped_loop{0};  // max_hops, or the message came back
  std::atomic<uint64_t> dropped_other{0};
};

class ForwardHook : public core::RouteHook {
 public:
  struct Options {
    std::string node_name;
    uint32_t max_hops = 8;
    bool strip_retain = false;
    // scope = cluster: it also takes what other nodes forward here.
    bool cluster_wide = false;
  };

  ForwardHook(Options options, std::shared_ptr<BridgeQueue> queue,
              std::shared_ptr<BridgeCounters> counters);

  // Replaces the forward rules; a tag given to the router is an index into
  // `rules`.
  void SetRules(std::vector<TopicRule> rules);

  void OnRoute(const core::MessagePtr& message, std::span<const uint32_t> tags,
               core::RouteCompletion done) override;
  bool TakesForwarded() const override { return options_.cluster_wide; }

 private:
  const Options options_;
  std::shared_ptr<BridgeQueue> queue_;
  std::shared_ptr<BridgeCounters> counters_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<TopicRule>> rules_;  // guarded by mu_
};

}  // namespace ferry::bridge

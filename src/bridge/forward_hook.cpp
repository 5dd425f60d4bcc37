#include "bridge/forward_hook.h"

#include <algorithm>

namespace ferry::bridge {

ForwardHook::ForwardHook(Options options, std::shared_ptr<BridgeQueue> queue,
                         std::shared_ptr<BridgeCounters> counters)
    : options_(std::move(options)),
      queue_(std::move(queue)),
      counters_(std::move(counters)),
      rules_(std::make_shared<const std::vector<TopicRule>>()) {}

void ForwardHook::SetRules(std::vector<TopicRule> rules) {
  auto snapshot = std::make_shared<const std::vector<TopicRule>>(std::move(rules));
  std::lock_guard lock(mu_);
  rules_ = std::move(snapshot);
}

void ForwardHook::OnRoute(const core::MessagePtr& message, std::span<const uint32_t> tags,
                          core::RouteCompletion done) {
  // Loop protection: forwarding adds this node to the path. The core has
  // already dropped a message whose path names this node.
  if (message->path.size() + 1 > options_.max_hops) {
    counters_->dropped_loop.fetch_add(1, std::memory_order_relaxed);
    return;  // `done` completes: the message is handled, by dropping it
  }
  std::shared_ptr<const std::vector<TopicRule>> rules;
  {
    std::lock_guard lock(mu_);
    rules = rules_;
  }
  std::vector<size_t> matched(tags.begin(), tags.end());
  std::vector<ForwardTarget> targets = ForwardTargets(*rules, matched, message->topic);
  if (targets.empty()) {
    counters_->dropped_other.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::vector<core::MessagePtr> upstream;
  upstream.reserve(targets.size());
  for (const ForwardTarget& t : targets) {
    const uint8_t qos = std::min(message->qos, t.qos);
    const bool retain = message->retain && !options_.strip_retain;
    if (t.remote_topic == message->topic && qos == message->qos && retain == message->retain) {
      upstream.push_back(message);  // unchanged: shared, not copied
      continue;
    }
    auto m = std::make_shared<core::Message>(*message);
    m->topic = t.remote_topic;
    m->qos = qos;
    m->retain = retain;
    upstream.push_back(std::move(m));
  }
  counters_->forwarded.fetch_add(upstream.size(), std::memory_order_relaxed);
  queue_->Append(std::move(upstream), std::move(done));
}

}  // namespace ferry::bridge

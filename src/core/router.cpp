#include "core/router.h"

#include <algorithm>
#include <map>

#include "core/metrics.h"
#include "core/topic.h"

namespace ferry::core {

void Router::RaiseSubscriptionMaxima() {
  RaiseMax(subscriptions_max_, subs_.size() + shared_count_);
  RaiseMax(routes_max_, routes_.size());
}

bool Router::Subscribe(std::string_view client_id, std::string_view filter,
                       const SubscriptionOptions& options) {
  auto shared = ParseSharedFilter(filter);
  std::optional<RouteEvent> event;
  std::shared_ptr<RouteObserver> observer;
  {
    std::unique_lock lock(mu_);
    observer = observer_;
    if (!shared.ok() || !shared.value().has_value()) {
      if (!subs_.Insert(filter, client_id, options)) return false;
      event = AddRoute(filter);
    } else {
      const SharedFilter& sf = *shared.value();
      std::shared_ptr<SharedGroup>* group = shared_.Find(sf.filter, sf.group);
      if (group == nullptr) {
        shared_.Insert(sf.filter, sf.group, std::make_shared<SharedGroup>());
        group = shared_.Find(sf.filter, sf.group);
      }
      auto& members = (*group)->members;
      for (auto& [id, opts] : members) {
        if (id == client_id) {
          opts = options;
          return false;
        }
      }
      members.emplace_back(std::string(client_id), options);
      ++shared_count_;
      event =
          AddRoute("$share/" + sf.group + "/" + sf.filter, static_cast<uint32_t>(members.size()));
    }
    RaiseSubscriptionMaxima();
  }
  Notify(observer, event);
  return true;
}

bool Router::Unsubscribe(std::string_view client_id, std::string_view filter) {
  auto shared = ParseSharedFilter(filter);
  std::optional<RouteEvent> event;
  std::shared_ptr<RouteObserver> observer;
  {
    std::unique_lock lock(mu_);
    observer = observer_;
    if (!shared.ok() || !shared.value().has_value()) {
      // `filter` may be a view of the trie's own string, which Erase frees.
      const std::string route(filter);
      if (!subs_.Erase(filter, client_id)) return false;
      event = RemoveRoute(route);
    } else {
      const SharedFilter& sf = *shared.value();
      std::shared_ptr<SharedGroup>* group = shared_.Find(sf.filter, sf.group);
      if (group == nullptr) return false;
      auto& members = (*group)->members;
      auto it = std::find_if(members.begin(), members.end(),
                             [&](const auto& m) { return m.first == client_id; });
      if (it == members.end()) return false;
      members.erase(it);
      --shared_count_;
      event = RemoveRoute("$share/" + sf.group + "/" + sf.filter,
                          static_cast<uint32_t>(members.size()));
      if (members.empty() && (*group)->remote.empty()) shared_.Erase(sf.filter, sf.group);
    }
  }
  Notify(observer, event);
  return true;
}

namespace {

void AddTarget(std::vector<RouteTarget>& out, size_t first, std::string_view client_id,
               const SubscriptionOptions& o) {
  // Overlapping subscriptions of one client: one copy at the highest QoS,
  // carrying every matching subscription identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3].
  for (size_t i = first; i < out.size(); ++i) {
    RouteTarget& t = out[i];
    if (t.client_id != client_id) continue;
    t.qos = std::max(t.qos, o.qos);
    t.retain_as_published = t.retain_as_published || o.retain_as_published;
    if (o.subscription_id != 0) t.subscription_ids.push_back(o.subscription_id);
    return;
  }
  RouteTarget& t = out.emplace_back();
  t.client_id.assign(client_id);
  t.worker = o.worker;
  t.qos = o.qos;
  t.retain_as_published = o.retain_as_published;
  if (o.subscription_id != 0) t.subscription_ids.push_back(o.subscription_id);
}

}  // namespace

namespace {

std::string HookKey(std::string_view owner, uint32_t tag) {
  std::string key(owner);
  key += '\x1f';
  key += std::to_string(tag);
  return key;
}

}  // namespace

bool Router::AddHookFilter(std::string_view owner, std::string_view filter, uint32_t tag,
                           std::shared_ptr<RouteHook> hook, bool announce) {
  std::optional<RouteEvent> event;
  std::shared_ptr<RouteObserver> observer;
  {
    std::unique_lock lock(mu_);
    if (!hooks_.Insert(filter, HookKey(owner, tag),
                       HookFilter{std::string(owner), tag, std::move(hook), announce})) {
      return false;
    }
    if (!announce) return true;
    observer = observer_;
    event = AddRoute(filter);
    RaiseSubscriptionMaxima();
  }
  Notify(observer, event);
  return true;
}

bool Router::RemoveHookFilter(std::string_view owner, std::string_view filter, uint32_t tag) {
  const std::string key = HookKey(owner, tag);
  const std::string route(filter);
  std::optional<RouteEvent> event;
  std::shared_ptr<RouteObserver> observer;
  {
    std::unique_lock lock(mu_);
    const HookFilter* f = hooks_.Find(filter, key);
    if (f == nullptr) return false;
    const bool announced = f->announced;
    hooks_.Erase(filter, key);
    if (!announced) return true;
    observer = observer_;
    event = RemoveRoute(route);
  }
  Notify(observer, event);
  return true;
}

size_t Router::AddHookFilters(std::string_view owner, uint32_t tag,
                              std::span<const std::string> filters,
                              const std::shared_ptr<RouteHook>& hook) {
  const std::string key = HookKey(owner, tag);
  size_t added = 0;
  std::unique_lock lock(mu_);
  if (InBulk(owner, tag)) {
    bulk_owner_ = std::string(owner);
    bulk_hook_ = hook;
    for (const std::string& filter : filters) added += bulk_.Add(filter, tag) ? 1 : 0;
    return added;
  }
  for (const std::string& filter : filters) {
    added += hooks_.Insert(filter, key, HookFilter{std::string(owner), tag, hook}) ? 1 : 0;
  }
  return added;
}

size_t Router::RemoveHookFilters(std::string_view owner, uint32_t tag,
                                 std::span<const std::string> filters) {
  const std::string key = HookKey(owner, tag);
  size_t removed = 0;
  std::unique_lock lock(mu_);
  if (!bulk_owner_.empty() && InBulk(owner, tag)) {
    for (const std::string& filter : filters) removed += bulk_.Remove(filter, tag) ? 1 : 0;
    return removed;
  }
  for (const std::string& filter : filters) removed += hooks_.Erase(filter, key) ? 1 : 0;
  return removed;
}

size_t Router::hook_filter_count() const {
  std::shared_lock lock(mu_);
  return hooks_.size() + bulk_.size();
}

void Router::Match(std::string_view topic, std::string_view publisher,
                   std::vector<RouteTarget>& out, std::vector<HookTarget>& hooks,
                   std::string_view injector) const {
  Match(topic, MatchScope{publisher, injector, true}, out, hooks);
}

namespace {

HookTarget& TargetOf(std::vector<HookTarget>& hooks, const std::shared_ptr<RouteHook>& hook) {
  for (HookTarget& t : hooks) {
    if (t.hook == hook) return t;
  }
  return hooks.emplace_back(HookTarget{hook, {}, {}});
}

}  // namespace

void Router::Match(std::string_view topic, const MatchScope& scope, std::vector<RouteTarget>& out,
                   std::vector<HookTarget>& hooks) const {
  std::shared_lock lock(mu_);
  MatchSubscribers(topic, scope, out, &hooks);
  if (bulk_.size() > 0 && bulk_owner_ != scope.publisher &&
      (scope.injector.empty() || bulk_owner_ != scope.injector)) {
    if (uint64_t tags = bulk_.Match(topic); tags != 0) {
      HookTarget& t = TargetOf(hooks, bulk_hook_);
      for (uint32_t tag = 0; tags != 0; ++tag, tags >>= 1) {
        if ((tags & 1) && std::find(t.tags.begin(), t.tags.end(), tag) == t.tags.end()) {
          t.tags.push_back(tag);
        }
      }
    }
  }
  if (hooks_.size() == 0) return;
  hooks_.Match(topic, [&](std::string_view, const HookFilter& f, std::string_view) {
    // No Local for the hook's own injections.
    if (f.owner == scope.publisher || (!scope.injector.empty() && f.owner == scope.injector)) {
      return;
    }
    HookTarget& t = TargetOf(hooks, f.hook);
    if (std::find(t.tags.begin(), t.tags.end(), f.tag) == t.tags.end()) t.tags.push_back(f.tag);
  });
}

void Router::Match(std::string_view topic, std::string_view publisher,
                   std::vector<RouteTarget>& out) const {
  std::shared_lock lock(mu_);
  MatchSubscribers(topic, MatchScope{publisher, {}, true}, out, nullptr);
}

bool Router::PickLocal(const SharedGroup& g, std::string_view publisher,
                       std::vector<RouteTarget>& out, size_t first) {
  const auto& members = g.members;
  // Round robin; a No Local member that published it is passed over.
  for (size_t tries = 0; tries < members.size(); ++tries) {
    uint32_t i = g.next->fetch_add(1, std::memory_order_relaxed) % members.size();
    const auto& [id, o] = members[i];
    if (o.no_local && id == publisher) continue;
    AddTarget(out, first, id, o);
    return true;
  }
  return false;
}

void Router::MatchSubscribers(std::string_view topic, const MatchScope& scope,
                              std::vector<RouteTarget>& out,
                              std::vector<HookTarget>* hooks) const {
  const size_t first = out.size();
  subs_.Match(topic,
              [&](std::string_view client_id, const SubscriptionOptions& o, std::string_view) {
                // No Local: not to the client that published it [MQTT-3.8.3-3].
                if (o.no_local && client_id == scope.publisher) return;
                AddTarget(out, first, client_id, o);
              });
  if (shared_.size() == 0 || !scope.shared_groups) return;
  shared_.Match(topic, [&](std::string_view group, const std::shared_ptr<SharedGroup>& g,
                           std::string_view filter) {
    // Local members first; a remote one only when none here may take it.
    if (PickLocal(*g, scope.publisher, out, first) || hooks == nullptr || g->remote.empty()) {
      return;
    }
    uint64_t total = 0;
    for (const RemoteMember& r : g->remote) total += r.members;
    if (total == 0) return;
    // In proportion to the members each node has.
    uint64_t k = g->next_remote->fetch_add(1, std::memory_order_relaxed) % total;
    for (const RemoteMember& r : g->remote) {
      if (k >= r.members) {
        k -= r.members;
        continue;
      }
      if (!scope.injector.empty() && r.owner == scope.injector) return;
      std::string route = "$share/";
      route.append(group).append("/").append(filter);
      TargetOf(*hooks, r.hook).shared.push_back(SharedPick{r.tag, std::move(route)});
      return;
    }
  });
}

bool Router::PickShared(std::string_view group, std::string_view publisher,
                        std::vector<RouteTarget>& out) const {
  auto shared = ParseSharedFilter(group);
  if (!shared.ok() || !shared.value().has_value()) return false;
  std::shared_lock lock(mu_);
  const std::shared_ptr<SharedGroup>* g = shared_.Find(shared.value()->filter, shared.value()->group);
  return g != nullptr && PickLocal(**g, publisher, out, 0);
}

void Router::SetSharedHook(std::string_view owner, std::string_view group, uint32_t tag,
                           uint32_t members, std::shared_ptr<RouteHook> hook) {
  auto shared = ParseSharedFilter(group);
  if (!shared.ok() || !shared.value().has_value()) return;
  const SharedFilter& sf = *shared.value();
  std::unique_lock lock(mu_);
  std::shared_ptr<SharedGroup>* g = shared_.Find(sf.filter, sf.group);
  if (g == nullptr) {
    if (members == 0) return;
    shared_.Insert(sf.filter, sf.group, std::make_shared<SharedGroup>());
    g = shared_.Find(sf.filter, sf.group);
  }
  auto& remote = (*g)->remote;
  auto it = std::find_if(remote.begin(), remote.end(),
                         [&](const RemoteMember& r) { return r.owner == owner && r.tag == tag; });
  if (members == 0) {
    if (it != remote.end()) remote.erase(it);
    if (remote.empty() && (*g)->members.empty()) shared_.Erase(sf.filter, sf.group);
    return;
  }
  if (it == remote.end()) {
    remote.push_back(RemoteMember{std::string(owner), tag, members, std::move(hook)});
  } else {
    it->members = members;
    it->hook = std::move(hook);
  }
}

size_t Router::subscription_count() const {
  std::shared_lock lock(mu_);
  return subs_.size() + shared_count_;
}

size_t Router::route_count() const {
  std::shared_lock lock(mu_);
  return routes_.size();
}

std::vector<Router::RouteInfo> Router::Routes(std::string_view after, size_t max) const {
  std::vector<RouteInfo> out;
  std::shared_lock lock(mu_);
  for (auto it = routes_.upper_bound(after); it != routes_.end() && out.size() < max; ++it) {
    out.push_back(RouteInfo{it->first, it->second});
  }
  return out;
}

std::optional<RouteEvent> Router::AddRoute(std::string_view route, uint32_t shared_members) {
  auto it = routes_.find(route);
  if (it == routes_.end()) it = routes_.emplace(std::string(route), 0).first;
  ++it->second;
  // A plain route is news only with its first subscriber; a shared group's
  // member count always is.
  if (observer_ == nullptr || (shared_members == 0 && it->second != 1)) return std::nullopt;
  return RouteEvent{++route_seq_, it->first, true, shared_members};
}

std::optional<RouteEvent> Router::RemoveRoute(std::string_view route, uint32_t shared_members) {
  auto it = routes_.find(route);
  if (it == routes_.end()) return std::nullopt;
  const bool last = --it->second == 0;
  std::optional<RouteEvent> event;
  if (observer_ != nullptr && (last || route.starts_with("$share/"))) {
    event = RouteEvent{++route_seq_, it->first, !last, shared_members};
  }
  if (last) routes_.erase(it);
  return event;
}

void Router::Notify(const std::shared_ptr<RouteObserver>& observer,
                    const std::optional<RouteEvent>& event) {
  if (observer != nullptr && event) observer->OnRouteEvent(*event);
}

std::vector<RouteEvent> Router::WatchRoutes(std::shared_ptr<RouteObserver> observer) {
  std::unique_lock lock(mu_);
  observer_ = std::move(observer);
  std::vector<RouteEvent> snapshot;
  snapshot.reserve(routes_.size());
  for (const auto& [route, subscribers] : routes_) {
    const bool is_shared = route.starts_with("$share/");
    snapshot.push_back(
        RouteEvent{route_seq_, route, true, is_shared ? static_cast<uint32_t>(subscribers) : 0});
  }
  return snapshot;
}

int Router::SetRetained(const MessagePtr& message) {
  std::lock_guard lock(retained_mu_);
  if (message->payload.empty()) return retained_.Erase(message->topic) ? -1 : 0;
  bool added = retained_.Set(message->topic, message);
  RaiseMax(retained_max_, retained_.size());
  return added ? 1 : 0;
}

std::vector<MessagePtr> Router::MatchRetained(std::string_view filter, uint64_t now_unix_ms) const {
  std::vector<MessagePtr> out;
  std::lock_guard lock(retained_mu_);
  retained_.Match(filter, [&](std::string_view, const MessagePtr& m) {
    if (m->expiry_at_ms == 0 || m->expiry_at_ms > now_unix_ms) out.push_back(m);
  });
  return out;
}

std::vector<std::string> Router::ExpireRetained(uint64_t now_unix_ms) {
  std::vector<std::string> expired;
  std::lock_guard lock(retained_mu_);
  retained_.EraseIf([&](std::string_view topic, const MessagePtr& m) {
    if (m->expiry_at_ms != 0 && m->expiry_at_ms <= now_unix_ms) {
      expired.emplace_back(topic);
      return true;
    }
    return false;
  });
  return expired;
}

size_t Router::retained_count() const {
  std::lock_guard lock(retained_mu_);
  return retained_.size();
}

bool Router::SetRetainedIfNewer(const MessagePtr& message) {
  std::lock_guard lock(retained_mu_);
  const MessagePtr* held = retained_.Find(message->topic);
  // Last writer wins; on the same millisecond, the greater payload (a set
  // over a delete), so that every node ends the same whichever came first.
  if (held != nullptr && ((*held)->received_at_ms > message->received_at_ms ||
                          ((*held)->received_at_ms == message->received_at_ms &&
                           (*held)->payload >= message->payload))) {
    return false;
  }
  if (message->payload.empty()) return held != nullptr && retained_.Erase(message->topic);
  retained_.Set(message->topic, message);
  RaiseMax(retained_max_, retained_.size());
  return true;
}

std::vector<MessagePtr> Router::AllRetained() const {
  std::vector<MessagePtr> out;
  std::lock_guard lock(retained_mu_);
  retained_.ForEach([&](std::string_view, const MessagePtr& m) { out.push_back(m); });
  return out;
}

}  // namespace ferry::core

// Route events: what a plug-in that tells other nodes about this node's routes
// (the cluster) is told by the router (core/router.h) through the Broker
// facade (Broker::WatchRoutes).
#pragma once

#include <cstdint>
#include <string>

namespace ferry::core {

// A change of this node's routes, for a plug-in that tells other nodes
// (the cluster): a plain route appears with its first subscriber and goes
// with its last; a shared group ("$share/g/f") reports every change of its
// member count. Events of different routes, made on different threads, may
// reach the observer out of order: `seq` (from the router, increasing) orders
// them, and for one route the event with the highest seq is the truth.
struct RouteEvent {
  uint64_t seq = 0;
  std::string route;            // as subscribed: "a/+/b", "$share/g/a/#"
  bool present = false;         // false: the route has no subscriber left
  uint32_t shared_members = 0;  // members of a shared group; 0 for a plain route

  bool operator==(const RouteEvent&) const = default;
};

class RouteObserver {
 public:
  virtual ~RouteObserver() = default;
  // Called after the change, outside the router's lock, on the thread that
  // subscribed or unsubscribed (a worker loop): must not block.
  virtual void OnRouteEvent(const RouteEvent& event) = 0;
};

// A shared group ("$share/g/f") whose member the router chose among a
// hook's remote members: the hook's tag for that member, and the group.
struct SharedPick {
  uint32_t tag = 0;
  std::string group;  // "$share/<group>/<filter>"
};

}  // namespace ferry::core

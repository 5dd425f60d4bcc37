#include "cluster/remote_routes.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/topic.h"

namespace ferry::cluster {
namespace {

constexpr uint8_t kSnapshotFlag = 0x01;
constexpr uint8_t kMoreFlag = 0x02;
// The smallest an entry can be on the wire: kind, an empty route, members.
constexpr size_t kMinEntrySize = 1 + 2 + 4;

bool IsShared(std::string_view route) { return route.starts_with("$share/"); }

}  // namespace

std::string EncodeRouteUpdate(const RouteUpdate& update) {
  std::string payload;
  FieldWriter w(payload);
  w.U8(static_cast<uint8_t>((update.snapshot ? kSnapshotFlag : 0) | (update.more ? kMoreFlag : 0)));
  w.Str(update.origin);
  w.U64(update.incarnation);
  w.U64(update.seq);
  w.U32(static_cast<uint32_t>(update.entries.size()));
  for (const RouteEntry& e : update.entries) {
    w.U8(e.present ? 1 : 0);
    w.Str(e.route);
    w.U32(e.shared_members);
  }
  return payload;
}

Result<RouteUpdate> ParseRouteUpdate(std::span<const uint8_t> payload) {
  FieldReader r(payload);
  RouteUpdate u;
  uint8_t flags = 0;
  uint32_t count = 0;
  r.U8(flags, "flags");
  r.Str(u.origin, "origin");
  r.U64(u.incarnation, "incarnation");
  r.U64(u.seq, "sequence number");
  r.U32(count, "route count");
  if (!r.ok()) return r.status();
  if ((flags & ~(kSnapshotFlag | kMoreFlag)) != 0) return Status::Corruption("unknown route flags");
  u.snapshot = (flags & kSnapshotFlag) != 0;
  u.more = (flags & kMoreFlag) != 0;
  if (u.more && !u.snapshot) return Status::Corruption("a delta cannot come in chunks");
  if (count > payload.size() / kMinEntrySize) {
    return Status::Corruption("route count larger than the frame");
  }
  u.entries.resize(count);
  for (RouteEntry& e : u.entries) {
    uint8_t kind = 0;
    r.U8(kind, "route kind");
    r.Str(e.route, "route");
    r.U32(e.shared_members, "shared members");
    if (r.ok() && kind > 1) return Status::Corruption("unknown route kind");
    e.present = kind == 1;
    if (r.ok() && u.snapshot && !e.present) {
      return Status::Corruption("a snapshot lists a removed route");
    }
    if (r.ok() && !core::ValidateTopicFilter(e.route).ok()) {
      return Status::Corruption("route '" + e.route + "' is not a valid topic filter");
    }
  }
  if (!r.End()) return r.status();
  return u;
}

void RemoteRoutes::Set(Origin& o, const RouteEntry& e, RouteChanges& changes) {
  const bool shared = IsShared(e.route);
  if (!e.present) {
    if (!o.routes.Erase(e.route)) return;
    if (shared) {
      changes.shared.push_back({e.route, false, 0});
    } else {
      changes.removed.push_back(e.route);
    }
    return;
  }
  const std::optional<uint32_t> held = o.routes.Find(e.route);
  if (held && (!shared || *held == e.shared_members)) return;
  o.routes.Set(e.route, e.shared_members);
  if (shared) {
    changes.shared.push_back(e);
  } else {
    changes.added.push_back(e.route);
  }
}

RemoteRoutes::Outcome RemoteRoutes::Apply(const RouteUpdate& u, RouteChanges& changes) {
  Origin& o = origins_[u.origin];
  if (u.snapshot) {
    if (!o.receiving || o.pending_incarnation != u.incarnation || o.pending_seq != u.seq) {
      o.receiving = true;  // a new snapshot: an unfinished one is dropped
      o.pending_incarnation = u.incarnation;
      o.pending_seq = u.seq;
      std::vector<RouteEntry>().swap(o.pending);
    }
    o.pending.insert(o.pending.end(), u.entries.begin(), u.entries.end());
    if (!u.more) FinishSnapshot(o, changes);
    return Outcome::kApplied;
  }
  if (u.incarnation != o.incarnation) return Outcome::kNeedSnapshot;
  if (u.seq <= o.seq) return Outcome::kStale;
  if (u.seq != o.seq + 1) return Outcome::kNeedSnapshot;
  const size_t before = o.routes.size();
  for (const RouteEntry& e : u.entries) Set(o, e, changes);
  routes_ = routes_ - before + o.routes.size();
  o.seq = u.seq;
  return Outcome::kApplied;
}

void RemoteRoutes::FinishSnapshot(Origin& o, RouteChanges& changes) {
  const size_t before = o.routes.size();
  // The last entry of a route wins, as a map would have it.
  std::stable_sort(o.pending.begin(), o.pending.end(),
                   [](const RouteEntry& a, const RouteEntry& b) { return a.route < b.route; });
  std::vector<RouteEntry> latest;
  latest.reserve(o.pending.size());
  for (RouteEntry& e : o.pending) {
    if (!latest.empty() && latest.back().route == e.route) {
      latest.back() = std::move(e);
    } else {
      latest.push_back(std::move(e));
    }
  }
  std::vector<RouteEntry>().swap(o.pending);
  auto in_snapshot = [&](std::string_view route) {
    auto it = std::lower_bound(
        latest.begin(), latest.end(), route,
        [](const RouteEntry& e, std::string_view r) { return std::string_view(e.route) < r; });
    return it != latest.end() && it->route == route;
  };
  std::vector<std::string> gone;
  o.routes.ForEach([&](std::string_view route, uint32_t) {
    if (!in_snapshot(route)) gone.emplace_back(route);
    return true;
  });
  for (std::string& route : gone) Set(o, {std::move(route), false, 0}, changes);
  for (const RouteEntry& e : latest) Set(o, e, changes);
  routes_ = routes_ - before + o.routes.size();
  o.incarnation = o.pending_incarnation;
  o.seq = o.pending_seq;
  o.receiving = false;
}

void RemoteRoutes::Purge(std::string_view origin, RouteChanges& changes) {
  auto it = origins_.find(std::string(origin));
  if (it == origins_.end()) return;
  it->second.routes.ForEach([&](std::string_view route, uint32_t) {
    if (IsShared(route)) {
      changes.shared.push_back({std::string(route), false, 0});
    } else {
      changes.removed.emplace_back(route);
    }
    return true;
  });
  routes_ -= it->second.routes.size();
  origins_.erase(it);
}

std::vector<RouteEntry> RemoteRoutes::RoutesOf(std::string_view origin) const {
  std::vector<RouteEntry> out;
  auto it = origins_.find(std::string(origin));
  if (it == origins_.end()) return out;
  it->second.routes.ForEach([&](std::string_view route, uint32_t members) {
    out.push_back({std::string(route), true, members});
    return true;
  });
  return out;
}

size_t RemoteRoutes::count_of(std::string_view origin) const {
  auto it = origins_.find(std::string(origin));
  return it == origins_.end() ? 0 : it->second.routes.size();
}

uint64_t RemoteRoutes::incarnation_of(std::string_view origin) const {
  auto it = origins_.find(std::string(origin));
  return it == origins_.end() ? 0 : it->second.incarnation;
}

uint64_t RemoteRoutes::seq_of(std::string_view origin) const {
  auto it = origins_.find(std::string(origin));
  return it == origins_.end() ? 0 : it->second.seq;
}

size_t RemoteRoutes::route_count() const { return routes_; }

std::vector<RemoteRoutes::Listed> RemoteRoutes::ListAfter(std::string_view after_route,
                                                          std::string_view after_origin,
                                                          size_t max) const {
  std::vector<Listed> out;
  for (const auto& entry : origins_) {
    const std::string& origin = entry.first;  // a name a lambda can capture
    const Origin& o = entry.second;
    // This origin's next `max` routes, merged with the others' below.
    size_t n = 0;
    o.routes.ForEachFrom(after_route, [&](std::string_view route, uint32_t members) {
      if (route == after_route && origin <= after_origin) return true;
      out.push_back(Listed{std::string(route), origin, members});
      return ++n < max;
    });
  }
  std::sort(out.begin(), out.end());
  if (out.size() > max) out.resize(max);
  return out;
}

std::vector<RemoteRoutes::Listed> RemoteRoutes::Matching(std::string_view topic) const {
  std::vector<Listed> out;
  for (const auto& entry : origins_) {
    const std::string& origin = entry.first;
    const Origin& o = entry.second;
    o.routes.ForEach([&](std::string_view route, uint32_t members) {
      std::string_view filter = route;
      std::optional<core::SharedFilter> shared;
      if (IsShared(route)) {
        auto parsed = core::ParseSharedFilter(route);
        if (!parsed.ok() || !parsed.value().has_value()) return true;
        shared = *parsed.value();
        filter = shared->filter;
      }
      if (core::TopicMatches(filter, topic)) out.push_back(Listed{std::string(route), origin, members});
      return true;
    });
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ferry::cluster

// Who is in the cluster: the member set, its epoch, and the nodes removed by
// force-leave, as this node knows them, kept across restarts in data_dir.
//
// The member set changes only through the coordinator (the oldest running
// member, Coordinator()) and every change raises the epoch, so that of two
// sets the one with the higher epoch is the newer. A node removed by
// force-leave gets a tombstone that keeps it out (its handshake is refused
// with "removed by force-leave") until it is explicitly let back in by a
// join it starts itself after leaving.
//
// Thread: owned by the cluster thread; not thread-safe. Save() writes a file.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::cluster {

struct MemberRecord {
  std::string node;          // name@host
  std::string host;          // where its cluster port is
  uint16_t port = 0;         // its cluster port
  uint64_t incarnation = 0;  // random per process start
  uint64_t boot_ms = 0;      // Unix ms of its process start: "oldest" orders by it

  bool operator==(const MemberRecord&) const = default;
};

class Membership {
 public:
  // A cluster of one: `self`, epoch 1.
  Membership(std::string cluster, MemberRecord self);

  const std::string& cluster() const { return cluster_; }
  const std::string& self() const { return self_; }
  uint64_t epoch() const { return epoch_; }
  const std::map<std::string, MemberRecord, std::less<>>& members() const { return members_; }
  bool IsMember(std::string_view node) const { return members_.contains(node); }
  bool IsRemoved(std::string_view node) const { return removed_.contains(node); }
  const std::set<std::string, std::less<>>& removed() const { return removed_; }

  // The coordinator among `running` (member names; this node counts as
  // running): the one with the earliest boot, ties broken by name.
  std::string Coordinator(std::span<const std::string> running) const;

  // Changes, each raising the epoch when it changes anything. Add also
  // refreshes a member's record (a restart brings a new incarnation) and
  // clears its tombstone. Remove with `tombstone` is force-leave.
  bool Add(const MemberRecord& member);
  bool Remove(std::string_view node, bool tombstone);
  // Back to a cluster of one (this node left): members and tombstones go,
  // the epoch goes on rising so that the old set is never taken for newer.
  void Reset();

  // Takes `other`'s member set and tombstones if its epoch is higher (the
  // coordinator's word). Returns true if it did. `other` must be of the same
  // cluster; this node's own record is kept as it is.
  bool Adopt(const Membership& other);

  // The set as it travels between peers (a kMembers frame's payload), and
  // back: Corruption for anything that does not fit.
  std::string Encode() const;
  static Result<Membership> Decode(std::span<const uint8_t> payload);

  // JSON in `path`, written atomically; Load fails with NotFound when there
  // is no file, Corruption when it does not parse, and InvalidArgument when
  // it belongs to another node name or cluster: a node cannot change its
  // name while it is in a cluster.
  Status Save(const std::string& path) const;
  static Result<Membership> Load(const std::string& path, std::string_view cluster,
                                 const MemberRecord& self);

 private:
  Membership() = default;

  std::string cluster_;
  std::string self_;
  uint64_t epoch_ = 1;
  std::map<std::string, MemberRecord, std::less<>> members_;
  std::set<std::string, std::less<>> removed_;
};

}  // namespace ferry::cluster

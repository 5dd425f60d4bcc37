#include "cluster/membership.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "cluster/wire.h"
#include "core/atomic_file.h"

namespace ferry::cluster {
namespace {

using nlohmann::json;

// The smallest a member record is on the wire: four empty strings would
// not be a member, but bound the count before allocating.
constexpr size_t kMinRecordSize = 2 + 2 + 2 + 8 + 8;

void Put(FieldWriter& w, const MemberRecord& m) {
  w.Str(m.node);
  w.Str(m.host);
  w.U16(m.port);
  w.U64(m.incarnation);
  w.U64(m.boot_ms);
}

bool Get(FieldReader& r, MemberRecord& m) {
  return r.Str(m.node, "member name") && r.Str(m.host, "member host") &&
         r.U16(m.port, "member port") && r.U64(m.incarnation, "member incarnation") &&
         r.U64(m.boot_ms, "member boot time");
}

}  // namespace

Membership::Membership(std::string cluster, MemberRecord self)
    : cluster_(std::move(cluster)), self_(self.node) {
  members_.emplace(self.node, std::move(self));
}

std::string Membership::Coordinator(std::span<const std::string> running) const {
  const MemberRecord* best = &members_.at(self_);
  for (const std::string& node : running) {
    auto it = members_.find(node);
    if (it == members_.end()) continue;
    const MemberRecord& m = it->second;
    if (std::tie(m.boot_ms, m.node) < std::tie(best->boot_ms, best->node)) best = &m;
  }
  return best->node;
}

bool Membership::Add(const MemberRecord& member) {
  auto it = members_.find(member.node);
  if (it != members_.end() && it->second == member && !removed_.contains(member.node)) {
    return false;
  }
  members_[member.node] = member;
  removed_.erase(member.node);
  ++epoch_;
  return true;
}

bool Membership::Remove(std::string_view node, bool tombstone) {
  if (node == self_) return false;
  bool changed = members_.erase(std::string(node)) > 0;
  if (tombstone) changed = removed_.emplace(node).second || changed;
  if (changed) ++epoch_;
  return changed;
}

void Membership::Reset() {
  MemberRecord self = members_.at(self_);
  members_.clear();
  members_.emplace(self_, std::move(self));
  removed_.clear();
  ++epoch_;
}

bool Membership::Adopt(const Membership& other) {
  if (other.cluster_ != cluster_ || other.epoch_ <= epoch_) return false;
  MemberRecord self = members_.at(self_);
  members_ = other.members_;
  members_[self_] = std::move(self);
  removed_ = other.removed_;
  removed_.erase(self_);
  epoch_ = other.epoch_;
  return true;
}

std::string Membership::Encode() const {
  std::string payload;
  FieldWriter w(payload);
  w.Str(cluster_);
  w.Str(self_);
  w.U64(epoch_);
  w.U32(static_cast<uint32_t>(members_.size()));
  for (const auto& [node, m] : members_) Put(w, m);
  w.U32(static_cast<uint32_t>(removed_.size()));
  for (const std::string& node : removed_) w.Str(node);
  return payload;
}

Result<Membership> Membership::Decode(std::span<const uint8_t> payload) {
  FieldReader r(payload);
  Membership m;
  uint32_t count = 0;
  r.Str(m.cluster_, "cluster name");
  r.Str(m.self_, "sender");
  r.U64(m.epoch_, "epoch");
  r.U32(count, "member count");
  if (!r.ok()) return r.status();
  if (count > payload.size() / kMinRecordSize) return Status::Corruption("member count too large");
  for (uint32_t i = 0; i < count; ++i) {
    MemberRecord rec;
    if (!Get(r, rec)) return r.status();
    m.members_[rec.node] = std::move(rec);
  }
  r.U32(count, "removed count");
  if (!r.ok()) return r.status();
  if (count > payload.size() / 2) return Status::Corruption("removed count too large");
  for (uint32_t i = 0; i < count; ++i) {
    std::string node;
    if (!r.Str(node, "removed node")) return r.status();
    m.removed_.insert(std::move(node));
  }
  if (!r.End()) return r.status();
  if (!m.members_.contains(m.self_)) return Status::Corruption("the sender is not in its own set");
  return m;
}

Status Membership::Save(const std::string& path) const {
  json members = json::array();
  for (const auto& [node, m] : members_) {
    members.push_back({{"node", m.node},
                       {"host", m.host},
                       {"port", m.port},
                       {"incarnation", m.incarnation},
                       {"boot_ms", m.boot_ms}});
  }
  const json doc = {{"cluster", cluster_},
                    {"node", self_},
                    {"epoch", epoch_},
                    {"members", members},
                    {"removed", removed_}};
  return core::WriteFileAtomically(path, doc.dump(2) + "\n", 0600);
}

Result<Membership> Membership::Load(const std::string& path, std::string_view cluster,
                                    const MemberRecord& self) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": no member set saved");
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json doc = json::parse(text.str());
    Membership m;
    m.cluster_ = doc.at("cluster").get<std::string>();
    m.self_ = doc.at("node").get<std::string>();
    m.epoch_ = doc.at("epoch").get<uint64_t>();
    for (const json& j : doc.at("members")) {
      MemberRecord rec{j.at("node").get<std::string>(), j.at("host").get<std::string>(),
                       j.at("port").get<uint16_t>(), j.at("incarnation").get<uint64_t>(),
                       j.at("boot_ms").get<uint64_t>()};
      m.members_[rec.node] = std::move(rec);
    }
    for (const json& j : doc.at("removed")) m.removed_.insert(j.get<std::string>());
    if (m.self_ != self.node && m.members_.size() > 1) {
      return Status::InvalidArgument(path + ": this node is '" + m.self_ +
                                     "' in its cluster; it cannot start as '" + self.node +
                                     "' (leave the cluster first, or remove " + path + ")");
    }
    if (m.cluster_ != cluster && m.members_.size() > 1) {
      return Status::InvalidArgument(path + ": this node is in cluster '" + m.cluster_ +
                                     "', not '" + std::string(cluster) +
                                     "' (leave the cluster first, or remove " + path + ")");
    }
    if (m.self_ != self.node || m.cluster_ != cluster) {
      return Membership(std::string(cluster), self);  // alone before: nothing to keep
    }
    m.members_[m.self_] = self;  // this start's incarnation and boot time
    return m;
  } catch (const json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
}

}  // namespace ferry::cluster

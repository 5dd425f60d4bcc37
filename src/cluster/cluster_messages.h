// The control messages of the join protocol, as frame payloads
// (FrameType::kJoin and kJoinReply; wire.h). Sans-I/O; any thread.
//
//   joining node                         member it names
//   (link opened for kJoinPurpose)
//   JOIN        its record, its epoch  ->
//                                       <-  JOIN_REPLY  accepted + the member set, or
//                                                       redirect to the coordinator, or
//                                                       refused + why
//
// Only the coordinator (Membership::Coordinator) lets a node in, so that
// changes of the member set are made one at a time; any other member
// redirects the joining node to it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "cluster/membership.h"
#include "core/status.h"

namespace ferry::cluster {

struct JoinRequest {
  MemberRecord member;  // the joining node
  uint64_t epoch = 0;   // its own epoch: the reply's set must be newer
  // Discovery: join only a cluster that has other members already; a node
  // alone refuses ("alone"), so that two nodes that find each other at once
  // never each make the other join (discovery.h).
  bool only_if_clustered = false;

  bool operator==(const JoinRequest&) const = default;
};

struct JoinReply {
  enum class Kind : uint8_t { kAccepted = 0, kRedirect = 1, kRefused = 2 };
  Kind kind = Kind::kRefused;
  std::string members;       // kAccepted: the new member set (Membership::Encode)
  MemberRecord coordinator;  // kRedirect: where to ask instead
  std::string reason;        // kRefused: one line

  bool operator==(const JoinReply&) const = default;
};

std::string EncodeJoinRequest(const JoinRequest& request);
std::string EncodeJoinReply(const JoinReply& reply);
// Corruption for a payload that does not fit.
Result<JoinRequest> ParseJoinRequest(std::span<const uint8_t> payload);
Result<JoinReply> ParseJoinReply(std::span<const uint8_t> payload);

}  // namespace ferry::cluster

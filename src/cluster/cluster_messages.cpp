#include "cluster/cluster_messages.h"

#include "cluster/wire.h"

namespace ferry::cluster {

std::string EncodeJoinRequest(const JoinRequest& request) {
  std::string payload;
  FieldWriter w(payload);
  PutMember(w, request.member);
  w.U64(request.epoch);
  w.U8(request.only_if_clustered ? 1 : 0);
  return payload;
}

Result<JoinRequest> ParseJoinRequest(std::span<const uint8_t> payload) {
  FieldReader r(payload);
  JoinRequest request;
  uint8_t flags = 0;
  if (!GetMember(r, request.member) || !r.U64(request.epoch, "epoch") ||
      !r.U8(flags, "join flags") || !r.End()) {
    return r.status();
  }
  if (flags > 1) return Status::Corruption("unknown join flags");
  request.only_if_clustered = flags == 1;
  return request;
}

std::string EncodeJoinReply(const JoinReply& reply) {
  std::string payload;
  FieldWriter w(payload);
  w.U8(static_cast<uint8_t>(reply.kind));
  switch (reply.kind) {
    case JoinReply::Kind::kAccepted:
      w.U32(static_cast<uint32_t>(reply.members.size()));
      w.Fixed(
          std::span(reinterpret_cast<const uint8_t*>(reply.members.data()), reply.members.size()));
      break;
    case JoinReply::Kind::kRedirect:
      PutMember(w, reply.coordinator);
      break;
    case JoinReply::Kind::kRefused:
      w.Str(reply.reason.substr(0, 1024));
      break;
  }
  return payload;
}

Result<JoinReply> ParseJoinReply(std::span<const uint8_t> payload) {
  FieldReader r(payload);
  JoinReply reply;
  uint8_t kind = 0;
  if (!r.U8(kind, "reply kind")) return r.status();
  reply.kind = static_cast<JoinReply::Kind>(kind);
  switch (reply.kind) {
    case JoinReply::Kind::kAccepted: {
      uint32_t size = 0;
      if (!r.U32(size, "member set size")) return r.status();
      if (size > payload.size()) return Status::Corruption("member set larger than the frame");
      reply.members.resize(size);
      r.Fixed(std::span(reinterpret_cast<uint8_t*>(reply.members.data()), size), "member set");
      break;
    }
    case JoinReply::Kind::kRedirect:
      GetMember(r, reply.coordinator);
      break;
    case JoinReply::Kind::kRefused:
      r.Str(reply.reason, "reason");
      break;
    default:
      return Status::Corruption("unknown join reply kind " + std::to_string(kind));
  }
  if (!r.End()) return r.status();
  return reply;
}

}  // namespace ferry::cluster

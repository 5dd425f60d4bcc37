#include "cluster/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <span>
#include <utility>

namespace ferry::cluster {

Digest HmacSha256(std::span<const uint8_t> key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  assert(len == out.size());
  return out;
}

Digest CookieKey(std::string_view cookie) {
  return HmacSha256(std::span(reinterpret_cast<const uint8_t*>(cookie.data()), cookie.size()),
                    "ferry cluster cookie key v1");
}

namespace {

template <size_t N>
void RandomFill(std::array<uint8_t, N>& out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    // Without randomness a nonce could repeat; there is no safe way on.
    std::abort();
  }
}

std::string Payload(const std::function<void(FieldWriter&)>& fill) {
  std::string payload;
  FieldWriter w(payload);
  fill(w);
  return payload;
}

}  // namespace

const char* RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kCookieMismatch:
      return "cookie mismatch";
    case Refusal::kWrongNodeName:
      return "wrong node name";
    case Refusal::kClusterNameMismatch:
      return "cluster name mismatch";
    case Refusal::kUnsupportedVersion:
      return "unsupported version";
    case Refusal::kRemoved:
      return "removed by force-leave";
    case Refusal::kMalformed:
      return "malformed handshake";
  }
  return "refused";
}

Handshake::Handshake(LocalIdentity self, bool initiator)
    : self_(std::move(self)),
      initiator_(initiator),
      expect_(static_cast<uint8_t>(initiator ? FrameType::kHelloAck : FrameType::kHello)) {}

Handshake Handshake::Initiate(LocalIdentity self, std::string peer, std::string purpose) {
  Handshake h(std::move(self), true);
  h.peer_.node = std::move(peer);
  h.peer_.purpose = std::move(purpose);
  h.incarnation_i_ = h.self_.incarnation;
  RandomFill(h.nonce_i_);
  AppendFrame(h.out_, FrameType::kHello, Payload([&](FieldWriter& w) {
                w.U16(h.self_.min_version);
                w.U16(h.self_.max_version);
                w.Str(h.self_.cluster);
                w.Str(h.self_.node);
                w.Str(h.peer_.node);
                w.Str(h.peer_.purpose);
                w.Fixed(h.nonce_i_);
                w.U64(h.incarnation_i_);
              }));
  return h;
}

Handshake Handshake::Accept(LocalIdentity self, std::function<bool(std::string_view)> is_removed) {
  Handshake h(std::move(self), false);
  h.is_removed_ = std::move(is_removed);
  h.incarnation_r_ = h.self_.incarnation;
  return h;
}

Handshake::State Handshake::OnFrame(const FrameView& frame) {
  if (state_ != State::kInProgress) return state_;
  FieldReader r(frame.payload);
  if (frame.type == static_cast<uint8_t>(FrameType::kRefuse)) {
    OnRefuse(r);
    return state_;
  }
  if (frame.type != expect_ || frame.channel != 0) {
    Refuse(Refusal::kMalformed, "frame type " + std::to_string(frame.type) + " out of turn");
    return state_;
  }
  switch (static_cast<FrameType>(frame.type)) {
    case FrameType::kHello:
      OnHello(r);
      break;
    case FrameType::kHelloAck:
      OnHelloAck(r);
      break;
    case FrameType::kAuth:
      OnAuth(r);
      break;
    case FrameType::kWelcome:
      if (r.End()) {
        state_ = State::kEstablished;
      } else {
        Refuse(Refusal::kMalformed, r.status().message());
      }
      break;
    default:
      Refuse(Refusal::kMalformed, "unexpected frame type");
      break;
  }
  return state_;
}

void Handshake::OnHello(FieldReader& r) {
  uint16_t min_version = 0, max_version = 0;
  std::string cluster, to;
  r.U16(min_version, "minimum version");
  r.U16(max_version, "maximum version");
  r.Str(cluster, "cluster name");
  r.Str(peer_.node, "node name");
  r.Str(to, "target node name");
  r.Str(peer_.purpose, "purpose");
  r.Fixed(nonce_i_, "nonce");
  r.U64(incarnation_i_, "incarnation");
  if (!r.End()) return Refuse(Refusal::kMalformed, r.status().message());
  if (cluster != self_.cluster) {
    return Refuse(Refusal::kClusterNameMismatch, "'" + peer_.node + "' is in cluster '" + cluster +
                                                     "', '" + self_.node + "' in cluster '" +
                                                     self_.cluster + "'");
  }
  if (to != self_.node) {
    return Refuse(Refusal::kWrongNodeName,
                  "the link asked for '" + to + "', this node is '" + self_.node + "'");
  }
  const uint16_t version = std::min(max_version, self_.max_version);
  if (version < std::max(min_version, self_.min_version)) {
    return Refuse(Refusal::kUnsupportedVersion, "versions " + std::to_string(min_version) + " to " +
                                                    std::to_string(max_version) + " asked, " +
                                                    std::to_string(self_.min_version) + " to " +
                                                    std::to_string(self_.max_version) + " spoken");
  }
  if (peer_.purpose != kJoinPurpose && is_removed_ && is_removed_(peer_.node)) {
    return Refuse(Refusal::kRemoved, "'" + peer_.node + "' was removed from the cluster");
  }
  peer_.version = version;
  peer_.incarnation = incarnation_i_;
  RandomFill(nonce_r_);
  const Mac mac = Proof("responder");
  AppendFrame(out_, FrameType::kHelloAck, Payload([&](FieldWriter& w) {
                w.U16(version);
                w.Str(self_.node);
                w.Fixed(nonce_r_);
                w.U64(incarnation_r_);
                w.Fixed(mac);
              }));
  expect_ = static_cast<uint8_t>(FrameType::kAuth);
}

void Handshake::OnHelloAck(FieldReader& r) {
  uint16_t version = 0;
  std::string node;
  Mac mac{};
  r.U16(version, "version");
  r.Str(node, "node name");
  r.Fixed(nonce_r_, "nonce");
  r.U64(incarnation_r_, "incarnation");
  r.Fixed(mac, "proof");
  if (!r.End()) return Refuse(Refusal::kMalformed, r.status().message());
  if (node != peer_.node) {
    return Refuse(Refusal::kWrongNodeName,
                  "the link asked for '" + peer_.node + "', the peer is '" + node + "'");
  }
  if (version < self_.min_version || version > self_.max_version) {
    return Refuse(Refusal::kUnsupportedVersion, "version " + std::to_string(version) +
                                                    " offered, " +
                                                    std::to_string(self_.min_version) + " to " +
                                                    std::to_string(self_.max_version) + " spoken");
  }
  peer_.version = version;
  peer_.incarnation = incarnation_r_;
  const Mac expected = Proof("responder");
  if (CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Refuse(Refusal::kCookieMismatch, "");
  }
  const Mac proof = Proof("initiator");
  AppendFrame(out_, FrameType::kAuth, Payload([&](FieldWriter& w) { w.Fixed(proof); }));
  expect_ = static_cast<uint8_t>(FrameType::kWelcome);
}

void Handshake::OnAuth(FieldReader& r) {
  Mac mac{};
  r.Fixed(mac, "proof");
  if (!r.End()) return Refuse(Refusal::kMalformed, r.status().message());
  const Mac expected = Proof("initiator");
  if (CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Refuse(Refusal::kCookieMismatch, "");
  }
  AppendFrame(out_, FrameType::kWelcome, {});
  state_ = State::kEstablished;
}

void Handshake::OnRefuse(FieldReader& r) {
  uint8_t code = 0;
  std::string detail;
  r.U8(code, "reason");
  r.Str(detail, "detail");
  if (!r.End()) detail = "unreadable REFUSE: " + r.status().message();
  Fail(static_cast<Refusal>(code), true, detail);
}

void Handshake::Refuse(Refusal reason, const std::string& detail) {
  AppendFrame(out_, FrameType::kRefuse, Payload([&](FieldWriter& w) {
                w.U8(static_cast<uint8_t>(reason));
                w.Str(detail.substr(0, 1024));
              }));
  Fail(reason, false, detail);
}

void Handshake::Fail(Refusal reason, bool by_peer, const std::string& detail) {
  state_ = State::kFailed;
  failure_.reason = reason;
  failure_.by_peer = by_peer;
  failure_.text = std::string(RefusalName(reason)) + " with " + PeerLabel();
  if (by_peer) failure_.text += " (refused by the peer)";
  if (!detail.empty()) failure_.text += ": " + detail;
}

Handshake::Mac Handshake::Proof(std::string_view direction) const {
  const std::string transcript = Payload([&](FieldWriter& w) {
    w.Str("ferry cluster handshake v1");
    w.Str(direction);
    w.U16(peer_.version);
    w.Str(self_.cluster);
    w.Str(initiator_ ? self_.node : peer_.node);
    w.Str(initiator_ ? peer_.node : self_.node);
    w.Str(peer_.purpose);
    w.Fixed(nonce_i_);
    w.Fixed(nonce_r_);
    w.U64(incarnation_i_);
    w.U64(incarnation_r_);
  });
  return HmacSha256(CookieKey(self_.cookie), transcript);
}

std::string Handshake::PeerLabel() const {
  return peer_.node.empty() ? std::string("an unnamed peer") : "'" + peer_.node + "'";
}

}  // namespace ferry::cluster

// The handshake that opens every link between two cluster peers: both prove
// that they hold the cluster's cookie without sending it, and agree on who
// they are, which cluster they belong to and which protocol version they
// speak. Sans-I/O: frames in, frames out; the link owner moves the bytes.
//
//   initiator                                   responder
//   HELLO     versions, cluster, from, to,  ->
//             purpose, nonce_i, incarnation_i
//                                           <-  HELLO_ACK  version, node, nonce_r,
//                                                          incarnation_r, mac_r
//   AUTH      mac_i                         ->
//                                           <-  WELCOME
//
// Both MACs are HMAC-SHA256 under a key derived from the cookie, over the
// whole transcript (version, cluster, both node names, the purpose, both
// nonces and incarnations) and a label that differs by direction, so that a
// proof can neither be replayed on another link nor reflected back. Either
// side may answer REFUSE instead, with a reason both sides log: a cookie
// mismatch (found by whichever side checks a MAC first, which then tells the
// other), a wrong node name, a cluster name mismatch, no common version, or
// a node removed by force-leave. There is no fallback without the cookie.
//
// Thread: a Handshake belongs to the thread that runs its link.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "cluster/wire.h"

namespace ferry::cluster {

using Digest = std::array<uint8_t, 32>;

// HMAC-SHA256 of `data` under `key`.
Digest HmacSha256(std::span<const uint8_t> key, std::string_view data);
// The key every MAC of the cluster uses: the cookie itself never enters a
// transcript or a datagram.
Digest CookieKey(std::string_view cookie);

inline constexpr uint16_t kProtocolVersion = 1;

// What a link is opened for (PeerInfo::purpose): the one control link a
// member keeps to each other member, or a join request.
inline constexpr std::string_view kControlPurpose = "control";
inline constexpr std::string_view kJoinPurpose = "join";

// Why a link was refused; the code travels in REFUSE frames.
enum class Refusal : uint8_t {
  kCookieMismatch = 1,
  kWrongNodeName = 2,
  kClusterNameMismatch = 3,
  kUnsupportedVersion = 4,
  kRemoved = 5,    // the peer was removed by force-leave and stays out
  kMalformed = 6,  // a frame that does not parse, or one out of turn
};
// "cookie mismatch", "wrong node name", ...; "refused" for an unknown code.
const char* RefusalName(Refusal r);

// This node as the handshake presents it.
struct LocalIdentity {
  std::string cluster;       // [cluster] name
  std::string node;          // [node] name, name@host
  std::string cookie;        // the shared secret; never logged, never sent
  uint64_t incarnation = 0;  // random per process start
  uint16_t min_version = kProtocolVersion;
  uint16_t max_version = kProtocolVersion;
};

// The peer, as far as the handshake has learnt it (complete once
// established).
struct PeerInfo {
  std::string node;
  std::string purpose;  // what the initiator opened the link for, e.g. "control"
  uint16_t version = 0;
  uint64_t incarnation = 0;
};

struct HandshakeFailure {
  Refusal reason = Refusal::kMalformed;
  bool by_peer = false;  // the peer refused (true) or this node did (false)
  // One line from this node's point of view, e.g. "cookie mismatch with
  // 'ferry1@10.0.0.1'"; never contains the cookie.
  std::string text;
};

class Handshake {
 public:
  enum class State { kInProgress, kEstablished, kFailed };

  // Opens a link to `peer` (a node name) for `purpose`; HELLO is in
  // output() at once.
  static Handshake Initiate(LocalIdentity self, std::string peer, std::string purpose);
  // Answers a link a peer opened. `is_removed(node)` says whether that node
  // was removed by force-leave; may be empty. A removed node is refused on
  // every link but a join (kJoinPurpose): an operator's explicit join lets it
  // back in.
  static Handshake Accept(LocalIdentity self, std::function<bool(std::string_view)> is_removed);

  // Handles one frame from the peer and returns the new state. A frame after
  // the end (established or failed) is not the handshake's and is ignored.
  State OnFrame(const FrameView& frame);

  // Frames to send to the peer, appended by OnFrame (and Initiate); the link
  // owner sends and clears them. After a failure it holds the REFUSE to send
  // before closing, if this node refused.
  std::string& output() { return out_; }

  State state() const { return state_; }
  const PeerInfo& peer() const { return peer_; }
  // REQUIRES: state() == kFailed.
  const HandshakeFailure& failure() const { return failure_; }

 private:
  using Nonce = std::array<uint8_t, 32>;
  using Mac = std::array<uint8_t, 32>;

  Handshake(LocalIdentity self, bool initiator);

  void OnHello(FieldReader& r);
  void OnHelloAck(FieldReader& r);
  void OnAuth(FieldReader& r);
  void OnRefuse(FieldReader& r);

  // Sends REFUSE with `reason` and `detail` for the peer, and fails with a
  // line for this node's log.
  void Refuse(Refusal reason, const std::string& detail);
  void Fail(Refusal reason, bool by_peer, const std::string& detail);
  Mac Proof(std::string_view direction) const;
  std::string PeerLabel() const;

  LocalIdentity self_;
  bool initiator_;
  std::function<bool(std::string_view)> is_removed_;
  State state_ = State::kInProgress;
  uint8_t expect_;  // the FrameType the next frame must have
  PeerInfo peer_;
  Nonce nonce_i_{};
  Nonce nonce_r_{};
  uint64_t incarnation_i_ = 0;
  uint64_t incarnation_r_ = 0;
  std::string out_;
  HandshakeFailure failure_;
};

}  // namespace ferry::cluster

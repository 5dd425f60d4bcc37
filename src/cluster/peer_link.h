// One TCP connection between two cluster peers, from either end: the
// handshake (handshake.h), then frames both ways, with heartbeats that tell a
// silent peer from a slow one.
//
// * Writes are batched: Send() appends a frame to the link's output, which
//   goes out in one uv_write when the loop is about to wait for I/O, so every
//   frame queued in one loop pass shares a write.
// * A cap on the bytes a link holds (queued plus being written) keeps a peer
//   that does not read from growing the node's memory: past it Send()
//   refuses, and the caller decides (drop and count a QoS 0 message, hold a
//   QoS 1/2 publisher).
// * Heartbeats: a PING every `heartbeat`, answered by a PONG; the round trip
//   is measured. Any bytes from the peer count as a sign of life; none for
//   `down_after` closes the link ("no heartbeat ... for 10 s"): a silent split
//   (packets dropped, no RST) is seen without waiting for TCP.
// * With TLS (LinkOptions::tls_client/tls_server) the bytes on the socket
//   are TLS records; the frames, the cookie handshake included, travel
//   inside once the TLS handshake is done.
// * The handshake must finish within `handshake_timeout`, and until it has
//   a frame may carry at most kMaxHandshakePayload bytes, so that a peer
//   that has not proved the cookie cannot make the node buffer more.
//
// Thread: a PeerLink lives on one loop and is touched only from its thread.
// The listener's callbacks run on that thread; a link may be destroyed in
// OnClosed (the last callback it makes) or at any time outside a callback.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/handshake.h"
#include "cluster/peer_address.h"
#include "cluster/peer_tls.h"
#include "cluster/wire.h"
#include "core/loop.h"

namespace ferry::cluster {

inline constexpr uint32_t kMaxHandshakePayload = 4096;

struct LinkOptions {
  // TLS ([cluster] ssl, peer_tls.h): the contexts a link dials and answers
  // with; null for plain TCP.
  std::shared_ptr<SSL_CTX> tls_client;
  std::shared_ptr<SSL_CTX> tls_server;
  uint32_t max_payload = kDefaultMaxPayload;
  uint64_t heartbeat_ms = 1000;
  uint64_t down_after_ms = 10000;
  uint64_t handshake_timeout_ms = 5000;
  size_t max_buffered_bytes = 64u << 20;
};

class PeerLink {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // The handshake succeeded; link.peer() says who is on the other end.
    virtual void OnEstablished(PeerLink& link) = 0;
    // A frame that is not the link's own (handshake, heartbeat, close). The
    // payload is valid during the call only.
    virtual void OnFrame(PeerLink& link, const FrameView& frame) = 0;
    // What is queued fell to a quarter of the byte cap (or less) as writes
    // completed: a sender that holds frames back for the cap may send more.
    // Optional.
    virtual void OnDrained(PeerLink& /*link*/) {}
    // The link is closed and makes no further callbacks: `why` is one line
    // for the log (a refusal, a timeout, the peer's close, an I/O error).
    // `refusal` is set when the handshake failed.
    virtual void OnClosed(PeerLink& link, std::string_view why,
                          const HandshakeFailure* refusal) = 0;
  };

  // Connects to `to` and opens the link for `purpose`.
  static std::unique_ptr<PeerLink> Connect(core::Loop& loop, LocalIdentity self,
                                           const PeerAddress& to, std::string purpose,
                                           Listener& listener, LinkOptions options = {});
  // Takes a connection accepted on the cluster port and answers its
  // handshake. `is_removed` as in Handshake::Accept.
  static std::unique_ptr<PeerLink> Accept(core::Loop& loop, LocalIdentity self,
                                          core::UvHandle<uv_tcp_t> accepted,
                                          std::function<bool(std::string_view)> is_removed,
                                          Listener& listener, LinkOptions options = {});
  ~PeerLink();
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  bool established() const { return state_ == State::kEstablished; }
  bool closed() const { return state_ == State::kClosed; }
  // Who the peer is (its name is known from the start on an outbound link,
  // after its HELLO on an inbound one).
  const PeerInfo& peer() const { return handshake_.peer(); }

  // Queues a frame. False, and nothing queued, if the link is not
  // established or closed, or if the frame would take the link past
  // max_buffered_bytes.
  bool Send(FrameType type, std::string_view payload, uint16_t channel = 0, uint8_t flags = 0);
  // The same with the payload in two parts (wire.h).
  bool Send(FrameType type, std::string_view head, std::string_view body);
  // Bytes queued and being written.
  size_t buffered_bytes() const { return out_.size() + writing_; }
  // The last heartbeat round trip in microseconds; 0 before the first.
  uint64_t rtt_us() const { return rtt_us_; }

  // Closes the link: a kClose with `why` goes to an established peer first.
  // OnClosed follows on a later loop pass. No-op once closed.
  void Close(std::string why);

 private:
  enum class State { kConnecting, kHandshake, kEstablished, kClosed };
  struct Write;

  PeerLink(core::Loop& loop, Handshake handshake, Listener& listener, LinkOptions options);

  void StartConnect(const PeerAddress& to);
  void OnConnected(int status);
  void StartReading();
  void OnRead(const char* data, size_t n);
  // Handles the frames in in_; false once the link closed.
  bool DrainInput();
  bool OnLinkFrame(const FrameView& frame);
  void AfterHandshakeFrame();
  void OnTimer();
  void ScheduleFlush();
  void Flush();
  // Writes bytes as they are to the socket (cipher, with TLS).
  void WriteRaw(std::string bytes);
  // Sends what TLS produced (handshake, alerts).
  void FlushTls();
  // Closes without a kClose; `refusal` when the handshake failed.
  void Fail(std::string why, const HandshakeFailure* refusal = nullptr);

  core::Loop& loop_;
  Handshake handshake_;
  Listener& listener_;
  const LinkOptions options_;
  State state_ = State::kConnecting;
  core::UvHandle<uv_tcp_t> tcp_;
  core::UvHandle<uv_timer_t> timer_;
  core::UvHandle<uv_prepare_t> flush_;
  std::unique_ptr<PeerTls> tls_;  // null without TLS
  std::string in_;
  std::string out_;
  size_t writing_ = 0;
  uint64_t started_ms_ = 0;
  uint64_t last_heard_ms_ = 0;
  uint64_t rtt_us_ = 0;
  // Cleared by the destructor, so that callbacks still in libuv's hands
  // (a write completing, a posted OnClosed) know the link is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ferry::cluster

// Peer links over real loopback sockets, the loop run on the test's thread:
// both ends as PeerLinks, or one end played by the test with a blocking
// socket (a peer that goes silent, one that never answers the handshake).
#include "cluster/peer_link.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ferry::cluster {
namespace {

using core::Loop;
using core::UvHandle;

constexpr const char* kNodeA = "a1@127.0.0.1";
constexpr const char* kNodeB = "b2@127.0.0.1";

LocalIdentity Identity(const char* node, const char* cookie = "secret") {
  LocalIdentity id;
  id.cluster = "ferry";
  id.node = node;
  id.cookie = cookie;
  id.incarnation = node[0];
  return id;
}

PeerAddress At(const char* node, uint16_t port) { return PeerAddress{node, "127.0.0.1", port}; }

// Records what a link tells its owner.
struct Recorder : PeerLink::Listener {
  bool established = false;
  std::vector<std::pair<uint8_t, std::string>> frames;
  std::optional<std::string> closed;
  std::optional<HandshakeFailure> refusal;

  void OnEstablished(PeerLink&) override { established = true; }
  void OnFrame(PeerLink&, const FrameView& f) override {
    frames.emplace_back(f.type, std::string(f.payload.begin(), f.payload.end()));
  }
  void OnClosed(PeerLink&, std::string_view why, const HandshakeFailure* r) override {
    closed = std::string(why);
    if (r != nullptr) refusal = *r;
  }
};

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.BindToCurrentThread(); }

  void TearDown() override {
    links_.clear();
    server_.Reset();
    // Let the closes run.
    for (int i = 0; i < 10; ++i) uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  // Listens on 127.0.0.1:0 and answers every connection with a PeerLink as
  // node B with `cookie`; returns the port.
  uint16_t ListenAsB(const char* cookie = "secret", LinkOptions options = {}) {
    server_ = UvHandle<uv_tcp_t>::Make();
    uv_tcp_init(loop_.get(), server_.get());
    server_->data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    EXPECT_EQ(uv_tcp_bind(server_.get(), reinterpret_cast<sockaddr*>(&addr), 0), 0);
    accept_cookie_ = cookie;
    accept_options_ = options;
    EXPECT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(server_.get()), 16,
                        [](uv_stream_t* s, int status) {
                          ASSERT_EQ(status, 0);
                          static_cast<PeerLinkTest*>(s->data)->OnConnection(s);
                        }),
              0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(server_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  void OnConnection(uv_stream_t* server) {
    auto client = UvHandle<uv_tcp_t>::Make();
    uv_tcp_init(loop_.get(), client.get());
    ASSERT_EQ(uv_accept(server, reinterpret_cast<uv_stream_t*>(client.get())), 0);
    links_.push_back(PeerLink::Accept(loop_, Identity(kNodeB, accept_cookie_.c_str()),
                                      std::move(client), nullptr, b_, accept_options_));
  }

  // Runs the loop until `done` or 5 s.
  template <typename Pred>
  bool RunUntil(Pred done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto guard = UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop_.get(), guard.get());
    uv_timer_start(
        guard.get(), [](uv_timer_t*) {}, 20, 20);  // wakes the loop
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(loop_.get(), UV_RUN_ONCE);
    }
    return true;
  }

  Loop loop_;
  UvHandle<uv_tcp_t> server_;
  std::string accept_cookie_;
  LinkOptions accept_options_;
  Recorder a_, b_;
  std::vector<std::unique_ptr<PeerLink>> links_;
};

TEST_F(PeerLinkTest, EstablishesAndCarriesFramesBothWaysInOrder) {
  const uint16_t port = ListenAsB();
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_);
  ASSERT_TRUE(RunUntil([&] { return a_.established && b_.established; }));
  EXPECT_EQ(a->peer().node, kNodeB);
  EXPECT_EQ(links_[0]->peer().node, kNodeA);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(a->Send(static_cast<FrameType>(0x40), "m" + std::to_string(i), 3));
  }
  ASSERT_TRUE(links_[0]->Send(static_cast<FrameType>(0x41), "back"));
  ASSERT_TRUE(RunUntil([&] { return b_.frames.size() == 100 && a_.frames.size() == 1; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b_.frames[i].second, "m" + std::to_string(i));
  EXPECT_EQ(a_.frames[0], (std::pair<uint8_t, std::string>{0x41, "back"}));
  EXPECT_FALSE(a_.closed || b_.closed);
}

TEST_F(PeerLinkTest, HeartbeatsMeasureTheRoundTripAndKeepAnIdleLinkUp) {
  LinkOptions fast;
  fast.heartbeat_ms = 20;
  fast.down_after_ms = 200;
  const uint16_t port = ListenAsB("secret", fast);
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_, fast);
  ASSERT_TRUE(RunUntil([&] { return a->rtt_us() > 0; }));
  // Idle for three times down_after: the heartbeats keep it up.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
  RunUntil([&] { return std::chrono::steady_clock::now() > until; });
  EXPECT_FALSE(a_.closed.has_value()) << *a_.closed;
  EXPECT_FALSE(b_.closed.has_value()) << *b_.closed;
}

TEST_F(PeerLinkTest, WrongCookieClosesBothEndsWithTheRefusal) {
  const uint16_t port = ListenAsB("other-secret");
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_);
  ASSERT_TRUE(RunUntil([&] { return a_.closed && b_.closed; }));
  ASSERT_TRUE(a_.refusal.has_value());
  EXPECT_EQ(a_.refusal->reason, Refusal::kCookieMismatch);
  EXPECT_EQ(*a_.closed, "cookie mismatch with 'b2@127.0.0.1'");
  ASSERT_TRUE(b_.refusal.has_value()) << *b_.closed;
  EXPECT_EQ(b_.refusal->reason, Refusal::kCookieMismatch);
  EXPECT_FALSE(a_.established || b_.established);
}

TEST_F(PeerLinkTest, CloseTellsThePeerWhy) {
  const uint16_t port = ListenAsB();
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_);
  ASSERT_TRUE(RunUntil([&] { return a_.established && b_.established; }));
  ASSERT_TRUE(a->Send(static_cast<FrameType>(0x40), "last"));
  a->Close("leaving the cluster");
  EXPECT_FALSE(a->Send(static_cast<FrameType>(0x40), "too late"));
  ASSERT_TRUE(RunUntil([&] { return a_.closed && b_.closed; }));
  ASSERT_EQ(b_.frames.size(), 1u);  // what was queued before the close still arrived
  EXPECT_EQ(*b_.closed, "closed by 'a1@127.0.0.1': leaving the cluster");
}

TEST_F(PeerLinkTest, SendIsRefusedBeforeTheHandshakeAndPastTheCap) {
  LinkOptions small;
  small.max_buffered_bytes = 1024;
  const uint16_t port = ListenAsB();
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_, small);
  EXPECT_FALSE(a->Send(static_cast<FrameType>(0x40), "early"));
  ASSERT_TRUE(RunUntil([&] { return a_.established; }));
  EXPECT_FALSE(a->Send(static_cast<FrameType>(0x40), std::string(2000, 'x')));
  EXPECT_TRUE(a->Send(static_cast<FrameType>(0x40), std::string(500, 'x')));
}

TEST_F(PeerLinkTest, ConnectingToAClosedPortSaysSo) {
  const uint16_t port = ListenAsB();
  server_.Reset();  // nobody listens there any more
  RunUntil([] { return false; }, std::chrono::milliseconds(50));
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, port), "control", a_);
  ASSERT_TRUE(RunUntil([&] { return a_.closed.has_value(); }));
  EXPECT_NE(a_.closed->find("cannot connect to 'b2@127.0.0.1'"), std::string::npos) << *a_.closed;
}

// A peer played with a blocking socket on its own thread: it accepts one
// connection and, if `handshake`, completes the handshake as node B and then
// reads and drops everything without ever answering (a silent split).
class SilentPeer {
 public:
  explicit SilentPeer(bool handshake) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 1);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, handshake] { Serve(handshake); });
  }
  ~SilentPeer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (conn_ >= 0) ::shutdown(conn_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    if (conn_ >= 0) ::close(conn_);
  }
  uint16_t port() const { return port_; }

 private:
  void Serve(bool handshake) {
    conn_ = ::accept(fd_, nullptr, nullptr);
    if (conn_ < 0) return;
    Handshake h = Handshake::Accept(Identity(kNodeB), nullptr);
    std::string in;
    char buf[4096];
    while (!stop_) {
      const ssize_t n = ::read(conn_, buf, sizeof buf);
      if (n <= 0) return;
      if (!handshake || h.state() != Handshake::State::kInProgress) continue;  // silent
      in.append(buf, static_cast<size_t>(n));
      std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(in.data()), in.size());
      while (true) {
        auto f = ParseFrame(rest);
        if (!f.ok() || !f.value()) break;
        h.OnFrame(*f.value());
        rest = rest.subspan(f.value()->size());
      }
      in.erase(0, in.size() - rest.size());
      if (!h.output().empty()) {
        (void)!::write(conn_, h.output().data(), h.output().size());
        h.output().clear();
      }
    }
  }

  int fd_ = -1;
  int conn_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(PeerLinkTest, APeerThatGoesSilentIsDownAfterDownAfter) {
  SilentPeer peer(/*handshake=*/true);
  LinkOptions fast;
  fast.heartbeat_ms = 20;
  fast.down_after_ms = 200;
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, peer.port()), "control", a_, fast);
  ASSERT_TRUE(RunUntil([&] { return a_.established; }));
  ASSERT_TRUE(RunUntil([&] { return a_.closed.has_value(); }));
  EXPECT_NE(a_.closed->find("no heartbeat from 'b2@127.0.0.1'"), std::string::npos) << *a_.closed;
}

TEST_F(PeerLinkTest, APeerThatNeverAnswersTheHandshakeTimesOut) {
  SilentPeer peer(/*handshake=*/false);
  LinkOptions fast;
  fast.heartbeat_ms = 20;
  fast.handshake_timeout_ms = 200;
  auto a = PeerLink::Connect(loop_, Identity(kNodeA), At(kNodeB, peer.port()), "control", a_, fast);
  ASSERT_TRUE(RunUntil([&] { return a_.closed.has_value(); }));
  EXPECT_FALSE(a_.established);
  EXPECT_NE(a_.closed->find("no handshake with 'b2@127.0.0.1'"), std::string::npos) << *a_.closed;
}

}  // namespace
}  // namespace ferry::cluster

// Issue 9, points 6 to 8: a node at its descriptor limit, an admin port
// full of idle connections, and floods that used to flood the log. Real
// ferryd processes, raw sockets.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/subprocess.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// The test opens hundreds of sockets: lift its own soft limit.
void RaiseOwnFdLimit(rlim_t want) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur >= want) return;
  if (rl.rlim_max < want)
    GTEST_SKIP() << "the test needs " << want << " descriptors, hard limit " << rl.rlim_max;
  rl.rlim_cur = want;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

size_t CountLines(const std::string& log, const std::string& needle) {
  size_t n = 0;
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
  return n;
}

// The occurrences a LogLimiter named `what` counted instead of logging:
// the sum of its "<what>: N more in the last S s" lines.
uint64_t CountedInLog(const std::string& log, const std::string& what) {
  const std::string head = what + ": ";
  uint64_t sum = 0;
  for (size_t at = log.find(head); at != std::string::npos; at = log.find(head, at + 1)) {
    std::string digits;
    for (size_t i = at + head.size();
         i < log.size() && (std::isdigit(static_cast<unsigned char>(log[i])) || log[i] == ',');
         ++i) {
      if (log[i] != ',') digits += log[i];
    }
    if (!digits.empty()) sum += std::stoull(digits);
  }
  return sum;
}

// A LogLimiter logs one line per 10 s window; windows that began within a
// run of `ran`, however the run was timed (a slow sanitizer build).
size_t LimiterWindows(std::chrono::steady_clock::duration ran) {
  return static_cast<size_t>(ran / std::chrono::seconds(10)) + 1;
}

wire::ConnectFields Fields(int i) {
  wire::ConnectFields f;
  f.version = i % 2 == 0 ? MqttVersion::kV5 : MqttVersion::kV311;
  f.client_id = "fd-" + std::to_string(i);  // spread over both workers: most move
  return f;
}

// ------------------------------------------------------------ point 6

// With the hard descriptor limit at 256, 400 clients connect in batches of
// 50 without anyone leaving. Each one is either served (CONNACK 0x00) or
// refused: its socket closed at once, before any byte is sent back (see
// Acceptor::RefuseAtAccept for why a close and not a CONNACK). None is left
// waiting, none loses its connection after its CONNECT was taken, and the
// admin port answers /api/v1/health and /metrics between every batch.
TEST(FdLimit, EveryClientIsServedOrRefusedAndTheAdminPortAnswers) {
  RaiseOwnFdLimit(2048);
  if (HasFatalFailure() || IsSkipped()) return;
  const auto began = std::chrono::steady_clock::now();
  NodeOptions o;
  o.fd_limit = 256;
  o.extra_config = "[log]\nlevel = info\n";
  NodeProcess node(o);
  const ::testing::AssertionResult started = node.Start();
  if (IsSkipped()) return;  // the kernel refused the limit
  ASSERT_TRUE(started);
  EXPECT_TRUE(node.WaitForLog("descriptor limit 256: "));
  EXPECT_TRUE(node.WaitForLog("listener(s) tcp.default have max_connections = 0 (no limit)"));
  const uint16_t admin = node.admin_http_port();

  constexpr int kAttempts = 400;
  constexpr int kBatch = 50;
  std::vector<std::unique_ptr<RawClient>> served;
  int refused = 0;
  for (int start = 0; start < kAttempts; start += kBatch) {
    std::vector<std::unique_ptr<RawClient>> batch;
    for (int i = start; i < start + kBatch; ++i) {
      auto c = std::make_unique<RawClient>();
      ASSERT_TRUE(c->Connect(node.port())) << "attempt " << i;
      // A refused socket may be closed before the CONNECT is written.
      (void)c->Send(wire::Connect(Fields(i)));
      batch.push_back(std::move(c));
    }
    for (int i = 0; i < kBatch; ++i) {
      RawClient& c = *batch[static_cast<size_t>(i)];
      std::optional<Bytes> packet = c.ReadPacket(milliseconds(10000));
      if (packet.has_value()) {
        std::optional<wire::Connack> ack = wire::ParseConnack(*packet);
        ASSERT_TRUE(ack.has_value()) << "attempt " << start + i << ": " << wire::Hex(*packet);
        EXPECT_EQ(ack->code, 0) << "attempt " << start + i;
        served.push_back(std::move(batch[static_cast<size_t>(i)]));
      } else {
        EXPECT_TRUE(c.IsClosed(milliseconds(1)))
            << "attempt " << start + i << " neither served nor refused: " << c.error();
        ++refused;
      }
    }
    HttpReply health = Http("GET", admin, "/api/v1/health");
    EXPECT_EQ(health.status, 200) << "after " << start + kBatch << " attempts: " << health.error
                                  << health.head;
    EXPECT_EQ(Http("GET", admin, "/metrics").status, 200) << "after " << start + kBatch;
  }
  std::printf("%d attempts: %zu served, %d refused at the descriptor limit\n", kAttempts,
              served.size(), refused);
  EXPECT_EQ(served.size() + static_cast<size_t>(refused), static_cast<size_t>(kAttempts));
  EXPECT_GT(served.size(), 50u);
  EXPECT_GT(refused, 0) << "the limit was never reached";
  EXPECT_EQ(NodeMetric(node,
                       "ferry_listener_connections_refused_total{listener=\"tcp.default\","
                       "reason=\"fd_limit\"}"),
            static_cast<uint64_t>(refused));
  // Every served client still works.
  for (auto& c : served) ASSERT_TRUE(PingPong(*c));
  const std::string log = node.LogSinceStart();
  EXPECT_EQ(log.find("cannot hand over"), std::string::npos) << log;
  EXPECT_LE(CountLines(log, "all are open, refused a connection"),
            LimiterWindows(std::chrono::steady_clock::now() - began))
      << "one line per 10 s";
  // Once clients leave, new ones get in again.
  served.clear();
  EXPECT_TRUE(WaitFor([&] { return NodeServesNewClients(node.port()); }, milliseconds(10000),
                      "the node to serve new clients"));
  EXPECT_TRUE(node.Stop());
}

// A limit that the kernel refuses even to root (above fs.nr_open) skips
// the test that asked for it instead of failing it.
TEST(FdLimit, ALimitTheKernelRefusesSkipsTheTest) {
  ::testing::TestPartResultArray results;
  ::testing::AssertionResult started = ::testing::AssertionSuccess();
  {
    ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    ChildProcess child;
    SpawnOptions spawn;
    spawn.argv = {"true"};
    spawn.fd_limit = uint64_t{1} << 40;
    started = child.Start(spawn);
  }
  EXPECT_FALSE(started);
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).skipped()) << results.GetTestPartResult(0).message();
}

// ------------------------------------------------------------ point 7

// A node whose admin connections time out after `idle_timeout`.
NodeOptions AdminIdleTimeout(const std::string& idle_timeout) {
  NodeOptions o;
  o.extra_config = "[admin]\nidle_timeout = " + idle_timeout + "\n";
  return o;
}

// `n` connections to `port` that stay idle; with `partial`, every other one
// sends the start of a request first.
std::vector<std::unique_ptr<RawClient>> OpenIdle(uint16_t port, int n, bool partial) {
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < n; ++i) {
    idle.push_back(std::make_unique<RawClient>());
    EXPECT_TRUE(idle.back()->Connect(port));
    if (partial && i % 2 == 1) {
      EXPECT_TRUE(idle.back()->Send(Text("GET /api/v1/status HTTP/1.1\r\nHo")));
    }
  }
  return idle;
}

// 80 idle connections to the admin port (more than its 64 slots: some send
// nothing, some half a request) do not make the health check answer 503:
// the connection idle longest makes room.
TEST(AdminSlots, IdleConnectionsDoNotStarveTheHealthCheck) {
  NodeProcess node(AdminIdleTimeout("60s"));
  ASSERT_TRUE(node.Start());
  const uint16_t admin = node.admin_http_port();
  std::vector<std::unique_ptr<RawClient>> idle = OpenIdle(admin, 80, /*partial=*/true);
  for (int i = 0; i < 3; ++i) {
    HttpReply r = Http("GET", admin, "/api/v1/health");
    EXPECT_EQ(r.status, 200) << r.error << r.head << r.body;
  }
  EXPECT_EQ(Http("GET", admin, "/metrics").status, 200);
  // The port keeps at most 64: at least 16 idle ones were really closed
  // (not merely chosen twice while closing), the oldest first, the newest
  // kept.
  size_t closed = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        closed = 0;
        for (auto& c : idle) closed += c->IsClosed(milliseconds(1)) ? 1 : 0;
        return closed >= 16;
      },
      milliseconds(10000), "16 idle admin connections to be closed"))
      << closed << " closed";
  EXPECT_TRUE(idle.front()->IsClosed(milliseconds(1000)));
  EXPECT_FALSE(idle.back()->IsClosed(milliseconds(100)));
  EXPECT_TRUE(node.Stop());
}

// After the 408 an idle connection is closed at once: it keeps no slot for
// another idle_timeout.
TEST(AdminSlots, IdleConnectionIsClosedRightAfterIts408) {
  NodeProcess node(AdminIdleTimeout("3s"));
  ASSERT_TRUE(node.Start());
  const uint16_t admin = node.admin_http_port();
  std::vector<std::unique_ptr<RawClient>> idle = OpenIdle(admin, 64, /*partial=*/false);
  for (auto& c : idle) {
    std::optional<Bytes> head = c->Recv(12, milliseconds(10000));
    ASSERT_TRUE(head.has_value()) << c->error();
    EXPECT_EQ(std::string(head->begin(), head->end()), "HTTP/1.1 408");
    // Well before another idle_timeout.
    EXPECT_TRUE(c->IsClosed(milliseconds(1500)));
  }
  EXPECT_EQ(Http("GET", admin, "/api/v1/health").status, 200);
  EXPECT_TRUE(node.Stop());
}

// ------------------------------------------------------------ point 8

// 300 slowloris sockets (a byte of CONNECT, then nothing) time out together:
// the log has one line for them and then a count, not 300 lines.
TEST(LogFlood, TimedOutSocketsAreLoggedOnceWithACount) {
  RaiseOwnFdLimit(1024);
  if (HasFatalFailure() || IsSkipped()) return;
  const auto began = std::chrono::steady_clock::now();
  NodeOptions o;
  o.extra_config = "[log]\nlevel = info\n[mqtt]\nconnect_timeout = 1s\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.Start());
  constexpr int kSockets = 300;
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < kSockets; ++i) {
    slow.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(slow.back()->Connect(node.port()));
    ASSERT_TRUE(slow.back()->Send(Bytes{0x10}));
  }
  for (auto& c : slow) EXPECT_TRUE(c->IsClosed(milliseconds(10000)));
  // Every timeout is either logged or counted; the counts come once their
  // window is over. Usually one line and "299 more", but a slow run may
  // spread the timeouts over more than one window.
  const std::string what = "connections without a CONNECT in time";
  const std::string line = "did not complete its CONNECT in time";
  std::string log;
  EXPECT_TRUE(WaitFor(
      [&] {
        log = node.LogSinceStart();
        return CountLines(log, line) + CountedInLog(log, what) >= kSockets;
      },
      milliseconds(30000), "every timeout to be logged or counted"));
  const size_t lines = CountLines(log, line);
  EXPECT_EQ(lines + CountedInLog(log, what), static_cast<uint64_t>(kSockets)) << log;
  EXPECT_GE(lines, 1u) << log;
  EXPECT_LE(lines, LimiterWindows(std::chrono::steady_clock::now() - began)) << log;
  EXPECT_TRUE(NodeServesNewClients(node.port()));
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace ferry::testing

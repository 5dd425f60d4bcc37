// Sessions across a cluster of real ferryd nodes: a client id has one
// session in the whole cluster, and it follows the client to whichever node
// the client reconnects to, with its subscriptions, queued and in-flight
// messages; what was acknowledged to a publisher is not lost on the way.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/mosq_client.h"
#include "support/paho_client.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using v5::RawSession;

using ClusterSessions = ClusterFixture;

uint64_t Metric(const NodeProcess& n, const std::string& series) {
  return MetricValue(Http("GET", n.admin_http_port(), "/metrics").body, series).value_or(0);
}

PahoConnectOptions Persistent(uint32_t expiry_s = 3600) {
  PahoConnectOptions o;
  o.clean_start = false;
  o.session_expiry_s = expiry_s;
  return o;
}

// A v5 CONNECT of `id` that resumes a session with the given expiry.
wire::ConnectFields Resume(const std::string& id, uint32_t expiry_s = 3600) {
  wire::ConnectFields f;
  f.version = MqttVersion::kV5;
  f.client_id = id;
  f.clean_start = false;
  v5::AddU32(&f.properties, v5::kSessionExpiryInterval, expiry_s);
  return f;
}

// Connects `s` with `f`; on CONNACK 0x89 tries again, as docs/cluster.md
// says a client does: right after another node's CONNACK for the same client
// id its lock may not be released everywhere yet.
::testing::AssertionResult ConnectAgainIfBusy(RawSession& s, const wire::ConnectFields& f) {
  ::testing::AssertionResult r = s.Connect(f);
  for (int i = 0; i < 40 && !r && s.connack() && s.connack()->code == 0x89; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    r = s.Connect(f);
  }
  return r;
}

// Whether node `n` itself has a session for `id` (`clients show --local`).
bool HasSession(const NodeProcess& n, const std::string& id) {
  return Ferryctl(n, {"clients", "show", id, "--local"}).Succeeded();
}

TEST_F(ClusterSessions, QueuedMessagesFollowTheClientToAnotherNode) {
  ThreeJoined();
  {
    PahoClient c(N(1).port(), "mover", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(Persistent()));
    ASSERT_TRUE(c.Subscribe("move/#", 1));
    ASSERT_TRUE(c.Disconnect());
  }
  ASSERT_TRUE(RoutesKnown(1, 1));
  // 1,000 QoS 1 messages published on ferry3, each acknowledged once
  // ferry1 stored it in the offline session.
  constexpr int kCount = 1000;
  PahoClient pub(N(3).port(), "pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.PublishBurst("move/a", kCount, 1, seconds(60)));

  PahoClient c(N(2).port(), "mover", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect(Persistent()));
  EXPECT_TRUE(c.session_present());
  EXPECT_TRUE(ReceivesInOrder(c, kCount, "mover on ferry2"));
  // The session is on ferry2 alone now, with its subscription: a publish
  // on ferry1 reaches it there.
  EXPECT_TRUE(WaitFor([&] { return !HasSession(N(1), "mover"); }, seconds(10),
                      "ferry1 dropping its copy"));
  EXPECT_TRUE(HasSession(N(2), "mover"));
  ASSERT_TRUE(RoutesKnown(2, 1));
  PahoClient pub1(N(1).port(), "pub1", MqttVersion::kV5);
  ASSERT_TRUE(pub1.Connect());
  ASSERT_TRUE(pub1.Publish("move/b", "after", 1));
  auto m = c.Receive(seconds(10));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "after");
  EXPECT_TRUE(WaitFor([&] { return Metric(N(2), "ferry_cluster_sessions_imported_total") == 1; },
                      seconds(5), "the import counted"));
  EXPECT_TRUE(WaitFor([&] { return Metric(N(1), "ferry_cluster_sessions_exported_total") == 1; },
                      seconds(5), "the export counted"));
}

TEST_F(ClusterSessions, MessagesPublishedDuringTheMoveArriveOnceInOrder) {
  ThreeJoined();
  {
    PahoClient c(N(1).port(), "mover", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(Persistent()));
    ASSERT_TRUE(c.Subscribe("live/#", 1));
    ASSERT_TRUE(c.Disconnect());
  }
  ASSERT_TRUE(RoutesKnown(1, 1));
  // A publisher on each node keeps publishing while the client moves from
  // ferry1 to ferry2: each stream arrives whole, once, in its order.
  constexpr int kCount = 600;
  std::atomic<int> published{0};
  std::vector<std::thread> publishers;
  std::atomic<bool> failed{false};
  for (int node = 1; node <= 3; ++node) {
    publishers.emplace_back([&, node] {
      PahoClient pub(N(node).port(), "pub" + std::to_string(node), MqttVersion::kV5);
      if (!pub.Connect()) {
        failed = true;
        return;
      }
      for (int i = 0; i < kCount; ++i) {
        if (!pub.Publish("live/" + std::to_string(node), std::to_string(i), 1)) {
          failed = true;
          return;
        }
        ++published;
        std::this_thread::sleep_for(milliseconds(5));
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return published >= 3 * kCount / 3; }, seconds(30), "publishing"));
  PahoClient c(N(2).port(), "mover", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect(Persistent()));
  EXPECT_TRUE(c.session_present());
  for (auto& t : publishers) t.join();
  ASSERT_FALSE(failed);
  std::vector<int> next(4, 0);
  for (int got = 0; got < 3 * kCount; ++got) {
    auto m = c.Receive(seconds(30));
    ASSERT_TRUE(m.has_value()) << "after " << got << " messages";
    const int node = m->topic.back() - '0';
    ASSERT_EQ(m->payload, std::to_string(next[node])) << "stream of ferry" << node;
    ++next[node];
  }
  EXPECT_FALSE(c.Receive(milliseconds(500)).has_value()) << "a duplicate";
}

TEST_F(ClusterSessions, Qos2InFlightInBothPhasesCompletesOnTheNewNode) {
  Joined(2);
  RawSession sub(N(1).port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect(Resume("q2")));
  ASSERT_TRUE(sub.Subscribe({{"q2/#", 2}}).has_value());
  ASSERT_TRUE(RoutesKnown(1, 1));
  sub.set_auto_ack(false);
  PahoClient pub(N(2).port(), "pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("q2/a", "released", 2));
  ASSERT_TRUE(pub.Publish("q2/b", "sent", 2));
  auto a = sub.Receive(seconds(10));
  auto b = sub.Receive(seconds(10));
  ASSERT_TRUE(a && b);
  // PUBREC for the first only: ferry1 answers PUBREL, which stays
  // unanswered; the second stays unacknowledged.
  ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPubrec, MqttVersion::kV5, a->packet_id)));
  auto rel = sub.ReadControl(seconds(10));
  ASSERT_TRUE(rel.has_value());
  EXPECT_EQ((*rel)[0] >> 4, 6) << "PUBREL";
  sub.Drop();

  RawSession again(N(2).port(), MqttVersion::kV5);
  again.set_auto_ack(false);
  ASSERT_TRUE(ConnectAgainIfBusy(again, Resume("q2")));
  EXPECT_TRUE(again.connack()->session_present);
  // In their order: the PUBREL again for the first, the second again with DUP.
  auto rel2 = again.ReadControl(seconds(10));
  ASSERT_TRUE(rel2.has_value());
  EXPECT_EQ((*rel2)[0] >> 4, 6) << "PUBREL";
  auto b2 = again.Receive(seconds(10));
  ASSERT_TRUE(b2.has_value());
  EXPECT_EQ(b2->payload, "sent");
  EXPECT_TRUE(b2->dup);
  EXPECT_EQ(b2->packet_id, b->packet_id);
  ASSERT_TRUE(again.Send(wire::PublishAck(wire::kPubcomp, MqttVersion::kV5, a->packet_id)));
  ASSERT_TRUE(again.Send(wire::PublishAck(wire::kPubrec, MqttVersion::kV5, b2->packet_id)));
  auto rel3 = again.ReadControl(seconds(10));
  ASSERT_TRUE(rel3.has_value());
  ASSERT_TRUE(again.Send(wire::PublishAck(wire::kPubcomp, MqttVersion::kV5, b2->packet_id)));
  // Nothing else: each message exactly once.
  EXPECT_FALSE(again.Receive(milliseconds(500)).has_value());
}

TEST_F(ClusterSessions, CleanStartEndsTheSessionOnTheOtherNode) {
  Joined(2);
  PahoClient old(N(1).port(), "cs", MqttVersion::kV5);
  ASSERT_TRUE(old.Connect(Persistent()));
  ASSERT_TRUE(old.Subscribe("cs/#", 1));
  RawSession fresh(N(2).port(), MqttVersion::kV5);
  wire::ConnectFields f;
  f.version = MqttVersion::kV5;
  f.client_id = "cs";
  f.clean_start = true;
  ASSERT_TRUE(ConnectAgainIfBusy(fresh, f));
  EXPECT_FALSE(fresh.connack()->session_present);
  // The old connection was taken over: DISCONNECT 0x8E, then the close.
  EXPECT_TRUE(old.WaitConnectionLost(seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return !HasSession(N(1), "cs"); }, seconds(10), "ferry1's copy gone"));
}

TEST_F(ClusterSessions, TheWillFollowsTheRulesAcrossNodes) {
  ThreeJoined();
  PahoClient watcher(N(3).port(), "watcher", MqttVersion::kV5);
  ASSERT_TRUE(watcher.Connect());
  ASSERT_TRUE(watcher.Subscribe("will/#", 1));
  ASSERT_TRUE(RoutesKnown(3, 1));
  auto connect = [&](int node, const std::string& id, uint32_t delay_s, uint32_t expiry_s,
                     RawSession& s) {
    wire::ConnectFields f = Resume(id, expiry_s);
    f.will = wire::Will{"will/" + id, "gone", 1, false, {}};
    if (delay_s > 0) v5::AddU32(&f.will->properties, v5::kWillDelayInterval, delay_s);
    (void)node;
    return ConnectAgainIfBusy(s, f);
  };
  // Delay 0: the connection taken over on ferry1 sends its Will at once.
  {
    RawSession a(N(1).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(1, "w0", 0, 300, a));
    RawSession b(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(2, "w0", 0, 300, b));
    EXPECT_TRUE(b.connack()->session_present);
    EXPECT_TRUE(a.ExpectDisconnect(0x8E, seconds(10)));
    auto m = watcher.Receive(seconds(10));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->topic, "will/w0");
    ASSERT_TRUE(b.Disconnect());
  }
  // A delayed Will of a session resumed on another node is not sent.
  {
    RawSession a(N(1).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(1, "w30", 2, 300, a));
    RawSession b(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(2, "w30", 2, 300, b));
    EXPECT_TRUE(b.connack()->session_present);
    EXPECT_TRUE(a.ExpectDisconnect(0x8E, seconds(10)));
    auto m = watcher.Receive(seconds(4));  // twice the delay
    EXPECT_FALSE(m.has_value()) << "the Will of '" << m->topic << "' went";
    ASSERT_TRUE(b.Disconnect());
  }
  // Session expiry 0: the session ends with its connection, and its Will
  // goes then, delay or not; the new connection starts afresh.
  {
    RawSession a(N(1).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(1, "e0", 30, 0, a));
    RawSession b(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(connect(2, "e0", 30, 0, b));
    EXPECT_FALSE(b.connack()->session_present);
    EXPECT_TRUE(a.ExpectDisconnect(0x8E, seconds(10)));
    auto m = watcher.Receive(seconds(10));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->topic, "will/e0");
  }
}

// On how many of `nodes` the session of `id` is (connected: only where
// its client is connected).
int SessionsOf(const std::vector<NodeProcess*>& nodes, const std::string& id,
               bool connected_only) {
  int n = 0;
  for (NodeProcess* node : nodes) {
    auto j = ParseJson(Ferryctl(*node, {"clients", "show", id, "--local", "--json"}).out);
    if (j && j->contains("connected") && (!connected_only || (*j)["connected"].get<bool>())) ++n;
  }
  return n;
}

// How many connected clients `id` the whole cluster lists, asked on `at`.
int LiveInCluster(const NodeProcess& at, const std::string& id) {
  auto rows = ParseJson(Ferryctl(at, {"clients", "list", "--cluster", "--connected", "--json"}).out);
  int n = 0;
  if (rows && rows->is_array()) {
    for (const auto& row : *rows) n += row["client_id"] == id ? 1 : 0;
  }
  return n;
}

TEST_F(ClusterSessions, ConcurrentConnectsOfOneClientIdLeaveOneLiveSession) {
  ThreeJoined();
  const std::vector<NodeProcess*> all = {&N(1), &N(2), &N(3)};
  int connacks_ok = 0;
  int busy = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<std::unique_ptr<RawSession>> sessions;
    for (int i = 1; i <= 3; ++i) {
      sessions.push_back(std::make_unique<RawSession>(N(i).port(), MqttVersion::kV5));
    }
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    for (auto& s : sessions) {
      threads.emplace_back([&, session = s.get()] {
        if (session->Connect(Resume("dup"))) {
          ++ok;
        } else if (session->connack() && session->connack()->code == 0x89) {
          ++refused;
        }
      });
    }
    for (auto& t : threads) t.join();
    connacks_ok += ok;
    busy += refused;
    ASSERT_LE(LiveInCluster(N(1 + round % 3), "dup"), 1) << "round " << round;
  }
  // Every CONNECT was answered: accepted (and maybe taken over since) or
  // refused as busy; one session is left in the cluster.
  EXPECT_EQ(connacks_ok + busy, 300);
  EXPECT_GE(connacks_ok, 100);
  EXPECT_TRUE(WaitFor([&] { return SessionsOf(all, "dup", false) == 1; }, seconds(20),
                      "one session of 'dup' in the cluster"))
      << Ctl(N(1), {"clients", "list", "--cluster"}).out;
}

// A client that comes back to its new node while the old node is still
// handing over (handoff_linger) resumes the session there: the old node's
// copy is on its way out and nobody takes it again, and it does not come
// back once the client moves on to a third node.
TEST_F(ClusterSessions, AClientBackDuringTheHandOffResumesWhereItIsAndLeavesOneCopy) {
  ThreeJoined();
  const std::vector<NodeProcess*> all = {&N(1), &N(2), &N(3)};
  {
    RawSession a(N(1).port(), MqttVersion::kV5);
    ASSERT_TRUE(a.Connect(Resume("hop")));
    EXPECT_FALSE(a.connack()->session_present);
  }
  {
    RawSession b(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(ConnectAgainIfBusy(b, Resume("hop")));
    EXPECT_TRUE(b.connack()->session_present);
  }
  {
    RawSession again(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(again.Connect(Resume("hop")));
    EXPECT_TRUE(again.connack()->session_present);
  }
  // ferry3 may be told to wait (0x89) until the hand-off to ferry2 ended.
  bool moved = false;
  for (int i = 0; i < 50 && !moved; ++i) {
    RawSession c(N(3).port(), MqttVersion::kV5);
    if (c.Connect(Resume("hop"))) {
      EXPECT_TRUE(c.connack()->session_present);
      moved = true;
    } else {
      ASSERT_TRUE(c.connack().has_value());
      EXPECT_EQ(c.connack()->code, 0x89);
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  ASSERT_TRUE(moved) << "ferry3 never took the session";
  EXPECT_TRUE(WaitFor([&] { return SessionsOf(all, "hop", false) == 1 && HasSession(N(3), "hop"); },
                      seconds(10), "one session of 'hop', on ferry3"));
  // ferry1 gave it away once, ferry2 took it once and gave it away once.
  EXPECT_TRUE(WaitFor([&] { return Metric(N(2), "ferry_cluster_sessions_exported_total") == 1; },
                      seconds(5), "ferry2's export counted"));
  EXPECT_EQ(Metric(N(1), "ferry_cluster_sessions_exported_total"), 1u);
  EXPECT_EQ(Metric(N(2), "ferry_cluster_sessions_imported_total"), 1u);
  std::this_thread::sleep_for(seconds(1));  // past every linger: nothing comes back
  EXPECT_EQ(SessionsOf(all, "hop", false), 1);
  EXPECT_EQ(Metric(N(1), "ferry_cluster_sessions_exported_total"), 1u);
}

TEST_F(ClusterSessions, AClientOfAFrozenNodeStartsAfreshAndTheStaleCopyIsDroppedLater) {
  ThreeJoined();
  {
    PahoClient c(N(1).port(), "stale", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(Persistent()));
    ASSERT_TRUE(c.Subscribe("stale/#", 1));
    ASSERT_TRUE(c.Disconnect());
  }
  // ferry1 stops answering in the middle of the takeover: ferry2 asks
  // it for the session and gets nothing in time, so the client starts
  // afresh there (the two others hold the quorum of the lock).
  ASSERT_TRUE(N(1).Signal(SIGSTOP));
  RawSession s(N(2).port(), MqttVersion::kV5);
  ASSERT_TRUE(s.Connect(Resume("stale")));
  EXPECT_FALSE(s.connack()->session_present);
  N(1).Kill();
  ASSERT_TRUE(s.Subscribe({{"stale/#", 1}}).has_value());
  // ferry1 comes back with its stored copy, which the later connect on
  // ferry2 supersedes: ferry1 drops it, counts it and says so.
  ASSERT_TRUE(N(1).Start());
  ASSERT_TRUE(AllTogether({Name(1), Name(2), Name(3)}));
  EXPECT_TRUE(WaitFor([&] { return !HasSession(N(1), "stale"); }, seconds(20),
                      "ferry1 dropping its stale copy"));
  EXPECT_TRUE(HasSession(N(2), "stale"));
  EXPECT_TRUE(WaitFor([&] { return Metric(N(1), "ferry_cluster_sessions_discarded_total") == 1; },
                      seconds(5), "the drop counted"));
  EXPECT_TRUE(N(1).WaitForLog("dropped 1 session that its client connected to"));
  // The session on ferry2 is the client's: a publish anywhere reaches it.
  ASSERT_TRUE(RoutesKnown(2, 1));
  PahoClient pub(N(1).port(), "pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("stale/x", "here", 1));
  auto m = s.Receive(seconds(10));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "here");
}

TEST_F(ClusterSessions, TheNewNodeKilledAfterATakeoverLeavesOneSession) {
  ThreeJoined();
  {
    PahoClient c(N(1).port(), "k", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(Persistent()));
    ASSERT_TRUE(c.Subscribe("k/#", 1));
    ASSERT_TRUE(c.Disconnect());
  }
  ASSERT_TRUE(RoutesKnown(1, 1));
  PahoClient pub(N(1).port(), "pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.PublishBurst("k/a", 200, 1, seconds(30)));
  {
    RawSession s(N(2).port(), MqttVersion::kV5);
    ASSERT_TRUE(s.Connect(Resume("k")));
    EXPECT_TRUE(s.connack()->session_present);
    N(2).Kill();  // in the middle of the hand-off, or just after it
  }
  // The client comes back through ferry3: it gets the session wherever it
  // survived (ferry1 puts its copy back if ferry2 never confirmed), and
  // one session is left once ferry2 is back.
  RawSession again(N(3).port(), MqttVersion::kV5);
  ASSERT_TRUE(WaitFor([&] { return static_cast<bool>(again.Connect(Resume("k"))); }, seconds(40),
                      "connecting through ferry3"));
  ASSERT_TRUE(N(2).Start());
  ASSERT_TRUE(AllTogether({Name(1), Name(2), Name(3)}));
  const std::vector<NodeProcess*> all = {&N(1), &N(2), &N(3)};
  EXPECT_TRUE(WaitFor([&] { return SessionsOf(all, "k", false) == 1; }, seconds(30),
                      "one session of 'k' in the cluster"));
  EXPECT_TRUE(HasSession(N(3), "k"));
}

TEST_F(ClusterSessions, ClientsAreShownKickedAndListedFromAnyNode) {
  ThreeJoined();
  PahoClient c2(N(2).port(), "on-two", MqttVersion::kV5);
  ASSERT_TRUE(c2.Connect(Persistent()));
  PahoClient c3(N(3).port(), "on-three", MqttVersion::kV5);
  ASSERT_TRUE(c3.Connect());
  // Many offline sessions on ferry3, so that its part of the listing takes
  // several pages.
  for (int i = 0; i < 120; ++i) {
    RawSession s(N(3).port(), MqttVersion::kV5);
    ASSERT_TRUE(s.Connect(Resume("off-" + std::to_string(i))));
    ASSERT_TRUE(s.Disconnect());
  }
  // clients show: the answer says which node the client is on.
  auto shown = ParseJson(Ctl(N(1), {"clients", "show", "on-two", "--json"}).out);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ((*shown)["node"], Name(2));
  EXPECT_EQ((*shown)["connected"], true);
  // --local keeps to this node.
  CommandResult local = Ctl(N(1), {"clients", "show", "on-two", "--local"});
  EXPECT_FALSE(local.Succeeded());
  EXPECT_EQ(local.err, "ferryctl: no client 'on-two'\n");
  CommandResult none = Ctl(N(1), {"clients", "show", "nobody"});
  EXPECT_FALSE(none.Succeeded());
  EXPECT_EQ(none.err, "ferryctl: no client 'nobody' on any node\n");
  // clients kick from ferry1 for a client on ferry3.
  CommandResult kicked = Ctl(N(1), {"clients", "kick", "on-three"});
  ASSERT_TRUE(kicked.Succeeded()) << kicked.ToString();
  EXPECT_EQ(kicked.out, "Client 'on-three' kicked on " + Name(3) + "\n");
  EXPECT_TRUE(c3.WaitConnectionLost(seconds(10)));
  // clients list --cluster: every node's, each row with its node.
  auto rows = ParseJson(Ctl(N(1), {"clients", "list", "--cluster", "--json"}).out);
  ASSERT_TRUE(rows.has_value());
  ASSERT_TRUE(rows->is_array());
  std::map<std::string, int> per_node;
  for (const auto& row : *rows) per_node[row["node"].get<std::string>()]++;
  EXPECT_EQ(per_node[Name(1)], 0);
  EXPECT_EQ(per_node[Name(2)], 1);
  EXPECT_EQ(per_node[Name(3)], 120);  // on-three had a session that ended with it
  // --limit counts the rows of every node together.
  auto limited = ParseJson(Ctl(N(1), {"clients", "list", "--cluster", "--limit", "50", "--json"}).out);
  ASSERT_TRUE(limited.has_value());
  EXPECT_EQ(limited->size(), 50u);
  CommandResult human = Ctl(N(2), {"clients", "list", "--cluster", "--connected"});
  ASSERT_TRUE(human.Succeeded());
  EXPECT_NE(human.out.find("NODE"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("on-two"), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find("off-1"), std::string::npos) << human.out;
}

TEST_F(ClusterSessions, ClusterLocksListsTheLockOfATakeoverUnderWay) {
  ThreeJoined();
  {
    PahoClient c(N(1).port(), "locked", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(Persistent()));
    ASSERT_TRUE(c.Disconnect());
  }
  EXPECT_EQ(Ctl(N(2), {"cluster", "locks"}).out, "no locks\n");
  RawSession s(N(2).port(), MqttVersion::kV5);
  ASSERT_TRUE(s.Connect(Resume("locked")));
  // ferry1 freezes before its last hand-off: ferry2 keeps the client id
  // locked until it gives up waiting.
  ASSERT_TRUE(N(1).Signal(SIGSTOP));
  CommandResult held = Ctl(N(2), {"cluster", "locks"});
  EXPECT_NE(held.out.find("client:locked  held by this node (quorum, granted by "),
            std::string::npos)
      << held.out;
  auto j = ParseJson(Ctl(N(3), {"cluster", "locks", "--json"}).out);
  ASSERT_TRUE(j.has_value());
  ASSERT_EQ((*j)["locks"].size(), 1u) << *j;
  EXPECT_EQ((*j)["locks"][0]["resource"], "client:locked");
  EXPECT_EQ((*j)["locks"][0]["holder"], Name(2));
  EXPECT_EQ((*j)["locks"][0]["held"], false);
  EXPECT_GT((*j)["locks"][0]["token"].get<uint64_t>(), 0u);
  ASSERT_TRUE(N(1).Signal(SIGCONT));
  EXPECT_TRUE(WaitFor([&] { return Ctl(N(2), {"cluster", "locks"}).out == "no locks\n"; },
                      seconds(15), "the lock let go"));
  EXPECT_TRUE(WaitFor([&] { return Ctl(N(3), {"cluster", "locks"}).out == "no locks\n"; },
                      seconds(15), "the grant let go"));
}

}  // namespace
}  // namespace ferry::testing

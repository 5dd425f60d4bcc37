// Messages across a cluster of real ferryd nodes on loopback: a publish on
// any node reaches the matching subscribers of every node, once, at the QoS
// and with the options they subscribed with; QoS 1 streams lose nothing and
// duplicate nothing, also when a node is SIGKILLed in the middle of one.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/mosq_client.h"
#include "support/paho_client.h"
#include "support/subprocess.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;
using v5::Codes;
using v5::RawSession;

using ClusterForward = ClusterFixture;

uint64_t Metric(const NodeProcess& n, const std::string& series) {
  return MetricValue(Http("GET", n.admin_http_port(), "/metrics").body, series).value_or(0);
}

TEST_F(ClusterForward, APublishReachesSubscribersOnEveryOtherNodeAtEachQos) {
  ThreeJoined();
  MosqClient sub2(N(2).port(), "sub2");  // libmosquitto, 3.1.1
  ASSERT_TRUE(sub2.Connect());
  ASSERT_TRUE(sub2.Subscribe("q/#", 2));
  PahoClient sub3(N(3).port(), "sub3", MqttVersion::kV5);  // Paho, 5.0
  ASSERT_TRUE(sub3.Connect());
  ASSERT_TRUE(sub3.Subscribe("q/+", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  ASSERT_TRUE(RoutesKnown(3, 1));

  PahoClient pub(N(1).port(), "pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  for (int qos = 0; qos <= 2; ++qos) {
    ASSERT_TRUE(pub.Publish("q/" + std::to_string(qos), "m" + std::to_string(qos), qos));
  }
  for (int qos = 0; qos <= 2; ++qos) {
    auto m2 = sub2.Receive(seconds(10));
    ASSERT_TRUE(m2.has_value()) << "QoS " << qos << " on ferry2";
    EXPECT_EQ(m2->topic, "q/" + std::to_string(qos));
    EXPECT_EQ(m2->payload, "m" + std::to_string(qos));
    EXPECT_EQ(m2->qos, qos);
    auto m3 = sub3.Receive(seconds(10));
    ASSERT_TRUE(m3.has_value()) << "QoS " << qos << " on ferry3";
    EXPECT_EQ(m3->payload, "m" + std::to_string(qos));
    EXPECT_EQ(m3->qos, std::min(qos, 1));  // the QoS ferry3's subscriber was granted
  }
  // The publisher's own node has no subscriber: nothing came back to it,
  // and nobody got a second copy.
  EXPECT_FALSE(sub2.Receive(std::chrono::milliseconds(300)).has_value());
  EXPECT_FALSE(sub3.Receive(std::chrono::milliseconds(300)).has_value());
  EXPECT_EQ(Metric(N(1), "ferry_cluster_forwarded_out_total{node=\"" + Name(2) + "\"}"), 3u);
  EXPECT_EQ(Metric(N(2), "ferry_cluster_forwarded_in_total{node=\"" + Name(1) + "\"}"), 3u);
}

TEST_F(ClusterForward, TenThousandQos1MessagesNoneLostNoneDuplicated) {
  ThreeJoined();
  // Subscribers on libmosquitto, a network thread each: Paho's clients in
  // one process share its threads, so a burst to them paces them together.
  MosqClient sub2(N(2).port(), "sub2", MqttVersion::kV5);
  ASSERT_TRUE(sub2.Connect());
  ASSERT_TRUE(sub2.Subscribe("burst/#", 1));
  MosqClient sub3(N(3).port(), "sub3");
  ASSERT_TRUE(sub3.Connect());
  ASSERT_TRUE(sub3.Subscribe("burst/t", 1));
  // A subscriber on the publisher's node too: local and remote together.
  MosqClient sub1(N(1).port(), "sub1");
  ASSERT_TRUE(sub1.Connect());
  ASSERT_TRUE(sub1.Subscribe("burst/+", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  ASSERT_TRUE(RoutesKnown(3, 1));

  PahoClient pub(N(1).port(), "pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  constexpr int kCount = 10000;
  ASSERT_TRUE(pub.PublishBurst("burst/t", kCount, 1, seconds(120)));
  EXPECT_TRUE(ReceivesInOrder(sub1, kCount, "ferry1"));
  EXPECT_TRUE(ReceivesInOrder(sub2, kCount, "ferry2"));
  EXPECT_TRUE(ReceivesInOrder(sub3, kCount, "ferry3"));
  EXPECT_EQ(Metric(N(1), "ferry_cluster_forward_dropped_total{node=\"" + Name(2) + "\"}"), 0u);
}

TEST_F(ClusterForward, V5OptionsHoldAcrossNodes) {
  ThreeJoined();
  RawSession sub(N(2).port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("opts-sub"));
  ASSERT_EQ(sub.SubscribeWithId({"opt/id", 1}, 42), (Codes{1}));
  ASSERT_EQ(sub.Subscribe({{"opt/rap", v5::SubOptions(1, false, true)},
                           {"opt/plain", v5::SubOptions(1, false, false)}}),
            (Codes{1, 1}));
  ASSERT_TRUE(RoutesKnown(2, 3));
  RawSession pub(N(1).port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("opts-pub"));
  wire::PublishFields with_props;
  with_props.topic = "opt/id";
  with_props.payload = "p";
  with_props.qos = 1;
  v5::AddString(&with_props.properties, v5::kContentType, "text/plain");
  v5::AddUserProperty(&with_props.properties, "k", "v");
  ASSERT_TRUE(pub.Publish(with_props));
  ASSERT_TRUE(pub.Publish("opt/rap", "r", 1, true));
  ASSERT_TRUE(pub.Publish("opt/plain", "r", 1, true));

  auto m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  auto props = v5::PublishProperties(m->properties);
  EXPECT_EQ(props.Numbers(v5::kSubscriptionIdentifier), (std::vector<uint32_t>{42}));
  EXPECT_EQ(props.Text(v5::kContentType), "text/plain");
  EXPECT_EQ(props.User(), (v5::UserProperties{{"k", "v"}}));
  m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "opt/rap");
  EXPECT_TRUE(m->retain);  // Retain As Published
  m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "opt/plain");
  EXPECT_FALSE(m->retain);
}

TEST_F(ClusterForward, ASigkilledNodeLosesNothingAcknowledgedForTheOthers) {
  Joined(3, "peer_down_after = 2s\n");
  MosqClient sub2(N(2).port(), "sub2");
  ASSERT_TRUE(sub2.Connect());
  ASSERT_TRUE(sub2.Subscribe("kill/#", 1));
  MosqClient sub3(N(3).port(), "sub3");
  ASSERT_TRUE(sub3.Connect());
  ASSERT_TRUE(sub3.Subscribe("kill/#", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  ASSERT_TRUE(RoutesKnown(3, 1));

  PahoClient pub(N(1).port(), "pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  constexpr int kCount = 20000;
  std::atomic<bool> acked{false};
  std::thread publisher([&] { acked = static_cast<bool>(pub.PublishBurst("kill/t", kCount, 1, seconds(120))); });
  // ferry3 dies while the stream is under way.
  ASSERT_TRUE(WaitFor([&] { return sub3.Pending() > 200; }, seconds(30), "ferry3 receiving"));
  N(3).Kill();
  publisher.join();
  // Every message was acknowledged to the publisher on ferry1, and the
  // subscriber on ferry2 has each of them once, in order.
  EXPECT_TRUE(acked);
  EXPECT_TRUE(ReceivesInOrder(sub2, kCount, "ferry2"));
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1), Name(2)}, {Name(3)})));
}

TEST_F(ClusterForward, ALostLinkResendsWhatWasNotAcknowledgedWithoutDuplicates) {
  Joined(2, "peer_down_after = 3s\n");
  MosqClient sub2(N(2).port(), "sub2");
  ASSERT_TRUE(sub2.Connect());
  ASSERT_TRUE(sub2.Subscribe("drop/#", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  PahoClient pub(N(1).port(), "pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  constexpr int kCount = 5000;
  std::atomic<bool> acked{false};
  std::thread publisher(
      [&] { acked = static_cast<bool>(pub.PublishBurst("drop/t", kCount, 1, seconds(120))); });
  // ferry2 freezes (SIGSTOP) past peer_down_after: ferry1 hears nothing and
  // closes the link with what it had sent and not heard back about. When
  // ferry2 thaws the link comes back, those go again, and ferry2 routes
  // none of them twice.
  ASSERT_TRUE(WaitFor([&] { return sub2.Pending() > 100; }, seconds(30), "ferry2 receiving"));
  ASSERT_TRUE(N(2).Signal(SIGSTOP));
  EXPECT_TRUE(WaitFor([&] { return N(1).LogSinceStart().find("no heartbeat from '" + Name(2) + "'") !=
                                   std::string::npos; },
                      seconds(10), "ferry1 closing the silent link"));
  ASSERT_TRUE(N(2).Signal(SIGCONT));
  publisher.join();
  EXPECT_TRUE(acked);
  EXPECT_TRUE(ReceivesInOrder(sub2, kCount, "ferry2"));
  EXPECT_EQ(Metric(N(1), "ferry_cluster_forward_dropped_total{node=\"" + Name(2) + "\"}"), 0u);
  // Some went twice on the wire (the frozen peer had not acknowledged them).
  EXPECT_GT(Metric(N(1), "ferry_cluster_forwarded_out_total{node=\"" + Name(2) + "\"}"),
            static_cast<uint64_t>(kCount));
}

TEST_F(ClusterForward, ASharedGroupSpreadOverThreeNodesGetsEachMessageOnce) {
  ThreeJoined();
  // Two members on ferry2, one on ferry3, none on ferry1 where the
  // publisher is; and a $queue group with a member on ferry2 only.
  MosqClient a(N(2).port(), "a"), b(N(2).port(), "b"), c(N(3).port(), "c");
  for (MosqClient* m : {&a, &b, &c}) {
    ASSERT_TRUE(m->Connect());
    ASSERT_TRUE(m->Subscribe("$share/workers/jobs/#", 1));
  }
  MosqClient q(N(2).port(), "q");
  ASSERT_TRUE(q.Connect());
  ASSERT_TRUE(q.Subscribe("$queue/jobs/#", 1));
  ASSERT_TRUE(RoutesKnown(2, 2));
  ASSERT_TRUE(RoutesKnown(3, 1));

  PahoClient pub(N(1).port(), "pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  constexpr int kCount = 300;
  ASSERT_TRUE(pub.PublishBurst("jobs/x", kCount, 1, seconds(60)));
  std::vector<int> seen(kCount, 0);
  auto drain = [&](MosqClient& m) {
    int got = 0;
    while (auto msg = m.Receive(std::chrono::milliseconds(500))) {
      ++seen.at(std::stoi(msg->payload));
      ++got;
    }
    return got;
  };
  const int on_a = drain(a), on_b = drain(b), on_c = drain(c);
  EXPECT_EQ(on_a + on_b + on_c, kCount);
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(seen[i], 1) << "message " << i;
  // In proportion to the members each node has: ferry2 twice ferry3's share.
  EXPECT_NEAR(on_a + on_b, 2 * kCount / 3, kCount / 10);
  EXPECT_GT(on_a, 0);
  EXPECT_GT(on_b, 0);
  // The $queue group's one member has every message, once.
  std::vector<int> queued(kCount, 0);
  while (auto msg = q.Receive(std::chrono::milliseconds(500))) ++queued.at(std::stoi(msg->payload));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(queued[i], 1) << "queued message " << i;

  // A member on the publisher's node takes them all from then on.
  MosqClient local(N(1).port(), "local");
  ASSERT_TRUE(local.Connect());
  ASSERT_TRUE(local.Subscribe("$share/workers/jobs/#", 1));
  ASSERT_TRUE(pub.Publish("jobs/y", "0", 1));
  auto m = local.Receive(seconds(10));
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(a.Receive(std::chrono::milliseconds(300)).has_value());
  EXPECT_FALSE(c.Receive(std::chrono::milliseconds(100)).has_value());
}

TEST_F(ClusterForward, ANodeThatLeavesAndJoinsAgainGetsEverythingAfterwards) {
  Joined(2);
  MosqClient sub(N(2).port(), "sub");
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("again/#", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  PahoClient pub(N(1).port(), "pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.PublishBurst("again/t", 200, 1, seconds(60)));
  ASSERT_TRUE(ReceivesInOrder(sub, 200, "ferry2, before"));
  // Out and in again, both processes still running: the numbering of the
  // forwards goes on where it was, so ferry2 takes none for a duplicate.
  ASSERT_TRUE(Ctl(N(2), {"cluster", "leave"}).Succeeded());
  CommandResult j = Ctl(N(2), {"cluster", "join", Target(N(1))});
  ASSERT_TRUE(j.Succeeded()) << j.ToString();
  ASSERT_TRUE(RoutesKnown(2, 1));
  ASSERT_TRUE(pub.PublishBurst("again/t", 200, 1, seconds(60)));
  EXPECT_TRUE(ReceivesInOrder(sub, 200, "ferry2, after"));
}

TEST_F(ClusterForward, MosquittoPubOnOneNodeReachesMosquittoSubOnTwoOthers) {
  ThreeJoined();
  // The command-line tools, as a user would try them: -d prints the SUBACK.
  std::vector<std::unique_ptr<RunningCommand>> subs;
  for (int i : {2, 3}) {
    subs.push_back(StartCommand({"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p",
                                 std::to_string(N(i).port()), "-i", "cli-sub-" + std::to_string(i),
                                 "-t", "cli/#", "-q", "2", "-C", "3", "-v", "-d"}));
    ASSERT_NE(subs.back(), nullptr);
    ASSERT_TRUE(subs.back()->WaitForOutput("Subscribed (mid:"));
  }
  ASSERT_TRUE(RoutesKnown(2, 1));
  ASSERT_TRUE(RoutesKnown(3, 1));
  for (int qos = 0; qos <= 2; ++qos) {
    const CommandResult pub = RunCommand(
        {"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(N(1).port()), "-i", "cli-pub",
         "-t", "cli/q" + std::to_string(qos), "-q", std::to_string(qos), "-m",
         "from ferry1 at qos " + std::to_string(qos)});
    ASSERT_TRUE(pub.Succeeded()) << pub.ToString();
  }
  for (auto& sub : subs) {
    const CommandResult got = sub->Wait();
    ASSERT_TRUE(got.Succeeded()) << got.ToString();
    for (int qos = 0; qos <= 2; ++qos) {
      const std::string line = "\ncli/q" + std::to_string(qos) + " from ferry1 at qos " +
                               std::to_string(qos) + "\n";
      EXPECT_NE(got.out.find(line), std::string::npos) << got.ToString();
    }
  }
}

}  // namespace
}  // namespace ferry::testing

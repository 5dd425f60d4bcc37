// Real ferryd nodes on loopback made into a cluster with ferryctl, for the
// cluster's integration tests: nodes ferry<i>@127.0.0.1 with one cookie,
// each with its cluster port on 127.0.0.1:0.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ctl.h"
#include "node_process.h"
#include "ports.h"
#include "wait.h"

namespace ferry::testing {

// Takes `count` messages from `client` and checks that their payloads are
// "0" .. "count-1", each once and in order (Paho's PublishBurst numbering).
template <typename Client>
inline ::testing::AssertionResult ReceivesInOrder(Client& client, int count, const std::string& who) {
  for (int i = 0; i < count; ++i) {
    auto m = client.Receive(std::chrono::seconds(30));
    if (!m) return ::testing::AssertionFailure() << who << ": message " << i << " never came";
    if (m->payload != std::to_string(i)) {
      return ::testing::AssertionFailure()
             << who << ": message " << i << " is '" << m->payload << "' (lost or out of order)";
    }
  }
  if (auto extra = client.Receive(std::chrono::milliseconds(300))) {
    return ::testing::AssertionFailure() << who << ": a duplicate '" << extra->payload << "'";
  }
  return ::testing::AssertionSuccess();
}

class ClusterFixture : public ::testing::Test {
 protected:
  static std::string Name(int i) { return "ferry" + std::to_string(i) + "@127.0.0.1"; }

  // Node i (1-based) with `cookie` ("" for none), its cluster port on
  // 127.0.0.1:0; `extra` is appended to its config.
  NodeProcess& Add(int i, const std::string& cookie = "s3cret", const std::string& extra = "") {
    return AddNamed(Name(i), cookie, "[cluster]\nlisten = 127.0.0.1:0\n" + extra);
  }
  // A node named `name` with `config` (INI text) and `cookie`, started.
  NodeProcess& AddNamed(const std::string& name, const std::string& cookie,
                        const std::string& config,
                        const std::vector<std::string>& wrapper = {}) {
    NodeOptions o;
    o.name = name;
    o.extra_config = config;
    o.wrapper = wrapper;
    if (!cookie.empty()) o.overrides.emplace_back("node", "cookie", cookie);
    nodes_.push_back(std::make_unique<NodeProcess>(o));
    EXPECT_TRUE(nodes_.back()->Start());
    return *nodes_.back();
  }
  // Waits until every node's status lists exactly `names` as running.
  ::testing::AssertionResult AllTogether(const std::vector<std::string>& names,
                                         std::chrono::seconds timeout = std::chrono::seconds(40)) {
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    for (auto& n : nodes_) {
      if (!n->Running()) continue;
      if (auto ok = StatusIs(*n, StatusLine(sorted), timeout); !ok) return ok;
    }
    return ::testing::AssertionSuccess();
  }
  static std::string Target(const NodeProcess& n) {
    return n.name() + ":" + std::to_string(n.port("cluster"));
  }
  static CommandResult Ctl(const NodeProcess& n, std::vector<std::string> args) {
    return Ferryctl(n, args);
  }
  static std::string StatusLine(const std::vector<std::string>& running,
                                const std::vector<std::string>& stopped = {}) {
    auto list = [](const std::vector<std::string>& names) {
      std::string out;
      for (const auto& n : names) out += (out.empty() ? "'" : ",'") + n + "'";
      return "[" + out + "]";
    };
    std::string line = "Cluster status: [{running_nodes," + list(running) + "}";
    if (!stopped.empty()) line += ",{stopped_nodes," + list(stopped) + "}";
    return line + "]\n";
  }
  static ::testing::AssertionResult StatusIs(
      const NodeProcess& n, const std::string& want,
      std::chrono::seconds timeout = std::chrono::seconds(15)) {
    std::string got;
    auto ok = WaitFor(
        [&] {
          got = Ctl(n, {"cluster", "status"}).out;
          return got == want;
        },
        timeout, "cluster status on " + n.name());
    if (!ok) return ok << "; last: " << got << "; wanted: " << want;
    return ok;
  }
  // Nodes 1..count started and joined (each through the previous one, so
  // that all but the second are redirected to the coordinator).
  void Joined(int count, const std::string& extra = "") {
    std::vector<std::string> names;
    for (int i = 1; i <= count; ++i) {
      NodeProcess& n = Add(i, "s3cret", extra);
      names.push_back(Name(i));
      if (i == 1) continue;
      CommandResult j = Ctl(n, {"cluster", "join", Target(N(i - 1))});
      ASSERT_TRUE(j.Succeeded()) << j.ToString();
      EXPECT_EQ(j.out, "Join the cluster successfully.\n" + StatusLine(names));
    }
    for (auto& n : nodes_) ASSERT_TRUE(StatusIs(*n, StatusLine(names)));
  }
  void ThreeJoined() { Joined(3); }
  NodeProcess& N(int i) { return *nodes_.at(i - 1); }

  // A number of `cluster nodes` on node `at` for member `owner` ("routes",
  // "sessions", ...); -1 if unknown.
  static int64_t MemberField(const NodeProcess& at, const std::string& owner,
                             const std::string& field) {
    auto j = ParseJson(Ctl(at, {"cluster", "nodes", "--json"}).out);
    if (!j) return -1;
    for (const auto& row : *j) {
      if (row["node"] == owner && row.contains(field)) return row[field].get<int64_t>();
    }
    return -1;
  }
  static int64_t RoutesOf(const NodeProcess& at, const std::string& owner) {
    return MemberField(at, owner, "routes");
  }
  // Waits until every other node knows that node `owner` has `routes` routes.
  ::testing::AssertionResult RoutesKnown(int owner, int64_t routes) {
    return RoutesKnown(Name(owner), routes);
  }
  ::testing::AssertionResult RoutesKnown(const std::string& owner, int64_t routes) {
    for (auto& n : nodes_) {
      if (n->name() == owner || !n->Running()) continue;
      auto ok = WaitFor([&] { return RoutesOf(*n, owner) == routes; }, std::chrono::seconds(10),
                        owner + "'s routes on " + n->name());
      if (!ok) return ok;
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

}  // namespace ferry::testing

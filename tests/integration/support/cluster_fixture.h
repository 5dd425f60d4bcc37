// Real ferryd nodes on loopback made into a cluster with ferryctl, for the
// cluster's integration tests: nodes ferry<i>@127.0.0.1 with one cookie,
// each with its cluster port on 127.0.0.1:0.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ctl.h"
#include "node_process.h"
#include "wait.h"

namespace ferry::testing {

// `n` distinct free ports of `host` (held open together while they are
// picked, so that they differ), for a node that must know them before it
// starts (static discovery). They are taken from below the kernel's
// ephemeral range (ip_local_port_range), where the outgoing connections of
// tests running side by side do not land between the pick and the bind.
inline std::vector<uint16_t> FreePorts(int n, const char* host = "127.0.0.1") {
  unsigned low = 32768;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u", &low) != 1) low = 32768;
    std::fclose(f);
  }
  const unsigned first = 10000;
  const unsigned span = low > first + 1000 ? low - first : 20000;
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  unsigned seed = static_cast<unsigned>(::getpid()) * 2654435761u ^
                  static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int tries = 0; static_cast<int>(ports.size()) < n && tries < 1000; ++tries) {
    seed = seed * 1103515245u + 12345u;
    const uint16_t port = static_cast<uint16_t>(first + (seed >> 8) % span);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host, &a.sin_addr);
    a.sin_port = htons(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      continue;
    }
    ports.push_back(port);
    fds.push_back(fd);
  }
  for (int fd : fds) close(fd);
  return ports;
}

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

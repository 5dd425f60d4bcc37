// A real HAProxy (Debian's) on loopback in front of ferry nodes, for the
// tests of deployments behind a load balancer.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"

namespace ferry::testing {

// One server of one HAProxy backend as its stats socket reports it.
struct HaproxyServer {
  std::string status;        // "UP", "DOWN", ...
  std::string check_status;  // "L7OK", "L7STS" (unexpected HTTP status), "L4CON" ...
  std::string check_code;    // the HTTP status of the last check, for L7 checks
};

// A ferry node behind HAProxy: its PROXY protocol listener's port and its
// admin HTTP port (health checks).
struct HaproxyBackendServer {
  std::string name;
  uint16_t port = 0;
  uint16_t check_port = 0;
};

class Haproxy {
 public:
  explicit Haproxy(std::string dir) : dir_(std::move(dir)) {}
  ~Haproxy() { Stop(); }

  // Picks `frontends` free loopback ports and starts `haproxy -db` with
  // what `config` makes of them (its stats socket is stats_socket()); tries
  // again with other ports if one was taken before HAProxy bound it.
  ::testing::AssertionResult Start(
      int frontends, const std::function<std::string(const std::vector<uint16_t>&)>& config);
  void Stop();
  // Start(1, TcpBalancerConfig of the one frontend and `servers`), then
  // waits until every server passed its health check.
  ::testing::AssertionResult StartBalancer(const std::vector<HaproxyBackendServer>& servers);
  // After Stop: starts it again with the same config and ports (a link
  // that was cut comes back). Fails if a port was taken meanwhile.
  ::testing::AssertionResult Resume();

  // The frontend ports of the running HAProxy, in the order `config` got them.
  const std::vector<uint16_t>& ports() const { return ports_; }
  std::string stats_socket() const { return dir_ + "/haproxy.sock"; }
  // "global" lines every config needs: the stats socket the tests read.
  std::string GlobalSection() const;
  // A whole config: one TCP frontend on 127.0.0.1:`port` in front of
  // `servers`, balanced by `balance`, each sent a PROXY v2 header and
  // checked with GET /api/v1/health every 300 ms (out after one failure).
  std::string TcpBalancerConfig(uint16_t port, const std::vector<HaproxyBackendServer>& servers,
                                const std::string& balance = "roundrobin") const;
  // Every server of every backend, by {backend, server}, from `show stat`.
  std::map<std::pair<std::string, std::string>, HaproxyServer> Servers() const;
  // True once `count` servers are listed, each UP after a passed L7 check.
  bool AllServersUp(size_t count) const;

 private:
  std::string dir_;
  std::vector<uint16_t> ports_;
  std::unique_ptr<RunningCommand> process_;
};

}  // namespace ferry::testing

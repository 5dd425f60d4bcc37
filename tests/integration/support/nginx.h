// A real NGINX (Debian's, with libnginx-mod-stream) on loopback in front of
// ferry nodes: the stream module ends TLS and passes each connection on with
// a PROXY protocol header, as etc/examples/edge-central/nginx.conf does.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "subprocess.h"

namespace ferry::testing {

class Nginx {
 public:
  explicit Nginx(std::string dir) : dir_(std::move(dir)) {}
  ~Nginx() { Stop(); }

  // Listens with TLS (`cert`, `key`) on a free loopback port and spreads
  // connections over `servers` (loopback ports of PROXY protocol listeners)
  // by `hash $remote_addr consistent`, a server being skipped for 2 s after
  // it refused a connection. Waits until it accepts connections.
  ::testing::AssertionResult Start(const std::vector<uint16_t>& servers, const std::string& cert,
                                   const std::string& key);
  void Stop();
  uint16_t port() const { return port_; }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<RunningCommand> process_;
};

}  // namespace ferry::testing

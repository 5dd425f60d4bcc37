// Debian's mosquitto broker (/usr/sbin/mosquitto) for interoperability
// tests: started on a free loopback port with a config the test writes,
// stopped (SIGTERM, then SIGKILL) when the object goes. On a failed test its
// log is printed.
//
//   MosquittoProcess mosq;
//   ASSERT_TRUE(mosq.Start({"connection to-ferry", "address 127.0.0.1:1883", ...}));
//   mosq.port();
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "subprocess.h"
#include "temp_dir.h"

namespace ferry::testing {

class MosquittoProcess {
 public:
  MosquittoProcess();
  ~MosquittoProcess();
  MosquittoProcess(const MosquittoProcess&) = delete;
  MosquittoProcess& operator=(const MosquittoProcess&) = delete;

  // Writes mosquitto.conf: a listener on 127.0.0.1:port() (with
  // `listener_lines` under it, e.g. TLS files), anonymous access, no
  // persistence, logging to a file, then `lines`; starts mosquitto and waits
  // until it accepts connections.
  ::testing::AssertionResult Start(const std::vector<std::string>& lines = {},
                                   const std::vector<std::string>& listener_lines = {});
  void Stop();

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const TempDir& dir() const { return dir_; }
  std::string Log() const;

 private:
  TempDir dir_;
  uint16_t port_ = 0;
  ChildProcess child_;
};

// Makes a CA and a server certificate for 127.0.0.1 and localhost, signed
// by it, with the openssl command line tool, in `dir`: ca.crt, server.crt,
// server.key.
::testing::AssertionResult MakeTestCertificates(const std::string& dir);

}  // namespace ferry::testing

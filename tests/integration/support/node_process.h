// A real ferryd process for an integration test, after start_broker() in
// eclipse/mosquitto test/mosq_test.py and redis tests/support/server.tcl.
//
// NodeProcess writes a config into a fresh temporary directory (the base
// config below, then the test's INI text and single-key overrides), starts the
// ferryd binary with `-c <dir>/ferry.conf`, stdout and stderr appended to
// <dir>/ferryd.log, and waits for the ready line
//   <time> INFO ready node=test@127.0.0.1 tcp.default=127.0.0.1:40313
// that ferryd logs once every listener is bound. Listeners bind port 0, so
// tests can run in parallel; port("tcp.default") says what was bound.
//
// Base config, with <dir> the temporary directory:
//   [node]  name = test@127.0.0.1, data_dir = <dir>/data, workers = 2
//   [log]   level = debug
//   [listener.tcp.default]  bind = 127.0.0.1:0
//   [mqtt]  allow_anonymous = true
//   [sys]   interval = 0
//   [admin] http_bind = 127.0.0.1:0   (the socket is <dir>/data/ferry.sock)
//
// A NodeProcess destroyed while ferryd runs kills it; one whose ferryd exited
// on its own (a crash) records a test failure. If the test has failed by the
// time the NodeProcess is destroyed, ferryd's log is printed (dump_server_log in redis
// tests/support/server.tcl) and the directory is kept.
//
// Typical use:
//   NodeProcess node;
//   ASSERT_TRUE(node.Start());
//   PahoClient client(node.port("tcp.default"), "c1", MqttVersion::kV5);
//   ...
//   EXPECT_TRUE(node.Stop());
//
// Thread: the test's main thread (see subprocess.h on PR_SET_PDEATHSIG).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "ini_config.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace ferry::testing {

// Path of the ferryd binary under test (the FERRY_BINARY compile definition).
std::string FerryBinary();

struct NodeOptions {
  std::string name = "test@127.0.0.1";
  // INI text merged over the base config (see IniConfig::Merge).
  std::string extra_config;
  // Single keys set after extra_config: {section, key, value}.
  std::vector<std::tuple<std::string, std::string, std::string>> overrides;
  // Environment of the ferryd process, e.g. {"FERRY_MQTT__MAX_PACKET_SIZE",
  // "1024"}. Inherited FERRY_* variables are always removed first.
  std::vector<std::pair<std::string, std::string>> env;
  // Extra command-line arguments after `-c FILE`.
  std::vector<std::string> args;
  // A command that runs ferryd in its place by exec, keeping the PID, e.g.
  // {"ip", "netns", "exec", "ns1"}.
  std::vector<std::string> wrapper;
  // ferryd's RLIMIT_NOFILE, soft and hard (0: the test's own), so that a
  // test reaches the descriptor limit with a few hundred sockets. If the
  // kernel refuses it, Start() skips the test (see SpawnOptions::fd_limit).
  uint64_t fd_limit = 0;
  std::chrono::milliseconds ready_timeout{10000};
  std::chrono::milliseconds stop_timeout{10000};
};

// A bound listener as the ready line reported it.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

class NodeProcess {
 public:
  // Which ports Restart() binds.
  enum class Ports { kFresh, kSame };

  explicit NodeProcess(NodeOptions options = {});
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Writes config() to config_path() and starts ferryd, waiting up to
  // ready_timeout for the ready line. Fails, with the log, if the config is
  // bad, ferryd exits, or the deadline passes (the process is killed then).
  ::testing::AssertionResult Start();

  // SIGTERM, then waits up to stop_timeout for exit code 0. Fails, with the
  // log, on any other exit or on timeout (then the process is killed). If
  // ferryd is not running: succeeds when the test ended it (Stop, Kill), and
  // fails when it exited on its own since Start() or was never started.
  ::testing::AssertionResult Stop();

  // SIGKILL and reap. No-op if not running.
  void Kill();

  // Stops (gracefully) if running, then starts again with the same data dir
  // and config. With Ports::kSame every listener is rebound to the port it
  // had (see PinPorts()).
  ::testing::AssertionResult Restart(Ports ports = Ports::kFresh);

  // Rewrites the bind of every listener in the last ready line (the admin
  // HTTP API's too) to the port it was bound to, so the next Start() reuses it. (Another process could take
  // the port while ferryd is down; Start() then fails and says so.)
  void PinPorts();

  // Sends `signo` (e.g. SIGHUP) to this ferryd only. False if not running.
  bool Signal(int signo);

  bool Running();
  // How the last run ended, once it has ended.
  const std::optional<ExitStatus>& exit_status() const { return child_.exit_status(); }

  // Port of listener `name` ("tcp.default") from the ready line; 0 (and a
  // test failure) if the ready line named no such listener.
  uint16_t port(std::string_view listener = "tcp.default") const;
  const std::map<std::string, Endpoint>& endpoints() const { return endpoints_; }

  // Everything ferryd has logged, over all runs.
  std::string Log() const;
  // What it has logged since the last Start().
  std::string LogSinceStart() const;
  // Waits until the log since the last Start() contains `needle`.
  ::testing::AssertionResult WaitForLog(std::string_view needle,
                                        std::chrono::milliseconds timeout = kDefaultTimeout) const;

  // The config the next Start() writes: the base config with the options
  // applied. Change it before Start() or Restart().
  IniConfig& config() { return config_; }
  const NodeOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return dir_.File("data"); }
  std::string config_path() const { return dir_.File("ferry.conf"); }
  std::string log_path() const { return dir_.File("ferryd.log"); }
  // The admin socket (unless the test set [admin] socket) and HTTP API port
  // (the ready line's admin.http; 0 and a failure if there was none).
  std::string admin_socket() const { return data_dir() + "/ferry.sock"; }
  uint16_t admin_http_port() const { return port("admin.http"); }

 private:
  ::testing::AssertionResult WaitReady();
  ::testing::AssertionResult ParseReadyLine(std::string_view line);
  ::testing::AssertionResult FailWithLog(std::string_view what);

  NodeOptions options_;
  TempDir dir_;
  IniConfig config_;
  std::string config_error_;  // set if extra_config could not be merged
  ChildProcess child_;
  bool started_ = false;        // Start() has launched ferryd at least once
  bool expected_exit_ = false;  // the test ended this run (Stop, Kill)
  size_t log_offset_ = 0;
  std::map<std::string, Endpoint> endpoints_;
  // The part of the log already shown in a failure message.
  size_t reported_begin_ = 0;
  size_t reported_end_ = 0;
};

}  // namespace ferry::testing

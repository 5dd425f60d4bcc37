// The HTTP admin API refuses non-loopback peers without the bearer token.
//
// A non-loopback peer without leaving the machine: the test moves itself into
// a network namespace of its own (unshare(CLONE_NEWNET), which needs root),
// gives that namespace's loopback interface the address 192.0.2.1 (TEST-NET-1,
// RFC 5737) and talks to ferryd from it. The packets never leave the
// namespace, but the peer address ferryd sees is 192.0.2.1, not loopback.
// Each test runs in its own process under ctest, so the namespace ends with it.
#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "support/ctl.h"
#include "support/node_process.h"
#include "support/subprocess.h"

namespace ferry::testing {
namespace {

constexpr const char* kAddress = "192.0.2.1";

class AdminNonLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    if (unshare(CLONE_NEWNET) != 0) {
      GTEST_SKIP() << "cannot create a network namespace here (" << std::strerror(errno)
                   << "); IsLoopbackAddress is covered by the ctl unit tests";
    }
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{"ip", "link", "set", "lo", "up"},
          std::vector<std::string>{"ip", "addr", "add", std::string(kAddress) + "/32", "dev", "lo"}}) {
      CommandResult r = RunCommand(cmd);
      ASSERT_TRUE(r.Succeeded()) << r.ToString();
    }
    node_.config().Set("admin", "http_bind", std::string(kAddress) + ":0");
  }
  void TearDown() override {
    if (!HasFatalFailure() && !IsSkipped() && node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  std::string Url() { return "http://" + std::string(kAddress) + ":" + std::to_string(node_.admin_http_port()); }

  NodeProcess node_;
};

TEST_F(AdminNonLoopback, RefusedWithoutTokenServedWithIt) {
  node_.config().Set("admin", "http_token", "t0ken");
  ASSERT_TRUE(node_.Start());
  CommandResult r = FerryctlRaw({"--url", Url(), "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: a bearer token is required from non-loopback peers\n");
  r = FerryctlRaw({"--url", Url(), "--token", "nope", "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: bad token\n");
  r = FerryctlRaw({"--url", Url(), "--token", "t0ken", "clients", "list", "--json"});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "[]\n");

  HttpReply h = Http("GET", node_.admin_http_port(), "/metrics", "", kAddress);
  EXPECT_EQ(h.status, 401) << h.error;
  h = Http("GET", node_.admin_http_port(), "/metrics", "Authorization: Bearer t0ken\r\n", kAddress);
  EXPECT_EQ(h.status, 200) << h.error;
  // Load balancers need no token for the health check.
  h = Http("GET", node_.admin_http_port(), "/api/v1/health", "", kAddress);
  EXPECT_EQ(h.status, 200) << h.error;
}

TEST_F(AdminNonLoopback, RefusedWhenNoTokenIsConfigured) {
  ASSERT_TRUE(node_.Start());
  CommandResult r = FerryctlRaw({"--url", Url(), "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
  EXPECT_EQ(r.err,
            "ferryctl: admin API refused to non-loopback peers: no [admin] http_token is set\n");
  r = FerryctlRaw({"--url", Url(), "--token", "anything", "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
}

}  // namespace
}  // namespace ferry::testing

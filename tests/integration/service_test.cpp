// ferryd as a systemd service (systemd/ferryd.service, Type=notify): it
// tells systemd READY=1 once every listener is bound, and STOPPING=1 when it
// starts to shut down. The test plays systemd's notification socket.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "support/connect_helpers.h"
#include "support/node_process.h"
#include "support/temp_dir.h"

namespace ferry::testing {
namespace {

// A datagram socket bound to a path, as systemd's NOTIFY_SOCKET is.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path_.copy(a.sun_path, sizeof a.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ADD_FAILURE() << "cannot bind " << path_;
    }
  }
  ~NotifySocket() { ::close(fd_); }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> Receive(std::chrono::milliseconds timeout = kDefaultTimeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[512];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(Service, NotifiesReadyOnceBoundAndStoppingOnTerm) {
  TempDir dir;
  NotifySocket notify(dir.File("notify"));
  NodeOptions o;
  o.env = {{"NOTIFY_SOCKET", dir.File("notify")}};
  o.extra_config = "[listener.ws.web]\nbind = 127.0.0.1:0\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.Start());
  std::optional<std::string> ready = notify.Receive();
  ASSERT_TRUE(ready) << "no READY=1 from ferryd";
  EXPECT_EQ(*ready, "READY=1");
  // Ready means every listener accepts.
  EXPECT_TRUE(NodeServesNewClients(node.port()));
  ASSERT_TRUE(node.Stop());
  std::optional<std::string> stopping = notify.Receive();
  ASSERT_TRUE(stopping);
  EXPECT_EQ(*stopping, "STOPPING=1");
}

}  // namespace
}  // namespace ferry::testing

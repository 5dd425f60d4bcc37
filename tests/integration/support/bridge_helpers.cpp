#include "bridge_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mqtt_wire.h"
#include "session_helpers.h"
#include "wait.h"

namespace ferry::testing {

namespace {

// A socket bound to 127.0.0.1:port; *port gets the port bound.
int BindLoopback(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(*port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

std::string BridgeSection(const std::string& name, const std::string& address,
                          const std::vector<std::string>& lines) {
  std::string s = "[bridge." + name + "]\naddress = " + address + "\n";
  bool min = false, max = false;
  for (const std::string& l : lines) {
    s += l + "\n";
    min = min || l.rfind("reconnect_min", 0) == 0;
    max = max || l.rfind("reconnect_max", 0) == 0;
  }
  if (!min) s += "reconnect_min = 100ms\n";
  if (!max) s += "reconnect_max = 500ms\n";
  return s;
}

NodeOptions BridgeTestNode(const std::string& name, const std::string& extra) {
  NodeOptions o;
  o.name = name + "@127.0.0.1";
  o.extra_config = "[log]\nlevel = info\n" + extra;
  return o;
}

::testing::AssertionResult PublishQos1(uint16_t port, MqttVersion v, const std::string& topic,
                                       const std::string& payload, bool retain) {
  RawClient pub;
  if (auto r = ConnectRaw(pub, port, Clean(v, "pub-" + topic)); !r) return r;
  wire::PublishFields f{topic, payload, 1, retain, false, 1, {}};
  if (auto r = pub.Send(wire::Publish(v, f)); !r) return r;
  return ExpectPacket(pub, wire::kPuback);
}

std::string AddressOf(const NodeProcess& node) {
  return "127.0.0.1:" + std::to_string(node.port("tcp.default"));
}

std::optional<Json> BridgeShow(const NodeProcess& node, const std::string& name, std::string* why) {
  CommandResult r = Ferryctl(node, {"bridges", "show", name, "--json"});
  if (!r.Succeeded()) {
    if (why) *why = r.ToString();
    return std::nullopt;
  }
  auto j = ParseJson(r.out);
  if (!j && why) *why = "not JSON: " + r.out;
  return j;
}

::testing::AssertionResult WaitBridge(const NodeProcess& node, const std::string& name,
                                      const std::function<bool(const Json&)>& pred,
                                      const std::string& what, std::chrono::milliseconds timeout) {
  std::string last;
  if (WaitFor(
          [&] {
            std::string why;
            auto j = BridgeShow(node, name, &why);
            last = j ? j->dump() : why;
            return j && pred(*j);
          },
          timeout, what)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "bridge " << name << ": timed out after "
                                       << timeout.count() << " ms waiting for " << what
                                       << "; last seen: " << last;
}

::testing::AssertionResult WaitBridgeState(const NodeProcess& node, const std::string& name,
                                           const std::string& state,
                                           std::chrono::milliseconds timeout) {
  return WaitBridge(
      node, name, [&](const Json& j) { return j.value("state", "") == state; },
      "state " + state, timeout);
}

RefusingPort::RefusingPort() {
  fd_ = BindLoopback(&port_);
  EXPECT_GE(fd_, 0) << "cannot bind a loopback port: " << std::strerror(errno);
}

RefusingPort::~RefusingPort() { Release(); }

void RefusingPort::Release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

::testing::AssertionResult StartOnPort(NodeProcess& up, RefusingPort& port, const std::string& id,
                                       const std::string& filter, int qos) {
  if (auto r = up.Start(); !r) return r;
  if (auto r = OfflineSubscriber(up, id, filter, qos); !r) return r;
  if (auto r = up.Stop(); !r) return r;
  port.Release();
  up.config().Set("listener.tcp.default", "bind", "127.0.0.1:" + std::to_string(port.port()));
  return up.Start();
}

FakeUpstream::FakeUpstream(uint16_t port) {
  port_ = port;
  fd_ = BindLoopback(&port_);
  EXPECT_GE(fd_, 0) << "cannot bind 127.0.0.1:" << port << ": " << std::strerror(errno);
  if (fd_ >= 0) {
    EXPECT_EQ(listen(fd_, 16), 0);
  }
}

FakeUpstream::~FakeUpstream() {
  if (fd_ >= 0) close(fd_);
}

::testing::AssertionResult FakeUpstream::Accept(RawClient* client,
                                                std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  int r = poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) {
    return ::testing::AssertionFailure() << "no connection to the fake upstream within "
                                         << timeout.count() << " ms";
  }
  int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return ::testing::AssertionFailure() << "accept: " << std::strerror(errno);
  client->Adopt(fd);
  return ::testing::AssertionSuccess();
}

}  // namespace ferry::testing

// The admin server's connection slots (issue 9, point 7): idle connections
// give their slot up, answered ones hold none, and /api/v1/health answers
// even when every slot is busy. The server runs on a loop thread of its own;
// the test speaks HTTP over blocking loopback sockets, every read bounded.
#include "ctl/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ferry::ctl {
namespace {

using core::AdminCommand;
using core::AdminDone;
using core::AdminRequest;

constexpr int kWaitMs = 5000;

// A blocking client socket.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void Send(const std::string& s) {
    ASSERT_EQ(send(fd_, s.data(), s.size(), 0), ssize_t(s.size()));
  }
  void Get(const std::string& path) { Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"); }
  // Reads until the server closes (or the wait ends): the whole answer.
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, kWaitMs) != 1) break;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True once the server has closed its socket, not merely shut its side
  // down after an answer (which Closed() cannot tell apart): a byte sent to
  // a closed socket draws a reset.
  bool Gone(int wait_ms = kWaitMs) {
    (void)send(fd_, "x", 1, MSG_NOSIGNAL);
    for (int waited = 0; waited < wait_ms; waited += 10) {
      tcp_info info{};
      socklen_t len = sizeof info;
      if (getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
          info.tcpi_state == TCP_CLOSE) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Reads until `n` bytes came or the wait ends.
  std::string Read(size_t n) {
    std::string out;
    char buf[4096];
    while (out.size() < n) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, kWaitMs) != 1) break;
      ssize_t r = recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  // True once the server has closed the connection (what it sent before
  // is read and dropped); false if it is still open after `wait_ms`.
  bool Closed(int wait_ms = kWaitMs) {
    char buf[4096];
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, wait_ms) != 1) return false;
      if (recv(fd_, buf, sizeof buf, 0) <= 0) return true;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class AdminServerSlots : public ::testing::Test {
 protected:
  void SetUp() override {
    // "hold" answers only when the test says so: its connection stays busy.
    AdminCommand hold;
    hold.path = "hold";
    hold.summary = "keeps the connection busy";
    hold.handler = [this](const AdminRequest&, AdminDone done) {
      held_.push_back(std::move(done));
      ++holding_;
    };
    ASSERT_TRUE(registry_.Register(std::move(hold)).ok());
    std::promise<uint16_t> port;
    auto bound = port.get_future();
    thread_ = std::thread([this, &port] {
      loop_.BindToCurrentThread();
      AdminServerOptions o;
      o.http_enabled = true;
      o.http_host = "127.0.0.1";
      o.http_port = 0;
      o.max_connections = 4;
      o.idle_timeout = std::chrono::seconds(60);
      o.health = [] {
        HealthReport r;
        r.accepting_connections = true;
        return r;
      };
      auto server = AdminServer::Start(loop_, registry_, std::move(o));
      if (!server.ok()) {
        port.set_value(0);
        return;
      }
      server_ = std::move(server).value();
      const std::string address = server_->http_address();
      port.set_value(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
      loop_.Run();
    });
    port_ = bound.get();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    Resume();
    loop_.Post([this] {
      held_.clear();
      server_.reset();
      loop_.Stop();
    });
    thread_.join();
  }

  // Status code of one GET on a fresh connection.
  int Status(const std::string& path, std::string* body = nullptr) {
    Client c(port_);
    EXPECT_TRUE(c.connected());
    c.Get(path);
    std::string answer = c.ReadAll();
    if (body != nullptr) *body = answer;
    if (answer.rfind("HTTP/1.1 ", 0) != 0) return 0;
    return std::stoi(answer.substr(9, 3));
  }

  // Holds the loop thread until Resume(): connections made meanwhile wait
  // in the kernel's accept queue and are accepted in one burst.
  void Pause() {
    auto paused = std::make_shared<std::promise<void>>();
    auto running = paused->get_future();
    loop_.Post([paused, resumed = resume_.get_future().share()] {
      paused->set_value();
      resumed.wait();
    });
    running.wait();
    paused_ = true;
  }
  void Resume() {
    if (paused_) resume_.set_value();
    paused_ = false;
  }

  bool WaitHolding(int n) {
    for (int i = 0; i < kWaitMs / 10; ++i) {
      if (holding_.load() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  core::Loop loop_;
  core::AdminRegistry registry_{loop_};
  std::unique_ptr<AdminServer> server_;  // loop thread
  std::vector<AdminDone> held_;          // loop thread
  std::atomic<int> holding_{0};
  std::promise<void> resume_;
  bool paused_ = false;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(AdminServerSlots, IdleConnectionsGiveTheirSlotToANewOne) {
  // Six idle connections for four slots, accepted in one burst: the fifth
  // and the sixth each close one of the oldest (not twice the same, which
  // is still closing when the sixth comes).
  Pause();
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 6; ++i) idle.push_back(std::make_unique<Client>(port_));
  Resume();
  EXPECT_TRUE(idle[0]->Closed());
  EXPECT_TRUE(idle[1]->Closed());
  // Every slot is taken again: the first health check closes the next
  // oldest, the second finds a slot free.
  EXPECT_EQ(Status("/api/v1/health"), 200);
  EXPECT_EQ(Status("/api/v1/health"), 200);
  EXPECT_TRUE(idle[2]->Closed());
  for (int i = 3; i < 6; ++i) EXPECT_FALSE(idle[i]->Closed(200)) << "idle connection " << i;
}

TEST_F(AdminServerSlots, WhenEverySlotIsBusyOnlyHealthAnswers) {
  std::vector<std::unique_ptr<Client>> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(std::make_unique<Client>(port_));
    busy.back()->Get("/api/v1/hold");
  }
  ASSERT_TRUE(WaitHolding(4));
  EXPECT_EQ(Status("/api/v1/health"), 200);
  std::string body;
  EXPECT_EQ(Status("/api/v1/hold", &body), 503);
  EXPECT_NE(body.find("too many admin connections"), std::string::npos) << body;
  EXPECT_EQ(holding_.load(), 4) << "the refused request must not have run";
}

TEST_F(AdminServerSlots, AnsweredConnectionsHoldNoSlot) {
  // Four clients read their answer but keep the connection open.
  std::vector<std::unique_ptr<Client>> answered;
  for (int i = 0; i < 4; ++i) {
    answered.push_back(std::make_unique<Client>(port_));
    answered.back()->Get("/api/v1/health");
    EXPECT_EQ(answered.back()->Read(12), "HTTP/1.1 200");
  }
  // Four requests that stay busy still get a slot each. The first closes
  // one answered connection (the oldest), as many as it needs, not all.
  std::vector<std::unique_ptr<Client>> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(std::make_unique<Client>(port_));
    busy.back()->Get("/api/v1/hold");
    if (i == 0) {
      ASSERT_TRUE(WaitHolding(1));
      EXPECT_TRUE(answered[0]->Gone());
      for (int j = 1; j < 4; ++j) EXPECT_FALSE(answered[j]->Gone(200)) << "answered " << j;
    }
  }
  EXPECT_TRUE(WaitHolding(4));
  for (int j = 1; j < 4; ++j) EXPECT_TRUE(answered[j]->Gone()) << "answered " << j;
}

}  // namespace
}  // namespace ferry::ctl

#include "haproxy.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "ctl.h"
#include "wait.h"

namespace ferry::testing {
namespace {

// A port that was free a moment ago (HAProxy cannot report a port 0 bind).
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string Haproxy::GlobalSection() const {
  return "global\n  maxconn 1000\n  stats socket " + stats_socket() + " mode 600 level admin\n";
}

::testing::AssertionResult Haproxy::Start(
    int frontends, const std::function<std::string(const std::vector<uint16_t>&)>& config) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ports_.clear();
    for (int i = 0; i < frontends; ++i) ports_.push_back(FreePort());
    const std::string path = dir_ + "/haproxy.cfg";
    std::ofstream(path) << config(ports_);
    process_ = StartCommand({"haproxy", "-db", "-f", path});
    if (!process_) return ::testing::AssertionFailure() << "cannot start haproxy";
    if (WaitFor(
            [&] {
              for (uint16_t p : ports_) {
                if (!Accepts(p)) return false;
              }
              return true;
            },
            std::chrono::milliseconds(5000), "haproxy to listen")) {
      return ::testing::AssertionSuccess();
    }
    CommandResult r = process_->Terminate();  // a port was taken meanwhile: again
    process_.reset();
    if (attempt == 2) return ::testing::AssertionFailure() << "haproxy: " << r.ToString();
  }
  return ::testing::AssertionFailure();
}

void Haproxy::Stop() {
  if (process_) process_->Terminate();
  process_.reset();
}

std::map<std::pair<std::string, std::string>, HaproxyServer> Haproxy::Servers() const {
  bool closed = false;
  std::istringstream csv(SocketExchange(stats_socket(), "show stat\n", &closed));
  std::map<std::pair<std::string, std::string>, HaproxyServer> out;
  std::map<std::string, size_t> column;
  for (std::string line; std::getline(csv, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line.starts_with("# ") ? line.substr(2) : line);
    for (std::string v; std::getline(fields, v, ',');) f.push_back(v);
    if (line.starts_with("# ")) {
      for (size_t i = 0; i < f.size(); ++i) column[f[i]] = i;
      continue;
    }
    auto at = [&](const std::string& name) {
      auto it = column.find(name);
      return it != column.end() && it->second < f.size() ? f[it->second] : std::string();
    };
    if (f.size() < 2 || at("svname") == "FRONTEND" || at("svname") == "BACKEND") continue;
    out[{at("pxname"), at("svname")}] = {at("status"), at("check_status"), at("check_code")};
  }
  return out;
}

bool Haproxy::AllServersUp(size_t count) const {
  auto servers = Servers();
  if (servers.size() != count) return false;
  for (const auto& [name, s] : servers) {
    if (s.status != "UP" || s.check_status != "L7OK") return false;
  }
  return true;
}

}  // namespace ferry::testing

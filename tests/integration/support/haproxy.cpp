#include "haproxy.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "ctl.h"
#include "ports.h"
#include "wait.h"

namespace ferry::testing {
namespace {

bool AllAccept(const std::vector<uint16_t>& ports) {
  return std::all_of(ports.begin(), ports.end(), PortAccepts);
}

}  // namespace

std::string Haproxy::GlobalSection() const {
  return "global\n  maxconn 1000\n  stats socket " + stats_socket() + " mode 600 level admin\n";
}

std::string Haproxy::TcpBalancerConfig(uint16_t port,
                                       const std::vector<HaproxyBackendServer>& servers,
                                       const std::string& balance) const {
  std::string cfg = GlobalSection() +
                    "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 1m\n"
                    "  timeout server 1m\n  option redispatch\n  retries 2\n"
                    "frontend mqtt\n  bind 127.0.0.1:" + std::to_string(port) +
                    "\n  default_backend ferry_cluster\n"
                    "backend ferry_cluster\n  balance " + balance + "\n"
                    "  option httpchk GET /api/v1/health\n  http-check expect status 200\n";
  for (const HaproxyBackendServer& s : servers) {
    cfg += "  server " + s.name + " 127.0.0.1:" + std::to_string(s.port) +
           " send-proxy-v2 check port " + std::to_string(s.check_port) +
           " inter 300ms fall 1 rise 1\n";
  }
  return cfg;
}

::testing::AssertionResult Haproxy::Start(
    int frontends, const std::function<std::string(const std::vector<uint16_t>&)>& config) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    // HAProxy cannot report a port 0 bind: ports free a moment ago.
    ports_ = FreePorts(frontends);
    const std::string path = dir_ + "/haproxy.cfg";
    std::ofstream(path) << config(ports_);
    process_ = StartCommand({"haproxy", "-db", "-f", path});
    if (!process_) return ::testing::AssertionFailure() << "cannot start haproxy";
    if (WaitFor(
            [&] { return AllAccept(ports_); },
            std::chrono::milliseconds(5000), "haproxy to listen")) {
      return ::testing::AssertionSuccess();
    }
    CommandResult r = process_->Terminate();  // a port was taken meanwhile: again
    process_.reset();
    if (attempt == 2) return ::testing::AssertionFailure() << "haproxy: " << r.ToString();
  }
  return ::testing::AssertionFailure();
}

::testing::AssertionResult Haproxy::StartBalancer(const std::vector<HaproxyBackendServer>& servers) {
  auto started = Start(1, [&](const std::vector<uint16_t>& ports) {
    return TcpBalancerConfig(ports[0], servers);
  });
  if (!started) return started;
  return WaitFor([&] { return AllServersUp(servers.size()); }, std::chrono::seconds(10),
                 "every server's health check to pass");
}

::testing::AssertionResult Haproxy::Resume() {
  process_ = StartCommand({"haproxy", "-db", "-f", dir_ + "/haproxy.cfg"});
  if (!process_) return ::testing::AssertionFailure() << "cannot start haproxy";
  return WaitFor(
      [&] { return AllAccept(ports_); },
      std::chrono::milliseconds(5000), "haproxy to listen again");
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

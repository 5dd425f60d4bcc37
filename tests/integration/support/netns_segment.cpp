#include "support/netns_segment.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "support/subprocess.h"

namespace ferry::testing {

namespace {
constexpr const char* kTable = "ferrysplit";
std::string Port(int host) { return "vf" + std::to_string(host); }
}  // namespace

NetnsSegment::NetnsSegment(int hosts) : hosts_(hosts) {
  if (unshare(CLONE_NEWNET) != 0) {
    why_ = std::string("cannot create a network namespace here (") + std::strerror(errno) +
           "; it needs root)";
    return;
  }
  if (!Run({"ip", "link", "set", "lo", "up"}) ||
      !Run({"ip", "link", "add", "brf", "type", "bridge", "mcast_snooping", "0"}) ||
      !Run({"ip", "addr", "add", Ip(254) + "/24", "dev", "brf"}) ||
      !Run({"ip", "link", "set", "brf", "up"})) {
    why_ = "the kernel refuses a bridge here: " + why_;
    return;
  }
  for (int i = 1; i <= hosts; ++i) {
    const std::string ns = Namespace(i);
    if (!Run({"ip", "netns", "add", ns})) {
      why_ = "the kernel refuses named network namespaces here: " + why_;
      return;
    }
    namespaces_.push_back(ns);
    if (!Run({"ip", "link", "add", Port(i), "type", "veth", "peer", "name", "eth0", "netns", ns}) ||
        !Run({"ip", "link", "set", Port(i), "master", "brf", "up"}) ||
        !Run({"ip", "-n", ns, "link", "set", "lo", "up"}) ||
        !Run({"ip", "-n", ns, "addr", "add", Ip(i) + "/24", "dev", "eth0"}) ||
        !Run({"ip", "-n", ns, "link", "set", "eth0", "up"}) ||
        !Run({"ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"})) {
      why_ = "cannot wire host " + std::to_string(i) + ": " + why_;
      return;
    }
  }
  ok_ = true;
}

NetnsSegment::~NetnsSegment() {
  for (const std::string& ns : namespaces_) Run({"ip", "netns", "del", ns});
}

std::string NetnsSegment::Namespace(int host) const {
  return "ferryns-" + std::to_string(getpid()) + "-" + std::to_string(host);
}

std::vector<std::string> NetnsSegment::Exec(int host) const {
  return {"ip", "netns", "exec", Namespace(host)};
}

bool NetnsSegment::AddRule(int from, int to, const std::vector<std::string>& match) {
  if (!nft_ready_) {
    nft_ready_ = Run({"nft", "add", "table", "bridge", kTable}) &&
                 Run({"nft", "add", "chain", "bridge", kTable, "forward",
                      "{ type filter hook forward priority 0; policy accept; }"});
    if (!nft_ready_) return false;
  }
  std::vector<std::string> argv = {"nft",     "add",      "rule",    "bridge", kTable,
                                   "forward", "iifname", Port(from), "oifname", Port(to)};
  argv.insert(argv.end(), match.begin(), match.end());
  argv.push_back("drop");
  return Run(argv);
}

bool NetnsSegment::Drop(int from, int to) { return AddRule(from, to, {}); }

bool NetnsSegment::Lose(int from, int to, int percent) {
  return AddRule(from, to, {"numgen", "random", "mod", "100", "<", std::to_string(percent)});
}

bool NetnsSegment::Delay(int host, int ms) {
  return Run({"tc", "qdisc", "add", "dev", Port(host), "root", "netem", "delay",
              std::to_string(ms) + "ms"});
}

bool NetnsSegment::Isolate(int host) {
  for (int i = 1; i <= hosts_; ++i) {
    if (i != host && !Cut(host, i)) return false;
  }
  return true;
}

bool NetnsSegment::Heal() {
  return !nft_ready_ || Run({"nft", "flush", "chain", "bridge", kTable, "forward"});
}

bool NetnsSegment::Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (!r.Succeeded()) why_ = r.ToString();
  return r.Succeeded();
}

}  // namespace ferry::testing

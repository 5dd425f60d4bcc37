// A network segment of separate "hosts" for tests of nodes that must not
// share a loopback: the test process moves into a network namespace of its
// own (unshare(CLONE_NEWNET), which needs root) with a bridge, brf, at
// 10.77.0.254/24, and each host is a namespace of its own (`ip netns add`)
// joined to the bridge by a veth pair, at 10.77.0.<i>. A node runs in host
// i with NodeOptions::wrapper = Exec(i); the test reaches it through the
// bridge, and ferryctl through its admin socket (a file).
//
// Partitions are made as a real netsplit makes them: frames between two
// hosts' ports of the bridge are dropped silently by nftables (a bridge
// table of the test's namespace), with no RST and no ICMP.
//
// Thread: the test's main thread (unshare moves only the calling thread,
// and the threads it starts afterwards).
#pragma once

#include <string>
#include <vector>

namespace ferry::testing {

class NetnsSegment {
 public:
  // Makes the segment with `hosts` hosts. ok() is false, with why(), where
  // the kernel or a missing tool refuses; the test should then skip.
  explicit NetnsSegment(int hosts);
  ~NetnsSegment();
  NetnsSegment(const NetnsSegment&) = delete;
  NetnsSegment& operator=(const NetnsSegment&) = delete;

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }

  static std::string Ip(int host) { return "10.77.0." + std::to_string(host); }
  std::string Namespace(int host) const;
  // The command prefix that runs a program in `host`.
  std::vector<std::string> Exec(int host) const;

  // Frames from `from` to `to` are dropped from now on (one way).
  bool Drop(int from, int to);
  // Both ways.
  bool Cut(int a, int b) { return Drop(a, b) && Drop(b, a); }
  // `percent` of the frames from `from` to `to` dropped at random (nftables'
  // numgen: loss without netem, which this kernel may lack).
  bool Lose(int from, int to, int percent);
  // Frames to `host` delayed by `ms` (tc netem on its bridge port). False,
  // with why(), where the kernel has no netem.
  bool Delay(int host, int ms);
  // `host` cut from every other host.
  bool Isolate(int host);
  // Every drop removed: the network is whole again.
  bool Heal();

 private:
  bool Run(const std::vector<std::string>& argv);
  bool AddRule(int from, int to, const std::vector<std::string>& match);

  int hosts_ = 0;
  bool ok_ = false;
  bool nft_ready_ = false;
  std::string why_;
  std::vector<std::string> namespaces_;
};

}  // namespace ferry::testing

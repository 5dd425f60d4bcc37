// Where a cluster peer listens, from its node name.
//
// A node is named `name@host` ([node] name). Its cluster port is fixed, with
// no port mapper: 4370, or 4370 + N when `name` ends in the number N
// (`ferry2@...` listens on 4372), so that several nodes of one host do not
// collide; `[cluster] listen` overrides it, and a join target may name the
// port itself: `name@host:port`, or `name@[v6-address]:port`.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::cluster {

inline constexpr uint16_t kBaseClusterPort = 4370;

struct PeerAddress {
  std::string node;  // name@host, as the peer calls itself
  std::string host;  // without brackets
  uint16_t port = 0;
};

// The port a node named `node` listens on when nothing else is said:
// kBaseClusterPort + the number its name part ends in, if that is a port;
// kBaseClusterPort otherwise.
uint16_t DefaultClusterPort(std::string_view node);

// Parses a join target, "name@host", "name@host:port" or "name@[::1]:port".
// InvalidArgument, with what is wrong, for anything else: no '@', an empty
// or invalid name part (A-Z a-z 0-9 _ -), an empty host, a port that is not
// 1 to 65535.
Result<PeerAddress> ParsePeerAddress(std::string_view target);

}  // namespace ferry::cluster

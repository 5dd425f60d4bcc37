// Loopback ports for tests: free ones to bind later, and whether something
// accepts connections on one.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace ferry::testing {

// `n` distinct free ports of `host` (held open together while they are
// picked, so that they differ), for a node that must know them before it
// starts (static discovery). They are taken from below the kernel's
// ephemeral range (ip_local_port_range), where the outgoing connections of
// tests running side by side do not land between the pick and the bind.
inline std::vector<uint16_t> FreePorts(int n, const char* host = "127.0.0.1") {
  unsigned low = 32768;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u", &low) != 1) low = 32768;
    std::fclose(f);
  }
  const unsigned first = 10000;
  const unsigned span = low > first + 1000 ? low - first : 20000;
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  unsigned seed = static_cast<unsigned>(::getpid()) * 2654435761u ^
                  static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int tries = 0; static_cast<int>(ports.size()) < n && tries < 1000; ++tries) {
    seed = seed * 1103515245u + 12345u;
    const uint16_t port = static_cast<uint16_t>(first + (seed >> 8) % span);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host, &a.sin_addr);
    a.sin_port = htons(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      continue;
    }
    ports.push_back(port);
    fds.push_back(fd);
  }
  for (int fd : fds) close(fd);
  return ports;
}

// Whether a TCP connection to 127.0.0.1:`port` is accepted now.
inline bool PortAccepts(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

}  // namespace ferry::testing

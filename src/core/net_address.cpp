#include "core/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace ferry::core {

std::string FormatAddress(int family, const void* addr, uint16_t port) {
  char host[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, addr, host, sizeof host);
  if (family == AF_INET6) return std::string("[") + host + "]:" + std::to_string(port);
  return std::string(host) + ":" + std::to_string(port);
}

std::string FormatSockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    return FormatAddress(AF_INET6, &a->sin6_addr, ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  return FormatAddress(AF_INET, &a->sin_addr, ntohs(a->sin_port));
}

}  // namespace ferry::core

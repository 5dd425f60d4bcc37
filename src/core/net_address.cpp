#include "core/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace ferry::core {

std::string FormatAddress(int family, const void* addr, uint16_t port) {
  // "[" IPv6 "]:" port; INET6_ADDRSTRLEN counts the NUL inet_ntop writes.
  // Each write is bounded by its longest text (45 characters of IPv6, 3
  // digits of an octet, 5 of a port), which GCC's overflow checks can see.
  char buf[1 + INET6_ADDRSTRLEN + 2 + 5];
  char* p = buf;
  if (family == AF_INET6) {
    // Rare enough on accept to keep glibc's formatting (zero runs, mapped
    // IPv4 addresses).
    *p++ = '[';
    inet_ntop(AF_INET6, addr, p, INET6_ADDRSTRLEN);
    p += strnlen(p, INET6_ADDRSTRLEN - 1);
    *p++ = ']';
  } else {
    // Dotted decimal by hand: inet_ntop goes through sprintf, and every
    // accepted connection is formatted on the accepting thread.
    const auto* octet = static_cast<const uint8_t*>(addr);
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      p = std::to_chars(p, p + 3, octet[i]).ptr;
    }
  }
  *p++ = ':';
  p = std::to_chars(p, p + 5, port).ptr;
  return std::string(buf, p);
}

std::string FormatSockaddr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    return FormatAddress(AF_INET6, &a->sin6_addr, ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
  return FormatAddress(AF_INET, &a->sin_addr, ntohs(a->sin_port));
}

}  // namespace ferry::core

// Socket addresses as ferry prints them in logs and client listings:
// "203.0.113.7:51234" for IPv4, "[2001:db8::7]:51234" for IPv6.
//
// Pure functions; any thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace ferry::core {

// `family` is AF_INET or AF_INET6; `addr` points at 4 or 16 bytes in network
// order. The same text as inet_ntop's, with the port appended.
std::string FormatAddress(int family, const void* addr, uint16_t port);

// The address of a sockaddr_in or sockaddr_in6.
std::string FormatSockaddr(const sockaddr* sa);
inline std::string FormatSockaddr(const sockaddr_storage& ss) {
  return FormatSockaddr(reinterpret_cast<const sockaddr*>(&ss));
}

}  // namespace ferry::core

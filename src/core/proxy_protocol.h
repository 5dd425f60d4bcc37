// The PROXY protocol header (HAProxy, versions 1 and 2) that a load balancer
// puts in front of the client's bytes to tell the server who the client is.
// Specification: haproxy doc/proxy-protocol.txt.
//
//   v1: "PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n"  (text, <= 107 bytes)
//   v2: "\r\n\r\n\0\r\nQUIT\n", 0x21 (v2, PROXY), 0x11 (TCP over IPv4),
//       length (2 bytes, big endian), addresses and ports, optional TLVs
//
// Sans-I/O: ParseProxyHeader looks at the first bytes of a connection and says
// whether a whole header is there, how long it is and what it says. It never
// reads past the header, so the bytes after it are the client's own.
//
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/status.h"

namespace ferry::core {

struct ProxyHeader {
  int version = 0;      // 1 or 2
  size_t length = 0;    // bytes of the connection the header takes
  // v1 "UNKNOWN", v2 LOCAL (a health check from the proxy itself) or an
  // address family other than TCP over IPv4/IPv6: the connection's own
  // addresses stand, `source` and `destination` are empty.
  bool local = false;
  std::string source;       // "203.0.113.7:51234" or "[2001:db8::7]:51234"
  std::string destination;  // the address the client connected to, same form
};

// The longest v1 header, CRLF included (doc/proxy-protocol.txt section 2.1).
inline constexpr size_t kProxyV1MaxLength = 107;

// Looks for a header at the start of `in`.
//  * a header: its contents;
//  * nullopt: `in` is a correct beginning of a header, more bytes are needed;
//  * an error (Status::Protocol, kMalformedPacket) saying what is wrong, as
//    soon as the bytes cannot begin a valid header: a missing signature, a bad
//    address or port, an unknown version or command, a v1 line over 107 bytes.
Result<std::optional<ProxyHeader>> ParseProxyHeader(std::span<const uint8_t> in);

}  // namespace ferry::core

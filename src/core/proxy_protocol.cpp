#include "core/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/net_address.h"

namespace ferry::core {

namespace {

constexpr std::string_view kV1Signature = "PROXY ";
constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2HeaderLength = 16;

Status Malformed(std::string_view why) {
  return Status::Protocol(ReasonCode::kMalformedPacket, std::string("PROXY header: ") + std::string(why));
}

// True if `in` is a prefix of `sig` or starts with it.
bool MatchesPrefix(std::span<const uint8_t> in, std::span<const uint8_t> sig) {
  size_t n = std::min(in.size(), sig.size());
  return std::equal(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n), sig.begin());
}

// A port as v1 writes it: decimal, 0..65535, no sign and no leading zero.
bool ParsePort(std::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t sp = line.find(' ', start);
    out.push_back(line.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) return out;
    start = sp + 1;
  }
}

Result<std::optional<ProxyHeader>> ParseV1(std::span<const uint8_t> in) {
  std::string_view text(reinterpret_cast<const char*>(in.data()),
                        std::min(in.size(), kProxyV1MaxLength));
  size_t cr = text.find('\r');
  if (cr == std::string_view::npos) {
    if (in.size() >= kProxyV1MaxLength) return Malformed("v1 line longer than 107 bytes");
    for (char c : text) {
      if (c == '\n' || c == '\0') return Malformed("v1 line ends without CRLF");
    }
    return std::optional<ProxyHeader>();
  }
  if (cr + 1 == text.size()) {
    if (cr + 1 >= kProxyV1MaxLength) return Malformed("v1 line longer than 107 bytes");
    return std::optional<ProxyHeader>();
  }
  if (text[cr + 1] != '\n') return Malformed("v1 line ends without CRLF");
  std::string_view line = text.substr(kV1Signature.size(), cr - kV1Signature.size());
  ProxyHeader h;
  h.version = 1;
  h.length = cr + 2;
  for (char c : line) {
    if (c < 0x20 || c > 0x7E) return Malformed("v1 line holds a control character");
  }
  std::vector<std::string_view> f = SplitSpaces(line);
  if (f[0] == "UNKNOWN") {
    // "the receiver must ignore anything presented before the CRLF".
    h.local = true;
    return std::optional<ProxyHeader>(std::move(h));
  }
  int family = f[0] == "TCP4" ? AF_INET : f[0] == "TCP6" ? AF_INET6 : 0;
  if (family == 0) return Malformed("v1 protocol must be TCP4, TCP6 or UNKNOWN");
  if (f.size() != 5) return Malformed("v1 line needs two addresses and two ports");
  uint8_t src[16], dst[16];
  uint16_t sport = 0, dport = 0;
  std::string a(f[1]), b(f[2]);
  if (inet_pton(family, a.c_str(), src) != 1 || inet_pton(family, b.c_str(), dst) != 1) {
    return Malformed("v1 address is not a valid " + std::string(f[0]) + " address");
  }
  if (!ParsePort(f[3], &sport) || !ParsePort(f[4], &dport)) {
    return Malformed("v1 port is not a number in 0..65535");
  }
  h.source = FormatAddress(family, src, sport);
  h.destination = FormatAddress(family, dst, dport);
  return std::optional<ProxyHeader>(std::move(h));
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

Result<std::optional<ProxyHeader>> ParseV2(std::span<const uint8_t> in) {
  if (in.size() >= 13) {
    if ((in[12] >> 4) != 2) return Malformed("v2 version nibble is not 2");
    if ((in[12] & 0x0F) > 1) return Malformed("v2 command is neither LOCAL nor PROXY");
  }
  if (in.size() >= 14) {
    uint8_t family = in[13] >> 4, transport = in[13] & 0x0F;
    if (family > 3 || transport > 2) return Malformed("v2 unknown address family or protocol");
  }
  if (in.size() < kV2HeaderLength) return std::optional<ProxyHeader>();
  const uint16_t len = Be16(&in[14]);
  const uint8_t family = in[13] >> 4, transport = in[13] & 0x0F;
  const bool proxy = (in[12] & 0x0F) == 1;
  // Check what the length must hold before waiting for all of it, so that a
  // lie about the length fails now.
  size_t need = 0;
  if (proxy && family == 1) need = 12;
  if (proxy && family == 2) need = 36;
  if (proxy && family == 3) need = 216;
  if (len < need) return Malformed("v2 length too short for its addresses");
  if (proxy && transport == 2) return Malformed("v2 header describes a datagram connection");
  if (in.size() < kV2HeaderLength + len) return std::optional<ProxyHeader>();
  ProxyHeader h;
  h.version = 2;
  h.length = kV2HeaderLength + len;
  const uint8_t* a = &in[kV2HeaderLength];
  if (!proxy || family == 0 || family == 3 || transport == 0) {
    // LOCAL: the proxy's own connection (health check). UNSPEC or a Unix
    // socket: no IP address to report. The real endpoints stand.
    h.local = true;
  } else if (family == 1) {
    h.source = FormatAddress(AF_INET, a, Be16(a + 8));
    h.destination = FormatAddress(AF_INET, a + 4, Be16(a + 10));
  } else {
    h.source = FormatAddress(AF_INET6, a, Be16(a + 32));
    h.destination = FormatAddress(AF_INET6, a + 16, Be16(a + 34));
  }
  return std::optional<ProxyHeader>(std::move(h));
}

}  // namespace

Result<std::optional<ProxyHeader>> ParseProxyHeader(std::span<const uint8_t> in) {
  if (in.empty()) return std::optional<ProxyHeader>();
  auto v1 = std::span(reinterpret_cast<const uint8_t*>(kV1Signature.data()), kV1Signature.size());
  if (MatchesPrefix(in, v1)) {
    if (in.size() <= kV1Signature.size()) return std::optional<ProxyHeader>();
    return ParseV1(in);
  }
  if (MatchesPrefix(in, kV2Signature)) {
    if (in.size() <= sizeof kV2Signature) return std::optional<ProxyHeader>();
    return ParseV2(in);
  }
  return Malformed("missing (the connection does not start with a PROXY v1 or v2 signature)");
}

}  // namespace ferry::core

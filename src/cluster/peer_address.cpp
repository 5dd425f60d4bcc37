#include "cluster/peer_address.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ferry::cluster {
namespace {

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

Status Invalid(std::string_view target, std::string_view why) {
  return Status::InvalidArgument("'" + std::string(target) + "' is not a node: " +
                                 std::string(why) + " (expected name@host or name@host:port)");
}

// A decimal number in 1..65535, all of `s`.
bool ParsePort(std::string_view s, uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0 || value > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

uint16_t DefaultClusterPort(std::string_view node) {
  const std::string_view name = node.substr(0, node.find('@'));
  size_t start = name.size();
  while (start > 0 && std::isdigit(static_cast<unsigned char>(name[start - 1])) != 0) --start;
  const std::string_view number = name.substr(start);
  unsigned n = 0;
  if (number.empty() || number.size() > 5) return kBaseClusterPort;
  std::from_chars(number.data(), number.data() + number.size(), n);
  if (n > 65535u - kBaseClusterPort) return kBaseClusterPort;
  return static_cast<uint16_t>(kBaseClusterPort + n);
}

Result<PeerAddress> ParsePeerAddress(std::string_view target) {
  const size_t at = target.find('@');
  if (at == std::string_view::npos) return Invalid(target, "no '@'");
  const std::string_view name = target.substr(0, at);
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsNameChar)) {
    return Invalid(target, "the name before '@' must be made of A-Z a-z 0-9 _ -");
  }
  std::string_view rest = target.substr(at + 1);
  PeerAddress a;
  bool has_port = false;
  std::string_view port;
  if (rest.starts_with('[')) {  // [v6]:port or [v6]
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return Invalid(target, "no ']' after the IPv6 address");
    a.host = std::string(rest.substr(1, close - 1));
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return Invalid(target, "junk after ']'");
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
    rest = rest.substr(0, close + 1);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon) {
      return Invalid(target, "an IPv6 address goes in brackets, as name@[::1]:4370");
    }
    has_port = colon != std::string_view::npos;
    if (has_port) {
      port = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    a.host = std::string(rest);
  }
  if (a.host.empty()) return Invalid(target, "no host after '@'");
  if (std::any_of(a.host.begin(), a.host.end(), [](char c) {
        return c == '@' || std::isspace(static_cast<unsigned char>(c)) != 0;
      })) {
    return Invalid(target, "the host holds '@' or a space");
  }
  a.node = std::string(name) + "@" + std::string(rest);
  if (has_port && !ParsePort(port, a.port)) {
    return Invalid(target, "the port must be a number from 1 to 65535");
  }
  if (a.port == 0) a.port = DefaultClusterPort(a.node);
  return a;
}

}  // namespace ferry::cluster

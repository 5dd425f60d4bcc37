// FormatAddress and FormatSockaddr against glibc's inet_ntop.
#include "core/net_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <array>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace ferry::core {
namespace {

std::string Expected(int family, const void* addr, uint16_t port) {
  char host[INET6_ADDRSTRLEN] = "";
  EXPECT_NE(inet_ntop(family, addr, host, sizeof host), nullptr);
  std::string s;
  if (family == AF_INET6) s += '[';
  s += host;
  if (family == AF_INET6) s += ']';
  s += ':';
  s += std::to_string(port);
  return s;
}

const uint16_t kPorts[] = {0, 1, 9, 10, 99, 100, 999, 1000, 1883, 9999, 10000, 51234, 65535};

TEST(FormatAddress, IPv4MatchesInetNtop) {
  // Every octet value in every position, then addresses from a fixed seed.
  std::vector<std::array<uint8_t, 4>> addrs;
  for (int v = 0; v < 256; ++v) {
    const auto b = static_cast<uint8_t>(v);
    addrs.push_back({b, 0, 0, 0});
    addrs.push_back({0, b, 0, 0});
    addrs.push_back({1, 2, b, 3});
    addrs.push_back({255, 255, 255, b});
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t r = rng();
    addrs.push_back({static_cast<uint8_t>(r >> 24), static_cast<uint8_t>(r >> 16),
                     static_cast<uint8_t>(r >> 8), static_cast<uint8_t>(r)});
  }
  for (size_t i = 0; i < addrs.size(); ++i) {
    const uint16_t port = i < std::size(kPorts) ? kPorts[i] : static_cast<uint16_t>(rng());
    ASSERT_EQ(FormatAddress(AF_INET, addrs[i].data(), port),
              Expected(AF_INET, addrs[i].data(), port));
  }
  const uint8_t local[4] = {127, 0, 0, 1};
  EXPECT_EQ(FormatAddress(AF_INET, local, 1883), "127.0.0.1:1883");
  const uint8_t widest[4] = {255, 255, 255, 255};
  EXPECT_EQ(FormatAddress(AF_INET, widest, 65535), "255.255.255.255:65535");
}

TEST(FormatAddress, IPv6MatchesInetNtop) {
  const char* texts[] = {"::",
                         "::1",
                         "2001:db8::7",
                         "fe80::1:2:3:4",
                         "::ffff:203.0.113.7",
                         "1:2:3:4:5:6:7:8",
                         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                         "1::",
                         "0:1:0:1:0:1:0:1"};
  for (const char* t : texts) {
    in6_addr a;
    ASSERT_EQ(inet_pton(AF_INET6, t, &a), 1) << t;
    for (uint16_t port : kPorts) {
      EXPECT_EQ(FormatAddress(AF_INET6, &a, port), Expected(AF_INET6, &a, port)) << t;
    }
  }
  in6_addr a;
  ASSERT_EQ(inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &a), 1);
  EXPECT_EQ(FormatAddress(AF_INET6, &a, 65535), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

TEST(FormatSockaddr, BothFamilies) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(51234);
  ASSERT_EQ(inet_pton(AF_INET, "203.0.113.7", &v4->sin_addr), 1);
  EXPECT_EQ(FormatSockaddr(ss), "203.0.113.7:51234");
  ss = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(8883);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::7", &v6->sin6_addr), 1);
  EXPECT_EQ(FormatSockaddr(ss), "[2001:db8::7]:8883");
}

}  // namespace
}  // namespace ferry::core

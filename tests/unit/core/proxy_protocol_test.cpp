// PROXY protocol headers, byte-exact, after haproxy doc/proxy-protocol.txt.
#include "core/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

Result<std::optional<ProxyHeader>> Parse(const Bytes& b) { return ParseProxyHeader(b); }

// The v2 signature, then version/command, family/protocol, length, body.
Bytes V2(uint8_t ver_cmd, uint8_t fam, const Bytes& body) {
  Bytes b = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  b.push_back(ver_cmd);
  b.push_back(fam);
  b.push_back(static_cast<uint8_t>(body.size() >> 8));
  b.push_back(static_cast<uint8_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

const Bytes kV4Body = {203, 0, 113, 7,      // source address
                       192, 0, 2, 1,        // destination address
                       0xC8, 0x22,          // source port 51234
                       0x07, 0x5B};         // destination port 1883

// Every proper prefix of a header needs more bytes; the whole parses.
void ExpectIncompleteUntilWhole(const Bytes& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    Bytes prefix(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = Parse(prefix);
    ASSERT_TRUE(r.ok()) << "prefix of " << n << " bytes: " << r.status().ToString();
    EXPECT_FALSE(r.value().has_value()) << "prefix of " << n << " bytes";
  }
  auto r = Parse(header);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r.value().has_value());
  EXPECT_EQ(r.value()->length, header.size());
}

std::string ErrorOf(const Bytes& b) {
  auto r = Parse(b);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(ProxyV1, Tcp4) {
  Bytes h = B("PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n");
  ExpectIncompleteUntilWhole(h);
  Bytes with_mqtt = h;
  with_mqtt.push_back(0x10);  // the client's CONNECT follows
  auto r = Parse(with_mqtt);
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->version, 1);
  EXPECT_EQ(r.value()->length, h.size());
  EXPECT_FALSE(r.value()->local);
  EXPECT_EQ(r.value()->source, "203.0.113.7:51234");
  EXPECT_EQ(r.value()->destination, "192.0.2.1:1883");
}

TEST(ProxyV1, Tcp6) {
  Bytes h = B("PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n");
  ExpectIncompleteUntilWhole(h);
  auto r = Parse(h);
  EXPECT_EQ(r.value()->source, "[2001:db8::7]:65535");
  EXPECT_EQ(r.value()->destination, "[2001:db8::1]:0");
}

TEST(ProxyV1, UnknownKeepsTheRealAddresses) {
  auto r = Parse(B("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n"));
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_TRUE(r.value()->local);
  EXPECT_EQ(r.value()->source, "");
  r = Parse(B("PROXY UNKNOWN\r\n"));
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_TRUE(r.value()->local);
}

TEST(ProxyV1, LongestLineIsAccepted) {
  std::string line = "PROXY UNKNOWN ";
  line += std::string(kProxyV1MaxLength - line.size() - 2, 'x');
  line += "\r\n";
  ASSERT_EQ(line.size(), kProxyV1MaxLength);
  auto r = Parse(B(line));
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->length, kProxyV1MaxLength);
}

TEST(ProxyV1, Errors) {
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\n")),
            "PROXY header: v1 line ends without CRLF");
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\rX")),
            "PROXY header: v1 line ends without CRLF");
  EXPECT_EQ(ErrorOf(B("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n")),
            "PROXY header: v1 protocol must be TCP4, TCP6 or UNKNOWN");
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n")),
            "PROXY header: v1 line needs two addresses and two ports");
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n")),
            "PROXY header: v1 line needs two addresses and two ports");
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n")),
            "PROXY header: v1 address is not a valid TCP4 address");
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 ::1 ::1 1 2\r\n")),
            "PROXY header: v1 address is not a valid TCP4 address");
  EXPECT_EQ(ErrorOf(B("PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n")),
            "PROXY header: v1 address is not a valid TCP6 address");
  for (const char* port : {"65536", "01", "-1", "+1", "1a", ""}) {
    EXPECT_EQ(ErrorOf(B(std::string("PROXY TCP4 1.2.3.4 1.2.3.4 1 ") + port + "\r\n")),
              "PROXY header: v1 port is not a number in 0..65535")
        << port;
  }
  EXPECT_EQ(ErrorOf(B("PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n")),
            "PROXY header: v1 line holds a control character");
  EXPECT_EQ(ErrorOf(B("PROXY " + std::string(kProxyV1MaxLength, 'x'))),
            "PROXY header: v1 line longer than 107 bytes");
  std::string long_line = "PROXY " + std::string(kProxyV1MaxLength - 7, 'x') + "\r\n";
  EXPECT_EQ(ErrorOf(B(long_line)), "PROXY header: v1 line longer than 107 bytes");
}

TEST(ProxyV2, ProxyTcp4) {
  Bytes h = V2(0x21, 0x11, kV4Body);
  ExpectIncompleteUntilWhole(h);
  auto r = Parse(h);
  EXPECT_EQ(r.value()->version, 2);
  EXPECT_EQ(r.value()->length, 28u);
  EXPECT_FALSE(r.value()->local);
  EXPECT_EQ(r.value()->source, "203.0.113.7:51234");
  EXPECT_EQ(r.value()->destination, "192.0.2.1:1883");
}

TEST(ProxyV2, ProxyTcp6WithTlvs) {
  Bytes body(16, 0);
  body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 7;  // 2001:db8::7
  Bytes dst(16, 0);
  dst[15] = 1;  // ::1
  body.insert(body.end(), dst.begin(), dst.end());
  body.insert(body.end(), {0x00, 0x50, 0x07, 0x5B});            // ports 80, 1883
  body.insert(body.end(), {0x04, 0x00, 0x03, 'a', 'b', 'c'});   // a NOOP TLV, skipped
  Bytes h = V2(0x21, 0x21, body);
  ExpectIncompleteUntilWhole(h);
  auto r = Parse(h);
  EXPECT_EQ(r.value()->source, "[2001:db8::7]:80");
  EXPECT_EQ(r.value()->destination, "[::1]:1883");
  EXPECT_EQ(r.value()->length, 16u + 36u + 6u);
}

TEST(ProxyV2, LocalAndUnspecKeepTheRealAddresses) {
  for (auto [ver_cmd, fam, body] : {std::tuple{0x20, 0x00, Bytes{}},       // LOCAL health check
                                    std::tuple{0x20, 0x11, kV4Body},       // LOCAL with addresses
                                    std::tuple{0x21, 0x00, Bytes{}},       // PROXY, UNSPEC
                                    std::tuple{0x21, 0x31, Bytes(216, 0)}}) {  // Unix stream
    auto r = Parse(V2(static_cast<uint8_t>(ver_cmd), static_cast<uint8_t>(fam), body));
    ASSERT_TRUE(r.ok() && r.value()) << std::hex << ver_cmd << " " << fam;
    EXPECT_TRUE(r.value()->local);
    EXPECT_EQ(r.value()->source, "");
  }
}

TEST(ProxyV2, Errors) {
  EXPECT_EQ(ErrorOf(V2(0x11, 0x11, kV4Body)), "PROXY header: v2 version nibble is not 2");
  EXPECT_EQ(ErrorOf(V2(0x22, 0x11, kV4Body)),
            "PROXY header: v2 command is neither LOCAL nor PROXY");
  EXPECT_EQ(ErrorOf(V2(0x21, 0x41, kV4Body)),
            "PROXY header: v2 unknown address family or protocol");
  EXPECT_EQ(ErrorOf(V2(0x21, 0x13, kV4Body)),
            "PROXY header: v2 unknown address family or protocol");
  EXPECT_EQ(ErrorOf(V2(0x21, 0x12, kV4Body)),
            "PROXY header: v2 header describes a datagram connection");
  // A length too short for the addresses fails on the 16-byte header alone.
  Bytes lie = V2(0x21, 0x21, kV4Body);
  lie.resize(16);
  EXPECT_EQ(ErrorOf(lie), "PROXY header: v2 length too short for its addresses");
  // The error shows on the first byte that cannot fit.
  Bytes early = V2(0x31, 0x11, kV4Body);
  early.resize(13);
  EXPECT_EQ(ErrorOf(early), "PROXY header: v2 version nibble is not 2");
}

TEST(ProxyHeader, GarbageFailsOnItsFirstByte) {
  const std::string missing =
      "PROXY header: missing (the connection does not start with a PROXY v1 or v2 signature)";
  EXPECT_EQ(ErrorOf(Bytes{0x10}), missing);  // a bare MQTT CONNECT
  EXPECT_EQ(ErrorOf(B("GET / HTTP/1.1\r\n")), missing);
  EXPECT_EQ(ErrorOf(B("PROXX")), missing);
  EXPECT_EQ(ErrorOf(B("proxy TCP4")), missing);
  EXPECT_EQ(ErrorOf(Bytes{0x16, 0x03, 0x01}), missing);  // a TLS ClientHello
  EXPECT_EQ(ErrorOf(Bytes{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B}),
            missing);
}

TEST(ProxyHeader, EveryCorruptedByteOfAV2HeaderIsHandled) {
  // Not every corruption is an error (an address byte is just another
  // address), but none may crash or read past the input.
  const Bytes h = V2(0x21, 0x11, kV4Body);
  for (size_t i = 0; i < h.size(); ++i) {
    for (uint8_t v : {0x00, 0xFF, 0x7F}) {
      Bytes b = h;
      b[i] = v;
      (void)Parse(b);
    }
  }
}

}  // namespace
}  // namespace ferry::core

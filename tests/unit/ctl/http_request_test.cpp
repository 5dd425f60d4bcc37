#include "ctl/http_request.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "ctl/admin_server.h"

namespace ferry::ctl {
namespace {

using State = HttpRequestParser::State;

TEST(HttpRequestParser, ParsesPathQueryAndHeaders) {
  HttpRequestParser p(4096);
  ASSERT_EQ(p.Feed("GET /api/v1/clients/show/a%2Fb%23?limit=5&connected HTTP/1.1\r\n"
                   "Host: x\r\nAuthorization:  Bearer t0k \r\n\r\n"),
            State::kComplete);
  const HttpRequest& r = p.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, (std::vector<std::string>{"api", "v1", "clients", "show", "a/b#"}));
  ASSERT_EQ(r.query.size(), 2u);
  EXPECT_EQ(r.query[0].first, "limit");
  EXPECT_EQ(r.query[0].second, "5");
  EXPECT_EQ(r.query[1].first, "connected");
  EXPECT_FALSE(r.query[1].second.has_value());
  EXPECT_EQ(r.Header("authorization"), "Bearer t0k");
}

TEST(HttpRequestParser, WaitsForTheWholeHeadAndBody) {
  HttpRequestParser p(4096);
  EXPECT_EQ(p.Feed("POST /api/v1/reload HTTP/1.1\r\nContent-Length: 4\r\n"), State::kIncomplete);
  EXPECT_EQ(p.Feed("\r\nab"), State::kIncomplete);
  EXPECT_EQ(p.Feed("cd"), State::kComplete);
}

TEST(HttpRequestParser, RefusesWhatItDoesNotSpeak) {
  struct Case {
    std::string_view text;
    int status;
  };
  const Case cases[] = {
      {"GET /x HTTP/2.0\r\n\r\n", 505},
      {"GET x HTTP/1.1\r\n\r\n", 400},
      {"get /x HTTP/1.1\r\n\r\n", 400},
      {"GET /x%zz HTTP/1.1\r\n\r\n", 400},
      {"GET /x%2 HTTP/1.1\r\n\r\n", 400},
      {"GET /x HTTP/1.1\r\nno colon\r\n\r\n", 400},
      {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"POST /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST /x HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", 413},
      {"\x01\x02garbage\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    HttpRequestParser p(4096);
    EXPECT_EQ(p.Feed(c.text), State::kError) << c.text;
    EXPECT_EQ(p.error_status(), c.status) << c.text << ": " << p.error();
  }
}

TEST(HttpRequestParser, BoundsAHeadThatNeverEnds) {
  HttpRequestParser p(1024);
  std::string junk(600, 'a');
  EXPECT_EQ(p.Feed("GET /" + junk), State::kIncomplete);
  EXPECT_EQ(p.Feed(junk), State::kError);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(PercentEncoding, RoundTrips) {
  const std::string s = "sport/+/#?&= ü";
  EXPECT_EQ(PercentEncode("a/b"), "a%2Fb");
  EXPECT_EQ(PercentDecode(PercentEncode(s)), s);
  EXPECT_FALSE(PercentDecode("%4").has_value());
}

sockaddr_storage V4(const char* ip) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a->sin_addr);
  return ss;
}

sockaddr_storage V6(const char* ip) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a->sin6_addr);
  return ss;
}

bool Loopback(const sockaddr_storage& ss) {
  return IsLoopbackAddress(reinterpret_cast<const sockaddr*>(&ss));
}

TEST(IsLoopbackAddress, KnowsLoopbackFromTheRest) {
  EXPECT_TRUE(Loopback(V4("127.0.0.1")));
  EXPECT_TRUE(Loopback(V4("127.200.1.9")));
  EXPECT_TRUE(Loopback(V6("::1")));
  EXPECT_TRUE(Loopback(V6("::ffff:127.0.0.1")));
  EXPECT_FALSE(Loopback(V4("10.0.0.1")));
  EXPECT_FALSE(Loopback(V4("192.0.2.1")));
  EXPECT_FALSE(Loopback(V4("128.0.0.1")));
  EXPECT_FALSE(Loopback(V6("::ffff:10.0.0.1")));
  EXPECT_FALSE(Loopback(V6("fe80::1")));
  EXPECT_FALSE(Loopback(V6("::")));
}

}  // namespace
}  // namespace ferry::ctl

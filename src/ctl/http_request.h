// A small, strict HTTP/1.x request parser for the admin API, sans I/O: feed
// it bytes as they arrive; it says when a whole request is there, or what is
// wrong with it (with the HTTP status to answer). Only what the admin API
// needs: a request line, headers, and a body of Content-Length bytes (which
// the API ignores). No chunked request bodies, no pipelining.
//
// Example: "GET /api/v1/clients/show/a%2Fb?limit=5 HTTP/1.1\r\n..." gives
// method "GET", path {"api", "v1", "clients", "show", "a/b"}, query
// {{"limit", "5"}}.
//
// Thread: one parser per connection; no shared state.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::ctl {

struct HttpRequest {
  std::string method;                   // "GET"
  std::vector<std::string> path;        // decoded segments; empty ones dropped
  // Decoded query parameters in order; `second` is nullopt for "?flag".
  std::vector<std::pair<std::string, std::optional<std::string>>> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string Header(std::string_view name) const;
};

class HttpRequestParser {
 public:
  enum class State { kIncomplete, kComplete, kError };
  // `max_bytes` bounds the request line, headers and body together.
  explicit HttpRequestParser(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Appends `data`; returns the new state. After kComplete or kError further
  // input is ignored.
  State Feed(std::string_view data);
  State state() const { return state_; }
  const HttpRequest& request() const { return request_; }
  // On kError: the status to answer (400, 413, 414, 431, 501, 505) and why.
  int error_status() const { return error_status_; }
  const std::string& error() const { return error_; }

 private:
  State Fail(int status, std::string why);
  State ParseHead(std::string_view head);

  size_t max_bytes_;
  std::string buffer_;
  size_t body_bytes_ = 0;  // Content-Length, once the head is parsed
  size_t head_end_ = std::string::npos;
  State state_ = State::kIncomplete;
  HttpRequest request_;
  int error_status_ = 0;
  std::string error_;
};

// Percent-decodes `s` ('+' stays '+'). nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view s);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string PercentEncode(std::string_view s);

}  // namespace ferry::ctl

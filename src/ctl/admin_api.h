// The admin protocol that ferryctl and a node speak, over the node's Unix
// socket or its HTTP API. Header-only; shared by the node's admin servers
// (admin_server.h) and ferryctl.
//
// Framing: newline-delimited JSON. One request per connection:
//
//   -> {"v":1,"argv":["clients","show","c1"]}
//
// answered by one of
//
//   <- {"v":1,"type":"value","result":{...},"text":"..."}     a value
//   <- {"v":1,"type":"error","error":{"kind":"not_found","message":"no client 'c1'","usage":""}}
//   <- {"v":1,"type":"list","columns":[{"key":"client_id","title":"CLIENT ID"},...]}
//      {"v":1,"type":"rows","rows":[{...},{...}]}             zero or more pages
//      {"v":1,"type":"end","count":2}                          or an error frame
//
// after which the node closes the connection. `argv` is the command line
// after `ferryctl` and its own options; the node matches it against its
// command registry (core/admin.h). `text`, when present, is the value's
// human-readable form. A frame is one line: JSON strings escape newlines.
//
// Over HTTP, POST /api/v1/<argv words, percent-encoded, one per path
// segment>?format=ndjson answers with the same frames as the body;
// without format=ndjson the body is one JSON document (see README).
//
// Versioning: "v" is in every request and frame. A node refuses a request of
// another version with an error frame of kind "bad_version"; ferryctl
// refuses frames of another version.
//
// Thread: everything here is a pure function; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::ctl {

using Json = nlohmann::ordered_json;

inline constexpr int kAdminProtocolVersion = 1;
// Largest request line a node reads; a longer one is refused.
inline constexpr size_t kMaxRequestBytes = 64 * 1024;
// Largest frame ferryctl accepts (a page of rows).
inline constexpr size_t kMaxFrameBytes = 64 * 1024 * 1024;
// The default admin socket, inside [node] data_dir.
inline constexpr std::string_view kDefaultSocketName = "ferry.sock";

// Error kinds beyond the registry's (bad_argument, not_found, unavailable,
// internal): protocol errors, and those ferryctl finds itself.
inline constexpr std::string_view kKindBadRequest = "bad_request";      // not a request
inline constexpr std::string_view kKindBadVersion = "bad_version";
inline constexpr std::string_view kKindTooLarge = "too_large";
inline constexpr std::string_view kKindTimeout = "timeout";
inline constexpr std::string_view kKindUnauthorized = "unauthorized";   // HTTP token
inline constexpr std::string_view kKindUnreachable = "unreachable";     // node not running
inline constexpr std::string_view kKindPermission = "permission";       // socket mode

// ferryctl's exit status for an error of `kind`.
inline int ExitCodeForKind(std::string_view kind) {
  if (kind == "bad_argument") return 2;
  if (kind == kKindUnreachable) return 3;
  if (kind == "not_found") return 4;
  if (kind == kKindPermission || kind == kKindUnauthorized) return 5;
  if (kind == "unavailable") return 6;
  return 1;
}

// The HTTP status for an error of `kind`.
inline int HttpStatusForKind(std::string_view kind) {
  if (kind == "bad_argument" || kind == kKindBadRequest || kind == kKindBadVersion) return 400;
  if (kind == kKindUnauthorized) return 401;
  if (kind == "not_found") return 404;
  if (kind == kKindTimeout) return 408;
  if (kind == kKindTooLarge) return 413;
  if (kind == "unavailable") return 503;
  return 500;
}

inline std::string EncodeRequest(const std::vector<std::string>& argv) {
  return Json{{"v", kAdminProtocolVersion}, {"argv", argv}}.dump() + "\n";
}

// Parses a request line (without its '\n'). Errors: InvalidArgument with a
// message; the caller answers with kind bad_request, or bad_version when
// `*bad_version` is set.
inline Result<std::vector<std::string>> DecodeRequest(std::string_view line, bool* bad_version) {
  *bad_version = false;
  Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("request is not a JSON object");
  }
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) {
    return Status::InvalidArgument("request has no protocol version \"v\"");
  }
  if (v->get<int64_t>() != kAdminProtocolVersion) {
    *bad_version = true;
    return Status::InvalidArgument("protocol version " + v->dump() + " not supported (this node speaks " +
                                   std::to_string(kAdminProtocolVersion) + ")");
  }
  auto argv = j.find("argv");
  if (argv == j.end() || !argv->is_array()) {
    return Status::InvalidArgument("request has no \"argv\" array");
  }
  std::vector<std::string> words;
  for (const Json& w : *argv) {
    if (!w.is_string()) return Status::InvalidArgument("\"argv\" holds a non-string");
    words.push_back(w.get<std::string>());
  }
  return words;
}

inline Json ErrorObject(std::string_view kind, std::string_view message, std::string_view usage) {
  return Json{{"kind", kind}, {"message", message}, {"usage", usage}};
}

inline std::string Frame(std::string_view type, Json body) {
  Json f{{"v", kAdminProtocolVersion}, {"type", type}};
  for (auto& [k, v] : body.items()) f[k] = std::move(v);
  return f.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

inline std::string ValueFrame(const Json& result, std::string_view text) {
  Json body{{"result", result}};
  if (!text.empty()) body["text"] = text;
  return Frame("value", std::move(body));
}

inline std::string ErrorFrame(std::string_view kind, std::string_view message,
                              std::string_view usage = {}) {
  return Frame("error", Json{{"error", ErrorObject(kind, message, usage)}});
}

// Parses one response frame (without its '\n'). Errors: InvalidArgument if
// it is not a JSON object of our version with a known type.
inline Result<Json> DecodeFrame(std::string_view line) {
  Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("reply is not JSON");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kAdminProtocolVersion) {
    return Status::InvalidArgument("reply of an unsupported protocol version");
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return Status::InvalidArgument("reply has no type");
  const std::string t = type->get<std::string>();
  if (t != "value" && t != "error" && t != "list" && t != "rows" && t != "end") {
    return Status::InvalidArgument("reply of unknown type '" + t + "'");
  }
  return j;
}

}  // namespace ferry::ctl

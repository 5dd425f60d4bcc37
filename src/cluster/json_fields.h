// Reading fields of JSON from a service (etcd, the Kubernetes API) that may
// hold anything: a field missing or of another type reads as empty, never
// throws. Pure functions; any thread.
#pragma once

#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ferry::cluster {

using Json = nlohmann::json;

// j[key], or null when j is no object or has no such key.
inline const Json& JsonField(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

// j[key] as a string; "" when it is missing or something else.
inline std::string JsonString(const Json& j, const char* key) {
  const Json& v = JsonField(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

// j[key] as a number, from a number or (etcd's 64-bit numbers) a string of
// digits; 0 otherwise.
inline int64_t JsonInt(const Json& j, const char* key) {
  const Json& v = JsonField(j, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return 0;
  const std::string& s = v.get_ref<const std::string&>();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() ? n : 0;
}

}  // namespace ferry::cluster

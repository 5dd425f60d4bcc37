// Base64 with the standard alphabet (RFC 4648 section 4). Pure functions;
// any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::core {

std::string Base64Encode(std::string_view in);
// '=' padding optional but, if present, only at the end; nullopt for any
// other character or a lone trailing one.
std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace ferry::core

// Private to the config_*.cpp files: the steps LoadConfig shares with
// ParseConfigString, exposed so that syntax and schema errors can be reported
// together.
#pragma once

#include <string>
#include <string_view>

#include "core/config.h"

namespace ferry::core::internal {

// Parses INI text and applies environment overrides, adding every problem to
// `errors`; returns whatever could be parsed.
RawConfig ParseRaw(std::string_view text, std::string_view name, char** envp,
                   ConfigErrors& errors);
// The whole file, or IoError "path: cannot open: reason".
Result<std::string> ReadFile(const std::string& path);

}  // namespace ferry::core::internal

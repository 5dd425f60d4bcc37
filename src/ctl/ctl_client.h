// ferryctl's two ways to reach a node: its Unix socket, or its HTTP admin
// API (libcurl). Both send one request and feed every reply frame to `out`
// as it arrives. Blocking; ferryctl's only thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ctl/ctl_render.h"

namespace ferry::ctl {

// Errors: kind "unreachable" (no node answers at `path`), "permission" (the
// socket's mode keeps us out), "internal" (a broken or cut reply). A reply's
// own error is in out.error(), not here. `node` names the node in messages.
std::optional<CtlError> RunOverSocket(const std::string& path, const std::string& node,
                                      const std::vector<std::string>& argv, Output& out);

// `url` is the API's base, "http://host:18083". Errors as above, plus
// "unauthorized" for a refused token.
std::optional<CtlError> RunOverHttp(const std::string& url, const std::string& token,
                                    const std::vector<std::string>& argv, Output& out);

}  // namespace ferry::ctl

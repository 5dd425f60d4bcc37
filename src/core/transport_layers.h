// Private to core: the layers a TransportFactory stacks (see transport.h).
#pragma once

#include <memory>
#include <string_view>

#include "core/transport.h"

namespace ferry::core {

// Reads a PROXY v1/v2 header (proxy_protocol.h), then passes bytes through.
// Records the client's address in `owner` (which must outlive the layer).
std::unique_ptr<TransportLayer> MakeProxyLayer(Transport& owner);

// Server-side TLS over memory BIOs. Takes a reference on `ctx`. Records the
// CN of a verified client certificate in `owner` if owner.cn_as_username().
std::unique_ptr<TransportLayer> MakeTlsLayer(SSL_CTX* ctx, Transport& owner);

// The WebSocket upgrade for `path`, then binary frames (websocket.h).
std::unique_ptr<TransportLayer> MakeWebSocketLayer(std::string_view path);

}  // namespace ferry::core

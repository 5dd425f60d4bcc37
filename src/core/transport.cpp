#include "core/transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>

#include "core/openssl_errors.h"
#include "core/transport_layers.h"

namespace ferry::core {

void Transport::Push(std::unique_ptr<TransportLayer> layer) { layers_.push_back(std::move(layer)); }

void Transport::SendBelow(size_t from, std::string bytes, std::string* wire) {
  for (size_t i = from; i-- > 0 && !bytes.empty();) {
    std::string down;
    layers_[i]->Send(bytes, &down);
    bytes.swap(down);
  }
  wire->append(bytes);
}

Status Transport::Receive(std::string_view raw, std::string* app, std::string* wire) {
  std::string current(raw);
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::string up, down;
    Status st = layers_[i]->Receive(current, &up, &down);
    if (!down.empty()) SendBelow(i, std::move(down), wire);
    if (!st.ok()) {
      if (!layers_[i]->established()) handshake_failure_ = layers_[i]->refusal();
      return st;
    }
    current.swap(up);
    // A layer may finish its handshake on bytes that carry nothing above it,
    // so the layers above see every call, even with no input.
  }
  app->append(current);
  if (!held_.empty() && Established()) {
    std::string held;
    held.swap(held_);
    SendBelow(layers_.size(), std::move(held), wire);
  }
  return Status::Ok();
}

void Transport::Send(std::string_view app, std::string* wire) {
  if (app.empty()) return;
  if (!Established()) {
    held_.append(app);
    return;
  }
  SendBelow(layers_.size(), std::string(app), wire);
}

void Transport::Close(std::string* wire) {
  for (size_t i = layers_.size(); i-- > 0;) {
    if (!layers_[i]->established()) continue;
    std::string down;
    layers_[i]->Close(&down);
    if (!down.empty()) SendBelow(i, std::move(down), wire);
  }
}

bool Transport::Established() const {
  return std::all_of(layers_.begin(), layers_.end(),
                     [](const auto& l) { return l->established(); });
}

bool Transport::PeerClosed() const {
  return std::any_of(layers_.begin(), layers_.end(),
                     [](const auto& l) { return l->peer_closed(); });
}

const char* Transport::Stage() const {
  for (const auto& l : layers_) {
    if (!l->established()) return l->stage();
  }
  return nullptr;
}

// ------------------------------------------------------------ factory

Result<SSL_CTX*> CreateServerTlsContext(const TlsOptions& tls, std::string_view id) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Status::IoError("listener " + std::string(id) + ": " + OpenSslErrors());
  auto fail = [&](const std::string& what) -> Result<SSL_CTX*> {
    SSL_CTX_free(ctx);
    return Status::InvalidArgument("listener " + std::string(id) + ": " + what + ": " +
                                   OpenSslErrors());
  };
  SSL_CTX_set_min_proto_version(ctx, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their read and write buffers back: many
  // thousands of quiet TLS clients would otherwise hold ~34 KB each.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.certfile.c_str()) != 1) {
    return fail("certfile '" + tls.certfile + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("keyfile '" + tls.keyfile + "'");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("keyfile '" + tls.keyfile + "' does not match certfile '" + tls.certfile + "'");
  }
  if (!tls.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, tls.ciphers.c_str()) != 1) {
    return fail("ciphers '" + tls.ciphers + "'");
  }
  if (!tls.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, tls.ciphersuites.c_str()) != 1) {
    return fail("ciphersuites '" + tls.ciphersuites + "'");
  }
  if (!tls.cafile.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, tls.cafile.c_str(), nullptr) != 1) {
      return fail("cafile '" + tls.cafile + "'");
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.cafile.c_str());
    if (names == nullptr) return fail("cafile '" + tls.cafile + "' names no CA");
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  int mode = SSL_VERIFY_NONE;
  if (tls.verify_peer) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (tls.fail_if_no_peer_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, mode, nullptr);
  // Resumption (session cache and tickets, OpenSSL's defaults) needs a
  // context id when client certificates are verified.
  std::string sid(id.substr(0, SSL_MAX_SID_CTX_LENGTH));
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(sid.data()),
                                 static_cast<unsigned>(sid.size()));
  return ctx;
}

Result<std::unique_ptr<TransportFactory>> TransportFactory::Create(const ListenerOptions& options) {
  std::unique_ptr<TransportFactory> f(new TransportFactory(options));
  if (options.IsTls()) {
    auto ctx = CreateServerTlsContext(options.tls, options.type + "." + options.name);
    if (!ctx.ok()) return ctx.status();
    f->tls_ = ctx.value();
  }
  return f;
}

TransportFactory::~TransportFactory() { SSL_CTX_free(tls_); }

bool TransportFactory::needed() const {
  return options_.proxy_protocol || options_.IsTls() || options_.IsWebSocket();
}

std::unique_ptr<Transport> TransportFactory::Make() const {
  auto t = std::make_unique<Transport>();
  t->set_cn_as_username(options_.IsTls() && options_.tls.use_cn_as_username);
  if (options_.proxy_protocol) t->Push(MakeProxyLayer(*t));
  if (options_.IsTls()) {
    std::lock_guard lock(mu_);
    t->Push(MakeTlsLayer(tls_, *t));
  }
  if (options_.IsWebSocket()) t->Push(MakeWebSocketLayer(options_.ws_path));
  return t;
}

Status TransportFactory::Reload(const ListenerOptions& options) {
  if (!options_.IsTls()) return Status::Ok();
  auto ctx = CreateServerTlsContext(options.tls, options_.type + "." + options_.name);
  if (!ctx.ok()) return ctx.status();
  std::lock_guard lock(mu_);
  SSL_CTX_free(tls_);  // open connections hold their own references
  tls_ = ctx.value();
  options_.tls = options.tls;
  return Status::Ok();
}

}  // namespace ferry::core

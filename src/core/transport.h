// The transport of a connection: what sits between its socket and its MQTT
// framing. A stack of layers, bottom (socket side) first:
//
//   socket <-> [PROXY header] <-> [TLS] <-> [WebSocket] <-> MQTT bytes
//
//   tcp listener, proxy_protocol = false:  no Transport at all (plain bytes)
//   ssl listener, proxy_protocol = true:   PROXY, TLS
//   wss listener:                          TLS, WebSocket
//
// Each layer is sans-I/O: it takes bytes from below and returns bytes for
// the layer above plus bytes to send below (TLS handshake records and
// alerts, the HTTP 101 answer, WebSocket pongs), and it wraps bytes from
// above. Nothing blocks: TLS runs OpenSSL over memory BIOs.
//
// A Transport holds no reference to a loop, a socket or a worker, so it can
// move with its connection to another worker (see Connection::Detach) in the
// middle of anything: an SSL object, a half-read WebSocket frame and the
// client's real address travel together.
//
// Thread: a Transport is used by one thread at a time (handing it to another
// worker through Loop::Post is the hand-over). A TransportFactory is shared by
// every worker: Make() may be called from any thread, Reload() only from the
// main thread.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/broker_options.h"
#include "core/metrics.h"
#include "core/status.h"

using SSL_CTX = struct ssl_ctx_st;

namespace ferry::core {

class TransportLayer {
 public:
  virtual ~TransportLayer() = default;
  // Bytes from below. Appends what they carry to *up and what must be sent
  // back below to *down. An error closes the connection after *down is sent.
  virtual Status Receive(std::string_view in, std::string* up, std::string* down) = 0;
  // Wraps bytes from above into *down. REQUIRES: established().
  virtual void Send(std::string_view in, std::string* down) = 0;
  // Appends what ends the layer politely (TLS close_notify, WebSocket close),
  // unless it has already ended or failed.
  virtual void Close(std::string* down) = 0;
  // The handshake is done and application bytes may flow both ways.
  virtual bool established() const = 0;
  // The peer ended the layer (close_notify, a WebSocket close frame): treat
  // as end of stream once *down is sent.
  virtual bool peer_closed() const = 0;
  // What the layer waits for while not established, for logs.
  virtual const char* stage() const = 0;
  // How a failure before established() is counted.
  virtual Refusal refusal() const = 0;
};

class Transport {
 public:
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Adds a layer on top of those already there.
  void Push(std::unique_ptr<TransportLayer> layer);

  // Bytes read from the socket: MQTT bytes to *app, bytes to write to *wire.
  Status Receive(std::string_view raw, std::string* app, std::string* wire);
  // MQTT bytes to send; held back until every layer is established.
  void Send(std::string_view app, std::string* wire);
  // Appends the polite ends of every layer, top first.
  void Close(std::string* wire);

  bool Established() const;
  bool PeerClosed() const;
  // The first layer still in its handshake ("TLS handshake"), or nullptr.
  const char* Stage() const;
  // After Receive failed in a layer's handshake: what that refuses the
  // connection for (a bad PROXY header, a failed TLS handshake, a refused
  // WebSocket upgrade). nullopt if Receive has not failed, or failed later.
  std::optional<Refusal> handshake_failure() const { return handshake_failure_; }

  // Once a PROXY header named the client: its address, the first time
  // it is asked for.
  std::optional<std::string> TakeProxiedSource() { return std::exchange(proxied_source_, {}); }
  void set_proxied_source(std::string source) { proxied_source_ = std::move(source); }
  // The common name of a verified client certificate, if the listener
  // takes it as the username (use_cn_as_username); see cn_as_username().
  const std::optional<std::string>& certificate_cn() const { return certificate_cn_; }
  void set_certificate_cn(std::string cn) { certificate_cn_ = std::move(cn); }
  bool cn_as_username() const { return cn_as_username_; }
  void set_cn_as_username(bool on) { cn_as_username_ = on; }

 private:
  // Sends `bytes` produced by layer `from` down through the layers below it.
  void SendBelow(size_t from, std::string bytes, std::string* wire);

  std::vector<std::unique_ptr<TransportLayer>> layers_;  // bottom first
  std::string held_;  // MQTT bytes sent before Established()
  std::optional<std::string> proxied_source_;
  std::optional<Refusal> handshake_failure_;
  std::optional<std::string> certificate_cn_;
  bool cn_as_username_ = false;
};

// The transports of one listener: builds the layer stack for each new
// connection, and owns the listener's TLS context.
class TransportFactory {
 public:
  // Loads the certificate, key and CA files of a TLS listener. Errors:
  // InvalidArgument naming the listener, the file and OpenSSL's reason.
  static Result<std::unique_ptr<TransportFactory>> Create(const ListenerOptions& options);
  ~TransportFactory();
  TransportFactory(const TransportFactory&) = delete;
  TransportFactory& operator=(const TransportFactory&) = delete;

  // False for a plain tcp listener without PROXY protocol: its connections
  // need no Transport.
  bool needed() const;
  // A fresh stack for a new connection. Any thread.
  std::unique_ptr<Transport> Make() const;
  // Re-reads the TLS files (certificate rotation). New connections use them;
  // connections already open keep theirs. On error the old ones stay.
  Status Reload(const ListenerOptions& options);

 private:
  explicit TransportFactory(ListenerOptions options) : options_(std::move(options)) {}

  ListenerOptions options_;
  mutable std::mutex mu_;
  SSL_CTX* tls_ = nullptr;  // guarded by mu_ (the pointer; SSL_CTX is thread-safe)
};

// Builds an SSL_CTX for a server from `tls`; `id` names the listener in
// errors. Exposed for tests.
Result<SSL_CTX*> CreateServerTlsContext(const TlsOptions& tls, std::string_view id);

}  // namespace ferry::core

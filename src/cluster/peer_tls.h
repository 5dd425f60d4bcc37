// TLS on cluster peer links ([cluster] ssl = on): mutual, both ends present
// the node's certificate and verify the other's against the cluster's CA.
// The cookie handshake still runs inside it and still decides who the peer
// is; TLS adds confidentiality and keeps out anyone without a certificate
// from that CA, before a byte of the cluster protocol is read.
//
// PeerTls is sans-I/O over memory BIOs: cipher bytes in, plaintext out, and
// the other way round; the link moves the bytes.
//
// Thread: a PeerTls is used by one thread; an SSL_CTX may be shared.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::cluster {

struct PeerTlsFiles {
  std::string certfile;  // this node's certificate (PEM, chain allowed)
  std::string keyfile;
  std::string cafile;  // the CA that signed every member's certificate
};

// The contexts a node dials (client) and answers (server) with. TLS 1.2 or
// later; the peer's certificate is required and verified. Errors:
// InvalidArgument naming the file OpenSSL could not load and why.
struct PeerTlsContexts {
  std::shared_ptr<SSL_CTX> client;
  std::shared_ptr<SSL_CTX> server;
};
Result<PeerTlsContexts> MakePeerTlsContexts(const PeerTlsFiles& files);

class PeerTls {
 public:
  PeerTls(SSL_CTX* ctx, bool client);
  ~PeerTls();
  PeerTls(const PeerTls&) = delete;
  PeerTls& operator=(const PeerTls&) = delete;

  // The dialling end starts the handshake (its first flight is output).
  void Start();
  // Takes cipher bytes from the network; appends what they decrypt to to
  // `plain`. Errors: the handshake failed (e.g. "certificate verify
  // failed") or a record is bad; the link is then closed.
  Status Feed(std::string_view cipher, std::string& plain);
  // Encrypts `plain` into the output. REQUIRES: ready().
  Status Encrypt(std::string_view plain);
  // The handshake is done: plaintext may flow.
  bool ready() const { return ready_; }
  // Cipher bytes to send (handshake and records), emptied.
  std::string TakeOutput();

 private:
  Status Progress();

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> SSL
  BIO* out_ = nullptr;  // SSL -> network
  bool ready_ = false;
  bool got_data_ = false;  // a record of the peer's decrypted
};

}  // namespace ferry::cluster

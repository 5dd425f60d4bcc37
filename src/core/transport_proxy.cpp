// The PROXY protocol layer of a Transport.
#include <span>

#include "core/proxy_protocol.h"
#include "core/transport_layers.h"

namespace ferry::core {

namespace {

class ProxyLayer : public TransportLayer {
 public:
  explicit ProxyLayer(Transport& owner) : owner_(owner) {}

  Status Receive(std::string_view in, std::string* up, std::string*) override {
    if (done_) {
      up->append(in);
      return Status::Ok();
    }
    if (failed_) return Status::Ok();
    buffer_.append(in);
    auto parsed = ParseProxyHeader(std::span(reinterpret_cast<const uint8_t*>(buffer_.data()),
                                             buffer_.size()));
    if (!parsed.ok()) {
      failed_ = true;
      return parsed.status();
    }
    if (!parsed.value()) return Status::Ok();
    const ProxyHeader& h = *parsed.value();
    if (!h.local) owner_.set_proxied_source(h.source);
    done_ = true;
    up->append(buffer_, h.length);
    std::string().swap(buffer_);
    return Status::Ok();
  }
  void Send(std::string_view in, std::string* down) override { down->append(in); }
  void Close(std::string*) override {}
  bool established() const override { return done_; }
  bool peer_closed() const override { return false; }
  const char* stage() const override { return "PROXY header"; }
  Refusal refusal() const override { return Refusal::kProxyHeader; }

 private:
  Transport& owner_;
  std::string buffer_;  // the header so far (at most 16 + 65535 bytes)
  bool done_ = false;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<TransportLayer> MakeProxyLayer(Transport& owner) {
  return std::make_unique<ProxyLayer>(owner);
}

}  // namespace ferry::core

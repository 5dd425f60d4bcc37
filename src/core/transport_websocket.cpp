// The WebSocket layer of a Transport: the upgrade, then binary frames.
#include "core/transport_layers.h"
#include "core/websocket.h"

namespace ferry::core {

namespace {

class WebSocketLayer : public TransportLayer {
 public:
  explicit WebSocketLayer(std::string_view path) : path_(path) {}

  Status Receive(std::string_view in, std::string* up, std::string* down) override {
    if (failed_) return Status::Ok();
    if (upgraded_) return Read(in, up, down);
    head_.append(in);
    UpgradeResult r = ParseUpgradeRequest(head_, path_);
    switch (r.kind) {
      case UpgradeResult::Kind::kIncomplete:
        return Status::Ok();
      case UpgradeResult::Kind::kReject:
        failed_ = true;
        down->append(r.response);
        return Status::Protocol(ReasonCode::kProtocolError,
                                "WebSocket upgrade refused: " + r.error);
      case UpgradeResult::Kind::kAccept:
        break;
    }
    down->append(r.response);
    upgraded_ = true;
    std::string rest = head_.substr(r.consumed);
    std::string().swap(head_);
    return Read(rest, up, down);
  }

  void Send(std::string_view in, std::string* down) override {
    if (!upgraded_ || ended()) return;
    writer_.Write(in, down);
  }

  void Close(std::string* down) override {
    if (!upgraded_ || ended()) return;
    AppendWebSocketClose(kWsCloseNormal, down);
    close_sent_ = true;
  }

  bool established() const override { return upgraded_; }
  bool peer_closed() const override { return reader_.closed(); }
  const char* stage() const override { return "WebSocket handshake"; }
  Refusal refusal() const override { return Refusal::kWebSocketUpgrade; }

 private:
  Status Read(std::string_view in, std::string* up, std::string* down) {
    Status st = reader_.Feed(in, up, down);
    if (!st.ok()) failed_ = true;
    return st;
  }
  // No frame may follow a close frame [RFC 6455 5.5.1].
  bool ended() const { return failed_ || close_sent_ || reader_.closed(); }

  std::string path_;
  std::string head_;  // the upgrade request so far
  bool upgraded_ = false;
  bool failed_ = false;
  bool close_sent_ = false;
  WebSocketReader reader_;
  WebSocketWriter writer_;  // one frame per MQTT packet
};

}  // namespace

std::unique_ptr<TransportLayer> MakeWebSocketLayer(std::string_view path) {
  return std::make_unique<WebSocketLayer>(path);
}

}  // namespace ferry::core

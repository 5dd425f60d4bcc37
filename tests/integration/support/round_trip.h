// The smallest end-to-end check of a connected client (PahoClient,
// MosqClient): subscribe to a topic, publish to it, and get the message back
// through the broker.
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "types.h"

namespace ferry::testing {

template <typename Client>
::testing::AssertionResult RoundTrip(Client& client, const std::string& topic,
                                     const std::string& payload, int qos) {
  if (auto ok = client.Subscribe(topic, qos); !ok) return ok;
  if (auto ok = client.Publish(topic, payload, qos); !ok) return ok;
  std::optional<ReceivedMessage> m = client.Receive();
  if (!m) return ::testing::AssertionFailure() << "nothing came back on " << topic;
  if (m->topic != topic || m->payload != payload) {
    return ::testing::AssertionFailure() << "got '" << m->payload << "' on " << m->topic;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace ferry::testing

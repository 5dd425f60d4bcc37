// Private to core: what the admin commands ask of one worker. Every function
// runs on that worker's loop thread (reach it with worker.loop().Post) and
// touches only the sessions and connections the worker owns.
//
// Listings page through a worker's sessions in client-id order: a page is the
// `max` smallest ids after a cursor, found with one pass over the worker's
// sessions (pointers only: no row is built for a client that is not on the
// page), so a listing of any size costs one page of memory at a time.
#pragma once

#include <optional>
#include <string>

#include "core/admin.h"
#include "core/status.h"

namespace ferry::core {

class Worker;

class WorkerAdmin {
 public:
  struct ClientFilter {
    std::optional<std::string> username;
    bool connected_only = false;
  };
  // Where a paged listing stands on one worker.
  struct Cursor {
    std::string client_id;  // last client id listed; "" before the first page
    std::string filter;     // last filter of that client listed (subscriptions)
  };

  // Rows (objects as ClientRow) of up to `max` clients after the cursor that
  // pass `filter`, in client-id order; advances the cursor. *exhausted: no
  // client is left after this page.
  static Json ClientRows(Worker& w, Cursor& cursor, size_t max, const ClientFilter& filter,
                         bool* exhausted);
  // One client in detail, with its subscriptions. NotFound if unknown.
  static Result<Json> ClientDetail(Worker& w, const std::string& client_id);
  // Closes the client's connection (v5: DISCONNECT 0x98 administrative
  // action); the session then ends or is kept as after any disconnect.
  // NotFound if unknown or not connected (the message says an offline
  // session is kept, and how to discard it).
  static Status Kick(Worker& w, const std::string& client_id);
  // Ends the client's session, connected or not: a connected client is
  // kicked first; subscriptions, queued messages and the stored session are
  // deleted, and a will waiting out its delay is published (the session
  // ends). True if the client was connected. NotFound if unknown.
  static Result<bool> DiscardSession(Worker& w, const std::string& client_id);

  // Up to `max` subscriptions after the cursor, ordered by client id, then
  // filter.
  static Json SubscriptionRows(Worker& w, Cursor& cursor, size_t max, bool* exhausted);
  static Result<Json> SubscriptionsOf(Worker& w, const std::string& client_id);
  // Subscribes the client as its own SUBSCRIBE would (QoS capped at the
  // node's max_qos, stored if the session is persistent, retained messages
  // sent). Errors: NotFound (no such session); InvalidArgument (bad filter,
  // or a feature the node has turned off).
  static Result<Json> AddSubscription(Worker& w, const std::string& client_id,
                                      const std::string& filter, uint8_t qos);
  // NotFound if there is no such session or subscription.
  static Status DeleteSubscription(Worker& w, const std::string& client_id,
                                   const std::string& filter);
};

// "2026-12-01T16:35:11Z"; "" for 0.
std::string IsoTime(uint64_t unix_ms);

}  // namespace ferry::core

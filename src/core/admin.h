// The admin command registry: every command ferryctl and the HTTP admin API
// can run on a node. Core, bridge and cluster each register their commands
// here at start-up; the admin servers (src/ctl/admin_server.h) and ferryctl
// know no command by name, so a module adds commands without touching them.
//
// A command is a path of words ("clients list", "bridges start"), a usage
// naming its positional arguments ("ID FILTER QOS", "[FILTER]"), options
// ("--limit N", "--connected"), help text and a handler:
//
//   registry.Register({
//       .path = "clients kick",
//       .args = "ID",
//       .summary = "disconnect a client (v5: DISCONNECT 0x98)",
//       .access = AdminAccess::kWrite,
//       .handler = [&](const AdminRequest& req, AdminDone done) {
//         broker.Kick(req.Arg("ID"), [done](Status st) {   // any thread
//           done(st.ok() ? AdminResult::Value({{"kicked", true}}) : AdminResult::Error(st));
//         });
//       }});
//
// Dispatch({"clients", "kick", "c1"}) matches the longest registered path
// that the words start with, checks the remaining words against the usage
// (a missing, extra or malformed argument is a bad argument, answered with
// the usage) and calls the handler with {"ID": "c1"}. A last argument
// written "NAME..." (or "[NAME...]") takes every remaining word: the first
// is Arg("NAME"), all of them are in `rest`.
//
// Results are JSON (nlohmann::ordered_json, so keys keep the order a handler
// wrote them in and human output reads naturally). A result is one value, or
// a listing: column names and a page source that the transport pulls pages
// from as fast as its client reads them, so that listing 100k clients never
// holds more than a page in memory.
//
// Thread rules: AdminRegistry lives on the main loop (the loop given to its
// constructor). Register, Dispatch and the handlers run there. A handler must
// not block: it gathers data from the workers with Loop::Post and answers
// through `done`, which may be called from ANY thread, exactly once; the
// registry brings the result back to the main loop before the transport sees
// it. A page source is likewise called on the main loop, one page at a time,
// and answers from any thread. If the admin client has gone away meanwhile,
// the late answer is dropped; handlers need not care.
//
// Errors: a handler answers AdminResult::Error(status); the Status code is
// the error kind ferryctl's exit code and the HTTP status come from:
//   InvalidArgument -> "bad_argument" (usage is attached; HTTP 400)
//   NotFound        -> "not_found"    (unknown client id, topic ...; HTTP 404)
//   Unavailable, Busy -> "unavailable" (HTTP 503)
//   anything else   -> "internal"     (HTTP 500)
// The message is one line that says what was wrong, e.g. "no client 'c9'".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::core {

class Loop;

using Json = nlohmann::ordered_json;

// Whether a command changes the node. The HTTP API runs kWrite commands only
// for POST; kRead ones for GET and POST.
enum class AdminAccess : uint8_t { kRead, kWrite };

// "--name VALUE" (value_name non-empty) or the flag "--name".
struct AdminOption {
  std::string name;        // without the dashes: "limit"
  std::string value_name;  // "N"; empty for a flag
  std::string help;        // one line
};

// The parsed arguments a handler gets.
struct AdminRequest {
  std::string command;                         // the path: "clients show"
  std::map<std::string, std::string> args;     // positional, by usage name: {"ID": "c1"}
  std::map<std::string, std::string> options;  // by option name; "" for a flag given
  std::vector<std::string> rest;               // the words of a "NAME..." argument

  // The positional argument `name`; "" if it is optional and absent.
  const std::string& Arg(std::string_view name) const;
  bool HasArg(std::string_view name) const;
  bool HasOption(std::string_view name) const;
  // The option's value, if given.
  std::optional<std::string> Option(std::string_view name) const;
  // An unsigned option: `fallback` if absent; InvalidArgument if not a
  // decimal in 0..max.
  Result<uint64_t> UintOption(std::string_view name, uint64_t fallback, uint64_t max) const;
};

// One column of a listing: `key` names the field of each row object,
// `title` heads the column in human output.
struct AdminColumn {
  std::string key;
  std::string title;
};

// One page of a listing: `rows` is a JSON array of objects; `last` says no
// page follows.
struct AdminPage {
  Json rows = Json::array();
  bool last = true;
};

using AdminPageDone = std::function<void(Result<AdminPage>)>;
// Produces the next page of at most `max_rows` rows (max_rows >= 1) and
// answers through `done` (any thread, exactly once). Called on the main loop,
// never again before `done` ran, and not at all after a last page or an
// error. Owns whatever cursor it needs; it is destroyed on the main loop when
// the listing ends or its client goes away.
using AdminPageSource = std::function<void(size_t max_rows, AdminPageDone done)>;

// What a command answers: an error, one value, or a listing.
class AdminResult {
 public:
  // A value; `text`, if not empty, is its human-readable form (otherwise
  // ferryctl renders the JSON itself).
  static AdminResult Value(Json value, std::string text = {});
  static AdminResult List(std::vector<AdminColumn> columns, AdminPageSource source);
  // REQUIRES: !status.ok(). `usage` is attached to bad-argument errors by
  // the registry if the handler gave none.
  static AdminResult Error(Status status, std::string usage = {});

  bool ok() const { return status_.ok(); }
  bool is_list() const { return static_cast<bool>(source_); }
  const Status& status() const { return status_; }
  const std::string& usage() const { return usage_; }
  const Json& value() const { return value_; }
  const std::string& text() const { return text_; }
  const std::vector<AdminColumn>& columns() const { return columns_; }
  AdminPageSource& source() { return source_; }
  void set_usage(std::string usage) { usage_ = std::move(usage); }

 private:
  Status status_;
  std::string usage_;
  Json value_;
  std::string text_;
  std::vector<AdminColumn> columns_;
  AdminPageSource source_;
};

// Any thread, exactly once.
using AdminDone = std::function<void(AdminResult)>;
// Main loop. Must not block; answers through `done`.
using AdminHandler = std::function<void(const AdminRequest&, AdminDone)>;

struct AdminCommand {
  std::string path;  // words separated by single spaces: "subscriptions add"
  // Positional arguments: upper-case names, optional ones in brackets after
  // the required ones, the last one possibly repeated: "ID FILTER QOS",
  // "[LEVEL]", "NAME [FILTER]", "NAME...".
  std::string args;
  std::vector<AdminOption> options;
  std::string summary;  // one line, for the command list
  std::string help;     // optional further paragraphs for `help COMMAND`
  AdminAccess access = AdminAccess::kRead;
  AdminHandler handler;
};

// The error kind of `status` as named above ("bad_argument", ...).
const char* AdminErrorKind(const Status& status);

class AdminRegistry {
 public:
  // Borrows `main_loop`, which must outlive the registry. Registers the
  // built-in `help [COMMAND...]`, which lists commands.
  explicit AdminRegistry(Loop& main_loop);
  ~AdminRegistry();
  AdminRegistry(const AdminRegistry&) = delete;
  AdminRegistry& operator=(const AdminRegistry&) = delete;

  // Adds a command. Errors (InvalidArgument): an empty or malformed path
  // (words of a-z, 0-9, '-' and '_'), a path already registered, a path that
  // is a prefix of another command's path where the shorter one takes
  // positional arguments ("clients ID" and "clients list" cannot both exist,
  // as "clients list" would be ambiguous; "listeners" and "listeners stop ID"
  // can), a malformed usage, an option named twice, no handler. Main loop.
  Status Register(AdminCommand command);

  // A command found and its arguments parsed, ready to run.
  struct Call {
    const AdminCommand* command = nullptr;
    AdminRequest request;
  };
  // Matches `words` to the command with the longest path they start with and
  // parses its arguments (options as
  // "--name VALUE", "--name=VALUE" or "--flag"; "--" ends options).
  // Errors: InvalidArgument "unknown command 'x y'" or a bad argument (see
  // Usage()). Main loop.
  Result<Call> Parse(const std::vector<std::string>& words) const;

  // Runs a parsed call; `done` runs on the main loop, exactly once, with the
  // handler's result (bad-argument errors get the command's usage). Page
  // sources of a listing are wrapped likewise. Main loop.
  void Run(const Call& call, AdminDone done);

  // Parse, then Run; a parse error is answered through `done` (on the main
  // loop, before Dispatch returns).
  void Dispatch(const std::vector<std::string>& words, AdminDone done);

  // Every command, sorted by path.
  std::vector<const AdminCommand*> Commands() const;
  // "clients list [--limit N] [--username U] [--connected]".
  static std::string Usage(const AdminCommand& command);

 private:
  struct Entry;
  const Entry* Match(const std::vector<std::string>& words) const;
  // The usage of the command `words` name, or of those sharing its first word.
  std::string UsageFor(const std::vector<std::string>& words) const;

  Loop& loop_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace ferry::core

// Access control list: which client may publish to, subscribe to and receive
// which topics. The file format is mosquitto's, plus a `deny` access:
//
//   # rules before any 'user' line apply to anonymous clients
//   topic read $SYS/#
//   user alice
//   topic readwrite sensors/#
//   topic deny sensors/secret/#
//   topic write alice/out
//   pattern read devices/%u/%c/#     # pattern lines apply to every client
//   pattern deny secret/#
//
// `topic [read|write|readwrite|deny] FILTER` (no access word = readwrite)
// belongs to the block of the last `user NAME` line above it, or to the
// anonymous block (clients without a username) before the first one.
// `pattern [access] FILTER` applies to every client wherever it appears, with
// %u replaced by the username and %c by the client identifier. The filter is
// the rest of the line (topics may hold spaces); a '#' after whitespace
// starts a comment, except as the filter's first character.
//
// Decisions. A client may publish to topic T (write) or receive a message on
// T (read) if an applicable rule grants that access with a filter matching T,
// and no applicable deny rule matches T: deny wins. A client may subscribe to
// filter F if an applicable read rule's filter covers F (matches every topic
// F matches: "sensors/#" covers "sensors/+/temp") and no deny rule covers F.
// A subscription that only overlaps a deny rule is allowed; CanReceive keeps
// the denied topics from being delivered.
//
// Worked example, for alice (client id "c1") with the file above:
//   CanPublish  alice/out            yes: topic write alice/out
//   CanPublish  sensors/a            yes: topic readwrite sensors/#
//   CanSubscribe sensors/+/temp      yes: sensors/# covers it
//   CanSubscribe sensors/#           yes: the deny rule only overlaps it ...
//   CanReceive  sensors/secret/x     no:  ... and delivery is checked per topic
//   CanSubscribe devices/alice/c1/#  yes: the pattern, after substitution
//   CanSubscribe #                   no:  nothing covers every topic
//   CanPublish  $SYS/x               no:  the anonymous block is not alice's
//
// '$' topics: as in subscriptions [MQTT-4.7.2-1], a grant whose filter starts
// with a wildcard does not reach topics starting with '$' (grant them with
// "$SYS/#"). A deny rule does: "deny #" denies $SYS topics too.
//
// Substitution is never allowed to widen access. A username or client id
// holding '+', '#' or '/' would change the shape of a pattern: "devices/%u/#"
// with username "+" would become "devices/+/#", every user's devices, and
// with "bob/x" it would reach into bob's subtree. So would an empty or absent
// value. A grant pattern therefore does not apply to such a client at all,
// and a deny pattern applies with each affected level widened to '+' (or cut
// to '#' at the first value holding a '/'): the client loses at least what a
// literal reading would deny, and gains nothing.
//
// With no ACL file configured the broker uses AllowAll(). An ACL file without
// any rule denies everything.
//
// Thread-safety: immutable after Load/Parse; any thread may call the const
// methods concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace ferry::core {

class Acl {
 public:
  // Errors: IoError if the file cannot be read; InvalidArgument naming every
  // bad line as "path:line: message", joined by '\n' (unknown keyword, missing
  // filter or username, invalid topic filter, unknown %-substitution).
  static Result<Acl> Load(const std::string& path);
  // The same for text in memory; `name` stands for the path in errors.
  static Result<Acl> Parse(std::string_view text, std::string_view name);
  // Everything allowed: no ACL configured.
  static Acl AllowAll();

  // `username` is std::nullopt for a client that sent no username.
  // `topic` is a valid topic name, `filter` a valid topic filter; a shared
  // subscription "$share/GROUP/F" is checked as F.
  bool CanPublish(const std::optional<std::string>& username, std::string_view client_id,
                  std::string_view topic) const;
  bool CanSubscribe(const std::optional<std::string>& username, std::string_view client_id,
                    std::string_view filter) const;
  bool CanReceive(const std::optional<std::string>& username, std::string_view client_id,
                  std::string_view topic) const;

 private:
  enum Access : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3, kDeny = 4 };
  struct Rule {
    Access access = kReadWrite;
    std::string filter;  // for patterns, with %u / %c still in it
  };
  enum class Subject { kTopicName, kTopicFilter };

  bool Allowed(const std::optional<std::string>& username, std::string_view client_id,
               Access wanted, std::string_view subject, Subject kind) const;

  bool allow_all_ = false;
  std::vector<Rule> anonymous_;
  std::unordered_map<std::string, std::vector<Rule>> users_;
  std::vector<Rule> patterns_;
};

// True if every topic name `filter` matches is also matched by `rule` (both
// valid topic filters). With `dollar_rule` false, wildcards at the first
// level of `rule` also cover '$' topics. Conservative: may answer false for
// some equal sets written differently ("+/#" vs "#").
bool FilterCovers(std::string_view rule, std::string_view filter, bool dollar_rule = true);

}  // namespace ferry::core

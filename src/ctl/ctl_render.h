// ferryctl's output: turns the reply frames of admin_api.h into text for a
// person (tables, "key : value" lines) or JSON for a script (--json), and
// keeps the error a reply ended with. Listings are written as their pages
// arrive, so a listing of any size is never held in memory.
//
// Thread: ferryctl's only thread.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "ctl/admin_api.h"

namespace ferry::ctl {

// An error as ferryctl reports it: one line on stderr, the exit code of its
// kind, and the usage for a bad argument.
struct CtlError {
  std::string kind;
  std::string message;
  std::string usage;
};

class Output {
 public:
  Output(bool json, FILE* out) : json_(json), out_(out) {}

  // Handles one frame (already decoded). Returns false on a frame that does
  // not fit the reply so far (the reply is then broken).
  bool OnFrame(const Json& frame);
  // True once a whole reply (value, error, or list through its end) arrived.
  bool complete() const { return complete_; }
  const std::optional<CtlError>& error() const { return error_; }

 private:
  void PrintValue(const Json& result);
  void PrintRows(const Json& rows);

  bool json_;
  FILE* out_;
  bool complete_ = false;
  bool in_list_ = false;
  uint64_t rows_ = 0;
  std::vector<std::string> keys_;
  std::vector<std::string> titles_;
  std::vector<size_t> widths_;  // fixed by the first page of a listing
  std::optional<CtlError> error_;
};

// A table cell: "-" for null, yes/no for booleans, strings unquoted.
std::string Cell(const Json& v);

// Splits a byte stream into lines and hands each complete one to `on_line`
// (without the '\n'). Returns false if a line grows beyond `max` bytes.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max) : max_(max) {}
  template <typename OnLine>
  bool Feed(const char* data, size_t n, OnLine&& on_line) {
    buf_.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = buf_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!on_line(std::string_view(buf_).substr(start, nl - start))) return false;
    }
    buf_.erase(0, start);
    return buf_.size() <= max_;
  }
  bool empty() const { return buf_.empty(); }

 private:
  size_t max_;
  std::string buf_;
};

}  // namespace ferry::ctl

// The ferryd config a test node runs with, kept as ordered INI sections so a
// test can start from the base config and change single keys.
//
// Example: with a base of
//   [node]
//   name = test@127.0.0.1
// Merge("[node]\nworkers = 1\n[mqtt]\nmax_packet_size = 1024\n") keeps `name`,
// adds `workers`, and appends the [mqtt] section. Merge replaces a key that
// is already set; a key repeated inside one merged text is kept repeated, so
// list-valued keys survive. Comments in merged text are dropped.
//
// Thread: one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::testing {

class IniConfig {
 public:
  // Sets `key` in `section` to `value`, replacing every earlier value of it and
  // creating the section at the end if it is new.
  void Set(std::string_view section, std::string_view key, std::string_view value);

  // Removes every value of `key` in `section`.
  void Erase(std::string_view section, std::string_view key);

  // The last value of `key` in `section`, if any.
  std::optional<std::string> Get(std::string_view section, std::string_view key) const;

  // Section names in order.
  std::vector<std::string> Sections() const;

  // Merges INI `text` into this config as described above. Fails, naming the
  // line, on a line that is neither blank, a comment, a [section] header nor
  // key = value, and on a key before the first section; nothing is merged then.
  ::testing::AssertionResult Merge(std::string_view text);

  // The config as INI text, sections and keys in order.
  std::string Render() const;

 private:
  struct Section {
    std::string name;
    std::vector<std::pair<std::string, std::string>> entries;
  };

  Section& FindOrAdd(std::string_view name);
  const Section* Find(std::string_view name) const;

  std::vector<Section> sections_;
};

}  // namespace ferry::testing

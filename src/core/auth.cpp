// Password file of core/auth.h.
#include "core/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <variant>
#include <vector>

#include "core/atomic_file.h"
#include "core/base64.h"
#include "core/config_internal.h"

namespace ferry::core {

namespace {

constexpr size_t kHashSize = 64;  // SHA-512
constexpr size_t kSaltSize = 12;  // as mosquitto_passwd
constexpr int kMaxIterations = 10'000'000;

std::string Pbkdf2(std::string_view password, std::string_view salt, int iterations) {
  std::string out(kHashSize, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha512(),
                    static_cast<int>(kHashSize), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string SaltedSha512(std::string_view password, std::string_view salt) {
  std::string out(kHashSize, '\0');
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return out;
  EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr);
  EVP_DigestUpdate(ctx, password.data(), password.size());
  EVP_DigestUpdate(ctx, salt.data(), salt.size());
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::vector<std::string_view> SplitDollar(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '$') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

struct ParsedHash {
  bool pbkdf2 = true;
  int iterations = 0;
  std::string salt;
  std::string hash;
};

// "$7$iter$salt$hash" or "$6$salt$hash"; on failure returns why.
std::variant<ParsedHash, std::string> ParseHash(std::string_view text) {
  std::vector<std::string_view> p = SplitDollar(text);
  ParsedHash h;
  std::string_view salt, hash;
  if (p.size() == 5 && p[0].empty() && p[1] == "7") {
    auto [ptr, ec] = std::from_chars(p[2].data(), p[2].data() + p[2].size(), h.iterations);
    if (ec != std::errc() || ptr != p[2].data() + p[2].size() || h.iterations < 1 ||
        h.iterations > kMaxIterations) {
      return "iterations must be a number in 1.." + std::to_string(kMaxIterations);
    }
    salt = p[3];
    hash = p[4];
  } else if (p.size() == 4 && p[0].empty() && p[1] == "6") {
    h.pbkdf2 = false;
    salt = p[2];
    hash = p[3];
  } else {
    return std::string("unsupported password hash (expected $7$ or $6$, as written by mosquitto_passwd)");
  }
  std::optional<std::string> s = Base64Decode(salt);
  if (!s || s->empty()) return std::string("salt is not valid base64");
  std::optional<std::string> d = Base64Decode(hash);
  if (!d || d->size() != kHashSize) return std::string("hash is not 64 bytes of base64");
  h.salt = std::move(*s);
  h.hash = std::move(*d);
  return h;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The username of an entry line (all of it if there is no ':'), or nullopt
// for comments and blank lines.
std::optional<std::string_view> LineUser(std::string_view line) {
  line = TrimRight(TrimLeft(line));
  if (line.empty() || line.front() == '#') return std::nullopt;
  return line.substr(0, line.find(':'));
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return lines;
}

Status CheckUsername(std::string_view username) {
  if (username.empty()) return Status::InvalidArgument("username must not be empty");
  for (char c : username) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return Status::InvalidArgument("username must not contain ':' or control characters");
    }
  }
  if (username.front() == '#' || username.front() == ' ') {
    return Status::InvalidArgument("username must not start with '#' or a space");
  }
  return Status::Ok();
}

// Reads the file, or an empty text (and *exists = false) if it is missing.
Result<std::string> ReadExisting(const std::string& path, bool* exists, mode_t* mode) {
  struct stat st;
  *exists = ::stat(path.c_str(), &st) == 0;
  if (!*exists) {
    if (errno != ENOENT) return Status::IoError(path + ": " + std::strerror(errno));
    *mode = 0600;
    return std::string();
  }
  *mode = st.st_mode & 07777;
  return internal::ReadFile(path);
}

Result<std::string> MakeEntry(std::string_view username, std::string_view password,
                              int iterations) {
  unsigned char salt[kSaltSize];
  if (RAND_bytes(salt, sizeof(salt)) != 1) return Status::IoError("no random bytes for a salt");
  std::string_view s(reinterpret_cast<const char*>(salt), sizeof(salt));
  return std::string(username) + ":$7$" + std::to_string(iterations) + "$" + Base64Encode(s) +
         "$" + Base64Encode(Pbkdf2(password, s, iterations));
}

// Rewrites the file with `username`'s entries replaced by `entry` (or
// removed if `entry` is empty). *found tells whether there were any.
Status Rewrite(const std::string& path, std::string_view username, const std::string& entry,
               bool* found) {
  bool exists = false;
  mode_t mode = 0600;
  Result<std::string> old = ReadExisting(path, &exists, &mode);
  if (!old.ok()) return old.status();
  std::string text;
  *found = false;
  for (std::string_view line : SplitLines(old.value())) {
    if (LineUser(line) == username) {
      if (!*found && !entry.empty()) text += entry + "\n";
      *found = true;
      continue;
    }
    text.append(line).push_back('\n');
  }
  if (!*found && !entry.empty()) text += entry + "\n";
  if (!*found && entry.empty()) return Status::Ok();
  return WriteFileAtomically(path, text, mode);
}

}  // namespace

Result<PasswordFile> PasswordFile::Parse(std::string_view text, std::string_view name) {
  PasswordFile file;
  std::unordered_map<std::string, int> first_line;
  std::string errors;
  auto fail = [&](int line, const std::string& msg) {
    if (!errors.empty()) errors += '\n';
    errors += std::string(name) + ":" + std::to_string(line) + ": " + msg;
  };
  int lineno = 0;
  for (std::string_view line : SplitLines(text)) {
    ++lineno;
    std::optional<std::string_view> user = LineUser(line);
    if (!user) continue;
    line = TrimRight(TrimLeft(line));
    if (line.find(':') == std::string_view::npos) {
      fail(lineno, "expected 'username:hash'");
      continue;
    }
    if (user->empty()) {
      fail(lineno, "empty username");
      continue;
    }
    auto parsed = ParseHash(line.substr(user->size() + 1));
    if (auto* why = std::get_if<std::string>(&parsed)) {
      fail(lineno, *why);
      continue;
    }
    auto [it, inserted] = first_line.emplace(std::string(*user), lineno);
    if (!inserted) {
      fail(lineno, "duplicate user '" + std::string(*user) + "' (first at line " +
                       std::to_string(it->second) + ")");
      continue;
    }
    auto& h = std::get<ParsedHash>(parsed);
    file.entries_[std::string(*user)] =
        Entry{h.pbkdf2, h.iterations, std::move(h.salt), std::move(h.hash)};
  }
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return file;
}

Result<PasswordFile> PasswordFile::Load(const std::string& path) {
  Result<std::string> text = internal::ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(text.value(), path);
}

bool PasswordFile::Check(std::string_view username, std::string_view password) const {
  auto it = entries_.find(std::string(username));
  if (it == entries_.end()) {
    // Same work as a real check, so an unknown user does not answer faster.
    static const std::string kDummySalt(kSaltSize, 'x');
    (void)Pbkdf2(password, kDummySalt, 10000);
    return false;
  }
  const Entry& e = it->second;
  std::string got = e.pbkdf2 ? Pbkdf2(password, e.salt, e.iterations) : SaltedSha512(password, e.salt);
  return got.size() == e.hash.size() && CRYPTO_memcmp(got.data(), e.hash.data(), got.size()) == 0;
}

bool PasswordFile::Contains(std::string_view username) const {
  return entries_.count(std::string(username)) != 0;
}

Status SetPassword(const std::string& path, std::string_view username, std::string_view password,
                   int iterations) {
  if (Status s = CheckUsername(username); !s.ok()) return s;
  if (iterations < 1 || iterations > kMaxIterations) {
    return Status::InvalidArgument("iterations must be in 1.." + std::to_string(kMaxIterations));
  }
  Result<std::string> entry = MakeEntry(username, password, iterations);
  if (!entry.ok()) return entry.status();
  bool found = false;
  return Rewrite(path, username, entry.value(), &found);
}

Status DeleteUser(const std::string& path, std::string_view username) {
  bool found = false;
  if (Status s = Rewrite(path, username, "", &found); !s.ok()) return s;
  if (!found) return Status::NotFound("user '" + std::string(username) + "' is not in " + path);
  return Status::Ok();
}

}  // namespace ferry::core

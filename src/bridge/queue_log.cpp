// QueueLog: segments, records, recovery, trimming (see queue_log.h).
#include "bridge/queue_log.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/packet.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;

constexpr char kMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'Q', '0', '1'};
constexpr size_t kHeaderBytes = 16;
constexpr size_t kRecordHeaderBytes = 8;
constexpr uint8_t kMessageRecord = 0x01;
constexpr uint8_t kHeadRecord = 0x02;
constexpr uint8_t kReleasedRecord = 0x03;
constexpr uint8_t kUnreleasedRecord = 0x04;
// A record longer than this is damage, not a message: MQTT packets are at
// most 256 MB.
constexpr uint32_t kMaxRecordBody = 268435455u + 64;
constexpr size_t kReadChunk = 256 * 1024;
constexpr char kHeadFileName[] = "head";
constexpr size_t kHeadSlotBytes = 16;

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string SegmentName(uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return name;
}

// The first seq in a segment's name, or 0 if `name` is not a segment name.
uint64_t ParseSegmentName(const std::string& name) {
  if (name.size() != 24 || !name.ends_with(".seg")) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return v;
}

// Reserves a record header, lets `body` append the body after it, then
// fills in its length and checksum: no copy of the body.
template <typename Body>
void AppendRecord(std::string& out, Body&& body) {
  const size_t header = out.size();
  out.append(kRecordHeaderBytes, '\0');
  body(out);
  const std::string_view written(out.data() + header + kRecordHeaderBytes,
                                 out.size() - header - kRecordHeaderBytes);
  std::string fields;
  PutU32(fields, static_cast<uint32_t>(written.size()));
  PutU32(fields, Crc32c(written));
  out.replace(header, kRecordHeaderBytes, fields);
}

void AppendMessageRecord(std::string& out, const QueuedMessage& m) {
  AppendRecord(out, [&](std::string& body) {
    const core::Message& msg = *m.message;
    body.push_back(static_cast<char>(kMessageRecord));
    PutU64(body, m.seq);
    PutU64(body, m.enqueued_ms);
    PutU64(body, msg.expiry_at_ms);
    body.push_back(static_cast<char>(msg.qos));
    core::PublishView p;
    p.topic = msg.topic;
    p.payload = msg.payload;
    p.retain = msg.retain;
    p.props = &msg.props;
    core::EncodePublish(p, core::ProtocolVersion::kV5, body);
  });
}

void AppendHeadRecord(std::string& out, uint64_t head) {
  AppendRecord(out, [&](std::string& body) {
    body.push_back(static_cast<char>(kHeadRecord));
    PutU64(body, head);
  });
}

void AppendReleasedRecord(std::string& out, const std::vector<uint64_t>& seqs) {
  AppendRecord(out, [&](std::string& body) {
    body.push_back(static_cast<char>(kReleasedRecord));
    for (uint64_t seq : seqs) PutU64(body, seq);
  });
}

void AppendUnreleasedRecord(std::string& out) {
  AppendRecord(out, [&](std::string& body) { body.push_back(static_cast<char>(kUnreleasedRecord)); });
}

// Decodes a message record body (after the type byte was checked).
Result<QueuedMessage> DecodeMessage(std::string_view body) {
  constexpr size_t kFixed = 1 + 8 + 8 + 8 + 1;
  if (body.size() < kFixed) return Status::Corruption("message record too short");
  QueuedMessage m;
  m.seq = GetU64(body.data() + 1);
  m.enqueued_ms = GetU64(body.data() + 9);
  auto msg = std::make_shared<core::Message>();
  msg->expiry_at_ms = GetU64(body.data() + 17);
  msg->qos = static_cast<uint8_t>(body[25]);
  if (msg->qos > 2) return Status::Corruption("bad QoS in message record");
  std::span<const uint8_t> packet(reinterpret_cast<const uint8_t*>(body.data() + kFixed),
                                  body.size() - kFixed);
  auto header = core::ParseFixedHeader(packet, kMaxRecordBody);
  if (!header.ok() || !header.value() ||
      header.value()->total_length() != packet.size()) {
    return Status::Corruption("bad PUBLISH in message record");
  }
  const core::FixedHeader& h = *header.value();
  auto decoded = core::Decode(h, packet.subspan(h.header_length), core::ProtocolVersion::kV5);
  if (!decoded.ok() || !std::holds_alternative<core::Publish>(decoded.value())) {
    return Status::Corruption("bad PUBLISH in message record");
  }
  core::Publish& p = std::get<core::Publish>(decoded.value());
  msg->topic = std::move(p.topic);
  msg->payload = std::move(p.payload);
  msg->retain = p.retain;
  msg->props = std::move(p.props);
  msg->received_at_ms = m.enqueued_ms;
  msg->path = core::NodePathOf(msg->props);
  m.message = std::move(msg);
  return m;
}

// Reads the records of one file in order, in chunks.
class RecordReader {
 public:
  enum class Outcome { kRecord, kEnd, kDamaged };

  RecordReader(QueueFile& file, uint64_t offset) : file_(file), offset_(offset) {}

  // On kRecord, `body` holds the record's body and offset() the next
  // record. On kDamaged, offset() is where the damage starts.
  Outcome Next(std::string* body, Status* io_error) {
    if (!Fill(kRecordHeaderBytes, io_error)) {
      return buffered() == 0 ? Outcome::kEnd : Outcome::kDamaged;
    }
    const char* p = buf_.data() + pos_;
    uint32_t length = GetU32(p);
    uint32_t crc = GetU32(p + 4);
    if (length == 0 || length > kMaxRecordBody) return Outcome::kDamaged;
    if (!Fill(kRecordHeaderBytes + length, io_error)) return Outcome::kDamaged;
    body->assign(buf_.data() + pos_ + kRecordHeaderBytes, length);
    if (Crc32c(*body) != crc) return Outcome::kDamaged;
    pos_ += kRecordHeaderBytes + length;
    offset_ += kRecordHeaderBytes + length;
    return Outcome::kRecord;
  }

  uint64_t offset() const { return offset_; }

 private:
  size_t buffered() const { return buf_.size() - pos_; }

  // Makes `n` bytes available at pos_; false at the end of the file or on
  // an I/O error (*io_error set).
  bool Fill(size_t n, Status* io_error) {
    if (buffered() >= n) return true;
    buf_.erase(0, pos_);
    pos_ = 0;
    std::string chunk;
    while (buf_.size() < n) {
      uint64_t at = offset_ + buf_.size();
      Status s = file_.ReadAt(at, std::max(kReadChunk, n - buf_.size()), &chunk);
      if (!s.ok()) {
        *io_error = s;
        return false;
      }
      if (chunk.empty()) return false;
      buf_.append(chunk);
    }
    return true;
  }

  QueueFile& file_;
  uint64_t offset_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace

size_t QueuedMessage::bytes() const {
  if (!message) return 64;
  return 64 + message->topic.size() + message->payload.size();
}

uint64_t QueueLog::SegmentBytesFor(uint64_t max_bytes, uint64_t fs_bytes) {
  // On a file system smaller than max_bytes the disk is the bound (see "A
  // full disk"): a segment is a sixteenth of it, so that dropping one for
  // space never drops most of the queue.
  const uint64_t bound = fs_bytes > 0 ? std::min(max_bytes, fs_bytes) : max_bytes;
  return std::clamp<uint64_t>(bound / 16, 16 * 1024, 64 << 20);
}

QueueLog::QueueLog(Options options)
    : options_(std::move(options)), segment_bytes_(SegmentBytesFor(options_.max_bytes)) {}

void QueueLog::Warn(const std::string& line) const {
  if (options_.warn) options_.warn(line);
}

Result<std::unique_ptr<QueueLog>> QueueLog::Open(const Options& options) {
  std::unique_ptr<QueueLog> log(new QueueLog(options));
  if (Status s = log->Recover(); !s.ok()) return s;
  return log;
}

Status QueueLog::Recover() {
  QueueEnv& env = *options_.env;
  if (Status s = env.CreateDirs(options_.dir); !s.ok()) return s;
  segment_bytes_ = SegmentBytesFor(options_.max_bytes, env.FileSystemBytes(options_.dir));
  if (Status s = ReadHeadFile(); !s.ok()) return s;
  auto names = env.ListDir(options_.dir);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> firsts;
  for (const std::string& name : names.value()) {
    if (uint64_t first = ParseSegmentName(name); first != 0) firsts.push_back(first);
  }
  std::sort(firsts.begin(), firsts.end());
  for (uint64_t first : firsts) {
    Segment s;
    s.first_seq = first;
    s.path = options_.dir + "/" + SegmentName(first);
    segments_.push_back(std::move(s));
  }
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (Status s = ScanSegment(segments_[i], i + 1 == segments_.size()); !s.ok()) return s;
  }
  if (segments_.empty()) {
    // A fresh log, or one whose last segment was deleted after the head
    // file recorded that everything in it was done: carry on from there.
    next_seq_ = std::max<uint64_t>(head_, 1);
    head_ = next_seq_;
    if (Status s = StartSegment(next_seq_); !s.ok()) return s;
    CreateHeadFile();
    return Status::Ok();
  }
  // Every message of a deleted segment was done.
  head_ = std::max(head_, segments_.front().first_seq);
  for (const Segment& s : segments_) {
    next_seq_ = std::max({next_seq_, s.first_seq, s.last_seq + 1});
    bytes_ += s.file->Size();
  }
  // A head past the last message: messages that went upstream before they
  // were written (or whose segment was cut back); their numbers are used.
  next_seq_ = std::max(next_seq_, head_);
  // Messages after damage in an older segment: up to where the next begins.
  for (size_t i = 0; i + 1 < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (!s.damaged) continue;
    const uint64_t from = std::max(head_, std::max(s.first_seq, s.last_seq + 1));
    const uint64_t end = segments_[i + 1].first_seq;
    if (end > from) lost_at_recovery_ += end - from;
  }
  recorded_head_ = head_;
  ForgetReleasedBelowHead();
  // Only the newest segment stays open.
  for (size_t i = 0; i + 1 < segments_.size(); ++i) segments_[i].file.reset();
  RemoveDoneSegments();
  CreateHeadFile();
  return Status::Ok();
}

void QueueLog::CreateHeadFile() {
  // Made while there is space, so that a full disk later only overwrites it.
  if (head_file_) return;
  if (Status s = WriteHeadFile(head_); !s.ok()) {
    Warn(s.ToString() + "; the head file is made once there is space");
  }
}

Status QueueLog::ScanSegment(Segment& s, bool newest) {
  auto file = options_.env->Open(s.path, /*create=*/false);
  if (!file.ok()) return file.status();
  s.file = std::move(file).value();
  std::string header;
  if (Status st = s.file->ReadAt(0, kHeaderBytes, &header); !st.ok()) return st;
  if (header.size() < kHeaderBytes) {
    // A crash right after the newest segment was created leaves it short;
    // an older segment that short is damage we cannot interpret.
    if (!newest) return Status::Corruption(s.path + ": segment shorter than its header");
    Warn(s.path + ": segment header incomplete (the node stopped while creating it); rewriting it");
    if (Status st = s.file->Truncate(0); !st.ok()) return st;
    std::string h(kMagic, sizeof kMagic);
    PutU64(h, s.first_seq);
    return s.file->Append(h);
  }
  if (std::memcmp(header.data(), kMagic, sizeof kMagic) != 0 ||
      GetU64(header.data() + 8) != s.first_seq) {
    return Status::Corruption(s.path + ": not a ferry bridge queue segment (bad header)");
  }
  RecordReader reader(*s.file, kHeaderBytes);
  std::string body;
  Status io;
  for (;;) {
    RecordReader::Outcome o = reader.Next(&body, &io);
    if (!io.ok()) return io;
    if (o == RecordReader::Outcome::kEnd) return Status::Ok();
    bool bad = o == RecordReader::Outcome::kDamaged;
    if (!bad && body[0] == kHeadRecord && body.size() == 9) {
      head_ = std::max(head_, GetU64(body.data() + 1));
      continue;
    }
    if (!bad && body[0] == kReleasedRecord && body.size() % 8 == 1) {
      for (size_t at = 1; at < body.size(); at += 8) released_.insert(GetU64(body.data() + at));
      continue;
    }
    if (!bad && body[0] == kUnreleasedRecord && body.size() == 1) {
      released_.clear();
      continue;
    }
    if (!bad && body[0] == kMessageRecord && body.size() >= 26) {
      uint64_t seq = GetU64(body.data() + 1);
      if (seq >= s.first_seq && seq > s.last_seq) {
        s.last_seq = seq;
        ++s.messages;
        s.newest_ms = std::max(s.newest_ms, GetU64(body.data() + 9));
        continue;
      }
    }
    // Damage. In the newest segment it is the torn tail of the last write.
    const uint64_t at = reader.offset();
    if (newest) {
      Warn(s.path + ": cutting off " + std::to_string(s.file->Size() - at) +
           " bytes of an incomplete write at offset " + std::to_string(at) +
           " (the node stopped while writing; none of it had been acknowledged)");
      return s.file->Truncate(at);
    }
    Warn(s.path + ": damaged record at offset " + std::to_string(at) +
         "; the rest of this segment is skipped and its messages are lost");
    s.damaged = true;
    return Status::Ok();
  }
}

Status QueueLog::ReadHeadFile() {
  const std::string path = options_.dir + "/" + kHeadFileName;
  auto names = options_.env->ListDir(options_.dir);
  if (!names.ok()) return names.status();
  if (std::find(names->begin(), names->end(), kHeadFileName) == names->end()) return Status::Ok();
  auto file = options_.env->Open(path, /*create=*/false);
  if (!file.ok()) return file.status();
  head_file_ = std::move(file).value();
  std::string data;
  if (Status s = head_file_->ReadAt(0, 2 * kHeadSlotBytes, &data); !s.ok()) return s;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (data.size() < (slot + 1) * kHeadSlotBytes) break;
    const char* p = data.data() + slot * kHeadSlotBytes;
    if (Crc32c(std::string_view(p, 8)) != GetU32(p + 8)) continue;  // torn or never written
    const uint64_t head = GetU64(p);
    if (head > head_file_value_) {
      head_file_value_ = head;
      head_slot_ = static_cast<int>(slot) ^ 1;  // overwrite the other one next
    }
  }
  if (data.size() < 2 * kHeadSlotBytes) {
    // Created but never completed (the node stopped, or the disk was full):
    // written whole again at the next head.
    head_file_.reset();
  }
  head_ = std::max(head_, head_file_value_);
  return Status::Ok();
}

Status QueueLog::WriteHeadFile(uint64_t head) {
  if (head <= head_file_value_ && head_file_) return Status::Ok();
  std::string slot;
  PutU64(slot, head);
  PutU32(slot, Crc32c(slot));
  PutU32(slot, 0);
  if (!head_file_) {
    // Both slots at once; a file that is not whole is not used.
    const std::string path = options_.dir + "/" + kHeadFileName;
    auto file = options_.env->Open(path, /*create=*/true);
    if (!file.ok()) return file.status();
    std::unique_ptr<QueueFile> f = std::move(file).value();
    Status s = f->Truncate(0);
    if (s.ok()) s = f->Append(slot + slot);
    if (!s.ok()) {
      options_.env->Remove(path);
      return s;
    }
    head_file_ = std::move(f);
    head_slot_ = 0;
    dir_dirty_ = true;
  } else if (Status s = head_file_->WriteAt(head_slot_ * kHeadSlotBytes, slot); !s.ok()) {
    return s;
  }
  head_slot_ ^= 1;
  head_file_value_ = head;
  head_file_dirty_ = true;
  return Status::Ok();
}

Status QueueLog::RecordHead(uint64_t head, bool reclaim_newest) {
  head = std::max(head, head_);
  if (head > next_seq_) {
    // Sent and acknowledged before it was written: never to be written.
    next_seq_ = head;
  }
  Status s = head <= head_file_value_ && head_file_ ? Status::Ok() : WriteHeadFile(head);
  if (!s.ok()) {
    // The head is not recorded anywhere yet: deleting what it covers could
    // only be done where recovery does not need it (older segments, whose
    // successor then says where the head is at least).
    head_ = head;
    RemoveDoneSegments();
    return s;
  }
  head_ = head;
  recorded_head_ = std::max(recorded_head_, head_);
  ForgetReleasedBelowHead();
  RemoveDoneSegments();
  Segment& newest = segments_.back();
  if (reclaim_newest && head_ >= next_seq_ && newest.file && newest.file->Size() > kHeaderBytes) {
    // Everything in it is done and the head file says so: give its space
    // back, keeping the header, and go on appending to it.
    const uint64_t size = newest.file->Size();
    if (Status t = newest.file->Truncate(kHeaderBytes); !t.ok()) return t;
    bytes_ -= std::min(bytes_, size - kHeaderBytes);
    newest.last_seq = 0;
    newest.messages = 0;
    newest.newest_ms = 0;
    if (cursor_.first_seq == newest.first_seq) cursor_ = ReadCursor{};
  }
  return Status::Ok();
}

Status QueueLog::StartSegment(uint64_t first_seq) {
  Segment s;
  s.first_seq = first_seq;
  s.path = options_.dir + "/" + SegmentName(first_seq);
  auto file = options_.env->Open(s.path, /*create=*/true);
  if (!file.ok()) return file.status();
  s.file = std::move(file).value();
  if (Status st = s.file->Truncate(0); !st.ok()) return st;
  std::string data(kMagic, sizeof kMagic);
  PutU64(data, first_seq);
  AppendHeadRecord(data, head_);
  if (Status st = s.file->Append(data); !st.ok()) {
    options_.env->Remove(s.path);
    return st;
  }
  if (!segments_.empty()) segments_.back().file.reset();
  bytes_ += s.file->Size();
  recorded_head_ = head_;
  segments_.push_back(std::move(s));
  dir_dirty_ = true;
  return Status::Ok();
}

Status QueueLog::RemoveSegment(size_t index) {
  Segment& s = segments_[index];
  uint64_t size = 0;
  if (s.file) {
    size = s.file->Size();
  } else if (auto f = options_.env->Open(s.path, false); f.ok()) {
    size = f.value()->Size();
  }
  if (Status st = options_.env->Remove(s.path); !st.ok()) return st;
  bytes_ -= std::min(bytes_, size);
  if (cursor_.first_seq == s.first_seq) cursor_ = ReadCursor{};
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(index));
  dir_dirty_ = true;
  return Status::Ok();
}

void QueueLog::ForgetReleasedBelowHead() {
  released_.erase(released_.begin(), released_.lower_bound(head_));
}

void QueueLog::RemoveDoneSegments() {
  // A segment is done when the next one starts at or below the head.
  while (segments_.size() > 1 && segments_[1].first_seq <= head_) {
    if (Status st = RemoveSegment(0); !st.ok()) {
      Warn(st.ToString());
      return;
    }
  }
}

Status QueueLog::Append(const std::vector<QueuedMessage>& messages, uint64_t head,
                        const std::vector<uint64_t>& released, bool unrelease) {
  // What to restore if a write fails.
  const size_t segments_before = segments_.size();
  const uint64_t size_before = segments_.back().file->Size();
  const uint64_t saved_last_seq = segments_.back().last_seq;
  const uint64_t saved_messages = segments_.back().messages;
  const uint64_t saved_newest_ms = segments_.back().newest_ms;
  const uint64_t next_before = next_seq_, bytes_before = bytes_, recorded_before = recorded_head_;
  const uint64_t head_before = head_;

  auto rollback = [&](Status error) {
    while (segments_.size() > segments_before) {
      options_.env->Remove(segments_.back().path);
      segments_.pop_back();
    }
    Segment& last = segments_.back();
    if (!last.file) {
      auto f = options_.env->Open(last.path, false);
      if (f.ok()) last.file = std::move(f).value();
    }
    if (last.file) last.file->Truncate(size_before);
    last.last_seq = saved_last_seq;
    last.messages = saved_messages;
    last.newest_ms = saved_newest_ms;
    next_seq_ = next_before;
    bytes_ = bytes_before;
    recorded_head_ = recorded_before;
    head_ = head_before;
    return error;
  };

  head_ = std::max(head_, head);
  buffer_.clear();
  for (const QueuedMessage& m : messages) {
    Segment* seg = &segments_.back();
    if (seg->file->Size() + buffer_.size() >= segment_bytes_ && (seg->messages > 0 || !buffer_.empty())) {
      if (Status s = seg->file->Append(buffer_); !s.ok()) return rollback(s);
      bytes_ += buffer_.size();
      buffer_.clear();
      if (Status s = StartSegment(m.seq); !s.ok()) return rollback(s);
      seg = &segments_.back();
    }
    AppendMessageRecord(buffer_, m);
    seg->last_seq = m.seq;
    ++seg->messages;
    seg->newest_ms = std::max(seg->newest_ms, m.enqueued_ms);
    next_seq_ = m.seq + 1;
  }
  // After the messages: a message is always written before (or with) the
  // record that says it was released. `released` came after `unrelease`.
  const bool unreleasing = unrelease && !released_.empty();
  if (unreleasing) AppendUnreleasedRecord(buffer_);
  if (!released.empty()) AppendReleasedRecord(buffer_, released);
  if (head_ > recorded_head_) AppendHeadRecord(buffer_, head_);
  if (!buffer_.empty()) {
    if (Status s = segments_.back().file->Append(buffer_); !s.ok()) return rollback(s);
    bytes_ += buffer_.size();
  }
  recorded_head_ = std::max(recorded_head_, head_);
  if (unreleasing) released_.clear();
  released_.insert(released.begin(), released.end());
  ForgetReleasedBelowHead();
  RemoveDoneSegments();
  return Status::Ok();
}

Status QueueLog::Sync() {
  if (Status s = segments_.back().file->Sync(); !s.ok()) return s;
  if (head_file_dirty_ && head_file_) {
    if (Status s = head_file_->Sync(); !s.ok()) return s;
    head_file_dirty_ = false;
  }
  if (dir_dirty_) {
    if (Status s = options_.env->SyncDir(options_.dir); !s.ok()) return s;
    dir_dirty_ = false;
  }
  return Status::Ok();
}

QueueLog::Trimmed QueueLog::Trim(uint64_t now_unix_ms, uint64_t incoming) {
  Trimmed t;
  auto too_big = [&] { return bytes_ + incoming > options_.max_bytes; };
  auto too_old = [&](const Segment& s) {
    return options_.max_age.count() > 0 && s.messages > 0 &&
           s.newest_ms + static_cast<uint64_t>(options_.max_age.count()) <= now_unix_ms;
  };
  // The newest segment is appended to; if it alone is too big (or too old),
  // start a new one so that it can go.
  if (segments_.size() == 1 && segments_.back().messages > 0 &&
      (too_big() || too_old(segments_.back()))) {
    if (Status s = StartSegment(next_seq_); !s.ok()) Warn(s.ToString());
  }
  while (segments_.size() > 1 && (too_big() || too_old(segments_.front()))) {
    const uint64_t end = segments_[1].first_seq;  // first seq past segment 0
    const uint64_t from = std::max(head_, segments_.front().first_seq);
    if (end > from) t.dropped += end - from;
    head_ = std::max(head_, end);
    if (Status s = RemoveSegment(0); !s.ok()) {
      Warn(s.ToString());
      break;
    }
  }
  t.head = head_;
  ForgetReleasedBelowHead();
  return t;
}

QueueLog::Trimmed QueueLog::TrimForSpace(bool* removed) {
  Trimmed t;
  *removed = false;
  if (segments_.size() > 1) {
    const uint64_t end = segments_[1].first_seq;  // first seq past segment 0
    const uint64_t from = std::max(head_, segments_.front().first_seq);
    const uint64_t head_before = head_;
    if (Status s = RemoveSegment(0); !s.ok()) {
      Warn(s.ToString());
    } else {
      if (end > from) t.dropped = end - from;
      head_ = std::max(head_before, end);
      *removed = true;
    }
  }
  t.head = head_;
  ForgetReleasedBelowHead();
  return t;
}

Result<std::vector<QueuedMessage>> QueueLog::Read(uint64_t from, size_t max_bytes) {
  std::vector<QueuedMessage> out;
  from = std::max(from, head_);
  size_t total = 0;
  // The segment holding `from`: the last one starting at or below it.
  size_t index = 0;
  while (index + 1 < segments_.size() && segments_[index + 1].first_seq <= from) ++index;
  while (index < segments_.size() && total < max_bytes) {
    Segment& s = segments_[index];
    std::unique_ptr<QueueFile> owned;
    QueueFile* file = s.file.get();
    if (file == nullptr) {
      auto f = options_.env->Open(s.path, false);
      if (!f.ok()) return f.status();
      owned = std::move(f).value();
      file = owned.get();
    }
    uint64_t offset = kHeaderBytes;
    if (cursor_.first_seq == s.first_seq && cursor_.next_seq <= from && cursor_.offset != 0) {
      offset = cursor_.offset;
    }
    RecordReader reader(*file, offset);
    std::string body;
    Status io;
    bool segment_done = false;
    while (total < max_bytes) {
      RecordReader::Outcome o = reader.Next(&body, &io);
      if (!io.ok()) return io;
      if (o != RecordReader::Outcome::kRecord) {
        if (o == RecordReader::Outcome::kDamaged) {
          Warn(s.path + ": damaged record at offset " + std::to_string(reader.offset()) +
               " while reading; skipping the rest of the segment");
        }
        segment_done = true;
        break;
      }
      if (body[0] != kMessageRecord) continue;
      auto m = DecodeMessage(body);
      if (!m.ok()) {
        Warn(s.path + ": " + m.status().message() + "; message skipped");
        continue;
      }
      if (m->seq < from) continue;
      total += m->bytes();
      cursor_ = ReadCursor{s.first_seq, reader.offset(), m->seq + 1};
      out.push_back(std::move(m).value());
    }
    if (!segment_done) break;
    ++index;
  }
  return out;
}

}  // namespace ferry::bridge

#include "preload/record_writer.h"

#include <cstring>

namespace dw {

bool RecordWriter::Add(wire::RecordType type, const void* payload, uint32_t length) {
  if (!out_.Reserve(sizeof(wire::RecordHeader) + length)) return false;
  wire::RecordHeader header{static_cast<uint32_t>(type), length};
  out_.Append(&header, sizeof(header));
  out_.Append(payload, length);
  return true;
}

void RecordWriter::Begin(wire::RecordType type) {
  record_start_ = out_.size();
  wire::RecordHeader header{static_cast<uint32_t>(type), 0};
  failed_ = !out_.Append(&header, sizeof(header));
}

void RecordWriter::Append(const void* data, size_t length) {
  if (!failed_ && !out_.Append(data, length)) failed_ = true;
}

size_t RecordWriter::payload_size() const {
  return out_.size() - record_start_ - sizeof(wire::RecordHeader);
}

bool RecordWriter::End() {
  if (failed_) {
    Abandon();
    return false;
  }
  auto length = static_cast<uint32_t>(payload_size());
  memcpy(out_.data() + record_start_ + offsetof(wire::RecordHeader, length), &length,
         sizeof(length));
  return true;
}

void RecordWriter::Abandon() {
  out_.set_size(record_start_);
  failed_ = false;
}

}  // namespace dw

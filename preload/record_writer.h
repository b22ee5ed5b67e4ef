// record_writer.h: appends census records (preload/wire_format.h) to an mmap'd buffer.
//
// Thread-safety: none; one writer per buffer (the census thread). Allocation: none from the
// target's heap (the buffer grows with mmap). Safe inside a hook: no (census thread only).
#pragma once

#include <cstddef>
#include <cstdint>

#include "preload/os.h"
#include "preload/wire_format.h"

namespace dw {

class RecordWriter {
 public:
  explicit RecordWriter(os::PageBuffer& out) : out_(out) {}

  // A whole fixed-size record. False if the buffer could not grow (nothing appended then).
  bool Add(wire::RecordType type, const void* payload, uint32_t length);

  // A record built piece by piece: Begin, Append..., End (which fills in the length). If any
  // step fails, End returns false and the record is dropped whole.
  void Begin(wire::RecordType type);
  void Append(const void* data, size_t length);
  bool End();
  // Payload bytes appended since Begin.
  size_t payload_size() const;
  // Drops the record begun last, as if Begin had not been called.
  void Abandon();

 private:
  os::PageBuffer& out_;
  size_t record_start_ = 0;
  bool failed_ = false;
};

}  // namespace dw

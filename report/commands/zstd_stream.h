// zstd_stream.h: zstd streaming compression to a file descriptor, and reading a file that may be
// zstd-compressed as a plain stdio stream (libzstd).
//
// `driftwatch collect --state` writes its segments through ZstdFileWriter: bytes go into one zstd
// frame per segment, flushed (ZSTD_e_flush: every byte written so far becomes decodable) every
// few seconds, so a collector that is killed leaves files that decode up to the last flush.
// OpenRecordingStream() gives readers one FILE* whatever the file is: the file itself, or, when
// it starts with the zstd magic (detected by content, never by name), a decompressing stream
// (fopencookie) that remembers whether the compressed data ended inside a frame (cut off) or was
// corrupt, with the compressed offset.
//
// Thread-safety: not thread-safe; each object is used by one thread. Allocation: yes (collector
// code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct ZSTD_CCtx_s;

namespace dw::report {

// Compresses into an fd it owns. Errors are sticky: after the first failure nothing more is
// written and every call returns it.
class ZstdFileWriter {
 public:
  // Takes `fd` (closed by Close() or the destructor). `level`: zstd's compression level; the
  // window is capped at 1 MiB, which keeps each live writer's memory near 1.3 MiB.
  static absl::StatusOr<std::unique_ptr<ZstdFileWriter>> Create(int fd, std::string path,
                                                                int level);
  ~ZstdFileWriter();
  ZstdFileWriter(const ZstdFileWriter&) = delete;
  ZstdFileWriter& operator=(const ZstdFileWriter&) = delete;

  // Compresses `bytes` (zstd buffers them; whole blocks go to the file as they fill).
  absl::Status Write(std::string_view bytes);
  // Writes out everything written so far (a complete zstd block).
  absl::Status Flush();
  // Ends the frame and closes the file.
  absl::Status Close();

  uint64_t uncompressed_bytes() const { return in_bytes_; }
  uint64_t compressed_bytes() const { return out_bytes_; }  // on disk so far
  bool dirty() const { return dirty_; }                     // written since the last flush

 private:
  ZstdFileWriter(int fd, std::string path, ZSTD_CCtx_s* context)
      : fd_(fd), path_(std::move(path)), context_(context) {}
  absl::Status Compress(std::string_view bytes, int directive);
  absl::Status WriteOut(const char* data, size_t size);

  int fd_;
  std::string path_;
  ZSTD_CCtx_s* context_;
  std::string buffer_;  // compressed output scratch
  uint64_t in_bytes_ = 0, out_bytes_ = 0;
  bool dirty_ = false;
  absl::Status error_;
};

// A recording opened for reading; decompressed when it is zstd.
struct RecordingStream {
  std::FILE* file = nullptr;  // owned: fclose() it
  bool compressed = false;
  // For a compressed file, after reading to the end: a description of a cut-off frame or of
  // corrupt compressed data ("" when the compressed data was complete and sound).
  std::shared_ptr<std::string> problem;
};

// Opens `path`, decompressing it if its first bytes are the zstd magic. Errors name the file.
absl::StatusOr<RecordingStream> OpenRecordingStream(const std::string& path);

// True if `path` begins with the zstd frame magic.
bool LooksZstdCompressed(const std::string& path);

}  // namespace dw::report

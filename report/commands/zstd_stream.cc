#include "report/commands/zstd_stream.h"

#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dw::report {
namespace {

constexpr unsigned char kZstdMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};

// The decompressing side of a FILE* made by fopencookie.
struct ZstdReadCookie {
  std::string path;
  std::FILE* raw = nullptr;
  ZSTD_DStream* stream = nullptr;
  std::vector<char> input = std::vector<char>(ZSTD_DStreamInSize());
  ZSTD_inBuffer in{nullptr, 0, 0};
  uint64_t read_total = 0;  // compressed bytes read from the file
  size_t frame_left = 0;    // ZSTD_decompressStream's last return: 0 between frames
  std::shared_ptr<std::string> problem = std::make_shared<std::string>();

  uint64_t CompressedOffset() const { return read_total - (in.size - in.pos); }
};

ssize_t ReadDecompressed(void* opaque, char* data, size_t size) {
  auto& cookie = *static_cast<ZstdReadCookie*>(opaque);
  ZSTD_outBuffer out{data, size, 0};
  while (out.pos == 0) {
    if (cookie.in.pos == cookie.in.size) {
      const size_t got = std::fread(cookie.input.data(), 1, cookie.input.size(), cookie.raw);
      if (got == 0) {
        if (std::ferror(cookie.raw) != 0) {
          *cookie.problem = absl::StrCat("read failed: ", std::strerror(errno));
          errno = EIO;
          return -1;
        }
        if (cookie.frame_left != 0 && cookie.problem->empty()) {
          *cookie.problem = absl::StrCat("the compressed data is cut off at compressed offset ",
                                         cookie.read_total, " (the writer was killed?)");
        }
        return 0;
      }
      cookie.read_total += got;
      cookie.in = ZSTD_inBuffer{cookie.input.data(), got, 0};
    }
    const size_t result = ZSTD_decompressStream(cookie.stream, &out, &cookie.in);
    if (ZSTD_isError(result)) {
      *cookie.problem = absl::StrCat("corrupt compressed data near compressed offset ",
                                     cookie.CompressedOffset(), ": ", ZSTD_getErrorName(result));
      errno = EIO;
      return -1;
    }
    cookie.frame_left = result;
  }
  return static_cast<ssize_t>(out.pos);
}

int CloseDecompressed(void* opaque) {
  auto* cookie = static_cast<ZstdReadCookie*>(opaque);
  ZSTD_freeDStream(cookie->stream);
  const int result = std::fclose(cookie->raw);
  delete cookie;
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZstdFileWriter>> ZstdFileWriter::Create(int fd, std::string path,
                                                                       int level) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  if (context == nullptr) {
    close(fd);
    return absl::ResourceExhaustedError(absl::StrCat("cannot compress ", path, ": out of memory"));
  }
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, 20);
  ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
  return std::unique_ptr<ZstdFileWriter>(new ZstdFileWriter(fd, std::move(path), context));
}

ZstdFileWriter::~ZstdFileWriter() {
  ZSTD_freeCCtx(context_);
  if (fd_ >= 0) close(fd_);
}

absl::Status ZstdFileWriter::WriteOut(const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd_, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ =
          absl::DataLossError(absl::StrCat("cannot write ", path_, " at offset ", out_bytes_ + done,
                                           ": ", n < 0 ? std::strerror(errno) : "no progress"));
      return error_;
    }
    done += static_cast<size_t>(n);
  }
  out_bytes_ += size;
  return absl::OkStatus();
}

absl::Status ZstdFileWriter::Compress(std::string_view bytes, int directive) {
  if (!error_.ok()) return error_;
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  buffer_.resize(ZSTD_CStreamOutSize());
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  while (true) {
    ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
    const size_t left =
        ZSTD_compressStream2(context_, &out, &in, static_cast<ZSTD_EndDirective>(directive));
    if (ZSTD_isError(left)) {
      error_ = absl::InternalError(
          absl::StrCat("cannot compress ", path_, ": ", ZSTD_getErrorName(left)));
      return error_;
    }
    if (out.pos > 0) {
      if (absl::Status status = WriteOut(buffer_.data(), out.pos); !status.ok()) return status;
    }
    // Continue: done once zstd took all input. Flush and end: once nothing is left inside it.
    const bool done = directive == ZSTD_e_continue ? in.pos == in.size : left == 0;
    if (done) break;
  }
  in_bytes_ += bytes.size();
  return absl::OkStatus();
}

absl::Status ZstdFileWriter::Write(std::string_view bytes) {
  dirty_ = dirty_ || !bytes.empty();
  return Compress(bytes, ZSTD_e_continue);
}

absl::Status ZstdFileWriter::Flush() {
  if (!dirty_) return error_;
  dirty_ = false;
  return Compress({}, ZSTD_e_flush);
}

absl::Status ZstdFileWriter::Close() {
  if (fd_ < 0) return error_;
  absl::Status status = Compress({}, ZSTD_e_end);
  if (close(fd_) != 0 && status.ok()) {
    status = absl::DataLossError(absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  fd_ = -1;
  dirty_ = false;
  return status;
}

bool LooksZstdCompressed(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rbe");
  if (file == nullptr) return false;
  unsigned char magic[4] = {};
  const bool compressed = std::fread(magic, 1, sizeof(magic), file) == sizeof(magic) &&
                          std::memcmp(magic, kZstdMagic, sizeof(magic)) == 0;
  std::fclose(file);
  return compressed;
}

absl::StatusOr<RecordingStream> OpenRecordingStream(const std::string& path) {
  std::FILE* raw = std::fopen(path.c_str(), "rbe");
  if (raw == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open recording ", path, ": ", std::strerror(errno)));
  }
  unsigned char magic[4] = {};
  const size_t got = std::fread(magic, 1, sizeof(magic), raw);
  if (got != sizeof(magic) || std::memcmp(magic, kZstdMagic, sizeof(magic)) != 0) {
    std::rewind(raw);
    return RecordingStream{.file = raw, .compressed = false, .problem = nullptr};
  }
  auto* cookie = new ZstdReadCookie;
  cookie->path = path;
  cookie->raw = raw;
  cookie->stream = ZSTD_createDStream();
  std::rewind(raw);
  cookie_io_functions_t io{
      .read = ReadDecompressed, .write = nullptr, .seek = nullptr, .close = CloseDecompressed};
  std::FILE* file = fopencookie(cookie, "rb", io);
  if (cookie->stream == nullptr || file == nullptr) {
    if (file != nullptr) {
      std::fclose(file);
    } else {
      CloseDecompressed(cookie);
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot decompress recording ", path, ": out of memory"));
  }
  return RecordingStream{.file = file, .compressed = true, .problem = cookie->problem};
}

}  // namespace dw::report

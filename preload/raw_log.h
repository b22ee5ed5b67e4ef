// raw_log.h: the shim's only way to print: a bounded, allocation-free line writer to stderr.
//
// Thread-safety: yes (each message is one write(2) of at most kMaxLine bytes, so lines from
// different threads never interleave). Allocation: none; the line is built on the stack.
// Safe inside a hook: yes, but hooks should not log on any path that runs per call.
//
// Messages are rate-limited (kMaxMessages per process) so a misbehaving collector cannot make
// the target's stderr grow without bound. DRIFTWATCH_LOG=0 silences everything but errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace dw {

class LogLine {
 public:
  static constexpr size_t kMaxLine = 512;

  LogLine& operator<<(const char* text);
  LogLine& operator<<(char c);
  template <typename T>
  requires std::is_integral_v<T> LogLine& operator<<(T value) {
    if constexpr (std::is_signed_v<T>) {
      if (value < 0) {
        *this << '-';
        return AppendUnsigned(0 - static_cast<uint64_t>(value), 10);
      }
    }
    return AppendUnsigned(static_cast<uint64_t>(value), 10);
  }
  LogLine& Hex(uint64_t value) {
    *this << "0x";
    return AppendUnsigned(value, 16);
  }

  const char* data() const { return buffer_; }
  size_t size() const { return length_; }

 private:
  LogLine& AppendUnsigned(uint64_t value, unsigned base);

  char buffer_[kMaxLine];
  size_t length_ = 0;
};

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2 };

// Sets the threshold from DRIFTWATCH_LOG (0 errors, 1 warnings (default), 2 info).
void SetLogLevel(LogLevel level);
// Writes "driftwatch[pid]: <line>\n" to the program's stderr, only while fd 2 is still the file
// it was at start-up (os::WriteToStartupStderr), if the level is enabled and the budget allows.
void EmitLog(LogLevel level, const LogLine& line);

}  // namespace dw

// DW_LOG(kWarning, "cannot connect to " << path << ": errno " << err);
#define DW_LOG(level, stream_expr)                      \
  do {                                                  \
    ::dw::LogLine dw_log_line_;                         \
    dw_log_line_ << stream_expr;                        \
    ::dw::EmitLog(::dw::LogLevel::level, dw_log_line_); \
  } while (0)

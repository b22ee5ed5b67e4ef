#include "preload/raw_log.h"

#include <atomic>

#include "preload/os.h"

namespace dw {
namespace {

constexpr int kMaxMessages = 64;
std::atomic<int> g_messages_left{kMaxMessages};
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};

}  // namespace

LogLine& LogLine::operator<<(const char* text) {
  if (text == nullptr) text = "(null)";
  while (*text != '\0' && length_ < kMaxLine - 1) buffer_[length_++] = *text++;
  return *this;
}

LogLine& LogLine::operator<<(char c) {
  if (length_ < kMaxLine - 1) buffer_[length_++] = c;
  return *this;
}

LogLine& LogLine::AppendUnsigned(uint64_t value, unsigned base) {
  char digits[24];
  int count = 0;
  do {
    digits[count++] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value != 0);
  while (count > 0) *this << digits[--count];
  return *this;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

void EmitLog(LogLevel level, const LogLine& line) {
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  if (g_messages_left.fetch_sub(1, std::memory_order_relaxed) <= 0) return;
  LogLine out;
  // The real pid (glibc no longer caches it): after fork the prefix must name the child.
  out << "driftwatch[" << static_cast<long>(os::GetPid()) << "]: ";
  for (size_t i = 0; i < line.size(); ++i) out << line.data()[i];
  out << '\n';
  // One write: either the whole line or nothing; a failed write to stderr is not our business.
  os::WriteToStartupStderr(out.data(), out.size());
}

}  // namespace dw

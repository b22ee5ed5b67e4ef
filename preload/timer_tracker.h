// timer_tracker.h: the tracker for POSIX timers (timer_create / timer_delete), and the events
// the timer hooks report.
//
// glibc exports timer_create and timer_delete in three versions; the oldest (GLIBC_2.2.5) is a
// compatibility ABI whose timer_t values are small indexes that can collide with the kernel ids
// of the current ABI, so each handle is keyed with the ABI it came from.
//
// Thread-safety: lock-free; the On* functions may run concurrently on any thread.
// Allocation: none. Safe inside a hook: the On* functions, yes.
#pragma once

#include <cstdint>
#include <ctime>

#include "preload/handle_tracker.h"

struct sigevent;

namespace dw {

enum class TimerAbi : uint64_t { kCurrent = 0, kCompat = 1 };

class TimerTracker {
 public:
  bool Init(uint32_t max_sites) { return handles_.Init(max_sites, 64); }
  HandleTracker& handles() { return handles_; }
  const HandleTracker& handles() const { return handles_; }

  // The key of a timer in the table.
  static uint64_t HandleOf(timer_t timer, TimerAbi abi) {
    return (reinterpret_cast<uint64_t>(timer) << 1) | static_cast<uint64_t>(abi);
  }
  // The wire TimerNotify bit for a sigevent (NULL means SIGEV_SIGNAL with SIGALRM).
  static uint32_t NotifyOf(const struct sigevent* event);

 private:
  HandleTracker handles_;
};

}  // namespace dw

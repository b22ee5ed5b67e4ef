// frame_rules.h: the unwinding rule of one code address, read from its DWARF CFI, and a
// process-wide cache of those rules keyed by return address. They make dw::Unwinder's fast path:
// a walk of the stack that costs one cache lookup and two loads per frame.
//
// A rule is followed only in the shape libunwind's own fast trace follows (CFA = rsp + N or
// rbp + N, the return address and the caller's rbp saved at fixed offsets from the CFA). Any
// other shape (a CFA expression, a signal frame, a register saved in another register, no CFI
// at all) is kUnsupported, and the whole capture is done by libunwind instead: the fast path
// never guesses, so its frames are exactly libunwind's.
//
// A rule belongs to the code at an address, which stays the same until its module is unloaded.
// Each cached rule carries the epoch it was computed in (the number of dlclose calls seen); a
// rule of another epoch is never used.
//
// Implemented in unwinder.cc, their only user (the core's source list is shared with others).
//
// Thread-safety: FindFrameRule is thread-safe. FrameRuleCache is lock-free: Lookup and Insert
// may race with each other on any key; a lookup returns a rule only if it read it whole, for the
// key it asked for. Allocation: none from the heap; FrameRuleCache::Init maps pages.
// FindFrameRule takes the loader's lock (dl_iterate_phdr, through libgcc's _Unwind_Find_FDE),
// as libunwind does on a miss of its own cache. Safe inside a hook: Lookup and Insert yes;
// FindFrameRule yes, with the guard held (once per new return address); Init no.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dw {

struct FrameRule {
  enum Kind : uint8_t {
    kUnsupported = 0,  // not followed here: libunwind unwinds this stack
    kStep = 1,         // the caller's frame follows from the fields below
    kOutermost = 2,    // the return address is undefined: the stack ends with this frame
  };
  Kind kind = kUnsupported;
  bool cfa_from_rbp = false;  // CFA = rbp + cfa_offset, else rsp + cfa_offset
  bool rbp_saved = false;     // the caller's rbp is at CFA + rbp_offset, else rbp is unchanged
  int32_t cfa_offset = 0;
  int32_t rbp_offset = 0;
  int32_t ra_offset = 0;  // the return address is at CFA + ra_offset

  // 48 bits: kind 2, flags 2, cfa_offset 24, rbp_offset 12, ra_offset 8 (all signed). A rule
  // whose offsets do not fit packs as kUnsupported.
  uint64_t Pack() const;
  static FrameRule Unpack(uint64_t packed) {
    FrameRule rule;
    rule.kind = static_cast<Kind>(packed & 3);
    rule.cfa_from_rbp = (packed >> 2) & 1;
    rule.rbp_saved = (packed >> 3) & 1;
    // Each field shifted to the top of a signed word and back: sign extension.
    rule.cfa_offset = static_cast<int32_t>(static_cast<int64_t>(packed << 36) >> 40);
    rule.rbp_offset = static_cast<int32_t>(static_cast<int64_t>(packed << 24) >> 52);
    rule.ra_offset = static_cast<int32_t>(static_cast<int64_t>(packed << 16) >> 56);
    return rule;
  }
  bool operator==(const FrameRule&) const = default;
};

// The rule in force at code address `pc` (for a return address, pass the address minus one: the
// call, not what follows it). kUnsupported if `pc` has no CFI or a shape not followed here.
FrameRule FindFrameRule(uintptr_t pc);

class FrameRuleCache {
 public:
  // 2^slots_log2 slots of 16 bytes, mapped now (pages are touched as slots fill). False if the
  // mapping failed; Lookup then always misses and Insert does nothing.
  bool Init(uint32_t slots_log2);
  void ReleaseMemory();

  // The packed rule cached for return address `ip` in `epoch`, or false.
  bool Lookup(uintptr_t ip, uint64_t epoch, uint64_t* packed) const {
    if (slots_ == nullptr) return false;
    const uint64_t want = Key(ip, epoch);
    const uint64_t tag = EpochTag(epoch);
    for (uint64_t i = 0, at = Home(ip); i < kProbes; ++i, at = (at + 1) & mask_) {
      const Slot& slot = slots_[at];
      const uint64_t key = slot.key.load(std::memory_order_acquire);
      if (key == 0) return false;  // slots are never emptied: the probe sequence ends here
      if (key != want) continue;
      const uint64_t rule = slot.rule.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      // Read again: a writer reusing the slot marks it kBusy before it touches the rule.
      if (slot.key.load(std::memory_order_relaxed) != want || (rule >> 48) != tag) return false;
      *packed = rule & kRuleMask;
      return true;
    }
    return false;
  }
  // Caches the rule; does nothing if every slot of ip's probe sequence is taken in this epoch.
  void Insert(uintptr_t ip, uint64_t epoch, uint64_t packed);

  static constexpr uint32_t kProbes = 8;

 private:
  struct Slot {
    std::atomic<uint64_t> key;   // 0 empty, kBusy being written, else Key(ip, epoch)
    std::atomic<uint64_t> rule;  // packed rule | EpochTag(epoch) << 48
  };
  static constexpr uint64_t kBusy = uint64_t{1} << 63;
  static constexpr uint64_t kRuleMask = (uint64_t{1} << 48) - 1;
  // User-space code addresses are below 2^47: the key holds the epoch's low 16 bits above them,
  // the rule word its next 16, so a rule is trusted for 2^32 unloads.
  static uint64_t Key(uintptr_t ip, uint64_t epoch) { return ip | (epoch & 0xFFFF) << 47; }
  static uint64_t EpochTag(uint64_t epoch) { return (epoch >> 16) & 0xFFFF; }
  uint64_t Home(uintptr_t ip) const { return (ip * 0x9E3779B97F4A7C15ull) >> shift_; }

  Slot* slots_ = nullptr;
  uint64_t mask_ = 0;
  uint32_t shift_ = 64;
};

}  // namespace dw

#include "hooks/real.h"

#include <dlfcn.h>

#include <atomic>

#include "preload/raw_log.h"

namespace dw::real {
namespace {

enum State : int { kUnresolved, kResolving, kReady };
std::atomic<int> g_state{kUnresolved};
bool g_all_required_found = false;

constexpr bool kRequired = true;
constexpr bool kOptional = false;

void ResolveAll() {
  bool all_found = true;
#define DW_HOOK(name, requirement)                                                    \
  name = reinterpret_cast<decltype(name)>(dlsym(RTLD_NEXT, #name));                   \
  if (name == nullptr && requirement) {                                               \
    all_found = false;                                                                \
    DW_LOG(kError, "real " #name " not found; the shim will not track this process"); \
  }
#define DW_VERSIONED_HOOK(name, tag, version, requirement)                                    \
  name##_##tag = reinterpret_cast<decltype(name##_##tag)>(dlvsym(RTLD_NEXT, #name, version)); \
  if (name##_##tag == nullptr && requirement) all_found = false;
#include "hooks/hook_list.inc"
#undef DW_VERSIONED_HOOK
#undef DW_HOOK
  // A failed lookup leaves an error string that the next dl* call would free, possibly from
  // inside our free hook: consume it now, while still on the bootstrap path.
  dlerror();
  g_all_required_found = all_found;
}

}  // namespace

bool ResolveOnce() {
  int state = g_state.load(std::memory_order_acquire);
  if (state == kReady) return true;
  if (state == kUnresolved && g_state.compare_exchange_strong(state, kResolving)) {
    ResolveAll();
    g_state.store(kReady, std::memory_order_release);
    g_resolved.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

bool AllRequiredFound() { return g_all_required_found; }

}  // namespace dw::real

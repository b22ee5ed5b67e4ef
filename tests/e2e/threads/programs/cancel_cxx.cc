// Cancellation and pthread_exit through C++ frames with destructors: the forced unwind must cross
// the shim's trampoline (docs/PITFALLS.md, section 9: a noexcept frame there turns it into
// std::terminate). Exits 0 if every destructor ran and every join saw the right value.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace {

std::atomic<int> destroyed{0};

struct Guard {
  ~Guard() { destroyed.fetch_add(1); }
};

void* CancelledWorker(void*) {
  Guard guard;
  for (;;) pause();
  return nullptr;
}

void* ExitingWorker(void*) {
  Guard guard;
  pthread_exit(reinterpret_cast<void*>(7));
}

}  // namespace

__attribute__((noinline)) void cancel_in_cxx() {
  for (int i = 0; i < 4; ++i) {
    pthread_t cancelled, exiting;
    pthread_create(&cancelled, nullptr, CancelledWorker, nullptr);
    pthread_create(&exiting, nullptr, ExitingWorker, nullptr);
    usleep(2000);
    pthread_cancel(cancelled);
    void* result = nullptr;
    if (pthread_join(cancelled, &result) != 0 || result != PTHREAD_CANCELED) {
      std::fprintf(stderr, "cancelled join: %p\n", result);
      _exit(2);
    }
    if (pthread_join(exiting, &result) != 0 || result != reinterpret_cast<void*>(7)) {
      std::fprintf(stderr, "exiting join: %p\n", result);
      _exit(3);
    }
  }
}

int main() {
  cancel_in_cxx();
  if (destroyed.load() != 8) {
    std::fprintf(stderr, "destructors run: %d of 8\n", destroyed.load());
    return 4;
  }
  usleep(250 * 1000);
  return 0;
}

// The second plugin of reload_host.c: loaded at the addresses session_plugin.c had, with other
// code there. Its leak must never be named after the session plugin's, nor the reverse.
#include <stdlib.h>

struct counter {
  struct counter* next;  // reachable, so the compiler cannot drop the allocation
  long value[30];
};

static struct counter* g_counters;

__attribute__((noinline)) static void add_counter(int id) {
  struct counter* counter = calloc(1, sizeof(*counter));  // COUNTER LEAK LINE
  counter->value[0] = id;
  counter->next = g_counters;
  g_counters = counter;
}

void plugin_count(int id) {
  add_counter(id);
  __asm__ volatile("" ::: "memory");  // keeps add_counter's frame: not a tail call
}

// Loads two plugins in turn, ROUNDS times, each time calling into it and unloading it again, so
// that they keep taking the same addresses: plugin A (session_plugin.c, 50 sessions a round)
// and plugin B (counter_plugin.c, 20 counters a round). Usage: reload_host A B ROUNDS
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PLUGIN_A PLUGIN_B ROUNDS\n", argv[0]);
    return 2;
  }
  const int rounds = atoi(argv[3]);
  for (int round = 0; round < rounds; ++round) {
    const int is_b = round % 2;
    void* plugin = dlopen(argv[1 + is_b], RTLD_NOW | RTLD_LOCAL);
    if (plugin == NULL) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 2;
    }
    void (*call)(int) = (void (*)(int))dlsym(plugin, is_b ? "plugin_count" : "plugin_open_session");
    if (call == NULL) return 3;
    for (int i = 0; i < (is_b ? 20 : 50); ++i) call(i);
    if (dlclose(plugin) != 0) return 4;
    if (round % 4 == 0) {
      struct timespec pause = {0, 2 * 1000 * 1000};  // spreads the rounds over many censuses
      nanosleep(&pause, NULL);
    }
  }
  printf("reload_host done\n");
  return 0;
}

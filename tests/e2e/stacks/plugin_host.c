// Loads the plugin named by argv[1], opens 400 sessions through it, and then, if argv[2] is
// "unload", dlcloses it and waits for a census: the leak then lives on in a module that is gone.
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PLUGIN [unload]\n", argv[0]);
    return 2;
  }
  void* plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (plugin == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  void (*open_session)(int) = (void (*)(int))dlsym(plugin, "plugin_open_session");
  if (open_session == NULL) return 2;
  for (int i = 0; i < 400; ++i) open_session(i);
  if (argc > 2 && strcmp(argv[2], "unload") == 0) {
    // Unloaded before any census has run (the interval is far longer than this program's
    // life), so only the record the dlclose hook kept can name the plugin's code.
    // dlclose leaves errno alone here; under the shim too, whatever the shim does around it.
    errno = 4242;
    if (dlclose(plugin) != 0) return 3;
    if (errno != 4242) {
      fprintf(stderr, "dlclose changed errno to %d\n", errno);
      return 4;
    }
  }
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL);
  printf("plugin_host done\n");
  return 0;
}

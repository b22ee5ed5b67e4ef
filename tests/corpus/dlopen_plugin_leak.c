// Leak inside a library loaded with dlopen: the host loads a filter plugin at start-up and
// calls it per request; the plugin leaks.
// Expect: drift, heap, plugin_cache_header.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "corpus_service.h"

static void (*plugin_hook)(unsigned long);

static void handle(uint64_t request) { plugin_hook(request); }

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
    return 2;
  }
  void* plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (plugin == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  plugin_hook = (void (*)(unsigned long))dlsym(plugin, "plugin_cache_header");
  if (plugin_hook == NULL) return 2;
  return corpus_serve(200, handle);
}

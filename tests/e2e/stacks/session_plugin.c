// A plugin, loaded with dlopen by plugin_host.c, that keeps a record of every session it opens
// and never drops it: the leak a finding must trace to this file and line.
#include <stdlib.h>
#include <string.h>

struct session_record {
  struct session_record* next;  // reachable, so the compiler cannot drop the allocation
  char name[72];
};

static struct session_record* g_sessions;

__attribute__((noinline)) static void remember_session(int id) {
  struct session_record* record = malloc(sizeof(*record));  // PLUGIN LEAK LINE
  memset(record->name, 'a' + id % 26, sizeof(record->name));
  record->next = g_sessions;
  g_sessions = record;
}

void plugin_open_session(int id) { remember_session(id); }

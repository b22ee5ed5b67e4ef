// A plugin loaded with dlopen by dlopen_plugin_leak.c. Its request hook caches a parsed header
// per request and never evicts it.
#include <stdlib.h>
#include <string.h>

struct Header {
  struct Header* next;
  char value[88];
};
static struct Header* cache;

__attribute__((noinline, optimize("no-optimize-sibling-calls"))) void plugin_cache_header(
    unsigned long request) {
  struct Header* header = malloc(sizeof *header);
  memset(header->value, 'h', sizeof header->value);
  header->next = cache;
  cache = header;
  (void)request;
}

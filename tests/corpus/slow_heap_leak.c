// Leak: a slow heap leak under heavy churn. A metrics tag string is duplicated per request into
// a "last seen" list that was meant to be capped but never is: 64 bytes at 100 requests/s
// (~23 MB/hour), beside ~4 KB/request of short-lived buffers.
// Expect: drift, heap, remember_tag.
#include <stdlib.h>
#include <string.h>

#include "corpus_service.h"

struct Tag {
  struct Tag* next;
  char text[56];
};
static struct Tag* last_seen;

CORPUS_NOINLINE static void remember_tag(uint64_t request) {
  struct Tag* tag = malloc(sizeof *tag);
  memset(tag->text, 'a' + (int)(request % 26), sizeof tag->text);
  tag->next = last_seen;
  last_seen = tag;
}

CORPUS_NOINLINE static void handle(uint64_t request) {
  for (int i = 0; i < 8; ++i) {
    char* buffer = malloc(256 + corpus_random() % 512);
    memset(buffer, 0, 256);
    CORPUS_KEEP(buffer);
    free(buffer);
  }
  remember_tag(request);
}

int main(void) { return corpus_serve(100, handle); }

// Two leaks in one program that the test strips: one in an exported function (its name stays in
// .dynsym, -rdynamic) and one in a static function (no name left anywhere, only an offset).
// With arguments NEW OLD it then renames NEW over OLD, as a deploy replaces a running binary.
#include <stdio.h>
#include <stdlib.h>

struct node {
  struct node* next;
  char payload[104];
};

static struct node* g_kept;

static void keep(struct node* n) {
  n->next = g_kept;
  g_kept = n;
}

__attribute__((noinline)) void exported_cache_fill(void) {
  for (int i = 0; i < 300; ++i) keep(malloc(sizeof(struct node)));  // EXPORTED LEAK LINE
}

__attribute__((noinline)) static void hidden_cache_fill(void) {
  for (int i = 0; i < 200; ++i) keep(calloc(1, sizeof(struct node) + 16));  // HIDDEN LEAK LINE
}

int main(int argc, char** argv) {
  exported_cache_fill();
  hidden_cache_fill();
  if (argc > 2 && rename(argv[1], argv[2]) != 0) {
    perror("rename");
    return 2;
  }
  printf("stripped_leak done %p\n", (void*)g_kept);
  return 0;
}

// A recursive-descent parser over random expressions that keeps one 48-byte node per parsed
// expression in a list that is never freed (an AST cache nobody trims). The node is allocated at
// one line, reached through thousands of distinct call stacks (every nesting of parse_sum,
// parse_product and parse_atom), as in issue 10's recursive program. Runs until SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

struct Node {
  struct Node* next;
  long value;
  char pad[32];
};
static struct Node* cache;
static volatile sig_atomic_t stopping;
static unsigned seed = 12345;

static unsigned Next(void) {
  seed = seed * 1103515245u + 12345u;
  return seed >> 16;
}

NOINLINE long keep_node(long value) {
  struct Node* node = malloc(sizeof *node);  // the leak: one line, many stacks
  node->value = value;
  memset(node->pad, 0, sizeof node->pad);
  node->next = cache;
  cache = node;
  return value;
}

long parse_sum(int depth);

NOINLINE long parse_atom(int depth) {
  if (depth > 0 && Next() % 3 != 0) return parse_sum(depth - 1) + 1;
  return keep_node(Next() % 10);
}

NOINLINE long parse_product(int depth) {
  long value = parse_atom(depth);
  if (Next() % 2) value *= parse_atom(depth);
  return value + 1;
}

NOINLINE long parse_sum(int depth) {
  long value = parse_product(depth);
  if (Next() % 2) value += parse_product(depth);
  return value + 1;
}

static void on_term(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

int main(void) {
  signal(SIGTERM, on_term);
  struct timespec pause = {0, 2 * 1000 * 1000};
  volatile long sink = 0;
  while (!stopping) {
    sink += parse_sum(4);
    nanosleep(&pause, NULL);
  }
  return (int)(sink & 0);
}

// Allocations through operator new, std::vector and std::unordered_map, built with -O2 and no
// frame pointers (as Debian's libstdc++ is). Each container lives in a named function.
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

struct Widget {
  char payload[40];
};

std::vector<std::unique_ptr<Widget>> g_widgets;
std::unordered_map<int, std::string> g_names;
std::vector<long> g_numbers;

NOINLINE void make_widgets() {
  for (int i = 0; i < 100; ++i) g_widgets.push_back(std::make_unique<Widget>());
}

NOINLINE void fill_map() {
  for (int i = 0; i < 200; ++i) g_names.emplace(i, std::string(64, 'x'));  // MAP LINE
}

NOINLINE void grow_vector() {
  for (long i = 0; i < 10000; ++i) g_numbers.push_back(i);
}

int main() {
  make_widgets();
  fill_map();
  grow_vector();
  std::printf("cxx_containers done %zu %zu %zu\n", g_widgets.size(), g_names.size(),
              g_numbers.size());
  return 0;
}

// A small C++ program: compiled by the g++ case, then run (threads, containers, strings).
#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

int main() {
  std::vector<long> sums(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &sums] {
      std::map<int, std::string> m;
      for (int i = 0; i < 20000; ++i) m[i * (t + 1)] = std::to_string(i);
      sums[t] = std::accumulate(m.begin(), m.end(), 0L,
                                [](long a, const auto& kv) { return a + long(kv.second.size()); });
    });
  }
  for (auto& t : threads) t.join();
  for (long s : sums) std::printf("%ld\n", s);
  return 0;
}

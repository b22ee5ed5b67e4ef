// Leak: observer registrations that are never removed. Each request subscribes a callback to a
// config-change notifier and forgets to unsubscribe when it completes (a classic in event-driven
// servers).
// Expect: drift, heap, SubscribeForRequest.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "corpus_service.h"

namespace {

class ConfigNotifier {
 public:
  void Subscribe(std::function<void(const std::string&)> callback) {
    listeners_.push_back(std::move(callback));
  }

 private:
  std::vector<std::function<void(const std::string&)>> listeners_;
};

ConfigNotifier g_notifier;

CORPUS_NOINLINE void SubscribeForRequest(uint64_t request) {
  auto context = std::make_shared<std::string>("request-" + std::to_string(request));
  g_notifier.Subscribe([context](const std::string&) { CORPUS_KEEP(context.get()); });
}

void Handle(uint64_t request) { SubscribeForRequest(request); }

}  // namespace

int main() { return corpus_serve(200, Handle); }

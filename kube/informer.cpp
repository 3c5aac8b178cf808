#include "kube/informer.hpp"

#include <algorithm>

namespace lpk::kube {

using namespace std::chrono_literals;

Informer::Informer(Client& client, std::string path, ListOptions options, Handlers handlers)
    : client_(client),
      path_(std::move(path)),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      thread_([this](std::stop_token stop) { run(stop); }) {}

Informer::~Informer() { stop(); }

void Informer::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void Informer::run(std::stop_token stop) {
  auto backoff = 1s;
  while (!stop.stop_requested()) {
    bool listed = false;
    try {
      client_.watch(
          path_, options_,
          [&](const nlohmann::json& list) {
            listed = true;
            if (handlers_.on_list) handlers_.on_list(list.value("items", nlohmann::json::array()));
          },
          [&](const WatchEvent& event) {
            if (handlers_.on_event) handlers_.on_event(event);
          },
          stop);
    } catch (const std::exception& e) {
      if (listed) backoff = 1s;  // it worked for a while: start the backoff again
      if (handlers_.on_error) handlers_.on_error(e.what(), backoff);
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, backoff, [] { return false; });
      backoff = std::min(backoff * 2, std::chrono::seconds(30s));
    }
  }
}

}  // namespace lpk::kube

#include "proxy/takeover/heartbeat.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "proxy/takeover/restorer.hpp"

namespace lpk::proxy {

Heartbeat::Heartbeat(kube::Client& client, std::string ns, std::string name,
                     std::chrono::milliseconds interval)
    : client_(client),
      path_(kube::resource_path("coordination.k8s.io/v1", ns, "leases", name)),
      interval_(interval) {}

std::chrono::milliseconds Heartbeat::interval_for(std::chrono::seconds orphan_timeout) {
  using namespace std::chrono_literals;
  auto quarter = std::chrono::duration_cast<std::chrono::milliseconds>(orphan_timeout) / 4;
  return std::clamp<std::chrono::milliseconds>(quarter, 200ms, 5s);
}

void Heartbeat::start() {
  thread_ = std::jthread([this](std::stop_token stop) { beat(stop); });
}

void Heartbeat::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

bool Heartbeat::renew() {
  try {
    client_.patch(path_, lease_renewal(std::chrono::system_clock::now()), kube::PatchType::merge);
    renewed_ = true;
  } catch (const kube::ApiError& e) {
    // Before its first renewal the Lease may not be made yet (the heartbeat starts before the
    // takeover, whose steps can outlast a short orphan timeout); after it, gone means restored.
    if (e.code == 404 && !renewed_) return true;
    if (e.code == 404) {
      spdlog::warn("heartbeat: lease {} is gone; no longer renewing it", path_);
      return false;
    }
    spdlog::warn("heartbeat: renewing {}: {}; trying again", path_, e.what());
  } catch (const std::exception& e) {
    spdlog::warn("heartbeat: renewing {}: {}; trying again", path_, e.what());
  }
  return true;
}

void Heartbeat::beat(std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any wake;
  while (!stop.stop_requested() && renew()) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, interval_, [] { return false; });
  }
}

}  // namespace lpk::proxy

#include "tools/kubesim/controllers/controllers.hpp"

#include <spdlog/spdlog.h>

#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

Controllers::Controllers(boost::asio::io_context& io, Rest& rest, EventRecorder& events,
                         bool simulate_pods)
    : io_(io),
      rest_(rest),
      events_(events),
      simulate_pods_(simulate_pods),
      resync_(io),
      tick_(io) {}

Controllers::~Controllers() { stop(); }

void Controllers::start() {
  // Events change no controller's input; reacting to them would only loop.
  listener_ = rest_.store().add_listener([this](const WatchEvent& ev) {
    if (ev.resource != "events") schedule();
  });
  schedule();
  wait_for_tick();
}

void Controllers::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (listener_ >= 0) rest_.store().remove_listener(listener_);
  resync_.cancel();
  tick_.cancel();
}

void Controllers::wait_for_tick() {
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    schedule();
    wait_for_tick();
  });
}

// Many changes in one turn of the loop cost one reconcile.
void Controllers::schedule() {
  if (scheduled_ || stopped_) return;
  scheduled_ = true;
  boost::asio::post(io_, [this] {
    scheduled_ = false;
    if (!stopped_) reconcile_all();
  });
}

void Controllers::reconcile_all() {
  using Fn = void (*)(Rest&, EventRecorder&);
  std::vector<Fn> fns = {reconcile_deployments, reconcile_replicasets, reconcile_statefulsets,
                         reconcile_endpoints, reconcile_jobs};
  if (simulate_pods_) fns.push_back(reconcile_simulated_pods);
  for (Fn fn : fns) {
    try {
      fn(rest_, events_);
    } catch (const std::exception& e) {
      // Conflicts and races with clients are retried by the next pass; anything else is a
      // bad object a controller could not handle, which must not end kubesim either.
      if (dynamic_cast<const ApiError*>(&e)) {
        spdlog::debug("kubesim: controller pass: {}", e.what());
      } else {
        spdlog::warn("kubesim: controller pass: {}", e.what());
      }
      resync_.expires_after(std::chrono::milliseconds(200));
      resync_.async_wait([this](boost::system::error_code ec) {
        if (!ec) schedule();
      });
    }
  }
}

}  // namespace lpk::kubesim

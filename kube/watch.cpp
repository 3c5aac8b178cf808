// Client::watch: the reflector's list-then-watch loop (client-go tools/cache/reflector.go).
#include <spdlog/spdlog.h>

#include <random>

#include "kube/client.hpp"
#include "kube/detail/backoff.hpp"
#include "kube/detail/call.hpp"
#include "kube/detail/status.hpp"

namespace lpk::kube {

namespace {

constexpr size_t kMaxWatchLine = 64u << 20;

/// The reflector's watch timeout: 5 to 10 minutes, so many clients do not re-watch together.
int watch_timeout(const ListOptions& o) {
  if (o.timeout_seconds > 0) return o.timeout_seconds;
  static thread_local std::mt19937 rng{std::random_device{}()};
  return 300 + int(rng() % 300);
}

std::string resource_version_of(const nlohmann::json& object) {
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return {};
  auto rv = md->find("resourceVersion");
  return rv != md->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}

}  // namespace

Client::WatchEnd Client::watch_once(const std::string& path, const ListOptions& o,
                                    std::string& rv,
                                    const std::function<void(const WatchEvent&)>& on_event,
                                    std::stop_token stop) {
  int timeout = watch_timeout(o);
  std::string q = "watch=true";
  if (std::string lq = detail::list_query(o, rv); !lq.empty()) q += "&" + lq;
  if (o.allow_bookmarks) q += "&allowWatchBookmarks=true";
  q += "&timeoutSeconds=" + std::to_string(timeout);
  detail::HttpRequest req;
  req.target = detail::with_query(path, q);
  req.timeout_seconds = timeout + 60;  // a silent dead connection ends too
  req.stop = stop;
  WatchEnd end = WatchEnd::timed_out;
  std::string buffer;
  auto handle = [&](std::string_view line) {
    std::string error;
    auto ev = detail::parse_watch_line(line, error);
    if (!ev) {
      spdlog::warn("kube: watch of {}: the server sent {}; watching again from {}", path, error, rv);
      end = WatchEnd::broken;
      return false;
    }
    if (ev->type == "ERROR") {
      int code = ev->object.value("code", 0);
      end = code == 410 ? WatchEnd::gone : WatchEnd::error_event;
      if (code != 410)
        spdlog::warn("kube: watch of {} ended with {}", path,
                     detail::api_error(code, ev->object.dump(), "watch", path, who()).what());
      return false;
    }
    if (std::string v = resource_version_of(ev->object); !v.empty()) rv = v;
    if (ev->type != "BOOKMARK") on_event(WatchEvent{ev->type, std::move(ev->object)});
    return true;
  };
  req.on_data = [&](std::string_view chunk) {
    buffer.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer.data() + start, nl - start);
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      if (!handle(line)) return false;
    }
    buffer.erase(0, start);
    if (buffer.size() <= kMaxWatchLine) return true;
    spdlog::warn("kube: watch of {}: an event larger than {} MiB; watching again", path,
                 kMaxWatchLine >> 20);
    end = WatchEnd::broken;
    return false;
  };
  spdlog::debug("kube: watch {}", req.target);
  detail::HttpResponse res = detail::exchange(*http_, credentials_, req);
  spdlog::debug("kube: watch of {} ended: HTTP {} {}{}", path, res.code, res.error,
                res.aborted ? " (aborted)" : "");
  if (stop.stop_requested()) return WatchEnd::stopped;
  if (res.aborted) return end;
  if (res.code == 410) return WatchEnd::gone;
  if (res.code == 0) throw ApiError("kube: " + res.error, 0, "ConnectionError", nullptr);
  if (res.code < 200 || res.code > 299)
    throw detail::api_error(int(res.code), res.body, "watch", path, who());
  if (!res.error.empty()) {
    spdlog::debug("kube: watch of {} broke: {}", path, res.error);
    return WatchEnd::broken;
  }
  return end;
}

void Client::watch(const std::string& path, const ListOptions& o,
                   std::function<void(const nlohmann::json&)> on_relist,
                   std::function<void(const WatchEvent&)> on_event, std::stop_token stop) {
  std::string rv;
  bool relist = true, first = true;
  detail::WatchBackoff delays;
  auto backoff = [&] {
    return detail::wait_for(delays.next(detail::WatchBackoff::Clock::now()), stop);
  };
  while (!stop.stop_requested()) {
    try {
      if (relist) {
        ListOptions lo = o;
        if (!first) lo.resource_version.clear();  // after 410: a consistent list
        nlohmann::json l = list(path, lo);
        rv = resource_version_of(l);
        first = relist = false;
        on_relist(l);
      }
      auto started = std::chrono::steady_clock::now();
      switch (watch_once(path, o, rv, on_event, stop)) {
        case WatchEnd::stopped:
          return;
        case WatchEnd::gone:
          spdlog::info("kube: watch of {}: resourceVersion {} is too old; listing again", path, rv);
          relist = true;
          break;
        case WatchEnd::timed_out:
          if (std::chrono::steady_clock::now() - started > std::chrono::seconds(1))
            delays.reset();
          else if (!backoff())  // a watch that ends at once would spin
            return;
          break;
        case WatchEnd::error_event:
          relist = true;
          [[fallthrough]];
        case WatchEnd::broken:
          if (!backoff()) return;
          break;
      }
    } catch (const ApiError& e) {
      if (e.code == 410) {
        relist = true;
        continue;
      }
      bool transient = (e.code == 0 && e.reason == "ConnectionError") || e.code == 429 ||
                       e.code >= 500;
      if (!transient) throw;
      spdlog::warn("{}; retrying", e.what());
      if (!backoff()) return;
    }
  }
}

}  // namespace lpk::kube

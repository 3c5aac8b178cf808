// Api::serve_watch: a watch is a chunked 200 response of one JSON event per line, fed from
// the store's history and woken by its listener. Ends on timeoutSeconds or client close.

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "tools/kubesim/api.hpp"
#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/selectors.hpp"
#include "tools/kubesim/status.hpp"
#include "tools/kubesim/tables.hpp"

namespace lpk::kubesim {

using asio::awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {

struct WatchState {
  const ResourceType* type = nullptr;
  std::string ns;
  LabelSelector labels;
  std::vector<FieldRequirement> fields;
  bool table = false;
  bool bookmarks = false;
  std::string include_object;
  uint64_t rv = 0;
  bool sent_columns = false;
};

bool selected(const WatchState& w, const json& obj) {
  if (!w.ns.empty() && obj["metadata"].value("namespace", "") != w.ns) return false;
  return w.labels.matches(obj["metadata"].value("labels", json::object())) &&
         fields_match(w.fields, obj);
}

std::string event_line(WatchState& w, const std::string& type, const json& obj) {
  json o = obj;
  if (w.table) {
    o = make_table(*w.type, {obj}, obj["metadata"].value("resourceVersion", ""), w.include_object,
                   !w.sent_columns);
    w.sent_columns = true;
  }
  return json{{"type", type}, {"object", o}}.dump() + "\n";
}

// Removes the store listener when the watch ends, however it ends.
class ListenerGuard {
 public:
  ListenerGuard(Store& s, Store::Listener l) : store_(s), id_(s.add_listener(std::move(l))) {}
  ~ListenerGuard() { store_.remove_listener(id_); }
  ListenerGuard(const ListenerGuard&) = delete;
  ListenerGuard& operator=(const ListenerGuard&) = delete;

 private:
  Store& store_;
  int id_;
};

// Built outside the coroutines: GCC 12 miscompiles string-literal initializer lists that
// appear inside co_await expressions ("array used as initializer").
std::string error_line(const ApiError& e) {
  return json{{"type", "ERROR"}, {"object", e.status()}}.dump() + "\n";
}

std::string bookmark_line(const WatchState& w) {
  json bm = {{"kind", w.type->kind},
             {"apiVersion", w.type->api_version()},
             {"metadata", {{"resourceVersion", std::to_string(w.rv)}}}};
  return json{{"type", "BOOKMARK"}, {"object", bm}}.dump() + "\n";
}

awaitable<void> pump(Store& store, TlsStream& stream, WatchState& w,
                     std::chrono::steady_clock::time_point deadline,
                     std::chrono::milliseconds bookmark_every) {
  asio::steady_timer wake(co_await asio::this_coro::executor);
  // A change during a write must not be lost: the flag remembers it until the next wait.
  bool dirty = false;
  ListenerGuard guard(store, [&](const WatchEvent& ev) {
    if (ev.resource != w.type->plural) return;
    dirty = true;
    wake.cancel();
  });
  auto next_bookmark = std::chrono::steady_clock::now() + bookmark_every;
  while (std::chrono::steady_clock::now() < deadline) {
    dirty = false;
    auto events = store.events_since(w.type->plural, w.rv);
    if (!events) {
      ApiError e = gone("too old resource version: " + std::to_string(w.rv) + " (" +
                        std::to_string(store.resource_version()) + ")");
      std::string line = error_line(e);
      co_await write_chunk(stream, line);
      co_return;
    }
    for (const auto& ev : *events) {
      w.rv = ev.rv;
      if (!selected(w, ev.object)) continue;
      std::string line = event_line(w, ev.type, ev.object);
      if (!co_await write_chunk(stream, line)) co_return;
    }
    if (w.bookmarks && std::chrono::steady_clock::now() >= next_bookmark) {
      w.rv = store.resource_version();
      std::string line = bookmark_line(w);
      if (!co_await write_chunk(stream, line)) {
        co_return;
      }
      next_bookmark = std::chrono::steady_clock::now() + bookmark_every;
    }
    if (dirty) continue;
    auto until = std::min(deadline, w.bookmarks ? next_bookmark : deadline);
    wake.expires_at(until);
    co_await wake.async_wait(kTuple);
  }
}

}  // namespace

awaitable<bool> Api::serve_watch(Request& req, TlsStream& stream, const Route& r,
                                 const std::map<std::string, std::string>& q) {
  auto param = [&](const char* k) { return q.count(k) ? q.at(k) : std::string(); };
  Store& store = rest_.store();
  // Validates the selectors (400 before the stream starts) and gives the initial state.
  auto initial = rest_.list(*r.type, r.ns, param("labelSelector"), param("fieldSelector"));
  WatchState w;
  w.type = r.type;
  w.ns = r.ns;
  w.labels = *LabelSelector::parse(param("labelSelector"));
  std::string why;
  w.fields = *parse_field_selector(param("fieldSelector"), selectable_fields(*r.type), &why);
  w.table = wants_table(req);
  w.bookmarks = param("allowWatchBookmarks") == "true" || param("allowWatchBookmarks") == "True";
  w.include_object = q.count("includeObject") ? q.at("includeObject") : "Metadata";
  std::string rv = param("resourceVersion");
  bool replay = rv.empty() || rv == "0";
  if (!replay) {
    try {
      w.rv = std::stoull(rv);
    } catch (const std::exception&) {
      throw ApiError(400, "BadRequest", "invalid resource version: " + rv);
    }
  } else {
    w.rv = std::stoull(initial.resource_version);
  }
  auto timeout = watch_.default_timeout;
  if (!param("timeoutSeconds").empty()) {
    timeout = std::chrono::seconds(std::atol(param("timeoutSeconds").c_str()));
  }
  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "application/json");
  res.set("Audit-Id", "kubesim");
  res.chunked(true);
  res.keep_alive(false);
  if (!co_await write_head(stream, res.base())) co_return false;
  if (replay) {
    for (const auto& obj : initial.items) {
      std::string line = event_line(w, "ADDED", obj);
      if (!co_await write_chunk(stream, line)) co_return false;
    }
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  co_await (pump(store, stream, w, deadline, watch_.bookmark_interval) || wait_for_close(stream));
  co_await write_last_chunk(stream);
  co_return false;
}

}  // namespace lpk::kubesim

#include "tools/kubesim/store.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>

#include "tools/kubesim/resources.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

std::string now_rfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string new_uid() {
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32),
                unsigned((a >> 16) & 0xffff), unsigned(a & 0xffff), unsigned(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

Store::Store(size_t history) : history_limit_(history) {}

namespace {
std::pair<std::string, std::string> key_of(const json& obj) {
  const auto& m = obj.at("metadata");
  return {m.value("namespace", ""), m.value("name", "")};
}
std::string group_of(const std::string& resource) { return resource_by_plural(resource).group; }

// Everything except metadata and status: a change here is a new generation.
json spec_part(const json& obj) {
  json s = obj;
  s.erase("metadata");
  s.erase("status");
  return s;
}
}  // namespace

std::optional<json> Store::get(const std::string& resource, const std::string& ns,
                               const std::string& name) const {
  auto t = objects_.find(resource);
  if (t == objects_.end()) return std::nullopt;
  auto it = t->second.find({ns, name});
  if (it == t->second.end()) return std::nullopt;
  return it->second;
}

std::vector<json> Store::list(const std::string& resource, const std::string& ns) const {
  std::vector<json> out;
  auto t = objects_.find(resource);
  if (t == objects_.end()) return out;
  for (const auto& [key, obj] : t->second) {
    if (ns.empty() || key.first == ns) out.push_back(obj);
  }
  return out;
}

json Store::create(const std::string& resource, json obj) {
  auto key = key_of(obj);
  auto& objs = objects(resource);
  if (objs.count(key)) throw already_exists(resource, key.second, group_of(resource));
  auto& m = obj["metadata"];
  // A Job's uid is chosen by admission (its selector names it); any other object's is made
  // here, whatever it carries (controllers build objects from copies of others).
  bool chosen = resource == "jobs" && m.contains("uid") && m["uid"].is_string() &&
                !m["uid"].get<std::string>().empty();
  if (!chosen) m["uid"] = new_uid();
  m["resourceVersion"] = std::to_string(++rv_);
  m["creationTimestamp"] = now_rfc3339();
  m["generation"] = 1;
  objs[key] = obj;
  record("ADDED", resource, obj);
  return obj;
}

json Store::update(const std::string& resource, json obj, bool status_only) {
  auto key = key_of(obj);
  auto& objs = objects(resource);
  auto it = objs.find(key);
  if (it == objs.end()) throw not_found(resource, key.second, group_of(resource));
  json& cur = it->second;
  const auto& cm = cur["metadata"];
  std::string want = obj["metadata"].value("resourceVersion", "");
  if (!want.empty() && want != cm.value("resourceVersion", "")) {
    throw conflict(resource, key.second,
                   "the object has been modified; please apply your changes to the latest "
                   "version and try again",
                   group_of(resource));
  }
  json next;
  if (status_only) {
    next = cur;
    if (obj.contains("status")) next["status"] = obj["status"];
  } else {
    next = obj;
    if (cur.contains("status"))
      next["status"] = cur["status"];
    else
      next.erase("status");
    int64_t gen = cm.value("generation", int64_t{1});
    if (spec_part(next) != spec_part(cur)) ++gen;
    auto& m = next["metadata"];
    m["generation"] = gen;
    for (const char* f : {"uid", "creationTimestamp", "namespace", "name"}) {
      if (cm.contains(f)) m[f] = cm[f];
    }
  }
  if (next == cur) return cur;  // no-op updates keep the resourceVersion, as etcd3 does
  next["metadata"]["resourceVersion"] = std::to_string(++rv_);
  cur = next;
  record("MODIFIED", resource, cur);
  return cur;
}

json Store::remove(const std::string& resource, const std::string& ns, const std::string& name) {
  auto& objs = objects(resource);
  auto it = objs.find({ns, name});
  if (it == objs.end()) throw not_found(resource, name, group_of(resource));
  json last = std::move(it->second);
  objs.erase(it);
  last["metadata"]["resourceVersion"] = std::to_string(++rv_);
  record("DELETED", resource, last);
  return last;
}

void Store::record(const std::string& type, const std::string& resource, const json& obj) {
  history_.push_back({rv_, type, resource, obj});
  while (history_.size() > history_limit_) {
    oldest_rv_ = history_.front().rv;
    history_.pop_front();
  }
  // Copy: a listener may add or remove listeners.
  WatchEvent ev = history_.back();
  auto ls = listeners_;
  for (auto& [id, l] : ls) l(ev);
}

std::optional<std::vector<WatchEvent>> Store::events_since(const std::string& resource,
                                                           uint64_t since) const {
  if (since < oldest_rv_) return std::nullopt;
  std::vector<WatchEvent> out;
  for (auto it = history_.rbegin(); it != history_.rend() && it->rv > since; ++it) {
    if (it->resource == resource) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

int Store::add_listener(Listener l) {
  listeners_[next_listener_] = std::move(l);
  return next_listener_++;
}

void Store::remove_listener(int id) { listeners_.erase(id); }

}  // namespace lpk::kubesim

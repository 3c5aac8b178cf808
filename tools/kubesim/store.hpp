#pragma once
// The in-memory object store: every object of every type, one resourceVersion counter,
// and a bounded history of changes that watches replay from.
// Single-threaded: used only from the io_context thread.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lpk::kubesim {

using json = nlohmann::json;

struct WatchEvent {
  uint64_t rv;
  std::string type;      // ADDED, MODIFIED, DELETED
  std::string resource;  // plural
  json object;           // the object after the change (last state for DELETED)
};

class Store {
 public:
  using Listener = std::function<void(const WatchEvent&)>;

  /// history: how many events watches can resume from; older versions get 410.
  explicit Store(size_t history = 20000);

  std::optional<json> get(const std::string& resource, const std::string& ns,
                          const std::string& name) const;
  /// Objects of a type, ordered by namespace then name; ns empty means all namespaces.
  std::vector<json> list(const std::string& resource, const std::string& ns = "") const;

  /// Stores a new object: sets uid, resourceVersion, generation and creationTimestamp.
  /// Throws ApiError 409 AlreadyExists.
  json create(const std::string& resource, json obj);
  /// Replaces an object. A non-empty metadata.resourceVersion must match (else 409 Conflict).
  /// status_only keeps the stored spec/metadata and takes only status from obj; otherwise
  /// status is kept and generation grows when anything but metadata and status changed.
  json update(const std::string& resource, json obj, bool status_only = false);
  /// Removes an object and returns its last state. Throws ApiError 404.
  json remove(const std::string& resource, const std::string& ns, const std::string& name);

  uint64_t resource_version() const { return rv_; }
  /// Events of a type with rv > since, or nullopt when since is older than the history.
  std::optional<std::vector<WatchEvent>> events_since(const std::string& resource,
                                                      uint64_t since) const;

  /// Called after every change, synchronously. Returns an id for remove_listener.
  int add_listener(Listener l);
  void remove_listener(int id);

 private:
  using Objects = std::map<std::pair<std::string, std::string>, json>;
  void record(const std::string& type, const std::string& resource, const json& obj);
  Objects& objects(const std::string& resource) { return objects_[resource]; }

  std::map<std::string, Objects> objects_;
  std::deque<WatchEvent> history_;
  size_t history_limit_;
  uint64_t rv_ = 1;
  uint64_t oldest_rv_ = 1;  // events with rv > oldest_rv_ are all in history_
  std::map<int, Listener> listeners_;
  int next_listener_ = 0;
};

/// "2026-11-30T07:40:01Z": the RFC 3339 form Kubernetes timestamps use.
std::string now_rfc3339();
/// A random RFC 4122 version 4 UUID.
std::string new_uid();

}  // namespace lpk::kubesim

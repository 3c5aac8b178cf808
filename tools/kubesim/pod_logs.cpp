#include "tools/kubesim/pod_logs.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "tools/kubesim/coro.hpp"
#include "tools/kubesim/rest.hpp"
#include "tools/kubesim/runtime/kubelet.hpp"
#include "tools/kubesim/status.hpp"

namespace lpk::kubesim {

using namespace asio::experimental::awaitable_operators;

namespace {

std::optional<int64_t> int_param(const std::map<std::string, std::string>& q, const char* k) {
  auto it = q.find(k);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  throw bad_request("invalid value \"" + it->second + "\" for " + k);
}

bool bool_param(const std::map<std::string, std::string>& q, const char* k) {
  auto it = q.find(k);
  return it != q.end() && (it->second == "true" || it->second == "1" || it->second == "True");
}

std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (*end == '.') {
    std::string frac;
    for (++end; *end >= '0' && *end <= '9'; ++end) frac += *end;
    frac = (frac + "000000000").substr(0, 9);
    t += std::chrono::nanoseconds(std::stoll(frac));
  }
  return t;
}

struct Entry {
  std::string time, stream, tag, text;
};

std::optional<Entry> parse_entry(const std::string& line) {
  size_t a = line.find(' '), b = a == std::string::npos ? a : line.find(' ', a + 1);
  size_t c = b == std::string::npos ? b : line.find(' ', b + 1);
  if (c == std::string::npos) return std::nullopt;
  return Entry{line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1, c - b - 1),
               line.substr(c + 1)};
}

ApiError invalid_options(const std::string& name, const std::string& field,
                         const std::string& why) {
  return invalid("PodLogOptions", name, field, "FieldValueInvalid", why);
}

}  // namespace

LogOptions parse_log_options(const std::map<std::string, std::string>& q,
                             std::chrono::system_clock::time_point now) {
  LogOptions o;
  if (auto it = q.find("container"); it != q.end()) o.container = it->second;
  o.follow = bool_param(q, "follow");
  o.previous = bool_param(q, "previous");
  o.timestamps = bool_param(q, "timestamps");
  o.tail_lines = int_param(q, "tailLines");
  o.limit_bytes = int_param(q, "limitBytes");
  auto since_s = int_param(q, "sinceSeconds");
  auto since_t = q.find("sinceTime");
  if (o.tail_lines && *o.tail_lines < 0) {
    throw invalid_options("", "tailLines",
                          "Invalid value: " + std::to_string(*o.tail_lines) +
                              ": must be greater than or equal to 0");
  }
  if (o.limit_bytes && *o.limit_bytes < 1) {
    throw invalid_options("", "limitBytes",
                          "Invalid value: " + std::to_string(*o.limit_bytes) +
                              ": must be greater than 0");
  }
  if (since_s && since_t != q.end()) {
    throw invalid_options("", "", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified");
  }
  if (since_s) {
    if (*since_s < 1) {
      throw invalid_options("", "sinceSeconds",
                            "Invalid value: " + std::to_string(*since_s) + ": must be greater than 0");
    }
    o.since = now - std::chrono::seconds(*since_s);
  } else if (since_t != q.end()) {
    o.since = parse_time(since_t->second);
    if (!o.since) throw bad_request("invalid sinceTime \"" + since_t->second + "\"");
  }
  return o;
}

std::string log_container(const json& pod, const std::string& requested) {
  std::vector<std::string> names;
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    for (const auto& c : pod["spec"].value(list, json::array())) names.push_back(c.value("name", ""));
  }
  std::string pod_name = pod["metadata"].value("name", "");
  const json& containers = pod["spec"].value("containers", json::array());
  if (requested.empty()) {
    if (containers.size() == 1) return containers[0].value("name", "");
    if (containers.empty()) throw bad_request("a container name must be specified for pod " + pod_name);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : " ") + n;
    throw bad_request("a container name must be specified for pod " + pod_name +
                      ", choose one of: [" + list + "]");
  }
  if (std::find(names.begin(), names.end(), requested) == names.end()) {
    throw bad_request("container " + requested + " is not valid for pod " + pod_name);
  }
  return requested;
}

std::string format_cri_log(const std::string& cri, const LogOptions& o, bool apply_tail) {
  std::vector<Entry> entries;
  std::istringstream in(cri);
  for (std::string line; std::getline(in, line);) {
    if (auto e = parse_entry(line)) entries.push_back(std::move(*e));
  }
  size_t first = 0;
  if (apply_tail && o.tail_lines && size_t(*o.tail_lines) < entries.size()) {
    first = entries.size() - size_t(*o.tail_lines);
  }
  std::string out;
  for (size_t i = first; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (o.since) {
      auto t = parse_time(e.time);
      if (t && *t < *o.since) continue;
    }
    if (o.timestamps) out += e.time + " ";
    out += e.text;
    if (e.tag != "P") out += "\n";
  }
  return out;
}

namespace {

std::string read_from(const std::string& file, size_t offset) {
  std::ifstream f(file, std::ios::binary);
  f.seekg(std::streamoff(offset));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

asio::awaitable<void> write_text(TlsStream& stream, const Request& req, const std::string& body,
                                 bool keep) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.set("Audit-Id", "kubesim");
  res.keep_alive(keep);
  res.body() = body;
  res.prepare_payload();
  co_await write_response(stream, res);
}

std::string limited(std::string text, int64_t& budget) {
  if (budget >= 0 && int64_t(text.size()) > budget) text.resize(size_t(budget));
  if (budget >= 0) budget -= int64_t(text.size());
  return text;
}

}  // namespace

asio::awaitable<bool> PodLogs::serve(Request& req, TlsStream& stream, const Route& r,
                                     const std::map<std::string, std::string>& q) {
  json pod = rest_.get(r);
  LogOptions o = parse_log_options(q, std::chrono::system_clock::now());
  std::string container = log_container(pod, o.container);
  bool keep = req.keep_alive();
  // A pod not yet on a node has no log: the apiserver answers with an empty body.
  if (pod["spec"].value("nodeName", "").empty()) {
    co_await write_text(stream, req, "", keep);
    co_return keep;
  }
  LogSource src = kubelet_.log_source(pod, container, o.previous);
  if (!src.error.empty()) throw bad_request(src.error);
  std::string data = read_from(src.file.string(), 0);
  size_t whole = data.rfind('\n') == std::string::npos ? 0 : data.rfind('\n') + 1;
  int64_t budget = o.limit_bytes ? *o.limit_bytes : -1;
  std::string first = limited(format_cri_log(data.substr(0, whole), o), budget);
  if (!o.follow || !src.running || budget == 0) {
    co_await write_text(stream, req, first, keep);
    co_return keep;
  }
  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.set("Audit-Id", "kubesim");
  res.chunked(true);
  res.keep_alive(false);
  if (!co_await write_head(stream, res.base())) co_return false;
  co_await write_chunk(stream, first);
  co_await (follow(stream, pod, container, src.file.string(), whole, o, budget) ||
            wait_for_close(stream));
  co_await write_last_chunk(stream);
  co_return false;
}

// Polls the file as the kubelet does without inotify, until the instance has ended and its
// last line has been sent, or the byte budget is spent.
asio::awaitable<void> PodLogs::follow(TlsStream& stream, json pod, std::string container,
                                      std::string file, size_t offset, LogOptions o,
                                      int64_t budget) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // The output reader may trail the exit by a turn: one more pass once the instance ended.
  bool last_pass = false;
  for (;;) {
    bool running = kubelet_.log_running(pod, container, file);
    std::string data = read_from(file, offset);
    size_t nl = data.rfind('\n');
    if (nl != std::string::npos) {
      offset += nl + 1;
      std::string text = limited(format_cri_log(data.substr(0, nl + 1), o, false), budget);
      if (!co_await write_chunk(stream, text)) co_return;
      if (budget == 0) co_return;
    }
    if (!running) {
      if (last_pass) co_return;
      last_pass = true;
    }
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(kTuple);
  }
}

}  // namespace lpk::kubesim

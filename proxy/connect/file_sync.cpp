#include "proxy/connect/file_sync.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <set>

#include "proxy/connect/environment.hpp"
#include "proxy/control/session_paths.hpp"
#include "proxy/tunnel/loopback_pair.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

FileMirror::FileMirror(std::filesystem::path root, std::vector<std::string> skip)
    : root_(std::move(root)), skip_(std::move(skip)) {}

bool FileMirror::skipped(const std::string& path) const {
  return std::any_of(skip_.begin(), skip_.end(), [&](const std::string& s) {
    auto dir = s.ends_with('/') ? s : s + "/";
    return path == s || path.starts_with(dir);
  });
}

MirrorChange FileMirror::apply(const tunnel::FilesUpdate& update) {
  MirrorChange change;
  if (auto made = make_private_dir(root_); !made) {
    for (const auto& f : update.files) change.failed.emplace_back(f.path, made.error().message);
    return change;
  }
  for (const auto& file : update.files) write(file, change);
  for (const auto& path : update.removed) remove(path, change);
  if (update.full) {
    std::set<std::string_view> listed;
    for (const auto& f : update.files) listed.insert(f.path);
    std::vector<std::string> gone;
    for (const auto& [path, held] : held_) {
      if (!listed.contains(path)) gone.push_back(path);
    }
    for (const auto& path : gone) remove(path, change);
  }
  return change;
}

void FileMirror::write(const tunnel::AgentFile& file, MirrorChange& change) {
  if (skipped(file.path)) {
    change.skipped.push_back(file.path);
    return;
  }
  auto it = held_.find(file.path);
  if (it != held_.end() && it->second.mode == file.mode && it->second.bytes == file.bytes) return;
  if (auto written = write_imported_file(root_, file.path, file.mode, file.bytes); !written) {
    change.failed.emplace_back(file.path, written.error().message);
    return;
  }
  held_[file.path] = Held{file.mode, file.bytes};
  change.written.push_back(file.path);
}

void FileMirror::remove(const std::string& path, MirrorChange& change) {
  auto it = held_.find(path);
  if (it == held_.end()) return;  // never written here: nothing of ours to remove
  if (auto removed = remove_imported_file(root_, path); !removed) {
    change.failed.emplace_back(path, removed.error().message);
    return;
  }
  held_.erase(it);
  change.removed.push_back(path);
}

asio::awaitable<FollowEnd> follow_files(OpenStream open, FileMirror& mirror,
                                        std::function<void(const MirrorChange&)> changed,
                                        FollowOptions options) {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  FollowEnd end;
  auto executor = co_await asio::this_coro::executor;
  auto pair = tunnel::loopback_pair(executor);
  if (!pair) {
    end.why = {pair.error(), "cannot make a loopback socket pair: " + pair.error().message()};
    co_return end;
  }
  auto& [ours, tunnel_end] = *pair;
  open(std::move(tunnel_end), tunnel::Target{tunnel::Target::Kind::name,
                                             std::string(tunnel::kFilesServiceHost),
                                             tunnel::kFilesServicePort});
  asio::streambuf buffer(options.max_line);
  while (true) {
    auto [ec, n] = co_await asio::async_read_until(ours, buffer, '\n', kTuple);
    if (ec) {
      end.why = {ec, ec == asio::error::not_found
                         ? "a files update is longer than " + std::to_string(options.max_line) +
                               " bytes"
                         : "the files.lpk.internal stream ended: " + ec.message()};
      co_return end;
    }
    std::string line(asio::buffers_begin(buffer.data()),
                     asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n - 1));
    buffer.consume(n);
    auto update = tunnel::parse_files_update(line);
    if (!update) {
      end.why = update.error();
      co_return end;
    }
    ++end.messages;
    auto change = mirror.apply(*update);
    if (!change.empty()) changed(change);
  }
}

}  // namespace lpk::proxy

#include "proxy/control/server.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

#include "proxy/control/client.hpp"
#include "proxy/control/session_paths.hpp"

namespace lpk::proxy {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::local::stream_protocol;
using nlohmann::json;

namespace {

constexpr auto kNoError = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr std::chrono::seconds kRequestTimeout{5};

}  // namespace

struct ControlServer::Shared {
  Shared(asio::any_io_executor ex, std::string id, fs::path p)
      : executor(ex), session(std::move(id)), path(std::move(p)), acceptor(ex) {}

  asio::any_io_executor executor;
  std::string session;
  fs::path path;
  std::map<std::string, Handler> handlers;
  stream_protocol::acceptor acceptor;
  bool listening = false;
  bool stopped = false;
};

namespace {

json answer(ControlServer::Handler* handler, const std::string& command, const std::string& session,
            const std::map<std::string, ControlServer::Handler>& all) {
  if (!handler) {
    std::string known;
    for (const auto& [name, h] : all) known += (known.empty() ? "" : ", ") + name;
    return {{"ok", false}, {"error", "unknown command \"" + command + "\" (known: " + known + ")"}};
  }
  try {
    return {{"ok", true}, {"command", command}, {"session", session}, {"result", (*handler)()}};
  } catch (const std::exception& e) {
    return {{"ok", false}, {"command", command}, {"error", e.what()}};
  }
}

json reply_to(const std::string& line, ControlServer::Shared& shared);

asio::awaitable<void> serve(std::shared_ptr<ControlServer::Shared> shared,
                            stream_protocol::socket socket) {
  using namespace asio::experimental::awaitable_operators;
  std::string line;
  asio::steady_timer deadline(socket.get_executor(), kRequestTimeout);
  auto read =
      asio::async_read_until(socket, asio::dynamic_buffer(line, kMaxRequest), '\n', kNoError);
  auto result = co_await (std::move(read) || deadline.async_wait(kNoError));
  if (result.index() == 1) co_return;  // a client that never finished its line
  auto [ec, n] = std::get<0>(result);
  if (ec && line.empty()) co_return;  // a probe: connected and closed
  std::string reply = reply_to(line.substr(0, line.find('\n')), *shared).dump() + "\n";
  co_await asio::async_write(socket, asio::buffer(reply), kNoError);
}

json reply_to(const std::string& line, ControlServer::Shared& shared) {
  json request = json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
      !request["command"].is_string()) {
    return {{"ok", false}, {"error", "a request is one JSON line like {\"command\":\"status\"}"}};
  }
  auto command = request["command"].get<std::string>();
  auto it = shared.handlers.find(command);
  return answer(it == shared.handlers.end() ? nullptr : &it->second, command, shared.session,
                shared.handlers);
}

asio::awaitable<void> accept_loop(std::shared_ptr<ControlServer::Shared> shared) {
  while (!shared->stopped) {
    auto [ec, socket] = co_await shared->acceptor.async_accept(kNoError);
    if (shared->stopped || ec == asio::error::operation_aborted) break;
    if (ec) {  // out of descriptors, say: let the others finish before trying again
      asio::steady_timer pause(shared->executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoError);
      continue;
    }
    asio::co_spawn(shared->executor, serve(shared, std::move(socket)), asio::detached);
  }
}

}  // namespace

ControlServer::ControlServer(asio::any_io_executor executor, std::string session,
                             fs::path socket_path)
    : shared_(std::make_shared<Shared>(executor, std::move(session), std::move(socket_path))) {}

ControlServer::~ControlServer() { stop(); }

const fs::path& ControlServer::socket_path() const { return shared_->path; }

void ControlServer::handle(const std::string& command, Handler handler) {
  shared_->handlers[command] = std::move(handler);
}

tunnel::Result<void> ControlServer::start() {
  using tunnel::Problem;
  const fs::path& path = shared_->path;
  if (auto dir = make_private_dir(path.parent_path()); !dir) return dir;
  if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Problem{std::make_error_code(std::errc::filename_too_long),
                   "the control socket path " + path.string() +
                       " is longer than a unix socket allows; set XDG_RUNTIME_DIR to a shorter "
                       "directory"};
  }
  std::error_code exists;
  if (fs::symlink_status(path, exists).type() != fs::file_type::not_found) {
    if (!is_socket_file(path)) {
      return Problem{std::make_error_code(std::errc::file_exists),
                     path.string() + " exists and is not a socket; remove it"};
    }
    if (probe_control_socket(path)) {
      return Problem{std::make_error_code(std::errc::address_in_use),
                     "a running lpk session already answers at " + path.string()};
    }
  }
  boost::system::error_code ec;
  auto& acceptor = shared_->acceptor;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(path.string()), ec);
  // The directory is 0700 already; 0600 keeps the socket private wherever it is moved or linked.
  if (!ec && chmod(path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    Problem problem{ec, "cannot listen on " + path.string() + ": " + ec.message()};
    acceptor.close(ec);
    return problem;
  }
  shared_->listening = true;
  asio::co_spawn(shared_->executor, accept_loop(shared_), asio::detached);
  return {};
}

void ControlServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  boost::system::error_code ignored;
  shared_->acceptor.close(ignored);
  if (shared_->listening) unlink(shared_->path.c_str());
}

}  // namespace lpk::proxy

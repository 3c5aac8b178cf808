#include "tools/kubesim/runtime/container_logs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>

namespace lpk::kubesim {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxLine = 16 * 1024;  // containerd's maximum line before it splits (P)
const char* kStreams[2] = {"stdout", "stderr"};
}  // namespace

std::string rfc3339_nano_fixed(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = std::time_t(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1000000000));
  return buf;
}

std::string cri_log_line(std::chrono::system_clock::time_point t, const std::string& stream,
                         bool partial, const std::string& text) {
  return rfc3339_nano_fixed(t) + " " + stream + (partial ? " P " : " F ") + text + "\n";
}

struct ContainerOutput::Stream {
  explicit Stream(asio::io_context& io, int fd) : pipe(io, fd) {}
  asio::posix::stream_descriptor pipe;
};

ContainerOutput::ContainerOutput(asio::io_context& io, fs::path raw_log, fs::path cri_log)
    : io_(io), raw_log_(std::move(raw_log)), cri_log_(std::move(cri_log)) {
  fs::create_directories(cri_log_.parent_path());
  for (int i = 0; i < 2; ++i) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      close();
      throw std::runtime_error(std::string("cannot make the container's output pipe: ") +
                               std::strerror(errno));
    }
    streams_[i] = std::make_unique<Stream>(io_, fds[0]);
    write_fds_[i] = fds[1];
  }
  std::ofstream(cri_log_, std::ios::app).close();
}

ContainerOutput::~ContainerOutput() { close(); }

void ContainerOutput::close() {
  for (int i = 0; i < 2; ++i) {
    if (write_fds_[i] >= 0) ::close(write_fds_[i]);
    write_fds_[i] = -1;
    boost::system::error_code ec;
    if (streams_[i]) streams_[i]->pipe.close(ec);
  }
}

void ContainerOutput::start(std::shared_ptr<ContainerOutput> self) {
  for (int i = 0; i < 2; ++i) {
    ::close(self->write_fds_[i]);
    self->write_fds_[i] = -1;
    asio::co_spawn(self->io_, self->read(self, i), asio::detached);
  }
}

asio::awaitable<void> ContainerOutput::read(std::shared_ptr<ContainerOutput> self, int index) {
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await streams_[index]->pipe.async_read_some(
        asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (n > 0) append(index, buf, n, false);
    if (ec) break;
  }
  append(index, nullptr, 0, true);
}

// Raw bytes to the plain log; complete lines (and over-long pieces) to the CRI log.
void ContainerOutput::append(int index, const char* data, size_t n, bool eof) {
  if (n > 0) {
    std::ofstream raw(raw_log_, std::ios::app | std::ios::binary);
    raw.write(data, std::streamsize(n));
  }
  std::string& p = pending_[index];
  p.append(data ? data : "", n);
  std::string out;
  auto now = std::chrono::system_clock::now();
  size_t start = 0;
  for (;;) {
    size_t nl = p.find('\n', start);
    if (nl == std::string::npos) break;
    out += cri_log_line(now, kStreams[index], false, p.substr(start, nl - start));
    start = nl + 1;
  }
  p.erase(0, start);
  while (p.size() >= kMaxLine) {
    out += cri_log_line(now, kStreams[index], true, p.substr(0, kMaxLine));
    p.erase(0, kMaxLine);
  }
  if (eof && !p.empty()) {
    out += cri_log_line(now, kStreams[index], false, p);
    p.clear();
  }
  if (out.empty()) return;
  std::ofstream cri(cri_log_, std::ios::app | std::ios::binary);
  cri << out;
}

}  // namespace lpk::kubesim

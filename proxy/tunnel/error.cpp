#include "proxy/tunnel/error.hpp"

#include <stdexcept>
#include <string>

namespace lpk::tunnel {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "lpk.tunnel"; }
  std::string message(int ev) const override {
    switch (static_cast<Error>(ev)) {
      case Error::truncated: return "truncated input";
      case Error::bad_magic: return "peer does not speak the lpk tunnel protocol";
      case Error::bad_version: return "peer speaks another lpk tunnel protocol version";
      case Error::bad_role: return "peer has an unexpected role";
      case Error::auth_failed: return "shared secret missing or different on the two ends";
      case Error::bad_hello: return "malformed hello";
      case Error::frame_too_large: return "frame larger than the negotiated maximum";
      case Error::unknown_frame_type: return "unknown frame type";
      case Error::bad_frame: return "malformed frame";
      case Error::stream_id_misuse: return "stream id misuse";
      case Error::window_overflow: return "peer exceeded its flow-control window";
      case Error::too_many_streams: return "too many concurrent streams";
      case Error::session_closed: return "session closed";
      case Error::ping_timeout: return "the link went silent (dead-link timeout)";
      case Error::replaced: return "replaced by a newer tunnel link";
      case Error::peer_went_away: return "peer went away";
      case Error::link_misconfigured: return "the link cannot be made as configured";
      case Error::bad_document: return "malformed agent service document";
    }
    return "unknown lpk.tunnel error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

void throw_exception_from_error(const Problem& problem, const boost::source_location&) {
  throw std::runtime_error(problem.message);
}

}  // namespace lpk::tunnel

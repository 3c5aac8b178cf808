#include "kube/portforward.hpp"

#include <boost/throw_exception.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace lpk::kube {

using boost::system::error_code;

// ---- error category -------------------------------------------------------------------------

namespace {
class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "lpk.kube.portforward"; }
  std::string message(int ev) const override {
    switch (static_cast<PortForwardErrc>(ev)) {
      case PortForwardErrc::bad_target:
        return "the API server or proxy URL cannot be used";
      case PortForwardErrc::proxy_refused:
        return "the proxy refused the tunnel to the API server";
      case PortForwardErrc::upgrade_refused:
        return "the API server refused the port-forward";
      case PortForwardErrc::subprotocol_refused:
        return "the server does not accept the v4.channel.k8s.io subprotocol";
      case PortForwardErrc::subprotocol_mismatch:
        return "the server did not confirm the v4.channel.k8s.io subprotocol";
      case PortForwardErrc::remote_error:
        return "the port-forward reported an error";
      case PortForwardErrc::protocol_error:
        return "the port-forward server broke the v4 framing";
    }
    return "unknown port-forward error";
  }
};
}  // namespace

const boost::system::error_category& portforward_category() {
  static const Category category;
  return category;
}
error_code make_error_code(PortForwardErrc e) {
  return {static_cast<int>(e), portforward_category()};
}

void throw_exception_from_error(const PortForwardFailure& f, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(f.message), loc);
}

PortForwardTarget portforward_target(const RestConfig& config, const Credentials::Material& auth,
                                     std::string pod_namespace, std::string pod,
                                     std::uint16_t port) {
  PortForwardTarget t;
  t.server = config.cluster.server;
  t.ca_pem = config.cluster.ca_pem;
  t.insecure = config.cluster.insecure_skip_tls_verify;
  t.tls_server_name = config.cluster.tls_server_name;
  if (!config.cluster.proxy_url.empty()) t.proxy_url = config.cluster.proxy_url;
  t.client_cert_pem = auth.client_cert_pem;
  t.client_key_pem = auth.client_key_pem;
  for (const auto& line : auth.headers) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    t.headers.emplace_back(line.substr(0, colon), value);
  }
  t.pod_namespace = std::move(pod_namespace);
  t.pod = std::move(pod);
  t.port = port;
  return t;
}

// ---- pure pieces ----------------------------------------------------------------------------

namespace detail {

V4Message demux_v4(V4State& state, std::span<const std::uint8_t> message, std::uint16_t port) {
  V4Message out;
  if (message.empty()) return out;  // the notes: empty messages are ignored
  std::uint8_t channel = message[0];
  auto payload = message.subspan(1);
  if (channel > 1) {
    out.kind = V4Message::protocol_error;
    out.problem = "message on channel " + std::to_string(channel) + " of a one-port forward";
    return out;
  }
  bool& prefix_seen = channel == 0 ? state.data_prefix_seen : state.error_prefix_seen;
  if (!prefix_seen) {
    // The prefix message is 3 bytes: the channel, then the port as little-endian u16.
    if (payload.size() != 2 || (payload[0] | (payload[1] << 8)) != port) {
      out.kind = V4Message::protocol_error;
      out.problem = "the first message on channel " + std::to_string(channel) +
                    " is not the port prefix for " + std::to_string(port);
      return out;
    }
    prefix_seen = true;
    return out;
  }
  if (payload.empty()) return out;
  out.kind = channel == 0 ? V4Message::data : V4Message::error_text;
  out.payload = payload;
  return out;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host) {
  std::size_t pos = 0;
  while (pos <= no_proxy.size()) {
    auto comma = no_proxy.find(',', pos);
    if (comma == std::string_view::npos) comma = no_proxy.size();
    auto entry = no_proxy.substr(pos, comma - pos);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry == "*") return true;
    if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
    if (!entry.empty() && (host == entry || (host.size() > entry.size() && host.ends_with(entry) &&
                                             host[host.size() - entry.size() - 1] == '.'))) {
      return true;
    }
    pos = comma + 1;
  }
  return false;
}

std::string describe_refusal(unsigned status, std::string_view reason, std::string_view body,
                             const std::string& what) {
  if (status == 403 && body.empty()) {
    return "the API server refused the port-forward subprotocol v4.channel.k8s.io for " + what +
           " (403 with an empty body); it needs a server that accepts WebSocket port-forward";
  }
  std::string text;
  auto status_json = nlohmann::json::parse(body, nullptr, false);
  if (status_json.is_object() && status_json.value("kind", "") == "Status" &&
      status_json.contains("message") && status_json["message"].is_string()) {
    text = status_json["message"].get<std::string>();
  } else {
    text = std::string(body.substr(0, 300));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    for (auto& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
  }
  if (text.empty()) text = std::string(reason);
  return "port-forward to " + what + " refused with HTTP " + std::to_string(status) + ": " + text;
}

}  // namespace detail

}  // namespace lpk::kube

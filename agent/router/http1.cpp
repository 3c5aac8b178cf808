#include "agent/router/http1.hpp"

#include <algorithm>

#include "kube/text.hpp"

namespace lpk::router {

namespace {

using text::iequals;

constexpr std::size_t kMaxMethod = 32;
constexpr std::uint64_t kMaxLength = std::uint64_t(1) << 60;  // no overflow in any sum

bool tchar(char c) {  // RFC 9110 section 5.6.2
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), tchar); }

/// A field value's or target's bytes: visible ASCII, obs-text, SP and HTAB; no CR, LF or NUL.
bool field_char(char c) {
  return c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// "HTTP/1.x" -> x, else -1.
int http1_minor(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || v[7] < '0' || v[7] > '9') return -1;
  return v[7] - '0';
}

bool parse_decimal(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + std::uint64_t(c - '0');
  }
  out = n;
  return true;
}

/// Calls `f(token)` for each comma-separated, trimmed, non-empty element of a list header.
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto element = trim(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

/// Where the head starting at `bytes` ends (just past CRLF CRLF), 0 when it does not yet.
std::size_t head_end(std::string_view bytes) {
  auto end = bytes.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

/// The head's framing facts, common to requests and responses.
struct Framing {
  bool has_length = false, conflict = false, close = false, keep_alive = false;
  std::uint64_t length = 0;
  int transfer_codings = 0, chunked_codings = 0;
  bool last_chunked = false;  // the final transfer coding is chunked

  bool chunked() const { return chunked_codings == 1 && last_chunked; }
  bool other_coding() const { return transfer_codings > 0 && !chunked(); }
};

bool note_framing(const Header& h, Framing& f) {
  if (iequals(h.name, "content-length")) {
    std::uint64_t n = 0;
    if (!parse_decimal(h.value, n)) return false;
    if (f.has_length && n != f.length) f.conflict = true;
    f.has_length = true;
    f.length = n;
  } else if (iequals(h.name, "transfer-encoding")) {
    for_each_element(h.value, [&](std::string_view coding) {
      f.last_chunked = iequals(coding, "chunked");
      f.transfer_codings++;
      f.chunked_codings += f.last_chunked;
    });
  } else if (iequals(h.name, "connection")) {
    for_each_element(h.value, [&](std::string_view option) {
      if (iequals(option, "close")) f.close = true;
      if (iequals(option, "keep-alive")) f.keep_alive = true;
    });
  }
  return true;
}

/// Parses the header lines of `head` (after its start line, up to the blank line) into
/// `headers` and `framing`; false on a malformed line.
bool parse_fields(std::string_view lines, std::vector<Header>& headers, Framing& framing) {
  while (!lines.empty()) {
    auto eol = lines.find("\r\n");
    if (eol == std::string_view::npos) return false;
    auto line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    Header h{line.substr(0, colon), trim(line.substr(colon + 1))};
    // A name must be a token: this also rejects obs-fold (a line starting with whitespace)
    // and whitespace before the colon (RFC 9112 sections 5.1 and 5.2).
    if (!is_token(h.name) || !std::all_of(h.value.begin(), h.value.end(), field_char)) return false;
    if (!note_framing(h, framing)) return false;
    headers.push_back(h);
  }
  return true;
}

/// The method, target and version of a request line (without its CRLF); false if malformed.
bool parse_request_line(std::string_view line, RequestHead& out) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out.minor = http1_minor(line.substr(sp2 + 1));
  if (!is_token(out.method) || out.method.size() > kMaxMethod || out.minor < 0) return false;
  return !out.target.empty() && std::all_of(out.target.begin(), out.target.end(), [](char c) {
    return c != ' ' && c != '\t' && field_char(c);
  });
}

bool is_prefix_of(std::string_view bytes, std::string_view whole) {
  return whole.substr(0, std::min(bytes.size(), whole.size())) == bytes.substr(0, whole.size());
}

}  // namespace

Protocol sniff_protocol(std::string_view bytes) {
  if (is_prefix_of(bytes, kH2Preface)) {
    return bytes.size() >= kH2Preface.size() ? Protocol::h2 : Protocol::need_more;
  }
  // METHOD SP TARGET SP HTTP/1.x CRLF, judged byte by byte so that a protocol whose client
  // speaks first with something else is told apart at once.
  std::size_t i = 0;
  while (i < bytes.size() && i <= kMaxMethod && tchar(bytes[i])) ++i;
  if (i > kMaxMethod) return Protocol::other;
  if (i == bytes.size()) return Protocol::need_more;
  if (bytes[i] != ' ' || i == 0) return Protocol::other;
  auto sp2 = bytes.find(' ', i + 1);
  auto target = bytes.substr(i + 1, sp2 == std::string_view::npos ? sp2 : sp2 - i - 1);
  if (!std::all_of(target.begin(), target.end(),
                   [](char c) { return field_char(c) && c != '\t'; })) {
    return Protocol::other;
  }
  if (sp2 == std::string_view::npos) {
    return bytes.size() < kMaxHeadSize ? Protocol::need_more : Protocol::other;
  }
  if (target.empty()) return Protocol::other;
  auto rest = bytes.substr(sp2 + 1);
  constexpr std::string_view kVersion = "HTTP/1.x\r\n";
  for (std::size_t k = 0; k < rest.size() && k < kVersion.size(); ++k) {
    bool ok = kVersion[k] == 'x' ? rest[k] >= '0' && rest[k] <= '9' : rest[k] == kVersion[k];
    if (!ok) return Protocol::other;
  }
  return rest.size() >= kVersion.size() ? Protocol::http1 : Protocol::need_more;
}

const std::string_view* RequestHead::find(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

ParseStatus parse_request_head(std::string_view bytes, RequestHead& out) {
  auto end = head_end(bytes.substr(0, kMaxHeadSize));
  if (end == 0)
    return bytes.size() >= kMaxHeadSize ? ParseStatus::too_large : ParseStatus::need_more;
  auto head = bytes.substr(0, end - 2);  // each line with its CRLF
  auto eol = head.find("\r\n");
  out.headers.clear();
  if (!parse_request_line(head.substr(0, eol), out)) return ParseStatus::malformed;
  Framing f;
  if (!parse_fields(head.substr(eol + 2), out.headers, f)) return ParseStatus::malformed;
  // A request's Transfer-Encoding must end in chunked (RFC 9112 section 6.3, item 4).
  if (f.other_coding() || f.conflict || f.length > kMaxLength) return ParseStatus::malformed;
  out.size = end;
  out.body = f.chunked()                    ? BodyKind::chunked
             : f.has_length && f.length > 0 ? BodyKind::content_length
                                            : BodyKind::none;
  out.content_length = f.chunked() ? 0 : f.length;
  // Both framings at once is how requests are smuggled: chunked wins, and the connection
  // ends after this exchange (RFC 9112 section 6.3, item 3).
  out.close = f.close || (out.minor == 0 && !f.keep_alive) || (f.chunked() && f.has_length);
  out.expect_continue = false;
  if (auto* expect = out.find("expect")) out.expect_continue = iequals(*expect, "100-continue");
  return ParseStatus::complete;
}

ParseStatus parse_response_head(std::string_view bytes, bool head_request, bool connect_request,
                                ResponseHead& out) {
  auto end = head_end(bytes.substr(0, kMaxHeadSize));
  if (end == 0)
    return bytes.size() >= kMaxHeadSize ? ParseStatus::too_large : ParseStatus::need_more;
  auto head = bytes.substr(0, end - 2);
  auto eol = head.find("\r\n");
  auto line = head.substr(0, eol);
  // HTTP/1.x SP 3DIGIT [SP reason]
  out.minor = http1_minor(line.substr(0, 8));
  if (out.minor < 0 || line.size() < 12 || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return ParseStatus::malformed;
  }
  std::uint64_t status = 0;
  if (!parse_decimal(line.substr(9, 3), status) || status < 100) return ParseStatus::malformed;
  out.status = int(status);
  out.headers.clear();
  Framing f;
  if (!parse_fields(head.substr(eol + 2), out.headers, f) || f.conflict) {
    return ParseStatus::malformed;
  }
  out.size = end;
  out.close = f.close || (out.minor == 0 && !f.keep_alive);
  out.content_length = 0;
  bool no_body = head_request || out.status < 200 || out.status == 204 || out.status == 304;
  if (connect_request && out.status < 300 && out.status >= 200) {
    out.body = BodyKind::until_close;
  } else if (no_body) {
    out.body = BodyKind::none;
  } else if (f.transfer_codings > 0) {
    out.body = f.chunked() ? BodyKind::chunked : BodyKind::until_close;
  } else if (f.has_length) {
    out.body = f.length > 0 ? BodyKind::content_length : BodyKind::none;
    out.content_length = f.length;
  } else {
    out.body = BodyKind::until_close;
  }
  return ParseStatus::complete;
}

ChunkedScanner::Result ChunkedScanner::scan(std::string_view bytes, std::size_t& used) {
  std::size_t i = 0;
  while (i < bytes.size() && state_ != State::done) {
    if (state_ == State::data) {
      auto take = std::min<std::uint64_t>(remaining_, bytes.size() - i);
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::data_cr;
      continue;
    }
    if (step(bytes[i++]) == Result::malformed) {
      used = i;
      return Result::malformed;
    }
  }
  used = i;
  return state_ == State::done ? Result::done : Result::more;
}

ChunkedScanner::Result ChunkedScanner::step(char c) {
  auto expect = [&](char want, State next) {
    if (c != want) return Result::malformed;
    state_ = next;
    return Result::more;
  };
  switch (state_) {
    case State::size: {
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v >= 0) {
        if (++digits_ > 15) return Result::malformed;
        remaining_ = remaining_ * 16 + std::uint64_t(v);
        return Result::more;
      }
      if (digits_ == 0) return Result::malformed;
      if (c == '\r') return expect('\r', State::size_lf);
      if (c != ';' && c != ' ' && c != '\t') return Result::malformed;
      state_ = State::ext;
      return Result::more;
    }
    case State::ext:
      if (c == '\r') return expect('\r', State::size_lf);
      return c == '\n' || ++line_ > kMaxHeadSize ? Result::malformed : Result::more;
    case State::size_lf:
      line_ = 0;
      return expect('\n', remaining_ == 0 ? State::trailer_start : State::data);
    case State::data_cr:
      return expect('\r', State::data_lf);
    case State::data_lf:
      digits_ = 0;
      return expect('\n', State::size);
    case State::trailer_start:
      if (c == '\r') return expect('\r', State::final_lf);
      [[fallthrough]];
    case State::trailer:
      if (c == '\r') return expect('\r', State::trailer_lf);
      state_ = State::trailer;
      return c == '\n' || ++line_ > kMaxHeadSize ? Result::malformed : Result::more;
    case State::trailer_lf:
      return expect('\n', State::trailer_start);
    case State::final_lf:
      return expect('\n', State::done);
    case State::data:
    case State::done:
      break;
  }
  return Result::malformed;
}

std::string without_connection_fields(std::string_view head) {
  std::string out;
  out.reserve(head.size());
  bool first = true;
  while (!head.empty()) {
    auto eol = head.find("\r\n");
    auto line = head.substr(0, eol == std::string_view::npos ? head.size() : eol + 2);
    head.remove_prefix(line.size());
    auto colon = line.find(':');
    if (!first && colon != std::string_view::npos &&
        text::iequals(trim(line.substr(0, colon)), "connection")) {
      continue;
    }
    first = false;
    out.append(line);
  }
  return out;
}

void BodyFramer::start(BodyKind kind, std::uint64_t content_length) {
  kind_ = kind;
  remaining_ = content_length;
  chunked_.reset();
}

BodyFramer::Result BodyFramer::take(std::string_view bytes, std::size_t& used) {
  switch (kind_) {
    case BodyKind::none:
      used = 0;
      return Result::done;
    case BodyKind::content_length:
      used = std::size_t(std::min<std::uint64_t>(remaining_, bytes.size()));
      remaining_ -= used;
      return remaining_ == 0 ? Result::done : Result::more;
    case BodyKind::chunked:
      switch (chunked_.scan(bytes, used)) {
        case ChunkedScanner::Result::done:
          return Result::done;
        case ChunkedScanner::Result::more:
          return Result::more;
        case ChunkedScanner::Result::malformed:
          return Result::malformed;
      }
      break;
    case BodyKind::until_close:
      used = bytes.size();
      return Result::more;
  }
  return Result::malformed;
}

}  // namespace lpk::router

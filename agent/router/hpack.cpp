#include "agent/router/hpack.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace lpk::router {
namespace {

// RFC 7541 Appendix A.
constexpr std::array<std::pair<std::string_view, std::string_view>, 61> kStaticTable{{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

constexpr int kEos = 256;
constexpr int kMaxCodeLength = 30;

// Appendix B's code lengths, symbols 0..255 then EOS. The code is canonical (codes of one
// length are consecutive, in symbol order, and follow the shorter ones), so the lengths define
// it; the tests check codes the RFC lists against huffman_code().
// clang-format off
constexpr std::array<std::uint8_t, 257> kCodeLength{  // sixteen symbols a row
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
};
// clang-format on

// The canonical code as decoding tables: for each length, its first code, how many symbols
// have it, and where they start in `symbols` (sorted by length, then symbol).
struct HuffmanTables {
  std::array<std::uint32_t, kMaxCodeLength + 1> first{};
  std::array<std::uint16_t, kMaxCodeLength + 1> count{};
  std::array<std::uint16_t, kMaxCodeLength + 1> offset{};
  std::array<std::uint16_t, 257> symbols{};
};

constexpr HuffmanTables make_huffman_tables() {
  HuffmanTables t;
  std::uint16_t n = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    t.offset[len] = n;
    for (int s = 0; s <= kEos; ++s) {
      if (kCodeLength[s] == len) t.symbols[n++] = static_cast<std::uint16_t>(s);
    }
    t.count[len] = static_cast<std::uint16_t>(n - t.offset[len]);
  }
  std::uint32_t code = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    t.first[len] = code;
    code = (code + t.count[len]) << 1;
  }
  return t;
}

constexpr HuffmanTables kHuffman = make_huffman_tables();
// A complete prefix code: the last 30-bit code (EOS) is all ones.
static_assert(kHuffman.first[30] + kHuffman.count[30] == (1u << 30));

}  // namespace

std::size_t field_size(const HeaderField& field) {
  return field.first.size() + field.second.size() + 32;
}

namespace detail {

std::pair<std::uint32_t, int> huffman_code(int symbol) {
  int len = kCodeLength[symbol];
  std::uint16_t i = kHuffman.offset[len];
  while (kHuffman.symbols[i] != symbol) ++i;
  return {kHuffman.first[len] + (i - kHuffman.offset[len]), len};
}

HpackError huffman_decode(std::string_view coded, std::string& out) {
  std::uint32_t code = 0;
  int len = 0;
  for (char c : coded) {
    for (int bit = 7; bit >= 0; --bit) {
      code = (code << 1) | ((static_cast<unsigned char>(c) >> bit) & 1u);
      ++len;
      std::uint32_t rank = code - kHuffman.first[len];
      if (code < kHuffman.first[len] || rank >= kHuffman.count[len]) continue;
      int symbol = kHuffman.symbols[kHuffman.offset[len] + rank];
      if (symbol == kEos) return HpackError::bad_huffman;
      out.push_back(static_cast<char>(symbol));
      code = 0;
      len = 0;
    }
  }
  // Padding: under 8 bits, the most significant bits of EOS (all ones).
  if (len > 7 || code != (1u << len) - 1) return HpackError::bad_huffman;
  return HpackError::none;
}

HpackError decode_integer(std::string_view block, std::size_t& pos, int prefix_bits,
                          std::uint64_t& value) {
  if (pos >= block.size()) return HpackError::truncated;
  const std::uint64_t mask = (1u << prefix_bits) - 1;
  value = static_cast<unsigned char>(block[pos++]) & mask;
  if (value < mask) return HpackError::none;
  // Five continuation octets carry 35 bits, past anything HPACK needs (sizes are 32-bit).
  for (int shift = 0; shift <= 28; shift += 7) {
    if (pos >= block.size()) return HpackError::truncated;
    auto octet = static_cast<unsigned char>(block[pos++]);
    value += static_cast<std::uint64_t>(octet & 0x7f) << shift;
    if ((octet & 0x80) == 0) {
      return value > UINT32_MAX ? HpackError::integer_overflow : HpackError::none;
    }
  }
  return HpackError::integer_overflow;
}

HpackError decode_string(std::string_view block, std::size_t& pos, std::string& value) {
  if (pos >= block.size()) return HpackError::truncated;
  const bool huffman = (static_cast<unsigned char>(block[pos]) & 0x80) != 0;
  std::uint64_t length = 0;
  if (auto e = decode_integer(block, pos, 7, length); e != HpackError::none) return e;
  if (length > block.size() - pos) return HpackError::truncated;
  std::string_view raw = block.substr(pos, length);
  pos += length;
  value.clear();
  if (!huffman) {
    value.assign(raw);
    return HpackError::none;
  }
  return huffman_decode(raw, value);
}

void encode_integer(std::uint64_t value, int prefix_bits, std::uint8_t first, std::string& out) {
  const std::uint64_t mask = (1u << prefix_bits) - 1;
  if (value < mask) {
    out.push_back(static_cast<char>(first | value));
    return;
  }
  out.push_back(static_cast<char>(first | mask));
  for (value -= mask; value >= 0x80; value >>= 7) {
    out.push_back(static_cast<char>(0x80 | (value & 0x7f)));
  }
  out.push_back(static_cast<char>(value));
}

}  // namespace detail

void HpackEncoder::encode(const std::vector<HeaderField>& fields, std::string& out) {
  out.push_back(0x20);  // 6.3: dynamic table size 0
  for (const auto& [name, value] : fields) {
    auto known = std::find_if(kStaticTable.begin(), kStaticTable.end(),
                              [&n = name](const auto& entry) { return entry.first == n; });
    if (known != kStaticTable.end()) {
      detail::encode_integer(known - kStaticTable.begin() + 1, 4, 0x00, out);
    } else {
      out.push_back(0x00);
      detail::encode_integer(name.size(), 7, 0x00, out);
      out.append(name);
    }
    detail::encode_integer(value.size(), 7, 0x00, out);
    out.append(value);
  }
}

HpackDecoder::HpackDecoder(std::size_t max_table_size, std::size_t max_list_size)
    : capacity_(max_table_size), max_table_size_(max_table_size), max_list_size_(max_list_size) {}

HpackError HpackDecoder::decode(std::string_view block, std::vector<HeaderField>& out) {
  list_size_ = 0;
  std::size_t pos = 0;
  bool field_seen = false;
  while (pos < block.size()) {
    auto first = static_cast<unsigned char>(block[pos]);
    if ((first & 0xe0) == 0x20) {
      // Dynamic table size update (6.3): only before the block's first field (4.2).
      std::uint64_t size = 0;
      if (auto e = detail::decode_integer(block, pos, 5, size); e != HpackError::none) return e;
      if (field_seen || size > max_table_size_) return HpackError::bad_table_update;
      capacity_ = size;
      evict_to(capacity_);
      continue;
    }
    field_seen = true;
    if (auto e = decode_field(block, pos, out); e != HpackError::none) return e;
  }
  return HpackError::none;
}

HpackError HpackDecoder::decode_field(std::string_view block, std::size_t& pos,
                                      std::vector<HeaderField>& out) {
  auto first = static_cast<unsigned char>(block[pos]);
  HeaderField field;
  std::uint64_t index = 0;
  HpackError e = HpackError::none;
  if (first & 0x80) {  // 6.1 indexed field
    if ((e = detail::decode_integer(block, pos, 7, index)) != HpackError::none) return e;
    if ((e = lookup(index, field)) != HpackError::none) return e;
  } else {
    // 6.2.1 with incremental indexing (6-bit index), 6.2.2/6.2.3 without and never (4-bit).
    const bool indexing = (first & 0x40) != 0;
    if ((e = detail::decode_integer(block, pos, indexing ? 6 : 4, index)) != HpackError::none) {
      return e;
    }
    if (index == 0) {
      e = detail::decode_string(block, pos, field.first);
    } else {
      e = lookup(index, field);
    }
    if (e != HpackError::none) return e;
    if ((e = detail::decode_string(block, pos, field.second)) != HpackError::none) return e;
    if (indexing) insert(field);
  }
  list_size_ += field_size(field);
  if (list_size_ > max_list_size_) return HpackError::too_large;
  out.push_back(std::move(field));
  return HpackError::none;
}

HpackError HpackDecoder::lookup(std::uint64_t index, HeaderField& field) const {
  if (index == 0) return HpackError::bad_index;
  if (index <= kStaticTable.size()) {
    field.first.assign(kStaticTable[index - 1].first);
    field.second.assign(kStaticTable[index - 1].second);
    return HpackError::none;
  }
  std::uint64_t dynamic = index - kStaticTable.size() - 1;
  if (dynamic >= table_.size()) return HpackError::bad_index;
  field = table_[dynamic];
  return HpackError::none;
}

void HpackDecoder::insert(HeaderField field) {
  const std::size_t size = field_size(field);
  // 4.4: an entry larger than the table empties it and is not added; not an error.
  if (size > capacity_) {
    evict_to(0);
    return;
  }
  evict_to(capacity_ - size);
  size_ += size;
  table_.push_front(std::move(field));
}

void HpackDecoder::evict_to(std::size_t capacity) {
  while (size_ > capacity && !table_.empty()) {
    size_ -= field_size(table_.back());
    table_.pop_back();
  }
}

}  // namespace lpk::router

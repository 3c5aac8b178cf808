#pragma once
// HPACK (RFC 7541): the decoder of HTTP/2 header blocks, for routing on request headers, and
// the stateless encoder of the blocks the router sends on.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lpk::router {

using HeaderField = std::pair<std::string, std::string>;

enum class HpackError {
  none,
  truncated,         ///< the block ends inside a representation
  integer_overflow,  ///< an integer beyond 2^32 or encoded with too many octets
  bad_index,         ///< index 0, or beyond the static and dynamic tables
  bad_huffman,       ///< EOS inside a string, or padding over 7 bits or not all ones
  bad_table_update,  ///< a size update above the limit, or after the block's first field
  too_large,         ///< the decoded fields exceed the header list limit
};

/// What a block holds, in the order of RFC 7541 section 4.1: name + value + 32 per field.
std::size_t field_size(const HeaderField& field);

/// Decodes the header blocks of one direction of one HTTP/2 connection. The dynamic table lives
/// across blocks, so blocks must be given in the order they were sent. Never throws on peer
/// bytes: work is linear in the block, memory bounded by the table size and the list limit.
/// After an error the table is in an undefined state: the connection is to be dropped
/// (RFC 9113 COMPRESSION_ERROR). Not thread-safe.
class HpackDecoder {
 public:
  /// `max_table_size`: SETTINGS_HEADER_TABLE_SIZE this end advertised (4096 by default), the
  /// limit of dynamic table size updates. `max_list_size`: limit of one block's decoded fields
  /// (as field_size), which bounds the output of a block of repeated indexed fields.
  explicit HpackDecoder(std::size_t max_table_size = 4096, std::size_t max_list_size = 64 * 1024);

  /// Decodes one complete header block (HEADERS plus CONTINUATION fragments, padding removed),
  /// appending its fields to `out` in order.
  HpackError decode(std::string_view block, std::vector<HeaderField>& out);

  /// Dynamic table: size as in RFC 7541 4.1, current capacity, and its entries, newest first
  /// (entry i has HPACK index 62 + i).
  std::size_t table_size() const { return size_; }
  std::size_t table_capacity() const { return capacity_; }
  const std::deque<HeaderField>& table() const { return table_; }

 private:
  HpackError decode_field(std::string_view block, std::size_t& pos, std::vector<HeaderField>& out);
  HpackError lookup(std::uint64_t index, HeaderField& field) const;
  void insert(HeaderField field);
  void evict_to(std::size_t capacity);

  std::deque<HeaderField> table_;
  std::size_t size_ = 0;
  std::size_t capacity_;
  std::size_t max_table_size_;
  std::size_t max_list_size_;
  std::size_t list_size_ = 0;
};

/// Encodes header blocks as literals without indexing (6.2.2), the name indexed from the
/// static table when it is there, strings raw: no dynamic table, so no state, and any peer's
/// SETTINGS_HEADER_TABLE_SIZE suits it. Each block starts with a dynamic table size update to 0
/// (6.3), which a decoder whose table limit was lowered expects.
class HpackEncoder {
 public:
  /// Appends the block of `fields`, in order, to `out`.
  static void encode(const std::vector<HeaderField>& fields, std::string& out);
};

namespace detail {
/// RFC 7541 5.1: appends `value` as an integer with an N-bit prefix; `first` holds the bits
/// above the prefix.
void encode_integer(std::uint64_t value, int prefix_bits, std::uint8_t first, std::string& out);
/// RFC 7541 5.1: an integer with an N-bit prefix at block[pos]; advances pos past it.
HpackError decode_integer(std::string_view block, std::size_t& pos, int prefix_bits,
                          std::uint64_t& value);
/// RFC 7541 5.2: a string literal (Huffman or raw) at block[pos]; advances pos past it.
HpackError decode_string(std::string_view block, std::size_t& pos, std::string& value);
/// Appendix B: decodes Huffman-coded bytes, appending to `out`.
HpackError huffman_decode(std::string_view coded, std::string& out);
/// Appendix B: the code of a symbol (0..256, 256 is EOS) and its length in bits.
std::pair<std::uint32_t, int> huffman_code(int symbol);
}  // namespace detail

}  // namespace lpk::router

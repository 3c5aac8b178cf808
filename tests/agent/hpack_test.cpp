// The HPACK decoder against every example of RFC 7541 Appendix C (fields and dynamic table
// after each block), the Huffman code of Appendix B, and malformed blocks.
#include "agent/router/hpack.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/agent/hex.hpp"

namespace lpk::router {
namespace {

using lpk::test::from_hex;
using Fields = std::vector<HeaderField>;

Fields decode_ok(HpackDecoder& decoder, std::string_view hex) {
  Fields out;
  EXPECT_EQ(decoder.decode(from_hex(hex), out), HpackError::none) << hex;
  return out;
}

HpackError decode_error(std::string_view hex, std::size_t table = 4096) {
  HpackDecoder decoder(table);
  Fields out;
  return decoder.decode(from_hex(hex), out);
}

Fields table_of(const HpackDecoder& decoder) {
  return Fields(decoder.table().begin(), decoder.table().end());
}

TEST(HpackInteger, Rfc7541C1) {
  std::uint64_t value = 0;
  std::size_t pos = 0;
  std::string c11 = from_hex("0a");  // C.1.1: 10, 5-bit prefix
  ASSERT_EQ(detail::decode_integer(c11, pos, 5, value), HpackError::none);
  EXPECT_EQ(value, 10u);
  EXPECT_EQ(pos, 1u);
  pos = 0;
  std::string c12 = from_hex("1f9a0a");  // C.1.2: 1337, 5-bit prefix
  ASSERT_EQ(detail::decode_integer(c12, pos, 5, value), HpackError::none);
  EXPECT_EQ(value, 1337u);
  EXPECT_EQ(pos, 3u);
  pos = 0;
  std::string c13 = from_hex("2a");  // C.1.3: 42 on an octet boundary
  ASSERT_EQ(detail::decode_integer(c13, pos, 8, value), HpackError::none);
  EXPECT_EQ(value, 42u);
}

TEST(HpackInteger, OverflowAndTruncation) {
  std::uint64_t value = 0;
  std::size_t pos = 0;
  // 2^32 exactly: over the limit.
  EXPECT_EQ(detail::decode_integer(from_hex("1f e1 ff ff ff 0f"), pos, 5, value),
            HpackError::integer_overflow);
  pos = 0;
  // 2^32 - 1: the largest accepted.
  ASSERT_EQ(detail::decode_integer(from_hex("1f e0 ff ff ff 0f"), pos, 5, value), HpackError::none);
  EXPECT_EQ(value, 0xffffffffu);
  pos = 0;
  // Continuation octets without end: six of them is past any 32-bit value.
  EXPECT_EQ(detail::decode_integer(from_hex("1f 80 80 80 80 80 01"), pos, 5, value),
            HpackError::integer_overflow);
  pos = 0;
  EXPECT_EQ(detail::decode_integer(from_hex("1f 80"), pos, 5, value), HpackError::truncated);
  EXPECT_EQ(decode_error("ff ff ff ff ff ff ff 7f"), HpackError::integer_overflow);
}

TEST(HpackDecoder, Rfc7541C2SingleRepresentations) {
  HpackDecoder c21;  // literal with indexing
  EXPECT_EQ(decode_ok(c21, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
            (Fields{{"custom-key", "custom-header"}}));
  EXPECT_EQ(table_of(c21), (Fields{{"custom-key", "custom-header"}}));
  EXPECT_EQ(c21.table_size(), 55u);

  HpackDecoder c22;  // literal without indexing
  EXPECT_EQ(decode_ok(c22, "040c 2f73 616d 706c 652f 7061 7468"),
            (Fields{{":path", "/sample/path"}}));
  EXPECT_TRUE(c22.table().empty());

  HpackDecoder c23;  // literal never indexed
  EXPECT_EQ(decode_ok(c23, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
            (Fields{{"password", "secret"}}));
  EXPECT_TRUE(c23.table().empty());
  EXPECT_EQ(c23.table_size(), 0u);

  HpackDecoder c24;  // indexed
  EXPECT_EQ(decode_ok(c24, "82"), (Fields{{":method", "GET"}}));
  EXPECT_TRUE(c24.table().empty());
}

// C.3 (raw strings) and C.4 (Huffman) decode to the same requests and tables.
void check_request_sequence(const std::vector<std::string_view>& blocks) {
  HpackDecoder decoder;
  const Fields authority{{":authority", "www.example.com"}};
  EXPECT_EQ(decode_ok(decoder, blocks[0]),
            (Fields{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, authority[0]}));
  EXPECT_EQ(table_of(decoder), authority);
  EXPECT_EQ(decoder.table_size(), 57u);

  EXPECT_EQ(decode_ok(decoder, blocks[1]), (Fields{{":method", "GET"},
                                                   {":scheme", "http"},
                                                   {":path", "/"},
                                                   authority[0],
                                                   {"cache-control", "no-cache"}}));
  EXPECT_EQ(table_of(decoder), (Fields{{"cache-control", "no-cache"}, authority[0]}));
  EXPECT_EQ(decoder.table_size(), 110u);

  EXPECT_EQ(decode_ok(decoder, blocks[2]), (Fields{{":method", "GET"},
                                                   {":scheme", "https"},
                                                   {":path", "/index.html"},
                                                   authority[0],
                                                   {"custom-key", "custom-value"}}));
  EXPECT_EQ(table_of(decoder),
            (Fields{{"custom-key", "custom-value"}, {"cache-control", "no-cache"}, authority[0]}));
  EXPECT_EQ(decoder.table_size(), 164u);
}

TEST(HpackDecoder, Rfc7541C3RequestsWithoutHuffman) {
  check_request_sequence({
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  });
}

TEST(HpackDecoder, Rfc7541C4RequestsWithHuffman) {
  check_request_sequence({
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
  });
}

// C.5 (raw) and C.6 (Huffman): responses with a 256-byte table, evicting as they go.
void check_response_sequence(const std::vector<std::string_view>& blocks) {
  HpackDecoder decoder(256);
  const HeaderField status302{":status", "302"}, cache{"cache-control", "private"},
      date21{"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
      location{"location", "https://www.example.com"}, status307{":status", "307"},
      date22{"date", "Mon, 21 Oct 2013 20:13:22 GMT"}, gzip{"content-encoding", "gzip"},
      cookie{"set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"};

  EXPECT_EQ(decode_ok(decoder, blocks[0]), (Fields{status302, cache, date21, location}));
  EXPECT_EQ(table_of(decoder), (Fields{location, date21, cache, status302}));
  EXPECT_EQ(decoder.table_size(), 222u);

  // ":status: 307" evicts ":status: 302".
  EXPECT_EQ(decode_ok(decoder, blocks[1]), (Fields{status307, cache, date21, location}));
  EXPECT_EQ(table_of(decoder), (Fields{status307, location, date21, cache}));
  EXPECT_EQ(decoder.table_size(), 222u);

  EXPECT_EQ(decode_ok(decoder, blocks[2]),
            (Fields{{":status", "200"}, cache, date22, location, gzip, cookie}));
  EXPECT_EQ(table_of(decoder), (Fields{cookie, gzip, date22}));
  EXPECT_EQ(decoder.table_size(), 215u);
}

TEST(HpackDecoder, Rfc7541C5ResponsesWithoutHuffman) {
  check_response_sequence({
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
      "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
      "6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
      "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
      "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
      "3d31",
  });
}

TEST(HpackDecoder, Rfc7541C6ResponsesWithHuffman) {
  check_response_sequence({
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
      "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
      "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
      "9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  });
}

TEST(HpackDecoder, TableSizeUpdates) {
  HpackDecoder decoder;
  decode_ok(decoder, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
  ASSERT_EQ(decoder.table().size(), 1u);
  // An update to 0 empties the table, one back to 4096 (3f e1 1f) allows entries again.
  EXPECT_EQ(decode_ok(decoder, "20 3fe11f 82"), (Fields{{":method", "GET"}}));
  EXPECT_TRUE(decoder.table().empty());
  EXPECT_EQ(decoder.table_capacity(), 4096u);
  // A 46-byte table (3f 0f) holds "abc" (35 bytes); an entry larger than the table (a 20-byte
  // name: 52 bytes) empties it, without error (RFC 7541 4.4).
  decode_ok(decoder, "3f0f 4003 6162 6300");
  EXPECT_EQ(decoder.table_capacity(), 46u);
  EXPECT_EQ(decoder.table_size(), 35u);
  const std::string twenty = "4014" + std::string(40, '6') + "00";
  EXPECT_EQ(decode_ok(decoder, twenty), (Fields{{std::string(20, 'f'), ""}}));
  EXPECT_TRUE(decoder.table().empty());
  EXPECT_EQ(decoder.table_size(), 0u);
  EXPECT_EQ(decode_ok(decoder, "4003 6162 6300 be"), (Fields{{"abc", ""}, {"abc", ""}}));
  // Above the advertised 4096 (3f e2 1f is 4097), or after a field: malformed.
  EXPECT_EQ(decode_error("3fe21f"), HpackError::bad_table_update);
  EXPECT_EQ(decode_error("82 20"), HpackError::bad_table_update);
}

TEST(HpackDecoder, IndexOutOfRange) {
  EXPECT_EQ(decode_error("80"), HpackError::bad_index);     // index 0
  EXPECT_EQ(decode_error("be"), HpackError::bad_index);     // 62, the table is empty
  EXPECT_EQ(decode_error("7e 00"), HpackError::bad_index);  // a literal's name at 62
  EXPECT_EQ(decode_error("bd"), HpackError::none);          // 61, www-authenticate
  HpackDecoder decoder;
  decode_ok(decoder, "4003 6162 6300");
  EXPECT_EQ(decode_ok(decoder, "be"), (Fields{{"abc", ""}}));
  Fields out;
  EXPECT_EQ(decoder.decode(from_hex("bf"), out), HpackError::bad_index);
}

TEST(HpackDecoder, TruncatedBlocks) {
  const std::string block = from_hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865");
  for (std::size_t n = 1; n < block.size(); ++n) {
    HpackDecoder decoder;
    Fields out;
    EXPECT_EQ(decoder.decode(block.substr(0, n), out), HpackError::truncated) << n;
  }
}

TEST(HpackDecoder, HeaderListLimit) {
  // 2000 indexed copies of a 4000-byte entry would decode to 8 MB: stopped at the limit.
  std::string block = from_hex("40 01 78 7f a1 1e") + std::string(4000, 'v');
  block += std::string(2000, '\xbe');
  HpackDecoder decoder;
  Fields out;
  EXPECT_EQ(decoder.decode(block, out), HpackError::too_large);
  EXPECT_LE(out.size(), 64u * 1024 / 4000);
}

TEST(Huffman, CodesListedInRfc7541AppendixB) {
  using detail::huffman_code;
  EXPECT_EQ(huffman_code(0), (std::pair<std::uint32_t, int>{0x1ff8, 13}));
  EXPECT_EQ(huffman_code('0'), (std::pair<std::uint32_t, int>{0x0, 5}));
  EXPECT_EQ(huffman_code('a'), (std::pair<std::uint32_t, int>{0x3, 5}));
  EXPECT_EQ(huffman_code(' '), (std::pair<std::uint32_t, int>{0x14, 6}));
  EXPECT_EQ(huffman_code('\n'), (std::pair<std::uint32_t, int>{0x3ffffffc, 30}));
  EXPECT_EQ(huffman_code(255), (std::pair<std::uint32_t, int>{0x3ffffee, 26}));
  EXPECT_EQ(huffman_code(256), (std::pair<std::uint32_t, int>{0x3fffffff, 30}));
}

// Codes packed most significant bit first, padded with ones (the prefix of EOS).
std::string huffman_encode(const std::vector<int>& symbols) {
  std::string out;
  std::uint64_t bits = 0;
  int n = 0;
  for (int s : symbols) {
    auto [code, len] = detail::huffman_code(s);
    bits = bits << len | code;
    n += len;
    for (; n >= 8; n -= 8) out.push_back(static_cast<char>(bits >> (n - 8)));
  }
  if (n > 0) out.push_back(static_cast<char>(bits << (8 - n) | ((1u << (8 - n)) - 1)));
  return out;
}

TEST(Huffman, EverySymbolDecodes) {
  std::vector<int> all;
  std::string expected;
  for (int s = 0; s < 256; ++s) {
    all.push_back(s);
    expected.push_back(static_cast<char>(s));
    std::string one;
    ASSERT_EQ(detail::huffman_decode(huffman_encode({s}), one), HpackError::none) << s;
    EXPECT_EQ(one, std::string(1, static_cast<char>(s)));
  }
  std::string decoded;
  ASSERT_EQ(detail::huffman_decode(huffman_encode(all), decoded), HpackError::none);
  EXPECT_EQ(decoded, expected);
}

TEST(Huffman, PaddingAndEosErrors) {
  std::string out;
  EXPECT_EQ(detail::huffman_decode(from_hex("1f"), out), HpackError::none);  // 'a' + 111
  EXPECT_EQ(out, "a");
  EXPECT_EQ(detail::huffman_decode(from_hex("18"), out), HpackError::bad_huffman);     // 000 pad
  EXPECT_EQ(detail::huffman_decode(from_hex("1f ff"), out), HpackError::bad_huffman);  // 11 bits
  EXPECT_EQ(detail::huffman_decode(from_hex("ff"), out), HpackError::bad_huffman);     // 8 bits
  EXPECT_EQ(detail::huffman_decode(huffman_encode({'a', 256}), out), HpackError::bad_huffman);
  // The same errors inside a block: a Huffman name in a literal.
  EXPECT_EQ(decode_error("40 81 18 00"), HpackError::bad_huffman);
  EXPECT_EQ(decode_error("40 82 1f ff 00"), HpackError::bad_huffman);
}

TEST(HpackEncoder, IntegersRoundTripAtEveryPrefix) {
  for (int prefix = 1; prefix <= 8; ++prefix) {
    for (std::uint64_t v :
         {0ull, 1ull, 30ull, 31ull, 127ull, 128ull, 255ull, 1337ull, 65535ull, 4294967295ull}) {
      std::string out;
      detail::encode_integer(v, prefix, 0, out);
      std::uint64_t back = 0;
      std::size_t pos = 0;
      ASSERT_EQ(detail::decode_integer(out, pos, prefix, back), HpackError::none) << v;
      EXPECT_EQ(back, v);
      EXPECT_EQ(pos, out.size());
    }
  }
  std::string c12;  // C.1.2: 1337 with a 5-bit prefix
  detail::encode_integer(1337, 5, 0, c12);
  EXPECT_EQ(c12, from_hex("1f9a0a"));
}

TEST(HpackEncoder, RoundTripsThroughTheDecoder) {
  const Fields request{{":method", "POST"},
                       {":scheme", "http"},
                       {":path", "/lpk.Echo/Call"},
                       {":authority", "api:50051"},
                       {"content-type", "application/grpc"},
                       {"te", "trailers"},
                       {"x-lpk-route", "alice"},
                       {"empty", ""},
                       {"x-long", std::string(5000, 'v')},
                       {"user-agent", "grpc-python/1.51"}};
  const Fields response{{":status", "200"}, {"grpc-status", "0"}, {"set-cookie", "a=b"}};
  // One decoder for both blocks, as a connection has: the encoder must leave its table alone.
  HpackDecoder decoder(4096);
  for (const auto* fields : {&request, &response, &request}) {
    std::string block;
    HpackEncoder::encode(*fields, block);
    Fields out;
    ASSERT_EQ(decoder.decode(block, out), HpackError::none);
    EXPECT_EQ(out, *fields);
    EXPECT_EQ(decoder.table_size(), 0u);
  }
}

TEST(HpackEncoder, NamesOfTheStaticTableAreIndexed) {
  std::string block;
  HpackEncoder::encode({{":path", "/x"}, {"x-new", "v"}}, block);
  // 0x20: table size 0; 0x04: literal without indexing, name index 4 (:path); then a new name.
  EXPECT_EQ(block, from_hex("20 04 02 2f78 00 05 782d6e6577 01 76"));
}

TEST(HpackEncoder, ADecoderWithATableOfZeroTakesIt) {
  HpackDecoder decoder(0);
  std::string block;
  HpackEncoder::encode({{":status", "204"}}, block);
  Fields out;
  ASSERT_EQ(decoder.decode(block, out), HpackError::none);
  EXPECT_EQ(out, (Fields{{":status", "204"}}));
}

}  // namespace
}  // namespace lpk::router

#include "agent/router/http1.hpp"

#include <gtest/gtest.h>

#include <string>

namespace lpk::router {
namespace {

using namespace std::string_literals;

TEST(SniffProtocol, TellsHttp1H2AndOthersApartAsSoonAsTheBytesDo) {
  EXPECT_EQ(sniff_protocol(""), Protocol::need_more);
  EXPECT_EQ(sniff_protocol("GE"), Protocol::need_more);
  EXPECT_EQ(sniff_protocol("GET /x HTT"), Protocol::need_more);
  EXPECT_EQ(sniff_protocol("GET /x HTTP/1.1\r"), Protocol::need_more);
  EXPECT_EQ(sniff_protocol("GET /x HTTP/1.1\r\n"), Protocol::http1);
  EXPECT_EQ(sniff_protocol("PRI * HTTP/2.0\r\n"), Protocol::need_more);
  EXPECT_EQ(sniff_protocol(kH2Preface), Protocol::h2);
  EXPECT_EQ(sniff_protocol(std::string(kH2Preface) + "\x00\x00\x12\x04"s), Protocol::h2);
  // redis (RESP), TLS, a binary protocol, a line protocol that is not HTTP.
  EXPECT_EQ(sniff_protocol("*1\r\n$4\r\nPING\r\n"), Protocol::other);
  EXPECT_EQ(sniff_protocol("\x16\x03\x01\x02\x00"s), Protocol::other);
  EXPECT_EQ(sniff_protocol("\x00\x01"s), Protocol::other);
  EXPECT_EQ(sniff_protocol("PING\r\n"), Protocol::other);
  EXPECT_EQ(sniff_protocol("GET /x SSH-2.0\r\n"), Protocol::other);
  EXPECT_EQ(sniff_protocol("GET  HTTP/1.1\r\n"), Protocol::other);
  EXPECT_EQ(sniff_protocol(std::string(40, 'A')), Protocol::other);
}

TEST(SniffProtocol, EveryPrefixOfARequestLineOrPrefaceNeedsMore) {
  for (std::string whole : {"DELETE /a/b?c=d HTTP/1.0\r\n"s, std::string(kH2Preface)}) {
    for (std::size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(sniff_protocol(whole.substr(0, k)), Protocol::need_more) << k;
    }
  }
}

const std::string kRequest =
    "POST /upload?x=1 HTTP/1.1\r\n"
    "Host: api\r\n"
    "X-Lpk-Route:   a  \r\n"
    "Transfer-Encoding: gzip, chunked\r\n"
    "Expect: 100-continue\r\n"
    "\r\n";

TEST(ParseRequestHead, ReadsLineHeadersAndFraming) {
  RequestHead head;
  const std::string bytes = kRequest + "4\r\nbody";  // the head's views point into it
  ASSERT_EQ(parse_request_head(bytes, head), ParseStatus::complete);
  EXPECT_EQ(head.size, kRequest.size());
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/upload?x=1");
  EXPECT_EQ(head.minor, 1);
  EXPECT_EQ(head.body, BodyKind::chunked);
  EXPECT_TRUE(head.expect_continue);
  EXPECT_FALSE(head.close);
  ASSERT_NE(head.find("x-lpk-route"), nullptr);
  EXPECT_EQ(*head.find("x-lpk-route"), "a");
  EXPECT_EQ(*head.find("HOST"), "api");
  EXPECT_EQ(head.find("x-other"), nullptr);
  EXPECT_EQ(head.headers.size(), 4u);
}

TEST(ParseRequestHead, EverySplitPointNeedsMoreUntilTheBlankLine) {
  RequestHead head;
  for (std::size_t k = 0; k < kRequest.size(); ++k) {
    ASSERT_EQ(parse_request_head(kRequest.substr(0, k), head), ParseStatus::need_more) << k;
  }
  ASSERT_EQ(parse_request_head(kRequest, head), ParseStatus::complete);
  EXPECT_EQ(head.size, kRequest.size());
}

TEST(ParseRequestHead, ConnectionAndVersionDecideKeepAlive) {
  RequestHead head;
  ASSERT_EQ(parse_request_head("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", head),
            ParseStatus::complete);
  EXPECT_TRUE(head.close);
  ASSERT_EQ(parse_request_head("GET / HTTP/1.0\r\n\r\n", head), ParseStatus::complete);
  EXPECT_TRUE(head.close);
  ASSERT_EQ(parse_request_head("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n", head),
            ParseStatus::complete);
  EXPECT_FALSE(head.close);
  ASSERT_EQ(parse_request_head("GET / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", head),
            ParseStatus::complete);
  EXPECT_EQ(head.body, BodyKind::none);
  ASSERT_EQ(parse_request_head("PUT / HTTP/1.1\r\ncontent-length: 12\r\ncontent-length: 12\r\n\r\n",
                               head),
            ParseStatus::complete);
  EXPECT_EQ(head.body, BodyKind::content_length);
  EXPECT_EQ(head.content_length, 12u);
}

TEST(ParseRequestHead, BothFramingsMeanChunkedAndClose) {
  RequestHead head;
  ASSERT_EQ(parse_request_head(
                "POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n", head),
            ParseStatus::complete);
  EXPECT_EQ(head.body, BodyKind::chunked);
  EXPECT_TRUE(head.close);
}

TEST(ParseRequestHead, RejectsWhatRfc9112Rejects) {
  RequestHead head;
  for (std::string bad : {
           "GET /\r\n\r\n"s,                                 // no version
           "GET / HTTP/2.0\r\n\r\n"s,                        // not 1.x
           "GET  / HTTP/1.1\r\n\r\n"s,                       // empty target
           "GE(T / HTTP/1.1\r\n\r\n"s,                       // method not a token
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n"s,            // space before colon
           "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"s,  // obs-fold
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n"s,             //
           "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s,             // NUL in a value
           "GET / HTTP/1.1\r\nX: a\nb: c\r\n\r\n"s,          // bare LF
           "POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"s,
           "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n"s,
           "POST / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n"s,
           "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n"s,  // not ending in chunked
           "POST / HTTP/1.1\r\ntransfer-encoding: chunked, chunked\r\n\r\n"s,
       }) {
    EXPECT_EQ(parse_request_head(bad, head), ParseStatus::malformed) << bad;
  }
}

TEST(ParseRequestHead, AHeadOver64KiBIsTooLarge) {
  RequestHead head;
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(kMaxHeadSize, 'a');
  EXPECT_EQ(parse_request_head(big, head), ParseStatus::too_large);
  EXPECT_EQ(parse_request_head(big.substr(0, kMaxHeadSize - 1), head), ParseStatus::need_more);
}

TEST(ParseResponseHead, FramesBodiesAsRfc9112Section6_3Says) {
  ResponseHead r;
  auto parse = [&](const std::string& head, bool head_request = false, bool connect = false) {
    EXPECT_EQ(parse_response_head(head, head_request, connect, r), ParseStatus::complete) << head;
    return r.body;
  };
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"), BodyKind::content_length);
  EXPECT_EQ(r.content_length, 5u);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true), BodyKind::none);
  EXPECT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\n"), BodyKind::none);
  EXPECT_EQ(r.status, 100);
  EXPECT_EQ(parse("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n"), BodyKind::none);
  EXPECT_EQ(parse("HTTP/1.1 304 Not Modified\r\n\r\n"), BodyKind::none);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"), BodyKind::chunked);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"), BodyKind::until_close);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\n\r\n"), BodyKind::until_close);
  EXPECT_EQ(parse("HTTP/1.1 200 Connection established\r\n\r\n", false, true),
            BodyKind::until_close);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), BodyKind::none);
  parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
  EXPECT_TRUE(r.close);
  parse("HTTP/1.1 200\r\nConnection: close\r\ncontent-length: 1\r\n\r\n");
  EXPECT_TRUE(r.close);
  EXPECT_EQ(r.status, 200);
}

TEST(ParseResponseHead, RejectsBadStatusLines) {
  ResponseHead r;
  for (std::string bad : {"HTTP/1.1 2000 OK\r\n\r\n"s, "HTTP/1.1 20 OK\r\n\r\n"s,
                          "HTTP/2 200 OK\r\n\r\n"s, "HTTP/1.1 099 x\r\n\r\n"s,
                          "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"s,
                          "ICY 200 OK\r\n\r\n"s}) {
    EXPECT_EQ(parse_response_head(bad, false, false, r), ParseStatus::malformed) << bad;
  }
}

const std::string kChunked =
    "5;name=value\r\nhello\r\n"
    "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n";

TEST(ChunkedScanner, FindsTheEndAtEverySplitPoint) {
  const std::string next = "GET /next HTTP/1.1\r\n\r\n";
  const auto whole = kChunked + next;
  for (std::size_t k = 0; k <= whole.size(); ++k) {
    ChunkedScanner s;
    std::size_t used = 0, total = 0;
    auto r = s.scan(whole.substr(0, k), used);
    total += used;
    if (r == ChunkedScanner::Result::more) {
      EXPECT_EQ(used, k);
      r = s.scan(whole.substr(k), used);
      total += used;
    }
    ASSERT_EQ(r, ChunkedScanner::Result::done) << k;
    EXPECT_EQ(total, kChunked.size()) << k;
  }
}

TEST(ChunkedScanner, FindsTheEndFedByteByByte) {
  ChunkedScanner s;
  std::size_t used = 0;
  for (std::size_t i = 0; i + 1 < kChunked.size(); ++i) {
    ASSERT_EQ(s.scan(kChunked.substr(i, 1), used), ChunkedScanner::Result::more) << i;
    ASSERT_EQ(used, 1u);
  }
  EXPECT_EQ(s.scan(kChunked.substr(kChunked.size() - 1), used), ChunkedScanner::Result::done);
}

TEST(ChunkedScanner, RejectsMalformedFraming) {
  for (std::string bad : {"x\r\n"s, "\r\n"s, "5\r\nhelloX"s, "5\nhello"s, "0\r\nT: 1\n"s,
                          "1234567890123456\r\n"s, "0\r\n\rX"s}) {
    ChunkedScanner s;
    std::size_t used = 0;
    EXPECT_EQ(s.scan(bad, used), ChunkedScanner::Result::malformed) << bad;
  }
}

TEST(BodyFramer, CountsContentLengthAndTakesAllUntilClose) {
  BodyFramer f;
  std::size_t used = 0;
  f.start(BodyKind::content_length, 10);
  EXPECT_EQ(f.take("12345", used), BodyFramer::Result::more);
  EXPECT_EQ(used, 5u);
  EXPECT_EQ(f.take("67890GET", used), BodyFramer::Result::done);
  EXPECT_EQ(used, 5u);
  f.start(BodyKind::none, 0);
  EXPECT_EQ(f.take("GET", used), BodyFramer::Result::done);
  EXPECT_EQ(used, 0u);
  f.start(BodyKind::until_close, 0);
  EXPECT_EQ(f.take("anything", used), BodyFramer::Result::more);
  EXPECT_EQ(used, 8u);
  f.start(BodyKind::chunked, 0);
  EXPECT_EQ(f.take(kChunked, used), BodyFramer::Result::done);
  EXPECT_EQ(used, kChunked.size());
}

}  // namespace
}  // namespace lpk::router

namespace lpk::router {
namespace {

TEST(WithoutConnectionFields, DropsEveryConnectionFieldAndKeepsTheRest) {
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\nX-Connection: keep\r\n"
      "connection : Keep-Alive\r\n\r\n";
  EXPECT_EQ(without_connection_fields(head),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Connection: keep\r\n\r\n");
  std::string plain = "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
  EXPECT_EQ(without_connection_fields(plain), plain);
}

}  // namespace
}  // namespace lpk::router

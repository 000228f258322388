#include "transport/line_splitter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace clusterlock::transport {
namespace {

std::vector<std::string> drain(line_splitter& s) {
  std::vector<std::string> out;
  while (auto line = s.next_line()) out.push_back(*line);
  return out;
}

TEST(line_splitter, splits_lines_across_arbitrary_chunk_boundaries) {
  const std::string stream = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n";
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    line_splitter s(64);
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      ASSERT_FALSE(s.feed(std::string_view(stream).substr(i, chunk)));
      for (auto& l : drain(s)) lines.push_back(l);
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"})) << "chunk " << chunk;
    EXPECT_EQ(s.pending(), 0u);
  }
}

TEST(line_splitter, holds_a_partial_line_until_its_newline) {
  line_splitter s(64);
  ASSERT_FALSE(s.feed("{\"cut"));
  EXPECT_FALSE(s.next_line());
  EXPECT_EQ(s.pending(), 5u);
  ASSERT_FALSE(s.feed("\":1}\n"));
  EXPECT_EQ(s.next_line(), std::optional<std::string>("{\"cut\":1}"));
}

TEST(line_splitter, a_stream_that_never_sends_a_newline_fails_at_the_bound) {
  line_splitter s(16);
  boost::system::error_code ec;
  std::size_t fed = 0;
  while (!ec && fed < 1000) {
    ec = s.feed("xxxx");
    fed += 4;
  }
  EXPECT_EQ(ec, make_error_code(errc::response_too_large));
  EXPECT_LE(fed, 20u);
  EXPECT_LE(s.pending(), 20u);
  EXPECT_EQ(s.feed("\n"), make_error_code(errc::response_too_large)) << "failure is sticky";
  EXPECT_FALSE(s.next_line());
}

TEST(line_splitter, a_complete_line_over_the_bound_fails) {
  line_splitter s(4);
  ASSERT_FALSE(s.feed("ok\n"));
  // A long line with its newline in one feed: caught when it is taken out.
  ASSERT_FALSE(s.feed("toolong\nok\n"));
  EXPECT_EQ(s.next_line(), std::optional<std::string>("ok"));
  EXPECT_FALSE(s.next_line());
  EXPECT_EQ(s.feed("ok\n"), make_error_code(errc::response_too_large)) << "failure is sticky";
  EXPECT_FALSE(s.next_line());
}

TEST(line_splitter, memory_stays_bounded_over_a_long_stream) {
  line_splitter s(32);
  for (int i = 0; i < 100000; ++i) {
    ASSERT_FALSE(s.feed("{\"n\":12345}\n{\"n\""));
    ASSERT_FALSE(s.feed(":1}\n"));
    ASSERT_EQ(drain(s).size(), 2u);
    ASSERT_EQ(s.pending(), 0u);
  }
}


TEST(line_splitter, a_line_of_max_line_bytes_passes_wherever_its_crlf_is_cut) {
  // Found by fuzz/line_splitter_fuzzer.cpp: a '\r' at the end of a chunk counted as part of the line.
  for (std::size_t cut = 1; cut < 6; ++cut) {
    line_splitter s(4);
    const std::string stream = "abcd\r\n";
    ASSERT_FALSE(s.feed(std::string_view(stream).substr(0, cut))) << "cut " << cut;
    ASSERT_FALSE(s.feed(std::string_view(stream).substr(cut))) << "cut " << cut;
    EXPECT_EQ(s.next_line(), std::optional<std::string>("abcd")) << "cut " << cut;
  }
  line_splitter s(4);
  EXPECT_FALSE(s.feed("abcd\r"));
  EXPECT_EQ(s.feed("x"), make_error_code(errc::response_too_large)) << "a '\\r' inside a line counts";
}


TEST(line_splitter, a_long_stream_without_newlines_costs_linear_time) {
  // Found by tests/integration/hostile_server_test.cpp: each feed searched the whole buffer for the last '\n', so a
  // 4 MiB flood took seconds of CPU on the strand. 16 MiB in 4 KiB feeds: ~32 GB of searching that way.
  constexpr std::size_t bound = 16 << 20;
  line_splitter s(bound);
  const std::string feed(4096, 'x');
  const auto start = std::chrono::steady_clock::now();
  std::size_t fed = 0;
  boost::system::error_code ec;
  while (!ec) {
    ec = s.feed(feed);
    fed += feed.size();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ec, make_error_code(errc::response_too_large));
  EXPECT_EQ(fed, bound + feed.size());
  EXPECT_LT(took, std::chrono::seconds(2));
}

}  // namespace
}  // namespace clusterlock::transport

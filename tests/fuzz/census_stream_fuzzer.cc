// census_stream_fuzzer.cc: libFuzzer target for CensusStreamDecoder, the code that parses the
// bytes any instrumented process (a hostile one included) sends to the collector.
//
// Each input is one connection's byte stream. It is decoded twice, in one Feed() and in chunks
// of 1 to 64 bytes chosen from the input itself, and the two decoders must agree: the decoder
// promises that any split of the stream decodes the same, and the collector reads sockets in
// whatever pieces the kernel hands over. The censuses then go through ProcessSeries, as live.
// Built with ASan and UBSan, so an overrun, an overflow or an allocation over -malloc_limit_mb
// is a crash; an disagreement between the two decoders is an abort.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "report/decode/census_stream.h"
#include "report/store/process_series.h"

namespace {

using dw::report::Census;
using dw::report::CensusStreamDecoder;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "census_stream_fuzzer: %s\n", what);
  std::abort();
}

// Chunk sizes from a hash of the input, so a crash reproduces from the input file alone.
class ChunkSizes {
 public:
  explicit ChunkSizes(std::string_view bytes) {
    for (unsigned char c : bytes.substr(0, 64)) state_ = (state_ ^ c) * 0x100000001b3u;
  }
  size_t Next() {
    state_ = state_ * 6364136223846793005u + 1442695040888963407u;
    return 1 + (state_ >> 58);  // 1..64
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325u;
};

struct Decoded {
  absl::Status feed;
  absl::Status finish;
  std::vector<Census> censuses;
};

Decoded DecodeWhole(std::string_view bytes) {
  CensusStreamDecoder decoder;
  Decoded out;
  out.feed = decoder.Feed(bytes);
  out.finish = decoder.Finish();
  out.censuses = decoder.TakeCensuses();
  // A failed decoder stays failed with the same error.
  if (!out.feed.ok()) Check(decoder.Feed("x") == out.feed, "a failed decoder changed its error");
  return out;
}

Decoded DecodeInChunks(std::string_view bytes) {
  CensusStreamDecoder decoder;
  Decoded out;
  ChunkSizes sizes(bytes);
  size_t pos = 0;
  while (pos < bytes.size() && out.feed.ok()) {
    const size_t n = std::min(sizes.Next(), bytes.size() - pos);
    out.feed = decoder.Feed(bytes.substr(pos, n));
    pos += n;
    for (Census& census : decoder.TakeCensuses()) out.censuses.push_back(std::move(census));
  }
  out.finish = decoder.Finish();
  return out;
}

void CheckSame(const Decoded& whole, const Decoded& chunks) {
  Check(whole.feed == chunks.feed, "Feed() status depends on how the stream is split");
  Check(whole.finish == chunks.finish, "Finish() status depends on how the stream is split");
  Check(whole.censuses.size() == chunks.censuses.size(),
        "the number of censuses depends on how the stream is split");
  for (size_t i = 0; i < whole.censuses.size(); ++i) {
    const Census& a = whole.censuses[i];
    const Census& b = chunks.censuses[i];
    Check(a.sequence == b.sequence && a.final == b.final && a.counters == b.counters,
          "a census depends on how the stream is split");
    if (i > 0) Check(a.sequence > whole.censuses[i - 1].sequence, "sequence went backwards");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Decoded whole = DecodeWhole(bytes);
  CheckSame(whole, DecodeInChunks(bytes));
  dw::report::ProcessSeries series(/*max_points=*/8);  // small, so thinning runs too
  for (const Census& census : whole.censuses) series.Append(census);
  return 0;
}

// Parsing speed of the input module, without a store: bytes in memory -> (decompress)
// -> lines -> items, into a reused batch of ItemRows, as IngestFile does.
//
//   cmake --build build --target ingest_bench && ./build/ingest_bench
//
// items_per_second is lines per second (every line here is an item).
#include <benchmark/benchmark.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/input/byte_source.h"
#include "src/input/input_format.h"
#include "src/input/line_reader.h"
#include "src/input/line_text.h"

namespace sluice {
namespace {

constexpr std::size_t kLines = 200000;

// About 50 bytes per URL, like real image URL lists.
std::string Url(std::mt19937_64& random, std::size_t i) {
  return "https://img" + std::to_string(random() % 100) + ".example.com/p/" +
         std::to_string(i) + "/" + std::to_string(random() % 1000000) + ".jpg";
}

const std::string& TextInput() {
  static const std::string text = [] {
    std::mt19937_64 random(1);
    std::string out;
    for (std::size_t i = 0; i < kLines; ++i) out += Url(random, i) + "\n";
    return out;
  }();
  return text;
}

const std::string& CsvInput() {
  static const std::string text = [] {
    std::mt19937_64 random(2);
    std::string out = "url,caption,width\n";
    for (std::size_t i = 0; i < kLines; ++i) {
      out += Url(random, i) + ",\"a photo, number " + std::to_string(i) + "\",640\n";
    }
    return out;
  }();
  return text;
}

const std::string& JsonlInput() {
  static const std::string text = [] {
    std::mt19937_64 random(3);
    std::string out;
    for (std::size_t i = 0; i < kLines; ++i) {
      out +=
          "{\"url\":\"" + Url(random, i) + "\",\"caption\":\"a photo\",\"width\":640}\n";
    }
    return out;
  }();
  return text;
}

std::string Gzip(const std::string& data) {
  z_stream stream{};
  deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string Zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t n =
      ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  if (ZSTD_isError(n)) throw std::runtime_error("zstd");
  out.resize(n);
  return out;
}

// `plain_bytes`: the size of the data decompressed, for bytes_per_second.
void ParseAll(benchmark::State& state, const std::string& data, InputFormat format,
              std::size_t plain_bytes) {
  std::vector<ItemRow> batch(1000);
  RejectedLine reject;
  std::uint64_t items = 0;
  for (auto _ : state) {
    LineReader lines(
        OpenDecompressor(DetectCompression(data), std::make_unique<MemorySource>(data)),
        65536);
    auto parser = MakeInputParser(format, "url", &lines);
    std::size_t n = 0;
    while (true) {
      auto kind = parser->Next(&batch[n], &reject);
      if (!kind.ok()) {
        state.SkipWithError(kind.status().ToString().c_str());
        return;
      }
      if (*kind == EntryKind::kEnd) break;
      if (*kind == EntryKind::kItem) {
        ++items;
        if (++n == batch.size()) n = 0;
      }
    }
    benchmark::DoNotOptimize(batch.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * plain_bytes));
}

void BM_ParseText(benchmark::State& state) {
  ParseAll(state, TextInput(), InputFormat::kText, TextInput().size());
}
BENCHMARK(BM_ParseText)->Unit(benchmark::kMillisecond);

void BM_ParseTextGzip(benchmark::State& state) {
  static const std::string gzip = Gzip(TextInput());
  ParseAll(state, gzip, InputFormat::kText, TextInput().size());
}
BENCHMARK(BM_ParseTextGzip)->Unit(benchmark::kMillisecond);

void BM_ParseTextZstd(benchmark::State& state) {
  static const std::string zstd = Zstd(TextInput());
  ParseAll(state, zstd, InputFormat::kText, TextInput().size());
}
BENCHMARK(BM_ParseTextZstd)->Unit(benchmark::kMillisecond);

void BM_ParseCsv(benchmark::State& state) {
  ParseAll(state, CsvInput(), InputFormat::kCsv, CsvInput().size());
}
BENCHMARK(BM_ParseCsv)->Unit(benchmark::kMillisecond);

void BM_ParseJsonl(benchmark::State& state) {
  ParseAll(state, JsonlInput(), InputFormat::kJsonl, JsonlInput().size());
}
BENCHMARK(BM_ParseJsonl)->Unit(benchmark::kMillisecond);

void BM_CheckText(benchmark::State& state) {
  std::mt19937_64 random(4);
  const std::string url = Url(random, 12345);
  for (auto _ : state) benchmark::DoNotOptimize(CheckText(url));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * url.size()));
}
BENCHMARK(BM_CheckText);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();

// How much of a JPEG decode is entropy decoding, and whether a decoder of our own could
// do that part faster than libjpeg-turbo: the question behind the img2dataset
// workload's target (docs/benchmarks.md, "Where the targets stand").
//
// Measured on one image, in the same run:
//   BM_LibjpegCoefficients   libjpeg-turbo's entropy decoding alone
//                            (jpeg_read_coefficients: Huffman decoding into blocks)
//   BM_LibjpegScaledDecode   the decode stage's whole decode at 4/8 (entropy decoding,
//                            reduced IDCT, upsampling, colour conversion)
//   BM_TableDecoder/63       an independent table-driven Huffman decoder, every
//                            coefficient decoded and stored
//   BM_TableDecoder/24, /4   the same, decoding only the coefficients a 4/8 (4x4) or
//                            2/8 (2x2) IDCT reads and skipping the rest of each block
//                            with a table that steps over several (code, value) pairs
//                            per lookup
//
// The table decoder handles baseline Huffman JPEGs only (the corpus's kind) and exists
// to be measured: the decode stage uses libjpeg-turbo. Before timing, its coefficients
// are checked equal to libjpeg-turbo's, block for block. Its counters say how many
// symbols per block fall inside the kept zone and how many table steps skip the rest.
//
// Input: as bench/codec_bench.cc, a 500x375 photo Debian ships with dlib, enlarged to
// 1000x750 and encoded at quality 90 (sluice-make-corpus's quality).
//
// Run: build/rel/jpeg_entropy_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <jpeglib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <span>
#include <vector>

#include "src/stages/jpeg_codec.h"

namespace sluice {
namespace {

constexpr char kPhoto[] = "/usr/share/doc/libdlib19.1/examples/faces/2008_002506.jpg";

// Natural (row-major) position of each zigzag index; the tail absorbs a corrupt run.
constexpr std::array<std::uint8_t, 80> kNaturalOrder = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33,
    40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

constexpr int kFastBits = 9;   // codes up to this long decode with one lookup
constexpr int kSkipBits = 11;  // window of the skip table

// One Huffman table: a direct lookup for short codes, canonical-code limits for the
// rest, and for AC tables the skip table.
struct HuffmanTable {
  std::array<std::uint16_t, 1 << kFastBits> fast{};  // (length << 8) | symbol; 0: longer
  std::array<std::int32_t, 18> max_code{};           // per length; -1: none that long
  std::array<std::int32_t, 17> first_index{};        // index in symbols of the first code
  std::array<std::int32_t, 17> first_code{};
  std::array<std::uint8_t, 256> symbols{};
  // For a window of the next kSkipBits bits: how many bits the whole (code, value)
  // pairs in it take, how many coefficients they advance, and whether the last is
  // end-of-block. bits == 0: not even one pair fits.
  struct Skip {
    std::uint8_t bits = 0;
    std::uint8_t advance = 0;
    bool end_of_block = false;
  };
  std::array<Skip, 1 << kSkipBits> skip{};
  // For AC tables, a (code, value) pair whole in the next kSkipBits bits: its
  // coefficient, the bits it takes (0: longer) and its symbol (run << 4 | size).
  struct Coefficient {
    std::int16_t value = 0;
    std::uint8_t bits = 0;
    std::uint8_t symbol = 0;
  };
  std::array<Coefficient, 1 << kSkipBits> coefficient{};
};

// Decodes the first code of `window` (kSkipBits wide, `width` of them valid) by brute
// force; returns its length or 0. Only used to build the tables.
int MatchCode(const std::vector<int>& codes, const std::vector<int>& lengths, int window,
              int width, int* symbol_index) {
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (lengths[i] <= width && (window >> (width - lengths[i])) == codes[i]) {
      *symbol_index = static_cast<int>(i);
      return lengths[i];
    }
  }
  return 0;
}

// A `size`-bit magnitude category's raw bits as the signed value they code.
int Extend(int value, int size) {
  return value < (1 << (size - 1)) ? value - (1 << size) + 1 : value;
}

bool BuildTable(const std::uint8_t* counts, std::span<const std::uint8_t> symbols,
                bool ac, HuffmanTable* table) {
  if (symbols.size() > table->symbols.size()) return false;
  std::copy(symbols.begin(), symbols.end(), table->symbols.begin());
  std::vector<int> codes, lengths;
  int code = 0;
  for (int length = 1; length <= 16; ++length) {
    table->first_index[length] = static_cast<int>(codes.size());
    table->first_code[length] = code;
    for (int i = 0; i < counts[length - 1]; ++i) {
      codes.push_back(code++);
      lengths.push_back(length);
    }
    table->max_code[length] = counts[length - 1] > 0 ? code - 1 : -1;
    if (code > (1 << length)) return false;  // over-subscribed
    code <<= 1;
  }
  table->max_code[17] = 0x7fffffff;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (lengths[i] > kFastBits) continue;
    const int spare = kFastBits - lengths[i];
    for (int low = 0; low < (1 << spare); ++low) {
      table->fast[(codes[i] << spare) | low] =
          static_cast<std::uint16_t>((lengths[i] << 8) | symbols[i]);
    }
  }
  if (!ac) return true;
  for (int window = 0; window < (1 << kSkipBits); ++window) {
    int first = 0;
    const int first_length = MatchCode(codes, lengths, window, kSkipBits, &first);
    const int first_size = symbols[first] & 15;
    if (first_length != 0 && first_length + first_size <= kSkipBits) {
      const int raw =
          (window >> (kSkipBits - first_length - first_size)) & ((1 << first_size) - 1);
      table->coefficient[window] = {
          static_cast<std::int16_t>(first_size ? Extend(raw, first_size) : 0),
          static_cast<std::uint8_t>(first_length + first_size), symbols[first]};
    }
    HuffmanTable::Skip entry;
    int used = 0;
    while (true) {
      const int width = kSkipBits - used;
      int index = 0;
      const int length =
          MatchCode(codes, lengths, window & ((1 << width) - 1), width, &index);
      if (length == 0) break;
      const int run = symbols[index] >> 4, size = symbols[index] & 15;
      if (length + size > width) break;
      used += length + size;
      if (size == 0 && run != 15) {
        entry.end_of_block = true;
        break;
      }
      entry.advance = static_cast<std::uint8_t>(entry.advance + run + 1);
      if (entry.advance > 48) break;
    }
    entry.bits = static_cast<std::uint8_t>(used);
    table->skip[window] = entry;
  }
  return true;
}

struct Component {
  int id = 0, h = 1, v = 1, dc_table = 0, ac_table = 0;
};

// The parts of a baseline JPEG the entropy decoder needs.
struct BaselineJpeg {
  int width = 0, height = 0, h_max = 1, v_max = 1, restart_interval = 0;
  std::vector<Component> components;
  std::array<HuffmanTable, 4> dc, ac;
  std::span<const std::uint8_t> scan;  // entropy-coded data to the end of the file
};

// Parses markers up to the first scan. False for anything but a single-scan baseline
// Huffman file with well-formed segments.
bool ParseBaseline(std::span<const std::uint8_t> file, BaselineJpeg* jpeg) {
  std::size_t at = 2;
  while (at + 4 <= file.size()) {
    if (file[at] != 0xFF) return false;
    const int marker = file[at + 1];
    if (marker == 0xFF) {
      ++at;
      continue;
    }
    const std::size_t length = (file[at + 2] << 8) | file[at + 3];
    if (length < 2 || at + 2 + length > file.size()) return false;
    const std::uint8_t* s = &file[at + 4];
    const std::uint8_t* end = &file[at + 2 + length];
    if (marker == 0xC0 || marker == 0xC1) {
      if (length < 8) return false;
      jpeg->height = (s[1] << 8) | s[2];
      jpeg->width = (s[3] << 8) | s[4];
      const int count = s[5];
      if (count < 1 || count > 4 || length < 8u + 3u * count) return false;
      for (int i = 0; i < count; ++i) {
        Component c;
        c.id = s[6 + 3 * i];
        c.h = s[7 + 3 * i] >> 4;
        c.v = s[7 + 3 * i] & 15;
        if (c.h < 1 || c.h > 2 || c.v < 1 || c.v > 2) return false;
        jpeg->h_max = std::max(jpeg->h_max, c.h);
        jpeg->v_max = std::max(jpeg->v_max, c.v);
        jpeg->components.push_back(c);
      }
    } else if (marker == 0xC4) {
      while (s + 17 <= end) {
        const int table_class = s[0] >> 4, id = s[0] & 15;
        int total = 0;
        for (int i = 0; i < 16; ++i) total += s[1 + i];
        if (id > 3 || table_class > 1 || s + 17 + total > end) return false;
        if (!BuildTable(s + 1, {s + 17, static_cast<std::size_t>(total)},
                        table_class == 1,
                        table_class == 1 ? &jpeg->ac[id] : &jpeg->dc[id])) {
          return false;
        }
        s += 17 + total;
      }
    } else if (marker == 0xDD) {
      jpeg->restart_interval = (s[0] << 8) | s[1];
    } else if (marker == 0xDA) {
      const int count = s[0];
      if (count != static_cast<int>(jpeg->components.size())) return false;
      for (int i = 0; i < count; ++i) {
        for (Component& c : jpeg->components) {
          if (c.id != s[1 + 2 * i]) continue;
          c.dc_table = s[2 + 2 * i] >> 4;
          c.ac_table = s[2 + 2 * i] & 15;
          if (c.dc_table > 3 || c.ac_table > 3) return false;
        }
      }
      jpeg->scan = file.subspan(at + 2 + length);
      return jpeg->width > 0 && jpeg->height > 0;
    } else if ((marker >= 0xC2 && marker <= 0xCF) && marker != 0xC4 && marker != 0xC8 &&
               marker != 0xCC) {
      return false;  // progressive, lossless, arithmetic
    }
    at += 2 + length;
  }
  return false;
}

// A 64-bit, most-significant-first bit buffer over entropy-coded data: stuffed zero
// bytes removed, zeros fed once a marker is reached.
class BitReader {
 public:
  explicit BitReader(std::span<const std::uint8_t> data)
      : next_(data.data()), end_(data.data() + data.size()) {}

  // After it, at least 57 bits are buffered.
  void Refill() {
    if (!at_marker_ && end_ - next_ >= 8) {
      std::uint64_t word;
      std::memcpy(&word, next_, 8);
      const std::uint64_t inverted = ~word;  // a 0xFF byte is a zero byte in it
      const bool has_ff =
          ((inverted - 0x0101010101010101ULL) & ~inverted & 0x8080808080808080ULL) != 0;
      if (!has_ff) {
        const int bytes = (63 - count_) >> 3;
        bits_ |= (__builtin_bswap64(word) >> count_) & ~(~0ULL >> (count_ + 8 * bytes));
        next_ += bytes;
        count_ += 8 * bytes;
        return;
      }
    }
    while (count_ <= 56) {
      std::uint64_t byte = 0;
      if (!at_marker_ && next_ < end_) {
        byte = *next_++;
        if (byte == 0xFF) {
          if (next_ < end_ && *next_ == 0) {
            ++next_;
          } else {
            at_marker_ = true;
            --next_;
            byte = 0;
          }
        }
      }
      bits_ |= byte << (56 - count_);
      count_ += 8;
    }
  }
  // Steps past a restart marker and empties the buffer.
  void Restart() {
    bits_ = 0;
    count_ = 0;
    at_marker_ = false;
    while (end_ - next_ >= 2 &&
           !(next_[0] == 0xFF && next_[1] >= 0xD0 && next_[1] <= 0xD7)) {
      ++next_;
    }
    next_ = std::min(end_, next_ + 2);
  }
  int count() const { return count_; }
  std::uint32_t Peek(int n) const {
    return static_cast<std::uint32_t>(bits_ >> (64 - n));
  }
  void Consume(int n) {
    bits_ <<= n;
    count_ -= n;
  }
  int Take(int n) {
    const int value = static_cast<int>(Peek(n));
    Consume(n);
    return value;
  }

 private:
  const std::uint8_t* next_;
  const std::uint8_t* end_;
  std::uint64_t bits_ = 0;
  int count_ = 0;
  bool at_marker_ = false;
};

int DecodeSymbol(BitReader& bits, const HuffmanTable& table) {
  const std::uint16_t fast = table.fast[bits.Peek(kFastBits)];
  if (fast != 0) {
    bits.Consume(fast >> 8);
    return fast & 0xFF;
  }
  const std::uint32_t code = bits.Peek(16);
  for (int length = kFastBits + 1; length <= 16; ++length) {
    const int prefix = static_cast<int>(code >> (16 - length));
    if (prefix <= table.max_code[length]) {
      bits.Consume(length);
      return table
          .symbols[(table.first_index[length] + prefix - table.first_code[length]) &
                   0xFF];
    }
  }
  bits.Consume(16);  // no such code: corrupt data, decode on as zeros
  return 0;
}

struct DecodeCounts {
  long blocks = 0, kept_symbols = 0, skip_steps = 0;
};

// Decodes one block into `block` (natural order, zeroed by the caller): coefficients
// up to zigzag index `kept_last`, the rest stepped over. kCount: count symbols and
// steps (a separate pass, so that counting costs the timed pass nothing).
template <bool kCount>
void DecodeBlock(BitReader& bits, const HuffmanTable& dc, const HuffmanTable& ac,
                 int kept_last, int* dc_predictor, std::int16_t* block,
                 DecodeCounts* counts) {
  if (bits.count() < 32) bits.Refill();
  const int dc_size = DecodeSymbol(bits, dc);
  if (dc_size != 0) *dc_predictor += Extend(bits.Take(dc_size), dc_size);
  block[0] = static_cast<std::int16_t>(*dc_predictor);
  for (int k = 1; k < 64;) {
    if (bits.count() < 32) bits.Refill();
    if (k > kept_last) {
      if constexpr (kCount) ++counts->skip_steps;
      const HuffmanTable::Skip step = ac.skip[bits.Peek(kSkipBits)];
      if (step.bits != 0 && k + step.advance < 64) {
        bits.Consume(step.bits);
        k += step.advance;
        if (step.end_of_block) break;
        continue;
      }
    } else {
      if constexpr (kCount) ++counts->kept_symbols;
      const HuffmanTable::Coefficient pair = ac.coefficient[bits.Peek(kSkipBits)];
      if (pair.bits != 0) {
        bits.Consume(pair.bits);
        if (pair.symbol == 0) break;  // end of block
        k += pair.symbol >> 4;
        block[kNaturalOrder[k]] = pair.value;
        ++k;
        continue;
      }
    }
    const int symbol = DecodeSymbol(bits, ac);
    const int run = symbol >> 4, size = symbol & 15;
    if (size == 0) {
      if (run != 15) break;  // end of block
      k += 16;
      continue;
    }
    k += run;
    const int value = Extend(bits.Take(size), size);
    if (k <= kept_last) block[kNaturalOrder[k]] = static_cast<std::int16_t>(value);
    ++k;
  }
}

// Decodes the whole scan. `sink(component, block_row, block_col, block)` sees every
// block; returns the counts.
template <bool kCount = false, typename Sink>
DecodeCounts DecodeScan(const BaselineJpeg& jpeg, int kept_last, Sink&& sink) {
  DecodeCounts counts;
  BitReader bits(jpeg.scan);
  const int mcu_cols = (jpeg.width + 8 * jpeg.h_max - 1) / (8 * jpeg.h_max);
  const int mcu_rows = (jpeg.height + 8 * jpeg.v_max - 1) / (8 * jpeg.v_max);
  std::array<int, 4> predictors{};
  int until_restart = jpeg.restart_interval;
  alignas(32) std::array<std::int16_t, 64> block;
  for (int row = 0; row < mcu_rows; ++row) {
    for (int col = 0; col < mcu_cols; ++col) {
      if (jpeg.restart_interval != 0) {
        if (until_restart == 0) {
          bits.Restart();
          predictors = {};
          until_restart = jpeg.restart_interval;
        }
        --until_restart;
      }
      for (std::size_t c = 0; c < jpeg.components.size(); ++c) {
        const Component& component = jpeg.components[c];
        for (int v = 0; v < component.v; ++v) {
          for (int h = 0; h < component.h; ++h) {
            block.fill(0);
            DecodeBlock<kCount>(bits, jpeg.dc[component.dc_table],
                                jpeg.ac[component.ac_table], kept_last, &predictors[c],
                                block.data(), &counts);
            ++counts.blocks;
            sink(static_cast<int>(c), row * component.v + v, col * component.h + h,
                 block.data());
          }
        }
      }
    }
  }
  return counts;
}

struct Inputs {
  std::vector<std::uint8_t> jpeg;  // 1000x750, quality 90
  BaselineJpeg parsed;
};

// libjpeg-turbo's entropy decoding of a JPEG into its coefficient arrays, which live
// as long as the object.
class LibjpegCoefficients {
 public:
  explicit LibjpegCoefficients(const std::vector<std::uint8_t>& jpeg) {
    info_.err = jpeg_std_error(&errors_);
    jpeg_create_decompress(&info_);
    jpeg_mem_src(&info_, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
    jpeg_read_header(&info_, TRUE);
    arrays_ = jpeg_read_coefficients(&info_);
  }
  ~LibjpegCoefficients() {
    jpeg_finish_decompress(&info_);
    jpeg_destroy_decompress(&info_);
  }
  LibjpegCoefficients(const LibjpegCoefficients&) = delete;
  LibjpegCoefficients& operator=(const LibjpegCoefficients&) = delete;

  // Coefficients of block (row, col) of component c.
  const JCOEF* Block(int c, int row, int col) {
    JBLOCKARRAY rows =
        info_.mem->access_virt_barray(reinterpret_cast<j_common_ptr>(&info_), arrays_[c],
                                      static_cast<JDIMENSION>(row), 1, FALSE);
    return rows[0][col];
  }
  const jpeg_component_info& component(int c) const { return info_.comp_info[c]; }

 private:
  jpeg_decompress_struct info_{};
  jpeg_error_mgr errors_{};
  jvirt_barray_ptr* arrays_ = nullptr;
};

// Every coefficient of the table decoder equals libjpeg-turbo's, or the program stops.
void CheckAgainstLibjpeg(const Inputs& in) {
  LibjpegCoefficients libjpeg(in.jpeg);
  long mismatches = 0;
  DecodeScan(in.parsed, 63, [&](int c, int row, int col, const std::int16_t* block) {
    const jpeg_component_info& component = libjpeg.component(c);
    if (row >= static_cast<int>(component.height_in_blocks) ||
        col >= static_cast<int>(component.width_in_blocks)) {
      return;  // MCU padding libjpeg does not keep
    }
    const JCOEF* theirs = libjpeg.Block(c, row, col);
    for (int k = 0; k < 64; ++k) mismatches += theirs[k] != block[k];
  });
  if (mismatches != 0) {
    std::fprintf(stderr, "jpeg_entropy_bench: %ld coefficients differ from libjpeg's\n",
                 mismatches);
    std::exit(1);
  }
}

const Inputs& GetInputs() {
  static const Inputs inputs = [] {
    Inputs in;
    const cv::Mat original = cv::imread(kPhoto, cv::IMREAD_COLOR);
    if (original.empty()) {
      std::fprintf(stderr, "jpeg_entropy_bench: cannot read %s (package libdlib19.1)\n",
                   kPhoto);
      std::exit(1);
    }
    cv::Mat photo;
    cv::resize(original, photo, cv::Size(1000, 750), 0, 0, cv::INTER_CUBIC);
    cv::imencode(".jpg", photo, in.jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
    if (!ParseBaseline(in.jpeg, &in.parsed)) {
      std::fprintf(stderr, "jpeg_entropy_bench: the input is not a baseline JPEG\n");
      std::exit(1);
    }
    CheckAgainstLibjpeg(in);
    return in;
  }();
  return inputs;
}

void BM_LibjpegCoefficients(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    LibjpegCoefficients coefficients(in.jpeg);
    benchmark::DoNotOptimize(&coefficients);
  }
}
BENCHMARK(BM_LibjpegCoefficients);

void BM_LibjpegScaledDecode(benchmark::State& state) {
  const Inputs& in = GetInputs();
  for (auto _ : state) {
    JpegDecodeResult result = DecodeJpeg(in.jpeg, 4);
    benchmark::DoNotOptimize(result.pixels.data);
  }
}
BENCHMARK(BM_LibjpegScaledDecode);

// Arg: the last zigzag index decoded (63 all, 24 the 4x4 zone of a 4/8 decode, 4 the
// 2x2 zone of a 2/8 one).
void BM_TableDecoder(benchmark::State& state) {
  const Inputs& in = GetInputs();
  const int kept_last = static_cast<int>(state.range(0));
  std::int64_t checksum = 0;
  const auto sink = [&](int, int, int, const std::int16_t* block) {
    checksum += block[0];
  };
  for (auto _ : state) DecodeScan(in.parsed, kept_last, sink);
  benchmark::DoNotOptimize(checksum);
  const DecodeCounts counts = DecodeScan<true>(in.parsed, kept_last, sink);
  const double blocks = static_cast<double>(counts.blocks);
  state.counters["kept_symbols_per_block"] =
      static_cast<double>(counts.kept_symbols) / blocks;
  state.counters["skip_steps_per_block"] =
      static_cast<double>(counts.skip_steps) / blocks;
}
BENCHMARK(BM_TableDecoder)->Arg(63)->Arg(24)->Arg(4);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();

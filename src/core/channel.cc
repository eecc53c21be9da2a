#include "src/core/channel.h"

#include <algorithm>
#include <iterator>

namespace sluice {

std::size_t CountFailed(const std::vector<Record>& records) {
  std::size_t failed = 0;
  for (const Record& record : records) failed += record.failed() ? 1 : 0;
  return failed;
}

std::vector<Chunk> SplitIntoChunks(BatchId batch, std::vector<Record> records,
                                   std::size_t chunk_size) {
  std::vector<Chunk> chunks;
  const std::size_t total = records.size();
  chunks.reserve((total + chunk_size - 1) / chunk_size);
  chunks.emplace_back();  // the first chunk, filled last
  for (std::size_t begin = chunk_size; begin < total; begin += chunk_size) {
    const std::size_t end = std::min(total, begin + chunk_size);
    Chunk& chunk = chunks.emplace_back();
    chunk.records.assign(std::make_move_iterator(records.begin() + begin),
                         std::make_move_iterator(records.begin() + end));
    chunk.runs.push_back(BatchRun{batch, end - begin});
    chunk.failed = CountFailed(chunk.records);
  }
  if (total > chunk_size) records.erase(records.begin() + chunk_size, records.end());
  Chunk& first = chunks.front();
  first.records = std::move(records);
  first.runs.push_back(BatchRun{batch, first.records.size()});
  first.failed = CountFailed(first.records);
  return chunks;
}

}  // namespace sluice

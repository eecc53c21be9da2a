#include "src/core/batch_assembler.h"

#include <cassert>
#include <iterator>

namespace sluice {

void BatchAssembler::Expect(BatchId batch, std::size_t records, Completed* completed) {
  if (records == 0) {
    completed->emplace_back(batch, std::vector<Record>{});
    return;
  }
  auto [it, inserted] = batches_.try_emplace(batch);
  assert(inserted && "the same batch id submitted twice while in flight");
  it->second.expected += records;
}

void BatchAssembler::Add(Chunk chunk, Completed* completed) {
  std::size_t begin = 0;
  for (const BatchRun& run : chunk.runs) {
    auto it = batches_.find(run.batch);
    if (it == batches_.end()) {  // a caller bug: the batch was never expected
      assert(false && "records of a batch that was not expected");
      begin += run.count;
      continue;
    }
    Assembly& assembly = it->second;
    if (assembly.records.empty() && chunk.runs.size() == 1 &&
        run.count == assembly.expected) {
      assembly.records = std::move(chunk.records);  // the whole batch in one chunk
    } else {
      if (assembly.records.empty()) assembly.records.reserve(assembly.expected);
      auto first = chunk.records.begin() + static_cast<std::ptrdiff_t>(begin);
      assembly.records.insert(
          assembly.records.end(), std::make_move_iterator(first),
          std::make_move_iterator(first + static_cast<std::ptrdiff_t>(run.count)));
    }
    begin += run.count;
    assembly.received += run.count;
    if (assembly.received == assembly.expected) {
      completed->emplace_back(run.batch, std::move(assembly.records));
      batches_.erase(it);
    }
  }
}

}  // namespace sluice

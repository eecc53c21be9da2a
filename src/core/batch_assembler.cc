#include "src/core/batch_assembler.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace sluice {

Status BatchAssembler::Expect(BatchId batch, std::size_t records, Completed* completed) {
  if (batches_.contains(batch)) {
    return Internal(fmt::format(
        "runtime: batch {} expected while it is being assembled already", batch));
  }
  if (records == 0) {
    completed->push_back(Finished{batch, {}, false});
    return Status::Ok();
  }
  batches_[batch].expected = records;
  pending_records_ += records;
  return Status::Ok();
}

bool BatchAssembler::Drop(BatchId batch, Completed* completed) {
  auto it = batches_.find(batch);
  if (it == batches_.end() || it->second.dropped) return false;
  Assembly& assembly = it->second;
  assembly.dropped = true;
  assembly.records = {};  // frees what arrived
  pending_records_ -= assembly.expected - assembly.received;
  if (assembly.received == assembly.expected) {  // cannot happen: it would be done
    completed->push_back(Finished{batch, {}, true});
    batches_.erase(it);
  }
  return true;
}

void BatchAssembler::Add(Chunk chunk, Completed* completed,
                         std::vector<Arrival>* arrivals) {
  std::size_t begin = 0;
  for (const BatchRun& run : chunk.runs) {
    auto it = batches_.find(run.batch);
    const std::size_t lacking =
        it == batches_.end() ? 0 : it->second.expected - it->second.received;
    if (run.count > lacking) {  // a caller bug: never expected, or too many records
      unexpected_records_ += run.count - lacking;
    }
    const std::size_t taken = std::min(run.count, lacking);
    if (taken == 0) {
      begin += run.count;
      continue;
    }
    Assembly& assembly = it->second;
    if (assembly.dropped) {
      dropped_records_arrived_ += taken;  // freed with the chunk
    } else if (assembly.records.empty() && chunk.runs.size() == 1 &&
               taken == assembly.expected && chunk.records.size() == taken) {
      assembly.records = std::move(chunk.records);  // the whole batch in one chunk
    } else {
      if (assembly.records.empty()) assembly.records.reserve(assembly.expected);
      auto first = chunk.records.begin() + static_cast<std::ptrdiff_t>(begin);
      assembly.records.insert(
          assembly.records.end(), std::make_move_iterator(first),
          std::make_move_iterator(first + static_cast<std::ptrdiff_t>(taken)));
    }
    begin += run.count;
    assembly.received += taken;
    if (!assembly.dropped) pending_records_ -= taken;
    if (assembly.received == assembly.expected) {
      completed->push_back(
          Finished{run.batch, std::move(assembly.records), assembly.dropped});
      batches_.erase(it);
    } else if (arrivals != nullptr && !assembly.dropped) {
      // Reserved for the whole batch at its first records: no reallocation later.
      arrivals->push_back(
          Arrival{run.batch, std::span<Record>(assembly.records).last(taken)});
    }
  }
}

}  // namespace sluice

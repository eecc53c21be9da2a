#include "sluice/stage.h"

namespace sluice {

void CpuStage::Process(std::span<Record> records) {
  for (Record& record : records) {
    if (!record.failed()) ProcessOne(record);
  }
}

Status StageRegistry::Register(std::string type, std::string description,
                               StageFactory factory) {
  for (const char* op : {"copy", "split", "shard", "merge", "join", "reduce"}) {
    if (type == op) {
      return InvalidArgument("stage registry: '" + type +
                             "' is the name of an operator, not free for a stage");
    }
  }
  if (type.empty()) return InvalidArgument("stage registry: a stage type needs a name");
  if (!factory) return InvalidArgument("stage registry: '" + type + "' has no factory");
  if (entries_.contains(type)) {
    return InvalidArgument("stage registry: a stage type named '" + type +
                           "' is registered already");
  }
  entries_.emplace(std::move(type), Entry{std::move(description), std::move(factory)});
  return Status::Ok();
}

const StageFactory* StageRegistry::Find(std::string_view type) const {
  auto it = entries_.find(type);
  return it == entries_.end() ? nullptr : &it->second.factory;
}

std::vector<std::pair<std::string, std::string>> StageRegistry::List() const {
  std::vector<std::pair<std::string, std::string>> list;
  for (const auto& [type, entry] : entries_) list.emplace_back(type, entry.description);
  return list;
}

Status StageRegistry::RegisterPayloadDecoder(std::string codec, PayloadDecoder decoder) {
  if (payload_decoders_.contains(codec)) {
    return InvalidArgument("stage registry: a payload decoder for '" + codec +
                           "' is registered already");
  }
  payload_decoders_.emplace(std::move(codec), std::move(decoder));
  return Status::Ok();
}

const PayloadDecoder* StageRegistry::FindPayloadDecoder(std::string_view codec) const {
  auto it = payload_decoders_.find(codec);
  return it == payload_decoders_.end() ? nullptr : &it->second;
}

}  // namespace sluice

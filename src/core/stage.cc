#include "sluice/stage.h"

namespace sluice {

void CpuStage::Process(std::span<Record> records) {
  for (Record& record : records) {
    if (!record.failed()) ProcessOne(record);
  }
}

void StageRegistry::Register(std::string type, std::string description,
                             StageFactory factory) {
  entries_[std::move(type)] = Entry{std::move(description), std::move(factory)};
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

void StageRegistry::RegisterPayloadDecoder(std::string codec, PayloadDecoder decoder) {
  payload_decoders_[std::move(codec)] = std::move(decoder);
}

const PayloadDecoder* StageRegistry::FindPayloadDecoder(std::string_view codec) const {
  auto it = payload_decoders_.find(codec);
  return it == payload_decoders_.end() ? nullptr : &it->second;
}

}  // namespace sluice

#include "src/stages/hash_stage.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <memory>

#include "src/stages/http_headers.h"

namespace sluice {

std::string HashStage::HexSha256(const Bytes& bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(length * 2, '0');
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return hex;
}

void HashStage::ProcessOne(Record& record) {
  const Value* body = record.Find("body");
  const Bytes* bytes = body == nullptr ? nullptr : std::get_if<Bytes>(body);
  if (bytes == nullptr) {
    record.Fail(FailureReason::kStage,
                "sha256: no \"body\" bytes (fetch must run first)");
    return;
  }
  std::string digest = HexSha256(*bytes);
  const std::string* expected =
      options_.column.empty() ? nullptr : record.FindColumn(options_.column);
  if (expected != nullptr && !expected->empty() && !EqualsIgnoreCase(*expected, digest)) {
    record.Fail(FailureReason::kHashMismatch,
                fmt::format("sha256 {} differs from column {} ({})", digest,
                            options_.column, *expected));
  }
  record.Set("sha256", std::move(digest));
}

Status RegisterHashStage(StageRegistry& registry) {
  return registry.Register(
      "sha256", "hashes \"body\" (SHA-256), optionally checked against an input column",
      [](StageOptions& options) -> Result<std::unique_ptr<Stage>> {
        HashOptions hash;
        hash.column = options.GetString("column", "");
        return std::unique_ptr<Stage>(std::make_unique<HashStage>(std::move(hash)));
      });
}

}  // namespace sluice

// sha256: hashes the downloaded bytes, and checks them against an expected digest.
//
// Reads:   "body"    Bytes (from fetch)
//          the input column named by `column`, when set: the expected digest, hex
// Writes:  "sha256"  text, the lower-case hex SHA-256 of "body"
// Fails:   kHashMismatch  the digest differs from a non-empty expected column
//                         (case-insensitive); an item without it is not checked
//          kStage         no "body" field (fetch must run first)
//
// A CPU stage rather than part of fetch: hashing costs about a millisecond per
// megabyte, and on the CPU pool it runs on every core instead of on fetch's single
// event-loop thread, which then keeps downloading.
//
// Thread-safety: immutable after construction; chunks may run concurrently.
#ifndef SLUICE_STAGES_HASH_STAGE_H_
#define SLUICE_STAGES_HASH_STAGE_H_

#include <string>

#include "sluice/record.h"
#include "sluice/stage.h"

namespace sluice {

struct HashOptions {
  std::string column;  // "column": input column holding the expected SHA-256; "" = none
};

// Registers "sha256".
// Fails if one of the names is registered already.
Status RegisterHashStage(StageRegistry& registry);

class HashStage final : public CpuStage {
 public:
  explicit HashStage(HashOptions options) : options_(std::move(options)) {}
  void ProcessOne(Record& record) override;
  StageFields Fields() const override {
    return DeclaredFields({"body"}, {"sha256"});
  }

  // The lower-case hex SHA-256 of `bytes`.
  static std::string HexSha256(const Bytes& bytes);

 private:
  const HashOptions options_;
};

}  // namespace sluice

#endif  // SLUICE_STAGES_HASH_STAGE_H_

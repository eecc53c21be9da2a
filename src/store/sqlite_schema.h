// The SQLite store's schema: creating it in a new file, and refusing files made by
// another schema version or by something other than sluice.
//
// Tables (see kSchemaSql in sqlite_schema.cc for the columns):
//   meta            key/value; holds schema_version and values set with SetMeta
//   stage_groups    the pipeline's stage groups, id = position in pipeline order
//   inputs          ingested files, unique by (size, digest)
//   items           one row per input row; id dense from 1 in input order
//   batches         per (group, batch): item range, state, lease owner/token/expiry
//   results         per (group, item): failure reason (NULL = ok), error, fields
//   result_counts   per (group, reason): how many results ('' = ok)
//   rejected_lines  input lines that could not be ingested
#ifndef SLUICE_STORE_SQLITE_SCHEMA_H_
#define SLUICE_STORE_SQLITE_SCHEMA_H_

#include <string_view>

#include "sluice/status.h"
#include "src/store/sqlite_db.h"

namespace sluice::sqlite {

// Batch states, as stored in batches.state.
inline constexpr std::string_view kWaiting = "waiting";  // the previous group has it
inline constexpr std::string_view kPending = "pending";  // ready to lease
inline constexpr std::string_view kLeased = "leased";    // held by batches.owner
inline constexpr std::string_view kDone = "done";        // results committed

struct ConnectionOptions {
  int cache_size_kib = 65536;  // SQLite page cache of this connection
};

// Checks the file's schema version, switches the connection to WAL mode and creates
// the schema if the file is new. REQUIRES: no transaction open on `db`.
// Errors name the file: "store /x/sluice.db: schema version 7, this sluice reads
// version 1".
Status PrepareSchema(SqliteDb& db, const ConnectionOptions& options);

}  // namespace sluice::sqlite

#endif  // SLUICE_STORE_SQLITE_SCHEMA_H_

#include "src/store/sqlite_schema.h"

#include <fmt/format.h>

#include <string>

#include "sluice/store.h"
#include "src/store/worker_reports.h"

namespace sluice::sqlite {
namespace {

// Foreign keys are not declared: every write goes through the store's own
// transactions, which keep the references right, and enforcing them would cost a
// lookup per result row on the hottest path (CommitBatch).
//
// batches and results are WITHOUT ROWID tables clustered on (group_id, ...): a lease
// or a commit touches one contiguous key range. Groups are referred to by a small
// integer (stage_groups.id) rather than by name to keep the billions of result rows
// short. The partial index on failed results keeps RetryFailed and the failure
// counts of Summarize off the (much larger) set of ok rows, at no cost when an ok
// result is written. result_counts holds the number of results per group and reason
// ('' = ok), kept in the same transactions as the rows, so that Summarize reads a few
// rows instead of counting billions.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE stage_groups (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE inputs (
  id INTEGER PRIMARY KEY,
  size INTEGER NOT NULL,
  digest TEXT NOT NULL,
  first_path TEXT NOT NULL,
  lines_done INTEGER NOT NULL DEFAULT 0,
  complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
  UNIQUE (size, digest)
);

CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  url TEXT NOT NULL,
  columns_json TEXT
);

CREATE TABLE batches (
  group_id INTEGER NOT NULL,
  batch_id INTEGER NOT NULL,
  first_item INTEGER NOT NULL,
  item_count INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'pending', 'leased', 'done')),
  owner TEXT,
  token INTEGER NOT NULL DEFAULT 0,
  expires_at_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (group_id, batch_id)
) WITHOUT ROWID;
CREATE INDEX batches_by_state ON batches (group_id, state, batch_id);
CREATE INDEX batches_by_first_item ON batches (group_id, first_item);

CREATE TABLE results (
  group_id INTEGER NOT NULL,
  item_id INTEGER NOT NULL,
  reason TEXT,
  error TEXT,
  fields_json TEXT,
  PRIMARY KEY (group_id, item_id)
) WITHOUT ROWID;
CREATE INDEX results_failed ON results (group_id, reason) WHERE reason IS NOT NULL;

CREATE TABLE result_counts (
  group_id INTEGER NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (group_id, reason)
) WITHOUT ROWID;

CREATE TABLE rejected_lines (
  input_id INTEGER NOT NULL,
  line INTEGER NOT NULL,
  reason TEXT NOT NULL,
  excerpt TEXT NOT NULL,
  PRIMARY KEY (input_id, line)
);
)sql";

enum class SchemaState { kEmpty, kCurrent };

// Reads what the file holds. REQUIRES: a transaction is open.
Result<SchemaState> ReadSchemaState(SqliteDb& db) {
  SLUICE_ASSIGN_OR_RETURN(
      std::string tables,
      db.QueryText("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"));
  if (tables == "0") return SchemaState::kEmpty;
  SLUICE_ASSIGN_OR_RETURN(
      std::string has_meta,
      db.QueryText("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                   "name = 'meta'"));
  if (has_meta == "0") {
    return InvalidArgument(
        "not a sluice store (an SQLite database without a meta table)");
  }
  SLUICE_ASSIGN_OR_RETURN(
      std::string version,
      db.QueryText("SELECT value FROM meta WHERE key = 'schema_version'"));
  if (version.empty()) return Corruption("no schema_version in the meta table");
  if (version != std::to_string(kStoreSchemaVersion)) {
    return InvalidArgument(fmt::format("schema version {}, this sluice reads version {}",
                                       version, kStoreSchemaVersion));
  }
  return SchemaState::kCurrent;
}

Status CheckVersionBeforeChanges(SqliteDb& db) {
  // A read transaction first: a file we are going to refuse is left as it was (not
  // even switched to WAL mode).
  Transaction transaction(db);
  SLUICE_RETURN_IF_ERROR(transaction.BeginRead());
  SLUICE_RETURN_IF_ERROR(ReadSchemaState(db).ToStatus());
  return transaction.Commit();
}

Status ConfigureConnection(SqliteDb& db, const ConnectionOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(std::string mode, db.QueryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return IoError(fmt::format("cannot use WAL journal mode (got '{}')", mode));
  }
  // NORMAL in WAL mode: a commit survives the process being killed at any instant;
  // only an OS crash or power loss may lose the last commits (never corrupts).
  return db.Exec(fmt::format("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{};",
                             options.cache_size_kib));
}

Status CreateIfEmpty(SqliteDb& db) {
  // BEGIN IMMEDIATE serialises two processes creating the same new store.
  Transaction transaction(db);
  SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
  SLUICE_ASSIGN_OR_RETURN(SchemaState state, ReadSchemaState(db));
  if (state == SchemaState::kEmpty) {
    SLUICE_RETURN_IF_ERROR(db.Exec(kSchemaSql));
    SLUICE_RETURN_IF_ERROR(db.Exec(
        fmt::format("INSERT INTO meta (key, value) VALUES ('schema_version', '{}')",
                    kStoreSchemaVersion)));
  }
  SLUICE_RETURN_IF_ERROR(db.Exec(kWorkersTableSql));
  return transaction.Commit();
}

}  // namespace

Status PrepareSchema(SqliteDb& db, const ConnectionOptions& options) {
  Status status = CheckVersionBeforeChanges(db);
  // Switching a new file to WAL fails at once, without the busy handler, while
  // another connection opening the same file holds a lock on it.
  if (status.ok()) {
    status = db.RetryWhileBusy([&] { return ConfigureConnection(db, options); });
  }
  if (status.ok()) status = CreateIfEmpty(db);
  return status.WithContext("store " + db.path());
}

}  // namespace sluice::sqlite

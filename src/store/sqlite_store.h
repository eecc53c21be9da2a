// The SQLite backend of the Store: sluice's default, embedded store, one file.
//
// How it works: every Store method is one SQLite transaction on one connection.
// Methods that write start with BEGIN IMMEDIATE, which takes the database's single
// write lock at once; a lease is therefore picked and marked in one step that no
// other connection (thread or process) can interleave with, and no batch is ever
// held by two owners. Readers never wait for the writer (WAL mode).
//
// Numbering: item ids and batch ids are dense and start at 1. A batch id names the
// same item range in every stage group.
//
// Summarize(): batches waiting for the previous group count as pending (not done,
// not held), so pending + leased + done is the number of batches of the group.
// Expired leases count as pending too.
//
// Durability: WAL with synchronous=NORMAL: a committed transaction survives the
// process being killed at any instant; an OS crash may lose the last commits.
//
// Thread-safety: a store returned by OpenSqliteStore is thread-safe; its calls are
// serialised by one mutex. Several stores (in one process or many) may use the same
// file at once; SQLite's file locks and the busy timeout arbitrate between them.
// ExportRows and ListRejects read in chunks and call their callback without holding
// the mutex, so the callback may use the store.
#ifndef SLUICE_STORE_SQLITE_STORE_H_
#define SLUICE_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "sluice/status.h"
#include "sluice/store.h"

namespace sluice {

struct SqliteStoreOptions {
  // Time source for lease expiry; not owned, must outlive the store.
  StoreClock* clock = &SystemStoreClock();
  // How long a call waits for another connection's write lock before kBusy.
  int busy_timeout_ms = 10000;
  // Create the file if it does not exist (false for read-only commands: kNotFound).
  bool create_if_missing = true;
  // SQLite page cache of the store's connection, in KiB.
  int cache_size_kib = 65536;
};

// Opens or creates the store in the SQLite file `path`. Refuses a file that is not an
// SQLite database, or a store with another schema version than kStoreSchemaVersion;
// the message names the file. The returned store owns its connection.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const SqliteStoreOptions& options = {});

}  // namespace sluice

#endif  // SLUICE_STORE_SQLITE_STORE_H_

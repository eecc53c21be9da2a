// The PostgreSQL backend of the Store: many worker processes on many machines
// sharing one database (docs/postgres.md).
//
// How it works: every Store method is one transaction on the store's single
// connection (one connection per store, one store per process: not per thread),
// serialised by a mutex. Leasing is one statement: it picks pending batches and
// batches whose lease expired with FOR UPDATE SKIP LOCKED and a LIMIT (two workers
// never wait for each other, and never get the same batch), bumps the fencing token
// and sets the expiry. A commit locks its batch row, checks the token, copies the
// results in with COPY and marks the batch done, all in one transaction. Counts
// for `status` live in a small table of sharded counters updated in the same
// transactions, so that a summary reads a few dozen rows whatever the store's size.
//
// Clock: lease expiry is judged by the database server's clock by default
// (clock_timestamp()), so that workers on machines whose clocks disagree still agree
// on when a lease expired; tests pass their own clock.
//
// Connection loss: a call that finds the connection broken fails with kIoError; the
// next call connects again. A commit whose outcome is unknown (the connection broke
// during COMMIT) can be retried with the same lease: the token check makes a second
// commit of a committed batch fail with kStaleLease, never write twice.
//
// Thread-safety: thread-safe; ExportRows and ListRejects read in chunks and call
// their callback without holding the mutex, so the callback may use the store.
#ifndef SLUICE_STORE_POSTGRES_STORE_H_
#define SLUICE_STORE_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "sluice/status.h"
#include "sluice/store.h"

namespace sluice {

struct PostgresStoreOptions {
  // Time source for lease expiry; nullptr: the database server's clock. Not owned,
  // must outlive the store.
  StoreClock* clock = nullptr;
  // Create the schema in an empty database (false for read-only commands: then an
  // empty database is kNotFound).
  bool create_if_missing = true;
};

// True for "postgres://..." and "postgresql://..." store addresses.
bool IsPostgresUrl(std::string_view address);

// Opens the store in the database at `url` (a libpq URL or connection string),
// creating its tables in an empty database. Refuses a database that holds other
// tables but no store, or a store of another schema version than
// kStoreSchemaVersion; messages name the server and database, never the password.
Result<std::unique_ptr<Store>> OpenPostgresStore(
    const std::string& url, const PostgresStoreOptions& options = {});

}  // namespace sluice

#endif  // SLUICE_STORE_POSTGRES_STORE_H_

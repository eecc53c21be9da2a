// Opening the SQLite store, its statement cache and stage groups, ingest and meta.
#include "src/store/sqlite_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <utility>

#include "src/store/sqlite_schema.h"
#include "src/store/sqlite_store_internal.h"
#include "src/store/store_checks.h"

namespace sluice {

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const SqliteStoreOptions& options) {
  if (options.clock == nullptr) return InvalidArgument("store " + path + ": no clock");
  sqlite::SqliteDb::OpenOptions open_options;
  open_options.create_if_missing = options.create_if_missing;
  open_options.busy_timeout_ms = options.busy_timeout_ms;
  auto db = sqlite::SqliteDb::Open(path, open_options);
  if (!db.ok()) return db.status().WithContext("store " + path);
  sqlite::ConnectionOptions connection_options;
  connection_options.cache_size_kib = options.cache_size_kib;
  SLUICE_RETURN_IF_ERROR(sqlite::PrepareSchema(**db, connection_options));
  return std::unique_ptr<Store>(
      std::make_unique<sqlite::SqliteStore>(std::move(db).value(), options));
}

namespace sqlite {

SqliteStore::SqliteStore(std::unique_ptr<SqliteDb> db, const SqliteStoreOptions& options)
    : clock_(options.clock), db_(std::move(db)) {}

SqliteStore::~SqliteStore() = default;

Result<Statement*> SqliteStore::Cached(const char* sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end()) return &found->second;
  SLUICE_ASSIGN_OR_RETURN(Statement statement, db_->Prepare(sql));
  return &statements_.emplace(sql, std::move(statement)).first->second;
}

// --- Stage groups -------------------------------------------------------------------

Status SqliteStore::LoadGroups() {
  SLUICE_ASSIGN_OR_RETURN(Statement * select,
                          Cached("SELECT id, name FROM stage_groups ORDER BY id"));
  ScopedReset reset(*select);
  std::vector<std::string> names;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool has_row, select->Step());
    if (!has_row) break;
    if (select->ColumnInt(0) != static_cast<std::int64_t>(names.size())) {
      return Corruption("stage_groups ids are not 0, 1, ...");
    }
    names.emplace_back(select->ColumnText(1));
  }
  group_names_ = std::move(names);
  return Status::Ok();
}

Result<std::int64_t> SqliteStore::GroupId(std::string_view group) {
  // An empty list may be stale (another store may have ingested since); a loaded
  // one is complete, because groups are registered all at once and never change.
  if (group_names_.empty()) SLUICE_RETURN_IF_ERROR(LoadGroups());
  auto found = std::find(group_names_.begin(), group_names_.end(), group);
  if (found == group_names_.end()) return kNoGroup;
  return static_cast<std::int64_t>(found - group_names_.begin());
}

std::optional<std::int64_t> SqliteStore::NextGroupId(std::int64_t group_id) const {
  if (group_id + 1 < static_cast<std::int64_t>(group_names_.size())) return group_id + 1;
  return std::nullopt;
}

Status SqliteStore::CheckOrRegisterGroups(std::span<const std::string> groups) {
  SLUICE_RETURN_IF_ERROR(CheckStageGroupNames(groups));
  SLUICE_RETURN_IF_ERROR(LoadGroups());
  if (group_names_.empty()) {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * insert,
        Cached("INSERT INTO stage_groups (id, name) VALUES (?1, ?2)"));
    ScopedReset reset(*insert);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      insert->BindInt(1, static_cast<std::int64_t>(i));
      insert->BindText(2, groups[i]);
      SLUICE_RETURN_IF_ERROR(insert->Run());
      insert->Reset();
    }
    // Cached only once the transaction commits; until then a rollback could undo it.
    group_names_.clear();
    return Status::Ok();
  }
  if (!std::equal(groups.begin(), groups.end(), group_names_.begin(),
                  group_names_.end())) {
    return InvalidArgument(fmt::format("the store's stage groups are [{}], not [{}]",
                                       fmt::join(group_names_, ", "),
                                       fmt::join(groups, ", ")));
  }
  return Status::Ok();
}

Status SqliteStore::AddToResultCount(std::int64_t group_id, std::string_view reason,
                                     std::int64_t delta) {
  SLUICE_ASSIGN_OR_RETURN(
      Statement * upsert,
      Cached(
          "INSERT INTO result_counts (group_id, reason, count) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (group_id, reason) DO UPDATE SET count = count + excluded.count"));
  ScopedReset reset(*upsert);
  upsert->BindInt(1, group_id);
  upsert->BindText(2, reason);
  upsert->BindInt(3, delta);
  return upsert->Run();
}

// --- Ingest -------------------------------------------------------------------------

Result<InputState> SqliteStore::BeginInput(const InputFingerprint& input) {
  std::lock_guard lock(mutex_);
  auto begin = [&]() -> Result<InputState> {
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * find,
        Cached("SELECT id, complete, lines_done, first_path FROM inputs "
               "WHERE size = ?1 AND digest = ?2"));
    ScopedReset reset_find(*find);
    find->BindInt(1, static_cast<std::int64_t>(input.size));
    find->BindText(2, input.digest);
    SLUICE_ASSIGN_OR_RETURN(bool found, find->Step());
    InputState state;
    if (found) {
      state.input_id = find->ColumnInt(0);
      state.complete = find->ColumnInt(1) != 0;
      state.lines_done = static_cast<std::uint64_t>(find->ColumnInt(2));
      state.first_path = std::string(find->ColumnText(3));
      find->Reset();
    } else {
      SLUICE_ASSIGN_OR_RETURN(
          Statement * insert,
          Cached("INSERT INTO inputs (size, digest, first_path) VALUES (?1, ?2, ?3) "
                 "RETURNING id"));
      ScopedReset reset_insert(*insert);
      insert->BindInt(1, static_cast<std::int64_t>(input.size));
      insert->BindText(2, input.digest);
      insert->BindText(3, input.path);
      SLUICE_ASSIGN_OR_RETURN(bool inserted, insert->Step());
      if (!inserted) return Internal("no id returned for the new input");
      state.input_id = insert->ColumnInt(0);
      state.first_path = input.path;
      SLUICE_RETURN_IF_ERROR(insert->Run());  // runs the statement to its end
    }
    SLUICE_RETURN_IF_ERROR(transaction.Commit());
    return state;
  };
  Result<InputState> result = begin();
  if (!result.ok()) {
    return result.status().WithContext("store: begin input " + input.path);
  }
  return result;
}

Status SqliteStore::AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                                std::span<const RejectedLine> rejects,
                                std::uint64_t lines_done, std::uint32_t batch_size,
                                std::span<const std::string> groups) {
  std::lock_guard lock(mutex_);
  return AppendItemsLocked(input_id, items, rejects, lines_done, batch_size, groups)
      .WithContext(fmt::format("store: append items of input {}", input_id));
}

Status SqliteStore::AppendItemsLocked(std::int64_t input_id,
                                      std::span<const ItemRow> items,
                                      std::span<const RejectedLine> rejects,
                                      std::uint64_t lines_done, std::uint32_t batch_size,
                                      std::span<const std::string> groups) {
  if (batch_size == 0) return InvalidArgument("batch size is 0");
  Transaction transaction(*db_);
  SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());

  // The input must exist; its line count moves forward in the same transaction as
  // the items, so a resumed ingest neither skips nor repeats a line.
  SLUICE_ASSIGN_OR_RETURN(Statement * update_input,
                          Cached("UPDATE inputs SET lines_done = ?2 WHERE id = ?1"));
  ScopedReset reset_update(*update_input);
  update_input->BindInt(1, input_id);
  update_input->BindInt(2, static_cast<std::int64_t>(lines_done));
  SLUICE_RETURN_IF_ERROR(update_input->Run());
  if (update_input->Changes() == 0) return NotFound("no such input");

  if (!items.empty()) {
    SLUICE_RETURN_IF_ERROR(CheckOrRegisterGroups(groups));
    SLUICE_ASSIGN_OR_RETURN(Statement * max_item,
                            Cached("SELECT coalesce(max(id), 0) FROM items"));
    ScopedReset reset_max_item(*max_item);
    SLUICE_RETURN_IF_ERROR(max_item->Step().ToStatus());
    std::int64_t next_item = max_item->ColumnInt(0) + 1;
    max_item->Reset();

    // Batch ids are shared by all groups; the first group (id 0) has every batch.
    SLUICE_ASSIGN_OR_RETURN(
        Statement * max_batch,
        Cached("SELECT coalesce(max(batch_id), 0) FROM batches WHERE group_id = 0"));
    ScopedReset reset_max_batch(*max_batch);
    SLUICE_RETURN_IF_ERROR(max_batch->Step().ToStatus());
    std::int64_t next_batch = max_batch->ColumnInt(0) + 1;
    max_batch->Reset();

    std::size_t failed_row = items.size();
    SLUICE_RETURN_IF_ERROR(insert_items_.Insert(
        *db_, items.size(),
        [&](Statement& insert, int parameter, std::size_t row) {
          insert.BindInt(parameter, next_item + static_cast<std::int64_t>(row));
          insert.BindText(parameter + 1, items[row].url);
          insert.BindTextOrNull(parameter + 2, items[row].columns_json);
        },
        &failed_row));

    SLUICE_ASSIGN_OR_RETURN(
        Statement * insert_batch,
        Cached("INSERT INTO batches (group_id, batch_id, first_item, item_count, state) "
               "VALUES (?1, ?2, ?3, ?4, ?5)"));
    ScopedReset reset_batch(*insert_batch);
    for (std::size_t start = 0; start < items.size(); start += batch_size) {
      const std::size_t count = std::min<std::size_t>(batch_size, items.size() - start);
      for (std::size_t group = 0; group < groups.size(); ++group) {
        insert_batch->BindInt(1, static_cast<std::int64_t>(group));
        insert_batch->BindInt(2, next_batch);
        insert_batch->BindInt(3, next_item + static_cast<std::int64_t>(start));
        insert_batch->BindInt(4, static_cast<std::int64_t>(count));
        insert_batch->BindText(5, group == 0 ? kPending : kWaiting);
        SLUICE_RETURN_IF_ERROR(insert_batch->Run());
      }
      ++next_batch;
    }
  }

  if (!rejects.empty()) {
    SLUICE_ASSIGN_OR_RETURN(
        Statement * insert_reject,
        Cached("INSERT INTO rejected_lines (input_id, line, reason, excerpt) "
               "VALUES (?1, ?2, ?3, ?4)"));
    ScopedReset reset_reject(*insert_reject);
    for (const RejectedLine& reject : rejects) {
      insert_reject->BindInt(1, input_id);
      insert_reject->BindInt(2, static_cast<std::int64_t>(reject.line));
      insert_reject->BindText(3, reject.reason);
      insert_reject->BindText(4, reject.excerpt);
      Status status = insert_reject->Run();
      if (status.code() == StatusCode::kInternal) {
        return Internal(fmt::format("line {} was already rejected", reject.line));
      }
      SLUICE_RETURN_IF_ERROR(status);
    }
  }
  return transaction.Commit();
}

Status SqliteStore::FinishInput(std::int64_t input_id, std::uint64_t lines_done) {
  std::lock_guard lock(mutex_);
  auto finish = [&]() -> Status {
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * update,
        Cached("UPDATE inputs SET lines_done = ?2, complete = 1 WHERE id = ?1"));
    ScopedReset reset(*update);
    update->BindInt(1, input_id);
    update->BindInt(2, static_cast<std::int64_t>(lines_done));
    SLUICE_RETURN_IF_ERROR(update->Run());
    if (update->Changes() == 0) return NotFound("no such input");
    return transaction.Commit();
  };
  return finish().WithContext(fmt::format("store: finish input {}", input_id));
}

// --- Meta ---------------------------------------------------------------------------

Result<std::optional<std::string>> SqliteStore::GetMeta(std::string_view key) {
  std::lock_guard lock(mutex_);
  auto get = [&]() -> Result<std::optional<std::string>> {
    SLUICE_ASSIGN_OR_RETURN(Statement * select,
                            Cached("SELECT value FROM meta WHERE key = ?1"));
    ScopedReset reset(*select);
    select->BindText(1, key);
    SLUICE_ASSIGN_OR_RETURN(bool found, select->Step());
    if (!found) return std::optional<std::string>();
    return std::optional<std::string>(std::string(select->ColumnText(0)));
  };
  auto result = get();
  if (!result.ok()) {
    return result.status().WithContext(fmt::format("store: get meta {}", key));
  }
  return result;
}

Status SqliteStore::SetMeta(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  auto set = [&]() -> Status {
    // The schema version says how to read the file; only the store writes it.
    if (key == "schema_version") return InvalidArgument("the key is reserved");
    Transaction transaction(*db_);
    SLUICE_RETURN_IF_ERROR(transaction.BeginWrite());
    SLUICE_ASSIGN_OR_RETURN(
        Statement * upsert,
        Cached("INSERT INTO meta (key, value) VALUES (?1, ?2) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
    ScopedReset reset(*upsert);
    upsert->BindText(1, key);
    upsert->BindText(2, value);
    SLUICE_RETURN_IF_ERROR(upsert->Run());
    return transaction.Commit();
  };
  return set().WithContext(fmt::format("store: set meta {}", key));
}

}  // namespace sqlite
}  // namespace sluice

// Opening the PostgreSQL store, its connection, stage groups and counters, ingest and
// meta.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>

#include "src/store/postgres_store_internal.h"
#include "src/store/store_checks.h"

namespace sluice {

bool IsPostgresUrl(std::string_view address) {
  return address.starts_with("postgres://") || address.starts_with("postgresql://");
}

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const PostgresStoreOptions& options) {
  auto conn = pg::PgConn::Connect(url);
  if (!conn.ok()) return conn.status().WithContext("store");
  SLUICE_RETURN_IF_ERROR(postgres::PrepareSchema(**conn, options.create_if_missing));
  return std::unique_ptr<Store>(
      std::make_unique<postgres::PostgresStore>(std::move(conn).value(), options));
}

namespace postgres {

// Keys of the advisory lock that serialises ingest (item and batch ids are taken as
// max + 1).
constexpr std::int64_t kIngestLock = 0x736c756963650002;

std::string NowSql(int n) {
  return fmt::format(
      "coalesce(${}::bigint, (extract(epoch from clock_timestamp()) * "
      "1000)::bigint)",
      n);
}

PostgresStore::PostgresStore(std::unique_ptr<pg::PgConn> conn,
                             const PostgresStoreOptions& options)
    : clock_(options.clock), conn_(std::move(conn)) {}

PostgresStore::~PostgresStore() = default;

Result<pg::PgConn*> PostgresStore::Conn() {
  if (conn_->connection_lost()) {
    SLUICE_RETURN_IF_ERROR(conn_->Reconnect());
    group_names_.clear();  // reloaded from the database on first use
  }
  return conn_.get();
}

pg::Param PostgresStore::NowParam() const {
  if (clock_ == nullptr) return std::nullopt;
  return pg::IntParam(clock_->NowMs());
}

// --- Counters ---------------------------------------------------------------------

void CounterDelta::Add(std::int64_t group_id, std::string name, std::int64_t shard,
                       std::int64_t delta) {
  if (delta == 0) return;
  deltas_[{group_id, std::move(name), shard}] += delta;
}

Status CounterDelta::Apply(pg::PgConn& conn) const {
  std::vector<pg::Param> params;
  std::string values;
  for (const auto& [key, delta] : deltas_) {
    if (delta == 0) continue;
    const auto& [group_id, name, shard] = key;
    const int n = static_cast<int>(params.size());
    values += fmt::format("{}(${}::integer, ${}, ${}::integer, ${}::bigint)",
                          values.empty() ? "" : ", ", n + 1, n + 2, n + 3, n + 4);
    params.push_back(pg::IntParam(group_id));
    params.push_back(name);
    params.push_back(pg::IntParam(shard));
    params.push_back(pg::IntParam(delta));
  }
  if (params.empty()) return Status::Ok();
  return conn
      .Exec("INSERT INTO counters (group_id, name, shard, count) VALUES " + values +
                " ON CONFLICT (group_id, name, shard) DO UPDATE SET count = "
                "counters.count + excluded.count",
            params)
      .ToStatus();
}

// --- Stage groups -------------------------------------------------------------------

Status PostgresStore::LoadGroups(pg::PgConn& conn) {
  SLUICE_ASSIGN_OR_RETURN(pg::PgResult rows,
                          conn.Exec("SELECT id, name FROM stage_groups ORDER BY id"));
  std::vector<std::string> names;
  for (int row = 0; row < rows.rows(); ++row) {
    if (rows.Int(row, 0) != static_cast<std::int64_t>(names.size())) {
      return Corruption("stage_groups ids are not 0, 1, ...");
    }
    names.emplace_back(rows.Text(row, 1));
  }
  group_names_ = std::move(names);
  return Status::Ok();
}

Result<std::int64_t> PostgresStore::GroupId(pg::PgConn& conn, std::string_view group) {
  // An empty list may be stale (another process may have ingested since); a loaded
  // one is complete, because groups are registered all at once and never change.
  if (group_names_.empty()) SLUICE_RETURN_IF_ERROR(LoadGroups(conn));
  auto found = std::find(group_names_.begin(), group_names_.end(), group);
  if (found == group_names_.end()) return kNoGroup;
  return static_cast<std::int64_t>(found - group_names_.begin());
}

std::optional<std::int64_t> PostgresStore::NextGroupId(std::int64_t group_id) const {
  if (group_id + 1 < static_cast<std::int64_t>(group_names_.size())) return group_id + 1;
  return std::nullopt;
}

Status PostgresStore::CheckOrRegisterGroups(pg::PgConn& conn,
                                            std::span<const std::string> groups) {
  SLUICE_RETURN_IF_ERROR(CheckStageGroupNames(groups));
  SLUICE_RETURN_IF_ERROR(LoadGroups(conn));
  if (group_names_.empty()) {
    for (std::size_t i = 0; i < groups.size(); ++i) {
      SLUICE_RETURN_IF_ERROR(
          conn.Exec("INSERT INTO stage_groups (id, name) VALUES ($1, $2)",
                    {pg::IntParam(static_cast<std::int64_t>(i)), groups[i]})
              .ToStatus());
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

// --- Ingest -------------------------------------------------------------------------

Result<InputState> PostgresStore::BeginInput(const InputFingerprint& input) {
  std::lock_guard lock(mutex_);
  auto begin = [&]() -> Result<InputState> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    // One statement: a concurrent BeginInput of the same file finds the row the
    // other inserted (ON CONFLICT waits for it).
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult inserted,
        conn->Exec("INSERT INTO inputs (size, digest, first_path) VALUES ($1, $2, $3) "
                   "ON CONFLICT (size, digest) DO NOTHING RETURNING id",
                   {pg::IntParam(static_cast<std::int64_t>(input.size)), input.digest,
                    pg::StorableText(input.path)}));
    InputState state;
    if (inserted.rows() == 1) {
      state.input_id = inserted.Int(0, 0);
      state.first_path = pg::StorableText(input.path);
      return state;
    }
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult found,
        conn->Exec("SELECT id, complete, lines_done, first_path FROM inputs "
                   "WHERE size = $1 AND digest = $2",
                   {pg::IntParam(static_cast<std::int64_t>(input.size)), input.digest}));
    if (found.rows() != 1) return Internal("the input is neither new nor known");
    state.input_id = found.Int(0, 0);
    state.complete = found.Text(0, 1) == "t";
    state.lines_done = static_cast<std::uint64_t>(found.Int(0, 2));
    state.first_path = std::string(found.Text(0, 3));
    return state;
  };
  Result<InputState> result = begin();
  if (!result.ok()) {
    return result.status().WithContext("store: begin input " + input.path);
  }
  return result;
}

Status PostgresStore::AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                                  std::span<const RejectedLine> rejects,
                                  std::uint64_t lines_done, std::uint32_t batch_size,
                                  std::span<const std::string> groups) {
  std::lock_guard lock(mutex_);
  auto append = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return AppendItemsLocked(*conn, input_id, items, rejects, lines_done, batch_size,
                             groups);
  };
  return append().WithContext(fmt::format("store: append items of input {}", input_id));
}

Status PostgresStore::AppendItemsLocked(pg::PgConn& conn, std::int64_t input_id,
                                        std::span<const ItemRow> items,
                                        std::span<const RejectedLine> rejects,
                                        std::uint64_t lines_done,
                                        std::uint32_t batch_size,
                                        std::span<const std::string> groups) {
  if (batch_size == 0) return InvalidArgument("batch size is 0");
  pg::PgTransaction transaction(conn);
  SLUICE_RETURN_IF_ERROR(transaction.Begin());
  // Ids are max + 1: two ingests at once take turns.
  SLUICE_RETURN_IF_ERROR(
      conn.Exec("SELECT pg_advisory_xact_lock($1)", {pg::IntParam(kIngestLock)})
          .ToStatus());

  // The input must exist; its line count moves forward in the same transaction as
  // the items, so a resumed ingest neither skips nor repeats a line.
  SLUICE_ASSIGN_OR_RETURN(
      pg::PgResult updated,
      conn.Exec(
          "UPDATE inputs SET lines_done = $2 WHERE id = $1",
          {pg::IntParam(input_id), pg::IntParam(static_cast<std::int64_t>(lines_done))}));
  if (updated.affected() == 0) return NotFound("no such input");

  CounterDelta counters;
  if (!items.empty()) {
    SLUICE_RETURN_IF_ERROR(CheckOrRegisterGroups(conn, groups));
    SLUICE_ASSIGN_OR_RETURN(pg::PgResult max_item,
                            conn.Exec("SELECT coalesce(max(id), 0) FROM items"));
    const std::int64_t next_item = max_item.Int(0, 0) + 1;
    // Batch ids are shared by all groups; the first group (id 0) has every batch.
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult max_batch,
        conn.Exec("SELECT coalesce(max(batch_id), 0) FROM batches WHERE group_id = 0"));
    std::int64_t next_batch = max_batch.Int(0, 0) + 1;

    std::string rows;
    rows.reserve(items.size() * 96);
    for (std::size_t i = 0; i < items.size(); ++i) {
      pg::CopyRow(rows)
          .Int(next_item + static_cast<std::int64_t>(i))
          .Text(items[i].url)
          .TextOrNull(items[i].columns_json);
    }
    SLUICE_RETURN_IF_ERROR(
        conn.CopyIn("COPY items (id, url, columns_json) FROM STDIN", rows).ToStatus());

    rows.clear();
    for (std::size_t start = 0; start < items.size(); start += batch_size) {
      const std::size_t count = std::min<std::size_t>(batch_size, items.size() - start);
      for (std::size_t group = 0; group < groups.size(); ++group) {
        const std::string_view state = group == 0 ? "pending" : "waiting";
        pg::CopyRow(rows)
            .Int(static_cast<std::int64_t>(group))
            .Int(next_batch)
            .Int(next_item + static_cast<std::int64_t>(start))
            .Int(static_cast<std::int64_t>(count))
            .Text(state);
        counters.AddBatch(static_cast<std::int64_t>(group), state, next_batch, 1);
      }
      ++next_batch;
    }
    SLUICE_RETURN_IF_ERROR(
        conn.CopyIn("COPY batches (group_id, batch_id, first_item, item_count, state) "
                    "FROM STDIN",
                    rows)
            .ToStatus());
  }

  if (!rejects.empty()) {
    // A line rejected twice is a caller's bug: found before COPY, for the message.
    std::vector<std::uint64_t> lines;
    for (const RejectedLine& reject : rejects) lines.push_back(reject.line);
    std::sort(lines.begin(), lines.end());
    auto twice = std::adjacent_find(lines.begin(), lines.end());
    std::string ids;
    for (std::uint64_t line : lines)
      ids += (ids.empty() ? "" : ",") + std::to_string(line);
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult known,
        conn.Exec("SELECT min(line) FROM rejected_lines WHERE input_id = $1 AND "
                  "line = ANY($2::bigint[])",
                  {pg::IntParam(input_id), "{" + ids + "}"}));
    if (twice != lines.end() || !known.IsNull(0, 0)) {
      const std::uint64_t line =
          twice != lines.end() ? *twice : static_cast<std::uint64_t>(known.Int(0, 0));
      return Internal(fmt::format("line {} was already rejected", line));
    }
    std::string rows;
    for (const RejectedLine& reject : rejects) {
      pg::CopyRow(rows)
          .Int(input_id)
          .Int(static_cast<std::int64_t>(reject.line))
          .Text(reject.reason)
          .Text(reject.excerpt);
    }
    SLUICE_RETURN_IF_ERROR(
        conn.CopyIn("COPY rejected_lines (input_id, line, reason, excerpt) FROM STDIN",
                    rows)
            .ToStatus());
    counters.Add(kStoreWide, "rejected_lines", input_id % kCounterShards,
                 static_cast<std::int64_t>(rejects.size()));
  }
  SLUICE_RETURN_IF_ERROR(counters.Apply(conn));
  return transaction.Commit();
}

Status PostgresStore::FinishInput(std::int64_t input_id, std::uint64_t lines_done) {
  std::lock_guard lock(mutex_);
  auto finish = [&]() -> Status {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult updated,
        conn->Exec("UPDATE inputs SET lines_done = $2, complete = true WHERE id = $1",
                   {pg::IntParam(input_id),
                    pg::IntParam(static_cast<std::int64_t>(lines_done))}));
    if (updated.affected() == 0) return NotFound("no such input");
    return Status::Ok();
  };
  return finish().WithContext(fmt::format("store: finish input {}", input_id));
}

// --- Meta ---------------------------------------------------------------------------

Result<std::optional<std::string>> PostgresStore::GetMeta(std::string_view key) {
  std::lock_guard lock(mutex_);
  auto get = [&]() -> Result<std::optional<std::string>> {
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    SLUICE_ASSIGN_OR_RETURN(
        pg::PgResult found,
        conn->Exec("SELECT value FROM meta WHERE key = $1", {std::string(key)}));
    if (found.rows() == 0) return std::optional<std::string>();
    return std::optional<std::string>(std::string(found.Text(0, 0)));
  };
  auto result = get();
  if (!result.ok()) {
    return result.status().WithContext(fmt::format("store: get meta {}", key));
  }
  return result;
}

Status PostgresStore::SetMeta(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  auto set = [&]() -> Status {
    // The schema version says how to read the store; only the store writes it.
    if (key == "schema_version") return InvalidArgument("the key is reserved");
    SLUICE_ASSIGN_OR_RETURN(pg::PgConn * conn, Conn());
    return conn
        ->Exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {pg::StorableText(key), pg::StorableText(value)})
        .ToStatus();
  };
  return set().WithContext(fmt::format("store: set meta {}", key));
}

}  // namespace postgres
}  // namespace sluice

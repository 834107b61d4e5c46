// ChangeProcessor: turns the decoded pgoutput stream into ejections and a
// confirmable replication position. No sockets: the replication client feeds
// it messages, tests and benchmarks feed it directly.
//
// Per transaction (Begin … Commit; pgoutput only sends committed ones):
//   for each row change, FIRST taint matching in-flight requests, THEN find
//   candidate instances (equality index for the old and new row's values, plus
//   the table's unindexed instances; every instance on the table when part of
//   a row image is unknown), evaluate them, and collect affected instances.
//   The finding and evaluating is deferred and done for up to
//   probe_batch_changes changes at once, in arrival order, always before
//   the Commit's ejections (a lookup made later only sees more of the map).
//   With wait_until_visible, a transaction's changes are held until its
//   Commit and tainted and looked up there, once the commit is visible.
//   At Commit: settle join checks (poll or conservative), eject every key of
//   the affected instances plus the pages that include them (each key once),
//   remove them from the map, record end_lsn as applied. Only then does
//   ConfirmableLsn() move, and only then may the caller confirm it upstream.
//
// Thread-safety: Process/OnWalEnd/ResetStream from one thread; Metrics() from any.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/ejector.h"
#include "invalidator/dependency_source.h"
#include "invalidator/join_poll.h"
#include "invalidator/metrics.h"
#include "invalidator/pgoutput.h"
#include "invalidator/row_evaluator.h"

namespace cacheportal::invalidator {

struct ProcessorOptions {
  // Join checks: poll the database (needs a JoinPoller) or eject conservatively.
  bool poll_joins = true;
  EvalOptions eval;
  // Eject() attempts per commit before giving up (the caller then reconnects
  // and the transaction is replayed). Default: 3.
  int eject_attempts = 3;
  // How often the applied position is written to the map (SetAppliedLsn).
  // The stored position only lets a restart skip transactions already done
  // (correctness rests on acknowledging after ejection), so under load one
  // write per interval instead of per commit is enough; the caller calls
  // PersistPosition() when the stream goes idle. Default: 0 = every commit.
  double persist_interval_seconds = 0;
  // Wall time all join polls of one transaction may take together; once
  // spent, its remaining join checks eject conservatively (polls_skipped).
  // Default: 0 = unbounded (each poll is still bounded by the poller).
  double poll_budget_seconds = 0;
  // When a transaction's commit is already this old at its Commit, the stream
  // is behind: its joins eject conservatively instead of polling, so the
  // invalidator catches up (polls_skipped). Default: 0 = always poll.
  double skip_polls_lag_seconds = 0;
  // Row changes whose index lookups are made together (one
  // DependencySource::CandidatesByValues call, whose memory misses overlap).
  // Unless held (wait_until_visible), each change taints in-flight requests
  // as it arrives; its lookups and evaluation wait until this many are
  // pending or the transaction's Commit (or a Truncate) arrives, which
  // ejects nothing any later.
  // Default: 32; 1 = look each change up as it arrives.
  size_t probe_batch_changes = 32;
  // Before a transaction's in-flight check and lookups, wait (on the
  // poller's connection) until new snapshots see it. PostgreSQL streams a
  // commit before the committing backend leaves the proc array: a page whose
  // statement starts in that gap is not tainted yet reads the old rows, and
  // registers after the lookup (docs/freshness-gap.md). With this on, a
  // transaction's changes are held until its Commit and checked there.
  // Needs a JoinPoller. Default: off.
  bool wait_until_visible = false;
  // How long to keep asking; then every in-flight request is tainted instead.
  double visible_wait_seconds = 1.0;
  // Changes held per transaction while waiting: past this, the transaction
  // is looked up as it goes and ejects every cached page at its Commit.
  size_t max_held_changes = 100000;
};

class ChangeProcessor {
 public:
  using Clock = std::function<int64_t()>;  // Unix µs

  // `source` and `ejector` must outlive the processor; `poller` may be null
  // (joins are then ejected conservatively). `now` defaults to the system clock.
  ChangeProcessor(DependencySource* source, Ejector* ejector, JoinPoller* poller,
                  ProcessorOptions options, Clock now = nullptr);

  // Feeds one message. Non-OK means the position must not advance past what
  // ConfirmableLsn() says: TryAgain when an ejection was not confirmed,
  // Corruption when the stream is inconsistent. Either way the caller
  // reconnects and the server replays from ConfirmableLsn().
  Status Process(const PgOutputMessage& message);

  // The server has sent everything before `wal_end` (a keepalive outside a
  // transaction): provisional poll answers up to it become final.
  void OnWalEnd(Lsn wal_end);

  // Forget a half-received transaction and the relation cache (reconnect).
  void ResetStream();

  // Writes ConfirmableLsn() to the map if it moved since the last write.
  void PersistPosition();

  // Forgets the applied position (the server is behind it: restored or
  // replaced). The caller ejects everything.
  void ResetPosition(Lsn lsn);

  // Ejects everything: Ejector::EjectAll, in-flight TaintAll, map Clear. Used
  // when the slot was lost or the stream cannot be evaluated.
  Status EjectEverything(const std::string& reason);

  // End LSN of the last transaction whose ejections are all done and on which
  // no provisional poll answer depends. Starts at the source's AppliedLsn().
  Lsn ConfirmableLsn() const;
  bool in_transaction() const { return txn_.open; }
  // commit_time (Unix µs) of the last transaction processed; 0 before any.
  int64_t last_commit_unix_us() const { return last_commit_unix_us_; }

  InvalidatorMetrics Metrics() const;

  // Any thread: the position last written to the map; every change at or
  // before it has been ejected (what a cache may stamp its entries with).
  Lsn PersistedLsn() const { return persisted_.load(std::memory_order_acquire); }

 private:
  // A row image some instance's join check needs (stored once per change).
  struct JoinRow {
    std::shared_ptr<const Relation> rel;
    Row row;
  };
  // (table index in the template, JoinRow index): the row matched that table.
  using JoinCheck = std::pair<int, uint32_t>;
  struct PendingJoin {
    InstanceId id;
    std::shared_ptr<const sqlmap::QueryInstance> instance;
    std::vector<JoinCheck> checks;
  };
  struct Txn {
    bool open = false;
    uint32_t xid = 0;
    Lsn final_lsn = 0;
    int64_t commit_time = 0;
    std::unordered_set<InstanceId> affected;
    std::vector<std::string> tables;  // few per transaction: a scan beats hashing
    // Tables where this transaction updated, deleted or truncated rows: a
    // join poll (run once the commit is visible) may miss a pre-commit
    // partner there. Rows it only inserted are visible to the poll.
    std::vector<std::string> tables_not_insert_only;
    // The commit could not be confirmed visible (wait_until_visible): polls
    // might not see its rows, so its join checks eject.
    bool visibility_unknown = false;
    // TRUNCATEd tables held until the Commit is visible (wait_until_visible).
    std::vector<std::string> held_truncates;
    std::vector<JoinRow> join_rows;
    std::vector<PendingJoin> joins;
    std::unordered_map<InstanceId, size_t> join_index;  // instance → its entry in `joins`
    bool eject_all = false;
    std::string eject_all_reason;
    uint64_t changes = 0;
    // Changes awaiting their lookups (FlushPending); held ones also await
    // their in-flight check (wait_until_visible).
    std::vector<RowChange> pending;
  };
  // A provisional "no" from a poll: it holds only if no transaction committed
  // before `until` touched `tables`.
  struct Guard {
    InstanceId id;
    std::vector<std::string> tables;
    Lsn until;
    Lsn hold_at;  // confirmable position before the transaction that polled
  };

  // A table's unindexed instances, resolved (see OnChange).
  struct UnindexedCache {
    std::vector<InstanceId> ids;
    std::vector<std::shared_ptr<const sqlmap::QueryInstance>> instances;
    bool reusable = false;  // every id resolved
  };
  const UnindexedCache* ResolveUnindexed(const std::string& table);

  Status OnChange(RowChange change);
  // Looks up the pending changes' candidates in one batch and evaluates each change.
  void FlushPending();
  // The indexed columns of `rel` to look a row of it up by (cached per flush).
  const std::vector<int>& ProbeColumns(const std::shared_ptr<const Relation>& rel);
  // Evaluates `ids` (sorted, unique; plus the table's unindexed instances
  // unless `unknown`) against `change`, collecting affected instances and join checks.
  void EvaluateCandidates(const RowChange& change, const std::vector<InstanceId>& ids,
                          bool unknown);
  Status OnTruncate(const TruncateMessage& m);
  Status OnCommit(const CommitMessage& m);
  // True once new snapshots see transaction `xid` (options_.wait_until_visible).
  bool WaitUntilVisible(uint32_t xid);
  bool WaitsForVisibility() const { return options_.wait_until_visible && poller_ != nullptr; }
  void TaintInFlight(const RowChange& change);
  // Taints readers of `table` in flight and marks every instance reading it affected.
  void TruncateTable(const std::string& table);
  void SettleJoins(const CommitMessage& m, Lsn hold_at);
  // Answers the groups' join checks (one template, changed table and
  // relation each) with pipelined partner polls, falling back to batched probes.
  struct JoinGroup;
  struct GroupPoll;
  void PollGroups(const std::vector<JoinGroup>& groups, std::vector<uint8_t>* state,
                  std::vector<Lsn>* until, const std::function<bool()>& budget_spent);
  void ProbeOverflow(const GroupPoll& gp, std::vector<uint8_t>* state, std::vector<Lsn>* until,
                     const std::function<bool()>& budget_spent);
  void RowsIn(const JoinGroup& g, size_t member, std::span<const uint32_t> chunk,
              std::vector<uint32_t>* out) const;
  Status EjectKeys(std::vector<std::string>* keys);
  void Count(uint64_t InvalidatorMetrics::*field, uint64_t n = 1);
  void Publish();
  Status ProcessMessage(const PgOutputMessage& message);

  DependencySource* source_;
  Ejector* ejector_;
  JoinPoller* poller_;
  ProcessorOptions options_;
  Clock now_;
  RelationCache relations_;
  Txn txn_;
  std::vector<Guard> guards_;
  Lsn applied_ = 0;
  std::atomic<Lsn> persisted_{0};
  int64_t last_persist_us_ = 0;
  int64_t last_commit_unix_us_ = 0;
  std::vector<InstanceId> scratch_ids_;
  std::vector<InstanceId> scratch_unindexed_;
  std::vector<std::string> scratch_keys_;
  std::string scratch_key_;
  std::array<std::pair<uint64_t InvalidatorMetrics::*, uint64_t>, 16> unpublished_{};
  size_t unpublished_n_ = 0;
  int64_t eject_us_ = 0, remove_us_ = 0;  // the last EjectKeys' steps
  std::unordered_map<std::string, UnindexedCache> unindexed_cache_;
  std::vector<std::string> scratch_names_;
  // FlushPending's scratch: the batch's probes, their ends in the found ids,
  // each change's first probe, and the probe columns of each relation seen.
  std::vector<ValueProbe> scratch_probes_;
  std::vector<size_t> scratch_ends_;
  std::vector<size_t> scratch_first_probe_;
  std::vector<InstanceId> scratch_found_;
  std::vector<std::pair<const Relation*, std::vector<int>>> probe_columns_;

  mutable std::mutex mu_;  // guards metrics_
  InvalidatorMetrics metrics_;
};

}  // namespace cacheportal::invalidator

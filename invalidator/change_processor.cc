#include "invalidator/change_processor.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace cacheportal::invalidator {
namespace {

int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void AddTable(std::vector<std::string>* tables, const std::string& t) {
  if (std::find(tables->begin(), tables->end(), t) == tables->end()) tables->push_back(t);
}
bool HasTable(const std::vector<std::string>& tables, const std::string& t) {
  return std::find(tables.begin(), tables.end(), t) != tables.end();
}

bool HasUnknown(const Row& row) {
  for (const auto& c : row)
    if (c.state == Cell::State::kUnknown) return true;
  return false;
}

// Some cell of a row image is unknown (an unchanged TOASTed value): the
// change cannot be looked up by value and every instance on its table is a
// candidate.
bool HasUnknownImage(const RowChange& change) {
  return (change.old_row && HasUnknown(*change.old_row)) ||
         (change.new_row && HasUnknown(*change.new_row));
}

}  // namespace

ChangeProcessor::ChangeProcessor(DependencySource* source, Ejector* ejector, JoinPoller* poller,
                                 ProcessorOptions options, Clock now)
    : source_(source),
      ejector_(ejector),
      poller_(poller),
      options_(options),
      now_(now ? std::move(now) : Clock(SystemNowMicros)) {
  applied_ = source_->AppliedLsn();
  persisted_ = applied_;
}

// Counts are gathered without the lock and published once per message (or
// when the buffer fills): Metrics() lags by at most the message in progress.
void ChangeProcessor::Count(uint64_t InvalidatorMetrics::*field, uint64_t n) {
  if (unpublished_n_ == unpublished_.size()) Publish();
  unpublished_[unpublished_n_++] = {field, n};
}

void ChangeProcessor::Publish() {
  if (unpublished_n_ == 0) return;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < unpublished_n_; ++i)
    metrics_.*unpublished_[i].first += unpublished_[i].second;
  unpublished_n_ = 0;
}

InvalidatorMetrics ChangeProcessor::Metrics() const {
  std::lock_guard lock(mu_);
  InvalidatorMetrics m = metrics_;
  m.applied_lsn = PersistedLsn();
  return m;
}

Lsn ChangeProcessor::ConfirmableLsn() const {
  Lsn c = applied_;
  for (const auto& g : guards_) c = std::min(c, g.hold_at);
  return c;
}

void ChangeProcessor::ResetPosition(Lsn lsn) {
  applied_ = lsn;
  guards_.clear();
  if (Status s = source_->SetAppliedLsn(lsn); !s.ok())
    log::Warn("invalidator", "storing the applied LSN failed", {{"error", s.ToString()}});
  persisted_ = lsn;
}

void ChangeProcessor::ResetStream() {
  txn_ = Txn{};
  relations_.Clear();
}

void ChangeProcessor::OnWalEnd(Lsn wal_end) {
  if (txn_.open) return;
  std::erase_if(guards_, [wal_end](const Guard& g) { return g.until <= wal_end; });
}

Status ChangeProcessor::Process(const PgOutputMessage& message) {
  Status s = ProcessMessage(message);
  Publish();
  return s;
}

Status ChangeProcessor::ProcessMessage(const PgOutputMessage& message) {
  return std::visit(
      [this](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BeginMessage>) {
          if (txn_.open) return Status::Corruption("pgoutput: Begin inside an open transaction");
          txn_ = Txn{};
          txn_.open = true;
          txn_.xid = m.xid;
          txn_.final_lsn = m.final_lsn;
          txn_.commit_time = m.commit_time;
          return Status::OK();
        } else if constexpr (std::is_same_v<T, CommitMessage>) {
          if (!txn_.open) return Status::Corruption("pgoutput: Commit without Begin");
          return OnCommit(m);
        } else if constexpr (std::is_same_v<T, RelationMessage>) {
          relations_.Put(m);
          return Status::OK();
        } else if constexpr (std::is_same_v<T, InsertMessage> || std::is_same_v<T, UpdateMessage> ||
                             std::is_same_v<T, DeleteMessage>) {
          if (!txn_.open) return Status::Corruption("pgoutput: row change outside a transaction");
          auto rel = relations_.Get(m.relid);
          if (!rel) {
            // pgoutput always sends Relation first; if we lack it we cannot evaluate.
            txn_.eject_all = true;
            txn_.eject_all_reason = "change to unknown relation " + std::to_string(m.relid);
            return Status::OK();
          }
          Result<RowChange> ch = Status::Internal("unset");
          if constexpr (std::is_same_v<T, InsertMessage>) ch = MakeInsert(rel, m.new_tuple);
          if constexpr (std::is_same_v<T, UpdateMessage>)
            ch = MakeUpdate(rel, m.old_kind, m.old_tuple, m.new_tuple);
          if constexpr (std::is_same_v<T, DeleteMessage>)
            ch = MakeDelete(rel, m.old_kind, m.old_tuple);
          if (!ch.ok()) {
            txn_.eject_all = true;
            txn_.eject_all_reason = ch.status().ToString();
            return Status::OK();
          }
          return OnChange(std::move(ch).value());
        } else if constexpr (std::is_same_v<T, TruncateMessage>) {
          if (!txn_.open) return Status::Corruption("pgoutput: Truncate outside a transaction");
          return OnTruncate(m);
        } else {
          // Origin, Type, logical Message: nothing to evaluate.
          return Status::OK();
        }
      },
      message);
}

Status ChangeProcessor::OnChange(RowChange change) {
  ++txn_.changes;
  const std::string& table = change.rel->table;
  AddTable(&txn_.tables, table);
  if (change.kind != RowChange::Kind::kInsert) AddTable(&txn_.tables_not_insert_only, table);
  Count(&InvalidatorMetrics::changes);

  // In-flight requests first (see common/page_registrar.h for why the order
  // matters), then the lookup, in FlushPending. A held change gets both at
  // the Commit, once it is visible; otherwise it taints now.
  const bool hold = WaitsForVisibility() && !txn_.eject_all;
  if (!hold) TaintInFlight(change);
  txn_.pending.push_back(std::move(change));
  const size_t limit =
      hold ? options_.max_held_changes : std::max<size_t>(1, options_.probe_batch_changes);
  if (txn_.pending.size() < limit) return Status::OK();
  if (hold) {
    txn_.eject_all = true;
    txn_.eject_all_reason = "transaction too large to hold until it is visible";
  }
  FlushPending();
  return Status::OK();
}

void ChangeProcessor::TaintInFlight(const RowChange& change) {
  size_t tainted =
      source_->TaintMatching(change.rel->table, [&](const sqlmap::QueryInstance& inst) {
        return EvaluateChange(change, inst, options_.eval).impact != Impact::kNone;
      });
  if (tainted) Count(&InvalidatorMetrics::tainted_requests, tainted);
}

bool ChangeProcessor::WaitUntilVisible(uint32_t xid) {
  // pg_visible_in_snapshot wants a full xid8: widen the 32-bit xid with the
  // epoch of the snapshot's xmax (one epoch back if it is not below xmax's
  // low half, i.e. the counter wrapped since).
  static const std::string kSql =
      "SELECT pg_visible_in_snapshot((((pg_snapshot_xmax(s)::text::bigint >> 32) << 32) + "
      "$1::bigint"
      " - CASE WHEN $1::bigint >= (pg_snapshot_xmax(s)::text::bigint & 4294967295) THEN 4294967296"
      " ELSE 0 END)::text::xid8, s) FROM pg_current_snapshot() AS s";
  PollQuery q{kSql, {std::to_string(xid)}};
  const int64_t deadline = now_() + static_cast<int64_t>(options_.visible_wait_seconds * 1e6);
  // Each ask is a round trip; the gap is normally microseconds wide.
  for (int attempt = 0; attempt < 100000; ++attempt) {
    auto r = poller_->Query(q);
    if (!r.ok()) return false;
    if (r->rows.size() == 1 && !r->rows[0].empty() &&
        r->rows[0][0] == std::optional<std::string>("t"))
      return true;
    if (now_() >= deadline) break;
  }
  return false;
}

const std::vector<int>& ChangeProcessor::ProbeColumns(const std::shared_ptr<const Relation>& rel) {
  for (const auto& [r, cols] : probe_columns_)
    if (r == rel.get()) return cols;
  std::vector<int> cols;
  // Only columns something is indexed on need a lookup, when the source can tell.
  scratch_names_.clear();
  if (source_->IndexedColumns(rel->table, &scratch_names_)) {
    for (const auto& name : scratch_names_)
      if (int i = rel->Find(name); i >= 0) cols.push_back(i);
  } else {
    for (size_t i = 0; i < rel->columns.size(); ++i) cols.push_back(static_cast<int>(i));
  }
  probe_columns_.emplace_back(rel.get(), std::move(cols));
  return probe_columns_.back().second;
}

void ChangeProcessor::FlushPending() {
  std::vector<RowChange>& pending = txn_.pending;
  if (pending.empty()) return;
  // Every pending change's probes, in arrival order, then one batch lookup.
  // The probes point into `pending`, which does not change until the end.
  std::vector<ValueProbe>& probes = scratch_probes_;
  std::vector<size_t>& first_probe = scratch_first_probe_;
  probes.clear();
  first_probe.clear();
  probe_columns_.clear();
  for (const RowChange& change : pending) {
    first_probe.push_back(probes.size());
    if (HasUnknownImage(change)) continue;  // every instance on the table: no lookup
    const std::vector<int>& cols = ProbeColumns(change.rel);
    for (const auto* row : {change.old_row ? &*change.old_row : nullptr,
                            change.new_row ? &*change.new_row : nullptr}) {
      if (!row) continue;
      for (int i : cols) {
        const Cell& c = (*row)[i];
        if (c.state != Cell::State::kValue) continue;
        // An UPDATE's unchanged column finds the same candidates in both images.
        if (row == &*change.new_row && change.old_row && change.kind == RowChange::Kind::kUpdate &&
            change.changed[i] == Tri::kNo)
          continue;
        probes.push_back(ValueProbe{change.rel->table, change.rel->columns[i].name, c.text});
      }
    }
  }
  first_probe.push_back(probes.size());
  std::vector<InstanceId>& found = scratch_found_;
  std::vector<size_t>& ends = scratch_ends_;
  found.clear();
  ends.clear();
  if (!probes.empty()) source_->CandidatesByValues(probes, &found, &ends);

  std::vector<InstanceId>& ids = scratch_ids_;
  for (size_t k = 0; k < pending.size(); ++k) {
    const RowChange& change = pending[k];
    ids.clear();
    const bool unknown = HasUnknownImage(change);
    if (unknown) {
      source_->InstancesReading(change.rel->table, &ids);
    } else if (first_probe[k] < first_probe[k + 1]) {
      size_t begin = first_probe[k] == 0 ? 0 : ends[first_probe[k] - 1];
      size_t end = ends[first_probe[k + 1] - 1];
      ids.assign(found.begin() + static_cast<std::ptrdiff_t>(begin),
                 found.begin() + static_cast<std::ptrdiff_t>(end));
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    EvaluateCandidates(change, ids, unknown);
  }
  pending.clear();
}

void ChangeProcessor::EvaluateCandidates(const RowChange& change,
                                         const std::vector<InstanceId>& ids, bool unknown) {
  const std::string& table = change.rel->table;
  // The table's unindexed instances are candidates for every change to it:
  // keep them resolved between changes. An id is a hash of the shape and the
  // values, so a cached instance is the instance the id names; the id list
  // itself is fetched afresh every time.
  const UnindexedCache* unindexed = unknown ? nullptr : ResolveUnindexed(table);

  uint64_t evaluated = 0;
  // This change's row images in txn_.join_rows, stored on the first join check.
  int64_t join_rows_first = -1, join_rows_end = -1;
  const size_t n_indexed = ids.size();
  const size_t n_total = n_indexed + (unindexed ? unindexed->ids.size() : 0);
  for (size_t k = 0; k < n_total; ++k) {
    InstanceId id;
    std::shared_ptr<const sqlmap::QueryInstance> fetched;
    const std::shared_ptr<const sqlmap::QueryInstance>* instp;
    if (k < n_indexed) {
      id = ids[k];
      if (txn_.affected.count(id)) continue;
      fetched = source_->GetInstance(id);
      instp = &fetched;
    } else {
      id = unindexed->ids[k - n_indexed];
      instp = &unindexed->instances[k - n_indexed];
      if (txn_.affected.count(id)) continue;
    }
    const auto& inst = *instp;
    if (!inst) continue;
    ++evaluated;
    Evaluation ev = EvaluateChange(change, *inst, options_.eval);
    if (ev.impact == Impact::kAffected) {
      txn_.affected.insert(id);
    } else if (ev.impact == Impact::kJoinCheck) {
      // Bound what a huge transaction can make us hold: past these limits the
      // instance is ejected rather than polled.
      constexpr size_t kMaxPendingJoins = 10000;
      constexpr size_t kMaxChecksPerJoin = 64;
      constexpr size_t kMaxJoinRows = 4096;
      if (join_rows_first < 0) {
        if (txn_.join_rows.size() + 2 > kMaxJoinRows) {
          txn_.affected.insert(id);
          continue;
        }
        join_rows_first = static_cast<int64_t>(txn_.join_rows.size());
        if (change.old_row) txn_.join_rows.push_back(JoinRow{change.rel, *change.old_row});
        if (change.new_row) txn_.join_rows.push_back(JoinRow{change.rel, *change.new_row});
        join_rows_end = static_cast<int64_t>(txn_.join_rows.size());
      }
      auto [it, fresh] = txn_.join_index.try_emplace(id, txn_.joins.size());
      if (fresh) {
        if (txn_.joins.size() >= kMaxPendingJoins) {
          txn_.join_index.erase(it);
          txn_.affected.insert(id);
          continue;
        }
        txn_.joins.push_back(PendingJoin{id, inst, {}});
      }
      PendingJoin& pj = txn_.joins[it->second];
      for (int t : ev.join_tables) {
        for (int64_t r = join_rows_first; r < join_rows_end; ++r) {
          JoinCheck c{t, static_cast<uint32_t>(r)};
          if (std::find(pj.checks.begin(), pj.checks.end(), c) == pj.checks.end())
            pj.checks.push_back(c);
        }
      }
      if (pj.checks.size() > kMaxChecksPerJoin) txn_.affected.insert(id);  // SettleJoins skips it
    }
  }
  Count(&InvalidatorMetrics::candidates_evaluated, evaluated);
}

const ChangeProcessor::UnindexedCache* ChangeProcessor::ResolveUnindexed(const std::string& table) {
  std::vector<InstanceId>& now = scratch_unindexed_;
  now.clear();
  source_->UnindexedInstances(table, &now);
  auto [it, fresh] = unindexed_cache_.try_emplace(table);
  UnindexedCache& c = it->second;
  if (!fresh && c.reusable && c.ids == now) return &c;
  // Changed since the last change to this table: resolve what is new.
  std::unordered_map<InstanceId, std::shared_ptr<const sqlmap::QueryInstance>> old;
  for (size_t i = 0; i < c.ids.size(); ++i) old.emplace(c.ids[i], std::move(c.instances[i]));
  c.ids = now;
  c.instances.clear();
  c.instances.reserve(now.size());
  bool complete = true;
  for (InstanceId id : now) {
    auto o = old.find(id);
    c.instances.push_back(o != old.end() && o->second ? o->second : source_->GetInstance(id));
    complete = complete && c.instances.back() != nullptr;
  }
  // One that vanished between the two lookups may come back under the same
  // id with the list looking unchanged: never reuse a miss.
  c.reusable = complete;
  return &c;
}

Status ChangeProcessor::OnTruncate(const TruncateMessage& m) {
  // Held like row changes until the Commit is visible (wait_until_visible).
  const bool hold = WaitsForVisibility();
  if (!hold) FlushPending();  // evaluate the changes before it in order
  for (uint32_t relid : m.relids) {
    auto rel = relations_.Get(relid);
    Count(&InvalidatorMetrics::changes);
    if (!rel) {
      txn_.eject_all = true;
      txn_.eject_all_reason = "TRUNCATE of unknown relation " + std::to_string(relid);
      continue;
    }
    AddTable(&txn_.tables, rel->table);
    AddTable(&txn_.tables_not_insert_only, rel->table);
    if (hold) {
      txn_.held_truncates.push_back(rel->table);
    } else {
      TruncateTable(rel->table);
    }
  }
  return Status::OK();
}

void ChangeProcessor::TruncateTable(const std::string& table) {
  size_t tainted = source_->TaintMatching(table, [](const sqlmap::QueryInstance&) { return true; });
  if (tainted) Count(&InvalidatorMetrics::tainted_requests, tainted);
  std::vector<InstanceId> ids;
  source_->InstancesReading(table, &ids);
  Count(&InvalidatorMetrics::candidates_evaluated, ids.size());
  txn_.affected.insert(ids.begin(), ids.end());
}

// Join checks of one template, changed table and relation: they share partner polls.
struct ChangeProcessor::JoinGroup {
  std::shared_ptr<const sqlmap::QueryTemplate> tmpl;
  int table = 0;
  std::shared_ptr<const Relation> rel;
  std::vector<uint32_t> rows;   // indexes into txn_.join_rows, ascending
  std::vector<size_t> members;  // indexes into txn_.joins
};

namespace {
// Per pending join: kNo once it is in a group and while every poll said "no".
enum : uint8_t { kUndecided = 0, kNo = 1, kYes = 2 };
constexpr size_t kMaxPartners = 1000;
constexpr size_t kMaxProbesPerQuery = 32;
constexpr size_t kMaxProbeParams = 4096;
}  // namespace

// This member's rows of the group, as positions within `chunk`.
void ChangeProcessor::RowsIn(const JoinGroup& g, size_t member, std::span<const uint32_t> chunk,
                             std::vector<uint32_t>* out) const {
  out->clear();
  for (const auto& [t, r] : txn_.joins[member].checks) {
    if (t != g.table || txn_.join_rows[r].rel != g.rel) continue;
    auto it = std::lower_bound(chunk.begin(), chunk.end(), r);
    if (it != chunk.end() && *it == r) out->push_back(static_cast<uint32_t>(it - chunk.begin()));
  }
}

// One partner poll to run: a group's chunk of rows and the instances it decides.
struct ChangeProcessor::GroupPoll {
  const JoinGroup* group = nullptr;
  std::span<const uint32_t> chunk;
  std::vector<size_t> members;
  std::vector<const Row*> rows;
  std::optional<PartnerPoll> poll;
};

void ChangeProcessor::PollGroups(const std::vector<JoinGroup>& groups, std::vector<uint8_t>* state,
                                 std::vector<Lsn>* until,
                                 const std::function<bool()>& budget_spent) {
  auto eject = [&](size_t member) { (*state)[member] = kYes; };
  auto failed = [&](const Status& s, std::span<const size_t> members) {
    Count(&InvalidatorMetrics::poll_errors);
    if (s.IsTimedOut()) Count(&InvalidatorMetrics::poll_timeouts);
    log::Warn("invalidator", "join poll failed, ejecting",
              {{"error", s.ToString()}, {"instances", std::to_string(members.size())}});
    for (size_t m : members) eject(m);
  };
  std::vector<uint32_t> mine;
  // Every partner poll of the transaction is built first, then sent
  // pipelined (one round trip per kPipeline queries instead of one each).
  std::vector<GroupPoll> polls;
  for (const auto& g : groups) {
    for (size_t first = 0; first < g.rows.size(); first += PartnerPoll::kMaxRows) {
      GroupPoll gp;
      gp.group = &g;
      gp.chunk = std::span<const uint32_t>(g.rows.data() + first,
                                           std::min(PartnerPoll::kMaxRows, g.rows.size() - first));
      for (size_t m : g.members) {
        if ((*state)[m] == kYes) continue;
        RowsIn(g, m, gp.chunk, &mine);
        if (!mine.empty()) gp.members.push_back(m);
      }
      if (gp.members.empty()) continue;
      for (uint32_t r : gp.chunk) gp.rows.push_back(&txn_.join_rows[r].row);
      auto poll = PartnerPoll::Build(g.tmpl, g.table, *g.rel, gp.rows, kMaxPartners);
      if (!poll.ok()) {
        log::Debug("invalidator", "join poll not possible, ejecting",
                   {{"reason", poll.status().message()}});
        for (size_t m : gp.members) eject(m);
        continue;
      }
      gp.poll.emplace(std::move(poll).value());
      polls.push_back(std::move(gp));
    }
  }
  constexpr size_t kPipeline = 16;
  std::vector<const PollQuery*> queries;
  for (size_t first = 0; first < polls.size(); first += kPipeline) {
    const size_t last = std::min(polls.size(), first + kPipeline);
    if (budget_spent()) {
      for (size_t i = first; i < last; ++i) {
        Count(&InvalidatorMetrics::polls_skipped, polls[i].members.size());
        for (size_t m : polls[i].members) eject(m);
      }
      continue;
    }
    queries.clear();
    for (size_t i = first; i < last; ++i) {
      queries.push_back(&polls[i].poll->query());
      Count(&InvalidatorMetrics::polling_queries);
      Count(&InvalidatorMetrics::poll_instances, polls[i].members.size());
    }
    std::vector<Result<PollRows>> answers = poller_->QueryAll(queries, budget_spent);
    for (size_t i = first; i < last; ++i) {
      GroupPoll& gp = polls[i];
      const Result<PollRows>& answer = answers[i - first];
      Status read = answer.ok() ? gp.poll->Read(*answer) : answer.status();
      if (read.IsTryAgain()) {  // the budget ran out before its answer
        Count(&InvalidatorMetrics::polls_skipped, gp.members.size());
        for (size_t m : gp.members) eject(m);
        continue;
      }
      if (!read.ok()) {
        failed(read, gp.members);
        continue;
      }
      if (!gp.poll->overflowed()) {
        for (size_t m : gp.members) {
          RowsIn(*gp.group, m, gp.chunk, &mine);
          if (gp.poll->Matches(*txn_.joins[m].instance, mine, options_.eval)) {
            eject(m);
          } else {
            (*until)[m] = std::max((*until)[m], gp.poll->wal_lsn());
          }
        }
        continue;
      }
      Count(&InvalidatorMetrics::poll_overflows);
      ProbeOverflow(gp, state, until, budget_spent);
    }
  }
}

// Too many partners to fetch: ask each instance's own EXISTS, batched.
void ChangeProcessor::ProbeOverflow(const GroupPoll& gp, std::vector<uint8_t>* state,
                                    std::vector<Lsn>* until,
                                    const std::function<bool()>& budget_spent) {
  auto eject = [&](size_t member) { (*state)[member] = kYes; };
  const JoinGroup& g = *gp.group;
  const std::vector<size_t>& members = gp.members;
  std::vector<uint32_t> mine;
  for (size_t i = 0; i < members.size();) {
    if (budget_spent()) {
      Count(&InvalidatorMetrics::polls_skipped, members.size() - i);
      for (; i < members.size(); ++i) eject(members[i]);
      break;
    }
    ProbeBatch batch;
    std::vector<size_t> in_batch;
    for (; i < members.size() && batch.size() < kMaxProbesPerQuery &&
           batch.params() < kMaxProbeParams;
         ++i) {
      if ((*state)[members[i]] == kYes) continue;
      RowsIn(g, members[i], gp.chunk, &mine);
      std::vector<const Row*> rows;
      for (uint32_t k : mine) rows.push_back(gp.rows[k]);
      if (Status s = batch.Add(*txn_.joins[members[i]].instance, g.table, *g.rel, rows); !s.ok()) {
        eject(members[i]);
        continue;
      }
      in_batch.push_back(members[i]);
    }
    if (in_batch.empty()) continue;
    Count(&InvalidatorMetrics::polling_queries);
    Count(&InvalidatorMetrics::poll_instances, in_batch.size());
    auto a = poller_->Query(batch.Finish());
    Lsn lsn = 0;
    Result<std::vector<bool>> joined =
        a.ok() ? batch.Read(*a, &lsn) : Result<std::vector<bool>>(a.status());
    if (!joined.ok()) {
      Count(&InvalidatorMetrics::poll_errors);
      if (joined.status().IsTimedOut()) Count(&InvalidatorMetrics::poll_timeouts);
      log::Warn(
          "invalidator", "join probe failed, ejecting",
          {{"error", joined.status().ToString()}, {"instances", std::to_string(in_batch.size())}});
      for (size_t m : in_batch) eject(m);
      continue;
    }
    for (size_t k = 0; k < in_batch.size(); ++k) {
      if ((*joined)[k])
        eject(in_batch[k]);
      else
        (*until)[in_batch[k]] = std::max((*until)[in_batch[k]], lsn);
    }
  }
}

void ChangeProcessor::SettleJoins(const CommitMessage& m, Lsn hold_at) {
  const int64_t started = now_();
  const bool behind = options_.skip_polls_lag_seconds > 0 &&
                      started - PgTimeToUnixMicros(m.commit_time) >
                          static_cast<int64_t>(options_.skip_polls_lag_seconds * 1e6);
  const bool polling = options_.poll_joins && poller_ != nullptr;
  std::vector<uint8_t> state(txn_.joins.size(), kUndecided);
  std::vector<Lsn> until(txn_.joins.size(), 0);
  std::vector<JoinGroup> groups;
  for (size_t i = 0; i < txn_.joins.size(); ++i) {
    auto& pj = txn_.joins[i];
    if (txn_.affected.count(pj.id)) {
      state[i] = kYes;
      continue;
    }
    const auto& tmpl = *pj.instance->tmpl;
    if (!polling) {
      state[i] = kYes;
      continue;
    }
    if (behind) {
      Count(&InvalidatorMetrics::polls_skipped);
      state[i] = kYes;
      continue;
    }
    // The poll sees the database after this commit (OnCommit waited until
    // the commit is visible, see ProcessorOptions::wait_until_visible): if
    // this transaction also updated or deleted rows of a table the poll reads
    // (every table of the template but the one whose row it joins), a
    // pre-commit partner may be gone. Rows it only inserted are visible to
    // the poll, and any result row they create contains one of them, so
    // inserts (a checkout adding an order and its lines) still poll
    // precisely — unless visibility could not be confirmed.
    bool conservative = txn_.visibility_unknown;
    for (size_t u = 0; u < tmpl.tables.size() && !conservative; ++u) {
      if (!HasTable(txn_.tables_not_insert_only, tmpl.tables[u].table)) continue;
      conservative = std::any_of(pj.checks.begin(), pj.checks.end(),
                                 [u](const JoinCheck& c) { return c.first != int(u); });
    }
    if (conservative) {
      state[i] = kYes;
      continue;
    }
    for (const auto& [t, r] : pj.checks) {
      const auto& rel = txn_.join_rows[r].rel;
      auto g = std::find_if(groups.begin(), groups.end(), [&](const JoinGroup& x) {
        return x.tmpl == pj.instance->tmpl && x.table == t && x.rel == rel;
      });
      if (g == groups.end()) {
        groups.push_back(JoinGroup{pj.instance->tmpl, t, rel, {}, {}});
        g = groups.end() - 1;
      }
      g->rows.push_back(r);
      state[i] = kNo;  // until a poll says otherwise
      if (g->members.empty() || g->members.back() != i) g->members.push_back(i);
    }
  }
  auto budget_spent = [&] {
    return options_.poll_budget_seconds > 0 &&
           now_() - started >= static_cast<int64_t>(options_.poll_budget_seconds * 1e6);
  };
  for (auto& g : groups) {
    std::sort(g.rows.begin(), g.rows.end());
    g.rows.erase(std::unique(g.rows.begin(), g.rows.end()), g.rows.end());
  }
  PollGroups(groups, &state, &until, budget_spent);
  for (size_t i = 0; i < txn_.joins.size(); ++i) {
    const auto& pj = txn_.joins[i];
    if (state[i] == kYes || state[i] == kUndecided) {
      // Undecided: polling was off or no check reached a poll.
      txn_.affected.insert(pj.id);
      continue;
    }
    if (until[i] > m.end_lsn) {
      Guard g{pj.id, {}, until[i], hold_at};
      for (const auto& ref : pj.instance->tmpl->tables) g.tables.push_back(ref.table);
      guards_.push_back(std::move(g));
    }
  }
}

Status ChangeProcessor::EjectKeys(std::vector<std::string>* keys) {
  std::sort(keys->begin(), keys->end());
  keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
  if (keys->empty()) return Status::OK();
  Status s;
  const int64_t t0 = now_();
  for (int attempt = 0; attempt < std::max(1, options_.eject_attempts); ++attempt) {
    Count(&InvalidatorMetrics::eject_calls);
    s = ejector_->Eject(*keys);
    if (s.ok()) break;
    Count(&InvalidatorMetrics::eject_failures);
  }
  if (!s.ok()) return Status::TryAgain("ejection not confirmed: " + s.ToString());
  Count(&InvalidatorMetrics::ejected_keys, keys->size());
  const int64_t t1 = now_();
  if (Status r = source_->RemoveKeys(*keys); !r.ok())
    log::Warn("invalidator",
              "map RemoveKeys failed (keys stay mapped; a later change ejects them again)",
              {{"error", r.ToString()}});
  eject_us_ = t1 - t0;
  remove_us_ = now_() - t1;
  return Status::OK();
}

Status ChangeProcessor::EjectEverything(const std::string& reason) {
  log::Warn("invalidator", "ejecting every cached page", {{"reason", reason}});
  Count(&InvalidatorMetrics::eject_all);
  size_t tainted = source_->TaintAll();
  if (tainted) Count(&InvalidatorMetrics::tainted_requests, tainted);
  Status s = ejector_->EjectAll();
  if (!s.ok()) {
    Count(&InvalidatorMetrics::eject_failures);
    Publish();
    return Status::TryAgain("EjectAll not confirmed: " + s.ToString());
  }
  if (Status c = source_->Clear(); !c.ok())
    log::Warn("invalidator", "map Clear failed", {{"error", c.ToString()}});
  guards_.clear();
  Publish();
  return Status::OK();
}

Status ChangeProcessor::OnCommit(const CommitMessage& m) {
  if (WaitsForVisibility() &&
      (!txn_.pending.empty() || !txn_.held_truncates.empty() || txn_.eject_all) &&
      m.end_lsn > applied_) {
    if (WaitUntilVisible(txn_.xid)) {
      for (const RowChange& change : txn_.pending) TaintInFlight(change);
    } else {
      // Not known to be visible: any request in flight may read the old
      // rows, and a join poll may not see the new ones.
      txn_.visibility_unknown = true;
      size_t n = source_->TaintAll();
      if (n) Count(&InvalidatorMetrics::tainted_requests, n);
      log::Warn("invalidator", "commit not visible in time; every in-flight request tainted",
                {{"xid", std::to_string(txn_.xid)}});
    }
  }
  for (const auto& table : txn_.held_truncates) TruncateTable(table);
  FlushPending();
  Txn txn = std::move(txn_);
  txn_ = Txn{};
  if (m.end_lsn <= applied_) {
    // Replayed after a reconnect: its ejections were done before.
    Count(&InvalidatorMetrics::replayed_transactions);
    return Status::OK();
  }
  const Lsn hold_at = ConfirmableLsn();
  // Provisional poll answers overturned by this commit (it ran before the poll's snapshot).
  for (const auto& g : guards_) {
    if (m.commit_lsn >= g.until) continue;
    for (const auto& t : g.tables) {
      if (HasTable(txn.tables, t)) {
        if (txn.affected.insert(g.id).second) Count(&InvalidatorMetrics::poll_guard_ejections);
        break;
      }
    }
  }
  const size_t guards_before = guards_.size();
  const int64_t settle_start = now_();
  std::swap(txn_, txn);  // SettleJoins works on txn_
  SettleJoins(m, hold_at);
  std::swap(txn_, txn);
  const int64_t settle_us = now_() - settle_start;
  eject_us_ = remove_us_ = 0;

  std::vector<std::string>& keys = scratch_keys_;
  keys.clear();
  if (txn.eject_all) {
    if (Status s = EjectEverything(txn.eject_all_reason); !s.ok()) return s;
  } else {
    for (InstanceId id : txn.affected) source_->KeysOfInstance(id, &keys);
    size_t direct = keys.size();
    for (size_t i = 0; i < direct; ++i) {
      scratch_key_ = keys[i];  // ParentsOf appends to `keys`
      source_->ParentsOf(scratch_key_, &keys);
    }
    if (Status s = EjectKeys(&keys); !s.ok()) {
      // The transaction will be replayed: its provisional answers go with it.
      guards_.resize(guards_before);
      return s;
    }
  }
  // An operator's clue when the stream falls behind: which step was slow.
  if (settle_us + eject_us_ + remove_us_ > 250'000)
    log::Warn("invalidator", "slow commit",
              {{"join_polls_ms", std::to_string(settle_us / 1000)},
               {"eject_ms", std::to_string(eject_us_ / 1000)},
               {"map_remove_ms", std::to_string(remove_us_ / 1000)},
               {"keys", std::to_string(keys.size())},
               {"changes", std::to_string(txn.changes)}});
  applied_ = m.end_lsn;
  std::erase_if(guards_, [&m](const Guard& g) { return g.until <= m.end_lsn; });
  last_commit_unix_us_ = PgTimeToUnixMicros(m.commit_time);
  Count(&InvalidatorMetrics::transactions);
  {
    std::lock_guard lock(mu_);
    if (!txn.eject_all && !keys.empty())
      metrics_.latency.Record(now_() - PgTimeToUnixMicros(m.commit_time));
    for (size_t i = 0; i < unpublished_n_; ++i)
      metrics_.*unpublished_[i].first += unpublished_[i].second;
    unpublished_n_ = 0;
  }
  if (options_.persist_interval_seconds <= 0 ||
      now_() - last_persist_us_ >= options_.persist_interval_seconds * 1e6)
    PersistPosition();
  return Status::OK();
}

void ChangeProcessor::PersistPosition() {
  Lsn c = ConfirmableLsn();
  if (c == persisted_) return;
  if (Status s = source_->SetAppliedLsn(c); !s.ok()) {
    // Not fatal: the stored position only lets a restart skip replays.
    log::Warn("invalidator", "storing the applied LSN failed", {{"error", s.ToString()}});
    return;
  }
  persisted_ = c;
  last_persist_us_ = now_();
}

}  // namespace cacheportal::invalidator

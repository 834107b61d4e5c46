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

bool HasUnknown(const Row& row) {
  for (const auto& c : row)
    if (c.state == Cell::State::kUnknown) return true;
  return false;
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
  metrics_.applied_lsn = applied_;
}

void ChangeProcessor::Count(uint64_t InvalidatorMetrics::*field, uint64_t n) {
  std::lock_guard lock(mu_);
  metrics_.*field += n;
}

InvalidatorMetrics ChangeProcessor::Metrics() const {
  std::lock_guard lock(mu_);
  return metrics_;
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
  return std::visit(
      [this](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BeginMessage>) {
          if (txn_.open) return Status::Corruption("pgoutput: Begin inside an open transaction");
          txn_ = Txn{};
          txn_.open = true;
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
  txn_.tables.insert(table);
  if (change.kind != RowChange::Kind::kInsert) txn_.tables_not_insert_only.insert(table);
  Count(&InvalidatorMetrics::changes);

  // In-flight requests first (see common/page_registrar.h for why the order matters).
  size_t tainted = source_->TaintMatching(table, [&](const sqlmap::QueryInstance& inst) {
    return EvaluateChange(change, inst, options_.eval).impact != Impact::kNone;
  });
  if (tainted) Count(&InvalidatorMetrics::tainted_requests, tainted);

  std::vector<InstanceId>& ids = scratch_ids_;
  ids.clear();
  bool unknown = (change.old_row && HasUnknown(*change.old_row)) ||
                 (change.new_row && HasUnknown(*change.new_row));
  if (unknown) {
    source_->InstancesReading(table, &ids);
  } else {
    // Only columns something is indexed on need a lookup, when the source can tell.
    std::vector<int>& cols = scratch_cols_;
    cols.clear();
    scratch_names_.clear();
    if (source_->IndexedColumns(table, &scratch_names_)) {
      for (const auto& name : scratch_names_)
        if (int i = change.rel->Find(name); i >= 0) cols.push_back(i);
    } else {
      for (size_t i = 0; i < change.rel->columns.size(); ++i) cols.push_back(static_cast<int>(i));
    }
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
        source_->CandidatesByValue(table, change.rel->columns[i].name, c.text, &ids);
      }
    }
    source_->UnindexedInstances(table, &ids);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  uint64_t evaluated = 0;
  for (InstanceId id : ids) {
    if (txn_.affected.count(id)) continue;
    auto inst = source_->GetInstance(id);
    if (!inst) continue;
    ++evaluated;
    Evaluation ev = EvaluateChange(change, *inst, options_.eval);
    if (ev.impact == Impact::kAffected) {
      txn_.affected.insert(id);
    } else if (ev.impact == Impact::kJoinCheck) {
      // Bound what a huge transaction can make us hold: past these limits the
      // instance is ejected rather than polled.
      constexpr size_t kMaxPendingJoins = 10000;
      constexpr size_t kMaxRowsPerJoin = 64;
      if (txn_.joins.size() >= kMaxPendingJoins) {
        txn_.affected.insert(id);
        continue;
      }
      auto [it, fresh] = txn_.join_index.try_emplace(id, txn_.joins.size());
      if (fresh) txn_.joins.push_back(PendingJoin{id, inst, change.rel, {}, {}});
      PendingJoin& pj = txn_.joins[it->second];
      if (pj.rel != change.rel || pj.rows.size() + 2 > kMaxRowsPerJoin) {
        txn_.affected.insert(id);  // SettleJoins skips instances already affected
        continue;
      }
      for (int t : ev.join_tables)
        if (std::find(pj.tables.begin(), pj.tables.end(), t) == pj.tables.end())
          pj.tables.push_back(t);
      if (change.old_row) pj.rows.push_back(*change.old_row);
      if (change.new_row) pj.rows.push_back(*change.new_row);
    }
  }
  Count(&InvalidatorMetrics::candidates_evaluated, evaluated);
  return Status::OK();
}

Status ChangeProcessor::OnTruncate(const TruncateMessage& m) {
  for (uint32_t relid : m.relids) {
    auto rel = relations_.Get(relid);
    Count(&InvalidatorMetrics::changes);
    if (!rel) {
      txn_.eject_all = true;
      txn_.eject_all_reason = "TRUNCATE of unknown relation " + std::to_string(relid);
      continue;
    }
    txn_.tables.insert(rel->table);
    txn_.tables_not_insert_only.insert(rel->table);
    size_t tainted =
        source_->TaintMatching(rel->table, [](const sqlmap::QueryInstance&) { return true; });
    if (tainted) Count(&InvalidatorMetrics::tainted_requests, tainted);
    std::vector<InstanceId> ids;
    source_->InstancesReading(rel->table, &ids);
    Count(&InvalidatorMetrics::candidates_evaluated, ids.size());
    txn_.affected.insert(ids.begin(), ids.end());
  }
  return Status::OK();
}

void ChangeProcessor::SettleJoins(const CommitMessage& m, Lsn hold_at) {
  const int64_t started = now_();
  const bool behind = options_.skip_polls_lag_seconds > 0 &&
                      started - PgTimeToUnixMicros(m.commit_time) >
                          static_cast<int64_t>(options_.skip_polls_lag_seconds * 1e6);
  for (auto& pj : txn_.joins) {
    if (txn_.affected.count(pj.id)) continue;
    const auto& tmpl = *pj.instance->tmpl;
    bool conservative = !options_.poll_joins || poller_ == nullptr;
    if (!conservative &&
        (behind ||
         (options_.poll_budget_seconds > 0 &&
          now_() - started >= static_cast<int64_t>(options_.poll_budget_seconds * 1e6)))) {
      Count(&InvalidatorMetrics::polls_skipped);
      txn_.affected.insert(pj.id);
      continue;
    }
    // The poll sees the database after this commit: if this transaction also
    // updated or deleted rows of another table of the join, the pre-commit
    // partner may be gone. Rows it only inserted are visible to the poll, and
    // any result row they create contains one of them, so inserts (a checkout
    // adding an order and its lines) still poll precisely.
    if (!conservative) {
      for (size_t i = 0; i < tmpl.tables.size() && !conservative; ++i) {
        bool is_changed = std::find(pj.tables.begin(), pj.tables.end(), int(i)) != pj.tables.end();
        if (!is_changed && txn_.tables_not_insert_only.count(tmpl.tables[i].table))
          conservative = true;
      }
    }
    if (conservative) {
      txn_.affected.insert(pj.id);
      continue;
    }
    std::vector<const Row*> rows;
    for (const auto& r : pj.rows) rows.push_back(&r);
    bool affected = false;
    Lsn until = 0;
    for (int t : pj.tables) {
      auto q = BuildJoinPoll(*pj.instance, t, *pj.rel, rows);
      if (!q.ok()) {
        log::Debug("invalidator", "join poll not possible, ejecting",
                   {{"reason", q.status().message()}});
        affected = true;
        break;
      }
      Count(&InvalidatorMetrics::polling_queries);
      auto a = poller_->Poll(*q);
      if (!a.ok()) {
        Count(&InvalidatorMetrics::poll_errors);
        if (a.status().IsTimedOut()) Count(&InvalidatorMetrics::poll_timeouts);
        log::Warn("invalidator", "join poll failed, ejecting", {{"error", a.status().ToString()}});
        affected = true;
        break;
      }
      if (a->exists) {
        affected = true;
        break;
      }
      until = std::max(until, a->wal_lsn);
    }
    if (affected) {
      txn_.affected.insert(pj.id);
      continue;
    }
    if (until > m.end_lsn) {
      Guard g{pj.id, {}, until, hold_at};
      for (const auto& ref : tmpl.tables) g.tables.push_back(ref.table);
      guards_.push_back(std::move(g));
    }
  }
}

Status ChangeProcessor::EjectKeys(std::vector<std::string>* keys) {
  std::sort(keys->begin(), keys->end());
  keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
  if (keys->empty()) return Status::OK();
  Status s;
  for (int attempt = 0; attempt < std::max(1, options_.eject_attempts); ++attempt) {
    Count(&InvalidatorMetrics::eject_calls);
    s = ejector_->Eject(*keys);
    if (s.ok()) break;
    Count(&InvalidatorMetrics::eject_failures);
  }
  if (!s.ok()) return Status::TryAgain("ejection not confirmed: " + s.ToString());
  Count(&InvalidatorMetrics::ejected_keys, keys->size());
  if (Status r = source_->RemoveKeys(*keys); !r.ok())
    log::Warn("invalidator",
              "map RemoveKeys failed (keys stay mapped; a later change ejects them again)",
              {{"error", r.ToString()}});
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
    return Status::TryAgain("EjectAll not confirmed: " + s.ToString());
  }
  if (Status c = source_->Clear(); !c.ok())
    log::Warn("invalidator", "map Clear failed", {{"error", c.ToString()}});
  guards_.clear();
  return Status::OK();
}

Status ChangeProcessor::OnCommit(const CommitMessage& m) {
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
      if (txn.tables.count(t)) {
        if (txn.affected.insert(g.id).second) Count(&InvalidatorMetrics::poll_guard_ejections);
        break;
      }
    }
  }
  const size_t guards_before = guards_.size();
  std::swap(txn_, txn);  // SettleJoins works on txn_
  SettleJoins(m, hold_at);
  std::swap(txn_, txn);

  if (txn.eject_all) {
    if (Status s = EjectEverything(txn.eject_all_reason); !s.ok()) return s;
  } else {
    std::vector<std::string> keys;
    for (InstanceId id : txn.affected) source_->KeysOfInstance(id, &keys);
    size_t direct = keys.size();
    for (size_t i = 0; i < direct; ++i) {
      std::string key = keys[i];  // ParentsOf appends to `keys`
      source_->ParentsOf(key, &keys);
    }
    if (Status s = EjectKeys(&keys); !s.ok()) {
      // The transaction will be replayed: its provisional answers go with it.
      guards_.resize(guards_before);
      return s;
    }
    if (!keys.empty()) {
      std::lock_guard lock(mu_);
      metrics_.latency.Record(now_() - PgTimeToUnixMicros(m.commit_time));
    }
  }
  applied_ = m.end_lsn;
  std::erase_if(guards_, [&m](const Guard& g) { return g.until <= m.end_lsn; });
  last_commit_unix_us_ = PgTimeToUnixMicros(m.commit_time);
  {
    std::lock_guard lock(mu_);
    ++metrics_.transactions;
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
  std::lock_guard lock(mu_);
  metrics_.applied_lsn = c;
}

}  // namespace cacheportal::invalidator

#include "invalidator/replication.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/pg.h"
#include "invalidator/change_processor.h"
#include "invalidator/join_poll.h"
#include "invalidator/pgoutput.h"
#include "invalidator/staleness_watchdog.h"

namespace cacheportal::invalidator {
namespace {

constexpr const char* kPart = "invalidator";
using Clock = std::chrono::steady_clock;

int64_t NowUnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string QuoteIdent(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string QuoteTable(std::string_view qualified) {
  size_t dot = qualified.find('.');
  if (dot == std::string_view::npos) return QuoteIdent(qualified);
  return QuoteIdent(qualified.substr(0, dot)) + "." + QuoteIdent(qualified.substr(dot + 1));
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Value(const pg::ResultPtr& r, int row, int col) {
  if (PQntuples(r.get()) <= row || PQgetisnull(r.get(), row, col)) return "";
  return PQgetvalue(r.get(), row, col);
}

// Connection with replication=database, whatever form the conninfo has.
Result<pg::ConnPtr> ConnectReplication(const std::string& conninfo) {
  const char* keys[] = {"dbname", "replication", "application_name", nullptr};
  const char* vals[] = {conninfo.c_str(), "database", "cacheportal-invalidator", nullptr};
  pg::ConnPtr c(PQconnectdbParams(keys, vals, /*expand_dbname=*/1));
  if (!c) return Status::Unavailable("libpq could not allocate a connection");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    std::string msg = Trimmed(PQerrorMessage(c.get()));
    if (msg.find("no pg_hba.conf entry for replication") != std::string::npos)
      return Status::InvalidArgument(
          "replication connection refused: " + msg +
          " (add a pg_hba.conf line for the 'replication' pseudo-database)");
    if (msg.find("must be superuser or replication role") != std::string::npos ||
        msg.find("permission denied to start WAL sender") != std::string::npos)
      return Status::InvalidArgument("the role lacks the REPLICATION attribute: " + msg);
    return Status::Unavailable("cannot open a replication connection: " + msg);
  }
  return c;
}

// Whether a walsender idling at `wal_end` has sent everything below
// `target`. An idle walsender stops at the end of the last record; when that
// record filled its page, the next insert position lies one page header
// further (24 bytes, or 40 at a segment start), with nothing in between.
bool ReachedTarget(Lsn wal_end, Lsn target) {
  constexpr Lsn kPage = 8192, kLongPageHeader = 40;
  if (wal_end >= target) return true;
  Lsn page_start = target - target % kPage;
  return target % kPage <= kLongPageHeader && wal_end >= page_start;
}

}  // namespace

struct Invalidator::Impl {
  InvalidatorDeps deps;
  std::vector<std::string> tables;
  std::string database;
  std::unique_ptr<PgJoinPoller> poller;
  std::unique_ptr<ChangeProcessor> processor;
  // Decides SetVouched on its own thread; the stream only reports to it.
  std::unique_ptr<StalenessWatchdog> watchdog;

  std::thread thread;
  std::thread stats_thread;
  std::atomic<bool> stop{false};
  std::atomic<bool> kill{false};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;

  // Stream state: stream thread only.
  pg::ConnPtr repl;
  Lsn server_wal_end = 0;
  Lsn catch_up_target = 0;
  bool caught_up = false;
  int stable_keepalives = 0;
  Lsn last_keepalive_end = 0;
  Lsn last_sent_flush = 0;
  bool pending_eject_all = false;
  bool first_connect = true;
  bool force_recreate = false;
  int64_t lag_commit_unix_us = 0;  // commit time of the oldest unprocessed work, 0 = none
  Clock::time_point last_status{};
  Clock::time_point last_server_msg{};

  mutable std::mutex metrics_mu;
  InvalidatorMetrics extra;  // the fields the stream owns (connected, lag, …)

  double StatusInterval() const {
    double s = std::max(1, deps.options.status_interval_seconds);
    // Ask the server for a reply often enough to notice silence within max_staleness.
    return std::min(s, std::max(0.2, deps.options.max_staleness_seconds / 2));
  }

  // The longest a live server stays silent: the stream asks for a reply
  // every StatusInterval().
  double MaxSilence() const {
    return std::max(deps.options.max_staleness_seconds, 2 * StatusInterval());
  }

  // Join polls must not eat the staleness budget: each poll gets a quarter
  // of it at most (and never more than 2 s), and so do all polls of one
  // transaction together; past that, joins are ejected conservatively.
  int PollTimeoutMs() const {
    double ms = std::min(2000.0, deps.options.max_staleness_seconds * 1000 / 4);
    return std::max(10, static_cast<int>(ms));
  }

  void SetConnected(bool c) {
    std::lock_guard lock(metrics_mu);
    extra.connected = c;
  }

  void SetError(const std::string& e) {
    std::lock_guard lock(metrics_mu);
    extra.last_error = e;
  }

  void SleepFor(double seconds) {
    std::unique_lock lock(sleep_mu);
    sleep_cv.wait_for(lock, std::chrono::duration<double>(seconds),
                      [this] { return stop.load() || kill.load(); });
  }

  // ---- setup ----

  Status CheckServer(PGconn* c) {
    auto wl = pg::Exec(c, "SHOW wal_level");
    if (!wl.ok()) return wl.status();
    std::string level = Value(*wl, 0, 0);
    if (level != "logical")
      return Status::InvalidArgument(
          "wal_level is '" + level +
          "': the invalidator needs wal_level=logical in postgresql.conf "
          "(and a server restart)");
    auto role = pg::Exec(c,
                         "SELECT rolreplication OR rolsuper, current_user, current_database(), "
                         "(SELECT datcollate FROM pg_database WHERE datname = current_database()) "
                         "FROM pg_roles WHERE rolname = current_user");
    if (!role.ok()) return role.status();
    std::string user = Value(*role, 0, 1);
    if (Value(*role, 0, 0) != "t")
      return Status::InvalidArgument("role '" + user +
                                     "' lacks the REPLICATION attribute needed for logical "
                                     "replication: ALTER ROLE " +
                                     QuoteIdent(user) + " REPLICATION (or connect as a superuser)");
    database = Value(*role, 0, 2);
    std::string coll = Value(*role, 0, 3);
    deps_eval_bytewise = coll == "C" || coll == "POSIX" || coll == "C.UTF-8" || coll == "C.utf8";
    return Status::OK();
  }
  bool deps_eval_bytewise = false;

  Status ResolveTables(PGconn* c) {
    std::vector<std::string> wanted;
    if (deps.options.tables.empty()) {
      auto r = pg::Exec(c,
                        "SELECT schemaname || '.' || tablename FROM pg_tables "
                        "WHERE schemaname = 'public' ORDER BY 1");
      if (!r.ok()) return r.status();
      for (int i = 0; i < PQntuples(r->get()); ++i) {
        std::string t = PQgetvalue(r->get(), i, 0);
        if (std::find(deps.exclude_tables.begin(), deps.exclude_tables.end(), t) ==
            deps.exclude_tables.end())
          wanted.push_back(t);
      }
    } else {
      for (std::string t : deps.options.tables) {
        if (t.find('.') == std::string::npos) t = "public." + t;
        wanted.push_back(t);
      }
    }
    if (wanted.empty())
      return Status::InvalidArgument(
          "no tables to monitor: invalidator.tables is empty and schema public has no tables");
    for (const auto& t : wanted) {
      auto r = pg::ExecParams(c, "SELECT to_regclass($1) IS NOT NULL", {QuoteTable(t).c_str()});
      if (!r.ok()) return r.status();
      if (Value(*r, 0, 0) != "t")
        return Status::InvalidArgument("monitored table '" + t + "' does not exist");
    }
    tables = std::move(wanted);
    return Status::OK();
  }

  Status EnsurePublication(PGconn* c) {
    const std::string& pub = deps.options.publication_name;
    auto exists =
        pg::ExecParams(c, "SELECT 1 FROM pg_publication WHERE pubname = $1", {pub.c_str()});
    if (!exists.ok()) return exists.status();
    if (PQntuples(exists->get()) == 0) {
      std::string sql = "CREATE PUBLICATION " + QuoteIdent(pub) + " FOR TABLE ";
      for (size_t i = 0; i < tables.size(); ++i) sql += (i ? ", " : "") + QuoteTable(tables[i]);
      auto r = pg::Exec(c, sql);
      if (!r.ok())
        return Status::InvalidArgument("cannot create publication " + pub + ": " +
                                       r.status().message());
      log::Info(kPart, "created publication",
                {{"publication", pub}, {"tables", std::to_string(tables.size())}});
      return Status::OK();
    }
    auto have = pg::ExecParams(c,
                               "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                               "WHERE pubname = $1",
                               {pub.c_str()});
    if (!have.ok()) return have.status();
    std::vector<std::string> present;
    for (int i = 0; i < PQntuples(have->get()); ++i)
      present.push_back(PQgetvalue(have->get(), i, 0));
    for (const auto& t : tables) {
      if (std::find(present.begin(), present.end(), t) != present.end()) continue;
      auto r = pg::Exec(c, "ALTER PUBLICATION " + QuoteIdent(pub) + " ADD TABLE " + QuoteTable(t));
      if (!r.ok())
        return Status::InvalidArgument("cannot add " + t + " to publication " + pub + ": " +
                                       r.status().message());
      log::Info(kPart, "added table to publication", {{"publication", pub}, {"table", t}});
    }
    return Status::OK();
  }

  Status EnsureReplicaIdentity(PGconn* c) {
    if (!deps.options.replica_identity_full) {
      log::Warn(kPart,
                "replica_identity_full is off: updates and deletes carry only the key, so every "
                "instance on a changed table is evaluated with the old row unknown (less precise)");
      return Status::OK();
    }
    bool noted = false;
    for (const auto& t : tables) {
      auto r = pg::ExecParams(c, "SELECT relreplident FROM pg_class WHERE oid = to_regclass($1)",
                              {QuoteTable(t).c_str()});
      if (!r.ok()) return r.status();
      if (Value(*r, 0, 0) == "f") continue;
      auto a = pg::Exec(c, "ALTER TABLE " + QuoteTable(t) + " REPLICA IDENTITY FULL");
      if (!a.ok())
        return Status::InvalidArgument("cannot set REPLICA IDENTITY FULL on " + t + ": " +
                                       a.status().message());
      if (!noted) {
        log::Info(kPart,
                  "set REPLICA IDENTITY FULL on monitored tables: updates and deletes now log the "
                  "whole old row, which increases WAL volume");
        noted = true;
      }
      log::Info(kPart, "replica identity full", {{"table", t}});
    }
    return Status::OK();
  }

  // Creates the slot when absent or lost. Sets pending_eject_all when it did.
  Status EnsureSlot(PGconn* c) {
    const std::string& slot = deps.options.slot_name;
    auto r =
        pg::Exec(c,
                 "SELECT slot_type, coalesce(plugin, ''), coalesce(database::text, ''), "
                 "coalesce(wal_status, ''), active FROM pg_replication_slots WHERE slot_name = " +
                     QuoteLiteral(slot));
    if (!r.ok()) return r.status();
    bool exists = PQntuples(r->get()) == 1;
    if (exists) {
      std::string type = Value(*r, 0, 0), plugin = Value(*r, 0, 1), db = Value(*r, 0, 2);
      if (type != "logical" || plugin != "pgoutput")
        return Status::InvalidArgument("replication slot '" + slot + "' exists but is a " + type +
                                       " slot with plugin '" + plugin +
                                       "': choose another invalidator.slot_name");
      if (db != database)
        return Status::InvalidArgument("replication slot '" + slot + "' belongs to database '" +
                                       db + "', not '" + database + "'");
      bool lost = Value(*r, 0, 3) == "lost";
      if (lost || force_recreate) {
        if (Value(*r, 0, 4) == "t")
          return Status::Unavailable("replication slot '" + slot +
                                     "' is unusable but still active");
        log::Warn(kPart, "replication slot unusable, recreating it",
                  {{"slot", slot}, {"wal_status", Value(*r, 0, 3)}});
        auto d = pg::Exec(c, "SELECT pg_drop_replication_slot(" + QuoteLiteral(slot) + ")");
        if (!d.ok()) return d.status();
        exists = false;
      }
    }
    force_recreate = false;
    if (!exists) {
      auto cr = pg::Exec(
          c, "SELECT pg_create_logical_replication_slot(" + QuoteLiteral(slot) + ", 'pgoutput')");
      if (!cr.ok())
        return Status::InvalidArgument("cannot create replication slot '" + slot +
                                       "': " + cr.status().message());
      log::Info(kPart, "created replication slot; every cached page will be ejected",
                {{"slot", slot}});
      pending_eject_all = true;
      std::lock_guard lock(metrics_mu);
      ++extra.slot_recreated;
    } else if (first_connect && processor && processor->ConfirmableLsn() == 0) {
      // The slot has a position but the map does not: the map was lost or is new.
      pending_eject_all = true;
    }
    return Status::OK();
  }

  Status Setup() {
    auto c = pg::Connect(deps.conninfo);
    if (!c.ok()) return c.status();
    if (Status s = CheckServer(c->get()); !s.ok()) return s;
    if (Status s = ResolveTables(c->get()); !s.ok()) return s;
    if (Status s = EnsurePublication(c->get()); !s.ok()) return s;
    if (Status s = EnsureReplicaIdentity(c->get()); !s.ok()) return s;
    ProcessorOptions po;
    po.poll_joins = deps.options.join_mode == "poll";
    po.eval.text_order_bytewise = deps_eval_bytewise;
    po.persist_interval_seconds = 0.05;
    po.poll_budget_seconds = PollTimeoutMs() / 1000.0;
    // A transaction already half the bound old at its commit means a backlog:
    // eject its joins conservatively and catch up instead of polling.
    po.skip_polls_lag_seconds = deps.options.max_staleness_seconds / 2;
    // The poll connection also asks whether a commit is visible yet (see
    // ProcessorOptions::wait_until_visible), so it exists in either join mode.
    po.wait_until_visible = true;
    poller = std::make_unique<PgJoinPoller>(deps.conninfo, PollTimeoutMs());
    processor = std::make_unique<ChangeProcessor>(deps.source, deps.ejector, poller.get(), po);
    if (Status s = EnsureSlot(c->get()); !s.ok()) return s;
    // The replication connection itself must be allowed (pg_hba, privilege).
    auto rc = ConnectReplication(deps.conninfo);
    if (!rc.ok() && rc.status().IsInvalidArgument()) return rc.status();
    return Status::OK();
  }

  // ---- stream ----

  bool SendStatus(bool reply_requested) {
    if (!repl) return false;
    Lsn flush = processor->ConfirmableLsn();
    if (flush < last_sent_flush) flush = last_sent_flush;  // never move backwards
    Lsn write = std::max(server_wal_end, flush);
    std::string msg = EncodeStandbyStatus(write, flush, flush, UnixMicrosToPgTime(NowUnixMicros()),
                                          reply_requested);
    if (PQputCopyData(repl.get(), msg.data(), static_cast<int>(msg.size())) != 1 ||
        PQflush(repl.get()) != 0) {
      log::Warn(kPart, "sending standby status failed",
                {{"error", Trimmed(PQerrorMessage(repl.get()))}});
      return false;
    }
    last_sent_flush = flush;
    last_status = Clock::now();
    std::lock_guard lock(metrics_mu);
    extra.confirmed_lsn = flush;
    return true;
  }

  Status Connect() {
    auto rc = ConnectReplication(deps.conninfo);
    if (!rc.ok()) return rc.status();
    repl = std::move(rc).value();
    auto id = pg::Exec(repl.get(), "IDENTIFY_SYSTEM");
    if (!id.ok()) return id.status();
    auto xlogpos = ParseLsn(Value(*id, 0, 2));
    if (!xlogpos.ok()) return xlogpos.status();
    catch_up_target = *xlogpos;
    // IDENTIFY_SYSTEM reports the flushed position. With synchronous_commit
    // off a commit returns before its WAL is flushed, so a change committed
    // just before this start would lie beyond it and the edge would be
    // vouched for before that change was seen. Catch up to the insert
    // position instead: everything committed before now lies below it.
    if (auto ins = pg::Exec(repl.get(), "SELECT pg_current_wal_insert_lsn()"); ins.ok()) {
      if (auto insert_lsn = ParseLsn(Value(*ins, 0, 0)); insert_lsn.ok())
        catch_up_target = std::max(catch_up_target, *insert_lsn);
    }
    if (Status s = EnsureSlot(repl.get()); !s.ok()) return s;
    first_connect = false;
    if (processor->ConfirmableLsn() > *xlogpos) {
      log::Warn(
          kPart, "stored position is ahead of the server's WAL (restored or different server)",
          {{"applied", FormatLsn(processor->ConfirmableLsn())}, {"server", FormatLsn(*xlogpos)}});
      processor->ResetPosition(0);
      last_sent_flush = 0;  // positions from the other history mean nothing here
      pending_eject_all = true;
    }
    if (pending_eject_all) {
      if (Status s = processor->EjectEverything("replication slot created or position lost");
          !s.ok())
        return s;
      pending_eject_all = false;
      watchdog->ClearPending();  // what was pending will not be replayed, and is ejected
    }
    Lsn start = processor->ConfirmableLsn();
    std::string cmd = "START_REPLICATION SLOT " + QuoteIdent(deps.options.slot_name) + " LOGICAL " +
                      FormatLsn(start) + " (proto_version '1', publication_names " +
                      QuoteLiteral(QuoteIdent(deps.options.publication_name)) + ")";
    pg::ResultPtr r(PQexec(repl.get(), cmd.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COPY_BOTH) {
      std::string state = pg::SqlState(r.get());
      std::string msg = Trimmed(PQresultErrorMessage(r.get()));
      if (state == "55000" || msg.find("can no longer get changes") != std::string::npos ||
          msg.find("invalidated") != std::string::npos) {
        force_recreate = true;  // next round drops and recreates it, and ejects everything
        return Status::Unavailable("replication slot unusable: " + msg);
      }
      return Status::Unavailable("START_REPLICATION failed: [" + state + "] " + msg);
    }
    processor->ResetStream();
    last_sent_flush = std::max(last_sent_flush, start);
    caught_up = false;
    server_wal_end = 0;
    last_server_msg = Clock::now();
    SetConnected(true);
    watchdog->OnConnected();
    log::Info(kPart, "streaming",
              {{"slot", deps.options.slot_name},
               {"from", FormatLsn(start)},
               {"catch_up_to", FormatLsn(catch_up_target)}});
    SendStatus(true);  // the server answers with a keepalive: learn its position now
    return Status::OK();
  }

  void Disconnect(const std::string& why) {
    if (repl) log::Warn(kPart, "replication stream closed", {{"reason", why}});
    SetError(why);
    repl.reset();
    SetConnected(false);
    watchdog->OnDisconnected();
  }

  void UpdateLag() {
    double lag = 0;
    if (lag_commit_unix_us > 0) lag = (NowUnixMicros() - lag_commit_unix_us) / 1e6;
    if (lag < 0) lag = 0;
    Lsn applied = processor->ConfirmableLsn();
    {
      std::lock_guard lock(metrics_mu);
      extra.lag_seconds = lag;
      extra.lag_bytes = server_wal_end > applied ? server_wal_end - applied : 0;
    }
    watchdog->SetCaughtUp(repl && caught_up);
  }

  // Runs on its own thread so that a slow catalog query never delays ejections.
  void StatsLoop() {
    pg::ConnPtr conn;
    uint64_t prev_changes = 0;
    auto prev_time = Clock::now();
    while (!stop && !kill) {
      SleepFor(1.0);
      if (stop || kill) break;
      auto now = Clock::now();
      InvalidatorMetrics pm = processor->Metrics();
      double dt = std::chrono::duration<double>(now - prev_time).count();
      double rate = dt > 0 ? (pm.changes - prev_changes) / dt : 0;
      prev_changes = pm.changes;
      prev_time = now;
      uint64_t retained = 0;
      bool have_retained = false;
      if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        auto c = pg::Connect(deps.conninfo);
        if (c.ok()) conn = std::move(c).value();
      }
      if (conn) {
        auto r = pg::Exec(conn.get(),
                          "SELECT coalesce(pg_current_wal_lsn() - restart_lsn, 0)::bigint "
                          "FROM pg_replication_slots WHERE slot_name = " +
                              QuoteLiteral(deps.options.slot_name));
        if (r.ok() && PQntuples(r->get()) == 1) {
          retained = std::strtoull(PQgetvalue(r->get(), 0, 0), nullptr, 10);
          have_retained = true;
        } else if (!r.ok()) {
          conn.reset();
        }
      }
      std::lock_guard lock(metrics_mu);
      extra.changes_per_second = rate;
      if (have_retained) extra.slot_retained_wal_bytes = retained;
    }
  }

  // Returns false when the stream must be reconnected.
  bool Handle(std::string_view bytes) {
    last_server_msg = Clock::now();
    CopyMessage cm;
    if (Status s = DecodeCopyData(bytes, &cm); !s.ok()) {
      Disconnect(s.ToString());
      return false;
    }
    watchdog->OnHeard(PgTimeToUnixMicros(
        cm.kind == CopyMessage::Kind::kKeepalive ? cm.keepalive.send_time : cm.xlog.send_time));
    if (cm.kind == CopyMessage::Kind::kKeepalive) {
      server_wal_end = std::max(server_wal_end, cm.keepalive.wal_end);
      // IDENTIFY_SYSTEM's position may lie past the last record's end (a page
      // header): a walsender that stays put just short of it has nothing left.
      if (!caught_up && !processor->in_transaction()) {
        stable_keepalives = cm.keepalive.wal_end == last_keepalive_end ? stable_keepalives + 1 : 0;
        last_keepalive_end = cm.keepalive.wal_end;
        if (stable_keepalives >= 3 && ReachedTarget(cm.keepalive.wal_end, catch_up_target))
          caught_up = true;
      }
      if (!processor->in_transaction()) {
        processor->OnWalEnd(cm.keepalive.wal_end);
        // The stream is ordered: everything the server sent before this
        // keepalive has been applied. (An empty libpq buffer would not say
        // that: older changes may still sit in the socket.)
        watchdog->OnIdle(PgTimeToUnixMicros(cm.keepalive.send_time));
      }
      if (cm.keepalive.reply_requested && !SendStatus(false)) {
        Disconnect("cannot answer keepalive");
        return false;
      }
      return true;
    }
    server_wal_end = std::max(server_wal_end, cm.xlog.wal_end);
    PgOutputMessage m;
    if (Status s = DecodePgOutput(cm.xlog.payload, &m); !s.ok()) {
      Disconnect(s.ToString());
      return false;
    }
    if (auto* b = std::get_if<BeginMessage>(&m)) {
      if (lag_commit_unix_us == 0) lag_commit_unix_us = PgTimeToUnixMicros(b->commit_time);
      watchdog->OnReceived(b->final_lsn, PgTimeToUnixMicros(b->commit_time));
    }
    Status s = processor->Process(m);
    if (kill) return false;
    if (!s.ok()) {
      Disconnect("transaction not applied, will be replayed: " + s.ToString());
      return false;
    }
    if (auto* c = std::get_if<CommitMessage>(&m)) {
      watchdog->OnApplied(c->end_lsn);
      lag_commit_unix_us = PgTimeToUnixMicros(c->commit_time);
      if (c->end_lsn >= catch_up_target) caught_up = true;
      // While withdrawn, ask for a keepalive at once: reading it back with
      // nothing pending is what lets the watchdog vouch again.
      if (!SendStatus(!watchdog->State().vouched)) {
        Disconnect("cannot send standby status");
        return false;
      }
      UpdateLag();
    }
    return true;
  }

  void Stream() {
    const double interval = StatusInterval();
    auto last_ping = Clock::now();
    while (!stop && !kill) {
      char* buf = nullptr;
      int n = PQgetCopyData(repl.get(), &buf, /*async=*/1);
      if (n > 0) {
        bool ok = Handle(std::string_view(buf, static_cast<size_t>(n)));
        PQfreemem(buf);
        if (!ok) return;
        continue;
      }
      if (n == -1 || n == -2) {
        std::string why = Trimmed(PQerrorMessage(repl.get()));
        if (n == -1) {
          pg::ResultPtr r(PQgetResult(repl.get()));
          if (r) why = Trimmed(PQresultErrorMessage(r.get()));
        }
        Disconnect("stream ended: " +
                   (why.empty() ? std::string("server closed the stream") : why));
        return;
      }
      // Everything received is processed.
      if (!processor->in_transaction()) {
        processor->PersistPosition();
        lag_commit_unix_us = 0;
        if (!caught_up && server_wal_end >= catch_up_target) caught_up = true;
      }
      auto now = Clock::now();
      double since_status = std::chrono::duration<double>(now - last_status).count();
      double since_ping = std::chrono::duration<double>(now - last_ping).count();
      if (since_status >= interval || (!caught_up && since_ping >= 0.1)) {
        last_ping = now;
        if (!SendStatus(true)) {
          Disconnect("cannot send standby status");
          return;
        }
      }
      double silent = std::chrono::duration<double>(now - last_server_msg).count();
      if (silent > 3 * interval + 5) {
        Disconnect("no message from the server for " + std::to_string(int(silent)) + " s");
        return;
      }
      UpdateLag();
      pollfd pfd{PQsocket(repl.get()), POLLIN, 0};
      ::poll(&pfd, 1, 50);
      if (PQconsumeInput(repl.get()) == 0) {
        Disconnect("connection lost: " + Trimmed(PQerrorMessage(repl.get())));
        return;
      }
    }
  }

  void Run() {
    double backoff = 0.1;
    while (!stop && !kill) {
      if (!repl) {
        Status s = Connect();
        if (!s.ok()) {
          Disconnect(s.ToString());
          log::Warn(kPart, "cannot stream, retrying",
                    {{"error", s.ToString()}, {"in_s", std::to_string(backoff)}});
          {
            std::lock_guard lock(metrics_mu);
            ++extra.reconnects;
          }
          SleepFor(backoff);
          backoff = std::min(backoff * 2, 5.0);
          continue;
        }
      }
      auto started = Clock::now();
      Stream();
      if (!repl && !stop && !kill) {
        {
          std::lock_guard lock(metrics_mu);
          ++extra.reconnects;
        }
        // A stream that dies right away (an edge that refuses ejections, a
        // transaction that cannot be applied) must not turn into a busy loop.
        if (Clock::now() - started < std::chrono::seconds(5)) {
          SleepFor(backoff);
          backoff = std::min(backoff * 2, 5.0);
        } else {
          backoff = 0.1;
        }
      }
    }
    if (repl && stop && !kill) {
      processor->PersistPosition();
      SendStatus(false);
      PQputCopyEnd(repl.get(), nullptr);
      PQflush(repl.get());
    }
    repl.reset();
    SetConnected(false);
  }
};

Invalidator::Invalidator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Invalidator::~Invalidator() { Stop(); }

Result<std::unique_ptr<Invalidator>> Invalidator::Start(InvalidatorDeps deps) {
  if (!deps.source || !deps.ejector)
    return Status::InvalidArgument("Invalidator::Start needs a dependency source and an ejector");
  if (deps.options.join_mode != "poll" && deps.options.join_mode != "conservative")
    return Status::InvalidArgument("invalidator.join_mode must be poll or conservative");
  auto impl = std::make_unique<Impl>();
  impl->deps = std::move(deps);
  WatchdogOptions wo;
  wo.max_staleness_seconds = impl->deps.options.max_staleness_seconds;
  wo.max_silence_seconds = impl->MaxSilence();
  // Fail closed until caught up: the watchdog starts withdrawn.
  impl->watchdog = std::make_unique<StalenessWatchdog>(impl->deps.ejector, wo);
  if (Status s = impl->Setup(); !s.ok()) return s;
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] { raw->Run(); });
  raw->stats_thread = std::thread([raw] { raw->StatsLoop(); });
  return std::unique_ptr<Invalidator>(new Invalidator(std::move(impl)));
}

void Invalidator::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stop = true;
  impl_->sleep_cv.notify_all();
  impl_->thread.join();
  impl_->stats_thread.join();
  impl_->watchdog->Stop();
}

void Invalidator::Kill() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->kill = true;
  impl_->sleep_cv.notify_all();
  impl_->thread.join();
  impl_->stats_thread.join();
  // A dead process vouches for nothing; stopping now also keeps a later
  // destructor from withdrawing a successor's vouch on the same ejector.
  impl_->watchdog->Stop();
}

uint64_t Invalidator::applied_lsn() const { return impl_->processor->PersistedLsn(); }

InvalidatorMetrics Invalidator::GetMetrics() const {
  InvalidatorMetrics m = impl_->processor->Metrics();
  std::lock_guard lock(impl_->metrics_mu);
  const InvalidatorMetrics& e = impl_->extra;
  m.connected = e.connected;
  WatchdogState w = impl_->watchdog->State();
  m.vouched = w.vouched;
  m.vouch_withdrawals_lag = w.withdrawals_lag;
  m.vouch_withdrawals_silence = w.withdrawals_silence;
  m.pending_transactions = w.pending_transactions;
  if (w.oldest_pending_commit_us > 0)
    m.oldest_pending_age_seconds =
        std::max(0.0, (NowUnixMicros() - w.oldest_pending_commit_us) / 1e6);
  m.lag_seconds = e.lag_seconds;
  m.lag_bytes = e.lag_bytes;
  m.slot_retained_wal_bytes = e.slot_retained_wal_bytes;
  m.changes_per_second = e.changes_per_second;
  m.confirmed_lsn = e.confirmed_lsn;
  m.reconnects = e.reconnects;
  m.slot_recreated = e.slot_recreated;
  m.last_error = e.last_error;
  return m;
}

bool Invalidator::stop_requested() const { return impl_->stop || impl_->kill; }

const std::vector<std::string>& Invalidator::monitored_tables() const { return impl_->tables; }

}  // namespace cacheportal::invalidator

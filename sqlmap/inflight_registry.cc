// InFlightRegistry (see inflight_registry.h). Analysis runs outside the lock;
// the lock only guards the request table, so the sniffer's OnStatement stays
// short. Complete() follows common/page_registrar.h: map write first, then
// retire (reading the taint atomically), then undo the map write if tainted.
#include "sqlmap/inflight_registry.h"

#include <chrono>
#include <list>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"

namespace cacheportal::sqlmap {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxRequestIdBytes = 128;

struct Request {
  std::string id;
  Clock::time_point started;
  std::list<std::string>::iterator age_pos;
  std::vector<QueryInstance> instances;
  std::unordered_set<uint64_t> instance_ids;
  size_t statements = 0;
  bool wrote = false;
  bool unanalysable = false;
  bool tainted = false;
  bool in_transaction = false;
  bool completing = false;  // Complete() is writing the map for it
  std::string why;          // first reason it cannot be stored
};

bool ReadsTable(const QueryTemplate& t, std::string_view table) {
  for (const auto& tr : t.tables) {
    if (tr.table == table) return true;
  }
  return false;
}

// Binary parameters cannot be compared as text: the instance keeps its
// tables but loses its predicates (any change to them affects it).
std::shared_ptr<const QueryTemplate> CoarseCopy(const QueryTemplate& t, const std::string& why) {
  auto c = std::make_shared<QueryTemplate>(t);
  if (c->precision == Precision::kPrecise) {
    c->precision = Precision::kCoarse;
    c->coarse_reason = why;
  }
  for (auto& tr : c->tables) {
    tr.predicate = Predicate{};
    tr.reads_all_columns = true;
    tr.columns_read.clear();
  }
  // A different shape id: the map must not reuse the precise template.
  c->shape_id = (t.shape_id ^ 0x62696e6172797061ull) * 0x9E3779B97F4A7C15ull;
  return c;
}

}  // namespace

struct InFlightRegistry::Impl {
  Analyzer* analyzer;
  SqlMap* map;
  InFlightOptions options;

  mutable std::mutex mu;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests;
  std::list<std::string> by_age;  // oldest first
  Stats stats;

  // Caller holds mu.
  void Erase(std::unordered_map<std::string, std::unique_ptr<Request>>::iterator it) {
    by_age.erase(it->second->age_pos);
    requests.erase(it);
  }

  // Caller holds mu. Drops requests past max_age and above max_requests.
  void Expire(Clock::time_point now) {
    auto max_age = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options.max_age_seconds));
    while (!by_age.empty()) {
      auto it = requests.find(by_age.front());
      if (it == requests.end()) {
        by_age.pop_front();
        continue;
      }
      bool too_old = now - it->second->started >= max_age;
      bool too_many = requests.size() > options.max_requests;
      // A request being completed is pinned: its map write is under way.
      if ((!too_old && !too_many) || it->second->completing) break;
      log::Debug("sqlmap", "dropping in-flight request",
                 {{"request", it->first}, {"reason", too_old ? "max_age" : "max_requests"}});
      Erase(it);
    }
  }

  Request* GetOrCreate(std::string_view id, Clock::time_point now) {
    auto it = requests.find(std::string(id));
    if (it != requests.end()) return it->second.get();
    auto r = std::make_unique<Request>();
    r->id = std::string(id);
    r->started = now;
    by_age.push_back(r->id);
    r->age_pos = std::prev(by_age.end());
    Request* raw = r.get();
    requests.emplace(r->id, std::move(r));
    Expire(now);
    return requests.count(std::string(id)) ? raw : nullptr;
  }
};

InFlightRegistry::InFlightRegistry(Analyzer* analyzer, SqlMap* map, InFlightOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->analyzer = analyzer;
  impl_->map = map;
  impl_->options = options;
  if (impl_->options.max_requests == 0) impl_->options.max_requests = 1;
}

InFlightRegistry::~InFlightRegistry() = default;

void InFlightRegistry::OnStatement(std::string_view request_id, CapturedStatement statement) {
  // Ids come from SQL comments (attacker-controlled text): bound them.
  if (request_id.empty() || request_id.size() > kMaxRequestIdBytes) return;
  // Analyse outside the lock.
  std::string problem;
  bool wrote = false;
  std::optional<QueryInstance> instance;
  Result<QueryInstance> r = impl_->analyzer->Instantiate(statement.sql, statement.params);
  if (!r.ok()) {
    problem = r.status().ToString();
  } else {
    QueryInstance qi = std::move(r).value();
    const QueryTemplate& t = *qi.tmpl;
    if (!t.read_only) {
      wrote = true;
      problem = "writes: " + (t.written_tables.empty() ? t.coarse_reason : t.written_tables[0]);
    } else if (t.precision == Precision::kNone) {
      problem = "unanalysable: " + t.coarse_reason;
    } else {
      bool binary = false;
      for (size_t i = 0; i < statement.param_is_binary.size(); ++i) {
        if (statement.param_is_binary[i]) binary = true;
      }
      if (binary) qi.tmpl = CoarseCopy(t, "binary parameter values");
      if (!qi.tmpl->tables.empty()) instance = std::move(qi);
    }
  }
  auto now = Clock::now();
  std::lock_guard lock(impl_->mu);
  impl_->stats.statements++;
  Request* req = impl_->GetOrCreate(request_id, now);
  if (req == nullptr) return;
  req->statements++;
  if (req->completing) {
    // Ran after the page was handed over: the map write cannot include it.
    req->tainted = true;
    return;
  }
  if (statement.in_transaction_block) req->in_transaction = true;
  if (wrote) {
    req->wrote = true;
  } else if (!problem.empty()) {
    req->unanalysable = true;
  }
  if (!problem.empty() && req->why.empty()) req->why = problem;
  if (req->statements > impl_->options.max_statements_per_request) {
    if (!req->unanalysable) req->why = "more than max_statements_per_request statements";
    req->unanalysable = true;
    req->instances.clear();
    req->instance_ids.clear();
    return;
  }
  if (instance && !req->unanalysable && !req->wrote) {
    uint64_t id = instance->IdValue();
    if (req->instance_ids.insert(id).second) req->instances.push_back(std::move(*instance));
  }
}

RegisterVerdict InFlightRegistry::Complete(const PageRegistration& page) {
  std::vector<QueryInstance> instances;
  {
    std::lock_guard lock(impl_->mu);
    impl_->Expire(Clock::now());
    auto it = impl_->requests.find(page.request_id);
    if (it == impl_->requests.end()) {
      impl_->stats.completed_refused++;
      return RegisterVerdict::kUnknownRequest;
    }
    Request& req = *it->second;
    RegisterVerdict early = RegisterVerdict::kStore;
    if (req.wrote) {
      early = RegisterVerdict::kWrote;
    } else if (req.unanalysable) {
      early = RegisterVerdict::kUnanalysable;
    } else if (req.tainted) {
      early = RegisterVerdict::kTainted;
    } else if (req.completing) {
      early = RegisterVerdict::kUnknownRequest;  // completed twice at once: refuse the second
    }
    if (early != RegisterVerdict::kStore) {
      log::Debug("sqlmap", "page not registered",
                 {{"request", page.request_id},
                  {"verdict", RegisterVerdictName(early)},
                  {"why", req.why}});
      if (early != RegisterVerdict::kUnknownRequest) impl_->Erase(it);
      impl_->stats.completed_refused++;
      return early;
    }
    req.completing = true;
    instances = req.instances;
  }
  // 1. The map first: from here on the invalidator finds the key.
  Status s = impl_->map->PutPage(page.cache_key, instances, page.children, page.url);
  // 2. Retire, reading the taint under the same lock TaintMatching takes.
  bool tainted = false;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->requests.find(page.request_id);
    if (it != impl_->requests.end()) {
      tainted = it->second->tainted;
      impl_->Erase(it);
    } else {
      tainted = true;  // cannot happen (pinned); refuse rather than guess
    }
    if (!s.ok() || tainted) {
      impl_->stats.completed_refused++;
    } else {
      impl_->stats.completed_stored++;
    }
  }
  if (!s.ok()) {
    log::Warn("sqlmap", "map write failed", {{"key", page.cache_key}, {"error", s.ToString()}});
    return RegisterVerdict::kMapError;
  }
  if (tainted) {
    // 3. A change hit it while in flight: the page must not be stored. Its
    // map entry stays: removing the key here would also remove a copy of
    // the same key that another fill registered and stored meanwhile, and
    // no later change would find that copy (a lost ejection). Left mapped,
    // the key costs at most one needless ejection; the next registration of
    // the key replaces it and the next ejection removes it.
    return RegisterVerdict::kTainted;
  }
  return RegisterVerdict::kStore;
}

void InFlightRegistry::Abandon(std::string_view request_id) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->requests.find(std::string(request_id));
  if (it != impl_->requests.end() && !it->second->completing) impl_->Erase(it);
}

size_t InFlightRegistry::TaintMatching(std::string_view table,
                                       const std::function<bool(const QueryInstance&)>& affects) {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (auto& [id, req] : impl_->requests) {
    if (req->tainted) continue;
    for (const auto& qi : req->instances) {
      if (!ReadsTable(*qi.tmpl, table)) continue;
      if (affects(qi)) {
        req->tainted = true;
        ++n;
        break;
      }
    }
  }
  impl_->stats.tainted += n;
  return n;
}

size_t InFlightRegistry::TaintAll() {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (auto& [id, req] : impl_->requests) {
    if (!req->tainted) {
      req->tainted = true;
      ++n;
    }
  }
  impl_->stats.tainted += n;
  return n;
}

InFlightRegistry::Stats InFlightRegistry::GetStats() const {
  std::lock_guard lock(impl_->mu);
  Stats s = impl_->stats;
  s.in_flight = impl_->requests.size();
  return s;
}

}  // namespace cacheportal::sqlmap

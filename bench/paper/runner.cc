#include "bench/paper/runner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include "bench/paper/user_driver.h"
#include "common/pg.h"

namespace cacheportal::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A page as one visitor sees it: path and language (anonymous otherwise).
struct PageRef {
  std::string path;
  bool ja = false;
  std::string Name() const { return path + (ja ? " ja" : " en"); }
};

std::vector<std::pair<std::string, std::string>> PageHeaders(const PageRef& p) {
  if (p.ja) return {{"Cookie", "lang=ja"}};
  return {};
}

// Blocking sleep that wakes early when `stop` is set.
void SleepUntil(Clock::time_point t, const std::atomic<bool>& stop) {
  while (!stop.load() && Clock::now() < t) {
    auto left = t - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(50)));
  }
}

struct AuditJob {
  Clock::time_point due;
  std::vector<PageRef> affected;
  std::vector<PageRef> unaffected;
};

class Auditor {
 public:
  Auditor(const RunOptions& opt)
      : opt_(opt), edge_(opt.target, opt.timeout_ms), origin_(opt.origin, opt.timeout_ms) {}

  void Push(AuditJob job) {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
    cv_.notify_one();
  }

  void Run(const std::atomic<bool>& stop_after_drain) {
    for (;;) {
      AuditJob job;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(100),
                     [&] { return !jobs_.empty() || stop_after_drain.load(); });
        if (jobs_.empty()) {
          if (stop_after_drain.load()) return;
          continue;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::atomic<bool> never{false};
      SleepUntil(job.due, never);
      for (const auto& p : job.affected) Check(p, true);
      for (const auto& p : job.unaffected) Check(p, false);
    }
  }

  AuditResult result() const {
    std::lock_guard lock(mu_);
    return result_;
  }

 private:
  // Edge bytes agree with the store's when they equal a fetch from the store
  // just before or just after the edge fetch (a change may land in between).
  enum class Verdict { kAgree, kDiffer, kError };
  Verdict Compare(const PageRef& p, std::string* x_cache) {
    auto o1 = origin_.Get(p.path, PageHeaders(p));
    auto e = edge_.Get(p.path, PageHeaders(p));
    auto o2 = origin_.Get(p.path, PageHeaders(p));
    if (!o1.ok() || !e.ok() || !o2.ok()) return Verdict::kError;
    *x_cache = std::string(e->Header("X-Cache"));
    if (auto age = e->Header("Age"); !age.empty()) *x_cache += " Age=" + std::string(age);
    if (e->status != o1->status && e->status != o2->status) return Verdict::kDiffer;
    if (e->body == o1->body || e->body == o2->body) return Verdict::kAgree;
    return Verdict::kDiffer;
  }

  void Check(const PageRef& p, bool affected) {
    std::string xc;
    Verdict v = Compare(p, &xc);
    if (v == Verdict::kDiffer) {
      // A change committed moments ago (a shopper's checkout) may still be
      // inside its invalidation latency, and a page that changes often may
      // always lag its newest version a little. Stale means: the edge never
      // agrees with the store during the whole staleness bound.
      auto first = Clock::now();
      auto deadline = first + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(opt_.stale_after_s));
      Verdict again = Verdict::kDiffer;
      while (Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        again = Compare(p, &xc);
        if (again != Verdict::kDiffer) break;
      }
      double waited = Seconds(Clock::now() - first);
      if (again == Verdict::kDiffer) {
        // Diagnose: does the edge catch up later, or never?
        std::string xc_stale = xc;
        auto give_up = Clock::now() + std::chrono::seconds(20);
        while (Clock::now() < give_up && Compare(p, &xc) == Verdict::kDiffer)
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        double total = Seconds(Clock::now() - first);
        std::string outcome =
            Clock::now() < give_up
                ? "agreed after " + std::to_string(static_cast<int>(total)) + " s"
                : "still differed after " + std::to_string(static_cast<int>(total)) + " s";
        std::lock_guard lock(mu_);
        ++result_.stale;
        if (result_.stale_pages.size() < 50)
          result_.stale_pages.push_back(
              p.Name() + (affected ? " (changed by the write)" : " (other page)") +
              " X-Cache=" + xc_stale + " (differed for " +
              std::to_string(static_cast<int>(waited)) + " s; " + outcome + ")");
        ++(affected ? result_.affected_checked : result_.unaffected_checked);
        return;
      }
      std::lock_guard lock(mu_);
      if (false) {
      } else if (again == Verdict::kAgree) {
        ++result_.late;
        result_.late_max_s = std::max(result_.late_max_s, waited + opt_.audit_window_s);
      } else {
        ++result_.errors;
      }
    } else if (v == Verdict::kError) {
      std::lock_guard lock(mu_);
      ++result_.errors;
    }
    std::lock_guard lock(mu_);
    ++(affected ? result_.affected_checked : result_.unaffected_checked);
  }

  const RunOptions& opt_;
  HttpClient edge_, origin_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AuditJob> jobs_;
  AuditResult result_;
};

Result<std::map<std::string, double>> ScrapeMetrics(const RunOptions& opt) {
  if (!opt.admin) return std::map<std::string, double>{};
  HttpClient c(*opt.admin, opt.timeout_ms);
  std::vector<std::pair<std::string, std::string>> h;
  if (!opt.admin_token.empty()) h.emplace_back("Authorization", "Bearer " + opt.admin_token);
  auto r = c.Get("/metrics", h);
  if (!r.ok()) return r.status();
  if (r->status != 200)
    return Status::Unavailable("admin /metrics answered " + std::to_string(r->status));
  return ParsePrometheus(r->body);
}

class Writer {
 public:
  Writer(const RunOptions& opt, const Workload& wl, Clock::time_point start, Auditor* auditor)
      : opt_(opt),
        wl_(wl),
        start_(start),
        auditor_(auditor),
        edge_(opt.target, opt.timeout_ms),
        origin_(opt.origin, opt.timeout_ms),
        rng_(opt.seed * 7919 + 17) {}

  Status Connect() {
    auto c = pg::Connect(opt_.database);
    if (!c.ok()) return c.status();
    conn_ = std::move(c).value();
    // A run id keeps new product ids unique across runs on one database.
    auto r = pg::Exec(conn_.get(),
                      "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint % 100000000");
    if (!r.ok()) return r.status();
    run_id_ = PQgetvalue(r->get(), 0, 0);
    return Status::OK();
  }

  void Run(Clock::time_point end, const std::atomic<bool>& stop) {
    auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / opt_.write_rate));
    auto next = start_ + period / 2;
    int seq = 0;
    while (!stop.load()) {
      SleepUntil(next, stop);
      if (stop.load() || Clock::now() >= end) break;
      next += period;
      if (next < Clock::now()) next = Clock::now();  // don't burst after a slow probe
      WriteOne(++seq);
    }
  }

  // Waits for the probes still polling, then returns every write in order.
  std::vector<WriteRecord> Finish() {
    for (auto& t : probes_) t.join();
    probes_.clear();
    std::lock_guard lock(mu_);
    std::vector<WriteRecord> out = records_;
    std::sort(out.begin(), out.end(),
              [](const WriteRecord& a, const WriteRecord& b) { return a.seq < b.seq; });
    return out;
  }
  std::string last_error() const { return last_error_; }

 private:
  struct Planned {
    WriteRecord rec;
    std::string sql;
    std::vector<std::string> params;
    PageRef probe;
    std::string marker;
    std::vector<PageRef> affected;
  };

  Planned Plan(int seq) {
    Planned p;
    p.rec.seq = seq;
    const Catalog& c = wl_.catalog();
    double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const Catalog::Item& item = c.items[wl_.item_zipf().Sample(rng_)];
    if (u < 0.55) {
      // A new list price (unique per write, so the page shows which write it is).
      p.rec.kind = WriteKind::kPrice;
      int64_t cents = 10000 + (static_cast<int64_t>(std::stoll(run_id_)) % 1000) * 1000 + seq;
      char price[32];
      std::snprintf(price, sizeof price, "%lld.%02lld", static_cast<long long>(cents / 100),
                    static_cast<long long>(cents % 100));
      p.sql = "UPDATE item_details SET listprice = $2 WHERE itemid = $1 AND locale = 'en_US'";
      p.params = {item.id, price};
      p.rec.row = "item_details " + item.id + " en_US listprice=" + price;
      p.probe = {"/item/" + item.id, false};
      p.marker = std::string("Price: $") + price;
      p.affected = {{"/item/" + item.id, false}, {"/product/" + item.productid, false}};
    } else if (u < 0.95) {
      p.rec.kind = WriteKind::kInventory;
      std::string qty = std::to_string(50000 + (std::stoll(run_id_) % 1000) * 1000 + seq);
      p.sql = "UPDATE inventory SET qty = $2 WHERE itemid = $1";
      p.params = {item.id, qty};
      p.rec.row = "inventory " + item.id + " qty=" + qty;
      p.probe = {"/item/" + item.id, false};
      p.marker = "In stock: " + qty;
      p.affected = {{"/item/" + item.id, false}, {"/item/" + item.id, true}};
    } else {
      p.rec.kind = WriteKind::kNewProduct;
      const std::string& cat =
          c.categories[std::uniform_int_distribution<size_t>(0, c.categories.size() - 1)(rng_)];
      std::string id = "BN-" + run_id_ + "-" + std::to_string(seq);
      // "A-" sorts before every catalogue name, so the product is on the
      // category page even where the page shows only the first 200.
      std::string name = "A-Bench " + run_id_ + "-" + std::to_string(seq);
      p.sql =
          "WITH p AS (INSERT INTO product (productid, catid) VALUES ($1, $2) RETURNING productid) "
          "INSERT INTO product_details (productid, locale, name, image, descn) "
          "SELECT productid, l, $3, 'bench.gif', 'Added by cacheportal bench' FROM p, "
          "unnest(ARRAY['en_US','ja_JP']) AS l";
      p.params = {id, cat, name};
      p.rec.row = "product " + id + " in " + cat;
      p.probe = {"/category/" + cat, false};
      p.marker = "/product/" + id + "\"";
      p.affected = {{"/category/" + cat, false}, {"/category/" + cat, true}};
    }
    for (const auto& a : p.affected) p.rec.pages.push_back(a.Name());
    return p;
  }

  std::vector<PageRef> Unaffected(const std::vector<PageRef>& affected) {
    const Catalog& c = wl_.catalog();
    std::set<std::string> skip;
    for (const auto& a : affected) skip.insert(a.Name());
    std::vector<PageRef> out;
    for (int tries = 0; static_cast<int>(out.size()) < opt_.audit_unaffected && tries < 50;
         ++tries) {
      PageRef p;
      int kind = std::uniform_int_distribution<int>(0, 3)(rng_);
      p.ja = std::uniform_int_distribution<int>(0, 3)(rng_) == 0;
      if (kind == 0) p.path = "/item/" + c.items[wl_.item_zipf().Sample(rng_)].id;
      if (kind == 1) p.path = "/product/" + c.products[wl_.product_zipf().Sample(rng_)].id;
      if (kind == 2)
        p.path =
            "/category/" +
            c.categories[std::uniform_int_distribution<size_t>(0, c.categories.size() - 1)(rng_)];
      if (kind == 3) p.path = "/";
      if (skip.insert(p.Name()).second) out.push_back(p);
    }
    return out;
  }

  void WriteOne(int seq) {
    Planned p = Plan(seq);
    if (opt_.through_edge) {
      // Make sure the page is in the cache, so the probe measures an ejection.
      (void)edge_.Get(p.probe.path, PageHeaders(p.probe));
      auto again = edge_.Get(p.probe.path, PageHeaders(p.probe));
      p.rec.cached_before = again.ok() && again->Header("X-Cache") == "HIT";
    }
    std::vector<const char*> params;
    for (const auto& s : p.params) params.push_back(s.c_str());
    auto r = pg::ExecParams(conn_.get(), p.sql, params);
    Clock::time_point t0 = Clock::now();
    if (!r.ok()) {
      last_error_ = r.status().message();
      return;
    }
    p.rec.commit_s = Seconds(t0 - start_);
    if (!opt_.through_edge) {
      std::lock_guard lock(mu_);
      records_.push_back(std::move(p.rec));
      return;
    }
    AuditJob job;
    job.due = t0 + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(opt_.audit_window_s));
    job.affected = p.affected;
    job.unaffected = Unaffected(p.affected);
    auditor_->Push(std::move(job));
    // Each probe polls on its own connections and thread, so a slow
    // invalidation does not hold back the next write.
    probes_.emplace_back([this, p = std::move(p), t0]() mutable {
      HttpClient edge(opt_.target, opt_.timeout_ms), origin(opt_.origin, opt_.timeout_ms);
      Probe(p, t0, edge, origin);
      std::lock_guard lock(mu_);
      records_.push_back(std::move(p.rec));
    });
  }

  void Probe(Planned& p, Clock::time_point t0, HttpClient& edge, HttpClient& origin) {
    auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(opt_.probe_timeout_s));
    for (int polls = 0; Clock::now() < deadline; ++polls) {
      auto e = edge.Get(p.probe.path, PageHeaders(p.probe));
      Clock::time_point t = Clock::now();
      if (e.ok() && e->status == 200) {
        bool fresh = e->body.find(p.marker) != std::string::npos;
        if (!fresh && polls % 25 == 24) {
          // A shopper's checkout may have moved the page past our marker.
          auto o = origin.Get(p.probe.path, PageHeaders(p.probe));
          fresh = o.ok() && o->body == e->body;
        }
        if (fresh) {
          p.rec.latency_ms = std::chrono::duration<double, std::milli>(t - t0).count();
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    p.rec.timed_out = true;
  }

  const RunOptions& opt_;
  const Workload& wl_;
  Clock::time_point start_;
  Auditor* auditor_;
  HttpClient edge_, origin_;
  std::mt19937_64 rng_;
  pg::ConnPtr conn_;
  std::string run_id_ = "0";
  std::mutex mu_;
  std::vector<WriteRecord> records_;
  std::vector<std::thread> probes_;
  std::string last_error_;
};

bool Pick(int i, double fraction, double offset) {
  // Spreads a fraction evenly over user indexes (deterministic).
  return std::floor((i + 1) * fraction + offset) > std::floor(i * fraction + offset);
}

// One simulated shopper of the PetStore study (browser or buyer, English or
// Japanese), driven by the event loops of user_driver.h.
class PetStoreUser final : public SimulatedUser {
 public:
  PetStoreUser(const RunOptions& opt, const Workload& wl, int i, Clock::time_point end,
               const std::atomic<bool>& stop, Recorder& rec, std::atomic<uint64_t>& checkouts)
      : opt_(opt),
        wl_(wl),
        end_(end),
        stop_(stop),
        rec_(rec),
        checkouts_(checkouts),
        rng_(opt.seed * 1000003 + static_cast<uint64_t>(i)),
        think_(opt.think_ms > 0 ? 1.0 / opt.think_ms : 1.0) {
    st_.buyer = Pick(i, opt.buyer_fraction, 0.5);
    st_.ja = Pick(i, opt.ja_fraction, 0.25);
    st_.username = "user" + std::to_string(1 + i % 10);
  }

  bool WantsMore(Clock::time_point now) override {
    return !stop_.load(std::memory_order_relaxed) && now < end_;
  }

  Request Next() override {
    action_ = wl_.Next(st_, rng_);
    return wl_.Build(action_, st_, rng_);
  }

  Clock::duration Done(const Result<Response>& resp, Clock::time_point sent,
                       Clock::time_point ended) override {
    int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(ended - sent).count();
    bool ok = resp.ok() && resp->status < 500;
    CacheState cs = resp.ok() ? ParseXCache(resp->Header("X-Cache")) : CacheState::kNone;
    rec_.Record(ended, us, ok, cs, IsCatalogAction(action_));
    if (!resp.ok()) return std::chrono::milliseconds(10);
    Workload::Observe(action_, *resp, &st_);
    if (action_ == Action::kCheckout && resp->status == 303) checkouts_.fetch_add(1);
    if (opt_.think_ms <= 0) return Clock::duration::zero();
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(think_(rng_)));
  }

 private:
  const RunOptions& opt_;
  const Workload& wl_;
  Clock::time_point end_;
  const std::atomic<bool>& stop_;
  Recorder& rec_;
  std::atomic<uint64_t>& checkouts_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> think_;
  UserState st_;
  Action action_ = Action::kHome;
};

}  // namespace

std::string_view WriteKindName(WriteKind k) {
  switch (k) {
    case WriteKind::kPrice:
      return "price";
    case WriteKind::kInventory:
      return "inventory";
    case WriteKind::kNewProduct:
      return "new_product";
  }
  return "?";
}

double RunResult::MetricDelta(const std::string& name) const {
  auto a = metrics_after.find(name);
  if (a == metrics_after.end()) return 0;
  auto b = metrics_before.find(name);
  return a->second - (b == metrics_before.end() ? 0 : b->second);
}

std::map<std::string, double> ParsePrometheus(std::string_view text) {
  std::map<std::string, double> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos || sp == 0) continue;
    std::string value(line.substr(sp + 1));
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') continue;
    out[std::string(line.substr(0, sp))] = v;
  }
  return out;
}

Result<Catalog> LoadCatalog(const std::string& conninfo) {
  auto conn = pg::Connect(conninfo);
  if (!conn.ok()) return conn.status();
  Catalog c;
  auto cats = pg::Exec(conn->get(), "SELECT catid FROM category ORDER BY catid");
  if (!cats.ok()) return cats.status();
  for (int i = 0; i < PQntuples(cats->get()); ++i)
    c.categories.emplace_back(PQgetvalue(cats->get(), i, 0));
  auto prods = pg::Exec(conn->get(), "SELECT productid, catid FROM product ORDER BY productid");
  if (!prods.ok()) return prods.status();
  for (int i = 0; i < PQntuples(prods->get()); ++i)
    c.products.push_back({PQgetvalue(prods->get(), i, 0), PQgetvalue(prods->get(), i, 1)});
  auto items = pg::Exec(conn->get(), "SELECT itemid, productid FROM item ORDER BY itemid");
  if (!items.ok()) return items.status();
  for (int i = 0; i < PQntuples(items->get()); ++i)
    c.items.push_back({PQgetvalue(items->get(), i, 0), PQgetvalue(items->get(), i, 1)});
  auto names = pg::Exec(
      conn->get(), "SELECT name FROM product_details WHERE locale = 'en_US' ORDER BY productid");
  if (!names.ok()) return names.status();
  std::set<std::string> seen;
  for (int i = 0; i < PQntuples(names->get()); ++i) {
    std::string n = PQgetvalue(names->get(), i, 0);
    std::string word;
    auto flush = [&] {
      if (word.size() >= 3 && seen.insert(word).second) c.search_terms.push_back(word);
      word.clear();
    };
    for (char ch : n) {
      if (std::isalpha(static_cast<unsigned char>(ch)))
        word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
      else
        flush();
    }
    flush();
  }
  if (c.categories.empty() || c.products.empty() || c.items.empty())
    return Status::InvalidArgument(
        "the store's catalogue is empty: run cacheportal-store load first");
  return c;
}

Result<RunResult> RunOnce(const RunOptions& opt, const Catalog& catalog) {
  Workload wl(&catalog, opt.workload);
  RunResult result;
  if (auto m = ScrapeMetrics(opt); m.ok()) result.metrics_before = std::move(m).value();

  Clock::time_point start = Clock::now();
  Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(opt.warmup_s + opt.duration_s));
  Recorder rec(start);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> checkouts{0};

  std::vector<std::unique_ptr<PetStoreUser>> users;
  std::vector<SimulatedUser*> user_ptrs;
  for (int i = 0; i < opt.users; ++i) {
    users.push_back(std::make_unique<PetStoreUser>(opt, wl, i, end, stop, rec, checkouts));
    user_ptrs.push_back(users.back().get());
  }
  UserDriverOptions driver;
  driver.target = opt.target;
  driver.threads = opt.client_threads;
  driver.timeout_ms = opt.timeout_ms;
  Status driven = Status::OK();
  std::thread driver_thread([&] { driven = DriveUsers(driver, user_ptrs); });

  Auditor auditor(opt);
  std::atomic<bool> audit_stop{false};
  std::thread audit_thread;
  std::unique_ptr<Writer> writer;
  std::thread writer_thread;
  if (opt.write_rate > 0 && !opt.database.empty()) {
    writer = std::make_unique<Writer>(opt, wl, start, &auditor);
    if (Status s = writer->Connect(); !s.ok()) {
      std::fprintf(stderr, "bench: writer cannot connect: %s\n", s.message().c_str());
      writer.reset();
    } else {
      writer_thread = std::thread([&] { writer->Run(end, stop); });
      if (opt.through_edge) audit_thread = std::thread([&] { auditor.Run(audit_stop); });
    }
  }

  int total_s = static_cast<int>(std::ceil(opt.warmup_s + opt.duration_s));
  int warm = static_cast<int>(std::round(opt.warmup_s));
  // CPU is accounted over the same seconds as the summary (after warm-up).
  CpuSnapshot cpu_from = warm == 0 ? TakeCpuSnapshot() : CpuSnapshot{};
  for (int s = 1; s <= total_s; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    if (s == warm) cpu_from = TakeCpuSnapshot();
    if (!opt.progress) continue;
    SecondStats st = rec.Second(s - 1);
    std::fprintf(
        stderr, "[%s %3du] %3ds%s %7llu req/s  p50 %7.2f ms  p95 %7.2f ms  hit %5.1f%%  err %llu\n",
        opt.label.c_str(), opt.users, s, s <= opt.warmup_s ? " (warm-up)" : "",
        static_cast<unsigned long long>(st.requests), st.p50_ms, st.p95_ms, 100 * st.HitRatio(),
        static_cast<unsigned long long>(st.errors));
  }
  const CpuSnapshot cpu_to = TakeCpuSnapshot();
  stop.store(true);
  driver_thread.join();
  if (!driven.ok()) return driven;
  if (writer_thread.joinable()) writer_thread.join();
  audit_stop.store(true);
  if (audit_thread.joinable()) audit_thread.join();

  result.summary = rec.Summarize(opt.label, opt.users, warm, total_s);
  result.cpu = CpuBetween(cpu_from, cpu_to, sysconf(_SC_CLK_TCK));
  result.timeline = rec.Timeline(total_s);
  if (writer) {
    result.writes = writer->Finish();
    if (!writer->last_error().empty())
      std::fprintf(stderr, "bench: a write failed: %s\n", writer->last_error().c_str());
  }
  result.audit = auditor.result();
  result.audit.window_s = opt.audit_window_s;
  result.audit.bound_s = opt.stale_after_s;
  result.checkouts = checkouts.load();
  if (auto m = ScrapeMetrics(opt); m.ok())
    result.metrics_after = std::move(m).value();
  else if (opt.admin)
    std::fprintf(stderr, "bench: metrics scrape failed: %s\n", m.status().message().c_str());
  return result;
}

}  // namespace cacheportal::bench

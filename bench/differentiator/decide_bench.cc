// Decide() cost per request against the shipped config/rules.yaml, for the
// request shapes the store sees most. Run: bench/differentiator/run.sh
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/session_cookie.h"
#include "differentiator/differentiator.h"

namespace {

using cacheportal::differentiator::Decision;
using cacheportal::differentiator::RequestView;
using cacheportal::differentiator::RuleSet;
using cacheportal::differentiator::Verdict;

constexpr int64_t kNow = 1'800'000'000;
constexpr const char* kSecret = "bench-secret";

std::shared_ptr<const RuleSet> Rules() {
  static std::shared_ptr<const RuleSet> rules = [] {
    auto r = RuleSet::LoadFile(CP_RULES_FILE, kSecret);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    return r.value();
  }();
  return rules;
}

// A browser-like header set (what the edge passes in).
std::string& SidCookie() {
  static std::string c =
      "_ga=GA1.2.1234567890.1700000000; lang=ja; sid=" +
      cacheportal::SessionCookieCodec(kSecret).Encode({"j2ee", "ja_JP", kNow + 3600}) +
      "; theme=dark";
  return c;
}

RequestView Browser(std::string_view method, std::string_view target) {
  RequestView req;
  req.method = method;
  req.target = target;
  req.headers = {{"Host", "127.0.0.1:8080"},
                 {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"},
                 {"Accept", "text/html,application/xhtml+xml"},
                 {"Accept-Language", "ja,en;q=0.5"},
                 {"Cookie", SidCookie()}};
  return req;
}

void Run(benchmark::State& state, const RequestView& req, Verdict expect) {
  auto rules = Rules();
  Decision d = rules->Decide(req, kNow);
  if (d.verdict != expect) {
    state.SkipWithError(("unexpected verdict: " + d.reason).c_str());
    return;
  }
  for (auto _ : state) {
    Decision x = rules->Decide(req, kNow);
    benchmark::DoNotOptimize(x);
  }
}

void BM_CatalogGet(benchmark::State& state) {
  Run(state, Browser("GET", "/product/FI-SW-01"), Verdict::kCache);
}
void BM_CatalogGetAnonymous(benchmark::State& state) {
  RequestView req = Browser("GET", "/product/FI-SW-01");
  req.headers.back().second = "_ga=GA1.2.1234567890.1700000000; lang=ja";
  Run(state, req, Verdict::kCache);
}
void BM_CatalogGetWithNoise(benchmark::State& state) {
  Run(state, Browser("GET", "/product/FI-SW-01;jsessionid=0A1B2C3D?utm_source=mail&gclid=abc"),
      Verdict::kCache);
}
void BM_FragmentWithQuery(benchmark::State& state) {
  Run(state, Browser("GET", "/frag/items?product=FI-SW-01"), Verdict::kCache);  // regex rule
}
void BM_MyListVerifiedSession(benchmark::State& state) {
  Run(state, Browser("GET", "/frag/mylist"), Verdict::kCache);  // HMAC-SHA256 verify
}
void BM_PostSearchForm(benchmark::State& state) {
  RequestView req = Browser("POST", "/search");
  req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  req.body = "q=angel+fish&category=FISH&submit=Search";
  Run(state, req, Verdict::kCache);
}
void BM_PostSearchJson(benchmark::State& state) {
  RequestView req = Browser("POST", "/search");
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = R"({"q":"angel fish","category":"FISH","submit":"Search"})";
  Run(state, req, Verdict::kCache);
}
void BM_PostSearchMultipart(benchmark::State& state) {
  RequestView req = Browser("POST", "/search");
  req.headers.emplace_back("Content-Type", "multipart/form-data; boundary=----b0undary");
  req.body =
      "------b0undary\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nangel fish\r\n"
      "------b0undary\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nFISH\r\n"
      "------b0undary--\r\n";
  Run(state, req, Verdict::kCache);
}
void BM_CartPass(benchmark::State& state) { Run(state, Browser("GET", "/cart"), Verdict::kPass); }
void BM_KeyToStringAndHash(benchmark::State& state) {
  Decision d = Rules()->Decide(Browser("GET", "/frag/items?product=FI-SW-01"), kNow);
  for (auto _ : state) {
    benchmark::DoNotOptimize(d.key.Hash());
  }
}

BENCHMARK(BM_CatalogGet);
BENCHMARK(BM_CatalogGetAnonymous);
BENCHMARK(BM_CatalogGetWithNoise);
BENCHMARK(BM_FragmentWithQuery);
BENCHMARK(BM_MyListVerifiedSession);
BENCHMARK(BM_PostSearchForm);
BENCHMARK(BM_PostSearchJson);
BENCHMARK(BM_PostSearchMultipart);
BENCHMARK(BM_CartPass);
BENCHMARK(BM_KeyToStringAndHash);

}  // namespace

BENCHMARK_MAIN();

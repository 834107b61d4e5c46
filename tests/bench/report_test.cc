#include "bench/paper/report.h"
#include "bench/paper/cpu_account.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace cacheportal::bench {
namespace {

int Count(const std::string& s, std::string_view what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(CsvWriter, QuotesFieldsThatNeedIt) {
  CsvWriter w({"a", "b", "c"});
  w.Row({"plain", "with,comma", "say \"hi\""});
  w.Row({"x"});
  EXPECT_EQ(w.text(), "a,b,c\r\nplain,\"with,comma\",\"say \"\"hi\"\"\"\r\nx,,\r\n");
  EXPECT_EQ(CsvWriter::Field("two\nlines"), "\"two\nlines\"");
}

TEST(XmlEscape, EscapesMarkup) {
  EXPECT_EQ(XmlEscape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
}

TEST(NiceTicks, CoverTheRangeWithRoundSteps) {
  EXPECT_EQ(NiceTicks(0, 100, 5), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(NiceTicks(0, 1, 2), (std::vector<double>{0, 0.5, 1}));
  auto t = NiceTicks(3, 3);  // empty range still gives ticks
  EXPECT_FALSE(t.empty());
}

TEST(SvgLineChart, DrawsEverySeriesWithLegendAndEscapedText) {
  ChartOptions o;
  o.title = "p95 <ms>";
  o.x_label = "users";
  o.y_label = "ms";
  o.log2_x = true;
  o.hline = 100;
  o.hline_label = "bound";
  Series a{"without & cache", "#d62728", {{1, 10}, {2, 20}, {4, 400}}};
  Series b{"with", "#1f77b4", {{1, 1}, {2, 1}, {4, 2}}};
  std::string svg = SvgLineChart(o, {a, b});
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(Count(svg, "<path "), 2);
  EXPECT_EQ(Count(svg, "<circle "), 6);
  EXPECT_NE(svg.find("p95 &lt;ms&gt;"), std::string::npos);
  EXPECT_NE(svg.find("without &amp; cache"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the bound line
  // log2 axis: ticks at 1, 2 and 4.
  EXPECT_NE(svg.find(">4</text>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(SvgLineChart, LogYAxisHasDecadeTicks) {
  ChartOptions o;
  o.log10_y = true;
  Series a{"a", "red", {{1, 0.05}, {2, 3}, {4, 250}}};
  std::string svg = SvgLineChart(o, {a});
  for (const char* t :
       {">0.01</text>", ">0.1</text>", ">1</text>", ">10</text>", ">100</text>", ">1000</text>"})
    EXPECT_NE(svg.find(t), std::string::npos) << t;
  EXPECT_EQ(svg.find(">10000</text>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(SvgLineChart, StepSeriesAndEmptyInputStayFinite) {
  ChartOptions o;
  Series cdf{"cdf", "green", {{0, 0}, {5, 50}, {9, 100}}, true};
  std::string svg = SvgLineChart(o, {cdf});
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);
  std::string empty = SvgLineChart(o, {});
  EXPECT_EQ(empty.find("nan"), std::string::npos);
  EXPECT_EQ(empty.find("inf"), std::string::npos);
}

TEST(MaxUsersUnderBound, StopsAtTheFirstCountOverTheBound) {
  EXPECT_EQ(MaxUsersUnderBound({{1, 5}, {2, 9}, {4, 120}, {8, 50}}, 100), 2);
  EXPECT_EQ(MaxUsersUnderBound({{4, 10}, {1, 5}, {2, 6}}, 100), 4);
  EXPECT_EQ(MaxUsersUnderBound({{1, 500}}, 100), 0);
  SweepResult s;
  s.max_users_origin = 2;
  s.max_users_edge = 64;
  EXPECT_DOUBLE_EQ(s.ScaleUp(), 32.0);
}

TEST(ParsePrometheus, ReadsSamplesWithLabelsAndSkipsComments) {
  auto m = ParsePrometheus(
      "# HELP x y\n# TYPE cacheportal_edge_hits_total counter\ncacheportal_edge_hits_total 42\n"
      "cacheportal_invalidator_latency_seconds{quantile=\"0.99\"} 0.0125\nbroken line\n");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_DOUBLE_EQ(m["cacheportal_edge_hits_total"], 42);
  EXPECT_DOUBLE_EQ(m["cacheportal_invalidator_latency_seconds{quantile=\"0.99\"}"], 0.0125);
}

TEST(Report, CsvAndHtmlCarryTheRuns) {
  Report rep;
  rep.command = "cacheportal bench --users 4";
  RunResult o, e;
  o.summary.label = "origin";
  o.summary.users = 4;
  o.summary.requests = 100;
  o.summary.throughput = 10;
  e.summary.label = "edge";
  e.summary.users = 4;
  e.summary.requests = 1000;
  e.summary.hits = 950;
  e.summary.throughput = 100;
  e.timeline = {SecondStats{0, 10, 0, 9, 1, 0}};
  WriteRecord w;
  w.seq = 1;
  w.cached_before = true;
  w.latency_ms = 12.5;
  w.pages = {"/item/EST-1 en"};
  e.writes = {w};
  e.metrics_before["cacheportal_edge_ejections_total"] = 3;
  e.metrics_after["cacheportal_edge_ejections_total"] = 7;
  rep.runs = {o, e};
  SweepResult s;
  SweepPoint point;
  point.users = 1;
  point.origin = o.summary;
  point.edge = e.summary;
  point.has_origin = point.has_edge = true;
  s.points = {point};
  s.max_users_origin = 1;
  s.max_users_edge = 1;
  s.max_users_origin_mean = 2;
  s.max_users_edge_mean = 48;
  rep.sweep = s;
  std::string csv = SummaryCsv(rep.runs);
  EXPECT_EQ(Count(csv, "\r\n"), 3);
  EXPECT_NE(csv.find("edge,4,"), std::string::npos);
  EXPECT_NE(csv.find(",0.9500,"), std::string::npos);
  EXPECT_EQ(Count(WritesCsv(rep.runs), "\r\n"), 2);
  EXPECT_EQ(Count(SweepCsv(s), "\r\n"), 2);
  std::string html = ReportHtml(rep);
  EXPECT_NE(html.find("cacheportal bench --users 4"), std::string::npos);
  EXPECT_NE(html.find("95.0% of all requests"), std::string::npos);
  EXPECT_NE(html.find("4 objects ejected"), std::string::npos);
  EXPECT_NE(html.find("Invalidation latency CDF"), std::string::npos);
  EXPECT_GE(Count(html, "<svg "), 4);
  std::string text = ReportText(rep);
  EXPECT_NE(text.find("0 stale pages"), std::string::npos);
  EXPECT_NE(text.find("CPU per request with CachePortal"), std::string::npos);
  EXPECT_NE(csv.find("cpu_us_per_req"), std::string::npos);
  EXPECT_NE(text.find("Under the paper's criterion (mean response time ≤ 100 ms): without cache 2 "
                      "users, with cache 48 users → scale-up 24.0×"),
            std::string::npos);
  EXPECT_NE(SweepCsv(s).find("edge_mean_ms"), std::string::npos);
}

TEST(CpuAccount, ParsesProcStatWithAwkwardComm) {
  std::string comm;
  uint64_t ticks = 0;
  // comm with a space and a ')' ; utime 14th field = 120, stime 15th = 30.
  ASSERT_TRUE(ParseProcStat(
      "4242 (we) ird) S 1 4242 4242 0 -1 4194304 100 0 0 0 120 30 0 0 20 0 1 0 10 0 0", &comm,
      &ticks));
  EXPECT_EQ(comm, "we) ird");
  EXPECT_EQ(ticks, 150u);
  EXPECT_FALSE(ParseProcStat("4242 (short) S 1 2", &comm, &ticks));
  EXPECT_FALSE(ParseProcStat("no parentheses here", &comm, &ticks));
}

TEST(CpuAccount, GroupsProcessesAndCountsNewOnesFromZero) {
  EXPECT_EQ(CpuGroup("cacheportal"), "CachePortal");
  EXPECT_EQ(CpuGroup("cacheportal-ben"), "client");
  EXPECT_EQ(CpuGroup("cacheportal-sto"), "store");
  EXPECT_EQ(CpuGroup("postgres"), "PostgreSQL");
  EXPECT_EQ(CpuGroup("bash"), "other");
  CpuSnapshot a, b;
  a.ok = b.ok = true;
  a.by_pid[1] = {"cacheportal", 100};
  a.by_pid[2] = {"postgres", 50};
  a.by_pid[3] = {"bash", 10};  // pid 3 reused by a new backend below
  b.by_pid[1] = {"cacheportal", 300};
  b.by_pid[2] = {"postgres", 150};
  b.by_pid[3] = {"postgres", 40};
  b.by_pid[4] = {"cacheportal-ben", 25};
  a.machine_busy = 1000, a.machine_total = 2000, a.machine_steal = 0;
  b.machine_busy = 1800, b.machine_total = 3000, b.machine_steal = 10;
  CpuUsage u = CpuBetween(a, b, 100);
  ASSERT_EQ(u.shares.size(), 5u);
  EXPECT_EQ(u.shares[0].group, "CachePortal");
  EXPECT_DOUBLE_EQ(u.shares[0].seconds, 2.0);
  EXPECT_DOUBLE_EQ(u.shares[1].seconds, 0.25);  // client, new since a
  EXPECT_DOUBLE_EQ(u.shares[2].seconds, 0.0);   // store
  EXPECT_DOUBLE_EQ(u.shares[3].seconds, 1.4);   // 1.0 + the new backend's 0.4
  EXPECT_DOUBLE_EQ(u.shares[4].seconds, 0.0);
  EXPECT_DOUBLE_EQ(u.TotalSeconds(), 3.65);
  EXPECT_DOUBLE_EQ(u.machine_busy, 0.8);
  EXPECT_DOUBLE_EQ(u.machine_steal, 0.01);
  EXPECT_EQ(CpuPerRequestText(u, 1000),
            "CachePortal 2000.0, client 250.0, store 0.0, PostgreSQL 1400.0, other 0.0 = 3650.0 "
            "µs of CPU per request; machine busy 80% (1% stolen)");
}

TEST(CpuAccount, SnapshotSeesThisProcess) {
  CpuSnapshot s = TakeCpuSnapshot();
  EXPECT_TRUE(s.ok);
  EXPECT_GT(s.machine_total, 0u);
  EXPECT_EQ(s.by_pid.count(static_cast<int>(getpid())), 1u);
}

}  // namespace
}  // namespace cacheportal::bench

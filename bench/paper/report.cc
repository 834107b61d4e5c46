#include "bench/paper/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace cacheportal::bench {
namespace {

std::string Num(double v, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

double PerRequestUs(double seconds, uint64_t requests) {
  return requests ? 1e6 * seconds / static_cast<double>(requests) : 0;
}

std::string TickLabel(double v) {
  char buf[64];
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e9)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::vector<double> InvalidationLatencies(const RunResult& r) {
  std::vector<double> v;
  for (const auto& w : r.writes)
    if (w.latency_ms >= 0 && w.cached_before) v.push_back(w.latency_ms);
  std::sort(v.begin(), v.end());
  return v;
}

const RunResult* FindRun(const std::vector<RunResult>& runs, std::string_view label) {
  for (const auto& r : runs)
    if (r.summary.label == label) return &r;
  return nullptr;
}

}  // namespace

CsvWriter::CsvWriter(std::vector<std::string> header) : columns_(header.size()) { Row(header); }

std::string CsvWriter::Field(std::string_view f) {
  if (f.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(f);
  std::string out = "\"";
  for (char c : f) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void CsvWriter::Row(const std::vector<std::string>& fields) {
  for (size_t i = 0; i < columns_; ++i) {
    if (i) text_.push_back(',');
    if (i < fields.size()) text_ += Field(fields[i]);
  }
  text_ += "\r\n";
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

std::string SvgLineChart(const ChartOptions& opt, const std::vector<Series>& series) {
  const double ml = 64, mr = 150, mt = 32, mb = 48;
  double pw = opt.width - ml - mr, ph = opt.height - mt - mb;
  auto tx = [&](double x) { return opt.log2_x ? std::log2(std::max(x, 1e-9)) : x; };
  double x0 = 1e300, x1 = -1e300, y1 = opt.y_max;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, tx(x));
      x1 = std::max(x1, tx(x));
      if (opt.y_max <= 0) y1 = std::max(y1, y);
    }
  if (opt.hline > 0 && opt.y_max <= 0) y1 = std::max(y1, opt.hline * 1.1);
  if (x0 > x1) x0 = 0, x1 = 1;
  if (x1 - x0 < 1e-12) x1 = x0 + 1;
  double y0 = opt.y_min;
  if (!(y1 > y0)) y1 = y0 + 1;
  std::vector<double> yt = NiceTicks(y0, y1, 5);
  if (opt.y_max <= 0 && !yt.empty() && yt.back() < y1) {
    double step = yt.size() > 1 ? yt[1] - yt[0] : 1;
    yt.push_back(yt.back() + step);
  }
  if (opt.y_max <= 0 && !yt.empty()) y1 = std::max(y1, yt.back());
  // Log y: whole decades from the smallest positive value to the top.
  double l0 = 0, l1 = 1;
  if (opt.log10_y) {
    double lo = 1e300;
    for (const auto& ser : series)
      for (auto [x, y] : ser.points)
        if (y > 0) lo = std::min(lo, y);
    if (opt.y_min > 0) lo = opt.y_min;
    if (lo > 1e299) lo = 1;
    l0 = std::floor(std::log10(lo));
    l1 = std::max(l0 + 1, std::ceil(std::log10(std::max(y1, lo))));
    yt.clear();
    for (double k = l0; k <= l1 + 1e-9; k += 1) yt.push_back(std::pow(10.0, k));
    y0 = yt.front();
    y1 = yt.back();
  }
  auto px = [&](double x) { return ml + (tx(x) - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) {
    if (opt.log10_y) return mt + ph - (std::log10(std::clamp(y, y0, y1)) - l0) / (l1 - l0) * ph;
    return mt + ph - (std::clamp(y, y0, y1) - y0) / (y1 - y0) * ph;
  };

  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(opt.width) +
                  "\" height=\"" + std::to_string(opt.height) + "\" viewBox=\"0 0 " +
                  std::to_string(opt.width) + " " + std::to_string(opt.height) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + Num(opt.width / 2.0, 1) +
       "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" +
       XmlEscape(opt.title) + "</text>\n";
  // Grid and y ticks.
  for (double t : yt) {
    if (t < y0 - 1e-12 || t > y1 + 1e-12) continue;
    std::string y = Num(py(t), 1);
    s += "<line x1=\"" + Num(ml, 1) + "\" y1=\"" + y + "\" x2=\"" + Num(ml + pw, 1) + "\" y2=\"" +
         y + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + Num(ml - 6, 1) + "\" y=\"" + Num(py(t) + 4, 1) + "\" text-anchor=\"end\">" +
         TickLabel(t) + "</text>\n";
  }
  // X ticks: powers of two on a log axis, nice values otherwise.
  std::vector<double> xt;
  if (opt.log2_x) {
    for (double e = std::ceil(x0 - 1e-9); e <= x1 + 1e-9; e += 1) xt.push_back(std::exp2(e));
  } else {
    xt = NiceTicks(x0, x1, 6);
  }
  for (double t : xt) {
    if (tx(t) < x0 - 1e-9 || tx(t) > x1 + 1e-9) continue;
    std::string x = Num(px(t), 1);
    s += "<line x1=\"" + x + "\" y1=\"" + Num(mt + ph, 1) + "\" x2=\"" + x + "\" y2=\"" +
         Num(mt + ph + 5, 1) + "\" stroke=\"#333\"/>\n";
    s += "<text x=\"" + x + "\" y=\"" + Num(mt + ph + 18, 1) + "\" text-anchor=\"middle\">" +
         TickLabel(t) + "</text>\n";
  }
  s += "<rect x=\"" + Num(ml, 1) + "\" y=\"" + Num(mt, 1) + "\" width=\"" + Num(pw, 1) +
       "\" height=\"" + Num(ph, 1) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + Num(ml + pw / 2, 1) + "\" y=\"" + Num(opt.height - 10.0, 1) +
       "\" text-anchor=\"middle\">" + XmlEscape(opt.x_label) + "</text>\n";
  s += "<text transform=\"translate(16," + Num(mt + ph / 2, 1) +
       ") rotate(-90)\" text-anchor=\"middle\">" + XmlEscape(opt.y_label) + "</text>\n";
  if (opt.hline > 0 && opt.hline <= y1) {
    std::string y = Num(py(opt.hline), 1);
    s += "<line x1=\"" + Num(ml, 1) + "\" y1=\"" + y + "\" x2=\"" + Num(ml + pw, 1) + "\" y2=\"" +
         y + "\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>\n";
    s += "<text x=\"" + Num(ml + pw - 4, 1) + "\" y=\"" + Num(py(opt.hline) - 4, 1) +
         "\" text-anchor=\"end\" fill=\"#c00\">" + XmlEscape(opt.hline_label) + "</text>\n";
  }
  // Series and legend.
  int li = 0;
  for (const auto& ser : series) {
    std::string d;
    double prev_y = 0;
    bool first = true;
    for (auto [x, y] : ser.points) {
      if (ser.step && !first) d += " L" + Num(px(x), 1) + "," + Num(py(prev_y), 1);
      d += std::string(first ? "M" : " L") + Num(px(x), 1) + "," + Num(py(y), 1);
      prev_y = y;
      first = false;
    }
    if (!d.empty())
      s += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + XmlEscape(ser.color) +
           "\" stroke-width=\"2\"/>\n";
    if (!ser.step && ser.points.size() <= 40)
      for (auto [x, y] : ser.points)
        s += "<circle cx=\"" + Num(px(x), 1) + "\" cy=\"" + Num(py(y), 1) + "\" r=\"3\" fill=\"" +
             XmlEscape(ser.color) + "\"/>\n";
    double ly = mt + 10 + li * 18;
    s += "<line x1=\"" + Num(ml + pw + 10, 1) + "\" y1=\"" + Num(ly, 1) + "\" x2=\"" +
         Num(ml + pw + 30, 1) + "\" y2=\"" + Num(ly, 1) + "\" stroke=\"" + XmlEscape(ser.color) +
         "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + Num(ml + pw + 34, 1) + "\" y=\"" + Num(ly + 4, 1) + "\">" +
         XmlEscape(ser.name) + "</text>\n";
    ++li;
  }
  s += "</svg>\n";
  return s;
}

int MaxUsersUnderBound(const std::vector<std::pair<int, double>>& users_p95, double bound_ms) {
  auto sorted = users_p95;
  std::sort(sorted.begin(), sorted.end());
  int best = 0;
  for (auto [u, p95] : sorted) {
    if (p95 > bound_ms) break;
    best = u;
  }
  return best;
}

std::string SummaryCsv(const std::vector<RunResult>& runs) {
  CsvWriter w({"run",
               "users",
               "seconds",
               "requests",
               "errors",
               "throughput_rps",
               "mean_ms",
               "p50_ms",
               "p95_ms",
               "p99_ms",
               "max_ms",
               "hits",
               "misses",
               "passes",
               "hit_ratio",
               "catalog_hit_ratio",
               "writes",
               "inval_samples",
               "inval_p50_ms",
               "inval_p95_ms",
               "inval_p99_ms",
               "inval_max_ms",
               "probe_timeouts",
               "audit_affected",
               "audit_unaffected",
               "audit_late",
               "audit_stale",
               "audit_errors",
               "edge_ejections",
               "checkouts",
               "cpu_us_per_req",
               "cpu_cacheportal_us",
               "cpu_client_us",
               "cpu_store_us",
               "cpu_postgres_us",
               "cpu_other_us",
               "machine_busy"});
  for (const auto& r : runs) {
    const RunSummary& s = r.summary;
    auto lat = InvalidationLatencies(r);
    uint64_t timeouts = 0;
    for (const auto& wr : r.writes) timeouts += wr.timed_out;
    std::vector<std::string> row{s.label,
                                 std::to_string(s.users),
                                 Num(s.seconds, 1),
                                 std::to_string(s.requests),
                                 std::to_string(s.errors),
                                 Num(s.throughput, 1),
                                 Num(s.mean_ms, 3),
                                 Num(s.p50_ms, 3),
                                 Num(s.p95_ms, 3),
                                 Num(s.p99_ms, 3),
                                 Num(s.max_ms, 3),
                                 std::to_string(s.hits),
                                 std::to_string(s.misses),
                                 std::to_string(s.passes),
                                 Num(s.HitRatio(), 4),
                                 Num(s.CatalogHitRatio(), 4),
                                 std::to_string(r.writes.size()),
                                 std::to_string(lat.size()),
                                 Num(Percentile(lat, 50), 2),
                                 Num(Percentile(lat, 95), 2),
                                 Num(Percentile(lat, 99), 2),
                                 Num(lat.empty() ? 0 : lat.back(), 2),
                                 std::to_string(timeouts),
                                 std::to_string(r.audit.affected_checked),
                                 std::to_string(r.audit.unaffected_checked),
                                 std::to_string(r.audit.late),
                                 std::to_string(r.audit.stale),
                                 std::to_string(r.audit.errors),
                                 Num(r.MetricDelta("cacheportal_edge_ejections_total"), 0),
                                 std::to_string(r.checkouts),
                                 Num(r.cpu.UsPerRequest(s.requests), 2)};
    for (size_t g = 0; g < kCpuGroups; ++g)
      row.push_back(Num(PerRequestUs(r.cpu.SecondsOf(g), s.requests), 2));
    row.push_back(Num(r.cpu.machine_busy, 3));
    w.Row(row);
  }
  return w.text();
}

std::string CpuPerRequestText(const CpuUsage& cpu, uint64_t requests) {
  if (cpu.shares.empty() || requests == 0) return "not measured";
  std::string out;
  for (const auto& sh : cpu.shares) {
    if (!out.empty()) out += ", ";
    out += sh.group + " " + Num(PerRequestUs(sh.seconds, requests), 1);
  }
  out += " = " + Num(cpu.UsPerRequest(requests), 1) + " µs of CPU per request; machine busy " +
         Num(100 * cpu.machine_busy, 0) + "%";
  if (cpu.machine_steal > 0.005) out += " (" + Num(100 * cpu.machine_steal, 0) + "% stolen)";
  return out;
}

std::string TimelineCsv(const std::vector<RunResult>& runs) {
  CsvWriter w({"run", "users", "second", "requests", "errors", "hits", "misses", "passes",
               "hit_ratio", "mean_ms", "p50_ms", "p95_ms", "p99_ms"});
  for (const auto& r : runs)
    for (const auto& t : r.timeline)
      w.Row({r.summary.label, std::to_string(r.summary.users), std::to_string(t.second),
             std::to_string(t.requests), std::to_string(t.errors), std::to_string(t.hits),
             std::to_string(t.misses), std::to_string(t.passes), Num(t.HitRatio(), 4),
             Num(t.mean_ms, 3), Num(t.p50_ms, 3), Num(t.p95_ms, 3), Num(t.p99_ms, 3)});
  return w.text();
}

std::string WritesCsv(const std::vector<RunResult>& runs) {
  CsvWriter w({"run", "seq", "kind", "row", "pages", "commit_s", "cached_before", "latency_ms",
               "timed_out"});
  for (const auto& r : runs)
    for (const auto& x : r.writes) {
      std::string pages;
      for (const auto& p : x.pages) pages += (pages.empty() ? "" : ";") + p;
      w.Row({r.summary.label, std::to_string(x.seq), std::string(WriteKindName(x.kind)), x.row,
             pages, Num(x.commit_s, 3), x.cached_before ? "1" : "0", Num(x.latency_ms, 3),
             x.timed_out ? "1" : "0"});
    }
  return w.text();
}

std::string SweepCsv(const SweepResult& sweep) {
  CsvWriter w({"users", "origin_run", "edge_run", "origin_rps", "origin_p50_ms", "origin_p95_ms",
               "origin_p99_ms", "origin_errors", "edge_rps", "edge_p50_ms", "edge_p95_ms",
               "edge_p99_ms", "edge_errors", "edge_hit_ratio", "bound_ms", "origin_cpu_us_per_req",
               "edge_cpu_us_per_req", "origin_mean_ms", "edge_mean_ms"});
  for (const auto& p : sweep.points)
    w.Row({std::to_string(p.users), p.has_origin ? "1" : "0", p.has_edge ? "1" : "0",
           Num(p.origin.throughput, 1), Num(p.origin.p50_ms, 3), Num(p.origin.p95_ms, 3),
           Num(p.origin.p99_ms, 3), std::to_string(p.origin.errors), Num(p.edge.throughput, 1),
           Num(p.edge.p50_ms, 3), Num(p.edge.p95_ms, 3), Num(p.edge.p99_ms, 3),
           std::to_string(p.edge.errors), Num(p.edge.HitRatio(), 4), Num(sweep.bound_ms, 1),
           Num(p.origin_cpu.UsPerRequest(p.origin.requests), 2),
           Num(p.edge_cpu.UsPerRequest(p.edge.requests), 2), Num(p.origin.mean_ms, 3),
           Num(p.edge.mean_ms, 3)});
  return w.text();
}

namespace {

struct Headline {
  std::vector<std::pair<std::string, std::string>> rows;  // label, value
};

Headline MakeHeadline(const Report& rep) {
  Headline h;
  const RunResult* o = FindRun(rep.runs, "origin");
  const RunResult* e = FindRun(rep.runs, "edge");
  auto run_line = [](const RunSummary& s) {
    return Num(s.throughput, 0) + " req/s; p50 " + Num(s.p50_ms) + " ms, p95 " + Num(s.p95_ms) +
           " ms, p99 " + Num(s.p99_ms) + " ms; " + std::to_string(s.errors) + " errors (" +
           std::to_string(s.users) + " users, " + Num(s.seconds, 0) + " s)";
  };
  if (o) h.rows.push_back({"Without cache (store directly)", run_line(o->summary)});
  if (o)
    h.rows.push_back({"CPU per request without cache (µs, all processes on this machine)",
                      CpuPerRequestText(o->cpu, o->summary.requests)});
  if (e) {
    h.rows.push_back({"With CachePortal (edge)", run_line(e->summary)});
    h.rows.push_back({"CPU per request with CachePortal (µs, all processes on this machine)",
                      CpuPerRequestText(e->cpu, e->summary.requests)});
    h.rows.push_back({"Hit ratio", Num(100 * e->summary.HitRatio(), 1) + "% of all requests, " +
                                       Num(100 * e->summary.CatalogHitRatio(), 1) +
                                       "% of catalogue requests"});
    if (o && o->summary.throughput > 0)
      h.rows.push_back({"Throughput ratio (same users)",
                        Num(e->summary.throughput / o->summary.throughput, 1) + "×"});
    auto lat = InvalidationLatencies(*e);
    uint64_t timeouts = 0, uncached = 0;
    for (const auto& w : e->writes) {
      timeouts += w.timed_out;
      uncached += !w.cached_before;
    }
    h.rows.push_back(
        {"Invalidation latency (client-side)",
         lat.empty() ? std::string("no samples")
                     : "p50 " + Num(Percentile(lat, 50)) + " ms, p95 " + Num(Percentile(lat, 95)) +
                           " ms, p99 " + Num(Percentile(lat, 99)) + " ms, max " + Num(lat.back()) +
                           " ms over " + std::to_string(lat.size()) + " writes (" +
                           std::to_string(timeouts) + " never fresh within the probe timeout, " +
                           std::to_string(uncached) + " probed pages were not cached)"});
    auto q = e->metrics_after.find("cacheportal_invalidator_latency_seconds{quantile=\"0.99\"}");
    if (q != e->metrics_after.end())
      h.rows.push_back({"Invalidation latency (invalidator metric, p99 since start)",
                        Num(q->second * 1000, 2) + " ms"});
    size_t changed = 0;
    for (const auto& w : e->writes) changed += w.pages.size();
    std::string ej = e->metrics_after.empty()
                         ? std::string("edge metrics not scraped")
                         : Num(e->MetricDelta("cacheportal_edge_ejections_total"), 0) +
                               " objects ejected by the edge";
    h.rows.push_back({"Ejected vs really changed",
                      ej + "; the writer's " + std::to_string(e->writes.size()) +
                          " changes changed " + std::to_string(changed) +
                          " pages (per language) plus " + std::to_string(e->checkouts) +
                          " shoppers' checkouts (inventory of their items)"});
    h.rows.push_back({"Staleness audit",
                      std::to_string(e->audit.stale) + " stale pages served (" +
                          std::to_string(e->audit.affected_checked) + " affected + " +
                          std::to_string(e->audit.unaffected_checked) +
                          " unaffected pages compared with the store; " +
                          std::to_string(e->audit.late) + " differed " + Num(e->audit.window_s, 1) +
                          " s after their write but agreed within the " + Num(e->audit.bound_s, 0) +
                          " s bound (latest " + Num(e->audit.late_max_s, 1) + " s), " +
                          std::to_string(e->audit.errors) + " fetch errors)"});
  }
  if (rep.sweep) {
    const SweepResult& s = *rep.sweep;
    std::string bound = " under p95 ≤ " + Num(s.bound_ms, 0) + " ms";
    std::string v;
    if (s.ran_origin) v += "without cache " + std::to_string(s.max_users_origin) + " users";
    if (s.ran_origin && s.ran_edge) v += ", ";
    if (s.ran_edge)
      v += "with cache " + std::to_string(s.max_users_edge) +
           (s.edge_capped ? "+ (the largest count swept)" : "") + " users";
    v += bound;
    if (s.ran_origin && s.ran_edge) {
      if (s.max_users_origin > 0)
        v += " → scale-up " + Num(s.ScaleUp(), 1) + "×" + (s.edge_capped ? " (at least)" : "");
      else
        v += " → the store alone misses the bound at every swept count";
    } else {
      v += " (one side only: no scale-up)";
    }
    h.rows.push_back({"Largest number of users under the bound", v});
    if (s.ran_origin && s.ran_edge && s.max_users_origin_mean > 0)
      h.rows.push_back(
          {"Under the paper's criterion (mean response time ≤ " + Num(s.bound_ms, 0) + " ms)",
           "without cache " + std::to_string(s.max_users_origin_mean) + " users, with cache " +
               std::to_string(s.max_users_edge_mean) + (s.edge_capped_mean ? "+" : "") +
               " users → scale-up " + Num(s.ScaleUpMean(), 1) + "×" +
               (s.edge_capped_mean ? " (at least)" : "")});
  }
  return h;
}

}  // namespace

std::string ReportText(const Report& rep) {
  std::string out;
  for (const auto& [k, v] : MakeHeadline(rep).rows) out += k + ": " + v + "\n";
  if (const RunResult* e = FindRun(rep.runs, "edge"))
    for (const auto& p : e->audit.stale_pages) out += "  stale: " + p + "\n";
  return out;
}

std::string ReportHtml(const Report& rep) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>CachePortal bench "
      "report</title>\n<style>body{font-family:sans-serif;max-width:1000px;"
      "margin:24px auto;padding:0 12px;color:#222}table{border-collapse:collapse;margin:8px 0}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
      "th{background:#f3f3f3}code,pre{background:#f6f6f6;padding:2px 4px}pre{padding:8px;"
      "white-space:pre-wrap}figure{margin:12px 0}</style>\n</head>\n<body>\n"
      "<h1>CachePortal: PetStore benchmark</h1>\n";
  h += "<p>Command: <code>" + XmlEscape(rep.command) + "</code><br>Started " +
       XmlEscape(rep.started_at) + "</p>\n";
  if (!rep.setup.empty()) h += "<pre>" + XmlEscape(rep.setup) + "</pre>\n";
  h += "<h2>Results</h2>\n<table>\n";
  for (const auto& [k, v] : MakeHeadline(rep).rows)
    h += "<tr><th>" + XmlEscape(k) + "</th><td>" + XmlEscape(v) + "</td></tr>\n";
  h += "</table>\n";

  const RunResult* o = FindRun(rep.runs, "origin");
  const RunResult* e = FindRun(rep.runs, "edge");
  if (rep.sweep && !rep.sweep->points.empty()) {
    const SweepResult& s = *rep.sweep;
    Series so{"without cache", "#d62728", {}}, se{"with CachePortal", "#1f77b4", {}};
    Series to{"without cache", "#d62728", {}}, te{"with CachePortal", "#1f77b4", {}};
    for (const auto& p : s.points) {
      if (p.has_origin) {
        so.points.push_back({static_cast<double>(p.users), p.origin.p95_ms});
        to.points.push_back({static_cast<double>(p.users), p.origin.throughput});
      }
      if (p.has_edge) {
        se.points.push_back({static_cast<double>(p.users), p.edge.p95_ms});
        te.points.push_back({static_cast<double>(p.users), p.edge.throughput});
      }
    }
    std::vector<Series> p95s, rps;
    if (s.ran_origin) p95s.push_back(so), rps.push_back(to);
    if (s.ran_edge) p95s.push_back(se), rps.push_back(te);
    ChartOptions c;
    c.title = "p95 response time vs concurrent users";
    c.x_label = "concurrent users (log scale)";
    c.y_label = "p95 response time (ms, log scale)";
    c.log2_x = true;
    c.log10_y = true;
    c.hline = s.bound_ms;
    c.hline_label = "bound " + Num(s.bound_ms, 0) + " ms";
    double ymax = 0;
    for (const auto& p : s.points)
      ymax =
          std::max({ymax, p.has_edge ? p.edge.p95_ms : 0.0, p.has_origin ? p.origin.p95_ms : 0.0});
    c.y_max = std::max(ymax, s.bound_ms * 1.2);
    h += "<h2>Response time vs concurrent users</h2>\n<figure>" + SvgLineChart(c, p95s) +
         "<figcaption>p95 per user count (closed loop, think time as configured); the dashed "
         "line is the bound.</figcaption></figure>\n";
    ChartOptions t;
    t.title = "Throughput vs concurrent users";
    t.x_label = "concurrent users (log scale)";
    t.y_label = "requests/s";
    t.log2_x = true;
    h += "<figure>" + SvgLineChart(t, rps) + "</figure>\n";
    h += "<table><tr><th>users</th><th>store req/s</th><th>store p95 ms</th><th>edge req/s</th>"
         "<th>edge p95 ms</th><th>edge hit ratio</th></tr>\n";
    for (const auto& p : s.points)
      h += "<tr><td>" + std::to_string(p.users) + "</td><td>" +
           (p.has_origin ? Num(p.origin.throughput, 0) + "</td><td>" + Num(p.origin.p95_ms)
                         : std::string("–</td><td>–")) +
           "</td><td>" +
           (p.has_edge ? Num(p.edge.throughput, 0) + "</td><td>" + Num(p.edge.p95_ms) +
                             "</td><td>" + Num(100 * p.edge.HitRatio(), 1) + "%"
                       : std::string("–</td><td>–</td><td>–")) +
           "</td></tr>\n";
    h += "</table>\n";
  }
  if (o || e) {
    Series ho{"hit ratio (edge)", "#1f77b4", {}};
    Series ro{"without cache", "#d62728", {}}, re{"with CachePortal", "#1f77b4", {}};
    if (e)
      for (const auto& t : e->timeline)
        if (t.requests) ho.points.push_back({t.second + 1.0, 100 * t.HitRatio()});
    for (const RunResult* r : {o, e}) {
      if (!r) continue;
      Series& s = r == o ? ro : re;
      for (const auto& t : r->timeline)
        s.points.push_back({t.second + 1.0, static_cast<double>(t.requests)});
    }
    if (e) {
      ChartOptions c;
      c.title = "Hit ratio over time (main run, with cache)";
      c.x_label = "second";
      c.y_label = "hits / requests (%)";
      c.y_max = 100;
      h += "<h2>Hit ratio over time</h2>\n<figure>" + SvgLineChart(c, {ho}) + "</figure>\n";
    }
    ChartOptions c;
    c.title = "Throughput over time (main runs)";
    c.x_label = "second";
    c.y_label = "requests/s";
    std::vector<Series> ss;
    if (o) ss.push_back(ro);
    if (e) ss.push_back(re);
    h += "<figure>" + SvgLineChart(c, ss) + "</figure>\n";
  }
  if (e) {
    auto lat = InvalidationLatencies(*e);
    if (!lat.empty()) {
      Series cdf{"client-side probe", "#2ca02c", {}, true};
      cdf.points.push_back({0, 0});
      for (size_t i = 0; i < lat.size(); ++i)
        cdf.points.push_back({lat[i], 100.0 * static_cast<double>(i + 1) / lat.size()});
      ChartOptions c;
      c.title = "Invalidation latency CDF";
      c.x_label = "commit → first fresh page at the edge (ms)";
      c.y_label = "writes (%)";
      c.y_max = 100;
      h +=
          "<h2>Invalidation latency</h2>\n<figure>" + SvgLineChart(c, {cdf}) +
          "<figcaption>Per write: the commit returned to the writer, then the affected page was "
          "polled through the edge every 2 ms until its bytes showed the change. Only writes whose "
          "page was a cache hit just before are counted.</figcaption></figure>\n";
    }
    if (!e->audit.stale_pages.empty()) {
      h += "<h3>Stale pages served</h3>\n<ul>\n";
      for (const auto& p : e->audit.stale_pages)
        h += "<li><code>" + XmlEscape(p) + "</code></li>\n";
      h += "</ul>\n";
    }
  }
  h += "<h2>Files</h2>\n<p><code>summary.csv</code> (one row per run), <code>timeline.csv</code> "
       "(per second), <code>writes.csv</code> (each background change, its pages and its "
       "invalidation latency)" +
       std::string(rep.sweep ? ", <code>sweep.csv</code> (the user-count sweep)" : "") +
       ". Method: <code>bench/paper/README.md</code>.</p>\n</body>\n</html>\n";
  return h;
}

Status WriteReport(const std::string& dir, const Report& rep) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  auto put = [&](const std::string& name, const std::string& text) -> Status {
    std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) return Status::IOError("cannot write " + dir + "/" + name);
    return Status::OK();
  };
  if (Status s = put("summary.csv", SummaryCsv(rep.runs)); !s.ok()) return s;
  if (Status s = put("timeline.csv", TimelineCsv(rep.runs)); !s.ok()) return s;
  if (Status s = put("writes.csv", WritesCsv(rep.runs)); !s.ok()) return s;
  if (rep.sweep)
    if (Status s = put("sweep.csv", SweepCsv(*rep.sweep)); !s.ok()) return s;
  return put("report.html", ReportHtml(rep));
}

}  // namespace cacheportal::bench

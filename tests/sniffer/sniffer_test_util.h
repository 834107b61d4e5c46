// Shared pieces of the sniffer's integration tests: a recording sink, a
// sniffer started in-process in front of the throwaway server, shell
// commands with captured output, and a bounded polling helper.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/statement_sink.h"
#include "common/traceparent.h"
#include "sniffer/sniffer.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/test_env.h"

namespace cacheportal::testing {

struct Recorded {
  std::string request_id;
  CapturedStatement statement;
};

class RecordingSink : public StatementSink {
 public:
  // Runs inside OnStatement, on the sniffer's thread, before the statement
  // is relayed. Set before any traffic.
  std::function<void(std::string_view, const CapturedStatement&)> hook;

  void OnStatement(std::string_view request_id, CapturedStatement st) override {
    if (hook) hook(request_id, st);
    std::lock_guard lock(mu_);
    records_.push_back({std::string(request_id), std::move(st)});
  }
  std::vector<Recorded> Records() const {
    std::lock_guard lock(mu_);
    return records_;
  }
  // Records whose SQL contains `needle`.
  std::vector<Recorded> Matching(const std::string& needle) const {
    std::vector<Recorded> out;
    for (auto& r : Records()) {
      if (r.statement.sql.find(needle) != std::string::npos) out.push_back(r);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Recorded> records_;
};

inline uint16_t TestPgPort() { return static_cast<uint16_t>(std::atoi(kTestPgPort)); }

// A sniffer on an ephemeral port relaying to the test server.
inline std::unique_ptr<Sniffer> StartProxy(StatementSink* sink, SnifferOptions o = {}) {
  o.listen_address = "127.0.0.1";
  o.listen_port = 0;
  o.upstream_host = "127.0.0.1";
  o.upstream_port = TestPgPort();
  auto s = Sniffer::Start(o, sink);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  return std::move(s).value();
}

inline std::string ProxyConninfo(const Sniffer& s, const std::string& dbname,
                                 const std::string& extra = "") {
  return "host=127.0.0.1 port=" + std::to_string(s.port()) + " user=postgres dbname=" + dbname +
         (extra.empty() ? "" : " " + extra);
}

inline std::string DirectConninfo(const std::string& dbname) {
  return "host=127.0.0.1 port=" + std::to_string(TestPgPort()) + " user=postgres dbname=" + dbname;
}

// `/*traceparent='00-<trace_id>-…-01'*/` for a 32-hex trace id.
inline std::string Comment(const std::string& trace_id) {
  TraceParent tp;
  tp.trace_id = trace_id;
  tp.parent_id = "00f067aa0ba902b7";
  return SqlCommentFor(tp);
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult RunShell(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Polls `cond` until it holds or `timeout` passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

inline std::string PgBench() {
  for (const char* p : {"/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "pgbench";
}

}  // namespace cacheportal::testing

// One Options struct per part, filled from config/cacheportal.yaml.
// Every field documents its meaning and its default; config/cacheportal.yaml
// is the annotated reference and README.md's "Config reference" mirrors it.
// Parts receive only their own struct (plus CommonOptions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cacheportal {

struct CommonOptions {
  // Log threshold: debug | info | warn | error. Default: info.
  std::string log_level = "info";
  // Secret for the signed session cookie `sid` (HMAC-SHA256), shared by the
  // store and the edge. Default: a development secret; change it in production.
  std::string session_secret = "cacheportal-dev-secret-change-me";
  // libpq conninfo of the origin database (direct, not through the sniffer).
  // Default: the throwaway cluster of scripts/pg.
  std::string database = "host=127.0.0.1 port=55432 user=postgres dbname=postgres";
};

struct StoreOptions {
  // Where the sample store listens. Default: 127.0.0.1:8081.
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8081;
  // libpq conninfo the store uses for its SQL; point it at the sniffer
  // (port 6433) to let CachePortal learn the queries. Default: "" = common.database.
  std::string database;
  // Connections in the store's pool. Default: 8.
  int pool_size = 8;
  // Worker threads serving HTTP. Default: 4.
  int threads = 4;
  // Largest accepted request body in bytes (413 above). Default: 65536.
  uint64_t max_body_bytes = 65536;
  // Session cookie lifetime in seconds. Default: 86400.
  int64_t session_ttl_seconds = 86400;
};

struct SnifferOptions {
  // Where the wire-protocol proxy listens. Default: 127.0.0.1:6433.
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 6433;
  // The PostgreSQL server it relays to. Default: 127.0.0.1:55432.
  std::string upstream_host = "127.0.0.1";
  uint16_t upstream_port = 55432;
  // Seconds to establish the upstream connection. Default: 10.
  int connect_timeout_seconds = 10;
  // Close a client connection idle this long (0 = never). Default: 0.
  int idle_timeout_seconds = 0;
  // Largest protocol message accepted from either side, in bytes (a larger
  // one closes the connection with 08P01). Default: 1 GiB, PostgreSQL's own limit.
  uint64_t max_message_bytes = 1ull << 30;
  // Prepared statements remembered per connection (name → SQL). Default: 1024.
  int max_prepared_per_connection = 1024;
  // I/O threads relaying connections (each connection stays on one). On a
  // small machine shared with the database, 1 is fastest. Default: 1.
  int threads = 1;
  // After relaying, a relay thread keeps polling its sockets this long
  // (yielding the CPU to anything runnable between polls) before it sleeps:
  // a reply that arrives meanwhile is relayed without a wake-up, which on a
  // virtual machine means without waking an idle vCPU. Costs up to that much
  // CPU per burst of traffic, none when idle. 0 = sleep at once. Default: 50.
  int poll_microseconds = 50;
};
inline constexpr int kMaxPollMicroseconds = 100000;  // sniffer.poll_microseconds

struct SqlMapOptions {
  // RocksDB directory of the page ⇄ query ⇄ table map. Default: var/sqlmap.
  std::string path = "var/sqlmap";
  // Tables written by every request and read by none that matter (the
  // paper's tracking tables): ignored for reads and writes. Default: [public.access_log].
  std::vector<std::string> logging_tables = {"public.access_log"};
  // fsync each map write batch. Default: false (the map is rebuilt by
  // ejecting everything if it is lost; see invalidator.eject_all_on_map_loss).
  bool sync_writes = false;
};

struct InvalidatorOptions {
  // Replication slot and publication names. Defaults: cacheportal, cacheportal.
  std::string slot_name = "cacheportal";
  std::string publication_name = "cacheportal";
  // Tables to monitor; empty = every table in the publication's schemas
  // (public) except logging tables. Default: [] (all).
  std::vector<std::string> tables;
  // Set REPLICA IDENTITY FULL on monitored tables so old rows are available.
  // Default: true (costs WAL volume: whole old rows are logged).
  bool replica_identity_full = true;
  // Above this lag (seconds of commit time) the edge stops serving hits.
  // Default: 5.
  double max_staleness_seconds = 5.0;
  // How joins are decided when the changed row satisfies its own predicates:
  // "poll" (run the instance against the database) or "conservative" (eject).
  // Default: poll.
  std::string join_mode = "poll";
  // Seconds between standby status updates. Default: 10.
  int status_interval_seconds = 10;
};

struct EdgeOptions {
  // Public listener. Default: 127.0.0.1:8080.
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8080;
  // Admin listener (purge, ban, /metrics, /stats). Default: 127.0.0.1:8090.
  std::string admin_address = "127.0.0.1";
  uint16_t admin_port = 8090;
  // Bearer token for the admin listener. Default: "" = admin API refuses all.
  std::string admin_token;
  // Origin (the app). Default: 127.0.0.1:8081.
  std::string origin_host = "127.0.0.1";
  uint16_t origin_port = 8081;
  // Rules file (differentiator). Default: config/rules.yaml.
  std::string rules_file = "config/rules.yaml";
  // Bytes of bodies+headers kept in memory. Default: 256 MiB.
  uint64_t memory_budget_bytes = 256ull << 20;
  // Worker threads. Default: 2.
  int threads = 2;
  // Limits. Defaults: 16 KiB headers, 1 MiB request body, 16 MiB origin body.
  uint64_t max_header_bytes = 16 * 1024;
  uint64_t max_request_body_bytes = 1 << 20;
  uint64_t max_origin_body_bytes = 16 << 20;
  // Timeouts in seconds. Defaults: idle 30, origin 10.
  int idle_timeout_seconds = 30;
  int origin_timeout_seconds = 10;
  // Read-your-writes window after a session's POST, seconds. Default: 2.
  double read_your_writes_seconds = 2.0;
  // Client `Cache-Control: no-cache`: "ignore" or "revalidate" (refetch). Default: ignore.
  std::string client_no_cache = "ignore";
  // Optional RocksDB second tier for warm restarts ("" = off). Default: "".
  std::string disk_tier_path;
  // Bytes of records the disk tier keeps (oldest dropped first). Default: 1 GiB.
  uint64_t disk_tier_budget_bytes = 1ull << 30;
};

struct CachePortalConfig {
  std::string source_file;  // where it was loaded from, for messages
  CommonOptions common;
  StoreOptions store;
  SnifferOptions sniffer;
  SqlMapOptions sqlmap;
  InvalidatorOptions invalidator;
  EdgeOptions edge;
};

}  // namespace cacheportal

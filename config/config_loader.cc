#include "config/config_loader.h"

#include "common/log.h"
#include "config/yaml_reader.h"

namespace cacheportal {
namespace {

void ReadCommon(MapReader& r, CommonOptions& o) {
  r.Get("log_level", &o.log_level);
  r.Get("session_secret", &o.session_secret);
  r.Get("database", &o.database);
}

void ReadStore(MapReader& r, StoreOptions& o) {
  r.Get("listen_address", &o.listen_address);
  r.Get("listen_port", &o.listen_port);
  r.Get("database", &o.database);
  r.Get("pool_size", &o.pool_size);
  r.Get("threads", &o.threads);
  r.Get("max_body_bytes", &o.max_body_bytes);
  r.Get("session_ttl_seconds", &o.session_ttl_seconds);
}

void ReadSniffer(MapReader& r, SnifferOptions& o) {
  r.Get("listen_address", &o.listen_address);
  r.Get("listen_port", &o.listen_port);
  r.Get("upstream_host", &o.upstream_host);
  r.Get("upstream_port", &o.upstream_port);
  r.Get("connect_timeout_seconds", &o.connect_timeout_seconds);
  r.Get("idle_timeout_seconds", &o.idle_timeout_seconds);
  r.Get("max_message_bytes", &o.max_message_bytes);
  r.Get("max_prepared_per_connection", &o.max_prepared_per_connection);
  r.Get("threads", &o.threads);
  r.Get("poll_microseconds", &o.poll_microseconds);
}

void ReadSqlMap(MapReader& r, SqlMapOptions& o) {
  r.Get("path", &o.path);
  r.Get("logging_tables", &o.logging_tables);
  r.Get("sync_writes", &o.sync_writes);
}

void ReadInvalidator(MapReader& r, InvalidatorOptions& o) {
  r.Get("slot_name", &o.slot_name);
  r.Get("publication_name", &o.publication_name);
  r.Get("tables", &o.tables);
  r.Get("replica_identity_full", &o.replica_identity_full);
  r.Get("max_staleness_seconds", &o.max_staleness_seconds);
  r.Get("join_mode", &o.join_mode);
  r.Get("status_interval_seconds", &o.status_interval_seconds);
}

void ReadEdge(MapReader& r, EdgeOptions& o) {
  r.Get("listen_address", &o.listen_address);
  r.Get("listen_port", &o.listen_port);
  r.Get("admin_address", &o.admin_address);
  r.Get("admin_port", &o.admin_port);
  r.Get("admin_token", &o.admin_token);
  r.Get("origin_host", &o.origin_host);
  r.Get("origin_port", &o.origin_port);
  r.Get("rules_file", &o.rules_file);
  r.Get("memory_budget_bytes", &o.memory_budget_bytes);
  r.Get("threads", &o.threads);
  r.Get("max_header_bytes", &o.max_header_bytes);
  r.Get("max_request_body_bytes", &o.max_request_body_bytes);
  r.Get("max_origin_body_bytes", &o.max_origin_body_bytes);
  r.Get("idle_timeout_seconds", &o.idle_timeout_seconds);
  r.Get("origin_timeout_seconds", &o.origin_timeout_seconds);
  r.Get("read_your_writes_seconds", &o.read_your_writes_seconds);
  r.Get("client_no_cache", &o.client_no_cache);
  r.Get("disk_tier_path", &o.disk_tier_path);
  r.Get("disk_tier_budget_bytes", &o.disk_tier_budget_bytes);
}

// Cross-field checks that a type check cannot express.
void Validate(const CachePortalConfig& c, const YAML::Node& root, YamlDiagnostics& diag) {
  log::Level level;
  if (!log::ParseLevel(c.common.log_level, &level))
    diag.Add(root["common"]["log_level"], "'common.log_level' must be debug, info, warn or error");
  if (c.invalidator.join_mode != "poll" && c.invalidator.join_mode != "conservative")
    diag.Add(root["invalidator"]["join_mode"],
             "'invalidator.join_mode' must be poll or conservative");
  if (c.edge.client_no_cache != "ignore" && c.edge.client_no_cache != "revalidate")
    diag.Add(root["edge"]["client_no_cache"],
             "'edge.client_no_cache' must be ignore or revalidate");
  if (c.store.pool_size < 1) diag.Add(root["store"]["pool_size"], "'store.pool_size' must be >= 1");
  if (c.store.threads < 1) diag.Add(root["store"]["threads"], "'store.threads' must be >= 1");
  if (c.edge.threads < 1) diag.Add(root["edge"]["threads"], "'edge.threads' must be >= 1");
  if (c.sniffer.poll_microseconds < 0 || c.sniffer.poll_microseconds > kMaxPollMicroseconds)
    diag.Add(root["sniffer"]["poll_microseconds"],
             "'sniffer.poll_microseconds' must be between 0 and " +
                 std::to_string(kMaxPollMicroseconds));
  if (c.invalidator.max_staleness_seconds <= 0)
    diag.Add(root["invalidator"]["max_staleness_seconds"],
             "'invalidator.max_staleness_seconds' must be > 0");
}

Result<CachePortalConfig> Build(const YAML::Node& root, YamlDiagnostics& diag,
                                const std::string& name) {
  CachePortalConfig c;
  c.source_file = name;
  if (diag.empty() && root.IsDefined() && !root.IsNull()) {
    MapReader top(root, "", diag);
    {
      MapReader r(top.Child("common"), "common", diag);
      ReadCommon(r, c.common);
    }
    {
      MapReader r(top.Child("store"), "store", diag);
      ReadStore(r, c.store);
    }
    {
      MapReader r(top.Child("sniffer"), "sniffer", diag);
      ReadSniffer(r, c.sniffer);
    }
    {
      MapReader r(top.Child("sqlmap"), "sqlmap", diag);
      ReadSqlMap(r, c.sqlmap);
    }
    {
      MapReader r(top.Child("invalidator"), "invalidator", diag);
      ReadInvalidator(r, c.invalidator);
    }
    {
      MapReader r(top.Child("edge"), "edge", diag);
      ReadEdge(r, c.edge);
    }
    top.Finish();
    if (diag.empty()) Validate(c, root, diag);
  }
  if (!diag.empty()) return Status::InvalidArgument(diag.Joined());
  if (c.store.database.empty()) c.store.database = c.common.database;
  return c;
}

}  // namespace

Result<CachePortalConfig> LoadConfigFile(const std::string& path) {
  YamlDiagnostics diag(path);
  YAML::Node root = LoadYamlFile(path, diag);
  return Build(root, diag, path);
}

Result<CachePortalConfig> LoadConfigText(std::string_view text, const std::string& name) {
  YamlDiagnostics diag(name);
  YAML::Node root = LoadYamlText(text, diag);
  return Build(root, diag, name);
}

}  // namespace cacheportal

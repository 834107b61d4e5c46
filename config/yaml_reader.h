// Strict YAML reading with file:line:column diagnostics, shared by the config
// loader and the differentiator's rules loader.
//
//   YamlDiagnostics diag("config/cacheportal.yaml");
//   MapReader edge(root["edge"], "edge", diag);
//   edge.Get("listen_port", &opts.listen_port);   // type-checked
//   edge.Finish();                                // unknown keys become errors
//
// Every problem is collected (not just the first) so an admin fixes a file in
// one pass.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cacheportal {

class YamlDiagnostics {
 public:
  explicit YamlDiagnostics(std::string file) : file_(std::move(file)) {}
  // "file:line:col: msg" (line/col 1-based) when the node has a position.
  void Add(const YAML::Node& at, std::string_view msg);
  void AddAtMark(const YAML::Mark& mark, std::string_view msg);
  void AddGlobal(std::string_view msg);
  bool empty() const { return messages_.empty(); }
  const std::vector<std::string>& messages() const { return messages_; }
  std::string Joined() const;  // one message per line
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> messages_;
};

// Loads a document; a syntax error is reported with its position.
// Returns a null node on failure (diagnostics say why).
YAML::Node LoadYamlFile(const std::string& path, YamlDiagnostics& diag);
YAML::Node LoadYamlText(std::string_view text, YamlDiagnostics& diag);

class MapReader {
 public:
  // `node` may be undefined/null (then every Get leaves defaults untouched);
  // anything else but a map is an error. `path` names it in messages ("edge").
  MapReader(const YAML::Node& node, std::string path, YamlDiagnostics& diag);

  bool Has(std::string_view key) const;
  // Each Get leaves *out untouched when the key is absent, and records an
  // error when the value has the wrong type or is out of range.
  void Get(std::string_view key, std::string* out);
  void Get(std::string_view key, bool* out);
  void Get(std::string_view key, int* out);
  void Get(std::string_view key, int64_t* out);
  void Get(std::string_view key, uint16_t* out);
  void Get(std::string_view key, uint64_t* out);
  void Get(std::string_view key, double* out);
  void Get(std::string_view key, std::vector<std::string>* out);
  // A required key: absent is an error.
  void Require(std::string_view key);
  // Child node for nested readers; marks the key as known.
  YAML::Node Child(std::string_view key);
  // Reports keys never asked for. Called by the destructor if not called.
  void Finish();
  ~MapReader();

  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node Lookup(std::string_view key);
  std::string KeyPath(std::string_view key) const;

  YAML::Node node_;
  std::string path_;
  YamlDiagnostics& diag_;
  std::set<std::string, std::less<>> known_;
  bool valid_ = false;
  bool finished_ = false;
};

}  // namespace cacheportal

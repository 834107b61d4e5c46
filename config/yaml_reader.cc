#include "config/yaml_reader.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace cacheportal {

void YamlDiagnostics::AddAtMark(const YAML::Mark& mark, std::string_view msg) {
  std::string m = file_;
  if (mark.line >= 0) {
    m += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  m += ": ";
  m += msg;
  messages_.push_back(std::move(m));
}

void YamlDiagnostics::Add(const YAML::Node& at, std::string_view msg) {
  if (at.IsDefined()) {
    AddAtMark(at.Mark(), msg);
  } else {
    AddGlobal(msg);
  }
}

void YamlDiagnostics::AddGlobal(std::string_view msg) {
  messages_.push_back(file_ + ": " + std::string(msg));
}

std::string YamlDiagnostics::Joined() const {
  std::string out;
  for (const auto& m : messages_) {
    if (!out.empty()) out += "\n";
    out += m;
  }
  return out;
}

YAML::Node LoadYamlText(std::string_view text, YamlDiagnostics& diag) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    diag.AddAtMark(e.mark, "YAML syntax error: " + e.msg);
    return YAML::Node(YAML::NodeType::Null);
  }
}

YAML::Node LoadYamlFile(const std::string& path, YamlDiagnostics& diag) {
  std::ifstream in(path);
  if (!in) {
    diag.AddGlobal("cannot open file");
    return YAML::Node(YAML::NodeType::Null);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadYamlText(ss.str(), diag);
}

MapReader::MapReader(const YAML::Node& node, std::string path, YamlDiagnostics& diag)
    : node_(node), path_(std::move(path)), diag_(diag) {
  if (!node_.IsDefined() || node_.IsNull()) return;
  if (!node_.IsMap()) {
    diag_.Add(node_, "'" + path_ + "' must be a mapping of key: value");
    return;
  }
  valid_ = true;
}

MapReader::~MapReader() { Finish(); }

std::string MapReader::KeyPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool MapReader::Has(std::string_view key) const {
  if (!valid_) return false;
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return true;
  }
  return false;
}

YAML::Node MapReader::Lookup(std::string_view key) {
  known_.insert(std::string(key));
  if (!valid_) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node MapReader::Child(std::string_view key) { return Lookup(key); }

void MapReader::Require(std::string_view key) {
  known_.insert(std::string(key));
  if (!Has(key)) {
    if (valid_) {
      diag_.Add(node_, "missing required key '" + KeyPath(key) + "'");
    } else {
      diag_.AddGlobal("missing required key '" + KeyPath(key) + "'");
    }
  }
}

void MapReader::Get(std::string_view key, std::string* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) {
    diag_.Add(n, "'" + KeyPath(key) + "' must be a string");
    return;
  }
  *out = n.Scalar();
}

void MapReader::Get(std::string_view key, bool* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  if (s == "true" || s == "yes" || s == "on") {
    *out = true;
  } else if (s == "false" || s == "no" || s == "off") {
    *out = false;
  } else {
    diag_.Add(n, "'" + KeyPath(key) + "' must be true or false");
  }
}

namespace {
template <typename T>
bool ParseInteger(const YAML::Node& n, T* out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
}  // namespace

void MapReader::Get(std::string_view key, int* out) {
  YAML::Node n = Lookup(key);
  if (n.IsDefined() && !ParseInteger(n, out))
    diag_.Add(n, "'" + KeyPath(key) + "' must be an integer");
}
void MapReader::Get(std::string_view key, int64_t* out) {
  YAML::Node n = Lookup(key);
  if (n.IsDefined() && !ParseInteger(n, out))
    diag_.Add(n, "'" + KeyPath(key) + "' must be an integer");
}
void MapReader::Get(std::string_view key, uint64_t* out) {
  YAML::Node n = Lookup(key);
  if (n.IsDefined() && !ParseInteger(n, out))
    diag_.Add(n, "'" + KeyPath(key) + "' must be a non-negative integer");
}
void MapReader::Get(std::string_view key, uint16_t* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  uint16_t v = 0;
  if (!ParseInteger(n, &v) || v == 0) {
    diag_.Add(n, "'" + KeyPath(key) + "' must be a port number 1-65535");
    return;
  }
  *out = v;
}
void MapReader::Get(std::string_view key, double* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  try {
    double v = n.as<double>();
    if (!std::isfinite(v)) throw YAML::Exception(n.Mark(), "not finite");
    *out = v;
  } catch (const YAML::Exception&) {
    diag_.Add(n, "'" + KeyPath(key) + "' must be a number");
  }
}
void MapReader::Get(std::string_view key, std::vector<std::string>* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsSequence()) {
    diag_.Add(n, "'" + KeyPath(key) + "' must be a list of strings");
    return;
  }
  std::vector<std::string> v;
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      diag_.Add(item, "'" + KeyPath(key) + "' items must be strings");
      return;
    }
    v.push_back(item.Scalar());
  }
  *out = std::move(v);
}

void MapReader::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!valid_) return;
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string("<non-scalar>");
    if (!known_.count(k)) diag_.Add(kv.first, "unknown key '" + KeyPath(k) + "'");
  }
}

}  // namespace cacheportal

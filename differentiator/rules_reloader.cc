#include "differentiator/rules_reloader.h"

#include <fstream>
#include <sstream>

#include "common/log.h"

namespace cacheportal::differentiator {
namespace {

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

}  // namespace

const char* CheckOutcomeName(RulesReloader::CheckOutcome o) {
  switch (o) {
    case RulesReloader::CheckOutcome::kUnchanged:
      return "unchanged";
    case RulesReloader::CheckOutcome::kReloaded:
      return "reloaded";
    case RulesReloader::CheckOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

Result<std::unique_ptr<RulesReloader>> RulesReloader::Create(std::string path,
                                                             std::string session_secret) {
  std::unique_ptr<RulesReloader> r(new RulesReloader(std::move(path), std::move(session_secret)));
  std::string text;
  if (!ReadWholeFile(r->path_, &text)) {
    return Status::InvalidArgument(r->path_ + ": cannot open rules file");
  }
  auto loaded = RuleSet::LoadText(text, r->path_, r->secret_);
  if (!loaded.ok()) return loaded.status();
  r->current_ = std::move(loaded.value());
  r->last_content_hash_ = Fnv1a64(text);
  r->have_content_hash_ = true;
  log::Info("differentiator", "rules loaded",
            {{"file", r->path_}, {"rules", std::to_string(r->current_->RuleCount())}});
  return r;
}

std::shared_ptr<const RuleSet> RulesReloader::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::string RulesReloader::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

RulesReloader::CheckOutcome RulesReloader::CheckNow() {
  std::lock_guard<std::mutex> check_lock(check_mu_);
  std::string text;
  std::string error;
  std::shared_ptr<const RuleSet> loaded_set;
  if (!ReadWholeFile(path_, &text)) {
    // A missing file (mid-replace, or deleted) is a failure once, not per check.
    text.clear();
    error = path_ + ": cannot open rules file";
  }
  // The error text is part of what we remember, so "missing" and "empty"
  // are different states even though both read as "".
  uint64_t h = Fnv1a64(text) ^ (error.empty() ? 0 : 0x9e3779b97f4a7c15ull);
  if (have_content_hash_ && h == last_content_hash_) return CheckOutcome::kUnchanged;
  last_content_hash_ = h;
  have_content_hash_ = true;
  if (error.empty()) {
    auto loaded = RuleSet::LoadText(text, path_, secret_);
    if (loaded.ok()) {
      loaded_set = std::move(loaded.value());
    } else {
      error = loaded.status().message();
    }
  }
  if (!error.empty()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = error;
    }
    reloads_failed_.fetch_add(1, std::memory_order_relaxed);
    last_failed_.store(true, std::memory_order_relaxed);
    log::Error("differentiator", "rules reload failed; keeping the previous rules",
               {{"file", path_}, {"error", error}});
    return CheckOutcome::kFailed;
  }
  size_t n = loaded_set->RuleCount();
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(loaded_set);
    last_error_.clear();
  }
  reloads_ok_.fetch_add(1, std::memory_order_relaxed);
  last_failed_.store(false, std::memory_order_relaxed);
  log::Info("differentiator", "rules reloaded", {{"file", path_}, {"rules", std::to_string(n)}});
  return CheckOutcome::kReloaded;
}

}  // namespace cacheportal::differentiator

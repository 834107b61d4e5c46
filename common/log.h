// Structured, levelled logging: one line per event, logfmt style
//   ts=2026-11-24T11:20:00.123Z level=warn part=sniffer msg="upstream closed" conn=12
// Thread-safe (one write(2) per line). The level threshold is process-wide.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace cacheportal::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLevel(Level level);
Level GetLevel();
// Parses "debug|info|warn|error|off"; returns false on anything else.
bool ParseLevel(std::string_view text, Level* out);

using Field = std::pair<std::string_view, std::string>;

void Write(Level level, std::string_view part, std::string_view msg,
           std::initializer_list<Field> fields = {});

inline void Debug(std::string_view part, std::string_view msg,
                  std::initializer_list<Field> f = {}) {
  if (GetLevel() <= Level::kDebug) Write(Level::kDebug, part, msg, f);
}
inline void Info(std::string_view part, std::string_view msg, std::initializer_list<Field> f = {}) {
  if (GetLevel() <= Level::kInfo) Write(Level::kInfo, part, msg, f);
}
inline void Warn(std::string_view part, std::string_view msg, std::initializer_list<Field> f = {}) {
  if (GetLevel() <= Level::kWarn) Write(Level::kWarn, part, msg, f);
}
inline void Error(std::string_view part, std::string_view msg,
                  std::initializer_list<Field> f = {}) {
  if (GetLevel() <= Level::kError) Write(Level::kError, part, msg, f);
}

}  // namespace cacheportal::log

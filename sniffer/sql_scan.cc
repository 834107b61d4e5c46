#include "sniffer/sql_scan.h"

#include <cctype>

namespace cacheportal::sniffer {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}

struct Word {
  std::string text;
  bool quoted = false;
};

void Classify(const std::vector<Word>& w, std::vector<SessionCommand>& out) {
  if (w.empty() || w[0].quoted) return;
  const std::string& a = w[0].text;
  if (a == "begin") {
    out.push_back({SessionCommandKind::kBegin, {}});
  } else if (a == "start" && w.size() > 1 && !w[1].quoted && w[1].text == "transaction") {
    out.push_back({SessionCommandKind::kBegin, {}});
  } else if (a == "discard" && w.size() > 1 && !w[1].quoted && w[1].text == "all") {
    out.push_back({SessionCommandKind::kDiscardAll, {}});
  } else if (a == "deallocate" && w.size() > 1) {
    size_t i = (!w[1].quoted && w[1].text == "prepare") ? 2 : 1;
    if (i >= w.size()) return;
    if (!w[i].quoted && w[i].text == "all") {
      out.push_back({SessionCommandKind::kDeallocateAll, {}});
    } else {
      out.push_back({SessionCommandKind::kDeallocate, w[i].text});
    }
  }
}

}  // namespace

std::vector<SessionCommand> ScanSessionCommands(std::string_view sql) {
  std::vector<SessionCommand> out;
  std::vector<Word> words;   // first few words of the current statement
  bool other_token = false;  // a non-word token came before the words we have
  auto end_statement = [&] {
    Classify(words, out);
    words.clear();
    other_token = false;
  };
  auto add_word = [&](Word w) {
    if (!other_token && words.size() < 3) words.push_back(std::move(w));
  };
  const size_t n = sql.size();
  size_t i = 0;
  while (i < n) {
    char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 1;  // PostgreSQL nests block comments
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      }
    } else if (c == ';') {
      end_statement();
      ++i;
    } else if (c == '\'' || ((c == 'e' || c == 'E') && i + 1 < n && sql[i + 1] == '\'')) {
      bool backslash = c != '\'';
      i += backslash ? 2 : 1;
      while (i < n) {
        if (backslash && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == '\'') {
          if (i + 1 < n && sql[i + 1] == '\'') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      other_token = true;
    } else if (c == '"') {
      std::string text;
      ++i;
      while (i < n) {
        if (sql[i] == '"') {
          if (i + 1 < n && sql[i + 1] == '"') {
            text.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        text.push_back(sql[i++]);
      }
      add_word({std::move(text), true});
    } else if (c == '$' && i + 1 < n && (sql[i + 1] == '$' || IsIdentStart(sql[i + 1]))) {
      // Dollar quoting: $tag$ … $tag$ (a $n parameter is not followed by a tag end).
      size_t j = i + 1;
      while (j < n && sql[j] != '$' && IsIdentChar(sql[j]) && sql[j] != '$') ++j;
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t close = sql.find(tag, j + 1);
        i = close == std::string_view::npos ? n : close + tag.size();
      } else {
        i = j;
      }
      other_token = true;
    } else if (IsIdentStart(c)) {
      size_t j = i;
      while (j < n && IsIdentChar(sql[j])) ++j;
      std::string text(sql.substr(i, j - i));
      for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      add_word({std::move(text), false});
      i = j;
    } else {
      other_token = true;
      ++i;
    }
  }
  end_statement();
  return out;
}

}  // namespace cacheportal::sniffer

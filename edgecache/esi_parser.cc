#include "edgecache/esi_parser.h"

#include <algorithm>

namespace cacheportal::edge {

namespace {
constexpr std::string_view kOpen = "<esi:";
constexpr std::string_view kClose = "</esi:";
constexpr std::string_view kCommentOpen = "<!--esi";
constexpr std::string_view kCommentClose = "-->";

bool IsPrefixOf(std::string_view s, std::string_view full) {
  return s.size() <= full.size() && full.substr(0, s.size()) == s;
}

std::string DecodeEntities(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&' && s.substr(i, 5) == "&amp;") {
      out += '&';
      i += 4;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Value of attribute `name` in a tag's text, quoted with ' or ".
bool Attribute(std::string_view tag, std::string_view name, std::string* value) {
  size_t i = 0;
  while ((i = tag.find(name, i)) != std::string_view::npos) {
    bool word_start = i > 0 && (tag[i - 1] == ' ' || tag[i - 1] == '\t' || tag[i - 1] == '\n' ||
                                tag[i - 1] == '\r');
    size_t j = i + name.size();
    while (j < tag.size() && tag[j] == ' ') ++j;
    if (word_start && j < tag.size() && tag[j] == '=') {
      ++j;
      while (j < tag.size() && tag[j] == ' ') ++j;
      if (j < tag.size() && (tag[j] == '"' || tag[j] == '\'')) {
        char q = tag[j];
        size_t end = tag.find(q, j + 1);
        if (end == std::string_view::npos) return false;
        *value = DecodeEntities(tag.substr(j + 1, end - j - 1));
        return true;
      }
      return false;
    }
    i = j;
  }
  return false;
}

// "<esi:include src=... />" → "include"
std::string_view ElementName(std::string_view tag, size_t prefix) {
  std::string_view rest = tag.substr(prefix);
  size_t end = rest.find_first_of(" \t\r\n/>");
  return rest.substr(0, end);
}
}  // namespace

size_t EsiParser::include_count() const {
  return std::count_if(out_.begin(), out_.end(), [](const EsiInstruction& i) {
    return i.kind == EsiInstruction::Kind::kInclude;
  });
}

void EsiParser::Emit(size_t begin, size_t end) {
  if (in_remove_ || end <= begin) return;
  if (!out_.empty() && out_.back().kind == EsiInstruction::Kind::kVerbatim &&
      out_.back().offset + out_.back().length == begin) {
    out_.back().length += end - begin;
    return;
  }
  out_.push_back({EsiInstruction::Kind::kVerbatim, begin, end - begin, {}});
}

void EsiParser::Error(size_t offset, std::string msg) {
  errors_.push_back({offset, std::move(msg)});
}

void EsiParser::StartMatch(char c) {
  if (c == '<' || (c == '-' && in_esi_comment_)) {
    state_ = State::kMatch;
    match_begin_ = pos_;
    match_.assign(1, c);
  }
}

void EsiParser::Feed(std::string_view chunk) {
  for (char c : chunk) {
    switch (state_) {
      case State::kText:
        StartMatch(c);
        break;
      case State::kMatch: {
        match_ += c;
        if (match_ == kCommentOpen && !in_remove_) {
          Emit(verbatim_begin_, match_begin_);
          verbatim_begin_ = pos_ + 1;
          in_esi_comment_ = true;
          state_ = State::kText;
        } else if (match_ == kCommentClose && in_esi_comment_) {
          Emit(verbatim_begin_, match_begin_);
          verbatim_begin_ = pos_ + 1;
          in_esi_comment_ = false;
          state_ = State::kText;
        } else if (match_ == kOpen || match_ == kClose) {
          state_ = State::kTag;
        } else if (!IsPrefixOf(match_, kOpen) && !IsPrefixOf(match_, kClose) &&
                   !IsPrefixOf(match_, kCommentOpen) &&
                   !(in_esi_comment_ && IsPrefixOf(match_, kCommentClose))) {
          state_ = State::kText;
          StartMatch(c);  // the breaking byte may start a new candidate
        }
        break;
      }
      case State::kTag:
        match_ += c;
        if (c == '>') {
          OnTag(match_begin_, pos_ + 1);
          state_ = State::kText;
        } else if (match_.size() > max_tag_) {
          Error(match_begin_, "ESI tag longer than the limit; kept verbatim");
          state_ = State::kText;
        }
        break;
    }
    ++pos_;
  }
}

void EsiParser::OnTag(size_t begin, size_t end) {
  std::string_view tag = match_;
  bool closing = tag.starts_with(kClose);
  std::string_view name = ElementName(tag, closing ? kClose.size() : kOpen.size());
  if (in_remove_) {
    if (closing && name == "remove") {
      in_remove_ = false;
      verbatim_begin_ = end;
    }
    return;  // everything inside remove is dropped
  }
  if (closing) {
    Error(begin, "unexpected </esi:" + std::string(name) + ">; kept verbatim");
    return;
  }
  if (name == "include") {
    std::string src;
    if (!Attribute(tag, "src", &src) || src.empty()) {
      Error(begin, "esi:include without src; dropped");
      Emit(verbatim_begin_, begin);
      verbatim_begin_ = end;
      return;
    }
    Emit(verbatim_begin_, begin);
    out_.push_back({EsiInstruction::Kind::kInclude, 0, 0, std::move(src)});
    verbatim_begin_ = end;
  } else if (name == "comment") {
    Emit(verbatim_begin_, begin);
    verbatim_begin_ = end;
  } else if (name == "remove") {
    Emit(verbatim_begin_, begin);
    in_remove_ = true;
    remove_begin_ = begin;
  } else {
    Error(begin, "unknown element esi:" + std::string(name) + "; kept verbatim");
  }
}

void EsiParser::Finish() {
  if (state_ == State::kTag) Error(match_begin_, "unterminated ESI tag; kept verbatim");
  state_ = State::kText;
  if (in_remove_) {
    Error(remove_begin_, "unterminated esi:remove; its content dropped");
    in_remove_ = false;
    verbatim_begin_ = pos_;
  }
  if (in_esi_comment_) {
    Error(pos_, "unterminated <!--esi");
    in_esi_comment_ = false;
  }
  Emit(verbatim_begin_, pos_);
  verbatim_begin_ = pos_;
}

}  // namespace cacheportal::edge

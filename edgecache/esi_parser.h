// ESI parser: turns a body marked `Surrogate-Control: content="ESI/1.0"` into
// an instruction list, once, at fetch. Understood: <esi:include src=".."/>,
// <esi:comment .../>, <esi:remove>…</esi:remove> and <!--esi … -->.
//
// Incremental: Feed() accepts the body in chunks of any size, down to one byte
// (no assumption that more than one character is available). Tolerant: bad
// markup is recorded in errors() and left verbatim; parsing never aborts.
//
// States (kText is the start state):
//   kText ──'<' or ('-' inside <!--esi)──▶ kMatch ──prefix of "<esi:", "</esi:",
//   "<!--esi", "-->" complete──▶ kTag (or back to kText for "<!--esi"/"-->")
//   kMatch ──no longer a prefix──▶ kText (the bytes stay verbatim)
//   kTag ──'>'──▶ kText (instruction emitted, or kRemove entered/left)
// Inside <esi:remove> the same machine runs but emits nothing until
// </esi:remove>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cacheportal::edge {

struct EsiInstruction {
  enum class Kind { kVerbatim, kInclude };
  Kind kind = Kind::kVerbatim;
  size_t offset = 0;  // kVerbatim: byte range of the original body
  size_t length = 0;
  std::string src;  // kInclude: the src attribute, entity-decoded (&amp;)
};

struct EsiError {
  size_t offset;
  std::string message;
};

class EsiParser {
 public:
  // `max_tag_bytes` bounds a single tag; longer ones are errors, kept verbatim.
  explicit EsiParser(size_t max_tag_bytes = 4096) : max_tag_(max_tag_bytes) {}
  void Feed(std::string_view chunk);
  // Ends the stream: flushes trailing verbatim bytes, reports unterminated markup.
  void Finish();

  const std::vector<EsiInstruction>& instructions() const { return out_; }
  const std::vector<EsiError>& errors() const { return errors_; }
  size_t include_count() const;

 private:
  enum class State { kText, kMatch, kTag };
  void Emit(size_t begin, size_t end);
  void Error(size_t offset, std::string msg);
  void OnTag(size_t begin, size_t end);
  void StartMatch(char c);

  size_t max_tag_;
  State state_ = State::kText;
  size_t pos_ = 0;             // absolute offset of the next byte fed
  size_t verbatim_begin_ = 0;  // start of the pending verbatim range
  size_t match_begin_ = 0;     // offset where kMatch/kTag began
  std::string match_;          // bytes of the candidate tag so far
  bool in_remove_ = false;
  bool in_esi_comment_ = false;
  size_t remove_begin_ = 0;
  std::vector<EsiInstruction> out_;
  std::vector<EsiError> errors_;
};

}  // namespace cacheportal::edge

#include "common/page_registrar.h"

namespace cacheportal {

const char* RegisterVerdictName(RegisterVerdict v) {
  switch (v) {
    case RegisterVerdict::kStore:
      return "store";
    case RegisterVerdict::kTainted:
      return "tainted";
    case RegisterVerdict::kWrote:
      return "wrote";
    case RegisterVerdict::kUnknownRequest:
      return "unknown_request";
    case RegisterVerdict::kUnanalysable:
      return "unanalysable";
    case RegisterVerdict::kMapError:
      return "map_error";
  }
  return "?";
}

}  // namespace cacheportal

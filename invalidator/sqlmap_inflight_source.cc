// Separate translation unit: only binaries that run an InFlightRegistry link it.
#include "invalidator/sqlmap_source.h"
#include "sqlmap/inflight_registry.h"

namespace cacheportal::invalidator {

std::unique_ptr<DependencySource> MakeSqlMapSource(sqlmap::SqlMap* map,
                                                   sqlmap::InFlightRegistry* inflight) {
  InFlightHooks hooks;
  if (inflight) {
    hooks.taint_matching = [inflight](std::string_view table,
                                      const std::function<bool(const sqlmap::QueryInstance&)>& f) {
      return inflight->TaintMatching(table, f);
    };
    hooks.taint_all = [inflight] { return inflight->TaintAll(); };
  }
  return MakeSqlMapSource(map, std::move(hooks));
}

}  // namespace cacheportal::invalidator

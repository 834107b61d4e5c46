// DependencySource over the real sqlmap::SqlMap (and, in the all-in-one
// process, sqlmap::InFlightRegistry). Each factory lives in its own
// translation unit so that a binary links only the sqlmap parts it uses.
#pragma once

#include <functional>
#include <memory>

#include "invalidator/dependency_source.h"

namespace cacheportal::sqlmap {
class SqlMap;
class InFlightRegistry;
}  // namespace cacheportal::sqlmap

namespace cacheportal::invalidator {

// How in-flight requests are tainted; both may be empty (nothing in flight).
struct InFlightHooks {
  std::function<size_t(std::string_view, const std::function<bool(const sqlmap::QueryInstance&)>&)>
      taint_matching;
  std::function<size_t()> taint_all;
};

// `map` must outlive the result. Without hooks no request is ever in flight
// (a stand-alone invalidator next to a remote edge).
std::unique_ptr<DependencySource> MakeSqlMapSource(sqlmap::SqlMap* map, InFlightHooks hooks = {});

// The same, tainting through `inflight` (must outlive the result).
// Defined in sqlmap_inflight_source.cc.
std::unique_ptr<DependencySource> MakeSqlMapSource(sqlmap::SqlMap* map,
                                                   sqlmap::InFlightRegistry* inflight);

}  // namespace cacheportal::invalidator

// DependencySource over the real sqlmap::SqlMap and sqlmap::InFlightRegistry.
// Kept in its own translation unit: only code that wires the real map (the
// command, the all-in-one process) links against cp_sqlmap's implementation.
#pragma once

#include <memory>

#include "invalidator/dependency_source.h"

namespace cacheportal::sqlmap {
class SqlMap;
class InFlightRegistry;
}  // namespace cacheportal::sqlmap

namespace cacheportal::invalidator {

// `map` must outlive the result; `inflight` may be null (no in-flight
// tracking, e.g. a stand-alone invalidator next to a remote edge).
std::unique_ptr<DependencySource> MakeSqlMapSource(sqlmap::SqlMap* map,
                                                   sqlmap::InFlightRegistry* inflight);

}  // namespace cacheportal::invalidator

// A stand-alone invalidator process for the kill -9 test: the real map
// (RocksDB at MAP_PATH) and HTTP purges to 127.0.0.1:ADMIN_PORT.
//   invalidator_child CONNINFO MAP_PATH SLOT PUBLICATION ADMIN_PORT
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/log.h"
#include "invalidator/http_ejector.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sqlmap/sqlmap.h"

using namespace cacheportal;  // NOLINT

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: invalidator_child CONNINFO MAP_PATH SLOT PUBLICATION ADMIN_PORT\n");
    return 2;
  }
  sqlmap::MapOptions mo;
  mo.path = argv[2];
  std::unique_ptr<sqlmap::SqlMap> map;
  if (Status s = sqlmap::SqlMap::Open(mo, &map); !s.ok()) {
    std::fprintf(stderr, "map: %s\n", s.ToString().c_str());
    return 1;
  }
  auto source = invalidator::MakeSqlMapSource(map.get());
  invalidator::HttpPurgeEjector ejector("127.0.0.1", static_cast<uint16_t>(std::atoi(argv[5])), "");
  invalidator::InvalidatorDeps deps;
  deps.conninfo = argv[1];
  deps.options.slot_name = argv[3];
  deps.options.publication_name = argv[4];
  deps.options.tables = {"public.item"};
  deps.options.status_interval_seconds = 1;
  deps.source = source.get();
  deps.ejector = &ejector;
  auto inv = invalidator::Invalidator::Start(deps);
  if (!inv.ok()) {
    std::fprintf(stderr, "start: %s\n", inv.status().ToString().c_str());
    return 1;
  }
  std::printf("streaming\n");
  std::fflush(stdout);
  for (;;) pause();  // until killed
}

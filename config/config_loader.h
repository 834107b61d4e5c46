// Loading config/cacheportal.yaml into CachePortalConfig.
// Unknown keys, wrong types and missing required values are errors that name
// file:line:column; loading never returns a half-filled config.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "config/options.h"

namespace cacheportal {

// Reads and validates the file. All problems are reported, one per line, in
// the returned Status message.
Result<CachePortalConfig> LoadConfigFile(const std::string& path);
// Same from text (`name` is used in messages in place of a file path).
Result<CachePortalConfig> LoadConfigText(std::string_view text, const std::string& name);

}  // namespace cacheportal

#pragma once
// Reading what the programs under test wrote.

#include <filesystem>
#include <string>

namespace clusterlock::test {

/// The whole content of the file at `path`; empty when it cannot be read (not written yet).
std::string read_file(const std::filesystem::path& path);

}  // namespace clusterlock::test

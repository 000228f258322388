#include "support/text_file.hpp"

#include <fstream>
#include <sstream>

namespace clusterlock::test {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace clusterlock::test

// Child processes for the tests: the testing kit's own (src/testing/child_process.hpp), under the tests' names.
#pragma once

#include "testing/child_process.hpp"

namespace clusterlock::test {
using clusterlock::testing::command_result;
using clusterlock::testing::detail::clean_environment;
using clusterlock::testing::detail::join_command;
using clusterlock::testing::detail::kill_and_reap;
using clusterlock::testing::detail::process_gone;
using clusterlock::testing::detail::reap;
using clusterlock::testing::detail::run_command;
using clusterlock::testing::detail::spawn;
using clusterlock::testing::detail::spawn_options;
}  // namespace clusterlock::test

#!/usr/bin/env bash
# Builds every C++ block (```cpp) of README.md and docs/*.md against the library, so that what the docs show
# compiles as shown. A block with #include lines and a main() is a whole program: compiled and linked; with #include
# lines and no main(), a whole file: compiled. A block without is a
# fragment (statements inside a function, given `io`, an asio::io_context): compiled inside
#   #include <clusterlock/clusterlock.hpp> ... namespace asio = boost::asio; void f(asio::io_context& io) { BLOCK }
# Run by ctest (test doc_code_blocks) with the build's compiler and library:
#   check-doc-code.sh SOURCE_DIR CXX INCLUDE_DIR LIBRARY [FLAGS [TESTING_LIBRARY]]
# FLAGS: e.g. -fsanitize=... for a sanitized library. TESTING_LIBRARY: the testing kit (clusterlock::testing),
# linked into whole programs that include <clusterlock/testing...>; without it such a block fails.
set -euo pipefail
source_dir=$1 cxx=$2 include_dir=$3 library=$4 extra_flags=${5:-} testing_library=${6:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count=0 failed=0
for doc in "$source_dir/README.md" "$source_dir"/docs/*.md; do
  # One file per block: NAME.LINE.cpp, LINE being the line of the block's opening fence.
  awk -v out="$work/$(basename "$doc" .md)" '
    /^```(cpp|c\+\+)[[:space:]]*$/ { inside = 1; file = out "." FNR ".cpp"; printf "" > file; next }
    /^```/ && inside { inside = 0; close(file); next }
    inside { print > file }
  ' "$doc"
done
for block in "$work"/*.cpp; do
  [ -e "$block" ] || continue
  count=$((count + 1))
  name=$(basename "$block" .cpp)
  flags=(-std=c++20 -Wall -Wextra -Werror -I"$include_dir" $extra_flags)
  if grep -q '^[[:space:]]*#include' "$block" && grep -q 'int main(' "$block"; then
    libraries=("$library")
    if grep -q '^[[:space:]]*#include <clusterlock/testing' "$block"; then
      libraries=("${testing_library:-no-testing-library-given}" "$library")
    fi
    cmd=("$cxx" "${flags[@]}" "$block" -o "$work/$name.bin" "${libraries[@]}" -lboost_json -lboost_url -lssl -lcrypto -pthread)
  elif grep -q '^[[:space:]]*#include' "$block"; then
    cmd=("$cxx" "${flags[@]}" -c "$block" -o "$work/$name.o")  # a whole file without main(): compiled
  else
    {
      echo '#include <clusterlock/clusterlock.hpp>'
      echo '#include <boost/asio/io_context.hpp>'
      echo 'namespace asio = boost::asio;'
      echo 'void doc_fragment([[maybe_unused]] asio::io_context& io) {'
      cat "$block"
      echo '}'
    } >"$work/$name.fragment.cpp"
    cmd=("$cxx" "${flags[@]}" -c "$work/$name.fragment.cpp" -o "$work/$name.o")
  fi
  if "${cmd[@]}" 2>"$work/$name.log"; then
    echo "ok     ${name/./.md line }"
  else
    failed=$((failed + 1))
    echo "FAILED ${name/./.md line }"
    sed 's/^/    /' "$work/$name.log" | head -n 40
  fi
done
echo "$((count - failed)) of $count C++ blocks in README.md and docs/ build"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]

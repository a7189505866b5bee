#!/usr/bin/env bash
# clang-format --dry-run --Werror over every *.hpp / *.cpp under include/ src/ tools/ tests/ examples/ bench/.
# Uses $CLANG_FORMAT if it names a program, else clang-format, else clang-format-14.
# Also refuses Catch2 test names containing ';'.
# Exits 77 (ctest: skipped) when no clang-format is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ctest splits test names at ';' (CMake's list separator): such a test can never run, so refuse it here.
if bad=$(grep -rnE '(TEST_CASE|SCENARIO)\("[^"]*;' tests 2>/dev/null); then
  echo "format-check: test names must not contain ';' (ctest splits them):" >&2
  echo "$bad" >&2
  exit 1
fi

cf=""
for candidate in "${CLANG_FORMAT:-}" clang-format clang-format-14; do
  if [[ -n $candidate ]] && command -v "$candidate" >/dev/null 2>&1; then
    cf=$(command -v "$candidate")
    break
  fi
done
if [[ -z $cf ]]; then
  echo "format-check: clang-format not found; skipping"
  exit 77
fi

files=()
for dir in include src tools tests examples bench; do
  [[ -d $dir ]] || continue
  while IFS= read -r -d '' f; do files+=("$f"); done \
    < <(find "$dir" -type f \( -name '*.hpp' -o -name '*.cpp' \) -print0 | sort -z)
done
if ((${#files[@]} == 0)); then
  echo "format-check: no files to check"
  exit 0
fi

echo "format-check: $("$cf" --version | head -n 1), ${#files[@]} files"
if "$cf" --dry-run --Werror "${files[@]}"; then
  echo "format-check: ok"
else
  echo "format-check: files above need clang-format (fix: $cf -i <file>)" >&2
  exit 1
fi

#!/usr/bin/env bash
# Prints the path of a CPython of the given minor version (e.g. 3.13), or nothing when there is none.
# Looks at python<minor> on PATH, then at pyenv's installed versions (whose shim refuses a version that
# is not selected), then at the usual install prefixes.
set -u
minor="${1:?usage: find-python.sh MAJOR.MINOR}"
is_minor() {
  "$1" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$minor' else 1)" >/dev/null 2>&1
}
candidates=()
if command -v "python$minor" >/dev/null 2>&1; then candidates+=("$(command -v "python$minor")"); fi
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root 2>/dev/null)"
  for dir in $(ls -d "$root/versions/$minor".* 2>/dev/null | sort -V -r); do
    candidates+=("$dir/bin/python$minor")
  done
fi
candidates+=("/usr/local/bin/python$minor" "/usr/bin/python$minor")
for candidate in "${candidates[@]}"; do
  if [ -x "$candidate" ] && is_minor "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done
exit 0

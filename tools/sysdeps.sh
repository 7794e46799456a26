#!/usr/bin/env bash
# Install the Debian packages named as arguments when they are missing.
# As root: apt-get install them. Otherwise: print what is missing and carry on
# (tests that need a missing tool fail with a message naming it).
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "sysdeps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "sysdeps: missing Debian packages (install them as root): ${missing[*]}" >&2
fi

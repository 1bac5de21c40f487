#!/usr/bin/env bash
# Install what the PostgreSQL tests need, once: Debian's PostgreSQL server
# (the tests start a throwaway cluster of their own; nothing runs as a
# service). Quiet and quick when it is already there.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "postgres tests: installing Debian's postgresql" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
    { $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
fi

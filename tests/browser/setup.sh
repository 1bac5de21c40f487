#!/usr/bin/env bash
# Install what the browser tests need, pinned, once: Debian's Chromium (the
# browser test tools' own downloads do not work here) and playwright-core
# from package-lock.json. Quiet and quick when both are already there.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser tests: installing Debian's chromium" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 ||
    { $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }
fi

# node_modules/.installed-lock is the lock file the last install used.
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  echo "browser tests: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json node_modules/.installed-lock
fi

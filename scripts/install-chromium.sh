#!/usr/bin/env bash
# Installs Debian's chromium for the app's browser tests (tests/app), when it is missing.
# Playwright drives it through executable_path=/usr/bin/chromium; Playwright's own browser
# downloads are never used. Needs root (or sudo) and Debian's package lists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-chromium: /usr/bin/chromium is missing and this user cannot install it;" >&2
  echo "  install Debian's 'chromium' package (the browser tests skip without it)." >&2
  exit 0
fi
echo "install-chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version 2>/dev/null

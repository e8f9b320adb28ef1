#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download cannot run here).
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "Chromium is missing; installing Debian's chromium package..."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; })
fi
[ -x /usr/bin/chromium ] || { echo "Could not install chromium: run 'sudo apt-get install chromium' and retry." >&2; exit 1; }
echo "Chromium installed."

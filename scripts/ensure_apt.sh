#!/usr/bin/env bash
# Install the Debian/Ubuntu packages given as arguments, but only those not installed yet.
# Used by 'make run' and 'make test'; does nothing (with a note) where apt-get is not available.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ser-live: not a Debian/Ubuntu system; please install the equivalents of: ${missing[*]}" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "ser-live: need root to install: ${missing[*]} (run as root or install sudo)" >&2; exit 1
  fi
fi
echo "ser-live: installing system packages: ${missing[*]}"
# A fresh machine has no (or an old) package list; refresh it unless it is under an hour old.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -1)" ]; then
  $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

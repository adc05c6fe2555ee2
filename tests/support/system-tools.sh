#!/usr/bin/env bash
# The system tools the tests need beyond Python: headless Chromium (browser tests), promtool
# (Prometheus config) and Node with npm (the AsyncAPI parser). `make test` and `.ci/run` both call
# this; it installs what is missing from the distribution's packages, and when it cannot (not root,
# no apt-get) it stops at once with one line naming the command that would.
set -euo pipefail

declare -A PACKAGE_OF=([chromium]=chromium [promtool]=prometheus [node]=nodejs [npm]=npm)
missing=()
for tool in chromium promtool node npm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
((${#missing[@]} == 0)) && exit 0

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "the tests need ${missing[*]}: install them with \`sudo sh -c '$command'\` (or your system's equivalent)" >&2
  exit 1
fi
echo "[setup] installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the prometheus package from starting a server of its own at install time
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
((created_policy)) && rm -f "$policy"
if ((status != 0)); then
  echo "installing ${missing[*]} failed (apt-get exit $status): run \`$command\` to see why" >&2
  exit 1
fi
for tool in chromium promtool node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is still missing after installing ${missing[*]}" >&2; exit 1; }
done

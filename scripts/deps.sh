#!/usr/bin/env bash
# Install what PSK needs, when it is missing: the Debian packages, then the
# npm packages of the checkout (Swagger UI for the shim's GET /docs, and
# playwright-core, which drives Debian's chromium in test/browser), each
# into node_modules/ of its own folder, at the versions of its
# package-lock.json.  Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl libh2o-evloop-dev libpq-dev
	zlib1g-dev postgresql-common postgresql-contrib make gcc pkg-config
	python3 curl wrk clang-format chromium python3-passlib
	python3-prometheus-client postgresql-15-auto-failover procps)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm: Debian's nodejs and npm, unless a node with its own npm is there
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci where node_modules is missing or older than its lock file.  No
# install scripts run (swagger-ui-dist's dependency would report home).
export SCARF_ANALYTICS=false
for dir in shim/docs test/browser; do
	stamp=$dir/node_modules/.package-lock.json
	if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
		continue
	fi
	echo "npm ci in $dir"
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || {
		echo "npm ci in $dir failed" >&2
		exit 1
	}
done

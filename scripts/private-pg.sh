#!/usr/bin/env bash
# private-pg.sh DIR: copy the system's PostgreSQL 15 tree (binaries, libraries,
# share files) under DIR, for PSK_PGROOT=DIR.  PostgreSQL finds its share and
# lib directories relative to its binaries, so `make install DESTDIR=DIR`
# and the binaries under DIR use only that copy.
set -euo pipefail
dir=${1:?usage: private-pg.sh DIR}
bindir=$(pg_config --bindir)
pkglibdir=$(pg_config --pkglibdir)
sharedir=$(pg_config --sharedir)
for d in "$(dirname "$bindir")" "$sharedir"; do
	mkdir -p "$dir$(dirname "$d")"
	cp -a "$d" "$dir$(dirname "$d")/"
done
[ -d "$dir$pkglibdir" ] || { mkdir -p "$dir$pkglibdir"; cp -a "$pkglibdir/." "$dir$pkglibdir/"; }
chmod -R a+rX "$dir"
echo "private PostgreSQL tree in $dir; use: export PSK_PGROOT=$dir"

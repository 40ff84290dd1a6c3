#!/usr/bin/env bash
# Vendor the web investigator's npm dependencies into the Python package, so that nothing is
# fetched from a CDN at run time: runs npm ci (npm install when there is no lock file yet) in
# web/, copies cytoscape.min.js and its licence to src/cointrail/interfaces/web/static/vendor/
# and records version and SHA-256 in vendor.json. The output is committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/web"
out="$root/src/cointrail/interfaces/web/static/vendor"

cd "$web"
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --ignore-scripts
else
    npm install --no-audit --no-fund --ignore-scripts --omit-lockfile-registry-resolved
fi

mkdir -p "$out"
pkg="$web/node_modules/cytoscape"
cp "$pkg/dist/cytoscape.min.js" "$out/cytoscape.min.js"
cp "$pkg/LICENSE" "$out/cytoscape.LICENSE"
version="$(node -p "require('$pkg/package.json').version")"
sha="$(sha256sum "$out/cytoscape.min.js" | cut -d' ' -f1)"
cat > "$out/vendor.json" <<JSON
{
  "cytoscape": {
    "version": "$version",
    "file": "cytoscape.min.js",
    "sha256": "$sha",
    "license": "MIT",
    "license_file": "cytoscape.LICENSE"
  }
}
JSON
echo "vendored cytoscape $version ($sha) into $out"

#!/bin/sh
# Rebuilds codemirror.min.js and licenses/ from the recipe beside this script
# (package.json, package-lock.json, src/, licenses.mjs). Needs Node 20 and npm;
# node_modules stays in the build directory, outside the repository.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${CM_BUILD_DIR:-/tmp/cm-build}
rm -rf "$build"
mkdir -p "$build"
cp -r "$here/package.json" "$here/package-lock.json" "$here/licenses.mjs" "$here/src" "$build/"
cd "$build"
npm ci --no-audit --no-fund
npm run build
cp codemirror.min.js "$here/codemirror.min.js"
rm -rf "$here/licenses"
cp -r licenses "$here/licenses"
echo "built $here/codemirror.min.js ($(wc -c < codemirror.min.js) bytes)"

#!/usr/bin/env bash
# Reproduce vendor/monaco/ from the npm registry: monaco-editor 0.52.2's AMD
# build (min/vs), trimmed to what the hero_logic page loads. The tarball is
# checked against its published sha1 before anything is copied.
set -euo pipefail
cd "$(dirname "$0")"

VERSION=0.52.2
SHA1=53c75a6fcc6802684e99fd1b2700299857002205
FILES=(
  vs/loader.js
  vs/editor/editor.main.js
  vs/editor/editor.main.css
  vs/base/worker/workerMain.js
  vs/base/browser/ui/codicons/codicon/codicon.ttf
  vs/basic-languages/python/python.js
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "monaco-editor@$VERSION" >/dev/null)
echo "$SHA1  $work/monaco-editor-$VERSION.tgz" | sha1sum --check --quiet
tar xzf "$work/monaco-editor-$VERSION.tgz" -C "$work"

rm -rf vs
for file in "${FILES[@]}"; do
  mkdir -p "$(dirname "$file")"
  cp "$work/package/min/$file" "$file"
done
cp "$work/package/LICENSE" LICENSE
cp "$work/package/ThirdPartyNotices.txt" ThirdPartyNotices.txt
echo "vendor/monaco: monaco-editor $VERSION, ${#FILES[@]} files"

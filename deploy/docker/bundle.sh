#!/bin/sh
# Writes one package's production folder to $2: its dist/ and only its production dependencies
# (`pnpm deploy --prod`; the workspace libraries it uses are copied in), without sources, source
# maps or build caches. $1: ppo-coordinator, policy, reward-model, reference-model, pretrain-mix,
# labeling or cli. $3 (optional): --no-optional leaves out the native TensorFlow packages (the wasm images).
# Run from the repository root after `pnpm install` and the build.
set -eu
service="$1"; out="$2"; optional="${3:-}"
case "$service" in
  ppo-coordinator|policy|reward-model|reference-model|pretrain-mix|labeling) dir="services/$service" ;;
  cli) dir="cli" ;;
  *) echo "SERVICE must be one of ppo-coordinator, policy, reward-model, reference-model, pretrain-mix, labeling, cli; got '$service'" >&2; exit 1 ;;
esac
test -f "$dir/dist/main.js" || { echo "$dir/dist/main.js is missing: build first" >&2; exit 1; }
# --legacy: this workspace does not inject its packages (pnpm 10's default deploy needs that).
pnpm --filter "./$dir" --prod $optional deploy --legacy "$out"
find "$out" -name '*.map' -type f -delete
rm -rf "$out/src" "$out/.turbo" "$out"/tsconfig*.json
for lib in "$out"/node_modules/.pnpm/@rlhf+*/node_modules/@rlhf/*; do
  [ -d "$lib" ] && rm -rf "$lib/src" "$lib/.turbo" "$lib"/tsconfig*.json "$lib/scripts"
done
echo "$service: $(du -sh "$out" | cut -f1) in $out"

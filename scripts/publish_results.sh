#!/usr/bin/env bash
# Rebuild an experiment's report from its finished runs and copy it into the repository:
#   scripts/publish_results.sh EXPERIMENT_DIR PROFILE DEST
# e.g. scripts/publish_results.sh /work/vf-full full docs/results/full
# (results.md, results.csv and figures/; the run folders with their checkpoints stay outside).
set -euo pipefail
src=$1 profile=$2 dest=$3
vocalfront experiment --config experiments/paper.toml --out "$src" --profile "$profile" --report-only
mkdir -p "$dest"
rm -rf "$dest/figures"
cp "$src/results.md" "$src/results.csv" "$dest/"
cp -r "$src/figures" "$dest/figures"
echo "published $src ($profile) to $dest"

#!/usr/bin/env bash
# Fetch real instrumental music from Debian packages, for remixing the training voices over
# (vocalfront.data.remix.InstrumentalPool). See docs/data.md.
#
# Usage: scripts/get_instrumental_music.sh DEST [PACKAGE ...]
#
# Downloads each package with `apt-get download` (no installation, no root needed beyond what
# apt-get download itself needs), unpacks it with `dpkg -x` into a temporary folder and copies
# its audio files (.ogg, .mp3) into DEST/PACKAGE/, together with the package's copyright file
# (the licences ask for attribution). Default packages: wesnoth-1.16-music (orchestral/folk,
# GPL-2+), singularity-music (electronic, CC BY-SA 3.0), asc-music (rock/electronic, GPL-2+).
#
# Every file is copied, including tracks that contain voices; InstrumentalPool skips those by
# file name (vocalfront.data.remix.INSTRUMENTAL_EXCLUDED, documented in docs/data.md).
set -euo pipefail

DEFAULT_PACKAGES=(wesnoth-1.16-music singularity-music asc-music)

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 DEST [PACKAGE ...]  (default packages: ${DEFAULT_PACKAGES[*]})" >&2
    exit 2
fi
dest=$1
shift
packages=("$@")
[[ ${#packages[@]} -gt 0 ]] || packages=("${DEFAULT_PACKAGES[@]}")

for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found (Debian/Ubuntu needed)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# As root, apt-get would hand the download to the _apt user, who cannot write into $work.
apt_options=()
[[ $EUID -ne 0 ]] || apt_options=(-o APT::Sandbox::User=root)

mkdir -p "$dest"
for package in "${packages[@]}"; do
    if ! (cd "$work" && apt-get download "${apt_options[@]}" "$package" >/dev/null); then
        echo "error: 'apt-get download $package' failed. The package lists may be missing or" \
             "out of date: run 'apt-get update' (as root) and try again." >&2
        exit 1
    fi
    deb=$(find "$work" -maxdepth 1 -name "${package}_*.deb" | head -n 1)
    tree="$work/$package"
    dpkg -x "$deb" "$tree"
    mkdir -p "$dest/$package"
    count=0
    while IFS= read -r -d '' file; do
        cp "$file" "$dest/$package/"
        count=$((count + 1))
    done < <(find "$tree" -type f \( -iname '*.ogg' -o -iname '*.mp3' \) -print0 | sort -z)
    copyright="$tree/usr/share/doc/$package/copyright"
    [[ -f $copyright ]] && cp "$copyright" "$dest/$package/COPYRIGHT"
    echo "$package: $count audio files -> $dest/$package"
done

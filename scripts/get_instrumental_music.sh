#!/usr/bin/env bash
# Fetch real instrumental music from Debian packages, for remixing the training voices over and
# as negative examples (vocalfront.data.remix.InstrumentalPool). See docs/data.md.
#
# Usage: scripts/get_instrumental_music.sh DEST [PACKAGE ...]
#
# Without PACKAGE arguments it fetches every package below and then renders the General-MIDI
# hard negatives (scripts/render_midi_negatives.py: DEST/midi-leads, -valid and -test, seeds
# 0/1/2, with the FluidR3 GM soundfont; DEST/midi-leads-timgm and -mscore, seeds 3/4, with the
# TimGM6mb and MuseScore General soundfonts) when fluidsynth and the soundfonts are installed
# (Debian: fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont; Python:
# mido); otherwise it says how to get them.
#
# Downloads each package with `apt-get download` (nothing is installed), unpacks it with
# `dpkg -x` into a temporary folder and copies the package's music (only the files its rule
# below names: no sound effects, no vocal stems) into DEST/PACKAGE/, together with the package's
# copyright file as DEST/PACKAGE/COPYRIGHT (the licences ask for attribution). Music inside a
# game archive (.pk3, a zip file) is unpacked from it. A file name that occurs twice within a
# package is prefixed with its folder's name (fretsonfire's songs are all called guitar.ogg).
#
# Tracks that contain voices despite the rules are skipped by InstrumentalPool by file name
# (vocalfront.data.remix.INSTRUMENTAL_EXCLUDED, documented with the screening in docs/data.md).
set -euo pipefail

# package -> where its music lies in the unpacked tree (a `find -path` pattern); a pattern
# starting with "pk3:" names a zip archive (first part) and the music inside it (second part).
declare -A MUSIC=(
    [wesnoth-1.16-music]='*/data/core/music/*'
    [singularity-music]='*/singularity/music/*'
    [asc-music]='*/asc/music/*'
    [warzone2100-music]='*/warzone2100/music/*'
    [ufoai-music]='pk3:*/0music.pk3:music/*'
    [nexuiz-music]='pk3:*/music.pk3:sound/cdtracks/*'
    [planetblupi-music-ogg]='*/planetblupi/music/*'
    [colobot-common-sounds]='*/colobot/music/*'
    [drascula-music]='*/drascula/audio/*'
    [hyperrogue-music]='*/hyperrogue/music/*'
    [pushover-data]='*/pushover/themes/*'
    # Fret on Fire songs: only the separate guitar stem (song.ogg, the rest of the band, may
    # hold vocals)
    [fretsonfire-songs-muldjord]='*/songs/*/guitar.ogg'
    [fretsonfire-songs-sectoid]='*/songs/*/guitar.ogg'
    # Band-like game music added 2026-12: the package's music folder only (the sound-effect and
    # voice folders beside it hold spoken samples, e.g. hedgewars' Sounds/voices/Singer).
    [hedgewars-data]='*/hedgewars/Data/Music/*'
    [supertux-data]='*/supertux2/music/*'
    [supertuxkart-data]='*/supertuxkart/data/music/*'
    [widelands-data]='*/widelands/data/music/*'
    [freedroidrpg-data]='*/freedroidrpg/data/sound/music/*'
    # flare: the *_theme.ogg tracks only, not wind_ambient.ogg (wind noise, not music)
    [flare-game]='*/fantasycore/music/*_theme.ogg'
    # megaglest: the menu and faction music folders, not the unit sounds (shouts, speech)
    [megaglest-data]='*/megaglest/*/music/*'
    [warmux-data]='*/warmux/music/*'
    [btanks-data]='*/btanks/data/tunes/*'
    # frozen-bubble keeps music and sound effects in one folder: its three *zik* files are music
    [frozen-bubble-data]='*/frozen-bubble/snd/*zik*'
    [xmoto-data]='*/xmoto/Textures/Musics/*'
    # OpenArena's music ships only in the 0.8.8 patch archive (openarena-data has none)
    [openarena-088-data]='pk3:*/pak6-patch088.pk3:music/*'
    # Neverball's music lies in neverball-common (neverball-data has none)
    [neverball-common]='*/neverball/bgm/*'
    [extremetuxracer-data]='*/etr/music/*'
    [lincity-ng-data]='*/lincity-ng/music/*'
    [scorched3d-data]='*/scorched3d/data/globalmods/none/data/music/*'
)
DEFAULT_PACKAGES=(
    wesnoth-1.16-music singularity-music asc-music warzone2100-music ufoai-music nexuiz-music
    planetblupi-music-ogg colobot-common-sounds drascula-music hyperrogue-music pushover-data
    fretsonfire-songs-muldjord fretsonfire-songs-sectoid
    hedgewars-data supertux-data supertuxkart-data widelands-data freedroidrpg-data flare-game
    megaglest-data warmux-data btanks-data frozen-bubble-data xmoto-data openarena-088-data
    neverball-common extremetuxracer-data lincity-ng-data scorched3d-data
)
AUDIO='.*\.(ogg|oga|opus|mp3|flac|wav)$'

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 DEST [PACKAGE ...]  (default packages: ${DEFAULT_PACKAGES[*]})" >&2
    exit 2
fi
dest=$1
shift
packages=("$@")
[[ ${#packages[@]} -gt 0 ]] || packages=("${DEFAULT_PACKAGES[@]}")
for package in "${packages[@]}"; do
    [[ -n ${MUSIC[$package]:-} ]] || { echo "error: no rule for package '$package' (known: ${!MUSIC[*]})" >&2; exit 2; }
done
for tool in apt-get dpkg unzip; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found (Debian/Ubuntu needed)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# As root, apt-get would hand the download to the _apt user, who cannot write into $work.
apt_options=()
[[ $EUID -ne 0 ]] || apt_options=(-o APT::Sandbox::User=root)

# copy_music TREE PATTERN OUT: copy the audio files of TREE matching PATTERN into OUT.
copy_music() {
    local tree=$1 pattern=$2 out=$3 file name count=0
    while IFS= read -r -d '' file; do
        name=$(basename "$file")
        [[ -e $out/$name ]] && name="$(basename "$(dirname "$file")")-$name"
        cp "$file" "$out/$name"
        count=$((count + 1))
    done < <(find "$tree" -type f -path "$pattern" -regextype posix-extended -iregex "$AUDIO" -print0 | sort -z)
    echo "$count"
}

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
    rule=${MUSIC[$package]}
    if [[ $rule == pk3:* ]]; then
        IFS=: read -r _ archive_pattern inner <<<"$rule"
        unpacked="$work/$package-pk3"
        find "$tree" -type f -path "$archive_pattern" -exec unzip -q -o -d "$unpacked" {} "$inner" \;
        tree=$unpacked
        rule="*/$inner"
    fi
    mkdir -p "$dest/$package"
    count=$(copy_music "$tree" "$rule" "$dest/$package")
    copyright="$work/$package/usr/share/doc/$package/copyright"
    [[ -f $copyright ]] && cp "$copyright" "$dest/$package/COPYRIGHT"
    echo "$package: $count audio files -> $dest/$package"
    rm -rf "$work/$package" "$work/$package-pk3" "$deb"
done

if [[ $# -eq 0 ]]; then
    python=${PYTHON:-python3}
    render="$(dirname "$0")/render_midi_negatives.py"
    # folder, minutes, seed, soundfont (Debian package): FluidR3 for the held-out sets; two more
    # soundfonts for training, so that the hard negatives do not all share one set of timbres
    for spec in "midi-leads 40 0 /usr/share/sounds/sf2/FluidR3_GM.sf2 fluid-soundfont-gm" \
                "midi-leads-valid 10 1 /usr/share/sounds/sf2/FluidR3_GM.sf2 fluid-soundfont-gm" \
                "midi-leads-test 10 2 /usr/share/sounds/sf2/FluidR3_GM.sf2 fluid-soundfont-gm" \
                "midi-leads-timgm 40 3 /usr/share/sounds/sf2/TimGM6mb.sf2 timgm6mb-soundfont" \
                "midi-leads-mscore 40 4 /usr/share/sounds/sf3/MuseScore_General.sf3 musescore-general-soundfont"; do
        read -r folder minutes seed soundfont soundfont_package <<<"$spec"
        if [[ ! -f $soundfont ]]; then
            echo "note: $folder not rendered: $soundfont not found (apt-get install $soundfont_package)" >&2
            continue
        fi
        if ! "$python" "$render" "$dest/$folder" --minutes "$minutes" --seed "$seed" --soundfont "$soundfont"; then
            echo "note: MIDI hard negatives not rendered; install fluidsynth (apt-get) and mido" \
                 "(pip install mido), then run: $render $dest/$folder --minutes $minutes" \
                 "--seed $seed --soundfont $soundfont" >&2
            break
        fi
    done
fi

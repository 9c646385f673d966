"""Song groups from shared backing tracks, and the song-disjoint split built on them."""

from __future__ import annotations

import numpy as np
import pytest

from vocalfront.data.songs import MATCH_THRESHOLD, best_match, fingerprint, song_groups
from vocalfront.data.split import SPLITS, song_splits

RATE = 16000


def backing_track(seed: int, seconds: float = 30.0) -> np.ndarray:
    """A synthetic accompaniment: chords of random notes changing every 0.5 s over pulsed noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    track = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.5):
        inside = (t >= start) & (t < start + 0.5)
        for note in rng.integers(40, 80, size=3):
            track[inside] += np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * t[inside])
    pulse = (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0.5) * rng.standard_normal(len(t))
    return (0.1 * track + 0.05 * pulse).astype(np.float32)


def cut(track: np.ndarray, start: float, seconds: float) -> np.ndarray:
    return track[int(start * RATE): int((start + seconds) * RATE)]


def test_clips_of_one_backing_track_match_and_other_tracks_do_not():
    first, second = backing_track(1), backing_track(2)
    clip = fingerprint(cut(first, 3.0, 6.0), RATE)
    same_elsewhere = fingerprint(cut(first, 1.0, 20.0), RATE)   # contains the clip, other cut points
    other = fingerprint(cut(second, 1.0, 20.0), RATE)
    assert best_match(clip, same_elsewhere) > 0.9
    assert best_match(clip, other) < MATCH_THRESHOLD


def test_fingerprint_is_finite_on_silence_and_short_input():
    assert np.isfinite(fingerprint(np.zeros(RATE, np.float32), RATE)).all()
    assert fingerprint(np.zeros(100, np.float32), RATE).shape[0] == 0


def test_song_groups_join_songs_that_share_a_backing_track():
    shared, alone = backing_track(3), backing_track(4)
    clips = {"ann_1_01": cut(shared, 0.0, 8.0), "ann_1_02": cut(shared, 8.0, 8.0),
             "bob_7_01": cut(shared, 4.0, 8.0),          # another singer, same karaoke track
             "cid_2_01": cut(alone, 0.0, 8.0)}
    fingerprints = {name: fingerprint(audio, RATE) for name, audio in clips.items()}
    song_of = {name: name.rsplit("_", 1)[0] for name in clips}
    groups, links = song_groups(fingerprints, song_of)
    assert groups == [["ann_1", "bob_7"], ["cid_2"]]
    assert {song for _, song, _ in links} == {"ann_1", "bob_7"}


@pytest.mark.parametrize("valid_song", ["bob_7", "ann_1"])
def test_song_disjoint_split_never_straddles_a_backing_track(valid_song):
    # clips built to share a backing track, then split: ann trains, bob validates, cid tests
    shared, alone = backing_track(5), backing_track(6)
    clips = {"ann_1_01": cut(shared, 0.0, 8.0), "bob_7_01": cut(shared, 2.0, 8.0),
             "cid_2_01": cut(alone, 0.0, 8.0), "ann_3_01": cut(alone, 0.0, 8.0)}
    song_of = {name: name.rsplit("_", 1)[0] for name in clips}
    groups, _ = song_groups({name: fingerprint(audio, RATE) for name, audio in clips.items()}, song_of)
    singer_split = {"ann": "train", "bob": "valid", "cid": "test"}
    splits = song_splits(song_of.values(), groups, lambda singer: singer_split.get(singer))
    for group in groups:
        assert len({splits[song] for song in group} - {None}) <= 1
    assert splits["ann_1"] is None and splits["bob_7"] == "valid"   # the shared track left training
    assert splits["ann_3"] is None and splits["cid_2"] == "test"    # test wins over training
    assert set(splits.values()) <= {*SPLITS, None}


def test_song_splits_put_a_group_in_its_most_held_out_split():
    groups = [("a_1", "b_1", "c_1")]
    singer_split = {"a": "train", "b": "valid", "c": "test"}.get
    assert song_splits(["a_1", "b_1", "c_1", "a_2"], groups, singer_split) == {
        "a_1": None, "b_1": None, "c_1": "test", "a_2": "train"}


def test_a_mir1k_clip_whose_song_shares_a_backing_track_with_validation_is_in_no_split():
    from vocalfront.data.split import mir1k_split_of

    assert mir1k_split_of({"singer": "fdps", "song": "1"}) is None      # fdps_1 ~ yifen_1
    assert mir1k_split_of({"singer": "yifen", "song": "1"}) == "valid"
    assert mir1k_split_of({"singer": "fdps", "song": "2"}) == "train"   # fdps_2 ~ geniusturtle_4
    assert mir1k_split_of({"singer": "abjones", "song": "3"}) == "test"
    assert mir1k_split_of({"singer": "heldout", "song": "1"}) is None

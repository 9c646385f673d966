"""The ``vocalfront detect`` and ``vocalfront evaluate`` commands."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_audio import write_with_av

from vocalfront.cli import main
from vocalfront.cli.detect import DetectJob
from vocalfront.data.readers import Mir1kDataset
from vocalfront.detect import load_model
from vocalfront.detector_file import save_detector
from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.grid import DEFAULT_GRID
from vocalfront.model import Detector, SchlueterCNN
from vocalfront.segments import FORMATS

SR = DEFAULT_GRID.sample_rate
fileio_module = importlib.import_module("vocalfront.fileio")
pretrained_module = importlib.import_module("vocalfront.pretrained")


def tone_bursts(seconds: float, rate: int = SR, seed: int = 0) -> np.ndarray:
    """Noise with a tone switching on and off every 0.5 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return 0.05 * rng.standard_normal(len(t)) + 0.4 * ((t // 0.5) % 2) * np.sin(2 * np.pi * 440 * t)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A random 25-band detector whose threshold sits inside its probability range."""
    torch.manual_seed(0)
    detector = Detector(build_frontend("mel", n_bands=25), LogCompression(), BandNorm(25),
                        SchlueterCNN(n_bands=25, context=25)).eval()
    with torch.no_grad():
        features = detector.compression(detector.frontend(torch.from_numpy(tone_bursts(3.0))[None].float()))
        detector.norm.fit(features)
        logits = detector.cnn.dense(torch.nn.functional.pad(detector.norm(features), (12, 12))[:, None])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_detector(path, detector, {"threshold": float(torch.sigmoid(logits).median())})
    return path


def write_songs(folder: Path, count: int, seconds: float = 1.5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"song{index}.wav" for index in range(count)]
    for index, path in enumerate(paths):
        sf.write(path, tone_bursts(seconds, seed=index), SR)
    return paths


def uncommented(path: Path) -> list[str]:
    """The lines of a CSV output without its ``#`` provenance comment."""
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def detect(*args: str | Path) -> int:
    return main(["detect", *map(str, args), "--no-progress"])


def test_m4a_songs_in_a_folder_are_detected_like_wav_songs(tmp_path, model_file, capsys):
    (tmp_path / "in").mkdir()
    write_with_av(tmp_path / "in" / "song.m4a", tone_bursts(1.5)[None], SR, "aac", "fltp")
    assert detect(tmp_path / "in", "--model", model_file, "--out", tmp_path / "out") == 0
    assert "1 done, 0 skipped (outputs exist), 0 failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "song.lab").is_file()


def test_every_format_is_written_by_atomic_rename(tmp_path, model_file, monkeypatch, capsys):
    songs = write_songs(tmp_path / "in", 2)
    renamed = []
    original = fileio_module.os.replace
    monkeypatch.setattr(fileio_module.os, "replace", lambda a, b: renamed.append(Path(b)) or original(a, b))
    out = tmp_path / "out"
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--format",
                  ",".join(FORMATS), "--frames", "--plot") == 0
    names = {"song0.lab", "song0.audacity.txt", "song0.csv", "song0.json", "song0.frames.csv",
             "song0.timeline.png", "song0.provenance.json"}
    expected = {out / name.replace("song0", song.stem) for song in songs for name in names}
    assert set(out.iterdir()) == expected
    assert set(renamed) == expected
    document = json.loads((out / "song1.json").read_text())
    rows = list(csv.DictReader(uncommented(out / "song1.csv")))
    assert [(s["start"], s["end"]) for s in document["segments"]] == \
        [(float(r["start"]), float(r["end"])) for r in rows]
    assert document["duration"] == pytest.approx(1.5)
    lab = (out / "song1.lab").read_text().split()
    assert lab[0] == "0.000" and lab[-2] == "1.500"
    assert len(uncommented(out / "song1.frames.csv")) == 1 + DEFAULT_GRID.num_frames(
        int(1.5 * SR))
    assert "song0.wav: " in capsys.readouterr().out


def test_without_out_labels_go_beside_a_single_input_whose_segments_are_listed(tmp_path, model_file,
                                                                                capsys):
    (song,) = write_songs(tmp_path, 1, seconds=3.0)
    assert detect(song, "--model", model_file, "--threshold", "0") == 0
    # every frame is singing: the segment spans the frames' intervals, hop / 2 around the centres
    frames = DEFAULT_GRID.num_frames(3 * SR)
    start = (DEFAULT_GRID.offset - DEFAULT_GRID.hop / 2) / SR
    end = (DEFAULT_GRID.offset + DEFAULT_GRID.hop * (frames - 0.5)) / SR
    assert song.with_suffix(".lab").read_text() == \
        f"0.000 {start:.3f} nosing\n{start:.3f} {end:.3f} sing\n{end:.3f} 3.000 nosing\n"
    output = capsys.readouterr().out.splitlines()
    assert output[0] == f"{song}: 1 segment, {100 * (end - start) / 3:.1f} % singing"
    assert output[1] == f"  0:{start:06.3f} - 0:{end:06.3f}  ({end - start:.2f} s)"
    assert len(output) == 2


def test_a_corrupt_file_fails_alone_and_the_batch_exits_with_status_1(tmp_path, model_file, capsys):
    write_songs(tmp_path / "in", 1)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF but not really audio")
    assert detect(tmp_path / "in", "--model", model_file, "--out", tmp_path / "out") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song0.lab", "song0.provenance.json"]
    summary = capsys.readouterr().err.splitlines()
    assert summary[0] == "1 done, 0 skipped (outputs exist), 1 failed"
    assert summary[1].startswith(f"  {tmp_path / 'in' / 'broken.wav'}: not a readable audio file")


def test_shards_split_the_files_deterministically_and_completely(tmp_path, model_file):
    write_songs(tmp_path / "in", 5, seconds=1.0)
    produced = []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--shard", f"{index}/2") == 0
        produced.append({p.name for p in out.iterdir()})
    assert {name for name in produced[0] if name.endswith(".lab")} == {"song0.lab", "song2.lab", "song4.lab"}
    assert {name for name in produced[1] if name.endswith(".lab")} == {"song1.lab", "song3.lab"}


def test_skip_existing_skips_files_whose_outputs_all_exist(tmp_path, model_file, capsys):
    write_songs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--format", "lab,json") == 0
    (out / "song1.json").unlink()  # song1 is incomplete, song0 complete
    stamp = (out / "song0.lab").stat().st_mtime_ns
    capsys.readouterr()
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--format", "lab,json",
                  "--skip-existing") == 0
    assert capsys.readouterr().err.startswith("1 done, 1 skipped (outputs exist), 0 failed")
    assert (out / "song1.json").is_file()
    assert (out / "song0.lab").stat().st_mtime_ns == stamp


def test_rerunning_an_interrupted_batch_finishes_the_rest(tmp_path, model_file, monkeypatch, capsys):
    write_songs(tmp_path / "in", 3, seconds=1.0)
    out = tmp_path / "out"
    process = DetectJob.process

    def killed_at_second_file(self, file):
        if file.name == "song1.wav":
            raise KeyboardInterrupt
        process(self, file)

    monkeypatch.setattr(DetectJob, "process", killed_at_second_file)
    assert detect(tmp_path / "in", "--model", model_file, "--out", out) == 130
    assert sorted(p.name for p in out.iterdir()) == ["song0.lab", "song0.provenance.json"]
    monkeypatch.setattr(DetectJob, "process", process)
    capsys.readouterr()
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--skip-existing") == 0
    assert capsys.readouterr().err.startswith("2 done, 1 skipped")
    labels = sorted(p.name for p in out.iterdir() if p.suffix == ".lab")
    assert labels == ["song0.lab", "song1.lab", "song2.lab"]


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "lab,xml"], "--format 'lab,xml': choose one or more of lab,audacity,csv,json"),
    (["--shard", "2/2"], "shard 2/2: the index must be 0 to 1"),
    (["--threads", "0"], "--threads 0: must be a whole number from 1 to "),
    (["--frame-step", "2"], "--frame-step 2: must be one of 1, 3, 9"),
])
def test_bad_options_are_one_line_errors(tmp_path, model_file, capsys, args, message):
    (song,) = write_songs(tmp_path, 1)
    assert detect(song, "--model", model_file, *args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def test_missing_default_model_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained_module, "default_model_path", lambda: tmp_path / "default.pt")
    (song,) = write_songs(tmp_path, 1)
    assert detect(song) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no default model is installed; train one" in error
    assert not song.with_suffix(".lab").exists()


# ----------------------------------------------------------------------------- evaluate
MIR1K_RATE = 16000
CLIPS = {"Kenshin_1_01": 0, "davidson_1_01": 1, "yifen_2_01": 2, "heycat_3_01": 3, "heycat_3_02": 4}
"""Clip → seed. Kenshin trains, davidson/yifen validate, heycat (no split of ours) is the test set."""


def make_mir1k(root: Path, seconds: float = 2.0) -> Path:
    """MIR-1K layout: 16 kHz stereo (accompaniment left, voice right), 20 ms 0/1 labels."""
    (root / "Wavfile").mkdir(parents=True)
    (root / "vocal-nonvocalLabel").mkdir()
    for name, seed in CLIPS.items():
        rng = np.random.default_rng(seed)
        labels = (np.arange(round((seconds - 0.02) / 0.02)) // (20 + seed)) % 2
        t = np.arange(int(seconds * MIR1K_RATE)) / MIR1K_RATE
        sung = labels[np.clip(np.rint((t - 0.02) / 0.02).astype(int), 0, len(labels) - 1)]
        voice = 0.3 * np.sin(2 * np.pi * 350 * t) * sung
        sf.write(root / "Wavfile" / f"{name}.wav",
                 np.stack([0.05 * rng.standard_normal(len(t)), voice], 1), MIR1K_RATE)
        (root / "vocal-nonvocalLabel" / f"{name}.vocal").write_text("".join(f"{v}\n" for v in labels))
    return root


@pytest.fixture(scope="module")
def mir1k(tmp_path_factory) -> Path:
    return make_mir1k(tmp_path_factory.mktemp("mir1k"))


def evaluate(*args: str | Path) -> int:
    return main(["evaluate", *map(str, args), "--no-progress"])


def test_evaluate_scores_the_test_singers_with_a_threshold_from_the_validation_singers(
        mir1k, model_file, tmp_path, capsys):
    assert evaluate("--model", model_file, "--data", mir1k, "--out", tmp_path, "--per-file") == 0
    output = capsys.readouterr().out
    assert "(mir1k, split test): 2 clips" in output
    assert "chosen on 2 validation clips" in output
    assert "| set | frames | error % | precision % | recall % | f_measure % | specificity % | auroc |" \
        in output
    assert "| heycat_3_02 |" in output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["clips"] == 2
    pooled = metrics["pooled"]
    assert pooled["frames"] == 2 * DEFAULT_GRID.num_frames(2 * SR)
    assert pooled["error"] == pytest.approx(1 - pooled["accuracy"])
    rows = list(csv.DictReader(uncommented(tmp_path / "per_file.csv")))
    assert [row["name"] for row in rows] == ["heycat_3_01", "heycat_3_02"]
    assert sum(int(row["tp"]) for row in rows) == pooled["tp"]


def test_a_threshold_of_zero_calls_every_frame_singing(mir1k, model_file, tmp_path):
    assert evaluate("--model", model_file, "--data", mir1k, "--threshold-from", "0",
                    "--split", "all", "--out", tmp_path) == 0
    pooled = json.loads((tmp_path / "metrics.json").read_text())["pooled"]
    labels = np.concatenate([item.labels for item in Mir1kDataset(mir1k)])
    assert pooled["recall"] == 1.0 and pooled["specificity"] == 0.0
    assert pooled["error"] == pytest.approx(1 - labels.mean())


def test_evaluate_tells_where_the_errors_lie_around_the_label_changes(mir1k, model_file, tmp_path,
                                                                      capsys):
    assert evaluate("--model", model_file, "--data", mir1k, "--threshold-from", "0", "--split", "all",
                    "--boundaries", "--out", tmp_path) == 0
    assert "| distance (s) | non-singing frames | false alarms % |" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows, pooled = metrics["boundaries"], metrics["pooled"]
    assert sum(row["negatives"] for row in rows) == pooled["tn"] + pooled["fp"]
    assert sum(row["positives"] for row in rows) == pooled["tp"] + pooled["fn"]
    # threshold 0 calls every frame singing: every unsung frame is a false alarm, none is missed
    assert all(row["false_alarm_rate"] in (1.0, None) and row["miss_rate"] in (0.0, None) for row in rows)


def test_evaluating_the_validation_singers_warns_that_scores_are_optimistic(mir1k, model_file, capsys):
    assert evaluate("--model", model_file, "--data", mir1k, "--split", "valid") == 0
    assert "scores are optimistic" in capsys.readouterr().out


def test_the_model_threshold_is_used_when_there_are_no_validation_clips(tmp_path, model_file, capsys):
    for song in write_songs(tmp_path / "folder", 2, seconds=1.0):
        song.with_suffix(".txt").write_text("0.0 0.5 sing\n")
    assert evaluate("--model", model_file, "--data", tmp_path / "folder") == 0
    stored = torch.load(model_file, weights_only=True)["extra"]["threshold"]
    assert f"(folder, split all): 2 clips; threshold {stored:.4f} (stored in " in capsys.readouterr().out
    assert evaluate("--model", model_file, "--data", tmp_path / "folder", "--threshold-from", "valid") == 2
    assert "has no validation clips" in capsys.readouterr().err


def test_an_unreadable_clip_is_skipped_reported_and_fails_the_run(model_file, tmp_path, capsys):
    root = make_mir1k(tmp_path / "mir1k")
    (root / "Wavfile" / "heycat_4_01.wav").write_bytes(b"junk")
    assert evaluate("--model", model_file, "--data", root) == 1
    captured = capsys.readouterr()
    assert "split test): 2 clips" in captured.out
    assert "skipped " in captured.err and "heycat_4_01.wav" in captured.err


def test_evaluate_smooths_with_the_models_median_filter(mir1k, tmp_path, capsys):
    detector = Detector(build_frontend("mel", n_bands=25), LogCompression(), BandNorm(25),
                        SchlueterCNN(n_bands=25, context=25)).eval()
    path = tmp_path / "short-median.pt"
    save_detector(path, detector, {"threshold": 0.5, "median_filter": 7})
    assert evaluate("--model", path, "--data", mir1k, "--split", "all", "--threshold-from", "model",
                    "--out", tmp_path) == 0
    assert "median filter 7 frames" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["smoothing"] == 7 == metrics["provenance"]["smoothing"]
    assert (tmp_path / "per_file.csv").read_text().startswith("# vocalfront ")


def test_evaluate_without_label_files_says_they_are_missing(model_file, tmp_path, capsys):
    write_songs(tmp_path, 2)
    assert evaluate("--model", model_file, "--data", tmp_path, "--format", "folder") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "none of the 2 clips of split 'all' could be evaluated; first: " in error
    assert "evaluate needs ground truth: a label file beside each song" in error


def test_a_label_file_beside_the_song_is_the_plots_ground_truth_unless_we_wrote_it(model_file, tmp_path):
    (song,) = write_songs(tmp_path / "in", 1)
    truth = song.with_suffix(".lab")
    truth.write_text("0.0 0.5 nosing\n0.5 1.5 sing\n")
    elsewhere = DetectJob(load_model(model_file), tmp_path / "out", ("lab",), False, True, False)
    assert elsewhere.reference_file(song) == truth
    assert [(s.start, s.end) for s in elsewhere.reference_segments(song, 1.5)] == [(0.5, 1.5)]
    beside = DetectJob(load_model(model_file), None, ("lab",), False, True, False)
    assert beside.reference_file(song) is None  # song.lab is this job's own output
    assert detect(song, "--model", model_file, "--out", tmp_path / "out", "--plot") == 0
    assert (tmp_path / "out" / "song0.timeline.png").is_file()


def test_labels_written_by_an_earlier_run_are_not_taken_for_ground_truth(model_file, tmp_path):
    (song,) = write_songs(tmp_path, 1)
    assert detect(song, "--model", model_file) == 0  # writes song0.lab and its side file beside
    job = DetectJob(load_model(model_file), tmp_path / "out", ("json",), False, True, False)
    assert job.reference_file(song) is None


def test_a_reference_file_fits_a_single_input_only(model_file, tmp_path, capsys):
    write_songs(tmp_path / "in", 2)
    (tmp_path / "truth.lab").write_text("0 1 sing\n")
    truth = tmp_path / "truth.lab"
    assert detect(tmp_path / "in", "--model", model_file, "--plot", "--reference", truth) == 2
    assert "a single label file fits one input" in capsys.readouterr().err


def test_long_files_show_progress_inside_the_file(model_file, monkeypatch, capsys):
    monkeypatch.setattr(importlib.import_module("vocalfront.inference"), "PROGRESS_DELAY", 0.0)
    from vocalfront.inference import predict_waveform

    predict_waveform(load_model(model_file).detector, tone_bursts(10.0).astype(np.float32),
                     chunk_seconds=2.0, progress=True)
    bars = capsys.readouterr().err
    assert "features" in bars and "singing" in bars and "s audio" in bars


def test_help_texts_name_the_values_their_owners_hold():
    from vocalfront import evaluation, grid, scoring
    from vocalfront.cli import data as data_cli
    from vocalfront.cli import evaluate as evaluate_cli
    from vocalfront.cli import experiment as experiment_cli
    from vocalfront.cli import theory as theory_cli
    from vocalfront.cli import train as train_cli
    from vocalfront.data import check, labels
    from vocalfront.experiment import runner
    from vocalfront.training import config

    assert ("auto", *check.READERS) == data_cli.DATASET_FORMATS == evaluate_cli.DATASET_FORMATS
    assert data_cli.DEFAULT_TOLERANCE == labels.DEFAULT_TOLERANCE
    assert evaluate_cli.METRICS == scoring.METRICS
    assert evaluate_cli.MAX_SMOOTHING == evaluation.MAX_SMOOTHING
    assert experiment_cli.PROFILES == runner.PROFILES
    assert theory_cli.MIN_HOP == grid.WINDOW // 8 and theory_cli.MAX_HOP == grid.SAMPLE_RATE // 2
    assert train_cli.DATA_ENV == config.DATA_ENV


def test_help_says_what_the_tool_does_and_starts_with_detect(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "Find the singing in music" in text
    commands = [line.split()[0] for line in text.split("positional arguments:")[1].splitlines()[2:8]]
    assert commands[0] == "detect"
    assert "vocalfront detect song.flac --plot" in text.split("examples:")[1]

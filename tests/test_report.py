"""``vocalfront detect --report``: the HTML page builder, the CLI output, and the page in a real
headless Chromium (skipped where ``/usr/bin/chromium`` is missing; ``apt-get install chromium``).

The browser test drives Chromium through the DevTools protocol over ``--remote-debugging-pipe``
(JSON messages ending in a NUL byte on file descriptors 3 and 4): no extra Python package.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_cli import detect, model_file, write_songs  # noqa: F401 (fixture)

from vocalfront.detect import Detection
from vocalfront.provenance import Provenance
from vocalfront.report import audio_url, build_report
from vocalfront.segments import Segment

CHROMIUM = Path("/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n(the builder embeds whatever bytes it is given)"
PROVENANCE = Provenance("0.3.0.dev0", "default.pt", "1a2b3c4d5e6f", 0.343, 56, 0.75, 0.2)


def synthetic_detection(segments: list[Segment], duration: float = 6.0) -> Detection:
    frames = int(duration * 70)
    probabilities = np.zeros(frames, dtype=np.float32)
    return Detection(segments, probabilities, probabilities, 0.343, np.arange(frames) / 70, duration,
                     PROVENANCE)


SEGMENTS = [Segment(1.0, 2.25), Segment(3.5, 4.0), Segment(64.5, 70.125)]


def test_the_page_escapes_the_file_name_and_holds_every_segment_the_figure_and_the_provenance():
    name = '<script>alert("x")</script>&.wav'
    page = build_report(name, synthetic_detection(SEGMENTS, 80.0), audio_url(f"music/{name}", "x.html"),
                        PNG)
    assert "<script>alert" not in page and html.escape(name) in page
    assert page.count("<script>") == 1  # our own few lines only
    assert 'src="music/%3Cscript%3Ealert%28%22x%22%29%3C/script%3E%26.wav"' in page
    rows = re.findall(r'<tr data-start="([\d.]+)" data-end="([\d.]+)"[^>]*><td>(\d+)</td><td>([^<]*)</td>'
                      r'<td>([^<]*)</td><td>([^<]*)</td></tr>', page)
    assert rows == [("1.000000", "2.250000", "1", "0:01.000", "0:02.250", "1.250 s"),
                    ("3.500000", "4.000000", "2", "0:03.500", "0:04.000", "0.500 s"),
                    ("64.500000", "70.125000", "3", "1:04.500", "1:10.125", "5.625 s")]
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    for text in ("0.3.0.dev0", "default.pt (sha256 1a2b3c4d5e6f)", "0.343", "none", "median, 56 frames",
                 "0.75 s", "0.2 s", "float32", "every frame"):
        assert f"<td>{text}</td>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing loaded from elsewhere


def test_the_page_gives_the_peak_threshold_when_one_applied():
    detection = replace(synthetic_detection(SEGMENTS), provenance=replace(PROVENANCE, peak_threshold=0.8))
    assert "<th>peak threshold</th><td>0.800</td>" in build_report("s.wav", detection, "s.wav")


def test_the_page_says_when_the_cnn_ran_on_every_3rd_frame_only():
    detection = replace(synthetic_detection(SEGMENTS), provenance=replace(PROVENANCE, frame_step=3))
    page = build_report("s.wav", detection, "s.wav")
    assert "<td>every 3rd frame, logits interpolated between</td>" in page


def test_a_page_without_segments_figure_or_provenance_says_so():
    page = build_report("song.wav", replace(synthetic_detection([]), provenance=None), "song.wav")
    assert "no singing found" in page and "not recorded" in page and "<img" not in page


def test_the_audio_url_is_relative_to_the_page_and_percent_encoded(tmp_path):
    assert audio_url(tmp_path / "in" / "a song#1.wav", tmp_path / "out" / "a song#1.report.html") == \
        "../in/a%20song%231.wav"
    assert audio_url(tmp_path / "song.wav", tmp_path / "song.report.html") == "song.wav"


def test_detect_report_writes_the_page_beside_the_other_outputs_and_skip_existing_counts_it(
        tmp_path, model_file, capsys):  # noqa: F811 (fixture)
    songs = write_songs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--report") == 0
    names = {"song0.lab", "song0.provenance.json", "song0.report.html"}
    assert set(out.iterdir()) == {out / name.replace("song0", s.stem) for s in songs for name in names}
    page = (out / "song1.report.html").read_text()
    assert '<audio id="player" controls preload="metadata" src="../in/song1.wav">' in page
    assert "data:image/png;base64," in page and "model.pt (sha256 " in page
    assert "song1.report.html" in json.loads((out / "song1.provenance.json").read_text())["outputs"]
    (out / "song1.report.html").unlink()
    capsys.readouterr()
    assert detect(tmp_path / "in", "--model", model_file, "--out", out, "--report", "--skip-existing") == 0
    assert "1 done, 1 skipped" in capsys.readouterr().err
    assert (out / "song1.report.html").is_file()


class Chromium:
    """A headless Chromium driven by the DevTools protocol over ``--remote-debugging-pipe``."""

    def __init__(self, profile: Path):
        to_browser, self._send = os.pipe()
        self._receive, from_browser = os.pipe()

        def on_fds_3_and_4():  # the pipe the browser reads commands from, and the one it answers on
            read_end, write_end = os.dup(to_browser), os.dup(from_browser)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            ["nice", "-n", "19", str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--autoplay-policy=no-user-gesture-required", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=on_fds_3_and_4)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id, self.events = b"", 0, []

    def send(self, method: str, session: str | None = None, timeout: float = 30.0, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict:
        while True:
            for index, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(index)
            self.events.append(self._read(timeout))

    def _read(self, timeout: float) -> dict:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._receive], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._receive, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("no answer from Chromium")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        os.close(self._send)
        os.close(self._receive)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def browser_page(tmp_path):
    """``(chromium, session)``: a page in a fresh headless Chromium."""
    chromium = Chromium(tmp_path / "profile")
    try:
        target = chromium.send("Target.createTarget", url="about:blank")["targetId"]
        session = chromium.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        chromium.send("Page.enable", session)
        yield chromium, session
    finally:
        chromium.close()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def evaluate(chromium: Chromium, session: str, expression: str):
    result = chromium.send("Runtime.evaluate", session, expression=expression, awaitPromise=True,
                           returnByValue=True)
    assert "exceptionDetails" not in result, result["exceptionDetails"]
    return result["result"].get("value")


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Chromium (apt-get install chromium)")
def test_clicking_a_segment_row_in_chromium_seeks_the_player_there_and_plays(tmp_path, browser_page):
    chromium, session = browser_page
    rate, seconds = 22050, 6.0
    song = tmp_path / "<b>song & co #1.wav"
    t = np.arange(int(rate * seconds)) / rate
    sf.write(song, 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    segments = [Segment(1.25, 2.0), Segment(3.5, 5.0)]
    from vocalfront.plotting import figure_png, timeline_figure

    figure = timeline_figure(np.full(420, 0.5), 0.343, segments, title=song.name)
    page = tmp_path / "pages" / "song.report.html"
    page.parent.mkdir()
    page.write_text(build_report(song.name, synthetic_detection(segments, seconds), audio_url(song, page),
                                 figure_png(figure)), encoding="utf-8")

    chromium.send("Page.navigate", session, url=page.as_uri())
    chromium.wait_for("Page.loadEventFired")
    elements = evaluate(chromium, session, """(async () => {
        const player = document.querySelector("audio#player");
        if (player.readyState < 1) await new Promise((ok, fail) => {
            player.addEventListener("loadedmetadata", ok); player.addEventListener("error", fail); });
        const img = document.querySelector("img#timeline");
        return {title: document.querySelector("h1").textContent, img: img.complete && img.naturalWidth,
                starts: [...document.querySelectorAll("#segments tbody tr")].map(r => r.dataset.start),
                duration: player.duration, paused: player.paused, provenance:
                document.querySelector(".provenance").textContent};
    })()""")
    assert elements["title"] == song.name
    assert elements["img"] > 100
    assert elements["starts"] == ["1.250000", "3.500000"]
    assert elements["duration"] == pytest.approx(seconds, abs=0.01)
    assert elements["paused"] and "1a2b3c4d5e6f" in elements["provenance"]

    for index in (1, 0):  # the later segment first, then back to the earlier one
        box = evaluate(chromium, session, f"""(() => {{
            const row = document.querySelectorAll("#segments tbody tr")[{index}];
            row.scrollIntoView({{block: "center"}});
            const player = document.getElementById("player");
            player.pause();
            window.seekedTo = null;
            const record = () => {{ window.seekedTo = player.currentTime; }};
            player.addEventListener("seeking", record, {{once: true}});
            const box = row.getBoundingClientRect();
            return {{x: box.x + box.width / 2, y: box.y + box.height / 2}};
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):  # a real click, as a user's
            chromium.send("Input.dispatchMouseEvent", session, type=kind, x=box["x"], y=box["y"],
                          button="left", clickCount=1)
        expected = f"{segments[index].start:.6f}"
        state = evaluate(chromium, session, """(async () => {
            const player = document.getElementById("player");
            const shown = () => document.querySelector("#segments tr.playing");
            const settled = () => !player.paused && !player.seeking
                && shown()?.dataset.start === "EXPECTED";
            for (let i = 0; i < 200 && !settled(); i++) {  // up to 10 s on a loaded machine
                await new Promise(ok => setTimeout(ok, 50));
            }""".replace("EXPECTED", expected) + """
            return {seekedTo: window.seekedTo, time: player.currentTime, paused: player.paused,
                    playing: shown()?.dataset.start ?? null};
        })()""")
        start = segments[index].start
        assert state["seekedTo"] == pytest.approx(start, abs=1e-3)
        assert not state["paused"]
        assert start <= state["time"] < start + 1.0
        assert state["playing"] == f"{start:.6f}"  # the row being played is highlighted

"""One self-contained HTML page per song: what ``vocalfront detect --report`` writes.

The page (``song.report.html``, :func:`build_report`) holds the timeline figure embedded as a
base64 PNG, the segments table (start, end, duration as ``m:ss.mmm``), an HTML5 ``<audio>``
player for the song and the provenance record (:mod:`vocalfront.provenance`). Clicking a segment
row (or Enter on it) seeks the player to the segment's start and plays; the row being played is
highlighted. The audio is referenced by a URL relative to the page (:func:`audio_url`), not
embedded, so keep the page beside its song (or in ``--out``) when moving it. Nothing external is
loaded: CSS and a few lines of JavaScript are inline. Every text from outside (file names) is
escaped.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .segments import Segment, clock

if TYPE_CHECKING:
    from .detect import Detection
    from .provenance import Provenance

_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; word-break: break-all; }
h2 { font-size: 1.1em; margin-top: 1.5em; }
audio { width: 100%; margin: 0.8em 0; }
figure { margin: 0; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
caption { text-align: left; padding-bottom: 0.3em; }
table { border-collapse: collapse; }
th, td { padding: 0.25em 0.9em; text-align: right; border-bottom: 1px solid #e4e4e4; }
th { background: #f4f4f4; }
#segments tbody tr { cursor: pointer; }
#segments tbody tr:hover, #segments tbody tr:focus { background: #fff1e0; outline: none; }
#segments tr.playing { background: #ffd9a8; }
.provenance th, .provenance td { text-align: left; }
.muted { color: #666; }
"""

_SCRIPT = """
const player = document.getElementById("player");
const rows = document.querySelectorAll("#segments tr[data-start]");
for (const row of rows) {
  const seek = () => { player.currentTime = Number(row.dataset.start); player.play().catch(() => {}); };
  row.addEventListener("click", seek);
  row.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); seek(); } });
}
player.addEventListener("timeupdate", () => {
  const t = player.currentTime;
  for (const row of rows) {
    row.classList.toggle("playing", t >= Number(row.dataset.start) && t < Number(row.dataset.end));
  }
});
"""


def audio_url(audio: str | Path, page: str | Path) -> str:
    """URL of the ``audio`` file relative to the folder of the ``page`` file, percent-encoded
    (``../music/my song.wav`` → ``../music/my%20song.wav``); a ``file:`` URL where no relative
    path exists (another drive on Windows)."""
    audio, folder = os.path.abspath(audio), os.path.abspath(Path(page).parent)
    try:
        relative = os.path.relpath(audio, folder)
    except ValueError:
        return Path(audio).as_uri()
    return quote(Path(relative).as_posix())


def build_report(
    name: str,
    detection: Detection,
    audio_src: str,
    figure_png: bytes | None = None,
    provenance: Provenance | None = None,
) -> str:
    """The HTML page of one song's ``detection``.

    ``name``: the song as shown (its file name). ``audio_src``: URL of the audio for the player,
    relative to the page (:func:`audio_url`). ``figure_png``: the timeline figure
    (:func:`vocalfront.plotting.timeline_figure` rendered by
    :func:`~vocalfront.plotting.figure_png`), embedded; ``None`` leaves it out. ``provenance``:
    defaults to the detection's own.
    """
    provenance = detection.provenance if provenance is None else provenance
    count = len(detection.segments)
    share = 100 * detection.singing_seconds / detection.duration if detection.duration else 0.0
    summary = (f"{count} singing segment{'' if count == 1 else 's'}, {share:.1f} % of "
               f"{clock(detection.duration)}, threshold {detection.threshold:.3f}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(name)} · vocalfront report</title>",
        f"<style>{_STYLE}</style>",
        "</head>\n<body>",
        f"<h1>{escape(name)}</h1>",
        f'<p class="muted">{escape(summary)}</p>',
        f'<audio id="player" controls preload="metadata" src="{escape(audio_src)}"></audio>',
    ]
    if figure_png is not None:
        data = base64.b64encode(figure_png).decode("ascii")
        parts.append(f'<figure><img id="timeline" alt="{escape(f"timeline of {name}")}" '
                     f'src="data:image/png;base64,{data}"></figure>')
    parts += ["<h2>Singing segments</h2>", _segments_table(detection.segments)]
    parts += ["<h2>Provenance</h2>", _provenance_table(provenance)]
    parts += [f"<script>{_SCRIPT}</script>", "</body>\n</html>\n"]
    return "\n".join(parts)


def _segments_table(segments: Sequence[Segment]) -> str:
    rows = [f'<tr data-start="{s.start:.6f}" data-end="{s.end:.6f}" tabindex="0" '
            f'title="play from {clock(s.start)}"><td>{index}</td><td>{clock(s.start)}</td>'
            f"<td>{clock(s.end)}</td><td>{s.duration:.3f} s</td></tr>"
            for index, s in enumerate(segments, start=1)]
    if not rows:
        rows = ['<tr class="empty"><td colspan="4">no singing found</td></tr>']
    head = "<thead><tr><th>#</th><th>start</th><th>end</th><th>duration</th></tr></thead>"
    caption = '<caption class="muted">click a row to play from its start</caption>' if segments else ""
    return f'<table id="segments">{caption}{head}\n<tbody>\n' + "\n".join(rows) + "\n</tbody></table>"


def _provenance_table(provenance: Provenance | None) -> str:
    if provenance is None:
        return '<p class="muted">not recorded</p>'
    model = provenance.model if provenance.model_sha256 is None else \
        f"{provenance.model} (sha256 {provenance.model_sha256})"
    fields = [("vocalfront", provenance.version), ("model", model),
              ("threshold", f"{provenance.threshold:.3f}"),
              ("peak threshold", f"{provenance.peak_threshold:.3f}" if provenance.peak_applies else "none"),
              ("smoothing", f"median, {provenance.smoothing} frames"),
              ("min duration", f"{provenance.min_duration:g} s"),
              ("min gap", f"{provenance.min_gap:g} s"),
              ("CNN precision", "bfloat16 autocast" if provenance.bf16 else "float32"),
              ("CNN evaluated", provenance.cnn_frames if provenance.frame_step == 1 else
               f"{provenance.cnn_frames}, logits interpolated between")]
    rows = "\n".join(f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>"
                     for key, value in fields)
    return f'<table class="provenance">\n{rows}\n</table>'

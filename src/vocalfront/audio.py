"""Read audio files as float32 arrays at the model rate, with an optional disk cache.

Decoding goes through soundfile/libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3 with libsndfile >= 1.1,
AIFF, ...; integer PCM of 8 to 32 bits and float formats, any channel count, sample rates from
1 kHz), and media containers (:data:`CONTAINER_EXTENSIONS`: M4A/AAC, ALAC, WMA, WebM) through
FFmpeg's decoders (PyAV), the first audio stream of each.
Integer samples are scaled to [-1, 1); float files are taken as they are. Resampling is
band-limited (soxr, very high quality).

Decoded and resampled audio can be cached as ``.npy`` files in a directory given as ``cache_dir``
or in the environment variable ``VOCALFRONT_CACHE`` (no cache when neither is set). An entry is
keyed by the SHA-256 of the file's content and the target sample rate, so editing or replacing a
file invalidates it; the hash of a file is remembered per process as long as its size and
modification time do not change. Entries hold all channels; channel selection and mixing are
applied after the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError
from .fileio import atomic_write
from .grid import SAMPLE_RATE

CACHE_ENV = "VOCALFRONT_CACHE"
"""Environment variable naming the default cache directory."""
CONTAINER_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".webm", ".mka")
"""File name extensions (lower case) of media containers, decoded by FFmpeg through PyAV rather
than by libsndfile."""
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf",
    *CONTAINER_EXTENSIONS,
)
"""File name extensions (lower case) that folder searches and dataset readers treat as audio."""
RESAMPLE_QUALITY = "VHQ"
"""soxr quality preset used by :func:`resample`."""
MIN_FILE_RATE = 1000
"""Lowest sample rate (Hz) accepted in a file or for an array: a damaged header claiming 1 Hz
would otherwise turn a few kilobytes into gigabytes of resampled audio."""
MAX_FILE_RATE = 768_000
"""Highest sample rate (Hz) accepted in a file or for an array (the highest rate audio is
recorded at); a header claiming more is damaged, and resampling would leave a few samples."""
BLOCK_FRAMES = 1 << 16
"""Frames decoded at a time (1.5 s at 44.1 kHz)."""
_CACHE_VERSION = 1  # bump when decoding or resampling changes, so old entries are not reused
_HASH_CHUNK = 1 << 20
_known_hashes: dict[tuple[str, int, int, int], str] = {}

Mix = Literal["mean", "sum"]


def audio_files(folder: str | Path) -> list[Path]:
    """The files below ``folder`` (recursively) whose extension is in :data:`AUDIO_EXTENSIONS`,
    sorted; hidden files and folders (names starting with ``.``, such as macOS ``._song.ogg``
    resource forks) are skipped, symbolic links to folders are not followed. A folder of the
    search that cannot be listed (``folder`` itself included) is an :class:`AudioError` naming
    it, not a silent gap in the data."""
    files = []
    for parent, subfolders, names in os.walk(folder, onerror=_unreadable_folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files += [Path(parent, name) for name in names
                  if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
                  and Path(parent, name).is_file()]
    return sorted(files)


def _unreadable_folder(error: OSError) -> None:
    raise AudioError(error.filename, f"cannot read folder ({error.strerror or error}); "
                                     "fix its permissions or leave it out")


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling of ``audio`` from ``from_rate`` to ``to_rate`` Hz (soxr).

    ``audio`` is ``(samples,)`` or ``(channels, samples)``; the result has the same layout, dtype
    float32, and ``round(samples * to_rate / from_rate)`` samples. Equal rates return a float32
    copy of the input.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(None, f"sample rates must be positive, got {from_rate} Hz -> {to_rate} Hz")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise AudioError(None, f"audio must be (samples,) or (channels, samples): {audio.shape}")
    if from_rate == to_rate:
        return audio.copy()
    # soxr wants (samples, channels); a C-contiguous copy keeps it from copying again.
    resampled = soxr.resample(np.ascontiguousarray(audio.T), from_rate, to_rate, RESAMPLE_QUALITY)
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


def load_channels(
    path: str | Path, sample_rate: int = SAMPLE_RATE, cache_dir: str | Path | None = None
) -> np.ndarray:
    """All channels of an audio file at ``sample_rate`` Hz, float32 ``(channels, samples)``.

    ``cache_dir`` defaults to ``$VOCALFRONT_CACHE`` (no cache if unset). Raises
    :class:`~vocalfront.errors.AudioError` for a missing, empty, unreadable or non-audio file, a
    rate below :data:`MIN_FILE_RATE` or above :data:`MAX_FILE_RATE` and NaN/Inf samples.
    """
    path = Path(path)
    _check_request(path, sample_rate)
    cache = _cache_file(path, int(sample_rate), cache_dir)
    if cache is not None:
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    audio = _decode(path, int(sample_rate))
    if cache is not None:
        _write_cache(cache, audio)
    return audio


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    channel: int | None = None,
    cache_dir: str | Path | None = None,
    mix: Mix = "mean",
) -> np.ndarray:
    """One mono signal from an audio file at ``sample_rate`` Hz, float32 ``(samples,)``.

    ``channel`` picks one channel (0-based); ``None`` mixes all channels, by their ``"mean"`` (the
    usual down-mix, keeps the level of identical channels) or their ``"sum"`` (for files whose
    channels are separate stems, such as MIR-1K's accompaniment and voice). Errors as
    :func:`load_channels`, plus a channel index out of range.

    Without a cache the file is decoded, reduced to the one signal and resampled block by block
    (:data:`BLOCK_FRAMES`): memory holds the result plus a constant, whatever the file's rate
    and channel count (a cache entry holds every channel).
    """
    if mix not in ("mean", "sum"):
        raise AudioError(path, f"mix must be 'mean' or 'sum', got {mix!r}")
    path = Path(path)
    reduce = partial(_one_signal, path, channel, mix)
    if _cache_dir(path, cache_dir) is None:
        _check_request(path, sample_rate)
        return _decode(path, int(sample_rate), reduce)[0]
    return np.ascontiguousarray(reduce(load_channels(path, sample_rate, cache_dir).T)[:, 0])


def _check_request(path: Path, sample_rate: int) -> None:
    """Refuse a path that is no usable file (:func:`_check_file`) or a non-positive rate."""
    _check_file(path)
    if int(sample_rate) <= 0:
        raise AudioError(path, f"sample rate must be positive, got {sample_rate}")


def _check_file(path: Path) -> None:
    """Reject paths that are not non-empty regular files, before libsndfile sees them."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


Reduce = Callable[[np.ndarray], np.ndarray]
"""Turns a decoded block ``(frames, file channels)`` into the ``(frames, channels)`` kept."""


def _one_signal(path: Path, channel: int | None, mix: Mix, block: np.ndarray) -> np.ndarray:
    """The one signal :func:`load_audio` keeps of a decoded block, ``(frames, 1)``."""
    if channel is None:
        return block.mean(axis=1, keepdims=True) if mix == "mean" else block.sum(axis=1, keepdims=True)
    if not 0 <= channel < block.shape[1]:
        raise AudioError(
            path,
            f"channel {channel} out of range: the file has {block.shape[1]} channel(s), "
            f"numbered from 0",
        )
    return block[:, channel : channel + 1]


def _decode(path: Path, sample_rate: int, reduce: Reduce | None = None) -> np.ndarray:
    """Decode a file block by block, reduce each block (default: keep every channel) and resample
    it as a stream to ``sample_rate`` Hz: float32 ``(channels, samples)``.

    The output is allocated once from the length the header states (grown if the data runs
    longer), so peak memory is the output plus one block.
    """
    with _opener(path)(path) as (file_rate, frames, blocks):
        if file_rate < MIN_FILE_RATE:
            raise AudioError(path, f"sample rate {file_rate} Hz is below {MIN_FILE_RATE} Hz "
                                   "(damaged header?)")
        if file_rate > MAX_FILE_RATE:
            raise AudioError(path, f"sample rate {file_rate} Hz is above {MAX_FILE_RATE} Hz "
                                   "(damaged header?)")
        output = _Stream(file_rate, sample_rate, frames)
        try:
            for block in blocks:
                if not np.isfinite(block).all():
                    raise AudioError(path, "contains NaN or Inf samples")
                output.add(block if reduce is None else reduce(block))
        except MemoryError:  # a header claiming days of audio, or a file longer than memory
            raise AudioError(path, f"too long to hold in memory (the header says "
                                   f"{frames / file_rate / 3600:.1f} hours)") from None
    audio = output.finish()
    if audio is None:
        raise AudioError(path, "contains no samples")
    return audio


def header_seconds(path: str | Path) -> float:
    """Length of an audio file in seconds as its header states it, without decoding; 0 when
    the header cannot be read or does not say."""
    path = Path(path)
    try:
        with _opener(path)(path) as (file_rate, frames, _):
            return frames / file_rate if file_rate > 0 else 0.0
    except AudioError:
        return 0.0


def _opener(path: Path) -> Callable[[Path], contextlib.AbstractContextManager]:
    """The decoder of a file, by its extension: PyAV for media containers, else libsndfile."""
    return _open_with_av if path.suffix.lower() in CONTAINER_EXTENSIONS else _open_with_soundfile


Opened = Iterator[tuple[int, int, Iterator[np.ndarray]]]
"""What a decoder opens: the file's sample rate, its length in frames as the header states it
(0 if unknown), and its blocks, float32 ``(frames, channels)``."""


@contextlib.contextmanager
def _open_with_soundfile(path: Path) -> Opened:
    """A file libsndfile reads (WAV, FLAC, OGG, MP3, ...); its errors as :class:`AudioError`."""
    if path.suffix.lower() == ".mp3" and "MP3" not in sf.available_formats():
        raise AudioError(
            path, f"MP3 is not supported by this libsndfile ({sf.__libsndfile_version__}); "
            "it needs libsndfile >= 1.1.0, or convert the file to WAV/FLAC",
        )

    def blocks(handle: sf.SoundFile) -> Iterator[np.ndarray]:
        # read() keeps only the frames decoded; blocks() would pass on the unfilled end of
        # its buffer when damaged data decodes short
        while len(block := handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
            yield block

    try:
        with sf.SoundFile(path) as handle:
            yield handle.samplerate, handle.frames, blocks(handle)
    except (sf.SoundFileError, RuntimeError) as error:
        reason = getattr(error, "error_string", None) or str(error)
        reason = reason.strip().rstrip(".")
        if "not a regular file" in reason:  # libsndfile's word for data it cannot parse as MP3
            reason = "format not recognised or data damaged"
        raise AudioError(path, f"not a readable audio file ({reason})") from None
    except UnicodeEncodeError:  # soundfile passes names to libsndfile as strict UTF-8
        raise AudioError(path, "file name is not valid UTF-8 (libsndfile cannot open it); "
                               "rename the file") from None


@contextlib.contextmanager
def _open_with_av(path: Path) -> Opened:
    """The first audio stream of a media container (M4A/AAC, ALAC, WMA, WebM, ...) through
    FFmpeg's decoders (PyAV); its errors as :class:`AudioError`."""
    try:
        import av
    except ImportError:
        raise AudioError(path, f"{path.suffix} files need PyAV (pip install av), or convert the "
                               "file to WAV/FLAC") from None

    def blocks(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[np.ndarray]:
        packed = av.AudioResampler(format="flt")  # float32, channels interleaved, source rate
        for frame in container.decode(stream):
            for chunk in packed.resample(frame):
                yield chunk.to_ndarray().reshape(-1, len(chunk.layout.channels))
        for chunk in packed.resample(None):
            yield chunk.to_ndarray().reshape(-1, len(chunk.layout.channels))

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "has no audio stream")
            stream = container.streams.audio[0]
            seconds = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                       else (container.duration or 0) / av.time_base)
            file_rate = stream.rate or 0
            yield file_rate, max(round(seconds * file_rate), 0), blocks(container, stream)
    except av.FFmpegError as error:
        reason = str(getattr(error, "strerror", None) or error).strip().rstrip(".")
        raise AudioError(path, f"not a readable audio file ({reason})") from None


class _Stream:
    """Resampled blocks gathered into one float32 ``(channels, samples)`` array."""

    def __init__(self, from_rate: int, to_rate: int, frames: int):
        self.from_rate, self.to_rate = from_rate, to_rate
        self.expected = max(round(frames * to_rate / from_rate), 0) + 1
        self.resampler: soxr.ResampleStream | None = None
        self.output: np.ndarray | None = None
        self.filled = 0

    def add(self, block: np.ndarray, last: bool = False) -> None:
        """Append ``block`` ``(frames, channels)`` at the source rate."""
        if self.resampler is None:
            self.resampler = soxr.ResampleStream(self.from_rate, self.to_rate, block.shape[1],
                                                 dtype="float32", quality=RESAMPLE_QUALITY)
            # pages are only used once written: an over-long header costs address space only
            self.output = np.empty((block.shape[1], self.expected), np.float32)
        if self.from_rate != self.to_rate:
            block = self.resampler.resample_chunk(np.ascontiguousarray(block), last=last)
        assert self.output is not None
        if self.filled + len(block) > self.output.shape[1]:  # the header understated the length
            grown = np.empty((self.output.shape[0], 2 * (self.filled + len(block))), np.float32)
            grown[:, : self.filled] = self.output[:, : self.filled]
            self.output = grown
        self.output[:, self.filled : self.filled + len(block)] = block.T
        self.filled += len(block)

    def finish(self) -> np.ndarray | None:
        """Everything resampled, ``(channels, samples)``; ``None`` when no sample came."""
        if self.output is None:
            return None
        if self.from_rate != self.to_rate:
            self.add(np.zeros((0, self.output.shape[0]), np.float32), last=True)
        if self.filled == 0:
            return None
        audio = self.output[:, : self.filled]
        return audio if audio.shape[0] == 1 else np.ascontiguousarray(audio)


def _cache_dir(path: Path, cache_dir: str | Path | None) -> Path | None:
    """The cache directory in use (``cache_dir``, else ``$VOCALFRONT_CACHE``), or None."""
    directory = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or None
    return None if directory is None else Path(directory)


def _cache_file(path: Path, sample_rate: int, cache_dir: str | Path | None) -> Path | None:
    """Cache entry for ``path`` at ``sample_rate`` Hz, or None when caching is off."""
    directory = _cache_dir(path, cache_dir)
    if directory is None:
        return None
    return directory / f"{_content_hash(path)}-{sample_rate}hz-v{_CACHE_VERSION}.npy"


def _content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, remembered while its size and modification time stay put."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _known_hashes:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
        _known_hashes[key] = digest.hexdigest()
    return _known_hashes[key]


def _read_cache(cache: Path) -> np.ndarray | None:
    """The cached array, or None when there is no usable entry (a damaged one is ignored)."""
    try:
        audio = np.load(cache, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if audio.dtype != np.float32 or audio.ndim != 2:
        return None
    return audio


def _write_cache(cache: Path, audio: np.ndarray) -> None:
    """Store ``audio`` atomically; a cache that cannot be written only costs a warning."""
    try:
        with atomic_write(cache, "wb") as handle:
            np.save(handle, audio, allow_pickle=False)
    except OSError as error:
        warnings.warn(f"{cache}: cannot write audio cache ({error})", stacklevel=3)

"""Interchangeable front-ends: waveform ``(batch, samples)`` → band energies ``(batch, bands, frames)``.

Registered names: ``mel`` (STFT mel-spectrogram), ``fb`` (designed filter bank with per-band
time-averaging), ``fb-noavg`` (same filters, no averaging) and the learnable variants
``fb-learn-cf``, ``fb-learn-avg``, ``fb-learn-bw``, ``fb-free``.

Where each idea lives: :mod:`.base` (the interface and its checks), :mod:`.registry` (names and
rebuilding from configs), :mod:`.mel`; for the filter bank, :mod:`.design` (the formulas: numpy
and torch functions, no modules), :mod:`.filterbank` (what the filters are: the parameterisation,
filter values and averaging windows) and :mod:`.multirate` (how they are applied: decimation,
blocks, folding); :mod:`.compression` (log and per-band norm) and :mod:`.inspection` (learned
parameters in physical units, figures).
"""

from .base import FrontEnd, check_waveform
from .compression import BandNorm, Log1pCompression, LogCompression, build_compression
from .filterbank import FilterBank
from .mel import CONVENTIONS, MelSpectrogram
from .registry import available_frontends, build_frontend, register_frontend

register_frontend("mel", MelSpectrogram)
register_frontend("fb", FilterBank)
register_frontend("fb-noavg", FilterBank, averaging="none")
register_frontend("fb-gauss", FilterBank, averaging="gaussian-formula")
register_frontend("fb-learn-cf", FilterBank, learn=("cf",))
register_frontend("fb-learn-avg", FilterBank, learn=("avg",))
register_frontend("fb-learn-bw", FilterBank, learn=("bw",))
register_frontend("fb-free", FilterBank, learn=("free",))

__all__ = [
    "CONVENTIONS",
    "BandNorm",
    "FilterBank",
    "FrontEnd",
    "Log1pCompression",
    "LogCompression",
    "MelSpectrogram",
    "available_frontends",
    "build_compression",
    "build_frontend",
    "check_waveform",
    "register_frontend",
]

"""Where the packaged default detector lives: ``vocalfront/pretrained/default.pt``.

The file is a detector saved by :func:`~vocalfront.detector_file.save_detector` (its ``extra``
record holds its decision settings). It is shipped with the package when one has been trained and
copied here; a source checkout without it gets a :class:`MissingModelError` that says how to
make one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import VocalfrontError

DEFAULT_MODEL_NAME = "default.pt"
"""File name of the packaged default detector inside this package."""


class MissingModelError(VocalfrontError):
    """No detector file where one was expected; the message says how to get one."""


def default_model_path() -> Path:
    """Path of the packaged default detector (it may not exist; see :func:`require_default_model`)."""
    return Path(str(resources.files(__name__).joinpath(DEFAULT_MODEL_NAME)))


def require_default_model() -> Path:
    """The packaged default detector's path; :class:`MissingModelError` when there is none."""
    path = default_model_path()
    if not path.is_file():
        raise MissingModelError(
            f"{path}: no default model is installed; train one with `vocalfront train "
            "--config configs/default.toml --out runs/default` and pass --model "
            "runs/default/model.pt (or copy that file here)"
        )
    return path

"""Typed errors raised by the library and rendered as one line by the CLI.

Every error names what went wrong, which file, and how to fix it. The CLI catches
:class:`PcsepError` once and prints ``str(err)``; nothing else is shown unless ``--debug``.
"""

from __future__ import annotations

from os import PathLike


class PcsepError(Exception):
    """Base class of every error pcsep raises on purpose.

    Args:
        message: what is wrong, without the path
            (e.g. ``"header promises 10 points, file holds 3"``).
        path: the file or folder concerned, if any.
        hint: how to fix it (e.g. ``"re-export the scan as binary PLY"``).
    """

    def __init__(
        self, message: str, path: str | PathLike[str] | None = None, hint: str | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" ({self.hint})"
        # One line, always: messages may quote file contents.
        return " ".join(text.split())


class PointCloudError(PcsepError):
    """A point cloud could not be read or makes no sense as a scene."""


class AudioError(PcsepError):
    """An audio file could not be read or written."""


class ModelError(PcsepError):
    """A model reference, config or checkpoint is missing or invalid."""


class MicrophoneError(PcsepError):
    """Microphone geometry (``--mics FILE``, a batch's ``mics.json``) is unreadable, makes no
    sense, or does not fit the recording (one microphone per channel) or the scene."""


class SceneError(PcsepError):
    """A scene holds nothing that can be separated (no performer found, ...)."""


class DatasetError(PcsepError):
    """A dataset folder does not follow the dataset layout (``<example>/mixture.*, scene.*,
    stems/<name>.*, meta.json``; see :mod:`pcsep_cli.train.evaluate`)."""


class HubError(PcsepError):
    """The Hub refused a request or could not be reached (``pcsep models push``)."""


class OutputExistsError(PcsepError):
    """An output file exists already and overwriting it was not asked for."""

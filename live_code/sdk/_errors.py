"""The SDK's errors. All are ``ValueError`` subclasses, so ``except ValueError`` catches them too.

Each carries the YMIR return code :func:`live_code.sdk.main` reports for it (``return_code``)::

    SdkError                 a task input or output the SDK cannot read or write   CONFIG_ERROR
    +-- EnvFileError         env.yaml missing or malformed                         CONFIG_ERROR
    +-- ConfigValueError     config.yaml malformed, or a hyper-parameter of the    CONFIG_ERROR
    |                        wrong type
    +-- DatasetFormatError   an index or annotation file cannot be parsed          DATASET_ERROR
    +-- ResultError          a result the SDK refuses to write                     CONFIG_ERROR
    +-- ImageFormatError     an image whose size cannot be read                    UNKNOWN_IMAGE_FORMAT
    +-- ModelNotFoundError   no usable model among the files the task names        MODEL_NOT_FOUND

A job's own exception class reports another code the same way: a class attribute ``return_code``
(e.g. ``return_code = sdk.ReturnCode.NO_GPU``); or it raises :class:`TaskError` with the code.
"""

from __future__ import annotations

from live_code.contract import ReturnCode


class SdkError(ValueError):
    """A task input or output the SDK cannot read or write."""

    return_code: int = ReturnCode.CONFIG_ERROR


class EnvFileError(SdkError):
    """``env.yaml`` is missing or does not follow the contract."""


class ConfigValueError(SdkError):
    """``config.yaml`` is malformed, or a hyper-parameter cannot be read as the asked type."""


class DatasetFormatError(SdkError):
    """An index or annotation file cannot be parsed, or a split has no usable images.

    ``path`` is the file and ``place`` where in it (``'line 3'``, ``'object 2'``, ``''``).
    """

    return_code: int = ReturnCode.DATASET_ERROR

    def __init__(self, path: str, place: str, message: str) -> None:
        self.path = path
        self.place = place
        self.reason = message
        where = f"{path}: {place}" if place else path
        super().__init__(f"{where}: {message}")


class ResultError(SdkError):
    """A result the SDK refuses to write because the platform would reject or misread it."""


class ImageFormatError(SdkError):
    """An image whose format the SDK cannot read (a job reports it as ``ReturnCode.UNKNOWN_IMAGE_FORMAT``)."""

    return_code: int = ReturnCode.UNKNOWN_IMAGE_FORMAT


class ModelNotFoundError(SdkError):
    """No usable model among the files the task names (a job reports it as ``ReturnCode.MODEL_NOT_FOUND``)."""

    return_code: int = ReturnCode.MODEL_NOT_FOUND


class TaskError(Exception):
    """Raise to end the task with ``return_code`` (see :class:`ReturnCode`) and ``message`` as its reason."""

    def __init__(self, message: str, return_code: int = ReturnCode.CONTAINER_ERROR) -> None:
        super().__init__(message)
        self.return_code = int(return_code)

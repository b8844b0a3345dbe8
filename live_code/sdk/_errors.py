"""The SDK's errors. All are ``ValueError`` subclasses, so ``except ValueError`` catches them too.

SdkError                 a task input or output the SDK cannot read or write
+-- EnvFileError         env.yaml missing or malformed
+-- ConfigValueError     config.yaml malformed, or a hyper-parameter of the wrong type
+-- DatasetFormatError   an index or annotation file cannot be parsed (names file and line)
+-- ResultError          a result the SDK refuses to write (it would break the platform)
+-- ImageFormatError     an image whose size cannot be read (ReturnCode.UNKNOWN_IMAGE_FORMAT)
+-- ModelNotFoundError   no usable model among the files the task names (ReturnCode.MODEL_NOT_FOUND)
"""

from __future__ import annotations


class SdkError(ValueError):
    """A task input or output the SDK cannot read or write."""


class EnvFileError(SdkError):
    """``env.yaml`` is missing or does not follow the contract."""


class ConfigValueError(SdkError):
    """``config.yaml`` is malformed, or a hyper-parameter cannot be read as the asked type."""


class DatasetFormatError(SdkError):
    """An index or annotation file cannot be parsed.

    ``path`` is the file and ``place`` where in it (``'line 3'``, ``'object 2'``, ``''``).
    """

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


class ModelNotFoundError(SdkError):
    """No usable model among the files the task names (a job reports it as ``ReturnCode.MODEL_NOT_FOUND``)."""

"""Exceptions raised by keras-fool.

Bad arguments raise the built-in ``ValueError`` (wrong value) or ``TypeError`` (wrong kind of
object); the command line reports those as usage errors (exit code 2). Failures of the run
itself -- a corrupt file, a checksum mismatch, data that cannot be found, a diverging model --
raise a subclass of :class:`KerasFoolError` and exit with code 1.
:class:`GradientsUnavailableError` is a ``TypeError``: a target of the wrong kind for a stage.
"""


class KerasFoolError(Exception):
    """A run-time failure that is not the caller's bad argument."""


class ChecksumError(KerasFoolError):
    """A file's SHA-256 does not match the one recorded for it."""


class CorruptFileError(KerasFoolError):
    """A file exists but cannot be read as what it claims to be."""


class DataNotFoundError(KerasFoolError):
    """No source could provide a data set."""


class ResumeError(KerasFoolError):
    """A checkpoint is missing, foreign, or was written with a different configuration."""


class NonFiniteError(KerasFoolError):
    """A model produced NaN or infinite outputs."""


class GradientsUnavailableError(TypeError):
    """A target answers only queries (images in, probabilities out): a stage that needs gradients needs a surrogate."""


class BackendError(KerasFoolError):
    """A deployed model (a TFLite or ONNX file, a SavedModel, an HTTP endpoint) gave an answer that cannot be used."""


class QueryBudgetError(KerasFoolError):
    """A query-only target was asked for more images than its query budget (``max_queries``) allows."""

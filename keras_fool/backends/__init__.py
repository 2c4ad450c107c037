"""Deployed models behind the model contract: targets that answer queries only.

:class:`~keras_fool.backends.query.QueryTarget` is the shared part (input adaptation, batching,
checks, the query count and budget, running inside a compiled loop); each backend module adds
only how its kind of model is loaded and asked.
"""

from keras_fool.backends.query import QueryTarget

__all__ = ["QueryTarget"]

"""The one cache of trained models: ``<name>.keras`` beside ``<name>.json``, the recipe that made it.

The zoo's own presets are trained into :func:`keras_fool.data.cache_dir` ``/zoo`` by
``keras-fool zoo train``; :class:`ModelCache` keeps models of other sizes (e.g. the quick budget
of the robustness experiment) in a folder of the caller's, and gives a model back only if the
recipe recorded beside it equals the one asked for.
"""

from __future__ import annotations

import json

from keras_fool.io import ensure_writable_dir, save_json

__all__ = ["ModelCache"]


class ModelCache:
    """Trained models under ``folder`` as ``<name>.keras`` plus ``<name>.json`` (their recipe).

    Args:
        folder: the cache folder (created if needed).
    """

    def __init__(self, folder):
        self.folder = ensure_writable_dir(folder)

    def get(self, name, recipe, train):
        """The model cached as ``name`` if it was made with ``recipe``, else ``train()``'s (then cached).

        Returns:
            (model, True if it came from the cache).
        """
        import keras

        from keras_fool.zoo import save_keras_model

        model_path, recipe_path = self.folder / f"{name}.keras", self.folder / f"{name}.json"
        if model_path.is_file() and recipe_path.is_file():
            try:
                if json.loads(recipe_path.read_text()) == recipe:
                    return keras.saving.load_model(model_path, compile=False, safe_mode=True), True
            except Exception:  # noqa: BLE001 - a damaged cache entry is simply trained again
                pass
        model = train()
        recipe_path.unlink(missing_ok=True)  # never leave a recipe beside a model it did not make
        save_keras_model(model, model_path)
        save_json(recipe_path, recipe)
        return model, False

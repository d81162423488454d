"""At most one loaded model per process (each process has one device)."""
from __future__ import annotations

import json
from pathlib import Path

from nanoeval.config import TaskConfig
from nanoeval.identity import model_identity


class ModelPool:
    """Loading another model releases the previous one; on the controller (or the only process), a model is also
    released after the last case that needs it (`remaining` counts them). A model is the weights, not their path:
    a folder whose files changed since its model loaded (a training loop saving each step into one folder) loads
    again."""

    def __init__(self):
        self.engines, self.remaining, self.weights = {}, {}, {}

    @staticmethod
    def key(cfg: TaskConfig) -> str:
        """Tasks with the same model and engine settings share one loaded model."""
        return json.dumps([repr(cfg.model), repr(cfg.engine)])

    @staticmethod
    def weights_of(cfg: TaskConfig, root: Path, commit: str | None) -> str | None:
        """What the model's files are now: their digest (a local folder; file_digest remembers it per file version,
        so this is a stat per file), else the hub commit; None for a served model."""
        from nanoeval.engine import model_location

        if cfg.model.backend != "local":
            return None
        location = model_location(cfg.model, root)
        if not Path(location).is_dir():
            return commit or cfg.model.revision
        return model_identity(location, cfg.model.gguf_file, cfg.model.revision)["digest"]

    def get(self, cfg: TaskConfig, root: Path, commit: str | None = None, weights: str | None = None):
        """The engine of `cfg`'s model, loading it if needed. `weights`: the model identity's digest when the caller
        knows it (the session's run.json), else found here (weights_of)."""
        from nanoeval.engine import Engine, seed_everything

        k = self.key(cfg)
        weights = weights or self.weights_of(cfg, root, commit)
        if k in self.engines and self.weights.get(k) != weights:  # same path, other weights: never score old ones
            self.engines.pop(k).close()
        if k not in self.engines:
            for other in list(self.engines):
                self.engines.pop(other).close()
            if cfg.model.backend == "openai":
                from nanoeval.engine.served import ServedEngine

                self.engines[k] = ServedEngine(cfg.model, cfg.engine, root)
            else:
                self.engines[k] = Engine(cfg.model, cfg.engine, root, commit)
            self.weights[k] = weights
        seed_everything(cfg.seed)
        return self.engines[k]

    def done_with(self, cfg: TaskConfig, keep: bool) -> None:
        """One case of `cfg` finished; `keep`: an xdist worker keeps its model (it may get more cases)."""
        k = self.key(cfg)
        self.remaining[k] = self.remaining.get(k, 1) - 1
        if self.remaining[k] <= 0 and not keep and k in self.engines:
            self.engines.pop(k).close()

"""At most one loaded model per process (each process has one device)."""
from __future__ import annotations

import json
from pathlib import Path

from nanoeval.config import TaskConfig


class ModelPool:
    """Loading another model releases the previous one; on the controller (or the only process), a model is also
    released after the last case that needs it (`remaining` counts them)."""

    def __init__(self):
        self.engines, self.remaining = {}, {}

    @staticmethod
    def key(cfg: TaskConfig) -> str:
        """Tasks with the same model and engine settings share one loaded model."""
        return json.dumps([repr(cfg.model), repr(cfg.engine)])

    def get(self, cfg: TaskConfig, root: Path, commit: str | None = None):
        from nanoeval.engine import Engine, seed_everything

        k = self.key(cfg)
        if k not in self.engines:
            for other in list(self.engines):
                self.engines.pop(other).close()
            if cfg.model.backend == "openai":
                from nanoeval.engine.served import ServedEngine

                self.engines[k] = ServedEngine(cfg.model, cfg.engine, root)
            else:
                self.engines[k] = Engine(cfg.model, cfg.engine, root, commit)
        seed_everything(cfg.seed)
        return self.engines[k]

    def done_with(self, cfg: TaskConfig, keep: bool) -> None:
        """One case of `cfg` finished; `keep`: an xdist worker keeps its model (it may get more cases)."""
        k = self.key(cfg)
        self.remaining[k] = self.remaining.get(k, 1) - 1
        if self.remaining[k] <= 0 and not keep and k in self.engines:
            self.engines.pop(k).close()

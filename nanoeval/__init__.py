"""NanoEval: a pytest-native evaluation harness for small language and vision-language models.

`nanoeval.evaluate(model, tokenizer, tasks, step=..., limit=...)` scores a model in memory (training.py)."""
__version__ = "0.1.0"


def __getattr__(name: str):
    """`nanoeval.evaluate` and `nanoeval.Results` load the engine and runner only when asked for: importing a
    small module of the package (config checks, the CLI's views) stays light."""
    if name in ("evaluate", "Results"):
        from nanoeval import training

        return getattr(training, name)
    raise AttributeError(f"module 'nanoeval' has no attribute {name!r}")

"""`pytest evals/` in a new process that starts warm: what most of the tests' ~250 runs spent was importing torch
and its friends again (4 of ~7 s a run). A resident parent (one per test process) imports the heavy libraries
whose import reads no per-run setting, then forks one child per run; the child takes the run's working
directory, environment, sys.path, stdin and output files, and runs `pytest ARGS` as `python -m pytest ARGS` would
(pytest.main, then a normal interpreter exit: atexit handlers, non-daemon threads joined). Everything
NanoEval imports, and everything that reads the environment or HOME when imported (huggingface_hub, datasets,
transformers: their cache and offline settings), is imported in the child, fresh for each run.

A run whose environment changes what a preloaded library read at import (the variables in PRELOAD_ENV, or a
PYTHONPATH with more than the repo) goes to a real subprocess instead, as does every run when
NANOEVAL_TEST_FORK=0. The one thing a warm child shares with the others: matplotlib's font cache (found from the
parent's HOME), which decides nothing a test reads.

    python -m tests.forkrun     # the parent: reads one JSON request per line on stdin, answers one per line
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# imported once by the parent; none reads HOME, HF_* or NANOEVAL_* when imported, none starts a thread (pyarrow
# does: jemalloc's background thread; it and pandas are imported by each child, with datasets)
PRELOAD = ("numpy", "torch", "torch._dynamo", "torch.distributed.tensor", "PIL.Image", "yaml",
           "jinja2", "safetensors.torch", "tokenizers", "matplotlib", "matplotlib.pyplot", "pytest")
# not pytest plugins (xdist, pytest_html): pytest rewrites their asserts when it loads them, and warns if it cannot
# environment variables (prefixes) the preloaded libraries read when imported: a run that sets them differently
# from the parent gets a real subprocess
PRELOAD_ENV = ("TORCH", "PYTORCH", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "NPY_", "MPL", "CUDA", "LD_", "PYTHON",
               "TOKENIZERS_", "ARROW_")


# read when used, not when imported: torch sets TORCHINDUCTOR_CACHE_DIR in the test process itself
RUNTIME_ENV = ("PYTHONPATH", "TORCHINDUCTOR_CACHE_DIR")


def _imported_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(PRELOAD_ENV) and k not in RUNTIME_ENV}


class Warm:
    """The resident parent, seen from a test process: `run(argv, cwd, env, out, err) -> exit status` (negative:
    killed by that signal) for a run `can_run` allows; the others go to a real subprocess."""

    def __init__(self):
        self.env = dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.forkrun"], cwd=ROOT, env=self.env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.runs = 0  # runs forked so far
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"tests.forkrun did not start: {ready!r}")

    def can_run(self, env: dict) -> bool:
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in (str(ROOT), os.getcwd())]
        return not extra and _imported_env(env) == _imported_env(self.env)

    def run(self, argv: list[str], cwd: str, env: dict, out: Path, err: Path) -> int:
        assert self.can_run(env), "a run the parent's imports cannot stand for: use a real subprocess"
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": cwd, "env": env, "out": str(out),
                                          "err": str(err)}) + "\n")
        self.proc.stdin.flush()
        self.runs += 1
        return json.loads(self.proc.stdout.readline())["ret"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _child(req: dict) -> None:
    """In the forked child: become the run (as `python -m pytest`), then raise SystemExit to leave normally."""
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, req["out"], os.O_WRONLY), (2, req["err"], os.O_WRONLY)):
        new = os.open(path, mode)
        os.dup2(new, fd)
        os.close(new)
    # sys.path as a fresh `python -m` builds it: the working directory, PYTHONPATH, then the interpreter's own
    ours = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    base = [p for p in sys.path[1:] if p not in _parent_pythonpath]
    sys.path[:] = [req["cwd"], *ours, *base]
    sys.argv = [str(Path(sys.modules["pytest"].__file__).parent / "__main__.py"), *req["argv"]]
    import pytest
    code = pytest.main()  # what `python -m pytest` runs (console_main, which warns when called from here)
    sys.stdout.flush()
    raise SystemExit(code)


_parent_pythonpath: list[str] = []


def main() -> None:
    global _parent_pythonpath
    _parent_pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    import importlib
    for name in PRELOAD:
        importlib.import_module(name)
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # a fork copies only the calling thread: another one's locks would stay held in the child
        raise RuntimeError(f"tests.forkrun: {threads} threads after the imports; fork needs one")
    out = sys.stdout
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)  # never returns: SystemExit unwinds this process, which then exits like any interpreter
        _, status = os.waitpid(pid, 0)
        ret = os.waitstatus_to_exitcode(status)
        print(json.dumps({"ret": ret}), file=out, flush=True)


if __name__ == "__main__":
    main()

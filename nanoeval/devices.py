"""One device per process: each process of a multi-process run takes the first GPU whose lock file it can hold, or
a share of the CPU threads."""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path


def visible_gpus() -> list[str]:
    """GPU ids this run may use: the outer CUDA_VISIBLE_DEVICES if set, else every GPU torch sees."""
    outer = os.environ.get("NANOEVAL_OUTER_CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if outer is not None:
        return [d for d in outer.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def auto_workers() -> int:
    """`-n auto`: one worker per GPU; without GPUs, half the CPU cores (at least 1)."""
    gpus = visible_gpus()
    return len(gpus) if gpus else max(1, (os.cpu_count() or 2) // 2)


def claim_device(run_id: str, workers: int):
    """Take the first free GPU (a lock file per GPU in a per-run temp folder; the OS frees the lock when the
    process dies, for its replacement) and make it the only visible one; return the open lock file, which the
    caller keeps for the process's life. Without GPUs, take cpu_count // workers torch threads; return None.
    Raises RuntimeError when every GPU is taken."""
    gpus = visible_gpus()
    if not gpus:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        return None
    lock_dir = Path(tempfile.gettempdir()) / f"nanoeval-gpus-{run_id}"
    lock_dir.mkdir(exist_ok=True)
    for gpu in gpus:
        f = open(lock_dir / f"gpu{gpu}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        os.environ.setdefault("NANOEVAL_OUTER_CUDA_VISIBLE_DEVICES", ",".join(gpus))
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        return f
    raise RuntimeError(f"found no free GPU among {gpus} (use -n with at most one worker per GPU)")

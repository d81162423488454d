"""Batches: items sorted longest first, rows as wide as the longest item, as many rows as the token budget allows;
optionally packed (shorter items share a row). CUDA out-of-memory halves the budget, which is kept."""
from __future__ import annotations

from nanoeval.progress import notice


class Batcher:
    def __init__(self, budget: int, batch_size: int | None):
        self.budget = budget            # max padded tokens per batch (rows x row width)
        self.batch_size = batch_size    # max items per batch (None: the budget only)

    def run(self, lengths: dict[int, int], fn, pack: bool = False) -> None:
        """Call fn(rows) on lists of indices, longest first, under the token budget (and batch_size, if set).
        Unpacked, a row is one index (padded to the longest); packed, a row holds as many as fit. On CUDA
        out-of-memory the batch is retried at half the budget, which is kept for the rest of the run."""
        import torch

        order = sorted(lengths, key=lambda i: -lengths[i])
        while order:
            rows = self.first_batch(order, lengths, pack)
            try:
                fn(rows)
            except torch.cuda.OutOfMemoryError:
                if sum(map(len, rows)) == 1:
                    raise
                torch.cuda.empty_cache()
                self.budget = max(1, self.budget // 2)
                notice(f"CUDA out of memory; token budget halved to {self.budget}")
                continue
            done = {i for row in rows for i in row}
            order = [i for i in order if i not in done]

    def first_batch(self, order: list[int], lengths: dict[int, int], pack: bool) -> list[list[int]]:
        """Rows as wide as the longest item, as many as the budget allows. Packed, each item goes to the first row
        with room (first-fit decreasing): shorter items fill what would be padding, and no row is wider than
        unpacked, so the attention work (quadratic in the row width) never grows."""
        width = lengths[order[0]]
        max_rows, max_items = max(1, self.budget // width), self.batch_size or len(order)
        rows: list[list[int]] = []
        room: list[int] = []
        for i in order:
            n = lengths[i]
            r = next((r for r, free in enumerate(room) if free >= n), None) if pack else None
            if r is None:
                if len(rows) == max_rows:
                    break  # full: the next (shorter) items start the next batch
                rows.append([])
                room.append(width)
                r = len(rows) - 1
            rows[r].append(i)
            room[r] -= n
            max_items -= 1
            if not max_items:
                break
        return rows

"""A key/value cache layer preallocated for the positions a decode will write (generation.py imports it when it
decodes, so importing the engine does not import transformers)."""
from __future__ import annotations

from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """Keys and values in buffers [rows, kv heads, room, head dim] of which the first `filled` positions are set: a
    step writes its own positions in place and attention reads a view of those filled (DynamicLayer concatenates:
    a copy of the whole cache every step, which on a CPU costs about as much as the step's attention)."""

    def __init__(self, keys, values, filled: int):
        super().__init__()
        self.room_keys, self.room_values, self.filled = keys, values, filled
        self.is_initialized, self.device = True, keys.device
        self.keys, self.values = keys[:, :, :filled], values[:, :, :filled]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.filled + key_states.shape[-2]
        if end > self.room_keys.shape[-2]:
            raise RuntimeError(f"the preallocated cache holds {self.room_keys.shape[-2]} positions; {end} asked")
        self.room_keys[:, :, self.filled:end] = key_states
        self.room_values[:, :, self.filled:end] = value_states
        self.filled = end
        self.keys, self.values = self.room_keys[:, :, :end], self.room_values[:, :, :end]
        return self.keys, self.values


class Buffers:
    """One layer's decode buffers for keys and values, [rows, kv heads, room, head dim], allocated at the first write
    (so their heads and dims are the model's own, keys' and values' each)."""

    def __init__(self, rows: int, room: int):
        self.rows, self.room, self.keys, self.values = rows, room, None, None

    def write(self, rows: slice, at: int, keys, values) -> None:
        """keys / values [len(rows), heads, n, dim] to `rows`, positions at..at+n."""
        if self.keys is None:
            self.keys = keys.new_empty(self.rows, keys.shape[1], self.room, keys.shape[3])
            self.values = values.new_empty(self.rows, values.shape[1], self.room, values.shape[3])
        self.keys[rows, :, at:at + keys.shape[2]] = keys
        self.values[rows, :, at:at + values.shape[2]] = values


class WriteThroughLayer(DynamicLayer):
    """A prefill's cache layer: writes positions [0, width) of the chunk's keys and values to rows `rows` of a decode
    batch's Buffers, from position `at` on, and keeps nothing itself (the chunk attends to its own keys)."""

    def __init__(self, dest: Buffers, rows: slice, at: int, width: int):
        super().__init__()
        self.dest, self.rows, self.at, self.width = dest, rows, at, width

    def update(self, key_states, value_states, *args, **kwargs):
        self.dest.write(self.rows, self.at, key_states[:, :, :self.width], value_states[:, :, :self.width])
        return key_states, value_states

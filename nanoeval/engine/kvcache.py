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


class WriteThroughLayer(DynamicLayer):
    """A prefill's cache layer: copies positions [0, width) of the chunk's keys and values into rows `rows` of a
    decode batch's buffers, from column `at` on, and keeps nothing itself (the chunk attends to its own keys)."""

    def __init__(self, keys, values, rows: slice, at: int, width: int):
        super().__init__()
        self.dest, self.rows, self.at, self.width = (keys, values), rows, at, width

    def update(self, key_states, value_states, *args, **kwargs):
        keys, values = self.dest
        keys[self.rows, :, self.at:self.at + self.width] = key_states[:, :, :self.width]
        values[self.rows, :, self.at:self.at + self.width] = value_states[:, :, :self.width]
        return key_states, value_states

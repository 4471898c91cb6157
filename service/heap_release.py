"""Giving the C heap's free memory back to the operating system after a model load.

Loading and freezing a model version (service/graph_freezing.py) builds graph copies and
protocol buffers that are freed once it is done; glibc's malloc keeps freed
memory in the process for reuse, so it would stay resident (and count against a container's
memory limit) for the process's whole life. `malloc_trim(0)` hands the free pages back. With
it, and the SavedModel let go once its signatures are frozen (service/model.py), the service's
PSS when ready in `python -m benchmarks.compare` went from 1,066 to 874 MiB on the 2-core
machine (docs/benchmarks.md, "The frozen graph"). A C library without `malloc_trim` (musl) keeps
its own behaviour.
"""

from __future__ import annotations

import ctypes


def release_free_heap() -> bool:
    """Return the C heap's free pages to the operating system; True when glibc did (it
    answers 1 when it released some memory)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))

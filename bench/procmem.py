"""Peak memory of the bench's own processes and of the commands it spawns.

Not ``ru_maxrss``: at exec, Linux folds the parent's high-water mark into the child's
``ru_maxrss`` (and ``wait4`` reports that), so a command spawned by a bench that has grown to
500 MiB reports at least 500 MiB. ``VmHWM`` (``/proc/PID/status``) is the high-water mark of
the process's own address space, fresh at exec.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from typing import Any


def vm_hwm(pid: int | str = "self") -> int:
    """Peak resident bytes of a process (0 when /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss_bytes() -> int:
    """This process's peak resident bytes."""
    return vm_hwm() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def wait_with_peak(proc: subprocess.Popen[Any], every: float = 0.005) -> tuple[int, int]:
    """Wait for `proc`, sampling its VmHWM every `every` seconds: (wait status, peak bytes).
    The mark only rises, so the last sample before exit misses at most the final `every`."""
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, peak or usage.ru_maxrss * 1024
        peak = max(peak, vm_hwm(proc.pid))
        time.sleep(every)

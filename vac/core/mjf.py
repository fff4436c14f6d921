"""Machine/Job Features key -> value maps written for every machine (SPEC §5.4).

Pure. Units: processors are counts; times are Unix seconds; memory bytes (max_rss_bytes),
decimal MB (mem_limit_MB); HS06 per machine. Values are the exact file contents (no trailing
newline except allocated_cpu/allocated_CPU, as in the original).
"""

from __future__ import annotations

from typing import Dict, Tuple

from vac.constants import MIB
from vac.core.configtypes import Settings


def memory_bytes(settings: Settings, processors: int) -> int:
    """Memory of a machine with ``processors`` processors: mb_per_processor MiB each (bytes)."""
    return settings.mb_per_processor * processors * MIB


def _hs06(settings: Settings, processors: int) -> str:
    return str(float(settings.hs06_per_processor or 0.0) * processors)


def machinefeatures(settings: Settings, processors: int, shutdown_time: int) -> Dict[str, str]:
    """``$MACHINEFEATURES`` files: hs06 only when hs06_per_processor is set, plus options."""
    files = {"total_cpu": str(processors), "phys_cores": str(processors),
             "log_cores": str(processors), "jobslots": "1",
             "shutdowntime": str(int(shutdown_time))}
    if settings.hs06_per_processor is not None:
        files["hs06"] = _hs06(settings, processors)
    for key, value in sorted(settings.machinefeatures_options.items()):
        files[key] = value
    return files


def jobfeatures(settings: Settings, processors: int, shutdown_time: int,
                created: int) -> Dict[str, str]:
    """``$JOBFEATURES`` files (job_id is added by the model-specific creation step).

    Limits count from ``created`` (the creation time, Unix seconds) and are never negative.
    """
    wall = max(0, int(shutdown_time) - int(created))
    rss = memory_bytes(settings, processors)
    files = {"shutdowntime_job": str(int(shutdown_time)), "cpufactor_lrms": "1.0",
             "cpu_limit_secs_lrms": str(wall * processors),
             "cpu_limit_secs": str(wall * processors),
             "wall_limit_secs_lrms": str(wall), "wall_limit_secs": str(wall),
             "jobstart_secs": str(int(created)),
             "max_rss_bytes": str(rss), "mem_limit_MB": str(rss // 1000000),
             "allocated_cpu": f"{processors}\n", "allocated_CPU": f"{processors}\n"}
    if settings.hs06_per_processor is not None:
        files["hs06_job"] = _hs06(settings, processors)
    return files


def lowered_shutdown_time(shutdown_time: int) -> Dict[Tuple[str, str], str]:
    """(directory, key) -> value rewritten when the global shutdown_time lowers a machine's."""
    value = str(int(shutdown_time))
    return {("machinefeatures", "shutdowntime"): value,
            ("jobfeatures", "shutdowntime_job"): value}

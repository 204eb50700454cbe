"""CPU priority: the front and the intake process answer Alertmanager before the jobs take the CPU.

At a storm's start the worker process starts a job for most new incidents (a few ms of CPU each,
and its actions' fork and exec) while the front and the intake answer the burst of posts. On two
cores the answers waited in the run queue behind the jobs: the storm's p99 came and went with
what else the machine ran. With the front and the intake at nice -10 and the worker at 0 (the
defaults) a post waits for no job, and the jobs take what the answers leave: a few ms later, for
actions that take seconds.

The worker process and the commands its actions run stay at `worker_nice`: a service a `command`
actuator starts must not inherit the receiver's priority. A thread's nice passes to the threads
and processes it creates, so the front takes its priority before it starts any, and the worker
process takes its own first thing.

Lowering the nice value needs root or CAP_SYS_NICE. Without either, run the unit with
`Nice=-10` (systemd sets it before it drops privileges; deploy/systemd does): the front and the
intake start there and the worker raises its own, which needs no privilege. Otherwise the
receiver says so once and runs at the nice it was given.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def current_nice() -> int:
    """The calling thread's nice value."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def take_nice(nice: int) -> str | None:
    """Set every thread of this process to `nice`; None when done, else why not (nothing changed
    then, or only some threads: a thread that ended meanwhile)."""
    before = current_nice()
    if nice == before:
        return None
    tasks = _tasks()
    try:
        for tid in tasks:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except ProcessLookupError:
                continue  # a thread that just ended
    except PermissionError:
        for tid in tasks:  # a partial change would split the process: put back what moved
            try:
                os.setpriority(os.PRIO_PROCESS, tid, before)
            except OSError:
                pass
        return f"cannot set nice {nice} (it runs at {before}): needs root or CAP_SYS_NICE"
    return None


def front_priority(front_nice: int | None, worker_nice: int | None) -> None:
    """The front, before it starts any thread or child: take `front_nice` when it is above the
    worker's (log why not when it cannot); None leaves the nice as it was given."""
    if front_nice is None or (worker_nice is not None and front_nice >= worker_nice):
        return
    why = None if current_nice() <= front_nice else take_nice(front_nice)  # the unit's Nice= may have done it
    if why:
        log.warning("receiver front: %s; in a storm, answering Alertmanager competes with the jobs for the "
                    "CPU (set Nice=%d in its systemd unit, or run it as root)", why, front_nice)
    else:
        log.info("receiver front and intake process at nice %d, the worker process at %s",
                 current_nice(), worker_nice if worker_nice is not None else "the same")


def worker_priority(worker_nice: int | None) -> None:
    """The worker process, first thing: take `worker_nice` (what its actions run at)."""
    if worker_nice is None:
        return
    why = take_nice(worker_nice)
    if why:
        log.warning("worker process: %s; the jobs and their actions run at the front's priority", why)


def _tasks() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # no /proc: the calling thread

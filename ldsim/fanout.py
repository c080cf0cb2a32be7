"""A batch of independent simulations (ldd's FILEs) spread over forked processes, its results handed
back in the batch's order, exactly as if they had been worked out one after the other.

Forked, not spawned: a worker starts with everything this process has imported and read, and costs
~1 ms to start.  Each worker keeps its own parsed files (a library the whole batch needs is parsed once
per worker, not once per file).  A worker that fails in any way leaves its items to this process, which
then meets the same exception where a single process would have."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and pickle cost a few ms of every start: imported when needed
    from typing import Callable, Sequence, TypeVar

    T = TypeVar("T")
    R = TypeVar("R")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as `nproc` counts them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ordered_map(func: Callable[[T], R], items: Sequence[T], jobs: int,
                stop: Callable[[R], bool] | None = None, min_share: int = 1,
                progress: Callable[[int], None] | None = None) -> list[R]:
    """[func(x) for x in items] up to and including the first result `stop` accepts (the batch ends
    there: a script's `exit`).  With jobs > 1 the first item is worked out here before forking, so that
    every worker inherits what it parsed (libc, ld.so: what most items need); of the others, item i goes
    to worker i % jobs (neighbouring items cost alike: interleaving balances the load), worker 0 being
    this process.  Each worker ends at its own first stop, never before the batch's: every result up to
    the batch's stop exists.  No worker gets fewer than `min_share` items (below that, starting it costs
    more than it saves).  `progress(i)` is called before each item this process works out: with the
    items interleaved, its own item i is about as far as the whole batch has come."""
    n = len(items)
    jobs = max(1, min(jobs, n // max(1, min_share)))
    if jobs == 1 or not hasattr(os, "fork"):
        return _sequential(func, items, range(n), stop, progress)
    if progress is not None:
        progress(0)
    results: dict[int, R] = {0: func(items[0])}
    if stop is not None and stop(results[0]):
        return [results[0]]
    sys.stdout.flush()  # a child must not inherit (and never flushes) buffered output: it exits with _exit
    sys.stderr.flush()
    children: list[tuple[int, int, range]] = []  # (pid, read end, its items)
    for k in range(1, jobs):
        share = range(1 + k, n, jobs)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its share, pickled down the pipe; it never returns into the caller
            os.close(r)
            for _, other, _ in children:
                os.close(other)
            _child(func, items, share, stop, w)
        os.close(w)
        children.append((pid, r, share))
    mine = range(1, n, jobs)
    try:
        results.update(zip(mine, _sequential(func, items, mine, stop, progress)))
        while children:
            pid, r, share = children.pop(0)
            got = _collect(pid, r)
            if got is None:  # the worker failed: its items are worked out here
                got = _sequential(func, items, share, stop)
            results.update(zip(share, got))
    except BaseException:
        import signal
        for pid, r, _ in children:  # this process failed first: no worker is left behind
            os.close(r)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    out: list[R] = []
    for i in range(n):
        if i not in results:  # after a worker's stop: past the batch's end
            break
        out.append(results[i])
        if stop is not None and stop(results[i]):
            break
    return out


def _sequential(func: Callable[[T], R], items: Sequence[T], indices: range,
                stop: Callable[[R], bool] | None, progress: Callable[[int], None] | None = None) -> list[R]:
    out = []
    for i in indices:
        if progress is not None:
            progress(i)
        out.append(func(items[i]))
        if stop is not None and stop(out[-1]):
            break
    return out


def _child(func: Callable[[T], R], items: Sequence[T], share: range, stop: Callable[[R], bool] | None,
           w: int) -> None:
    import pickle
    status = 1
    try:
        data = pickle.dumps(_sequential(func, items, share, stop), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(w, "wb") as pipe:
            pipe.write(data)
        status = 0
    except BaseException:  # noqa: BLE001 - told by an empty pipe; the parent redoes the work
        pass
    finally:
        os._exit(status)


def _collect(pid: int, r: int) -> list | None:
    """A worker's results, or None when it did not finish."""
    import pickle
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        return None
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - a truncated pickle: the worker died mid-write
        return None

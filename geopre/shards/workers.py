"""Where a loader's workers run: DataLoader worker processes, or :class:`ThreadWorkers`, threads of
the training process; and the glibc heap tuning that wherever frames are decoded needs. Which kind
a loader takes (``LoaderConfig.worker_kind``) is decided in :mod:`geopre.shards.read`."""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import threading
import weakref
from collections import deque
from typing import Iterable, Iterator, Sequence

import torch

# Forked workers deadlock when the parent already ran threaded OpenCV/OpenMP code (seen in the test
# suite after ingest's flow filter); forkserver children start from a clean process instead.
WORKER_START_METHOD = "forkserver"
# "auto" takes threads up to this many usable cores. Measured on 2 cores (bench/shards.py): threads
# reach 0.81-0.89x of 2-process bare decoding, processes 0.61-0.73x (the training process's work of
# taking their batches in comes out of the decoding cores). With more cores, processes scale past
# the threads' GIL-held part and leave the training thread's GIL free.
THREADS_UP_TO_CORES = 4
PREFETCH = 2  # batches each worker (process or thread) keeps ready, as a DataLoader's default


def worker_process_init(_: int) -> None:
    """One OpenCV thread per DataLoader worker (the workers are the parallelism), and freed frame
    buffers kept for the next batch."""
    import cv2

    cv2.setNumThreads(1)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """glibc hands freed blocks of a few hundred kB (frames decoded apart to be resized, PNG frames)
    back to the kernel and the next batch faults them in again, zeroed: ~0.1 ms of a ~1.1 ms
    triplet in a worker process when every frame was decoded apart (2-core VM). Fixed thresholds
    keep them in the heap. Process-wide, so only where the loader
    decodes: in worker processes, and in the training process in thread mode. No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB (glibc's maximum) from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB of free heap
    except (OSError, AttributeError):
        pass


class ThreadWorkers(torch.utils.data.IterableDataset):
    """DataLoader workers as threads of this process: each of ``datasets`` (a worker's whole
    pipeline) runs in a thread of its own, ``ahead`` items ahead of the consumer (copied to pinned
    memory there when ``pin``), and their items come out in turn, as from a DataLoader's workers
    (a worker that runs out drops out of the turn). Only whole batches cross between threads:
    handing single samples to decode threads cost ~0.1 ms per triplet in context switches and
    left cores idle (bench/shards.py). The decoder releases the GIL, so the threads decode in
    parallel, and nothing crosses in shared memory as from worker processes.

    An error in a pipeline is raised in the consumer. Closing or dropping the iterator stops the
    threads (at their next item), and so does interpreter exit: the threads are daemons, so they
    never hold exit up, but one left running into finalisation can be cut down inside torch's C++
    code, which aborts the process ("terminate called without an active exception"), so an exit
    hook stops every producer first."""

    _END = object()
    _running: "weakref.WeakKeyDictionary[threading.Thread, threading.Event]" = weakref.WeakKeyDictionary()

    def __init__(self, datasets: Sequence[Iterable], ahead: int = 2, pin: bool = False):
        super().__init__()
        self.datasets = list(datasets)
        self.ahead = ahead
        self.pin = pin

    def __iter__(self) -> Iterator:
        stop = threading.Event()
        queues = [queue.Queue(self.ahead) for _ in self.datasets]
        threads = [threading.Thread(target=self._produce, args=(dataset, items, stop), daemon=True,
                                    name=f"geopre-loader-{index}")
                   for index, (dataset, items) in enumerate(zip(self.datasets, queues))]
        for thread in threads:
            self._running[thread] = stop
            thread.start()
        try:
            turn = deque(queues)
            while turn:
                item = turn[0].get()
                if item is self._END:
                    turn.popleft()
                    continue
                if isinstance(item, BaseException):
                    raise item
                turn.rotate(-1)
                yield item
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    def _produce(self, dataset: Iterable, items: queue.Queue, stop: threading.Event) -> None:
        def offer(item) -> bool:  # False once the consumer has stopped
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        source = iter(dataset)
        try:
            for item in source:
                if self.pin:
                    item = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in item.items()}
                if not offer(item):
                    return
            offer(self._END)
        except Exception as err:
            offer(err)
        finally:
            if hasattr(source, "close"):  # ends the pipeline's stages here
                source.close()


@atexit.register
def _stop_loader_threads(timeout: float = 5.0) -> None:
    for thread, stop in list(ThreadWorkers._running.items()):
        stop.set()
        thread.join(timeout)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what a container or taskset allows
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

"""A part of a run in a process of its own: one Python process runs on one core, and there are two."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from typing import Any


class ChildProcess:
    """`target(*args)` in a spawned process (a fresh interpreter: no mock inherited); `result()` is what it returned."""

    def __init__(self, name: str, target: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(target, args, send), name=name)
        self._process.start()
        send.close()

    def result(self) -> Any:
        result = self._receive.recv()
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)


def _child(target: Callable[..., Any], args: tuple[Any, ...], send: Any) -> None:
    try:
        send.send(target(*args))
    except BaseException as failure:  # noqa: BLE001 - handed to the parent, which raises it
        send.send(RuntimeError(f"{target.__name__} failed: {failure!r}\n{traceback.format_exc()}"))

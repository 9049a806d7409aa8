"""Time and size budgets for rendering an untrusted chat template (`ChatTemplate.render`).

A template comes from a model file. Jinja's sandbox stops it from touching internals, but
not from looping 10^10 times or doubling a string to gigabytes. Here:

* time: a watchdog (one thread for the process, sleeping until the earliest deadline)
  raises `TemplateTimeout` in the rendering thread (CPython's ``PyThreadState_SetAsyncExc``:
  delivered between two bytecodes, so within microseconds of the deadline, since the size
  checks keep every single C-level step small) once ``Limits.template_max_seconds`` have
  passed. It costs ~4 us a rendering and nothing while the template runs (a line tracer
  made rendering 5x slower, a timer thread per rendering cost ~0.7 ms). The exception derives from `BaseException`
  so that no ``except Exception`` inside Jinja can swallow it.
* size: every operator, filter, method call and ``~`` concatenation that can grow a string
  or list is checked before it runs where the size is predictable (repetition, padding
  widths, format strings) and after it runs otherwise; the output as a whole is counted too.
  Past ``Limits.template_max_output_chars`` it raises `TemplateBudgetError`.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import re
import threading
import time
from collections.abc import Mapping, Sized
from typing import Any, Callable

from .._interrupt import raise_in_thread
from ..limits import Limits, limit_message

__all__ = ["TemplateBudgetError", "TemplateTimeout", "Budget", "checked_filter", "TEMPLATE_FILE"]

TEMPLATE_FILE = "<chat_template>"
_NUMBER = re.compile(r"\d+")
_local = threading.local()  # the budget of the rendering in progress in each thread


class TemplateBudgetError(Exception):
    """A rendering went past its budget (becomes a `ChatTemplateError`); `limit` names the field."""

    def __init__(self, message: str, limit: str = "template_max_output_chars") -> None:
        super().__init__(message)
        self.limit = limit


class TemplateTimeout(BaseException):
    """Raised asynchronously in a rendering thread past its time budget (see `Budget.run`)."""


class Budget:
    """The limits of one rendering; `run` applies the time budget to a callable."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.max_chars = limits.template_max_output_chars
        self.deadline = 0.0

    def error(self, what: str, value: object) -> TemplateBudgetError:
        return TemplateBudgetError(limit_message(what, value, self.max_chars,
                                                 "raise Limits.template_max_output_chars, see docs/limits.md"))

    # --- sizes ----------------------------------------------------------------------------
    def check_size(self, value: Any, what: str = "a string or list the template built") -> Any:
        """Return `value`, or raise if it is a string or sequence over the size budget."""
        if isinstance(value, (str, bytes, list, tuple, dict)) and len(value) > self.max_chars:
            raise self.error(f"the size of {what}", len(value))
        return value

    def check_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Refuse integer arguments (widths, counts) larger than the size budget."""
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > self.max_chars:
                raise self.error("a width or count given to a template function", arg)

    def check_format(self, fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Estimate a ``%`` or ``format`` result: every field at its widest argument, plus widths."""
        widest = max((len(str(a)) if not isinstance(a, Sized) or isinstance(a, str) else len(a)
                      for a in (*args, *kwargs.values())), default=0)
        numbers = [int(n) for n in _NUMBER.findall(fmt) if len(n) < 12]
        if any(len(n) >= 12 for n in _NUMBER.findall(fmt)):
            raise self.error("a width in a format string", "too many digits")
        fields = fmt.count("%") + fmt.count("{")
        estimate = len(fmt) + fields * widest + sum(n for n in numbers if n > 64)
        if estimate > self.max_chars:
            raise self.error("the estimated result of a format string", estimate)

    def check_join(self, items: Any, separator: Any) -> None:
        """Estimate ``separator.join(items)`` for items already in memory (a list, a string)."""
        if isinstance(items, (list, tuple, str)) and isinstance(separator, str):
            texts = sum(len(x) for x in items if isinstance(x, str))
            estimate = texts + len(separator) * max(len(items) - 1, 0)
            if estimate > self.max_chars:
                raise self.error("the estimated result of a join", estimate)

    def check_repeat(self, left: Any, right: Any) -> None:
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and not isinstance(count, bool):
                if len(seq) * max(count, 0) > self.max_chars:
                    raise self.error("a repetition (*)", len(seq) * max(count, 0))

    def check_add(self, left: Any, right: Any) -> None:
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > self.max_chars:
                raise self.error("a concatenation (+)", len(left) + len(right))

    # --- time -----------------------------------------------------------------------------
    def run(self, render: Callable[[], str]) -> str:
        """Call `render` in this thread; past the time budget it raises `TemplateBudgetError`."""
        previous = current()
        _local.budget = self
        alarm = _Alarm(threading.get_ident())
        try:
            try:
                _WATCHDOG.arm(self.limits.template_max_seconds, alarm)
                result = render()
            finally:
                fired = alarm.disarm()
        except TemplateTimeout:
            raise self.timeout() from None
        finally:
            _local.budget = previous
        if fired:
            raise self.timeout()
        return result

    def timeout(self) -> TemplateBudgetError:
        seconds = self.limits.template_max_seconds
        return TemplateBudgetError(
            f"the chat template's rendering took longer than the limit of {seconds} s "
            "(raise Limits.template_max_seconds, see docs/limits.md)", "template_max_seconds")


class _Alarm:
    """One rendering's deadline: fires at most once, never after `disarm`."""

    __slots__ = ("thread_id", "lock", "done", "fired")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.lock = threading.Lock()
        self.done = False
        self.fired = False

    def fire(self) -> None:
        with self.lock:
            if not self.done:
                self.fired = True
                raise_in_thread(self.thread_id, TemplateTimeout)

    def disarm(self) -> bool:
        """Stop the alarm; True if it fired (a pending exception not yet delivered is cancelled)."""
        with self.lock:
            self.done = True
        if self.fired:
            raise_in_thread(self.thread_id, None)
        return self.fired


class _Watchdog:
    """One daemon thread for all renderings, sleeping until the earliest deadline.

    Arming costs a heap push (a thread per rendering cost ~0.7 ms on a busy 2-core machine);
    finished alarms are dropped when they reach the top of the heap.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, alarm: _Alarm) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._loop, name="llamactypes-template-watchdog",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), alarm))
            if self._heap[0][2] is alarm:
                self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)[2].fire()


_WATCHDOG = _Watchdog()


def current() -> Budget | None:
    """The budget of the rendering in progress (None outside `Budget.run`)."""
    return getattr(_local, "budget", None)


def checked_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter so its integer arguments and its result respect the current budget.

    `functools.wraps` keeps Jinja's ``jinja_pass_arg`` marker (context/environment filters).
    """
    value_at = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # after the context

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        if budget is None:  # outside a rendering (Jinja folding constants at compile time)
            raise TemplateBudgetError("evaluated at render time only")
        budget.check_args(args[value_at + 1:], kwargs)
        if func.__name__ == "do_format" and len(args) > value_at and isinstance(args[value_at], str):
            budget.check_format(args[value_at], args[value_at + 1:], kwargs)
        if func.__name__ in ("do_join", "sync_do_join") and len(args) > value_at:
            rest = args[value_at + 1:]
            budget.check_join(args[value_at], rest[0] if rest else kwargs.get("d", ""))
        return budget.check_size(func(*args, **kwargs), f"the result of the filter {func.__name__}")

    return wrapper

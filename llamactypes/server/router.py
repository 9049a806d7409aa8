"""`ModelRouter`: many GGUF files behind one server, each loaded on first use and unloaded when idle.

    router = ModelRouter({"qwen": Path("qwen.gguf"), "smol": Path("smol.gguf")}, load, max_loaded=1)
    engine = router.engine_for("smol")      # loads it (others asking meanwhile wait for the same load)

The app asks the router for the engine of each request (`create_app(router, config)`); the
router owns the engines it loaded and frees them (`Engine.close()`, then the model's `close()`):
- `max_loaded`: loading one more first unloads the least recently used (an idle one when any is);
- `idle_unload`: a background thread unloads models unused for that many seconds (never a busy one);
- a model id that is not served raises `UnknownModelError` (the app answers 404 in either API).
Loading runs outside the router's lock, so other models keep serving while one loads.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..engine import Engine, Heartbeat, Job
from ..errors import ClosedError, InvalidRequestError

__all__ = ["ModelRouter", "UnknownModelError", "discover_models", "PendingJob"]

log = logging.getLogger("llamactypes.server")

Loader = Callable[[str, Path], Engine]
_SPLIT = re.compile(r"^(.*)-(\d{5})-of-\d{5}$")  # llama.cpp's split naming: name-00001-of-00003.gguf


class UnknownModelError(InvalidRequestError):
    """A request named a model this server does not serve (HTTP 404 in both APIs)."""

    def __init__(self, model_id: str, available: Iterable[str]) -> None:
        names = ", ".join(sorted(available))
        super().__init__(f"model {model_id!r} not found; this server serves: {names} (GET /v1/models)",
                         param="model")
        self.model_id = model_id


def discover_models(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Path]:
    """Model id (file stem) -> path for every `.gguf` file given or inside a given folder (not recursive).

    Split models (`name-00001-of-00003.gguf`) are served by their first part. Two files with the
    same stem are an error: ids must be unambiguous.
    """
    found: dict[str, Path] = {}
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InvalidRequestError(f"{path}: no such file or folder", param="models")
        for file in files:
            stem = file.stem
            split = _SPLIT.match(stem)
            if split:
                if split.group(2) != "00001":
                    continue  # later parts of a split model: llama.cpp loads them from the first
                stem = split.group(1)
            if stem in found and found[stem] != file:
                raise InvalidRequestError(f"two models have the id {stem!r}: {found[stem]} and {file}",
                                          param="models")
            found[stem] = file
    if not found:
        raise InvalidRequestError("no .gguf files in " + ", ".join(str(p) for p in paths), param="models")
    return found


@dataclass
class _Load:
    """One load in progress: whoever asks for the model meanwhile waits on `done`."""

    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass
class _Slot:
    model_id: str
    path: Path
    engine: Engine | None = None
    last_used: float = 0.0
    loading: _Load | None = None


class ModelRouter:
    """Model id -> `Engine`, loaded lazily under a lock (see the module docstring)."""

    def __init__(self, models: Mapping[str, str | os.PathLike[str]], load: Loader, *,
                 max_loaded: int | None = None, idle_unload: float | None = None,
                 default: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not models:
            raise InvalidRequestError("a router needs at least one model", param="models")
        if max_loaded is not None and max_loaded < 1:
            raise InvalidRequestError(f"max_loaded must be >= 1, got {max_loaded}", param="max_loaded")
        if idle_unload is not None and not idle_unload > 0:
            raise InvalidRequestError(f"idle_unload must be > 0 seconds, got {idle_unload}", param="idle_unload")
        self._slots = {mid: _Slot(mid, Path(p)) for mid, p in models.items()}
        self.default = default or next(iter(self._slots))
        if self.default not in self._slots:
            raise UnknownModelError(self.default, self._slots)
        self._load_engine = load
        self.max_loaded = max_loaded
        self.idle_unload = idle_unload
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        if idle_unload is not None:
            self._reaper = threading.Thread(target=self._reap, name="llamactypes-idle-unload", daemon=True)
            self._reaper.start()

    # ------------------------------------------------------------ what is served

    @property
    def ids(self) -> list[str]:
        """Every model id served, in the order given."""
        return list(self._slots)

    def loaded(self) -> list[str]:
        """The ids whose model is in memory now."""
        with self._lock:
            return [s.model_id for s in self._slots.values() if s.engine is not None]

    def path_of(self, model_id: str) -> Path:
        return self._slot(model_id).path

    def _slot(self, model_id: str | None) -> _Slot:
        slot = self._slots.get(model_id or self.default)
        if slot is None:
            raise UnknownModelError(str(model_id), self._slots)
        return slot

    def resolve(self, model_id: str | None) -> str:
        """The id a request's `model` field selects (None: the default); raises `UnknownModelError`."""
        return self._slot(model_id).model_id

    def job_for(self, model_id: str | None, submit: Callable[[Engine], Job]) -> Job | PendingJob:
        """`submit(engine)` for the model's engine: at once when it is loaded (so a bad request raises
        here, before any response), else a `PendingJob` that loads it and sends keep-alives meanwhile."""
        model_id = self.resolve(model_id)
        engine = self._slots[model_id].engine
        if engine is not None and not engine.closed:
            with self._lock:
                self._slots[model_id].last_used = self._clock()
            return submit(engine)
        return PendingJob(self, model_id, submit)

    def loaded_engine(self, model_id: str | None = None) -> Engine | None:
        """The engine of a model if it is in memory (never loads)."""
        return self._slot(model_id).engine

    # ------------------------------------------------------------ loading

    def engine_for(self, model_id: str | None) -> Engine:
        """The engine serving `model_id` (None: the default), loading it first if needed.

        Concurrent callers for a model that is loading wait for that one load; a failed load
        raises its error to every one of them and is tried again by the next request.
        """
        slot = self._slot(model_id)
        with self._lock:
            if self._closed:
                raise ClosedError("the server is shutting down")
            slot.last_used = self._clock()
            if slot.engine is not None:
                return slot.engine
            load, mine = (slot.loading, False) if slot.loading is not None else (_Load(), True)
            if mine:
                slot.loading = load
                victims = self._make_room(slot)
        if not mine:
            load.done.wait()
            if load.error is not None:
                raise load.error
            return self.engine_for(slot.model_id)
        for victim_id, engine in victims:
            log.info("unloading %s (least recently used; --max-loaded %s)", victim_id, self.max_loaded)
            _dispose(engine)
        return self._load(slot, load)

    def _load(self, slot: _Slot, load: _Load) -> Engine:
        started = time.monotonic()
        log.info("loading %s from %s", slot.model_id, slot.path)
        try:
            engine = self._load_engine(slot.model_id, slot.path)
        except BaseException as exc:
            load.error = exc
            with self._lock:
                slot.loading = None
            load.done.set()
            raise
        with self._lock:
            slot.loading = None
            closed = self._closed
            if not closed:
                slot.engine = engine
                slot.last_used = self._clock()
        load.done.set()
        if closed:
            _dispose(engine)
            raise ClosedError("the server is shutting down")
        log.info("loaded %s in %.1f s", slot.model_id, time.monotonic() - started)
        return engine

    def _make_room(self, incoming: _Slot) -> list[tuple[str, Engine]]:
        """Under the lock: take engines out (LRU first, idle ones before busy ones) until one more fits."""
        if self.max_loaded is None:
            return []
        occupied = [s for s in self._slots.values() if s.engine is not None or (s.loading and s is not incoming)]
        excess = len(occupied) + 1 - self.max_loaded
        candidates = sorted((s for s in occupied if s.engine is not None),
                            key=lambda s: (_in_use(s.engine), s.last_used))
        victims = []
        for slot in candidates[:max(excess, 0)]:
            assert slot.engine is not None
            victims.append((slot.model_id, slot.engine))
            slot.engine = None
        return victims

    # ------------------------------------------------------------ unloading

    def unload(self, model_id: str) -> bool:
        """Free a model now (its running and waiting requests end with a 503); False if it was not loaded."""
        slot = self._slot(model_id)
        with self._lock:
            engine, slot.engine = slot.engine, None
        if engine is None:
            return False
        _dispose(engine)
        return True

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload every model idle (no running or waiting request) for `idle_unload` seconds."""
        if self.idle_unload is None:
            return []
        now = self._clock() if now is None else now
        victims = []
        with self._lock:
            for slot in self._slots.values():
                engine = slot.engine
                if engine is None:
                    continue
                if _in_use(engine):
                    slot.last_used = now  # idle time counts from the end of the last request
                elif now - slot.last_used >= self.idle_unload:
                    victims.append((slot.model_id, engine))
                    slot.engine = None
        for model_id, engine in victims:
            log.info("unloading %s (idle for %g s)", model_id, self.idle_unload)
            _dispose(engine)
        return [model_id for model_id, _ in victims]

    def _reap(self) -> None:
        assert self.idle_unload is not None
        interval = min(max(self.idle_unload / 4, 0.05), 5.0)
        while not self._stop.wait(interval):
            try:
                self.unload_idle()
            except Exception:  # never let the reaper die silently
                log.exception("idle unload failed")

    def close(self) -> None:
        """Refuse new requests and free every loaded model (idempotent)."""
        self._stop.set()
        with self._lock:
            self._closed = True
            engines = [s.engine for s in self._slots.values() if s.engine is not None]
            for slot in self._slots.values():
                slot.engine = None
        for engine in engines:
            _dispose(engine)
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join(5)

    def __enter__(self) -> ModelRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PendingJob:
    """A request for a model that is not loaded yet, with a `Job`'s face for the responder.

    The load (and then `submit(engine)`) runs in a thread; meanwhile `events()` yields a `Heartbeat`
    every `heartbeat` seconds, so streams send keep-alives and patient JSON answers can commit,
    exactly as while waiting in a queue. Then it is the real job's events. An error in the load or
    in `submit` (a prompt too long for the model, ...) is raised from `events()`.
    """

    def __init__(self, router: ModelRouter, model_id: str, submit: Callable[[Engine], Job]) -> None:
        self.model_id = model_id
        self.n_prompt = 0  # unknown until the model is loaded and the prompt tokenized
        self._router = router
        self._submit = submit
        self._job: Job | None = None
        self._error: BaseException | None = None
        self._cancel = threading.Event()
        self._ready = threading.Event()
        threading.Thread(target=self._load, name=f"llamactypes-load-{model_id}", daemon=True).start()

    def __repr__(self) -> str:
        return f"<PendingJob for {self.model_id}: {self._job!r}>"

    def _load(self) -> None:
        try:
            engine = self._router.engine_for(self.model_id)
            if not self._cancel.is_set():
                job = self._submit(engine)
                self.n_prompt = job.n_prompt
                self._job = job
                if self._cancel.is_set():
                    job.cancel()
        except BaseException as exc:  # handed to the request thread
            self._error = exc
        finally:
            self._ready.set()

    def events(self, heartbeat: float | None = None) -> Iterator[Any]:
        """Heartbeats while the model loads, then the job's events (closing early cancels it)."""
        finished = False
        try:
            while not self._ready.wait(heartbeat):
                yield Heartbeat(0)
            if self._error is not None:
                finished = True
                raise self._error
            assert self._job is not None
            yield from self._job.events(heartbeat)
            finished = True
        finally:
            if not finished:
                self.cancel()

    def cancel(self) -> None:
        """Cancel the request (a load in progress goes on for the others who need the model)."""
        self._cancel.set()
        job = self._job
        if job is not None:
            job.cancel()


def _in_use(engine: Any) -> bool:
    return bool(engine.busy or engine.queue_length)


def _dispose(engine: Engine) -> None:
    """Stop an engine, then free its model (the router created both)."""
    try:
        engine.close()
    finally:
        close = getattr(engine.model, "close", None)
        if close is not None:
            close()

"""Step-level batching: concurrent requests' denoising steps run as one network call per step.

Today's serving runs one request's whole sampling loop at a time per instance, so a 4-step request
waits behind every 50-step one, and each network call sees a batch of one request. `StepBatcher`
wraps a Backend: each request still runs its family's routine in its own thread (text encoding,
decoding, its noise), but when the routine reaches gen.runtime.denoise's loop, its `DenoiseState`
joins a running batch. At every step boundary the batcher's one thread admits the states that
arrived, groups the active ones whose feeds share a component and non-batch shapes and dtypes
(any mix of step counts, schedulers, guidance scales, class labels, prompts), concatenates their
feeds along the batch axis, runs ONE network call per group, splits the output by rows and steps
each state with its own scheduler, guidance and noise; finished and failed (cancelled) ones leave.
A request's images are what it gets alone: the same state code runs, only the rows around it differ.

Short requests first: a tick where some active requests have at most SHORT_STEPS steps in all (a
few-step student's, a preview's) steps only those, up to MAX_SHORT_TICKS ticks in a row, so a 4-step
request arriving behind 50-step ones is answered in about its own time; the long ones then get a
full tick, so a flood of short requests slows them but never stops them.

A call of a group that fails is retried one request at a time, so one bad request never fails the
others. Host code between steps (classifier guidance's gradient call, inpainting's blend) runs in the
state's own step, here as alone, unbatched.
"""

from __future__ import annotations

import threading

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend

MAX_ROWS = 256  # rows of one batched network call; a larger group is split into several calls
SHORT_STEPS = 8  # requests of at most this many steps go first ...
MAX_SHORT_TICKS = 4  # ... for at most this many ticks before every active request steps again


class _Joined:
    """A DenoiseState inside the batcher: its result or error, and the event its request waits on."""

    def __init__(self, state):
        self.state, self.error, self.finished = state, None, threading.Event()

    def end(self, error: BaseException | None = None) -> None:
        self.error = error
        self.finished.set()


class StepBatcher(Backend):
    """A Backend that runs `inner`'s calls as they come and batches concurrent requests' denoising
    steps (`join_steps`, called by gen.runtime.denoise.denoise). Thread-safe for many callers: use
    one per served model, with each request's generate() in its own thread."""

    name = "step-batched"
    resident_loop = False  # every step comes back to the host, where other requests' steps join it

    def __init__(self, inner: Backend, max_rows: int = MAX_ROWS, short_steps: int = SHORT_STEPS):
        if max_rows < 1:
            raise GenError(f"max_rows must be >= 1, got {max_rows}")
        self.inner, self.max_rows, self.short_steps = inner, max_rows, short_steps
        self.bundle, self.device, self.precision, self.share = inner.bundle, inner.device, inner.precision, inner.share
        self.closed = False
        self.ticks = 0  # batched steps run (a step of several requests counts once)
        self.calls_by_rows: dict[int, int] = {}  # rows of a network call -> how many there were (reports, tests)
        self._cond = threading.Condition()
        self._arrived: list[_Joined] = []
        self._thread: threading.Thread | None = None
        self._short_ticks = 0  # short-only ticks in a row

    # -- a Backend: other calls go straight through -------------------------------------------
    @property
    def network_seconds(self) -> float:
        return self.inner.network_seconds

    @property
    def component_seconds(self) -> dict:
        return self.inner.component_seconds

    def outputs(self, component: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_open()
        return self.inner.outputs(component, feeds)

    def output_names(self, component: str) -> list[str]:
        return self.inner.output_names(component)

    def describe(self) -> dict:
        return {**self.inner.describe(), "batching": "step"}

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self.inner.close()

    # -- the batch ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Requests that arrived and join at the next step boundary."""
        with self._cond:
            return len(self._arrived)

    def join_steps(self, state) -> np.ndarray:
        """Run `state` to its end among the other requests' states; its final sample (or its error)."""
        joined = _Joined(state)
        with self._cond:
            self.check_open()
            self._arrived.append(joined)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="gen-step-batcher", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        joined.finished.wait()
        if joined.error is not None:
            raise joined.error
        return state.x

    def _loop(self) -> None:
        active: list[_Joined] = []
        while True:
            with self._cond:
                while not (self._arrived or active or self.closed):
                    self._cond.wait()
                active += self._arrived  # admitted at this step boundary
                self._arrived = []
                if self.closed:
                    for j in active:
                        j.end(GenError("the model was unloaded while this request was sampling; send it again"))
                    return
            try:
                self.tick(self._stepping(active))
            except BaseException as e:  # never a waiter left hanging by a dead loop
                for j in active:
                    j.end(e)
                raise
            active = [j for j in active if not j.finished.is_set()]

    def _stepping(self, active: list[_Joined]) -> list[_Joined]:
        """Who steps this tick: the short requests alone (MAX_SHORT_TICKS in a row at most), else all."""
        short = [j for j in active if len(j.state.sched.timesteps) <= self.short_steps]
        if short and len(short) < len(active) and self._short_ticks < MAX_SHORT_TICKS:
            self._short_ticks += 1
            return short
        self._short_ticks = 0
        return active

    def tick(self, active: list[_Joined]) -> None:
        """One step of every active state: one network call per group of compatible feeds."""
        groups: dict[tuple, list] = {}
        for j in active:
            try:
                if j.state.done:  # a schedule of no steps left (img2img at low strength)
                    j.end()
                    continue
                feeds = j.state.feeds()
            except Exception as e:  # noqa: BLE001 - this request's error, not the batch's
                j.end(e)
                continue
            key = (j.state.call.component, *sorted((k, a.shape[1:], a.dtype.str) for k, a in feeds.items()))
            groups.setdefault(key, []).append((j, feeds))
        self.ticks += 1
        for (component, *_), members in groups.items():
            for chunk in _chunks(members, self.max_rows):
                self._step(component, chunk)

    def _step(self, component: str, chunk: list) -> None:
        outs = None
        if len(chunk) > 1:
            try:
                merged = {k: np.concatenate([f[k] for _, f in chunk]) for k in chunk[0][1]}
                out = self._network(component, merged)
                outs, start = [], 0
                for _, f in chunk:
                    rows = len(next(iter(f.values())))
                    outs.append(out[start:start + rows])
                    start += rows
            except Exception:  # noqa: BLE001 - retried alone below: only the bad request fails
                outs = None
        for k, (j, feeds) in enumerate(chunk):
            try:
                if outs is None:
                    out = self._network(component, feeds)
                else:
                    out = outs[k]
                j.state.advance(out)
                if j.state.done:
                    j.end()
            except Exception as e:  # noqa: BLE001 - a cancelled or failed request leaves the batch
                j.end(e)


    def _network(self, component: str, feeds: dict) -> np.ndarray:
        """One call of a single-output component through the inner backend (checked and counted there)."""
        out = self.inner.run(component, feeds)
        self.calls_by_rows[len(out)] = self.calls_by_rows.get(len(out), 0) + 1
        return out


def _chunks(members: list, max_rows: int):
    """Members in order, in runs of at most max_rows rows (a state larger than that runs alone)."""
    chunk, rows = [], 0
    for m in members:
        size = len(next(iter(m[1].values())))
        if chunk and rows + size > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(m)
        rows += size
    if chunk:
        yield chunk

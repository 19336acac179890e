"""Checks on device tensors that do not stop the device each: deferred to the next read.

On a GPU every ``bool()``/``float()``/``.item()`` of a device tensor makes the host wait
until the device has finished everything queued before it. A step of the neural solver
has a dozen such checks (is E(n) finite, are the weights valid, is theta_dot finite ...)
and one or two reads that a decision needs (the step guard's change of log P, the
Levenberg-Marquardt test of ngd). Inside ``deferred()`` a check only queues its flag, and
the next ``read`` of a decision's value brings every queued flag back with it in one
transfer:

    with deferred():                                  # the solver's step loop
        require(torch.isfinite(values).all(), lambda: CRNSolverError("E(n) is not finite"))
        ...                                           # no host read so far
        change = read(change_tensor)                  # one read: the value and the flags

A failed flag raises its own error, the first in the order they were queued. When anything
else goes wrong first (a Cholesky factor that a NaN upstream has spoiled), the queued checks
are looked at before the error leaves ``deferred()``, so the message names the root cause,
as an immediate check would have. Outside ``deferred()`` ``require`` checks at once.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable

import torch

MAX_PENDING = 64          # queued checks read in one go when no decision has come for so long

_pending: contextvars.ContextVar = contextvars.ContextVar("crnlang_pending_checks", default=None)


def require(ok: torch.Tensor, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` unless the boolean tensor ``ok`` (one element) is true: now, or at
    the next ``read``/``flush`` inside ``deferred()``."""
    pending = _pending.get()
    if pending is None:
        if not bool(ok):
            raise error()
        return
    pending.append((ok.reshape(()), error))
    if len(pending) >= MAX_PENDING:
        flush()


def read(value: torch.Tensor) -> float:
    """``float(value)`` of a one-element tensor, read together with every queued check (one
    transfer from the device); raises the first failed check's error."""
    return read_many(value)[0]


def read_many(*values: torch.Tensor) -> list[float]:
    """``read`` of several one-element tensors in one transfer."""
    host = torch.stack([v.detach().reshape(()).to(torch.float64) for v in values])
    pending = _pending.get()
    if not pending:
        return host.tolist()
    flags = torch.stack([ok for ok, _ in pending]).to(host.device, torch.float64)
    host = torch.cat([host, flags]).tolist()
    _raise_first_failed(pending, host[len(values):])
    return host[:len(values)]


def flush() -> None:
    """Read every queued check now (one transfer); raises the first failed one's error."""
    pending = _pending.get()
    if pending:
        flags = torch.stack([ok for ok, _ in pending]).to(torch.float64).tolist()
        _raise_first_failed(pending, flags)


def _raise_first_failed(pending: list, flags) -> None:
    checks = list(pending)
    pending.clear()
    for (_, error), flag in zip(checks, flags):
        if not flag:
            raise error()


@contextlib.contextmanager
def deferred():
    """Queue ``require`` checks until the next ``read``/``flush`` (or the end of the block)."""
    pending: list = []
    token = _pending.set(pending)
    try:
        yield
        flush()
    except BaseException as exc:
        checks = list(pending)
        pending.clear()
        for ok, error in checks:            # a failed check upstream is the root cause
            if not bool(ok):
                raise error() from exc
        raise
    finally:
        _pending.reset(token)

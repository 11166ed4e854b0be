"""libconcert for Python: a concert reservation engine (waiting queue, seat
holds, points wallet, payments) in one thread-safe object.

    import concert

    with concert.Engine("memory:") as engine:
        concert_id = engine.add_concert("Spring Tour", opens_at, closes_at)
        ...

Start with ``help(concert.Engine)``. Results are frozen dataclasses
(:class:`Hold`, :class:`Payment`, ...); failures raise subclasses of
:class:`Error`, one per library error code (:class:`SeatUnavailable`,
:class:`InsufficientFunds`, :class:`TokenNotActive`, ...). Times are ints in
ms since the epoch (UTC), money ints in the smallest unit.

``concert.capi`` is the SWIG wrapper underneath: it mirrors the C API and
is not meant for direct use.
"""

try:
    from . import capi
except ImportError as e:  # the source tree has no compiled module
    raise ImportError(
        f"concert: the compiled module concert.capi cannot be loaded ({e}); build it "
        "(CMake with -DCONCERT_WITH_PYTHON=ON, then PYTHONPATH=<build>/bindings/python/python) "
        "or install it (python3 -m pip install --no-build-isolation bindings/python), and do "
        "not run Python from inside bindings/python") from e
from ._errors import (
    AlreadyExists, AmountOverflow, BackendUnavailable, Corrupt, Error, Expired, Forbidden,
    IdempotencyConflict, InsufficientFunds, InternalError, InvalidArgument, InvalidState,
    InvalidToken, LimitExceeded, NotFound, OutOfMemory, ReservationClosed, SeatUnavailable,
    StorageIOError, TokenNotActive, UnsupportedVersion, error_class,
)
from ._types import (
    Audit, Cancellation, Concert, HistoryPage, Hold, HoldState, Payment, QueueState, QueueStatus,
    Reservation, ReservationState, Schedule, Seat, SeatSpec, SeatState, TokenClaims, TokenKind,
    TxKind, WalletTx,
)
from ._engine import Engine, ManualClock, now_ms, to_datetime, verify_token

__all__ = [
    "Engine", "ManualClock", "verify_token", "to_datetime", "now_ms", "error_class",
    # results
    "SeatSpec", "Concert", "Schedule", "Seat", "QueueStatus", "TokenClaims", "Hold", "WalletTx",
    "HistoryPage", "Payment", "Cancellation", "Reservation", "Audit",
    "SeatState", "QueueState", "TokenKind", "HoldState", "TxKind", "ReservationState",
    # errors
    "Error", "InvalidArgument", "OutOfMemory", "NotFound", "AlreadyExists", "SeatUnavailable",
    "Expired", "InvalidToken", "TokenNotActive", "InsufficientFunds", "IdempotencyConflict",
    "InvalidState", "LimitExceeded", "ReservationClosed", "AmountOverflow", "BackendUnavailable",
    "Corrupt", "StorageIOError", "UnsupportedVersion", "Forbidden", "InternalError",
]

# Public names live in private modules; report them where users find them
# (tracebacks say concert.SeatUnavailable, not concert._errors.SeatUnavailable).
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("concert._"):
        _obj.__module__ = __name__
del _name, _obj

#: Version of the libconcert library this module wraps ("MAJOR.MINOR.PATCH").
__version__ = capi.concert_version()


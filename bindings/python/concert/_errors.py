"""Exceptions: one class per libconcert error code, all under concert.Error."""

from . import capi as _capi

__all__ = [
    "Error",
    "InvalidArgument",
    "OutOfMemory",
    "NotFound",
    "AlreadyExists",
    "SeatUnavailable",
    "Expired",
    "InvalidToken",
    "TokenNotActive",
    "InsufficientFunds",
    "IdempotencyConflict",
    "InvalidState",
    "LimitExceeded",
    "ReservationClosed",
    "AmountOverflow",
    "BackendUnavailable",
    "Corrupt",
    "StorageIOError",
    "UnsupportedVersion",
    "Forbidden",
    "InternalError",
]


class Error(Exception):
    """Base class of every error libconcert reports.

    Attributes:
        code: the library's error code, a negative int (``concert.capi.CONCERT_E*``);
            stable across versions, so test it (or the class), never the text.
        name: the code's stable short name (``"seat_unavailable"``), as used
            in the HTTP API's error bodies.
        message: the library's detail for this failure (which argument, which
            slot, ...); also ``str(exc)``.
    """

    code = None
    name = "unknown"

    def __init__(self, message=None, code=None):
        if code is not None:
            self.code = code
            self.name = _capi.concert_error_name(code)
        if message is None:
            message = _capi.concert_strerror(self.code) if self.code is not None else "unknown error"
        self.message = message
        super().__init__(message)

    def __repr__(self):
        return f"{type(self).__name__}({self.message!r}, code={self.code})"


def _code_class(code, doc, *bases):
    """Makes the Error subclass of one code (class name, code, stable name, docstring)."""

    def make(cls):
        cls.code = code
        cls.name = _capi.concert_error_name(code)
        cls.__doc__ = f"{doc}\n\n``code`` {code} (``{cls.name}``)."
        return cls

    return make


@_code_class(_capi.CONCERT_EINVAL,
             "An argument is invalid: None, empty, too long, out of range, an amount <= 0.\n\n"
             "Also a :class:`ValueError`, so ``except ValueError`` catches it too. The "
             "binding raises it itself, before calling the library, for values it can "
             "judge alone.")
class InvalidArgument(Error, ValueError):
    pass


@_code_class(_capi.CONCERT_ENOMEM, "The library ran out of memory.")
class OutOfMemory(Error, MemoryError):
    pass


@_code_class(_capi.CONCERT_ENOTFOUND,
             "Unknown id: concert, schedule, seat number, hold or reservation.")
class NotFound(Error):
    pass


@_code_class(_capi.CONCERT_EEXISTS, "The thing already exists (a seat number already in the schedule).")
class AlreadyExists(Error):
    pass


@_code_class(_capi.CONCERT_ESEAT_UNAVAILABLE,
             "Seats are held or reserved by someone else; nothing was held.\n\n"
             "``conflicts`` is the tuple of the seat numbers that were taken.")
class SeatUnavailable(Error):
    def __init__(self, message=None, code=None, conflicts=()):
        super().__init__(message, code)
        self.conflicts = tuple(conflicts)


@_code_class(_capi.CONCERT_EEXPIRED, "The hold or the queue token expired (or the token was used).")
class Expired(Error):
    pass


@_code_class(_capi.CONCERT_ETOKEN, "The queue token is missing, forged, malformed or for another concert.")
class InvalidToken(Error):
    pass


@_code_class(_capi.CONCERT_ENOT_ACTIVE,
             "The queue token is genuine but still WAITING: poll queue_status() until ACTIVE.")
class TokenNotActive(Error):
    pass


@_code_class(_capi.CONCERT_EFUNDS, "The wallet's balance is below the amount to pay.")
class InsufficientFunds(Error):
    pass


@_code_class(_capi.CONCERT_EIDEMPOTENCY,
             "The idempotency key was already used with different parameters.")
class IdempotencyConflict(Error):
    pass


@_code_class(_capi.CONCERT_ESTATE,
             "Wrong state for the operation: hold already paid or released, reservation cancelled.")
class InvalidState(Error):
    pass


@_code_class(_capi.CONCERT_ELIMIT,
             "A policy limit: live holds or seats per user, hold extensions or lifetime.")
class LimitExceeded(Error):
    pass


@_code_class(_capi.CONCERT_ECLOSED, "Outside the concert's reservation window.")
class ReservationClosed(Error):
    pass


@_code_class(_capi.CONCERT_EOVERFLOW, "The amount would overflow a balance.")
class AmountOverflow(Error):
    pass


@_code_class(_capi.CONCERT_EUNAVAILABLE, "A backend is unreachable; retry later.")
class BackendUnavailable(Error):
    pass


@_code_class(_capi.CONCERT_ECORRUPT,
             "Stored data failed its checksum or cannot be decoded (journal damaged before its tail).")
class Corrupt(Error):
    pass


@_code_class(_capi.CONCERT_EIO,
             "An I/O error in the store (journal or snapshot write, fsync).\n\n"
             "Not named IOError: that is the built-in alias of OSError.")
class StorageIOError(Error):
    pass


@_code_class(_capi.CONCERT_EVERSION, "A struct or backend version this library does not support.")
class UnsupportedVersion(Error):
    pass


@_code_class(_capi.CONCERT_EFORBIDDEN, "The caller does not own the hold or the reservation.")
class Forbidden(Error):
    pass


@_code_class(_capi.CONCERT_EINTERNAL, "A bug in libconcert: please report it with the message.")
class InternalError(Error):
    pass


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgument, OutOfMemory, NotFound, AlreadyExists, SeatUnavailable, Expired,
    InvalidToken, TokenNotActive, InsufficientFunds, IdempotencyConflict, InvalidState,
    LimitExceeded, ReservationClosed, AmountOverflow, BackendUnavailable, Corrupt,
    StorageIOError, UnsupportedVersion, Forbidden, InternalError)}


def error_class(code):
    """The Error subclass raised for ``code`` (:class:`Error` for codes this binding does not know)."""
    return _BY_CODE.get(code, Error)


def _from_native(code, message, conflicts):
    """Called by the C wrapper after a failed call: builds the exception to raise."""
    cls = _BY_CODE.get(code)
    if cls is SeatUnavailable:
        return SeatUnavailable(message, code, conflicts)
    if cls is None:
        return Error(message, code)
    return cls(message, code)


_capi.pyconcert_set_error_factory(_from_native)

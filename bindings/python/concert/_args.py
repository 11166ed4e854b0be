"""Argument checks done in Python before a call reaches C.

Wrong types raise TypeError; wrong values raise concert.InvalidArgument (a
ValueError), the same class the library raises for what only it can judge.
Nothing reaches the library, so a rejected call changes nothing.
"""

import datetime

from . import capi as _capi
from ._errors import InvalidArgument

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT32_MAX = 2**32 - 1


def _type_name(value):
    return type(value).__name__


def integer(name, value, low=INT64_MIN, high=INT64_MAX):
    """An int (bool is refused) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, not {_type_name(value)}")
    if value < low or value > high:
        raise InvalidArgument(f"{name} must be between {low} and {high}, got {value}")
    return value


def ident(name, value):
    """A positive int64 id."""
    return integer(name, value, 1, INT64_MAX)


def amount(name, value):
    """Money: a positive int64 in the smallest unit."""
    return integer(name, value, 1, INT64_MAX)


def text(name, value, max_bytes, *, empty=False, optional=False):
    """A str of 1..max_bytes UTF-8 bytes without NUL (or None when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {_type_name(value)}")
    if "\0" in value:
        raise InvalidArgument(f"{name} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} is not valid Unicode text (lone surrogate)") from None
    if not value and not empty:
        raise InvalidArgument(f"{name} is empty")
    if size > max_bytes:
        raise InvalidArgument(f"{name} is longer than {max_bytes} bytes")
    return value


def user_id(value):
    return text("user_id", value, _capi.CONCERT_USER_ID_MAX)


def idem_key(value):
    return text("idempotency_key", value, _capi.CONCERT_IDEM_KEY_MAX, optional=True)


def token(value):
    """A queue token: a str; its contents are the library's to judge."""
    if not isinstance(value, str):
        raise TypeError(f"token must be str, not {_type_name(value)}")
    if "\0" in value:
        raise InvalidArgument("token contains a NUL character")
    return value


def time_ms(name, value):
    """A time: int ms since the epoch, or a timezone-aware datetime."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(f"{name} is a naive datetime; give it a timezone")
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return delta // datetime.timedelta(milliseconds=1)
    return integer(name, value)


def duration_ms(name, value, high=INT64_MAX):
    """A duration: int ms >= 0, or a timedelta; 0 means the library's default."""
    if isinstance(value, datetime.timedelta):
        value = value // datetime.timedelta(milliseconds=1)
        if value < 0:
            raise InvalidArgument(f"{name} must not be negative")
    return integer(name, value, 0, high)


def seat_nos(value, *, allow_empty=False):
    """1..CONCERT_HOLD_SEATS_MAX distinct positive seat numbers, as a tuple."""
    if isinstance(value, (str, bytes)) or not _iterable(value):
        raise TypeError(f"seat_nos must be an iterable of ints, not {_type_name(value)}")
    seats = tuple(value)
    for n in seats:
        integer("seat number", n, 1, INT32_MAX)
    if not seats and not allow_empty:
        raise InvalidArgument("no seats given")
    if len(seats) > _capi.CONCERT_HOLD_SEATS_MAX:
        raise InvalidArgument(f"more than {_capi.CONCERT_HOLD_SEATS_MAX} seats")
    if len(set(seats)) != len(seats):
        raise InvalidArgument("a seat number is given twice")
    return seats


def _iterable(value):
    try:
        iter(value)
    except TypeError:
        return False
    return True

"""Result types: small immutable objects with attributes, and the state enums.

Times are ints, milliseconds since the UNIX epoch (UTC), read from the
engine's clock; money is an int in the smallest unit (points, won). Use
:func:`concert.to_datetime` to turn a time into a ``datetime``.

The field order of each dataclass is the order of the tuple the C wrapper
(concert.i, ``pyc_*``) builds: change both together.
"""

import dataclasses
import enum
import sys
from typing import Optional, Tuple

from . import capi as _capi

__all__ = [
    "SeatState", "QueueState", "TokenKind", "HoldState", "TxKind", "ReservationState",
    "SeatSpec", "Concert", "Schedule", "Seat", "QueueStatus", "TokenClaims", "Hold",
    "WalletTx", "HistoryPage", "Payment", "Cancellation", "Reservation", "Audit",
]

if sys.version_info >= (3, 10):
    _frozen = dataclasses.dataclass(frozen=True, slots=True)
else:  # pragma: no cover - Debian 12 has 3.11
    _frozen = dataclasses.dataclass(frozen=True)


class _StateEnum(str, enum.Enum):
    """A state by its stable upper-case name; compares equal to that string."""

    def __str__(self):
        return self.value

    @classmethod
    def _table(cls, pairs):
        return {code: cls(name) for code, name in pairs}


class SeatState(_StateEnum):
    """State of a seat. A seat whose hold expired reads AVAILABLE."""
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"
    RESERVED = "RESERVED"


class QueueState(_StateEnum):
    """State of a queue token: WAITING for admission, ACTIVE, EXPIRED, or DONE (paid)."""
    WAITING = "WAITING"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    DONE = "DONE"


class TokenKind(_StateEnum):
    """What a signed token says about itself: WAITING or ACTIVE (admitted)."""
    WAITING = "WAITING"
    ACTIVE = "ACTIVE"


class HoldState(_StateEnum):
    """State of a hold, with expiry applied at the read."""
    HELD = "HELD"
    RELEASED = "RELEASED"
    PAID = "PAID"
    EXPIRED = "EXPIRED"


class TxKind(_StateEnum):
    """Kind of a wallet transaction."""
    CHARGE = "CHARGE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


class ReservationState(_StateEnum):
    """State of a reservation."""
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


_SEAT_STATES = SeatState._table([
    (_capi.CONCERT_SEAT_AVAILABLE, "AVAILABLE"), (_capi.CONCERT_SEAT_HELD, "HELD"),
    (_capi.CONCERT_SEAT_RESERVED, "RESERVED")])
_QUEUE_STATES = QueueState._table([
    (_capi.CONCERT_QUEUE_WAITING, "WAITING"), (_capi.CONCERT_QUEUE_ACTIVE, "ACTIVE"),
    (_capi.CONCERT_QUEUE_EXPIRED, "EXPIRED"), (_capi.CONCERT_QUEUE_DONE, "DONE")])
_TOKEN_KINDS = TokenKind._table([
    (_capi.CONCERT_TOKEN_WAITING, "WAITING"), (_capi.CONCERT_TOKEN_ACTIVE, "ACTIVE")])
_HOLD_STATES = HoldState._table([
    (_capi.CONCERT_HOLD_HELD, "HELD"), (_capi.CONCERT_HOLD_RELEASED, "RELEASED"),
    (_capi.CONCERT_HOLD_PAID, "PAID"), (_capi.CONCERT_HOLD_EXPIRED, "EXPIRED")])
_TX_KINDS = TxKind._table([
    (_capi.CONCERT_TX_CHARGE, "CHARGE"), (_capi.CONCERT_TX_PAYMENT, "PAYMENT"),
    (_capi.CONCERT_TX_REFUND, "REFUND")])
_RESERVATION_STATES = ReservationState._table([
    (_capi.CONCERT_RESERVATION_CONFIRMED, "CONFIRMED"),
    (_capi.CONCERT_RESERVATION_CANCELLED, "CANCELLED")])


def _state(table, code):
    # A state added by a newer library stays visible as its int.
    return table.get(code, code)


@_frozen
class SeatSpec:
    """A seat to create with :meth:`Engine.add_seats`.

    ``seat_no`` > 0 and unique in the schedule; ``price`` > 0 in the smallest
    currency unit; ``grade`` 1..15 bytes ("VIP", "R", ...).
    """
    seat_no: int
    price: int
    grade: str


@_frozen
class Concert:
    """A concert; holds and payments are allowed in [opens_at, closes_at)."""
    id: int
    title: str
    opens_at: int
    closes_at: int


@_frozen
class Schedule:
    """One performance of a concert, with seat counts (expired holds count as available)."""
    id: int
    concert_id: int
    starts_at: int
    venue: str
    total_seats: int
    available_seats: int
    held_seats: int
    reserved_seats: int


@_frozen
class Seat:
    """One seat of a schedule's seat map. ``version`` bumps on every change."""
    seat_no: int
    grade: str
    price: int
    state: SeatState
    version: int

    @classmethod
    def _from(cls, t):
        return cls(t[0], t[1], t[2], _state(_SEAT_STATES, t[3]), t[4])


@_frozen
class QueueStatus:
    """A queue token and where it stands.

    ``token`` is the string to present (re-signed ACTIVE once admitted);
    ``created`` is True when enter_queue() issued a new token and False when
    it returned the user's live one. ``position`` (1-based) and
    ``estimated_wait_seconds`` are 0 unless WAITING; ``expires_at`` is the
    idle deadline while WAITING and the end of the active period once ACTIVE.
    """
    token_id: int
    concert_id: int
    user_id: str
    state: QueueState
    created: bool
    position: int
    estimated_wait_seconds: int
    issued_at: int
    expires_at: int
    token: str

    @classmethod
    def _from(cls, t):
        return cls(t[0], t[1], t[2], _state(_QUEUE_STATES, t[3]), bool(t[4]), t[5], t[6],
                   t[7], t[8], t[9])

    @property
    def active(self):
        """True once admitted (state ACTIVE)."""
        return self.state == QueueState.ACTIVE


@_frozen
class TokenClaims:
    """What a genuine token says: its id, user, concert, kind and times (active_until 0 if WAITING)."""
    token_id: int
    concert_id: int
    user_id: str
    kind: TokenKind
    issued_at: int
    active_until: int

    @classmethod
    def _from(cls, t):
        return cls(t[0], t[1], t[2], _state(_TOKEN_KINDS, t[3]), t[4], t[5])


@_frozen
class Hold:
    """A temporary all-or-nothing hold on seats; ``amount`` is the sum of their prices."""
    id: int
    schedule_id: int
    concert_id: int
    user_id: str
    seat_nos: Tuple[int, ...]
    amount: int
    state: HoldState
    created_at: int
    expires_at: int
    extensions: int

    @classmethod
    def _from(cls, t):
        return cls(t[0], t[1], t[2], t[3], t[4], t[5], _state(_HOLD_STATES, t[6]), t[7], t[8], t[9])


@_frozen
class WalletTx:
    """A wallet transaction. ``amount`` is signed (negative for a PAYMENT);
    ``ref_id`` is the reservation for PAYMENT/REFUND, else 0."""
    id: int
    kind: TxKind
    amount: int
    balance_after: int
    ref_id: int
    created_at: int

    @classmethod
    def _from(cls, t):
        return cls(t[0], _state(_TX_KINDS, t[1]), t[2], t[3], t[4], t[5])


@_frozen
class HistoryPage:
    """One page of wallet history, newest first. Pass ``next_cursor`` to
    :meth:`Engine.history` for the next page; it is None on the last page."""
    transactions: Tuple[WalletTx, ...]
    next_cursor: Optional[int]

    def __iter__(self):
        return iter(self.transactions)

    def __len__(self):
        return len(self.transactions)


@_frozen
class Payment:
    """A successful payment: the reservation it created and the balance left."""
    payment_id: int
    reservation_id: int
    hold_id: int
    schedule_id: int
    user_id: str
    seat_nos: Tuple[int, ...]
    amount: int
    balance: int
    created_at: int


@_frozen
class Cancellation:
    """Result of cancelling a reservation: the amount refunded and the balance after."""
    refunded: int
    balance: int


@_frozen
class Reservation:
    """A reservation (CONFIRMED or CANCELLED) with its seats and payment."""
    id: int
    schedule_id: int
    payment_id: int
    user_id: str
    seat_nos: Tuple[int, ...]
    amount: int
    state: ReservationState
    created_at: int

    @classmethod
    def _from(cls, t):
        return cls(t[0], t[1], t[2], t[3], t[4], t[5], _state(_RESERVATION_STATES, t[6]), t[7])


@_frozen
class Audit:
    """Money and seat totals recomputed from the store (DESIGN.md §2).

    The invariants hold when :attr:`ok` is True: no mismatches and
    total_balance + total_payments - total_refunds == total_charges.
    """
    total_balance: int
    total_charges: int
    total_payments: int
    total_refunds: int
    wallets: int
    wallet_mismatches: int
    reserved_seats: int
    seat_mismatches: int
    reservations: int
    payment_mismatches: int

    @property
    def ok(self):
        """True when every invariant holds."""
        return (self.wallet_mismatches == 0 and self.seat_mismatches == 0
                and self.payment_mismatches == 0
                and self.total_balance + self.total_payments - self.total_refunds
                == self.total_charges)

"""The Engine: a Pythonic handle over one libconcert engine."""

import collections.abc
import datetime
import time

from . import _args
from . import capi as _capi
from ._errors import InvalidArgument
from ._types import (
    Audit, Cancellation, Concert, HistoryPage, Hold, Payment, QueueStatus, Reservation,
    Schedule, Seat, SeatSpec, TokenClaims, WalletTx,
)

__all__ = ["Engine", "ManualClock", "verify_token", "to_datetime", "now_ms"]

# The raw wrappers, without the shadow module's extra Python frame per call.
_c = _capi._capi

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def now_ms():
    """The real time now, in ms since the epoch (what an engine without a clock uses)."""
    return time.time_ns() // 1_000_000


def to_datetime(ms):
    """Turns a libconcert time (int ms since the epoch) into an aware UTC datetime."""
    return _EPOCH + datetime.timedelta(milliseconds=_args.integer("ms", ms))


class ManualClock:
    """A clock that only moves when you move it: pass it as ``Engine(clock=...)``.

    Tests use it to expire holds and tokens without sleeping::

        clock = concert.ManualClock()
        with concert.Engine(clock=clock) as engine:
            ...
            clock.advance(datetime.timedelta(minutes=6))   # the hold has expired

    The time is an atomic 64-bit integer inside the binding's C code: the
    engine reads it from any thread, with its own locks held, without the
    GIL. (A Python callable as clock would need the GIL inside the engine,
    which is slow and invites deadlocks.) One clock may drive several engines.
    """

    def __init__(self, start=None):
        """Starts at ``start``: int ms since the epoch or an aware datetime; default now."""
        start = now_ms() if start is None else _args.time_ms("start", start)
        self._clock = _capi.pyconcert_clock_new(start)

    def now(self):
        """The clock's time, int ms since the epoch."""
        return _c.pyconcert_clock_get(self._clock)

    def set(self, when):
        """Sets the time: int ms since the epoch or an aware datetime."""
        _c.pyconcert_clock_set(self._clock, _args.time_ms("when", when))

    def advance(self, delta):
        """Moves the time by ``delta`` (int ms or timedelta; may be negative); returns the new time."""
        if isinstance(delta, datetime.timedelta):
            delta = delta // datetime.timedelta(milliseconds=1)
        return _c.pyconcert_clock_advance(self._clock, _args.integer("delta", delta))

    def _reads_holding_gil(self):
        # How often an engine read this clock from a thread holding the GIL:
        # tests use it to check that engine calls release the GIL.
        return _c.pyconcert_clock_gil_reads(self._clock)

    def __repr__(self):
        return f"<concert.ManualClock {to_datetime(self.now()).isoformat()}>"


def _secret_bytes(secret):
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, (bytes, bytearray, memoryview)):
        raise TypeError(f"secret must be bytes or str, not {type(secret).__name__}")
    secret = bytes(secret)
    if not secret:
        raise InvalidArgument("secret is empty")
    return secret


def verify_token(token, secret, concert_id=0, now=None):
    """Checks a queue token with only the secret and the time, as an edge would.

    No engine and no storage: a genuine ACTIVE token for ``concert_id`` (0:
    any concert) whose active period has not ended returns its
    :class:`TokenClaims`. Raises :class:`TokenNotActive` for a genuine WAITING
    token, :class:`Expired` for an ACTIVE token past its end, and
    :class:`InvalidToken` for anything forged, malformed, truncated or for
    another concert. Revocation (a token that left or paid) needs the
    backend: see :meth:`Engine.validate`. ``now`` defaults to the real time.
    """
    _args.token(token)
    secret = _secret_bytes(secret)
    if secret is None:
        raise TypeError("secret must be bytes or str, not NoneType")
    concert_id = _args.integer("concert_id", concert_id, 0)
    now = now_ms() if now is None else _args.time_ms("now", now)
    return TokenClaims._from(_c.concert_token_verify(token, secret, concert_id, now))


def _seat_spec(item):
    if isinstance(item, SeatSpec):
        seat_no, price, grade = item.seat_no, item.price, item.grade
    elif isinstance(item, collections.abc.Mapping):
        try:
            seat_no, price, grade = item["seat_no"], item["price"], item["grade"]
        except KeyError as e:
            raise InvalidArgument(f"a seat mapping lacks {e.args[0]!r}") from None
    elif isinstance(item, (tuple, list)) and len(item) == 3:
        seat_no, price, grade = item
    else:
        raise TypeError("each seat must be a SeatSpec, a (seat_no, price, grade) tuple "
                        f"or a mapping, not {type(item).__name__}")
    return (_args.integer("seat_no", seat_no, 1, _args.INT32_MAX),
            _args.amount("price", price),
            _args.text("grade", grade, _capi.CONCERT_GRADE_MAX))


class Engine:
    """One libconcert engine: the waiting queue, catalog, holds, wallets and payments.

    Open one per process and share it between threads: it is thread-safe,
    and every call that can wait on a backend releases the GIL. Use it as a
    context manager, or call :meth:`close`::

        import concert

        with concert.Engine("memory:", secret=b"shared-with-the-edge") as engine:
            concert_id = engine.add_concert("Spring Tour", opens_at, closes_at)
            schedule_id = engine.add_schedule(concert_id, starts_at, "Olympic Hall")
            engine.add_seats(schedule_id, [(1, 150000, "VIP"), (2, 99000, "R")])

            ticket = engine.enter_queue("user-42", concert_id)
            status = engine.queue_status(ticket.token)   # ACTIVE once admitted
            hold = engine.hold_seats(status.token, schedule_id, [1, 2])
            engine.charge("user-42", 300000, idempotency_key="charge-7f3a")
            payment = engine.pay(status.token, hold.id, idempotency_key="pay-7f3a")
            engine.cancel("user-42", payment.reservation_id)

    Conventions: ids, money (smallest unit) and times (ms since the epoch,
    UTC) are ints; times given *to* the engine may also be aware
    ``datetime`` objects and durations ``timedelta`` objects. Results are
    frozen dataclasses (:class:`Hold`, :class:`Payment`, ...) or ints.
    Failures raise a subclass of :class:`concert.Error` named after the
    library's error code (:class:`SeatUnavailable` with ``.conflicts``,
    :class:`InsufficientFunds`, :class:`TokenNotActive`, ...); a wrong
    argument type raises TypeError and a wrong value :class:`InvalidArgument`
    (a ValueError) before the library is called, so it changes nothing.
    Calling a closed engine raises ValueError.

    Tokens: :meth:`enter_queue` returns a WAITING or ACTIVE
    :class:`QueueStatus`; its ``token`` string authorises holds and payment
    once ACTIVE. Poll :meth:`queue_status` (or :meth:`heartbeat`, which also
    keeps a WAITING token from idling out) and present the token it returns.
    """

    def __init__(self, store="memory:", queue=None, *, lock=None, secret=None,
                 max_active=None, admit_per_second=None, wait_idle_ttl=None, active_ttl=None,
                 hold_ttl=None, hold_max_lifetime=None, hold_max_extensions=None,
                 max_holds_per_user=None, max_seats_per_user=None, clock=None):
        """Opens the engine.

        Args:
            store: backend URI for catalog, holds, wallets and payments:
                ``"memory:"`` (in-process, ephemeral) or ``"memory:/dir"``
                (durable journal in dir; ``?fsync=always|batch|off``), or
                ``"postgresql://..."`` when the library was built with it.
            queue: backend URI of the waiting queue; None shares the store's.
            lock: optional hot-seat lock filter URI (``"redis://..."``); None for none.
            secret: HMAC key of queue tokens (bytes, or str as UTF-8). Give
                the same one to the edge that verifies tokens. None draws a
                random key for this engine only.
            max_active: ACTIVE tokens per concert at once (default 100).
            admit_per_second: admissions per concert per second (default unlimited).
            wait_idle_ttl: a WAITING token expires after this idle time (default 5 min).
            active_ttl: an ACTIVE token lives this long from admission (default 10 min).
            hold_ttl: hold lifetime and extension step (default 5 min).
            hold_max_lifetime: extensions never pass creation + this (default 15 min).
            hold_max_extensions: extensions per hold (default 2).
            max_holds_per_user: live holds per user (default 4).
            max_seats_per_user: seats in live holds per user (default 8).
            clock: a :class:`ManualClock` to drive time (tests); None for real time.

        Durations are int ms or ``timedelta``; None or 0 means the default.

        Raises:
            InvalidArgument: a bad URI or option. BackendUnavailable,
            Corrupt, StorageIOError: the store could not be opened.
        """
        def opt_uri(name, value):
            return _args.text(name, value, 4096, optional=True)

        def count(name, value):
            return 0 if value is None else _args.integer(name, value, 0, _args.UINT32_MAX)

        def duration(name, value):
            return 0 if value is None else _args.duration_ms(name, value)

        if clock is not None and not isinstance(clock, ManualClock):
            raise TypeError(f"clock must be a concert.ManualClock or None, not {type(clock).__name__}")
        store = _args.text("store", store, 4096)
        self._store = store
        self._closed = True
        self._handle = _capi.pyconcert_engine_open(
            store, opt_uri("queue", queue), opt_uri("lock", lock), _secret_bytes(secret),
            clock._clock if clock is not None else None,
            count("max_active", max_active), count("admit_per_second", admit_per_second),
            duration("wait_idle_ttl", wait_idle_ttl), duration("active_ttl", active_ttl),
            duration("hold_ttl", hold_ttl), duration("hold_max_lifetime", hold_max_lifetime),
            count("hold_max_extensions", hold_max_extensions),
            count("max_holds_per_user", max_holds_per_user),
            count("max_seats_per_user", max_seats_per_user))
        self._closed = False

    # ---- life cycle -------------------------------------------------------

    def close(self):
        """Closes the engine and its backends. Idempotent.

        Waits for calls other threads have in flight; calls made afterwards
        raise ValueError. The engine is also closed when garbage collected.
        """
        if not self._closed:
            self._closed = True
            _c.pyconcert_engine_close(self._handle)

    @property
    def closed(self):
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<concert.Engine store={self._store!r} {'closed' if self._closed else 'open'}>"

    def now(self):
        """The engine's current time (its clock), int ms since the epoch."""
        return _c.concert_engine_now(self._handle)

    # ---- catalog ----------------------------------------------------------

    def add_concert(self, title, opens_at, closes_at):
        """Creates a concert; returns its id.

        Holds and payments are allowed in [opens_at, closes_at) (int ms or
        aware datetimes). Raises InvalidArgument for an empty or too long
        (> 200 bytes) title or closes_at <= opens_at.
        """
        title = _args.text("title", title, _capi.CONCERT_TITLE_MAX)
        opens_at = _args.time_ms("opens_at", opens_at)
        closes_at = _args.time_ms("closes_at", closes_at)
        if closes_at <= opens_at:
            raise InvalidArgument("closes_at must be after opens_at")
        return _c.concert_concert_add(self._handle, title, opens_at, closes_at)

    def add_schedule(self, concert_id, starts_at, venue=""):
        """Adds a performance to a concert; returns the schedule id.

        Raises NotFound for an unknown concert, InvalidArgument for a venue
        over 120 bytes.
        """
        concert_id = _args.ident("concert_id", concert_id)
        starts_at = _args.time_ms("starts_at", starts_at)
        venue = _args.text("venue", venue, _capi.CONCERT_VENUE_MAX, empty=True)
        return _c.concert_schedule_add(self._handle, concert_id, starts_at, venue)

    def add_seats(self, schedule_id, seats):
        """Adds seats to a schedule, all or none.

        ``seats`` is an iterable of :class:`SeatSpec`, ``(seat_no, price,
        grade)`` tuples or mappings with those keys. Raises InvalidArgument
        (bad seat, a seat number twice), NotFound (schedule), AlreadyExists
        (a seat number already in the schedule).
        """
        schedule_id = _args.ident("schedule_id", schedule_id)
        if isinstance(seats, (str, bytes)) or not isinstance(seats, collections.abc.Iterable):
            raise TypeError(f"seats must be an iterable of seats, not {type(seats).__name__}")
        specs = [_seat_spec(item) for item in seats]
        if not specs:
            raise InvalidArgument("no seats given")
        if len({s[0] for s in specs}) != len(specs):
            raise InvalidArgument("a seat number is given twice")
        _c.concert_seats_add(self._handle, schedule_id, specs)

    def concerts(self):
        """All concerts by id, as a list of :class:`Concert`."""
        return [Concert(*t) for t in _c.concert_concerts_list(self._handle)]

    def concert(self, concert_id):
        """One :class:`Concert`. Raises NotFound."""
        return Concert(*_c.concert_concert_get(self._handle, _args.ident("concert_id", concert_id)))

    def schedules(self, concert_id):
        """A concert's schedules by start time, with seat counts. Raises NotFound."""
        concert_id = _args.ident("concert_id", concert_id)
        return [Schedule(*t) for t in _c.concert_schedules_list(self._handle, concert_id)]

    def schedule(self, schedule_id):
        """One :class:`Schedule` with seat counts. Raises NotFound."""
        schedule_id = _args.ident("schedule_id", schedule_id)
        return Schedule(*_c.concert_schedule_get(self._handle, schedule_id))

    def seats(self, schedule_id):
        """The seat map of a schedule by seat number, as a list of :class:`Seat`. Raises NotFound."""
        schedule_id = _args.ident("schedule_id", schedule_id)
        return [Seat._from(t) for t in _c.concert_seats_list(self._handle, schedule_id)]

    # ---- queue ------------------------------------------------------------

    def enter_queue(self, user_id, concert_id):
        """Enters a user into a concert's waiting queue; returns a :class:`QueueStatus`.

        Idempotent: a user with a live token gets it back (``created`` False).
        Raises NotFound for an unknown concert.
        """
        user_id = _args.user_id(user_id)
        concert_id = _args.ident("concert_id", concert_id)
        return QueueStatus._from(_c.concert_queue_enter(self._handle, user_id, concert_id))

    def queue_status(self, token):
        """Where a token stands (:class:`QueueStatus`); once ACTIVE, present the ``token`` it returns.

        Does not count as activity (see :meth:`heartbeat`). Raises
        InvalidToken or Expired.
        """
        return QueueStatus._from(_c.concert_queue_status_get(self._handle, _args.token(token)))

    def heartbeat(self, token):
        """Like :meth:`queue_status`, and restarts a WAITING token's idle timeout."""
        return QueueStatus._from(_c.concert_queue_heartbeat(self._handle, _args.token(token)))

    def leave_queue(self, token):
        """Leaves the queue: the token becomes EXPIRED. Raises InvalidToken or Expired."""
        _c.concert_queue_leave(self._handle, _args.token(token))

    def validate(self, token, concert_id=0):
        """Checks a token is genuine, for ``concert_id`` (0: any) and ACTIVE in the backend.

        Returns its :class:`TokenClaims`. Raises InvalidToken, TokenNotActive
        or Expired (also for a token that left the queue or paid).
        """
        token = _args.token(token)
        concert_id = _args.integer("concert_id", concert_id, 0)
        return TokenClaims._from(_c.concert_queue_validate(self._handle, token, concert_id))

    def admit(self, concert_id):
        """Expires stale tokens and admits waiting ones of a concert now; returns how many.

        Never needed (every queue call admits); lets a host drive admission.
        """
        return _c.concert_queue_admit(self._handle, _args.ident("concert_id", concert_id))

    # ---- holds ------------------------------------------------------------

    def hold_seats(self, token, schedule_id, seat_nos):
        """Holds 1..64 seats of a schedule for the token's user, all or none; returns a :class:`Hold`.

        Raises SeatUnavailable (``.conflicts`` lists the taken seats),
        TokenNotActive, InvalidToken, Expired (token), NotFound (schedule or
        seat), ReservationClosed, LimitExceeded (per-user holds or seats),
        InvalidArgument (no seats, too many, a seat twice).
        """
        token = _args.token(token)
        schedule_id = _args.ident("schedule_id", schedule_id)
        seats = _args.seat_nos(seat_nos)
        return Hold._from(_c.concert_hold_seats(self._handle, token, schedule_id, seats))

    def release(self, token, hold_id, seat_nos=None):
        """Gives back some seats of a hold, or all of them when ``seat_nos`` is None.

        The hold becomes RELEASED when no seat is left. Raises Forbidden (not
        the owner), InvalidState (paid or released), Expired, NotFound,
        InvalidArgument (a seat not in the hold).
        """
        token = _args.token(token)
        hold_id = _args.ident("hold_id", hold_id)
        seats = None if seat_nos is None else _args.seat_nos(seat_nos)
        _c.concert_hold_release(self._handle, token, hold_id, seats)

    def extend_hold(self, token, hold_id):
        """Extends a hold by hold_ttl from now within the policy; returns the :class:`Hold`.

        Raises LimitExceeded (extensions or lifetime used up), and as :meth:`release`.
        """
        token = _args.token(token)
        hold_id = _args.ident("hold_id", hold_id)
        return Hold._from(_c.concert_hold_extend(self._handle, token, hold_id))

    def hold(self, token, hold_id):
        """Reads a hold (state with expiry applied). Raises InvalidToken, NotFound, Forbidden."""
        token = _args.token(token)
        hold_id = _args.ident("hold_id", hold_id)
        return Hold._from(_c.concert_hold_get(self._handle, token, hold_id))

    # ---- wallet -----------------------------------------------------------

    def charge(self, user_id, amount, idempotency_key=None):
        """Adds ``amount`` (> 0) to a user's wallet; returns the balance after.

        With an ``idempotency_key`` a repeat has no second effect and returns
        the same balance; the same key with another amount raises
        IdempotencyConflict. Raises AmountOverflow past the int64 range.
        """
        user_id = _args.user_id(user_id)
        amount = _args.amount("amount", amount)
        key = _args.idem_key(idempotency_key)
        return _c.concert_wallet_charge(self._handle, user_id, amount, key)

    def balance(self, user_id):
        """A user's balance (0 if never charged)."""
        return _c.concert_wallet_balance(self._handle, _args.user_id(user_id))

    def history(self, user_id, cursor=None, limit=100):
        """One page of a user's wallet transactions, newest first: a :class:`HistoryPage`.

        ``limit`` is 1..1000; pass the page's ``next_cursor`` as ``cursor``
        for the next one (None: from the newest). See :meth:`iter_history`.
        """
        user_id = _args.user_id(user_id)
        cursor = 0 if cursor is None else _args.ident("cursor", cursor)
        limit = _args.integer("limit", limit, 1, 1000)
        items, next_cursor = _c.concert_wallet_history(self._handle, user_id, cursor, limit)
        return HistoryPage(tuple(WalletTx._from(t) for t in items), next_cursor or None)

    def iter_history(self, user_id, page_size=100):
        """Iterates over all of a user's wallet transactions, newest first, a page at a time."""
        cursor = None
        while True:
            page = self.history(user_id, cursor, page_size)
            yield from page.transactions
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # ---- payment ----------------------------------------------------------

    def pay(self, token, hold_id, idempotency_key=None):
        """Pays a live hold from the token's user's wallet; returns a :class:`Payment`.

        All or nothing: debit, seats RESERVED, reservation and payment
        recorded, hold consumed, then the token is DONE. With an
        ``idempotency_key`` a repeat returns the original payment. Raises
        InsufficientFunds, Expired (hold), InvalidState (paid or released),
        Forbidden, NotFound, TokenNotActive, InvalidToken, ReservationClosed,
        IdempotencyConflict.
        """
        token = _args.token(token)
        hold_id = _args.ident("hold_id", hold_id)
        key = _args.idem_key(idempotency_key)
        return Payment(*_c.concert_pay(self._handle, token, hold_id, key))

    def cancel(self, user_id, reservation_id):
        """Cancels a user's confirmed reservation: refund to the wallet, seats AVAILABLE again.

        Returns a :class:`Cancellation` (refunded, balance). Raises NotFound,
        Forbidden (another user's), InvalidState (already cancelled).
        """
        user_id = _args.user_id(user_id)
        reservation_id = _args.ident("reservation_id", reservation_id)
        refunded, balance = _c.concert_reservation_cancel(self._handle, user_id, reservation_id)
        return Cancellation(refunded, balance)

    def reservation(self, reservation_id):
        """Reads a :class:`Reservation`. Raises NotFound."""
        reservation_id = _args.ident("reservation_id", reservation_id)
        return Reservation._from(_c.concert_reservation_get(self._handle, reservation_id))

    # ---- operating --------------------------------------------------------

    def audit(self):
        """Money and seat invariants recomputed from the store (slow): an :class:`Audit`."""
        return Audit(*_c.concert_engine_audit(self._handle))

    def stats(self):
        """Calls per operation and outcome since the engine opened.

        A dict ``{op: {outcome: count}}`` with every op (``"hold"``,
        ``"pay"``, ...) and its non-zero outcomes (``"ok"`` or an error name
        such as ``"seat_unavailable"``).
        """
        result = {_capi.concert_op_name(op): {} for op in range(_capi.CONCERT_OP_COUNT)}
        for op, outcome, count in _c.pyconcert_stats(self._handle):
            result[op][outcome] = count
        return result

    def health(self):
        """Checks every backend answers; returns True or raises BackendUnavailable (naming the slot)."""
        _c.concert_engine_health(self._handle)
        return True

    def sweep(self):
        """Frees expired holds and tokens now; returns how many holds were released.

        Never needed for correctness: expiry is enforced at every read and write.
        """
        return _c.concert_engine_sweep(self._handle)

    def compact(self):
        """Snapshots a durable memory store and starts a new journal (a no-op elsewhere)."""
        _c.concert_engine_compact(self._handle)

/*
 * SWIG interface of the Python binding: the low-level module concert.capi.
 *
 * Users import the package `concert` (concert/__init__.py), never this
 * module: it mirrors the C API one function for one function and the
 * Pythonic layer adds argument checks, dataclasses and docs on top.
 *
 * How the boundary works:
 * - Every `int`-returning function is a libconcert call returning 0 or a
 *   negative code. The `out` typemap copies concert_error_last() into C
 *   locals first thing after the call (same OS thread: releasing and taking
 *   back the GIL never moves a thread, and no Python code runs in between)
 *   and raises the exception the package's error factory builds.
 * - Results that the library allocates (`concert_hold **out`, lists, ...)
 *   never reach Python as C memory: the `argout` typemap turns them into
 *   tuples of plain values and the `freearg` typemap, which SWIG runs on
 *   success and on every failure path, concert_free()s them. The only C
 *   objects Python owns are the engine and clock handles, returned through
 *   %newobject functions and freed by their destructors.
 * - SWIG runs with -threads: the GIL is released around every call, so one
 *   engine serves many Python threads at once. Calls that never block and
 *   the ones that build Python objects are marked %nothread.
 * - An engine handle counts the calls in flight; close waits for them, so a
 *   thread closing the engine never frees it under another thread's call.
 */
%module(package="concert", docstring="Low-level SWIG wrapper of libconcert; import the package `concert` instead.") capi

%{
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concert.h"

/* ---- the manual clock ------------------------------------------------ */

/*
 * A clock the host sets by hand, so tests drive time. Reads are one atomic
 * load: the engine may call it from any thread while holding its own locks,
 * which is why it is not a Python callable (that would need the GIL inside
 * the engine). Reference counted between the Python object and the engines
 * using it, so it outlives both whatever order they are collected in.
 */
typedef struct pyconcert_clock {
	_Atomic int64_t now;
	atomic_long refs;
	atomic_long gil_reads;  /* reads by a thread holding the GIL: tests check the release */
} pyconcert_clock;

static concert_time pyconcert_clock_read(void *ctx)
{
	pyconcert_clock *c = ctx;
	if (PyGILState_Check())
		atomic_fetch_add_explicit(&c->gil_reads, 1, memory_order_relaxed);
	return atomic_load_explicit(&c->now, memory_order_acquire);
}

static pyconcert_clock *pyconcert_clock_new(int64_t now)
{
	pyconcert_clock *c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	atomic_init(&c->now, now);
	atomic_init(&c->refs, 1);
	atomic_init(&c->gil_reads, 0);
	return c;
}

static void pyconcert_clock_unref(pyconcert_clock *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		free(c);
}

static int64_t pyconcert_clock_get(pyconcert_clock *c)
{
	return atomic_load_explicit(&c->now, memory_order_acquire);
}

static void pyconcert_clock_set(pyconcert_clock *c, int64_t now)
{
	atomic_store_explicit(&c->now, now, memory_order_release);
}

static int64_t pyconcert_clock_advance(pyconcert_clock *c, int64_t delta)
{
	return atomic_fetch_add_explicit(&c->now, delta, memory_order_acq_rel) + delta;
}

static long pyconcert_clock_gil_reads(pyconcert_clock *c)
{
	return atomic_load_explicit(&c->gil_reads, memory_order_relaxed);
}

/* ---- the engine handle ----------------------------------------------- */

typedef struct pyconcert_engine {
	concert_engine *engine;
	pyconcert_clock *clock;
	atomic_long users;   /* calls in flight */
	atomic_int closed;
} pyconcert_engine;

/*
 * Each call announces itself before it reads `closed`, and close sets
 * `closed` before it reads `users` (both sequentially consistent), so either
 * the call sees the engine closed or close waits for the call.
 */
static int pyconcert_enter(pyconcert_engine *h)
{
	atomic_fetch_add(&h->users, 1);
	if (!atomic_load(&h->closed))
		return 1;
	atomic_fetch_sub(&h->users, 1);
	return 0;
}

static void pyconcert_leave(pyconcert_engine *h)
{
	atomic_fetch_sub(&h->users, 1);
}

static pyconcert_engine *pyconcert_engine_open(const char *store, const char *queue,
	const char *lock, const unsigned char *secret, size_t secret_len,
	pyconcert_clock *clock, uint32_t max_active, uint32_t admit_per_second,
	int64_t wait_idle_ttl, int64_t active_ttl, int64_t hold_ttl, int64_t hold_max_lifetime,
	uint32_t hold_max_extensions, uint32_t max_holds_per_user, uint32_t max_seats_per_user)
{
	concert_options opts = CONCERT_OPTIONS_INIT;
	pyconcert_engine *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	atomic_init(&h->users, 0);
	atomic_init(&h->closed, 0);
	opts.store = store;
	opts.queue = queue;
	opts.lock = lock;
	opts.secret = secret;
	opts.secret_len = secret_len;
	if (clock) {
		opts.clock = pyconcert_clock_read;
		opts.clock_ctx = clock;
	}
	opts.max_active = max_active;
	opts.admit_per_second = admit_per_second;
	opts.wait_idle_ttl = wait_idle_ttl;
	opts.active_ttl = active_ttl;
	opts.hold_ttl = hold_ttl;
	opts.hold_max_lifetime = hold_max_lifetime;
	opts.hold_max_extensions = hold_max_extensions;
	opts.max_holds_per_user = max_holds_per_user;
	opts.max_seats_per_user = max_seats_per_user;
	if (concert_engine_open(&h->engine, &opts) != 0) {
		free(h);
		return NULL;
	}
	if (clock) {
		atomic_fetch_add(&clock->refs, 1);
		h->clock = clock;
	}
	return h;
}

static int pyconcert_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
	return Py_IsFinalizing();
#else
	return _Py_IsFinalizing();
#endif
}

/* Waits for the calls in flight (the GIL is released meanwhile), then closes. */
static void pyconcert_engine_close(pyconcert_engine *h)
{
	if (atomic_exchange(&h->closed, 1))
		return;
	while (atomic_load(&h->users) > 0) {
		/*
		 * At interpreter exit, a daemon thread that was inside a call is
		 * stopped when it asks for the GIL back and never leaves: leave
		 * the engine open rather than wait forever (the process ends, and
		 * what was acknowledged is already durable).
		 */
		if (pyconcert_finalizing())
			return;
		struct timespec pause = { 0, 200 * 1000 };
		nanosleep(&pause, NULL);
	}
	concert_engine_close(h->engine);
	h->engine = NULL;
	pyconcert_clock_unref(h->clock);
	h->clock = NULL;
}

/* ---- errors ------------------------------------------------------------ */

/* Built by concert/_errors.py: (code, message, conflicts) -> exception. */
static PyObject *pyconcert_error_factory;

static PyObject *pyconcert_set_error_factory(PyObject *factory)
{
	if (!PyCallable_Check(factory)) {
		PyErr_SetString(PyExc_TypeError, "the error factory must be callable");
		return NULL;
	}
	Py_INCREF(factory);
	Py_XSETREF(pyconcert_error_factory, factory);
	Py_RETURN_NONE;
}

/* The last error, copied out of the library's thread-local storage. */
typedef struct pyconcert_error {
	int code;
	size_t conflict_count;
	int32_t conflicts[CONCERT_HOLD_SEATS_MAX];
	char message[256];
} pyconcert_error;

/*
 * Must run right after the failed call, before any Python code can run on
 * this thread (a finalizer could call libconcert and overwrite the error).
 */
static void pyconcert_error_capture(pyconcert_error *e, int rc)
{
	const concert_error *last = concert_error_last();
	const char *message = concert_strerror(rc);
	e->code = rc;
	e->conflict_count = 0;
	if (last->code == rc) {
		if (last->message && *last->message)
			message = last->message;
		if (rc == CONCERT_ESEAT_UNAVAILABLE && last->conflicts) {
			e->conflict_count = last->conflict_count < CONCERT_HOLD_SEATS_MAX
				? last->conflict_count : CONCERT_HOLD_SEATS_MAX;
			memcpy(e->conflicts, last->conflicts, e->conflict_count * sizeof(int32_t));
		}
	}
	snprintf(e->message, sizeof(e->message), "%s", message);
}

static void pyconcert_error_raise(const pyconcert_error *e)
{
	/* "replace": a message cut at 255 bytes may end inside a UTF-8 sequence. */
	PyObject *message = PyUnicode_DecodeUTF8(e->message, (Py_ssize_t)strlen(e->message), "replace");
	PyObject *conflicts = PyTuple_New((Py_ssize_t)e->conflict_count);
	PyObject *exc = NULL;
	if (message && conflicts) {
		for (size_t i = 0; i < e->conflict_count; i++)
			PyTuple_SET_ITEM(conflicts, (Py_ssize_t)i, PyLong_FromLong(e->conflicts[i]));
		if (pyconcert_error_factory)
			exc = PyObject_CallFunction(pyconcert_error_factory, "iOO", e->code, message, conflicts);
		else
			PyErr_Format(PyExc_RuntimeError, "libconcert error %d: %U", e->code, message);
	}
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	Py_XDECREF(message);
	Py_XDECREF(conflicts);
}

static void pyconcert_raise(int rc)
{
	pyconcert_error e;
	pyconcert_error_capture(&e, rc);
	pyconcert_error_raise(&e);
}

/* ---- results: C structs -> tuples ------------------------------------ */
/*
 * Each tuple's field order is the field order of the matching dataclass in
 * concert/_types.py, which builds the public objects from them.
 */

static PyObject *pyc_str(const char *s)
{
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *pyc_seat_nos(const int32_t *seat_nos, size_t count)
{
	PyObject *t = PyTuple_New((Py_ssize_t)count);
	for (size_t i = 0; t && i < count; i++) {
		PyObject *n = PyLong_FromLong(seat_nos[i]);
		if (!n) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, (Py_ssize_t)i, n);
	}
	return t;
}

typedef PyObject *(*pyc_item_fn)(const void *item);

static PyObject *pyc_list(const void *items, size_t count, size_t size, pyc_item_fn fn)
{
	PyObject *list = PyList_New((Py_ssize_t)count);
	for (size_t i = 0; list && i < count; i++) {
		PyObject *item = fn((const char *)items + i * size);
		if (!item) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
	return list;
}

static PyObject *pyc_concert(const void *p)
{
	const concert_concert *c = p;
	return Py_BuildValue("(LNLL)", (long long)c->id, pyc_str(c->title),
		(long long)c->opens_at, (long long)c->closes_at);
}

static PyObject *pyc_schedule(const void *p)
{
	const concert_schedule *s = p;
	return Py_BuildValue("(LLLNLLLL)", (long long)s->id, (long long)s->concert_id,
		(long long)s->starts_at, pyc_str(s->venue), (long long)s->total_seats,
		(long long)s->available_seats, (long long)s->held_seats, (long long)s->reserved_seats);
}

static PyObject *pyc_seat(const void *p)
{
	const concert_seat *s = p;
	return Py_BuildValue("(iNLiL)", (int)s->seat_no, pyc_str(s->grade), (long long)s->price,
		(int)s->state, (long long)s->version);
}

static PyObject *pyc_queue_status(const concert_queue_status *q)
{
	return Py_BuildValue("(LLNiiLLLLN)", (long long)q->token_id, (long long)q->concert_id,
		pyc_str(q->user_id), (int)q->state, (int)q->created, (long long)q->position,
		(long long)q->estimated_wait_seconds, (long long)q->issued_at,
		(long long)q->expires_at, pyc_str(q->token));
}

static PyObject *pyc_claims(const concert_token_claims *c)
{
	return Py_BuildValue("(LLNiLL)", (long long)c->token_id, (long long)c->concert_id,
		pyc_str(c->user_id), (int)c->kind, (long long)c->issued_at, (long long)c->active_until);
}

static PyObject *pyc_hold(const concert_hold *h)
{
	return Py_BuildValue("(LLLNNLiLLI)", (long long)h->id, (long long)h->schedule_id,
		(long long)h->concert_id, pyc_str(h->user_id), pyc_seat_nos(h->seat_nos, h->seat_count),
		(long long)h->amount, (int)h->state, (long long)h->created_at,
		(long long)h->expires_at, (unsigned int)h->extensions);
}

static PyObject *pyc_wallet_tx(const void *p)
{
	const concert_wallet_tx *t = p;
	return Py_BuildValue("(LiLLLL)", (long long)t->id, (int)t->kind, (long long)t->amount,
		(long long)t->balance_after, (long long)t->ref_id, (long long)t->created_at);
}

static PyObject *pyc_payment(const concert_payment *p)
{
	return Py_BuildValue("(LLLLNNLLL)", (long long)p->payment_id, (long long)p->reservation_id,
		(long long)p->hold_id, (long long)p->schedule_id, pyc_str(p->user_id),
		pyc_seat_nos(p->seat_nos, p->seat_count), (long long)p->amount,
		(long long)p->balance, (long long)p->created_at);
}

static PyObject *pyc_reservation(const concert_reservation *r)
{
	return Py_BuildValue("(LLLNNLiL)", (long long)r->id, (long long)r->schedule_id,
		(long long)r->payment_id, pyc_str(r->user_id), pyc_seat_nos(r->seat_nos, r->seat_count),
		(long long)r->amount, (int)r->state, (long long)r->created_at);
}

static PyObject *pyc_audit(const concert_audit *a)
{
	return Py_BuildValue("(LLLLLLLLLL)", (long long)a->total_balance,
		(long long)a->total_charges, (long long)a->total_payments, (long long)a->total_refunds,
		(long long)a->wallets, (long long)a->wallet_mismatches, (long long)a->reserved_seats,
		(long long)a->seat_mismatches, (long long)a->reservations,
		(long long)a->payment_mismatches);
}

/* Adds one output to a wrapper's result: the first replaces None, the
 * second makes a tuple (only concert_reservation_cancel has two). */
static PyObject *pyc_append(PyObject *result, PyObject *obj)
{
	if (!obj) {
		Py_XDECREF(result);
		return NULL;
	}
	if (!result || result == Py_None) {
		Py_XDECREF(result);
		return obj;
	}
	PyObject *pair = PyTuple_Pack(2, result, obj);
	Py_DECREF(result);
	Py_DECREF(obj);
	return pair;
}

/* ---- statistics --------------------------------------------------------- */

/* [(op name, outcome name, count)] for every non-zero counter. */
static PyObject *pyconcert_stats(concert_engine *engine)
{
	PyObject *list = PyList_New(0);
	for (int op = 0; list && op < CONCERT_OP_COUNT; op++) {
		for (int i = 0; i < CONCERT_ERROR_COUNT; i++) {
			uint64_t n = concert_engine_stat(engine, op, -i);
			if (!n)
				continue;
			PyObject *row = Py_BuildValue("(ssK)", concert_op_name(op), concert_error_name(-i),
				(unsigned long long)n);
			if (!row || PyList_Append(list, row) < 0) {
				Py_XDECREF(row);
				Py_CLEAR(list);
				break;
			}
			Py_DECREF(row);
		}
	}
	return list;
}
%}

%include <stdint.i>

/* ---- typemaps ------------------------------------------------------------ */

/* Every int-returning function is a libconcert call: raise on a negative code. */
%typemap(out) int {
	if ($1 < 0) {
		pyconcert_raise($1);
		SWIG_fail;
	}
	$result = SWIG_Py_Void();
}

/* The engine: a handle from pyconcert_engine_open, guarded against close. */
%typemap(in) concert_engine *engine (pyconcert_engine *guarded = NULL) {
	if (!SWIG_IsOK(SWIG_ConvertPtr($input, (void **)&guarded, $descriptor(pyconcert_engine *), 0)) || !guarded) {
		guarded = NULL;
		PyErr_SetString(PyExc_TypeError, "expected a pyconcert_engine");
		SWIG_fail;
	}
	if (!pyconcert_enter(guarded)) {
		guarded = NULL;
		PyErr_SetString(PyExc_ValueError, "the engine is closed");
		SWIG_fail;
	}
	$1 = guarded->engine;
}
%typemap(freearg) concert_engine *engine {
	if (guarded$argnum)
		pyconcert_leave(guarded$argnum);
}

/*
 * Strings: str only (None passes NULL, which the library rejects or takes as
 * "none"). The UTF-8 buffer belongs to the str object, which the argument
 * tuple keeps alive while the GIL is released: no copy.
 */
%typemap(in) const char * {
	if ($input == Py_None) {
		$1 = NULL;
	} else {
		Py_ssize_t len;
		if (!PyUnicode_Check($input)) {
			PyErr_Format(PyExc_TypeError, "$1_name must be str, not %s", Py_TYPE($input)->tp_name);
			SWIG_fail;
		}
		$1 = ($1_ltype)PyUnicode_AsUTF8AndSize($input, &len);
		if (!$1)
			SWIG_fail;
		if (strlen($1) != (size_t)len) {
			PyErr_SetString(PyExc_ValueError, "$1_name contains a NUL character");
			SWIG_fail;
		}
	}
}
%typemap(freearg) const char * ""

/* A token with its length (concert_token_verify). */
%typemap(in) (const char *token, size_t token_len) {
	Py_ssize_t len;
	if (!PyUnicode_Check($input)) {
		PyErr_Format(PyExc_TypeError, "token must be str, not %s", Py_TYPE($input)->tp_name);
		SWIG_fail;
	}
	$1 = ($1_ltype)PyUnicode_AsUTF8AndSize($input, &len);
	if (!$1)
		SWIG_fail;
	$2 = (size_t)len;
}

/* Secrets are bytes; None means "no secret" (the engine draws a random one). */
%typemap(in) (const unsigned char *secret, size_t secret_len) {
	if ($input == Py_None) {
		$1 = NULL;
		$2 = 0;
	} else {
		char *bytes;
		Py_ssize_t len;
		if (!PyBytes_Check($input)) {
			PyErr_Format(PyExc_TypeError, "secret must be bytes, not %s", Py_TYPE($input)->tp_name);
			SWIG_fail;
		}
		if (PyBytes_AsStringAndSize($input, &bytes, &len) < 0)
			SWIG_fail;
		$1 = ($1_ltype)bytes;
		$2 = (size_t)len;
	}
}

/* Seat numbers in: a sequence of ints, or None for "no seats" (release all). */
%typemap(in) (const int32_t *seat_nos, size_t count) (int32_t *seats = NULL) {
	if ($input == Py_None) {
		$1 = NULL;
		$2 = 0;
	} else {
		PyObject *seq = PySequence_Fast($input, "seat numbers must be a sequence of ints");
		if (!seq)
			SWIG_fail;
		Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
		seats = malloc(sizeof(*seats) * (size_t)(n ? n : 1));
		if (!seats) {
			Py_DECREF(seq);
			PyErr_NoMemory();
			SWIG_fail;
		}
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
			long v;
			if (!PyLong_Check(item) || PyBool_Check(item)) {
				PyErr_Format(PyExc_TypeError, "seat numbers must be int, not %s", Py_TYPE(item)->tp_name);
				Py_DECREF(seq);
				SWIG_fail;
			}
			v = PyLong_AsLong(item);
			if ((v == -1 && PyErr_Occurred()) || v < INT32_MIN || v > INT32_MAX) {
				PyErr_Clear();
				PyErr_SetString(PyExc_OverflowError, "seat number out of the int32 range");
				Py_DECREF(seq);
				SWIG_fail;
			}
			seats[i] = (int32_t)v;
		}
		Py_DECREF(seq);
		$1 = seats;
		$2 = (size_t)n;
	}
}
%typemap(freearg) (const int32_t *seat_nos, size_t count) {
	free(seats$argnum);
}

/*
 * Seat specs in: a list of (seat_no, price, grade) tuples. The grade strings
 * stay owned by the tuples, which `seq` keeps alive until freearg.
 */
%typemap(in) (const concert_seat_spec *specs, size_t count)
		(concert_seat_spec *specs = NULL, PyObject *seq = NULL) {
	seq = PySequence_Fast($input, "seats must be a sequence of (seat_no, price, grade)");
	if (!seq)
		SWIG_fail;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	specs = calloc((size_t)(n ? n : 1), sizeof(*specs));
	if (!specs) {
		PyErr_NoMemory();
		SWIG_fail;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
		long long seat_no, price;
		if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 ||
		    !PyLong_Check(PyTuple_GET_ITEM(item, 0)) || !PyLong_Check(PyTuple_GET_ITEM(item, 1)) ||
		    !PyUnicode_Check(PyTuple_GET_ITEM(item, 2))) {
			PyErr_SetString(PyExc_TypeError, "each seat must be a (seat_no: int, price: int, grade: str) tuple");
			SWIG_fail;
		}
		seat_no = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 0));
		price = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 1));
		if (PyErr_Occurred() || seat_no < INT32_MIN || seat_no > INT32_MAX) {
			PyErr_Clear();
			PyErr_SetString(PyExc_OverflowError, "seat number or price out of range");
			SWIG_fail;
		}
		specs[i].seat_no = (int32_t)seat_no;
		specs[i].price = (int64_t)price;
		specs[i].grade = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 2));
		if (!specs[i].grade)
			SWIG_fail;
	}
	$1 = specs;
	$2 = (size_t)n;
}
%typemap(freearg) (const concert_seat_spec *specs, size_t count) {
	free(specs$argnum);
	Py_XDECREF(seq$argnum);
}

/* Scalar results through out-parameters. */
%define PYCONCERT_OUT_SCALAR(TYPE, NAME, CONVERT)
%typemap(in, numinputs=0) TYPE *NAME (TYPE value = 0) {
	$1 = &value;
}
%typemap(argout) TYPE *NAME {
	$result = pyc_append($result, CONVERT(value$argnum));
	if (!$result)
		SWIG_fail;
}
%enddef
PYCONCERT_OUT_SCALAR(int64_t, out_id, PyLong_FromLongLong)
PYCONCERT_OUT_SCALAR(int64_t, out_balance, PyLong_FromLongLong)
PYCONCERT_OUT_SCALAR(int64_t, out_refunded, PyLong_FromLongLong)
PYCONCERT_OUT_SCALAR(uint64_t, out_swept, PyLong_FromUnsignedLongLong)
PYCONCERT_OUT_SCALAR(uint32_t, out_admitted, PyLong_FromUnsignedLong)

/* Library-allocated results: converted to Python, then concert_free()d. */
%define PYCONCERT_OUT_OWNED(TYPE, CONVERT)
%typemap(in, numinputs=0) TYPE **out (TYPE *object = NULL) {
	$1 = &object;
}
%typemap(argout) TYPE **out {
	$result = pyc_append($result, CONVERT);
	if (!$result)
		SWIG_fail;
}
%typemap(freearg) TYPE **out {
	concert_free(object$argnum);
}
%enddef
PYCONCERT_OUT_OWNED(concert_concert, pyc_concert(object$argnum))
PYCONCERT_OUT_OWNED(concert_concert_list,
	pyc_list(object$argnum->items, object$argnum->count, sizeof(concert_concert), pyc_concert))
PYCONCERT_OUT_OWNED(concert_schedule, pyc_schedule(object$argnum))
PYCONCERT_OUT_OWNED(concert_schedule_list,
	pyc_list(object$argnum->items, object$argnum->count, sizeof(concert_schedule), pyc_schedule))
PYCONCERT_OUT_OWNED(concert_seat_list,
	pyc_list(object$argnum->items, object$argnum->count, sizeof(concert_seat), pyc_seat))
PYCONCERT_OUT_OWNED(concert_queue_status, pyc_queue_status(object$argnum))
PYCONCERT_OUT_OWNED(concert_hold, pyc_hold(object$argnum))
PYCONCERT_OUT_OWNED(concert_wallet_tx_list,
	Py_BuildValue("(NL)", pyc_list(object$argnum->items, object$argnum->count,
		sizeof(concert_wallet_tx), pyc_wallet_tx), (long long)object$argnum->next_cursor))
PYCONCERT_OUT_OWNED(concert_payment, pyc_payment(object$argnum))
PYCONCERT_OUT_OWNED(concert_reservation, pyc_reservation(object$argnum))
PYCONCERT_OUT_OWNED(concert_audit, pyc_audit(object$argnum))

/* Token claims: caller-allocated, so they live on the wrapper's stack. */
%typemap(in, numinputs=0) concert_token_claims *out (concert_token_claims claims) {
	memset(&claims, 0, sizeof(claims));
	$1 = &claims;
}
%typemap(argout) concert_token_claims *out {
	$result = pyc_append($result, pyc_claims(&claims$argnum));
	if (!$result)
		SWIG_fail;
}

/* ---- what is wrapped ------------------------------------------------------- */

/* Replaced by the handle functions below, or internal to the binding. */
%ignore concert_options_init;
%ignore concert_engine_open;
%ignore concert_engine_close;
%ignore concert_free;
%ignore concert_error_last;
%ignore concert_token_sign;

/* Structs never cross the boundary (see the typemaps above). */
%ignore concert_error;
%ignore concert_options;
%ignore concert_audit;
%ignore concert_concert;
%ignore concert_concert_list;
%ignore concert_schedule;
%ignore concert_schedule_list;
%ignore concert_seat_spec;
%ignore concert_seat;
%ignore concert_seat_list;
%ignore concert_queue_status;
%ignore concert_token_claims;
%ignore concert_hold;
%ignore concert_wallet_tx;
%ignore concert_wallet_tx_list;
%ignore concert_payment;
%ignore concert_reservation;

/* Never block, or build Python objects: keep the GIL. */
%nothread concert_version;
%nothread concert_strerror;
%nothread concert_error_name;
%nothread concert_seat_state_name;
%nothread concert_queue_state_name;
%nothread concert_hold_state_name;
%nothread concert_tx_kind_name;
%nothread concert_reservation_state_name;
%nothread concert_op_name;
%nothread concert_engine_stat;
%nothread concert_engine_now;
%nothread pyconcert_set_error_factory;
%nothread pyconcert_stats;
%nothread pyconcert_clock_new;
%nothread pyconcert_clock_get;
%nothread pyconcert_clock_set;
%nothread pyconcert_clock_advance;
%nothread pyconcert_clock_gil_reads;

%include "concert/common.h"
%include "concert/errors.h"
%include "concert/engine.h"
%include "concert/catalog.h"
%include "concert/token.h"
%include "concert/queue.h"
%include "concert/hold.h"
%include "concert/wallet.h"
%include "concert/payment.h"

/* ---- the binding's own handles ----------------------------------------- */

typedef struct pyconcert_clock {} pyconcert_clock;
typedef struct pyconcert_engine {} pyconcert_engine;

%extend pyconcert_clock {
	~pyconcert_clock() {
		pyconcert_clock_unref($self);
	}
}
%extend pyconcert_engine {
	~pyconcert_engine() {
		pyconcert_engine_close($self);
		if (!$self->engine)   /* still open only when close gave up at exit */
			free($self);
	}
}

%exception pyconcert_clock_new {
	$action
	if (!result) {
		PyErr_NoMemory();
		SWIG_fail;
	}
}
%newobject pyconcert_clock_new;
pyconcert_clock *pyconcert_clock_new(int64_t now);
int64_t pyconcert_clock_get(pyconcert_clock *clock);
void pyconcert_clock_set(pyconcert_clock *clock, int64_t now);
int64_t pyconcert_clock_advance(pyconcert_clock *clock, int64_t delta);
long pyconcert_clock_gil_reads(pyconcert_clock *clock);

/* NULL means failure; concert_error_last() says why (no code: the calloc failed). */
%exception pyconcert_engine_open {
	$action
	if (!result) {
		int rc = concert_error_last()->code;
		if (rc < 0)
			pyconcert_raise(rc);
		else
			PyErr_NoMemory();
		SWIG_fail;
	}
}
%newobject pyconcert_engine_open;
pyconcert_engine *pyconcert_engine_open(const char *store, const char *queue,
	const char *lock, const unsigned char *secret, size_t secret_len,
	pyconcert_clock *clock, uint32_t max_active, uint32_t admit_per_second,
	int64_t wait_idle_ttl, int64_t active_ttl, int64_t hold_ttl, int64_t hold_max_lifetime,
	uint32_t hold_max_extensions, uint32_t max_holds_per_user, uint32_t max_seats_per_user);
void pyconcert_engine_close(pyconcert_engine *handle);

PyObject *pyconcert_set_error_factory(PyObject *factory);
PyObject *pyconcert_stats(concert_engine *engine);

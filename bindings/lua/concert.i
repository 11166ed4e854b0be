/*
 * SWIG interface of the Lua binding: the low-level module concert_core.
 *
 * Users require "concert" (concert.lua), never this module: it mirrors the
 * C API one function for one function and concert.lua turns its results
 * into Lua-style ones (tables; nil, err on failure).
 *
 * How the boundary works:
 * - Every `int`-returning function is a libconcert call; its first result
 *   is the code (0 or a negative CONCERT_E*). On failure the `out` typemap
 *   copies concert_error_last() into a thread-local copy right after the
 *   call, before any other libconcert call (a __gc could run one), and
 *   concert.lua reads it with last_error().
 * - Results the library allocates never reach Lua as C memory: `argout`
 *   turns them into tables (nil when the call failed) and `freearg`, which
 *   SWIG runs on success and on failure, concert_free()s them. The only C
 *   object Lua owns is the engine handle, freed by its __gc (or close()).
 * - The same generated C builds against Lua 5.4 and LuaJIT (the 5.1 API):
 *   integers go through luaconcert_push_int, which keeps 5.3+ integers
 *   integers (ids print as 7, not 7.0).
 */
%module concert_core

%{
#include <stdlib.h>
#include <string.h>

#include "concert.h"

#if LUA_VERSION_NUM >= 502
#define luaconcert_len(L, i) lua_rawlen((L), (i))
#else
#define luaconcert_len(L, i) lua_objlen((L), (i))
#endif

#if LUA_VERSION_NUM >= 503
#define luaconcert_push_int(L, v) lua_pushinteger((L), (lua_Integer)(v))
#else
#define luaconcert_push_int(L, v) lua_pushnumber((L), (lua_Number)(v))
#endif

/* An integer argument: a number with no fractional part. */
static int luaconcert_check_int(lua_State *L, int idx, int64_t *out)
{
#if LUA_VERSION_NUM >= 503
	int isnum = 0;
	lua_Integer i = lua_tointegerx(L, idx, &isnum);
	if (isnum) {
		*out = (int64_t)i;
		return 1;
	}
	return 0;
#else
	lua_Number n;
	if (lua_type(L, idx) != LUA_TNUMBER)
		return 0;
	n = lua_tonumber(L, idx);
	if (n != n || n < -9223372036854775808.0 || n >= 9223372036854775808.0 || (lua_Number)(int64_t)n != n)
		return 0;
	*out = (int64_t)n;
	return 1;
#endif
}

/* ---- the engine handle ----------------------------------------------- */

typedef struct luaconcert_engine {
	concert_engine *engine;
} luaconcert_engine;

static luaconcert_engine *luaconcert_engine_open(const char *store, const char *queue,
	const char *lock, const unsigned char *secret, size_t secret_len,
	uint32_t max_active, uint32_t admit_per_second, int64_t wait_idle_ttl, int64_t active_ttl,
	int64_t hold_ttl, int64_t hold_max_lifetime, uint32_t hold_max_extensions,
	uint32_t max_holds_per_user, uint32_t max_seats_per_user)
{
	concert_options opts = CONCERT_OPTIONS_INIT;
	luaconcert_engine *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	opts.store = store;
	opts.queue = queue;
	opts.lock = lock;
	opts.secret = secret;
	opts.secret_len = secret_len;
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
	return h;
}

static void luaconcert_engine_close(luaconcert_engine *h)
{
	concert_engine_close(h->engine);
	h->engine = NULL;
}

static int luaconcert_engine_is_open(luaconcert_engine *h)
{
	return h->engine != NULL;
}

/* ---- errors ------------------------------------------------------------ */

typedef struct luaconcert_error {
	int code;
	size_t conflict_count;
	int32_t conflicts[CONCERT_HOLD_SEATS_MAX];
	char message[256];
} luaconcert_error;

static _Thread_local luaconcert_error luaconcert_last;

static void luaconcert_error_capture(int rc)
{
	const concert_error *last = concert_error_last();
	const char *message = concert_strerror(rc);
	luaconcert_last.code = rc;
	luaconcert_last.conflict_count = 0;
	if (last->code == rc) {
		if (last->message && *last->message)
			message = last->message;
		if (rc == CONCERT_ESEAT_UNAVAILABLE && last->conflicts) {
			luaconcert_last.conflict_count = last->conflict_count < CONCERT_HOLD_SEATS_MAX
				? last->conflict_count : CONCERT_HOLD_SEATS_MAX;
			memcpy(luaconcert_last.conflicts, last->conflicts,
				luaconcert_last.conflict_count * sizeof(int32_t));
		}
	}
	snprintf(luaconcert_last.message, sizeof(luaconcert_last.message), "%s", message);
}

/* ---- results: C structs -> tables ---------------------------------------- */

static void lc_int(lua_State *L, const char *name, int64_t v)
{
	luaconcert_push_int(L, v);
	lua_setfield(L, -2, name);
}

static void lc_str(lua_State *L, const char *name, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, name);
}

static void lc_seat_nos(lua_State *L, const char *name, const int32_t *seat_nos, size_t count)
{
	lua_createtable(L, (int)count, 0);
	for (size_t i = 0; i < count; i++) {
		luaconcert_push_int(L, seat_nos[i]);
		lua_rawseti(L, -2, (int)i + 1);
	}
	lua_setfield(L, -2, name);
}

typedef void (*lc_item_fn)(lua_State *L, const void *item);

static void lc_list(lua_State *L, const void *items, size_t count, size_t size, lc_item_fn fn)
{
	lua_createtable(L, (int)count, 0);
	for (size_t i = 0; i < count; i++) {
		fn(L, (const char *)items + i * size);
		lua_rawseti(L, -2, (int)i + 1);
	}
}

static void lc_concert(lua_State *L, const void *p)
{
	const concert_concert *c = p;
	lua_createtable(L, 0, 4);
	lc_int(L, "id", c->id);
	lc_str(L, "title", c->title);
	lc_int(L, "opens_at", c->opens_at);
	lc_int(L, "closes_at", c->closes_at);
}

static void lc_schedule(lua_State *L, const void *p)
{
	const concert_schedule *s = p;
	lua_createtable(L, 0, 8);
	lc_int(L, "id", s->id);
	lc_int(L, "concert_id", s->concert_id);
	lc_int(L, "starts_at", s->starts_at);
	lc_str(L, "venue", s->venue);
	lc_int(L, "total_seats", s->total_seats);
	lc_int(L, "available_seats", s->available_seats);
	lc_int(L, "held_seats", s->held_seats);
	lc_int(L, "reserved_seats", s->reserved_seats);
}

static void lc_seat(lua_State *L, const void *p)
{
	const concert_seat *s = p;
	lua_createtable(L, 0, 5);
	lc_int(L, "seat_no", s->seat_no);
	lc_str(L, "grade", s->grade);
	lc_int(L, "price", s->price);
	lc_str(L, "state", concert_seat_state_name(s->state));
	lc_int(L, "version", s->version);
}

static void lc_queue_status(lua_State *L, const concert_queue_status *q)
{
	lua_createtable(L, 0, 10);
	lc_int(L, "token_id", q->token_id);
	lc_int(L, "concert_id", q->concert_id);
	lc_str(L, "user_id", q->user_id);
	lc_str(L, "state", concert_queue_state_name(q->state));
	lua_pushboolean(L, q->created);
	lua_setfield(L, -2, "created");
	lc_int(L, "position", q->position);
	lc_int(L, "estimated_wait_seconds", q->estimated_wait_seconds);
	lc_int(L, "issued_at", q->issued_at);
	lc_int(L, "expires_at", q->expires_at);
	lc_str(L, "token", q->token);
}

static void lc_claims(lua_State *L, const concert_token_claims *c)
{
	lua_createtable(L, 0, 6);
	lc_int(L, "token_id", c->token_id);
	lc_int(L, "concert_id", c->concert_id);
	lc_str(L, "user_id", c->user_id);
	lc_str(L, "kind", c->kind == CONCERT_TOKEN_ACTIVE ? "ACTIVE" : "WAITING");
	lc_int(L, "issued_at", c->issued_at);
	lc_int(L, "active_until", c->active_until);
}

static void lc_hold(lua_State *L, const concert_hold *h)
{
	lua_createtable(L, 0, 10);
	lc_int(L, "id", h->id);
	lc_int(L, "schedule_id", h->schedule_id);
	lc_int(L, "concert_id", h->concert_id);
	lc_str(L, "user_id", h->user_id);
	lc_seat_nos(L, "seat_nos", h->seat_nos, h->seat_count);
	lc_int(L, "amount", h->amount);
	lc_str(L, "state", concert_hold_state_name(h->state));
	lc_int(L, "created_at", h->created_at);
	lc_int(L, "expires_at", h->expires_at);
	lc_int(L, "extensions", h->extensions);
}

static void lc_wallet_tx(lua_State *L, const void *p)
{
	const concert_wallet_tx *t = p;
	lua_createtable(L, 0, 6);
	lc_int(L, "id", t->id);
	lc_str(L, "kind", concert_tx_kind_name(t->kind));
	lc_int(L, "amount", t->amount);
	lc_int(L, "balance_after", t->balance_after);
	lc_int(L, "ref_id", t->ref_id);
	lc_int(L, "created_at", t->created_at);
}

static void lc_wallet_tx_list(lua_State *L, const concert_wallet_tx_list *l)
{
	lua_createtable(L, 0, 2);
	lc_list(L, l->items, l->count, sizeof(concert_wallet_tx), lc_wallet_tx);
	lua_setfield(L, -2, "items");
	lc_int(L, "next_cursor", l->next_cursor);
}

static void lc_payment(lua_State *L, const concert_payment *p)
{
	lua_createtable(L, 0, 9);
	lc_int(L, "payment_id", p->payment_id);
	lc_int(L, "reservation_id", p->reservation_id);
	lc_int(L, "hold_id", p->hold_id);
	lc_int(L, "schedule_id", p->schedule_id);
	lc_str(L, "user_id", p->user_id);
	lc_seat_nos(L, "seat_nos", p->seat_nos, p->seat_count);
	lc_int(L, "amount", p->amount);
	lc_int(L, "balance", p->balance);
	lc_int(L, "created_at", p->created_at);
}

static void lc_reservation(lua_State *L, const concert_reservation *r)
{
	lua_createtable(L, 0, 8);
	lc_int(L, "id", r->id);
	lc_int(L, "schedule_id", r->schedule_id);
	lc_int(L, "payment_id", r->payment_id);
	lc_str(L, "user_id", r->user_id);
	lc_seat_nos(L, "seat_nos", r->seat_nos, r->seat_count);
	lc_int(L, "amount", r->amount);
	lc_str(L, "state", concert_reservation_state_name(r->state));
	lc_int(L, "created_at", r->created_at);
}

static void lc_audit(lua_State *L, const concert_audit *a)
{
	lua_createtable(L, 0, 10);
	lc_int(L, "total_balance", a->total_balance);
	lc_int(L, "total_charges", a->total_charges);
	lc_int(L, "total_payments", a->total_payments);
	lc_int(L, "total_refunds", a->total_refunds);
	lc_int(L, "wallets", a->wallets);
	lc_int(L, "wallet_mismatches", a->wallet_mismatches);
	lc_int(L, "reserved_seats", a->reserved_seats);
	lc_int(L, "seat_mismatches", a->seat_mismatches);
	lc_int(L, "reservations", a->reservations);
	lc_int(L, "payment_mismatches", a->payment_mismatches);
}

/* ---- functions of the binding itself ------------------------------------ */

/* code, name, message, {conflicts} of the last failure on this thread. */
static int luaconcert_last_error(lua_State *L)
{
	luaconcert_push_int(L, luaconcert_last.code);
	lua_pushstring(L, concert_error_name(luaconcert_last.code));
	lua_pushstring(L, luaconcert_last.message);
	lua_createtable(L, (int)luaconcert_last.conflict_count, 0);
	for (size_t i = 0; i < luaconcert_last.conflict_count; i++) {
		luaconcert_push_int(L, luaconcert_last.conflicts[i]);
		lua_rawseti(L, -2, (int)i + 1);
	}
	return 4;
}

/* [{op=, outcome=, count=}] for every non-zero counter. */
static void luaconcert_push_stats(lua_State *L, concert_engine *engine)
{
	int n = 0;
	lua_newtable(L);
	for (int op = 0; op < CONCERT_OP_COUNT; op++) {
		for (int i = 0; i < CONCERT_ERROR_COUNT; i++) {
			uint64_t count = concert_engine_stat(engine, op, -i);
			if (!count)
				continue;
			lua_createtable(L, 0, 3);
			lc_str(L, "op", concert_op_name(op));
			lc_str(L, "outcome", concert_error_name(-i));
			lc_int(L, "count", count);
			lua_rawseti(L, -2, ++n);
		}
	}
}

/*
 * Signs a token from claims given one by one: for tools and tests that
 * need tokens an engine would not issue (expired, foreign). Returns the
 * code, and the token on success.
 */
static int luaconcert_token_sign(lua_State *L)
{
	concert_token_claims claims;
	char token[CONCERT_TOKEN_MAX + 1];
	size_t secret_len = 0, user_len = 0;
	const char *secret = luaL_checklstring(L, 1, &secret_len);
	const char *user;
	int64_t v[5];
	int rc;
	luaL_checktype(L, 2, LUA_TTABLE);
	static const char *const fields[] = { "token_id", "concert_id", "issued_at", "active_until", "kind" };
	for (int i = 0; i < 5; i++) {
		lua_getfield(L, 2, fields[i]);
		if (lua_isnil(L, -1))
			v[i] = 0;
		else if (!luaconcert_check_int(L, -1, &v[i]))
			return luaL_error(L, "claims.%s must be an integer", fields[i]);
		lua_pop(L, 1);
	}
	lua_getfield(L, 2, "user_id");
	user = lua_tolstring(L, -1, &user_len);
	if (!user || user_len > CONCERT_USER_ID_MAX)
		return luaL_error(L, "claims.user_id must be a string of at most %d bytes", CONCERT_USER_ID_MAX);
	memset(&claims, 0, sizeof(claims));
	claims.token_id = v[0];
	claims.concert_id = v[1];
	claims.issued_at = v[2];
	claims.active_until = v[3];
	claims.kind = (int32_t)v[4];
	memcpy(claims.user_id, user, user_len);
	lua_pop(L, 1);
	rc = concert_token_sign(token, sizeof(token), NULL, &claims,
		(const unsigned char *)secret, secret_len);
	luaconcert_push_int(L, rc);
	if (rc < 0) {
		luaconcert_error_capture(rc);
		return 1;
	}
	lua_pushstring(L, token);
	return 2;
}
%}

%include <stdint.i>

/* ---- typemaps ------------------------------------------------------------ */

/* Every int-returning function is a libconcert call: its code comes first. */
%typemap(out) int {
	if ($1 < 0)
		luaconcert_error_capture($1);
	luaconcert_push_int(L, $1);
	SWIG_arg++;
}

/* Integers in and out: exact, not through double on Lua 5.3+. */
%define LUACONCERT_INT(TYPE, LO, HI)
%typemap(in, checkfn="lua_isnumber") TYPE (int64_t v) {
	if (!luaconcert_check_int(L, $input, &v) || v < (int64_t)(LO) || (HI != 0 && v > (int64_t)(HI)))
		SWIG_fail_arg("$symname", $argnum, "integer in range");
	$1 = (TYPE)v;
}
%typemap(out) TYPE {
	luaconcert_push_int(L, $1);
	SWIG_arg++;
}
%enddef
LUACONCERT_INT(int64_t, INT64_MIN, 0)
LUACONCERT_INT(int32_t, INT32_MIN, INT32_MAX)
LUACONCERT_INT(uint32_t, 0, UINT32_MAX)
LUACONCERT_INT(size_t, 0, 0)
LUACONCERT_INT(uint64_t, 0, 0)
LUACONCERT_INT(concert_time, INT64_MIN, 0)

/* The engine: a handle from luaconcert_engine_open, refused once closed. */
%typemap(in, checkfn="lua_isuserdata") concert_engine *engine (luaconcert_engine *h = NULL) {
	if (!SWIG_IsOK(SWIG_ConvertPtr(L, $input, (void **)&h, $descriptor(luaconcert_engine *), 0)) || !h)
		SWIG_fail_ptr("$symname", $argnum, $descriptor(luaconcert_engine *));
	if (!h->engine) {
		lua_pushstring(L, "the engine is closed");
		SWIG_fail;
	}
	$1 = h->engine;
}

/* A token with its length (concert_token_verify). */
%typemap(in, checkfn="lua_isstring") (const char *token, size_t token_len) {
	size_t len = 0;
	$1 = ($1_ltype)lua_tolstring(L, $input, &len);
	$2 = len;
}

/* Secrets: any Lua string (binary is fine); nil for "a random one". */
%typemap(in) (const unsigned char *secret, size_t secret_len) {
	size_t len = 0;
	if (lua_isnil(L, $input)) {
		$1 = NULL;
	} else if (lua_type(L, $input) == LUA_TSTRING) {
		$1 = ($1_ltype)lua_tolstring(L, $input, &len);
	} else {
		SWIG_fail_arg("$symname", $argnum, "string or nil");
	}
	$2 = len;
}

/* Seat numbers in: an array of integers, or nil for "no seats" (release all). */
%typemap(in) (const int32_t *seat_nos, size_t count) (int32_t *seats = NULL) {
	if (lua_isnil(L, $input)) {
		$1 = NULL;
		$2 = 0;
	} else {
		size_t n;
		if (!lua_istable(L, $input))
			SWIG_fail_arg("$symname", $argnum, "array of seat numbers or nil");
		n = luaconcert_len(L, $input);
		seats = malloc(sizeof(*seats) * (n ? n : 1));
		if (!seats) {
			lua_pushstring(L, "out of memory");
			SWIG_fail;
		}
		for (size_t i = 0; i < n; i++) {
			int64_t v;
			lua_rawgeti(L, $input, (int)i + 1);
			if (!luaconcert_check_int(L, -1, &v) || v < INT32_MIN || v > INT32_MAX) {
				lua_pop(L, 1);
				SWIG_fail_arg("$symname", $argnum, "array of int32 seat numbers");
			}
			lua_pop(L, 1);
			seats[i] = (int32_t)v;
		}
		$1 = seats;
		$2 = n;
	}
}
%typemap(freearg) (const int32_t *seat_nos, size_t count) {
	free(seats$argnum);
}

/*
 * Seat specs in: an array of {seat_no=, price=, grade=} tables. The grade
 * strings belong to those tables, which stay on the stack during the call.
 */
%typemap(in) (const concert_seat_spec *specs, size_t count) (concert_seat_spec *specs = NULL) {
	size_t n;
	if (!lua_istable(L, $input))
		SWIG_fail_arg("$symname", $argnum, "array of {seat_no, price, grade}");
	n = luaconcert_len(L, $input);
	specs = calloc(n ? n : 1, sizeof(*specs));
	if (!specs) {
		lua_pushstring(L, "out of memory");
		SWIG_fail;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t seat_no, price;
		int ok;
		lua_rawgeti(L, $input, (int)i + 1);
		ok = lua_istable(L, -1);
		if (ok) {
			lua_getfield(L, -1, "seat_no");
			lua_getfield(L, -2, "price");
			lua_getfield(L, -3, "grade");
			ok = luaconcert_check_int(L, -3, &seat_no) && luaconcert_check_int(L, -2, &price) &&
				lua_type(L, -1) == LUA_TSTRING && seat_no >= INT32_MIN && seat_no <= INT32_MAX;
			if (ok) {
				specs[i].seat_no = (int32_t)seat_no;
				specs[i].price = price;
				specs[i].grade = lua_tostring(L, -1);
			}
			lua_pop(L, 3);
		}
		lua_pop(L, 1);
		if (!ok)
			SWIG_fail_arg("$symname", $argnum, "array of {seat_no=int, price=int, grade=string}");
	}
	$1 = specs;
	$2 = n;
}
%typemap(freearg) (const concert_seat_spec *specs, size_t count) {
	free(specs$argnum);
}

/* Scalar results through out-parameters. */
%define LUACONCERT_OUT_SCALAR(TYPE, NAME)
%typemap(in, numinputs=0) TYPE *NAME (TYPE value = 0) {
	$1 = &value;
}
%typemap(argout) TYPE *NAME {
	luaconcert_push_int(L, value$argnum);
	SWIG_arg++;
}
%enddef
LUACONCERT_OUT_SCALAR(int64_t, out_id)
LUACONCERT_OUT_SCALAR(int64_t, out_balance)
LUACONCERT_OUT_SCALAR(int64_t, out_refunded)
LUACONCERT_OUT_SCALAR(uint64_t, out_swept)
LUACONCERT_OUT_SCALAR(uint32_t, out_admitted)
LUACONCERT_OUT_SCALAR(uint64_t, out_waiting)
LUACONCERT_OUT_SCALAR(uint64_t, out_active)

/* Library-allocated results: a table (nil after a failure), then concert_free()d. */
%define LUACONCERT_OUT_OWNED(TYPE, PUSH)
%typemap(in, numinputs=0) TYPE **out (TYPE *object = NULL) {
	$1 = &object;
}
%typemap(argout) TYPE **out {
	if (object$argnum)
		PUSH;
	else
		lua_pushnil(L);
	SWIG_arg++;
}
%typemap(freearg) TYPE **out {
	concert_free(object$argnum);
}
%enddef
LUACONCERT_OUT_OWNED(concert_concert, lc_concert(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_concert_list,
	lc_list(L, object$argnum->items, object$argnum->count, sizeof(concert_concert), lc_concert))
LUACONCERT_OUT_OWNED(concert_schedule, lc_schedule(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_schedule_list,
	lc_list(L, object$argnum->items, object$argnum->count, sizeof(concert_schedule), lc_schedule))
LUACONCERT_OUT_OWNED(concert_seat_list,
	lc_list(L, object$argnum->items, object$argnum->count, sizeof(concert_seat), lc_seat))
LUACONCERT_OUT_OWNED(concert_queue_status, lc_queue_status(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_hold, lc_hold(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_wallet_tx_list, lc_wallet_tx_list(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_payment, lc_payment(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_reservation, lc_reservation(L, object$argnum))
LUACONCERT_OUT_OWNED(concert_audit, lc_audit(L, object$argnum))

/* Token claims: caller-allocated on the wrapper's stack; a table when signed. */
%typemap(in, numinputs=0) concert_token_claims *out (concert_token_claims claims) {
	memset(&claims, 0, sizeof(claims));
	$1 = &claims;
}
%typemap(argout) concert_token_claims *out {
	if (claims$argnum.kind)
		lc_claims(L, &claims$argnum);
	else
		lua_pushnil(L);
	SWIG_arg++;
}

/* ---- what is wrapped ------------------------------------------------------- */

%ignore concert_options_init;
%ignore concert_engine_open;
%ignore concert_engine_close;
%ignore concert_engine_stat;
%ignore concert_free;
%ignore concert_error_last;
%ignore concert_token_sign;

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

%include "concert/common.h"
%include "concert/errors.h"
%include "concert/engine.h"
%include "concert/catalog.h"
%include "concert/token.h"
%include "concert/queue.h"
%include "concert/hold.h"
%include "concert/wallet.h"
%include "concert/payment.h"

/* ---- the binding's own handle and helpers ------------------------------ */

typedef struct luaconcert_engine {} luaconcert_engine;

%extend luaconcert_engine {
	~luaconcert_engine() {
		luaconcert_engine_close($self);
		free($self);
	}
}

/* NULL means failure: the code and detail go to last_error(). */
%exception luaconcert_engine_open {
	$action
	if (!result) {
		int rc = concert_error_last()->code;
		luaconcert_error_capture(rc < 0 ? rc : CONCERT_ENOMEM);
	}
}
%newobject luaconcert_engine_open;
luaconcert_engine *luaconcert_engine_open(const char *store, const char *queue,
	const char *lock, const unsigned char *secret, size_t secret_len,
	uint32_t max_active, uint32_t admit_per_second, int64_t wait_idle_ttl, int64_t active_ttl,
	int64_t hold_ttl, int64_t hold_max_lifetime, uint32_t hold_max_extensions,
	uint32_t max_holds_per_user, uint32_t max_seats_per_user);
void luaconcert_engine_close(luaconcert_engine *handle);
int luaconcert_engine_is_open(luaconcert_engine *handle);

%typemap(in, numinputs=0) lua_State *L "$1 = L;"
%typemap(argout) lua_State *L "SWIG_arg++;"
void luaconcert_push_stats(lua_State *L, concert_engine *engine);

%native(last_error) int luaconcert_last_error(lua_State *L);
%native(token_sign) int luaconcert_token_sign(lua_State *L);

/*
 * The memory store backend through its vtable: each method's success and
 * error paths, lazy expiry, the journal records' codec, a durable reopen
 * (with and without a snapshot) and a small threaded smoke for TSan.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/journal.h"
#include "codec/store_records.h"
#include "core/internal.h"
#include "storage/memory/store.h"
#include "tmpdir.h"

#define T0 1700000000000LL
#define HOUR (3600 * 1000LL)
#define TTL (5 * 60 * 1000LL)

static const concert_store_backend *const B = &concert_memory_store_backend;

typedef struct fixture {
	concert_backend_env env;
	concert_time now;
	void *store;
	char dir[64];
	int64_t concert_id;
	int64_t schedule_id;   /* seats 1..10, price 1000 * seat_no */
	int64_t sparse_id;     /* seats 2, 4, 8, 100 */
	int64_t ids[64];       /* every hold and reservation id made, for describe() */
	size_t id_count;
} fixture;

static concert_time fixture_clock(void *ctx)
{
	return ((fixture *)ctx)->now;
}

static void quiet_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static void build_catalog(fixture *f)
{
	void *s = f->store;
	assert_int_equal(B->concert_add(s, &f->concert_id, "Test", T0 - HOUR, T0 + 24 * HOUR), 0);
	assert_int_equal(B->schedule_add(s, &f->schedule_id, f->concert_id, T0 + 48 * HOUR, "Hall"), 0);
	concert_seat_spec seats[10];
	for (int i = 0; i < 10; i++)
		seats[i] = (concert_seat_spec){ 10 - i, 1000 * (10 - i), i < 2 ? "VIP" : "R" };
	assert_int_equal(B->seats_add(s, f->schedule_id, seats, 10), 0);
	assert_int_equal(B->schedule_add(s, &f->sparse_id, f->concert_id, T0 + 24 * HOUR, "Annex"), 0);
	concert_seat_spec sparse[] = { { 100, 7, "S" }, { 2, 1, "S" }, { 8, 5, "S" }, { 4, 3, "S" } };
	assert_int_equal(B->seats_add(s, f->sparse_id, sparse, 4), 0);
}

static int open_store(fixture *f, const char *uri)
{
	return B->open(&f->store, uri, &f->env);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->now = T0;
	f->env = (concert_backend_env){ CONCERT_BACKEND_ENV_VERSION, fixture_clock, f, quiet_log, NULL, 0 };
	assert_int_equal(open_store(f, "memory:"), 0);
	build_catalog(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	B->close(f->store);
	if (f->dir[0])
		assert_int_equal(tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static concert_hold_request hold_req(fixture *f, const char *user, const int32_t *seats, size_t n)
{
	return (concert_hold_request){ user, f->concert_id, f->schedule_id, seats, n, f->now,
		f->now + TTL, 4, 8 };
}

static int64_t hold(fixture *f, const char *user, const int32_t *seats, size_t n)
{
	concert_hold *h;
	concert_hold_request req = hold_req(f, user, seats, n);
	assert_int_equal(B->hold_seats(f->store, &h, &req), 0);
	int64_t id = h->id;
	concert_free(h);
	if (f->id_count < sizeof(f->ids) / sizeof(f->ids[0]))
		f->ids[f->id_count++] = id;
	return id;
}

static concert_hold_change change(fixture *f, const char *user, int64_t hold_id,
				  const int32_t *seats, size_t n)
{
	return (concert_hold_change){ user, hold_id, seats, n, f->now, TTL, 3 * TTL, 2 };
}

static int release(fixture *f, const char *user, int64_t hold_id, const int32_t *seats, size_t n)
{
	concert_hold_change req = change(f, user, hold_id, seats, n);
	return B->hold_release(f->store, &req);
}

static int pay(fixture *f, concert_payment **out, const char *user, int64_t hold_id, const char *key)
{
	concert_pay_request req = { user, f->concert_id, hold_id, key, f->now };
	concert_payment *p = NULL;
	int rc = B->pay(f->store, &p, &req);
	if (rc == 0 && f->id_count < sizeof(f->ids) / sizeof(f->ids[0]))
		f->ids[f->id_count++] = p->reservation_id;
	if (out)
		*out = p;
	else
		concert_free(p);
	return rc;
}

static int64_t balance(fixture *f, const char *user)
{
	int64_t b = -1;
	assert_int_equal(B->balance(f->store, &b, user), 0);
	return b;
}

static concert_seat seat(fixture *f, int64_t schedule_id, int32_t seat_no)
{
	concert_seat_list *list;
	concert_seat found = { 0 };
	assert_int_equal(B->seats_list(f->store, &list, schedule_id, f->now), 0);
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].seat_no == seat_no)
			found = list->items[i];
	concert_free(list);
	assert_int_equal(found.seat_no, seat_no);
	return found;
}

static int32_t hold_state(fixture *f, int64_t hold_id)
{
	concert_hold *h;
	assert_int_equal(B->hold_get(f->store, &h, hold_id, f->now), 0);
	int32_t state = h->state;
	concert_free(h);
	return state;
}

static void assert_audit_clean(fixture *f)
{
	concert_audit *a;
	assert_int_equal(B->audit(f->store, &a), 0);
	assert_int_equal(a->wallet_mismatches, 0);
	assert_int_equal(a->seat_mismatches, 0);
	assert_int_equal(a->payment_mismatches, 0);
	assert_int_equal(a->total_balance + a->total_payments - a->total_refunds, a->total_charges);
	concert_free(a);
}

static void assert_error(int rc, int code, const char *text)
{
	assert_int_equal(rc, code);
	assert_int_equal(concert_error_last()->code, code);
	if (text)
		assert_non_null(strstr(concert_error_last()->message, text));
}

/* ---- catalog ------------------------------------------------------------ */

static void test_catalog(void **state)
{
	fixture *f = *state;
	void *s = f->store;
	int64_t id;
	assert_int_equal(f->concert_id, 1);
	assert_int_equal(f->schedule_id, 1);
	assert_int_equal(f->sparse_id, 2);
	assert_int_equal(B->health(s), 0);

	assert_error(B->schedule_add(s, &id, 99, T0, "x"), CONCERT_ENOTFOUND, "99");
	concert_seat_spec clash[] = { { 11, 1, "R" }, { 3, 1, "R" } };
	assert_error(B->seats_add(s, f->schedule_id, clash, 2), CONCERT_EEXISTS, "seat 3");
	assert_error(B->seats_add(s, 77, clash, 1), CONCERT_ENOTFOUND, NULL);

	concert_seat_list *seats;
	assert_int_equal(B->seats_list(s, &seats, f->schedule_id, f->now), 0);
	assert_int_equal(seats->count, 10); /* seat 11 was not added: all or none */
	assert_int_equal(seats->schedule_id, f->schedule_id);
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(seats->items[i].seat_no, (int)i + 1);
		assert_int_equal(seats->items[i].price, 1000 * ((int)i + 1));
		assert_int_equal(seats->items[i].state, CONCERT_SEAT_AVAILABLE);
	}
	assert_string_equal(seats->items[9].grade, "VIP");
	concert_free(seats);
	assert_error(B->seats_list(s, &seats, 42, f->now), CONCERT_ENOTFOUND, NULL);
	assert_null(seats);

	concert_concert *c;
	assert_int_equal(B->concert_get(s, &c, f->concert_id), 0);
	assert_string_equal(c->title, "Test");
	assert_int_equal(c->closes_at, T0 + 24 * HOUR);
	concert_free(c);
	assert_error(B->concert_get(s, &c, 5), CONCERT_ENOTFOUND, NULL);

	assert_int_equal(B->concert_add(s, &id, "Second", T0, T0 + HOUR), 0);
	assert_int_equal(id, 2);
	concert_concert_list *concerts;
	assert_int_equal(B->concerts_list(s, &concerts), 0);
	assert_int_equal(concerts->count, 2);
	assert_string_equal(concerts->items[1].title, "Second");
	concert_free(concerts);

	concert_schedule_list *list;
	assert_int_equal(B->schedules_list(s, &list, f->concert_id, f->now), 0);
	assert_int_equal(list->count, 2);
	assert_int_equal(list->items[0].id, f->sparse_id); /* earlier start first */
	assert_int_equal(list->items[0].total_seats, 4);
	assert_int_equal(list->items[1].available_seats, 10);
	assert_string_equal(list->items[1].venue, "Hall");
	concert_free(list);
	assert_int_equal(B->schedules_list(s, &list, id, f->now), 0);
	assert_int_equal(list->count, 0);
	concert_free(list);
	assert_error(B->schedules_list(s, &list, 9, f->now), CONCERT_ENOTFOUND, NULL);
}

/* ---- holds ---------------------------------------------------------------- */

static void test_hold_success(void **state)
{
	fixture *f = *state;
	int32_t seats[] = { 2, 5 };
	int64_t before = seat(f, f->schedule_id, 2).version;
	concert_hold *h;
	concert_hold_request req = hold_req(f, "alice", seats, 2);
	assert_int_equal(B->hold_seats(f->store, &h, &req), 0);
	assert_int_equal(h->id, 1);
	assert_int_equal(h->amount, 7000);
	assert_int_equal(h->state, CONCERT_HOLD_HELD);
	assert_int_equal(h->concert_id, f->concert_id);
	assert_int_equal(h->expires_at, T0 + TTL);
	assert_string_equal(h->user_id, "alice");
	assert_int_equal(h->seat_count, 2);
	assert_int_equal(h->seat_nos[1], 5);
	concert_free(h);

	concert_seat s2 = seat(f, f->schedule_id, 2);
	assert_int_equal(s2.state, CONCERT_SEAT_HELD);
	assert_int_equal(s2.version, before + 1);
	concert_schedule *sch;
	assert_int_equal(B->schedule_get(f->store, &sch, f->schedule_id, f->now), 0);
	assert_int_equal(sch->held_seats, 2);
	assert_int_equal(sch->available_seats, 8);
	concert_free(sch);

	assert_int_equal(B->hold_get(f->store, &h, 1, f->now), 0);
	assert_int_equal(h->amount, 7000);
	concert_free(h);
	assert_error(B->hold_get(f->store, &h, 2, f->now), CONCERT_ENOTFOUND, NULL);

	/* Sparse seat numbers are found too; out may be NULL. */
	int32_t sparse[] = { 4, 100 };
	req = (concert_hold_request){ "bob", f->concert_id, f->sparse_id, sparse, 2, f->now,
		f->now + TTL, 0, 0 };
	assert_int_equal(B->hold_seats(f->store, NULL, &req), 0);
	assert_int_equal(seat(f, f->sparse_id, 100).state, CONCERT_SEAT_HELD);
	int32_t missing[] = { 3 };
	req.seat_nos = missing;
	req.seat_count = 1;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ENOTFOUND, "seat 3");
}

static void test_hold_errors(void **state)
{
	fixture *f = *state;
	int32_t seats[] = { 1, 2, 3 };
	hold(f, "alice", (int32_t[]){ 2 }, 1);
	concert_hold_request req = hold_req(f, "bob", seats, 3);

	req.schedule_id = 99;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ENOTFOUND, NULL);
	req = hold_req(f, "bob", seats, 3);
	req.concert_id = 2;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ETOKEN, NULL);
	req = hold_req(f, "bob", seats, 3);
	req.now = T0 + 24 * HOUR;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ECLOSED, NULL);
	req.now = T0 - HOUR - 1;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ECLOSED, NULL);

	req = hold_req(f, "bob", (int32_t[]){ 1, 2, 3, 11 }, 4);
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ENOTFOUND, "seat 11");

	/* Every conflicting seat is listed; nothing is taken. */
	hold(f, "carol", (int32_t[]){ 3 }, 1);
	req = hold_req(f, "bob", seats, 3);
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ESEAT_UNAVAILABLE, NULL);
	const concert_error *e = concert_error_last();
	assert_int_equal(e->conflict_count, 2);
	assert_int_equal(e->conflicts[0], 2);
	assert_int_equal(e->conflicts[1], 3);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_AVAILABLE);

	/* Per-user limits count live holds, this one included. */
	req = hold_req(f, "alice", (int32_t[]){ 4 }, 1);
	req.max_holds_per_user = 1;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ELIMIT, "alice");
	req.max_holds_per_user = 2;
	req.max_seats_per_user = 1;
	assert_error(B->hold_seats(f->store, NULL, &req), CONCERT_ELIMIT, "seats");
	req.max_seats_per_user = 2;
	assert_int_equal(B->hold_seats(f->store, NULL, &req), 0);
	/* 0 means unlimited. */
	req = hold_req(f, "alice", (int32_t[]){ 5, 6, 7, 8, 9, 10 }, 6);
	req.max_holds_per_user = 0;
	req.max_seats_per_user = 0;
	assert_int_equal(B->hold_seats(f->store, NULL, &req), 0);
	assert_audit_clean(f);
}

static void test_hold_expiry(void **state)
{
	fixture *f = *state;
	int32_t seats[] = { 1, 2 };
	int64_t old = hold(f, "alice", seats, 2);
	int64_t version = seat(f, f->schedule_id, 1).version;
	f->now += TTL; /* expires_at <= now: expired */

	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_AVAILABLE);
	concert_schedule *sch;
	assert_int_equal(B->schedule_get(f->store, &sch, f->schedule_id, f->now), 0);
	assert_int_equal(sch->available_seats, 10);
	assert_int_equal(sch->held_seats, 0);
	concert_free(sch);
	assert_int_equal(hold_state(f, old), CONCERT_HOLD_EXPIRED);
	assert_error(release(f, "alice", old, NULL, 0), CONCERT_EEXPIRED, NULL);
	concert_payment *p = NULL;
	assert_int_equal(B->charge(f->store, NULL, "alice", 100000, NULL, f->now), 0);
	assert_error(pay(f, &p, "alice", old, NULL), CONCERT_EEXPIRED, NULL);
	assert_null(p);
	concert_hold_change ext = change(f, "alice", old, NULL, 0);
	assert_error(B->hold_extend(f->store, NULL, &ext), CONCERT_EEXPIRED, NULL);

	/* The expired hold blocks nobody and counts towards no limit. */
	concert_hold_request req = hold_req(f, "alice", (int32_t[]){ 2 }, 1);
	req.max_holds_per_user = 1;
	req.max_seats_per_user = 1;
	assert_int_equal(B->hold_seats(f->store, NULL, &req), 0);
	int64_t taken = hold(f, "bob", (int32_t[]){ 1 }, 1);
	assert_int_equal(seat(f, f->schedule_id, 1).version, version + 1);
	assert_int_equal(hold_state(f, taken), CONCERT_HOLD_HELD);

	/* The sweep finds the expired hold wherever the limit check put it,
	 * and leaves the seats its successors took alone. */
	uint64_t swept;
	assert_int_equal(B->sweep(f->store, f->now, &swept), 0);
	assert_int_equal(swept, 1);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_HELD);
	assert_int_equal(seat(f, f->schedule_id, 2).state, CONCERT_SEAT_HELD);
	assert_audit_clean(f);
}

/* Calls read the clock before they lock: a late one may carry an older now
 * than the call that already took an expired hold's seats. */
static void test_stale_now(void **state)
{
	fixture *f = *state;
	int64_t old = hold(f, "alice", (int32_t[]){ 1, 2 }, 2);
	assert_int_equal(B->charge(f->store, NULL, "alice", 100000, NULL, f->now), 0);
	f->now += TTL;
	hold(f, "bob", (int32_t[]){ 1 }, 1);
	f->now -= TTL / 2;
	concert_hold_change req = change(f, "alice", old, NULL, 0);
	assert_error(B->hold_extend(f->store, NULL, &req), CONCERT_EEXPIRED, NULL);
	assert_error(release(f, "alice", old, (int32_t[]){ 1 }, 1), CONCERT_EEXPIRED, NULL);
	assert_error(pay(f, NULL, "alice", old, NULL), CONCERT_EEXPIRED, NULL);
	assert_int_equal(balance(f, "alice"), 100000);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_HELD);

	/* A hold a newer call found expired, extended by an older one, counts
	 * again towards the limits. */
	f->now = T0 + 10 * TTL;
	int64_t carol = hold(f, "carol", (int32_t[]){ 5 }, 1);
	f->now += TTL;
	concert_hold_request next = hold_req(f, "carol", (int32_t[]){ 6 }, 1);
	assert_int_equal(B->hold_seats(f->store, NULL, &next), 0);
	req = change(f, "carol", carol, NULL, 0);
	req.now = f->now - 1;
	assert_int_equal(B->hold_extend(f->store, NULL, &req), 0);
	next = hold_req(f, "carol", (int32_t[]){ 7 }, 1);
	next.max_holds_per_user = 2;
	assert_error(B->hold_seats(f->store, NULL, &next), CONCERT_ELIMIT, NULL);
	assert_audit_clean(f);
}

static void test_released_kept(void **state)
{
	fixture *f = *state;
	int64_t ids[20];
	for (int i = 0; i < 20; i++) {
		ids[i] = hold(f, "alice", (int32_t[]){ 1, 2 }, 2);
		assert_int_equal(release(f, "alice", ids[i], NULL, 0), 0);
	}
	/* The most recent releases stay readable; older ones are forgotten
	 * rather than kept forever. */
	concert_hold *h;
	for (int i = 0; i < 4; i++)
		assert_error(B->hold_get(f->store, &h, ids[i], f->now), CONCERT_ENOTFOUND, NULL);
	for (int i = 4; i < 20; i++)
		assert_int_equal(hold_state(f, ids[i]), CONCERT_HOLD_RELEASED);
	assert_error(release(f, "alice", ids[19], NULL, 0), CONCERT_ESTATE, NULL);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_AVAILABLE);
}

static void test_release(void **state)
{
	fixture *f = *state;
	int64_t id = hold(f, "alice", (int32_t[]){ 1, 2, 3 }, 3);
	assert_error(release(f, "alice", 99, NULL, 0), CONCERT_ENOTFOUND, NULL);
	assert_error(release(f, "bob", id, NULL, 0), CONCERT_EFORBIDDEN, NULL);
	assert_error(release(f, "alice", id, (int32_t[]){ 2, 4 }, 2), CONCERT_EINVAL, "seat 4");
	assert_int_equal(seat(f, f->schedule_id, 2).state, CONCERT_SEAT_HELD);

	int64_t version = seat(f, f->schedule_id, 2).version;
	assert_int_equal(release(f, "alice", id, (int32_t[]){ 2 }, 1), 0);
	concert_hold *h;
	assert_int_equal(B->hold_get(f->store, &h, id, f->now), 0);
	assert_int_equal(h->state, CONCERT_HOLD_HELD);
	assert_int_equal(h->amount, 4000);
	assert_int_equal(h->seat_count, 2);
	assert_int_equal(h->seat_nos[1], 3);
	concert_free(h);
	assert_int_equal(seat(f, f->schedule_id, 2).state, CONCERT_SEAT_AVAILABLE);
	assert_int_equal(seat(f, f->schedule_id, 2).version, version + 1);

	assert_int_equal(release(f, "alice", id, (int32_t[]){ 1, 3 }, 2), 0);
	assert_int_equal(hold_state(f, id), CONCERT_HOLD_RELEASED);
	assert_error(release(f, "alice", id, NULL, 0), CONCERT_ESTATE, "released");
	assert_int_equal(seat(f, f->schedule_id, 3).state, CONCERT_SEAT_AVAILABLE);

	int64_t all = hold(f, "alice", (int32_t[]){ 1, 2 }, 2);
	assert_int_equal(release(f, "alice", all, NULL, 0), 0);
	assert_int_equal(B->hold_get(f->store, &h, all, f->now), 0);
	assert_int_equal(h->state, CONCERT_HOLD_RELEASED);
	assert_int_equal(h->amount, 0);
	assert_int_equal(h->seat_count, 0);
	concert_free(h);

	/* Released holds count towards no limit. */
	concert_hold_request req = hold_req(f, "alice", (int32_t[]){ 1 }, 1);
	req.max_holds_per_user = 1;
	assert_int_equal(B->hold_seats(f->store, NULL, &req), 0);

	/* More seats than a hold keeps inline. */
	int32_t six[] = { 3, 4, 5, 6, 7, 8 };
	int64_t big = hold(f, "bob", six, 6);
	assert_int_equal(release(f, "bob", big, (int32_t[]){ 4, 8 }, 2), 0);
	assert_int_equal(B->hold_get(f->store, &h, big, f->now), 0);
	assert_int_equal(h->seat_count, 4);
	assert_int_equal(h->amount, 3000 + 5000 + 6000 + 7000);
	concert_free(h);
	assert_int_equal(B->charge(f->store, NULL, "bob", 21000, NULL, f->now), 0);
	concert_payment *p;
	assert_int_equal(pay(f, &p, "bob", big, NULL), 0);
	assert_int_equal(p->seat_count, 4);
	assert_int_equal(p->seat_nos[3], 7);
	concert_free(p);
	int64_t other = hold(f, "bob", (int32_t[]){ 2, 4, 8, 9, 10 }, 5);
	assert_int_equal(release(f, "bob", other, NULL, 0), 0);
	assert_audit_clean(f);
}

static void test_extend(void **state)
{
	fixture *f = *state;
	int64_t id = hold(f, "alice", (int32_t[]){ 7 }, 1);
	concert_hold *h;
	concert_hold_change req = change(f, "bob", id, NULL, 0);
	assert_error(B->hold_extend(f->store, &h, &req), CONCERT_EFORBIDDEN, NULL);
	req = change(f, "alice", 1234, NULL, 0);
	assert_error(B->hold_extend(f->store, &h, &req), CONCERT_ENOTFOUND, NULL);

	f->now += TTL / 2;
	req = change(f, "alice", id, NULL, 0);
	assert_int_equal(B->hold_extend(f->store, &h, &req), 0);
	assert_int_equal(h->expires_at, f->now + TTL);
	assert_int_equal(h->extensions, 1);
	concert_free(h);
	/* The seat follows its hold's expiry. */
	f->now = T0 + TTL;
	assert_int_equal(seat(f, f->schedule_id, 7).state, CONCERT_SEAT_HELD);

	/* Capped at created_at + max_lifetime. */
	f->now = T0 + TTL + TTL / 4;
	req = change(f, "alice", id, NULL, 0);
	req.max_lifetime = 2 * TTL;
	assert_int_equal(B->hold_extend(f->store, &h, &req), 0);
	assert_int_equal(h->expires_at, T0 + 2 * TTL);
	assert_int_equal(h->extensions, 2);
	concert_free(h);
	req.now = f->now = T0 + TTL + TTL / 2;
	req.max_extensions = 5;
	assert_error(B->hold_extend(f->store, &h, &req), CONCERT_ELIMIT, "lifetime");
	req.max_extensions = 2;
	assert_error(B->hold_extend(f->store, &h, &req), CONCERT_ELIMIT, "extended");

	int64_t other = hold(f, "alice", (int32_t[]){ 8 }, 1);
	assert_int_equal(release(f, "alice", other, NULL, 0), 0);
	req = change(f, "alice", other, NULL, 0);
	assert_error(B->hold_extend(f->store, NULL, &req), CONCERT_ESTATE, NULL);
}

/* ---- wallet ----------------------------------------------------------------- */

static void test_wallet(void **state)
{
	fixture *f = *state;
	void *s = f->store;
	int64_t b = -1;
	assert_int_equal(balance(f, "nobody"), 0);
	assert_int_equal(B->charge(s, &b, "alice", 500, "k1", f->now), 0);
	assert_int_equal(b, 500);
	assert_int_equal(B->charge(s, &b, "alice", 200, NULL, f->now), 0);
	assert_int_equal(b, 700);
	/* A repeat answers the original balance_after and changes nothing. */
	assert_int_equal(B->charge(s, &b, "alice", 500, "k1", f->now), 0);
	assert_int_equal(b, 500);
	assert_int_equal(balance(f, "alice"), 700);
	assert_error(B->charge(s, &b, "alice", 501, "k1", f->now), CONCERT_EIDEMPOTENCY, NULL);
	/* Keys are per user. */
	assert_int_equal(B->charge(s, &b, "bob", 9, "k1", f->now), 0);
	assert_int_equal(b, 9);
	assert_error(B->charge(s, &b, "alice", INT64_MAX - 700 + 1, NULL, f->now), CONCERT_EOVERFLOW, NULL);
	assert_int_equal(B->charge(s, &b, "alice", INT64_MAX - 700, NULL, f->now), 0);
	assert_int_equal(b, INT64_MAX);

	concert_wallet_tx_list *txs;
	assert_int_equal(B->history(s, &txs, "alice", 0, 2), 0);
	assert_int_equal(txs->count, 2);
	assert_int_equal(txs->items[0].amount, INT64_MAX - 700);
	assert_int_equal(txs->items[1].amount, 200);
	assert_int_equal(txs->items[1].kind, CONCERT_TX_CHARGE);
	assert_true(txs->items[0].id > txs->items[1].id);
	int64_t cursor = txs->next_cursor;
	assert_int_equal(cursor, txs->items[1].id);
	concert_free(txs);
	assert_int_equal(B->history(s, &txs, "alice", cursor, 2), 0);
	assert_int_equal(txs->count, 1);
	assert_int_equal(txs->items[0].balance_after, 500);
	assert_int_equal(txs->next_cursor, 0);
	concert_free(txs);
	assert_int_equal(B->history(s, &txs, "nobody", 0, 10), 0);
	assert_int_equal(txs->count, 0);
	assert_int_equal(txs->next_cursor, 0);
	concert_free(txs);
	assert_int_equal(B->history(s, &txs, "alice", 0, 3), 0);
	assert_int_equal(txs->next_cursor, 0);
	concert_free(txs);
}

/* ---- pay and cancel ---------------------------------------------------- */

static void test_pay(void **state)
{
	fixture *f = *state;
	concert_payment *p = NULL;
	int64_t id = hold(f, "alice", (int32_t[]){ 1, 2 }, 2);
	assert_int_equal(B->charge(f->store, NULL, "alice", 2999, NULL, f->now), 0);
	assert_error(pay(f, &p, "alice", 77, NULL), CONCERT_ENOTFOUND, NULL);
	assert_error(pay(f, &p, "bob", id, NULL), CONCERT_EFORBIDDEN, NULL);
	concert_pay_request foreign = { "alice", 2, id, NULL, f->now };
	assert_error(B->pay(f->store, &p, &foreign), CONCERT_ETOKEN, NULL);
	assert_error(pay(f, &p, "alice", id, "p1"), CONCERT_EFUNDS, NULL);
	assert_null(p);

	assert_int_equal(B->charge(f->store, NULL, "alice", 1, NULL, f->now), 0);
	int64_t version = seat(f, f->schedule_id, 1).version;
	assert_int_equal(pay(f, &p, "alice", id, "p1"), 0);
	assert_int_equal(p->amount, 3000);
	assert_int_equal(p->balance, 0);
	assert_int_equal(p->hold_id, id);
	assert_int_equal(p->schedule_id, f->schedule_id);
	assert_int_equal(p->seat_count, 2);
	assert_string_equal(p->user_id, "alice");
	int64_t reservation_id = p->reservation_id, payment_id = p->payment_id;
	concert_free(p);
	assert_int_equal(balance(f, "alice"), 0);
	assert_int_equal(hold_state(f, id), CONCERT_HOLD_PAID);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_RESERVED);
	assert_int_equal(seat(f, f->schedule_id, 1).version, version + 1);

	concert_wallet_tx_list *txs;
	assert_int_equal(B->history(f->store, &txs, "alice", 0, 1), 0);
	assert_int_equal(txs->items[0].kind, CONCERT_TX_PAYMENT);
	assert_int_equal(txs->items[0].amount, -3000);
	assert_int_equal(txs->items[0].ref_id, reservation_id);
	concert_free(txs);

	/* A repeat with the key returns a copy of the original. */
	assert_int_equal(pay(f, &p, "alice", id, "p1"), 0);
	assert_int_equal(p->reservation_id, reservation_id);
	assert_int_equal(p->payment_id, payment_id);
	assert_int_equal(p->balance, 0);
	assert_int_equal(p->seat_nos[1], 2);
	concert_free(p);
	assert_error(pay(f, NULL, "alice", id, NULL), CONCERT_ESTATE, "paid");
	int64_t other = hold(f, "alice", (int32_t[]){ 3 }, 1);
	assert_error(pay(f, NULL, "alice", other, "p1"), CONCERT_EIDEMPOTENCY, NULL);
	assert_int_equal(release(f, "alice", other, NULL, 0), 0);
	assert_error(pay(f, NULL, "alice", other, "p2"), CONCERT_ESTATE, "released");
	assert_error(release(f, "alice", id, NULL, 0), CONCERT_ESTATE, NULL);

	/* A live hold cannot be paid once the window has closed. */
	int64_t late = hold(f, "alice", (int32_t[]){ 4 }, 1);
	assert_int_equal(B->charge(f->store, NULL, "alice", 4000, NULL, f->now), 0);
	f->now = T0 + 24 * HOUR;
	concert_pay_request closed = { "alice", f->concert_id, late, NULL, f->now };
	concert_hold_change ext = { "alice", late, NULL, 0, T0 + TTL / 2, 48 * HOUR, 48 * HOUR, 1 };
	assert_int_equal(B->hold_extend(f->store, NULL, &ext), 0);
	assert_error(B->pay(f->store, NULL, &closed), CONCERT_ECLOSED, NULL);

	concert_reservation *r;
	assert_int_equal(B->reservation_get(f->store, &r, reservation_id), 0);
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	assert_int_equal(r->payment_id, payment_id);
	assert_int_equal(r->amount, 3000);
	assert_int_equal(r->seat_count, 2);
	assert_string_equal(r->user_id, "alice");
	concert_free(r);
	assert_error(B->reservation_get(f->store, &r, 999), CONCERT_ENOTFOUND, NULL);
	assert_audit_clean(f);
}

static void test_cancel(void **state)
{
	fixture *f = *state;
	int64_t refunded = 0, b = 0;
	int64_t id = hold(f, "alice", (int32_t[]){ 5 }, 1);
	assert_int_equal(B->charge(f->store, NULL, "alice", 8000, NULL, f->now), 0);
	concert_payment *p;
	assert_int_equal(pay(f, &p, "alice", id, NULL), 0);
	int64_t rid = p->reservation_id;
	concert_free(p);
	assert_error(B->cancel(f->store, &refunded, &b, "alice", 42, f->now), CONCERT_ENOTFOUND, NULL);
	assert_error(B->cancel(f->store, &refunded, &b, "bob", rid, f->now), CONCERT_EFORBIDDEN, NULL);
	int64_t version = seat(f, f->schedule_id, 5).version;
	assert_int_equal(B->cancel(f->store, &refunded, &b, "alice", rid, f->now), 0);
	assert_int_equal(refunded, 5000);
	assert_int_equal(b, 8000);
	assert_int_equal(seat(f, f->schedule_id, 5).state, CONCERT_SEAT_AVAILABLE);
	assert_int_equal(seat(f, f->schedule_id, 5).version, version + 1);
	assert_error(B->cancel(f->store, NULL, NULL, "alice", rid, f->now), CONCERT_ESTATE, NULL);
	concert_reservation *r;
	assert_int_equal(B->reservation_get(f->store, &r, rid), 0);
	assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
	concert_free(r);
	concert_wallet_tx_list *txs;
	assert_int_equal(B->history(f->store, &txs, "alice", 0, 1), 0);
	assert_int_equal(txs->items[0].kind, CONCERT_TX_REFUND);
	assert_int_equal(txs->items[0].amount, 5000);
	assert_int_equal(txs->items[0].ref_id, rid);
	concert_free(txs);
	/* The seat can be sold again. */
	hold(f, "bob", (int32_t[]){ 5 }, 1);

	concert_audit *a;
	assert_int_equal(B->audit(f->store, &a), 0);
	assert_int_equal(a->wallets, 1);
	assert_int_equal(a->total_charges, 8000);
	assert_int_equal(a->total_payments, 5000);
	assert_int_equal(a->total_refunds, 5000);
	assert_int_equal(a->reservations, 0);
	assert_int_equal(a->reserved_seats, 0);
	concert_free(a);
	assert_audit_clean(f);
}

/* ---- sweep ---------------------------------------------------------------- */

static void test_sweep(void **state)
{
	fixture *f = *state;
	uint64_t swept = 99;
	int64_t expired = hold(f, "alice", (int32_t[]){ 1 }, 1);
	int64_t released = hold(f, "alice", (int32_t[]){ 2 }, 1);
	assert_int_equal(release(f, "alice", released, NULL, 0), 0);
	assert_int_equal(B->charge(f->store, NULL, "alice", 9000, NULL, f->now), 0);
	int64_t paid = hold(f, "alice", (int32_t[]){ 3 }, 1);
	assert_int_equal(pay(f, NULL, "alice", paid, NULL), 0);
	assert_int_equal(B->sweep(f->store, f->now, &swept), 0);
	assert_int_equal(swept, 0);

	f->now += TTL;
	int64_t live = hold(f, "bob", (int32_t[]){ 4 }, 1);
	int64_t version = seat(f, f->schedule_id, 1).version;
	assert_int_equal(B->sweep(f->store, f->now, &swept), 0);
	assert_int_equal(swept, 1);
	concert_hold *h;
	assert_error(B->hold_get(f->store, &h, expired, f->now), CONCERT_ENOTFOUND, NULL);
	assert_error(B->hold_get(f->store, &h, released, f->now), CONCERT_ENOTFOUND, NULL);
	assert_int_equal(hold_state(f, paid), CONCERT_HOLD_PAID);
	assert_int_equal(hold_state(f, live), CONCERT_HOLD_HELD);
	/* Sweeping changes nothing a reader could see. */
	assert_int_equal(seat(f, f->schedule_id, 1).version, version);
	assert_int_equal(seat(f, f->schedule_id, 1).state, CONCERT_SEAT_AVAILABLE);
	/* New ids never reuse dropped ones. */
	assert_true(hold(f, "carol", (int32_t[]){ 1 }, 1) > live);
	assert_audit_clean(f);
}

/* A shard's ids must fill its buckets, not collide in a few of them. */
static void test_id_hash_spread(void **state)
{
	(void)state;
	enum { BUCKETS = 256 };
	unsigned used[STORE_SHARDS][BUCKETS] = { { 0 } };
	for (int64_t id = 1; id <= (int64_t)STORE_SHARDS * BUCKETS; id++) {
		uint64_t h = store_hash_id(id);
		used[h % STORE_SHARDS][(h / STORE_SHARDS) % BUCKETS]++;
	}
	for (size_t s = 0; s < STORE_SHARDS; s++)
		for (size_t b = 0; b < BUCKETS; b++)
			assert_true(used[s][b] <= 1);
}

/* ---- records --------------------------------------------------------------- */

static void roundtrip(const store_record *in, store_record *out, store_record_reader *rd)
{
	store_record_buf buf;
	store_record_buf_init(&buf);
	assert_int_equal(store_record_encode(&buf, in), 0);
	assert_int_equal(store_record_decode(rd, out, buf.data, buf.len), 0);
	store_record_buf_free(&buf);
}

static void test_records(void **state)
{
	(void)state;
	store_record_reader rd;
	store_record out;
	store_record_reader_init(&rd);
	int32_t seats[64];
	for (int i = 0; i < 64; i++)
		seats[i] = i * 1000;
	store_record hold_rec = { .type = STORE_RECORD_HOLD_STATE, .id = INT64_MAX, .schedule_id = 3,
		.user_id = "u", .created_at = -5, .expires_at = T0, .amount = 12, .seat_count = 64,
		.seat_nos = seats, .state = 3, .extensions = UINT32_MAX };
	roundtrip(&hold_rec, &out, &rd);
	assert_int_equal(out.id, INT64_MAX);
	assert_int_equal(out.created_at, -5);
	assert_int_equal(out.seat_count, 64);
	assert_int_equal(out.seat_nos[63], 63000);
	assert_int_equal(out.extensions, UINT32_MAX);
	assert_string_equal(out.user_id, "u");

	store_record pay_rec = { .type = STORE_RECORD_PAY, .id = 1, .hold_id = 2, .payment_id = 3,
		.tx = { 4, CONCERT_TX_PAYMENT, -10, 0, 1, T0 } };
	roundtrip(&pay_rec, &out, &rd);
	assert_null(out.idem_key);
	assert_int_equal(out.tx.amount, -10);
	assert_int_equal(out.tx.created_at, T0);

	/* A record bigger than the local buffer. */
	store_seat_record many[200];
	for (int i = 0; i < 200; i++)
		many[i] = (store_seat_record){ i + 1, 2, 100, 7, 9, T0, "VIP" };
	store_record seat_rec = { .type = STORE_RECORD_SEAT_STATE, .schedule_id = 1, .count = 200,
		.seats = many };
	roundtrip(&seat_rec, &out, &rd);
	assert_int_equal(out.count, 200);
	assert_string_equal(out.seats[199].grade, "VIP");
	assert_int_equal(out.seats[199].hold_expires_at, T0);

	/* Wrong shapes are corrupt, never guessed at. */
	static const uint8_t bad[][8] = {
		{ 0x93, 0x01, 0x01, 0xa1 },             /* truncated */
		{ 0x91, 0x63 },                         /* unknown type 99 */
		{ 0x92, 0x0a, 0x01 },                   /* DROP with a non-array */
		{ 0x92, 0x06, 0x90 },                   /* EXTEND missing fields */
		{ 0x01 },                               /* not an array */
		{ 0x92, 0x10, 0x91, 0x01 },             /* COUNTERS of the wrong length */
		{ 0x94, 0x06, 0x01, 0xc0, 0x01 },       /* EXTEND with nil expiry */
	};
	static const size_t bad_len[] = { 4, 2, 3, 3, 1, 4, 5 };
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++)
		assert_int_equal(store_record_decode(&rd, &out, bad[i], bad_len[i]), CONCERT_ECORRUPT);
	uint8_t trailing[] = { 0x91, 0x0a, 0x90 };
	assert_int_equal(store_record_decode(&rd, &out, trailing, 3), CONCERT_ECORRUPT);
	store_record_reader_free(&rd);

	store_record_buf buf;
	store_record_buf_init(&buf);
	store_record unknown = { .type = 0 };
	assert_int_equal(store_record_encode(&buf, &unknown), CONCERT_EINVAL);
	store_record_buf_free(&buf);
}

/* ---- durability ----------------------------------------------------------- */

/* Everything a reader can see, as text, to compare before and after a reopen. */
static void describe(fixture *f, char *out, size_t size)
{
	FILE *m = fmemopen(out, size, "w");
	concert_seat_list *seats;
	for (int64_t sid = 1; sid <= 2; sid++) {
		assert_int_equal(B->seats_list(f->store, &seats, sid, f->now), 0);
		for (size_t i = 0; i < seats->count; i++)
			fprintf(m, "seat %d:%d:%lld ", seats->items[i].seat_no, seats->items[i].state,
				(long long)seats->items[i].version);
		concert_free(seats);
	}
	for (size_t i = 0; i < f->id_count; i++) {
		int64_t id = f->ids[i];
		concert_hold *h;
		if (B->hold_get(f->store, &h, id, f->now) == 0) {
			fprintf(m, "hold %lld:%d:%lld:%lld:%u:%zu ", (long long)id, h->state,
				(long long)h->amount, (long long)h->expires_at, h->extensions, h->seat_count);
			concert_free(h);
		}
		concert_reservation *r;
		if (B->reservation_get(f->store, &r, id) == 0) {
			fprintf(m, "res %lld:%d:%lld ", (long long)id, r->state, (long long)r->amount);
			concert_free(r);
		}
	}
	const char *users[] = { "alice", "bob" };
	for (size_t u = 0; u < 2; u++) {
		concert_wallet_tx_list *txs;
		assert_int_equal(B->history(f->store, &txs, users[u], 0, 100), 0);
		for (size_t i = 0; i < txs->count; i++)
			fprintf(m, "tx %lld:%d:%lld:%lld ", (long long)txs->items[i].id, txs->items[i].kind,
				(long long)txs->items[i].amount, (long long)txs->items[i].balance_after);
		concert_free(txs);
	}
	concert_audit *a;
	assert_int_equal(B->audit(f->store, &a), 0);
	fprintf(m, "audit %lld %lld %lld", (long long)a->total_balance, (long long)a->reserved_seats,
		(long long)a->reservations);
	concert_free(a);
	fclose(m);
}

static void reopen(fixture *f, const char *uri, char *before, char *after, size_t size)
{
	describe(f, before, size);
	B->close(f->store);
	f->store = NULL;
	assert_int_equal(open_store(f, uri), 0);
	describe(f, after, size);
	assert_string_equal(before, after);
}

/* Returns bob's reservation (cancelled) and alice's first hold (paid). */
static void durable_workload(fixture *f, int64_t *paid_hold)
{
	int64_t a = hold(f, "alice", (int32_t[]){ 1, 2, 3 }, 3);
	assert_int_equal(release(f, "alice", a, (int32_t[]){ 2 }, 1), 0);
	concert_hold_change ext = change(f, "alice", a, NULL, 0);
	ext.now = f->now + 1000;
	assert_int_equal(B->hold_extend(f->store, NULL, &ext), 0);
	assert_int_equal(B->charge(f->store, NULL, "alice", 10000, "c1", f->now), 0);
	assert_int_equal(pay(f, NULL, "alice", a, "p1"), 0);
	int64_t b = hold(f, "bob", (int32_t[]){ 5 }, 1);
	assert_int_equal(B->charge(f->store, NULL, "bob", 7000, NULL, f->now), 0);
	concert_payment *p;
	assert_int_equal(pay(f, &p, "bob", b, NULL), 0);
	int64_t refunded;
	assert_int_equal(B->cancel(f->store, &refunded, NULL, "bob", p->reservation_id, f->now), 0);
	concert_free(p);
	*paid_hold = a;
	int64_t gone = hold(f, "bob", (int32_t[]){ 6, 7 }, 2);
	assert_int_equal(release(f, "bob", gone, NULL, 0), 0);
	hold(f, "bob", (int32_t[]){ 8 }, 1);
	for (int i = 0; i < RELEASED_KEEP + 2; i++)
		assert_int_equal(release(f, "dave", hold(f, "dave", (int32_t[]){ 10 }, 1), NULL, 0), 0);
	concert_hold_request sparse = { "alice", f->concert_id, f->sparse_id, (int32_t[]){ 8 }, 1,
		f->now, f->now + 10 * TTL, 0, 0 };
	assert_int_equal(B->hold_seats(f->store, NULL, &sparse), 0);
}

static void test_durable(void **state)
{
	fixture *f = *state;
	char before[8192], after[8192];
	char uri[128];
	B->close(f->store);
	assert_int_equal(tmpdir_make(f->dir, sizeof(f->dir), "concert-store"), 0);
	snprintf(uri, sizeof(uri), "memory:%s/db?fsync=off", f->dir);
	assert_int_equal(open_store(f, uri), 0);
	build_catalog(f);
	int64_t paid_hold;
	durable_workload(f, &paid_hold);

	/* The journal alone. */
	reopen(f, uri, before, after, sizeof(before));
	f->now += TTL; /* bob's seat 8 hold expires; alice's sparse one lives */
	uint64_t swept;
	assert_int_equal(B->sweep(f->store, f->now, &swept), 0);
	assert_int_equal(swept, 1);
	reopen(f, uri, before, after, sizeof(before));

	/* Repeats still answer the originals; ids are never reused. */
	int64_t b, max_id = 0;
	assert_int_equal(B->charge(f->store, &b, "alice", 10000, "c1", f->now), 0);
	assert_int_equal(b, 10000);
	concert_payment *p;
	concert_pay_request again = { "alice", f->concert_id, paid_hold, "p1", f->now };
	assert_int_equal(B->pay(f->store, &p, &again), 0);
	assert_int_equal(p->reservation_id, f->ids[1]);
	concert_free(p);
	for (size_t i = 0; i < f->id_count; i++)
		max_id = f->ids[i] > max_id ? f->ids[i] : max_id;
	int64_t carol = hold(f, "carol", (int32_t[]){ 9 }, 1);
	assert_true(carol > max_id);

	/* A snapshot, then more journal on top of it. */
	assert_int_equal(B->compact(f->store), 0);
	reopen(f, uri, before, after, sizeof(before));
	assert_int_equal(release(f, "carol", carol, NULL, 0), 0);
	assert_int_equal(B->charge(f->store, NULL, "bob", 5, "c9", f->now), 0);
	reopen(f, uri, before, after, sizeof(before));
	assert_true(hold(f, "carol", (int32_t[]){ 9 }, 1) > carol);
	int64_t id;
	assert_int_equal(B->concert_add(f->store, &id, "Third", T0, T0 + HOUR), 0);
	assert_int_equal(id, 2);
	assert_int_equal(B->compact(f->store), 0);
	reopen(f, uri, before, after, sizeof(before));
	assert_int_equal(B->charge(f->store, &b, "bob", 5, "c9", f->now), 0);
	assert_int_equal(B->charge(f->store, &b, "bob", 6, "c9", f->now), CONCERT_EIDEMPOTENCY);
	assert_audit_clean(f);

	/* One opener at a time. */
	void *second = NULL;
	assert_int_equal(B->open(&second, uri, &f->env), CONCERT_EUNAVAILABLE);
	assert_null(second);
}

static int no_records(void *ctx, const uint8_t *payload, size_t len)
{
	(void)ctx;
	(void)payload;
	(void)len;
	return CONCERT_EINTERNAL;
}

static void test_durable_corrupt(void **state)
{
	fixture *f = *state;
	char uri[128], path[128];
	B->close(f->store);
	f->store = NULL;
	assert_int_equal(tmpdir_make(f->dir, sizeof(f->dir), "concert-store"), 0);
	snprintf(uri, sizeof(uri), "memory:%s", f->dir);
	/* A well-framed record that is not a store record stops the open. */
	journal *j;
	assert_int_equal(journal_open(&j, f->dir, "store", JOURNAL_FSYNC_OFF, no_records, NULL, NULL), 0);
	static const uint8_t not_a_record[] = { 0x92, 0x06, 0x90 };
	uint64_t seq = journal_append(j, not_a_record, sizeof(not_a_record));
	assert_int_equal(journal_commit(j, seq), 0);
	journal_close(j);
	assert_int_equal(open_store(f, uri), CONCERT_ECORRUPT);
	assert_null(f->store);
	snprintf(path, sizeof(path), "%s/store.0.journal", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_store(f, uri), 0);
}

/* ---- threads (a smoke test for TSan; the conformance suite goes further) -- */

typedef struct worker {
	fixture *f;
	int index;
	int failures;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	fixture *f = w->f;
	char user[16];
	snprintf(user, sizeof(user), "w%d", w->index);
	int32_t own[] = { w->index + 1 };
	int32_t shared[] = { 10 };
	for (int i = 0; i < 2000; i++) {
		concert_hold *h;
		concert_hold_request req = hold_req(f, user, own, 1);
		req.max_holds_per_user = 0;
		req.max_seats_per_user = 0;
		if (B->hold_seats(f->store, &h, &req) != 0) {
			w->failures++;
			continue;
		}
		concert_hold_change rel = change(f, user, h->id, NULL, 0);
		w->failures += B->hold_release(f->store, &rel) != 0;
		concert_free(h);
		req.seat_nos = shared;
		if (B->hold_seats(f->store, &h, &req) == 0) {
			rel.hold_id = h->id;
			w->failures += B->hold_release(f->store, &rel) != 0;
			concert_free(h);
		}
		w->failures += B->charge(f->store, NULL, user, 1, NULL, f->now) != 0;
		if (i % 500 == 0) {
			concert_audit *a;
			w->failures += B->audit(f->store, &a) != 0;
			concert_free(a);
			uint64_t swept;
			w->failures += B->sweep(f->store, f->now, &swept) != 0;
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	fixture *f = *state;
	pthread_t tid[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){ f, i, 0 };
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(w[i].failures, 0);
		char user[16];
		snprintf(user, sizeof(user), "w%d", i);
		assert_int_equal(balance(f, user), 2000);
	}
	assert_int_equal(seat(f, f->schedule_id, 10).state, CONCERT_SEAT_AVAILABLE);
	assert_audit_clean(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_released_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wallet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test(test_id_hash_spread),
		cmocka_unit_test(test_records),
		cmocka_unit_test_setup_teardown(test_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

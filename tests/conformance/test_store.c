/*
 * Store backend conformance: every method of concert_store_backend, its
 * success and each error its contract names (include/concert/sys/store.h
 * and the public headers), through the vtable of the backend named by
 * CONCERT_TEST_STORE. Every scenario ends with the audit invariants.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* States and versions of a whole schedule, to prove a failure changed nothing. */
typedef struct seat_map {
	size_t count;
	concert_seat items[128];
} seat_map;

static void map_read(harness *h, int64_t schedule_id, seat_map *m)
{
	concert_seat_list *list = NULL;
	assert_ok(h->store->seats_list(h->store_ctx, &list, schedule_id, h_now(h)));
	assert_true(list->count <= N(m->items));
	m->count = list->count;
	memcpy(m->items, list->items, list->count * sizeof(list->items[0]));
	concert_free(list);
}

static void map_unchanged(harness *h, int64_t schedule_id, const seat_map *before)
{
	seat_map after;
	map_read(h, schedule_id, &after);
	assert_int_equal(after.count, before->count);
	for (size_t i = 0; i < after.count; i++) {
		assert_int_equal(after.items[i].seat_no, before->items[i].seat_no);
		if (after.items[i].state != before->items[i].state ||
		    after.items[i].version != before->items[i].version)
			fail_msg("seat %d changed: state %d -> %d, version %lld -> %lld",
				 (int)after.items[i].seat_no, (int)before->items[i].state,
				 (int)after.items[i].state, (long long)before->items[i].version,
				 (long long)after.items[i].version);
	}
}

static void assert_states(harness *h, int64_t schedule_id, const int32_t *seats, size_t n,
			  int32_t state)
{
	for (size_t i = 0; i < n; i++) {
		int32_t got = h_seat_state(h, schedule_id, seats[i]);
		if (got != state)
			fail_msg("seat %d is %s, expected %s", (int)seats[i],
				 concert_seat_state_name(got), concert_seat_state_name(state));
	}
}

static void assert_counts(harness *h, int64_t schedule_id, int64_t available, int64_t held,
			  int64_t reserved)
{
	concert_schedule s = h_schedule(h, schedule_id);
	if (s.available_seats != available || s.held_seats != held || s.reserved_seats != reserved)
		fail_msg("schedule %lld counts available/held/reserved %lld/%lld/%lld, expected "
			 "%lld/%lld/%lld", (long long)schedule_id, (long long)s.available_seats,
			 (long long)s.held_seats, (long long)s.reserved_seats, (long long)available,
			 (long long)held, (long long)reserved);
	assert_int_equal(s.total_seats, available + held + reserved);
}

static void assert_hold_seats(const concert_hold *hold, const int32_t *seats, size_t n)
{
	assert_int_equal(hold->seat_count, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(hold->seat_nos[i], seats[i]);
}

static int64_t unknown_id(void)
{
	return INT64_MAX - 7;
}

/* ---- catalog ---------------------------------------------------------------- */

static void test_concerts(void **state)
{
	harness *h = *state;
	char t1[H_NAME_SIZE], t2[H_NAME_SIZE];
	int64_t a = 0, b = 0;
	concert_time now = h_now(h);
	assert_ok(h->store->concert_add(h->store_ctx, &a, h_unique(t1, "title"), now, now + H_DAY));
	assert_ok(h->store->concert_add(h->store_ctx, &b, h_unique(t2, "title"), now + H_HOUR,
					now + 2 * H_DAY));
	assert_true(a > 0);
	assert_true(b > 0);
	assert_true(a != b);

	concert_concert *c = NULL;
	assert_ok(h->store->concert_get(h->store_ctx, &c, b));
	assert_int_equal(c->id, b);
	assert_string_equal(c->title, t2);
	assert_int_equal(c->opens_at, now + H_HOUR);
	assert_int_equal(c->closes_at, now + 2 * H_DAY);
	concert_free(c);
	c = NULL;
	assert_rc(h->store->concert_get(h->store_ctx, &c, unknown_id()), CONCERT_ENOTFOUND);
	assert_null(c);

	concert_concert_list *list = NULL;
	assert_ok(h->store->concerts_list(h->store_ctx, &list));
	int seen_a = 0, seen_b = 0;
	for (size_t i = 0; i < list->count; i++) {
		if (i > 0)
			assert_true(list->items[i].id > list->items[i - 1].id);
		if (list->items[i].id == a) {
			seen_a = 1;
			assert_string_equal(list->items[i].title, t1);
			assert_int_equal(list->items[i].opens_at, now);
			assert_int_equal(list->items[i].closes_at, now + H_DAY);
		}
		seen_b |= list->items[i].id == b;
	}
	concert_free(list);
	assert_true(seen_a && seen_b);
	h_check_audit(h);
}

static void test_schedules(void **state)
{
	harness *h = *state;
	h_venue v;
	h_make_venue(h, &v, 0);
	char venue[H_NAME_SIZE];
	int64_t late = 0, early = 0, none = 0;
	concert_time now = h_now(h);
	/* Added late-first: the list must come back by starts_at. */
	assert_ok(h->store->schedule_add(h->store_ctx, &late, v.concert_id, now + 20 * H_DAY,
					 h_unique(venue, "hall")));
	assert_ok(h->store->schedule_add(h->store_ctx, &early, v.concert_id, now + H_HOUR, venue));
	assert_rc(h->store->schedule_add(h->store_ctx, &none, unknown_id(), now, venue),
		  CONCERT_ENOTFOUND);

	concert_schedule_list *list = NULL;
	assert_ok(h->store->schedules_list(h->store_ctx, &list, v.concert_id, now));
	assert_int_equal(list->count, 3);
	for (size_t i = 1; i < list->count; i++)
		assert_true(list->items[i].starts_at >= list->items[i - 1].starts_at);
	assert_int_equal(list->items[0].id, early);
	assert_int_equal(list->items[0].concert_id, v.concert_id);
	assert_int_equal(list->items[0].starts_at, now + H_HOUR);
	assert_string_equal(list->items[0].venue, venue);
	assert_int_equal(list->items[0].total_seats, 0);
	assert_int_equal(list->items[1].id, v.schedule_id);
	assert_int_equal(list->items[2].id, late);
	concert_free(list);

	list = NULL;
	assert_rc(h->store->schedules_list(h->store_ctx, &list, unknown_id(), now), CONCERT_ENOTFOUND);
	assert_null(list);

	/* A concert without schedules lists none. */
	int64_t other = 0;
	assert_ok(h->store->concert_add(h->store_ctx, &other, venue, now, now + H_DAY));
	assert_ok(h->store->schedules_list(h->store_ctx, &list, other, now));
	assert_int_equal(list->count, 0);
	concert_free(list);

	concert_schedule *s = NULL;
	assert_ok(h->store->schedule_get(h->store_ctx, &s, late, now));
	assert_int_equal(s->id, late);
	assert_int_equal(s->concert_id, v.concert_id);
	assert_int_equal(s->starts_at, now + 20 * H_DAY);
	concert_free(s);
	s = NULL;
	assert_rc(h->store->schedule_get(h->store_ctx, &s, unknown_id(), now), CONCERT_ENOTFOUND);
	assert_null(s);
	h_check_audit(h);
}

static void test_seats_add_and_list(void **state)
{
	harness *h = *state;
	h_venue v;
	h_make_venue(h, &v, 6);

	concert_seat_list *list = NULL;
	assert_ok(h->store->seats_list(h->store_ctx, &list, v.schedule_id, h_now(h)));
	assert_int_equal(list->schedule_id, v.schedule_id);
	assert_int_equal(list->count, 6);
	for (size_t i = 0; i < list->count; i++) {
		const concert_seat *seat = &list->items[i];
		assert_int_equal(seat->seat_no, (int32_t)i + 1);
		assert_int_equal(seat->state, CONCERT_SEAT_AVAILABLE);
		assert_int_equal(seat->price, h_price_of(seat->seat_no));
		assert_string_equal(seat->grade, h_grade_of(seat->seat_no));
	}
	concert_free(list);
	assert_counts(h, v.schedule_id, 6, 0, 0);

	/* Added out of order: listed by seat_no. */
	concert_seat_spec more[] = { { 20, 5000, "A" }, { 10, 6000, "B" } };
	assert_ok(h->store->seats_add(h->store_ctx, v.schedule_id, more, N(more)));
	assert_int_equal(h_seat(h, v.schedule_id, 10).price, 6000);
	assert_string_equal(h_seat(h, v.schedule_id, 20).grade, "A");
	assert_ok(h->store->seats_list(h->store_ctx, &list, v.schedule_id, h_now(h)));
	assert_int_equal(list->count, 8);
	assert_int_equal(list->items[6].seat_no, 10);
	assert_int_equal(list->items[7].seat_no, 20);
	concert_free(list);

	/* All or none: one existing seat spoils the batch. */
	seat_map before;
	map_read(h, v.schedule_id, &before);
	concert_seat_spec dup[] = { { 30, 1000, "C" }, { 3, 1000, "C" }, { 31, 1000, "C" } };
	assert_rc(h->store->seats_add(h->store_ctx, v.schedule_id, dup, N(dup)), CONCERT_EEXISTS);
	map_unchanged(h, v.schedule_id, &before);
	assert_counts(h, v.schedule_id, 8, 0, 0);
	assert_int_equal(h_seat(h, v.schedule_id, 3).price, h_price_of(3));

	concert_seat_spec one[] = { { 1, 1000, "C" } };
	assert_rc(h->store->seats_add(h->store_ctx, unknown_id(), one, 1), CONCERT_ENOTFOUND);
	list = NULL;
	assert_rc(h->store->seats_list(h->store_ctx, &list, unknown_id(), h_now(h)), CONCERT_ENOTFOUND);
	assert_null(list);
	h_check_audit(h);
}

static void test_seat_versions_and_counts(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 5);
	int32_t seats[] = { 2, 4 };

	int64_t v0 = h_seat(h, v.schedule_id, 2).version;
	int64_t untouched = h_seat(h, v.schedule_id, 1).version;
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	int64_t v1 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v1 > v0);
	assert_true(h_seat(h, v.schedule_id, 4).version > v0);
	assert_counts(h, v.schedule_id, 3, 2, 0);

	assert_ok(h_release(h, user, hold->id, NULL, 0));
	concert_free(hold);
	int64_t v2 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v2 > v1);
	assert_counts(h, v.schedule_id, 5, 0, 0);

	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	int64_t v3 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v3 > v2);
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, NULL));
	int64_t v4 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v4 > v3);
	assert_counts(h, v.schedule_id, 3, 0, 2);

	int32_t third[] = { 3 };
	concert_hold *h3 = NULL;
	assert_ok(h_hold(h, &h3, other, &v, third, 1));
	assert_counts(h, v.schedule_id, 2, 1, 2);

	assert_ok(h_cancel(h, NULL, NULL, user, p->reservation_id));
	int64_t v5 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v5 > v4);
	assert_true(h_seat(h, v.schedule_id, 4).version > v4);
	assert_counts(h, v.schedule_id, 4, 1, 0);
	assert_int_equal(h_seat(h, v.schedule_id, 1).version, untouched);

	concert_free(hold);
	concert_free(h3);
	concert_free(p);
	h_check_audit(h);
}

/* ---- hold_seats ----------------------------------------------------------- */

static void test_hold_success(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	h_make_venue(h, &v, 10);
	int32_t seats[] = { 3, 5, 9 };
	concert_hold *hold = NULL;
	concert_time now = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, N(seats),
			    now + 1234, 10, 10));
	assert_true(hold->id > 0);
	assert_int_equal(hold->schedule_id, v.schedule_id);
	assert_int_equal(hold->concert_id, v.concert_id);
	assert_int_equal(hold->amount, h_amount_of(seats, N(seats)));
	assert_int_equal(hold->created_at, now);
	assert_int_equal(hold->expires_at, now + 1234);
	assert_int_equal(hold->state, CONCERT_HOLD_HELD);
	assert_int_equal(hold->extensions, 0);
	assert_string_equal(hold->user_id, user);
	assert_hold_seats(hold, seats, N(seats));
	assert_states(h, v.schedule_id, seats, N(seats), CONCERT_SEAT_HELD);
	assert_counts(h, v.schedule_id, 7, 3, 0);

	concert_hold *read = NULL;
	assert_ok(h->store->hold_get(h->store_ctx, &read, hold->id, h_now(h)));
	assert_int_equal(read->id, hold->id);
	assert_int_equal(read->amount, hold->amount);
	assert_int_equal(read->expires_at, hold->expires_at);
	assert_int_equal(read->state, CONCERT_HOLD_HELD);
	assert_string_equal(read->user_id, user);
	assert_hold_seats(read, seats, N(seats));
	concert_free(read);
	read = NULL;
	assert_rc(h->store->hold_get(h->store_ctx, &read, unknown_id(), h_now(h)), CONCERT_ENOTFOUND);
	assert_null(read);

	/* A second hold gets another id. */
	int32_t more[] = { 1 };
	concert_hold *second = NULL;
	assert_ok(h_hold(h, &second, user, &v, more, 1));
	assert_true(second->id != hold->id);
	concert_free(second);
	concert_free(hold);

	assert_int_equal(h_reopen(h), h->durable);
	assert_states(h, v.schedule_id, seats, N(seats), CONCERT_SEAT_HELD);
	assert_counts(h, v.schedule_id, 6, 4, 0);
	h_check_audit(h);
}

static void test_hold_conflict(void **state)
{
	harness *h = *state;
	h_venue v;
	char a[H_NAME_SIZE], b[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(b, "user");
	h_make_venue(h, &v, 12);
	int32_t held[] = { 2, 3, 4 };
	int32_t paid[] = { 7 };
	concert_hold *ha = NULL, *hp = NULL;
	assert_ok(h_hold(h, &ha, a, &v, held, N(held)));
	assert_ok(h_charge(h, NULL, a, 1000000, NULL));
	assert_ok(h_hold(h, &hp, a, &v, paid, 1));
	assert_ok(h_pay(h, NULL, a, v.concert_id, hp->id, NULL));

	seat_map before;
	map_read(h, v.schedule_id, &before);
	/* Held and reserved seats both conflict; free ones are not taken. */
	int32_t want[] = { 1, 3, 4, 5, 7, 8 };
	int32_t conflicts[] = { 3, 4, 7 };
	assert_rc(h_hold(h, NULL, b, &v, want, N(want)), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(conflicts, N(conflicts));
	map_unchanged(h, v.schedule_id, &before);
	assert_counts(h, v.schedule_id, 8, 3, 1);

	/* The owner cannot double-hold its own seats either. */
	int32_t own[] = { 4, 6 };
	int32_t own_conflict[] = { 4 };
	assert_rc(h_hold(h, NULL, a, &v, own, N(own)), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(own_conflict, 1);
	map_unchanged(h, v.schedule_id, &before);

	/* The free seats are still holdable. */
	int32_t rest[] = { 1, 5, 8 };
	assert_ok(h_hold(h, NULL, b, &v, rest, N(rest)));
	assert_states(h, v.schedule_id, rest, N(rest), CONCERT_SEAT_HELD);
	concert_free(ha);
	concert_free(hp);
	h_check_audit(h);
}

static void test_hold_not_found(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	h_make_venue(h, &v, 5);
	seat_map before;
	map_read(h, v.schedule_id, &before);
	int32_t seats[] = { 1, 2, 99 };
	assert_rc(h_hold(h, NULL, user, &v, seats, N(seats)), CONCERT_ENOTFOUND);
	map_unchanged(h, v.schedule_id, &before);
	assert_counts(h, v.schedule_id, 5, 0, 0);

	h_venue ghost = v;
	ghost.schedule_id = unknown_id();
	assert_rc(h_hold(h, NULL, user, &ghost, seats, 2), CONCERT_ENOTFOUND);
	/* The failures left no hold counting against the user. */
	assert_ok(h_hold_ex(h, NULL, user, v.concert_id, v.schedule_id, seats, 2,
			    h_now(h) + H_MINUTE, 1, 2));
	h_check_audit(h);
}

static void test_hold_foreign_concert(void **state)
{
	harness *h = *state;
	h_venue v, w;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	h_make_venue(h, &v, 3);
	h_make_venue(h, &w, 3);
	int32_t seats[] = { 1 };
	/* A token for concert w cannot hold seats of v's schedule. */
	assert_rc(h_hold_ex(h, NULL, user, w.concert_id, v.schedule_id, seats, 1,
			    h_now(h) + H_MINUTE, 10, 10), CONCERT_ETOKEN);
	assert_counts(h, v.schedule_id, 3, 0, 0);
	assert_ok(h_hold(h, NULL, user, &v, seats, 1));
	h_check_audit(h);
}

static void test_hold_window(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	concert_time t0 = h_now(h);
	h_make_venue_window(h, &v, 3, t0 + H_HOUR, t0 + 2 * H_HOUR);
	int32_t seats[] = { 1 };
	concert_hold *hold = NULL;

	assert_rc(h_hold(h, NULL, user, &v, seats, 1), CONCERT_ECLOSED);
	h_set_time(h, t0 + H_HOUR - 1);
	assert_rc(h_hold(h, NULL, user, &v, seats, 1), CONCERT_ECLOSED);
	assert_counts(h, v.schedule_id, 3, 0, 0);

	h_set_time(h, t0 + H_HOUR);
	assert_ok(h_hold(h, &hold, user, &v, seats, 1));
	assert_ok(h_release(h, user, hold->id, NULL, 0));
	concert_free(hold);

	h_set_time(h, t0 + 2 * H_HOUR - 1);
	assert_ok(h_hold(h, NULL, user, &v, seats, 1));

	h_set_time(h, t0 + 2 * H_HOUR);
	int32_t other[] = { 2 };
	assert_rc(h_hold(h, NULL, user, &v, other, 1), CONCERT_ECLOSED);
	assert_int_equal(h_seat_state(h, v.schedule_id, 2), CONCERT_SEAT_AVAILABLE);
	h_check_audit(h);
}

static void test_hold_limits(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 20);
	concert_time exp = h_now(h) + H_MINUTE;
	int32_t s1[] = { 1 }, s2[] = { 2 }, s3[] = { 3 }, s34[] = { 3, 4 }, s56[] = { 5, 6 };
	int32_t s5[] = { 5 }, s789[] = { 7, 8, 9 }, s10[] = { 10 }, s1112[] = { 11, 12 };
	concert_hold *h1 = NULL, *h2 = NULL, *h3 = NULL, *h5 = NULL;
#define HOLD(out, seats, user_) \
	h_hold_ex(h, out, user_, v.concert_id, v.schedule_id, seats, N(seats), exp, 2, 3)

	/* At most 2 live holds. */
	assert_ok(HOLD(&h1, s1, user));
	assert_ok(HOLD(&h2, s2, user));
	assert_rc(HOLD(NULL, s3, user), CONCERT_ELIMIT);
	assert_int_equal(h_seat_state(h, v.schedule_id, 3), CONCERT_SEAT_AVAILABLE);
	/* Another user is not affected. */
	assert_ok(HOLD(NULL, s10, other));

	/* A released hold is not live: 1 + 2 = 3 seats is within the limit. */
	assert_ok(h_release(h, user, h1->id, NULL, 0));
	assert_ok(HOLD(&h3, s34, user));
	assert_rc(HOLD(NULL, s5, user), CONCERT_ELIMIT);

	/* At most 3 seats: 2 (hold h3) + 2 is too many, with only 2 holds. */
	assert_ok(h_release(h, user, h2->id, NULL, 0));
	assert_rc(HOLD(NULL, s56, user), CONCERT_ELIMIT);
	assert_int_equal(h_seat_state(h, v.schedule_id, 5), CONCERT_SEAT_AVAILABLE);
	assert_int_equal(h_seat_state(h, v.schedule_id, 6), CONCERT_SEAT_AVAILABLE);
	assert_ok(HOLD(NULL, s5, user));

	/* Expired holds are not live. */
	h_set_time(h, exp);
	exp = h_now(h) + H_MINUTE;
	assert_ok(HOLD(&h5, s789, user));

	/* Nor are paid holds. */
	assert_ok(h_charge(h, NULL, user, 10000000, NULL));
	assert_ok(h_pay(h, NULL, user, v.concert_id, h5->id, NULL));
	assert_ok(HOLD(NULL, s1112, user));
	assert_ok(HOLD(NULL, s3, user));
#undef HOLD
	concert_free(h1);
	concert_free(h2);
	concert_free(h3);
	concert_free(h5);
	h_check_audit(h);
}

static void test_hold_expiry_exact(void **state)
{
	harness *h = *state;
	h_venue v;
	char a[H_NAME_SIZE], b[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(b, "user");
	h_make_venue(h, &v, 4);
	int32_t seats[] = { 1, 2 };
	concert_time t0 = h_now(h);
	concert_hold *ha = NULL, *hb = NULL;
	assert_ok(h_hold_ex(h, &ha, a, v.concert_id, v.schedule_id, seats, 2, t0 + 1000, 10, 10));

	h_set_time(h, t0 + 999);
	assert_int_equal(h_hold_read(h, ha->id).state, CONCERT_HOLD_HELD);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_HELD);
	assert_counts(h, v.schedule_id, 2, 2, 0);
	assert_rc(h_hold(h, NULL, b, &v, seats, 2), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(seats, 2);

	/* At exactly expires_at the hold blocks nobody, on every read. */
	h_set_time(h, t0 + 1000);
	assert_int_equal(h_hold_read(h, ha->id).state, CONCERT_HOLD_EXPIRED);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	assert_counts(h, v.schedule_id, 4, 0, 0);
	assert_ok(h_hold(h, &hb, b, &v, seats, 2));
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_HELD);
	assert_int_equal(h_hold_read(h, ha->id).state, CONCERT_HOLD_EXPIRED);
	assert_int_equal(h_hold_read(h, hb->id).state, CONCERT_HOLD_HELD);

	/* The expired hold can neither be released, extended nor paid. */
	assert_ok(h_charge(h, NULL, a, 1000000, NULL));
	assert_rc(h_release(h, a, ha->id, NULL, 0), CONCERT_EEXPIRED);
	assert_rc(h_extend(h, NULL, a, ha->id, H_MINUTE, H_HOUR, 5), CONCERT_EEXPIRED);
	assert_rc(h_pay(h, NULL, a, v.concert_id, ha->id, NULL), CONCERT_EEXPIRED);
	assert_int_equal(h_balance(h, a), 1000000);
	assert_int_equal(h_hold_read(h, hb->id).state, CONCERT_HOLD_HELD);
	concert_free(ha);
	concert_free(hb);
	h_check_audit(h);
}

/*
 * Threads read the clock before they call the store, so a call may carry an
 * older `now` than one the store has already served. Once a hold's seats
 * went to another hold (because it had expired), a late call with a stale
 * `now` must not revive it: invariant 1 holds for every interleaving.
 */
static void test_stale_now(void **state)
{
	harness *h = *state;
	h_venue v;
	char a[H_NAME_SIZE], b[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(b, "user");
	h_make_venue(h, &v, 4);
	assert_ok(h_charge(h, NULL, a, 1000000, NULL));
	assert_ok(h_charge(h, NULL, b, 1000000, NULL));
	int32_t seats[] = { 1, 2 };
	concert_time t0 = h_now(h);
	concert_hold *ha = NULL, *hb = NULL;
	assert_ok(h_hold_ex(h, &ha, a, v.concert_id, v.schedule_id, seats, 2, t0 + 100, 10, 10));
	/* b takes the seats once a's hold expired ... */
	h_set_time(h, t0 + 150);
	assert_ok(h_hold_ex(h, &hb, b, v.concert_id, v.schedule_id, seats, 1, t0 + 1000, 10, 10));
	/* ... then calls for a's hold arrive stamped before its expiry: none may
	 * revive it (all three outcomes are reported together). */
	h_set_time(h, t0 + 90);
	int extend_rc = h_extend(h, NULL, a, ha->id, 500, 1000, 5);
	int release_rc = h_release(h, a, ha->id, seats, 1);
	int pay_rc = h_pay(h, NULL, a, v.concert_id, ha->id, NULL);
	if (extend_rc == 0 || release_rc == 0 || pay_rc == 0) {
		concert_free(ha);
		concert_free(hb);
		fail_msg("hold whose seats were taken after it expired, called with an earlier now: "
			 "extend %d (%s), release of a taken seat %d (%s), pay %d (%s); 0 revives it",
			 extend_rc, concert_error_name(extend_rc), release_rc,
			 concert_error_name(release_rc), pay_rc, concert_error_name(pay_rc));
	}
	h_set_time(h, t0 + 150);
	assert_int_equal(h_balance(h, a), 1000000);
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_HELD);
	int32_t one[] = { 1 };
	assert_rc(h_hold(h, NULL, a, &v, one, 1), CONCERT_ESEAT_UNAVAILABLE);
	assert_ok(h_pay(h, NULL, b, v.concert_id, hb->id, NULL));
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_RESERVED);
	concert_free(ha);
	concert_free(hb);
	h_check_audit(h);
}

/* ---- hold_release --------------------------------------------------------- */

static void test_release(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 6);
	int32_t seats[] = { 1, 2, 3, 4 };
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, N(seats)));
	int64_t v2 = h_seat(h, v.schedule_id, 2).version;

	/* Partial: the hold keeps the rest and its amount shrinks. */
	int32_t part[] = { 2, 4 };
	int32_t left[] = { 1, 3 };
	assert_ok(h_release(h, user, hold->id, part, N(part)));
	concert_hold *read = NULL;
	assert_ok(h->store->hold_get(h->store_ctx, &read, hold->id, h_now(h)));
	assert_int_equal(read->state, CONCERT_HOLD_HELD);
	assert_int_equal(read->amount, h_amount_of(left, 2));
	assert_hold_seats(read, left, 2);
	concert_free(read);
	assert_states(h, v.schedule_id, part, 2, CONCERT_SEAT_AVAILABLE);
	assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_HELD);
	assert_true(h_seat(h, v.schedule_id, 2).version > v2);
	assert_counts(h, v.schedule_id, 4, 2, 0);
	/* Released seats are holdable by others at once. */
	assert_ok(h_hold(h, NULL, other, &v, part, 1));
	/* What is left is what a payment would take. */
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *rest = NULL;
	concert_payment *p = NULL;
	int32_t five[] = { 5, 6 };
	assert_ok(h_hold(h, &rest, user, &v, five, 2));
	assert_ok(h_release(h, user, rest->id, five, 1));
	assert_ok(h_pay(h, &p, user, v.concert_id, rest->id, NULL));
	assert_int_equal(p->amount, h_price_of(6));
	assert_int_equal(p->seat_count, 1);
	assert_int_equal(p->seat_nos[0], 6);
	assert_int_equal(h_balance(h, user), 1000000 - h_price_of(6));
	assert_int_equal(h_seat_state(h, v.schedule_id, 5), CONCERT_SEAT_AVAILABLE);
	assert_int_equal(h_seat_state(h, v.schedule_id, 6), CONCERT_SEAT_RESERVED);
	concert_free(p);
	concert_free(rest);

	/* Releasing every remaining seat by number ends the hold. */
	assert_ok(h_release(h, user, hold->id, left, 2));
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_RELEASED);
	assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_AVAILABLE);
	concert_free(hold);

	/* count 0 releases all. */
	assert_ok(h_hold(h, &hold, user, &v, left, 2));
	assert_ok(h_release(h, user, hold->id, NULL, 0));
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_RELEASED);
	assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_AVAILABLE);
	assert_counts(h, v.schedule_id, 4, 1, 1);
	concert_free(hold);
	h_check_audit(h);
}

static void test_release_errors(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 6);
	int32_t seats[] = { 1, 2 };
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	seat_map before;
	map_read(h, v.schedule_id, &before);

	assert_rc(h_release(h, other, hold->id, NULL, 0), CONCERT_EFORBIDDEN);
	int32_t stranger[] = { 2, 5 };
	assert_rc(h_release(h, user, hold->id, stranger, 2), CONCERT_EINVAL);
	int32_t missing[] = { 77 };
	assert_rc(h_release(h, user, hold->id, missing, 1), CONCERT_EINVAL);
	assert_rc(h_release(h, user, unknown_id(), NULL, 0), CONCERT_ENOTFOUND);
	map_unchanged(h, v.schedule_id, &before);
	assert_int_equal(h_hold_read(h, hold->id).seat_count, 2);

	assert_ok(h_release(h, user, hold->id, NULL, 0));
	assert_rc(h_release(h, user, hold->id, NULL, 0), CONCERT_ESTATE);
	assert_rc(h_release(h, user, hold->id, seats, 1), CONCERT_ESTATE);
	concert_free(hold);

	concert_time t0 = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 2, t0 + 500, 10, 10));
	h_set_time(h, t0 + 500);
	assert_rc(h_release(h, user, hold->id, NULL, 0), CONCERT_EEXPIRED);
	assert_rc(h_release(h, user, hold->id, seats, 1), CONCERT_EEXPIRED);
	concert_free(hold);
	h_check_audit(h);
}

/* ---- hold_extend ---------------------------------------------------------- */

static void test_extend(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 6);
	const concert_time ttl = 300 * H_SECOND, life = 500 * H_SECOND;
	concert_time t0 = h_now(h);
	int32_t seats[] = { 1, 2 };
	concert_hold *hold = NULL, *ext = NULL;
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 2, t0 + ttl, 10, 10));

	h_set_time(h, t0 + 100 * H_SECOND);
	assert_ok(h_extend(h, &ext, user, hold->id, ttl, life, 2));
	assert_int_equal(ext->id, hold->id);
	assert_int_equal(ext->expires_at, t0 + 400 * H_SECOND);
	assert_int_equal(ext->extensions, 1);
	assert_int_equal(ext->state, CONCERT_HOLD_HELD);
	assert_int_equal(ext->created_at, t0);
	assert_hold_seats(ext, seats, 2);
	concert_free(ext);

	/* Past the original expiry the extended hold still blocks. */
	h_set_time(h, t0 + 350 * H_SECOND);
	assert_rc(h_hold(h, NULL, other, &v, seats, 1), CONCERT_ESEAT_UNAVAILABLE);
	assert_int_equal(h_hold_read(h, hold->id).expires_at, t0 + 400 * H_SECOND);

	/* The lifetime cap bounds the new expiry: min(now + ttl, created + life). */
	h_set_time(h, t0 + 380 * H_SECOND);
	assert_ok(h_extend(h, &ext, user, hold->id, ttl, life, 2));
	assert_int_equal(ext->expires_at, t0 + life);
	assert_int_equal(ext->extensions, 2);
	concert_free(ext);

	/* Errors as release. */
	h_set_time(h, t0 + 450 * H_SECOND);
	assert_rc(h_extend(h, NULL, other, hold->id, ttl, life, 5), CONCERT_EFORBIDDEN);
	assert_rc(h_extend(h, NULL, user, unknown_id(), ttl, life, 5), CONCERT_ENOTFOUND);
	h_set_time(h, t0 + life);
	assert_rc(h_extend(h, NULL, user, hold->id, ttl, life, 5), CONCERT_EEXPIRED);
	concert_free(hold);

	/* Out of extensions, with lifetime to spare. */
	concert_time t2 = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 2, t2 + ttl, 10, 10));
	h_set_time(h, t2 + 10 * H_SECOND);
	assert_ok(h_extend(h, NULL, user, hold->id, ttl, H_HOUR, 1));
	h_set_time(h, t2 + 20 * H_SECOND);
	assert_rc(h_extend(h, NULL, user, hold->id, ttl, H_HOUR, 1), CONCERT_ELIMIT);
	concert_hold cur = h_hold_read(h, hold->id);
	assert_int_equal(cur.expires_at, t2 + 10 * H_SECOND + ttl);
	assert_int_equal(cur.extensions, 1);
	assert_int_equal(cur.state, CONCERT_HOLD_HELD);
	assert_ok(h_release(h, user, hold->id, NULL, 0));
	concert_free(hold);

	/* The lifetime cap that gives no more time is a limit too. */
	concert_time t1 = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 2, t1 + ttl, 10, 10));
	h_set_time(h, t1 + 10 * H_SECOND);
	assert_rc(h_extend(h, NULL, user, hold->id, ttl, ttl, 5), CONCERT_ELIMIT);
	cur = h_hold_read(h, hold->id);
	assert_int_equal(cur.expires_at, t1 + ttl);
	assert_int_equal(cur.extensions, 0);

	assert_ok(h_release(h, user, hold->id, NULL, 0));
	assert_rc(h_extend(h, NULL, user, hold->id, ttl, life, 5), CONCERT_ESTATE);
	concert_free(hold);
	h_check_audit(h);
}

/* ---- wallet ------------------------------------------------------------------ */

static void test_charge(void **state)
{
	harness *h = *state;
	char user[H_NAME_SIZE], other[H_NAME_SIZE], key[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_unique(key, "key");
	int64_t bal = -1;

	assert_int_equal(h_balance(h, user), 0);
	concert_wallet_tx_list *list = NULL;
	assert_ok(h->store->history(h->store_ctx, &list, user, 0, 10));
	assert_int_equal(list->count, 0);
	assert_int_equal(list->next_cursor, 0);
	concert_free(list);

	assert_ok(h_charge(h, &bal, user, 1000, NULL));
	assert_int_equal(bal, 1000);
	h_advance(h, H_SECOND);
	assert_ok(h_charge(h, &bal, user, 500, key));
	assert_int_equal(bal, 1500);

	/* Same key, same amount: the original answer, no second effect. */
	bal = -1;
	assert_ok(h_charge(h, &bal, user, 500, key));
	assert_int_equal(bal, 1500);
	assert_int_equal(h_balance(h, user), 1500);
	assert_int_equal(h_tx_count(h, user), 2);

	/* Same key, another amount: an error and no effect. */
	assert_rc(h_charge(h, NULL, user, 600, key), CONCERT_EIDEMPOTENCY);
	assert_int_equal(h_balance(h, user), 1500);
	assert_int_equal(h_tx_count(h, user), 2);

	/* After another charge the repeat still answers the original balance_after. */
	assert_ok(h_charge(h, &bal, user, 1, NULL));
	assert_int_equal(bal, 1501);
	bal = -1;
	assert_ok(h_charge(h, &bal, user, 500, key));
	assert_int_equal(bal, 1500);
	assert_int_equal(h_balance(h, user), 1501);
	assert_int_equal(h_tx_count(h, user), 3);
	assert_int_equal(h_balance(h, other), 0);

	assert_int_equal(h_reopen(h), h->durable);
	bal = -1;
	assert_ok(h_charge(h, &bal, user, 500, key));
	assert_int_equal(bal, 1500);
	assert_int_equal(h_check_wallet(h, user), 1501);
	assert_int_equal(h_tx_count(h, user), 3);
	h_check_audit(h);
}

static void test_charge_overflow(void **state)
{
	harness *h = *state;
	char user[H_NAME_SIZE], key[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(key, "key");
	int64_t bal = -1;
	assert_ok(h_charge(h, &bal, user, INT64_MAX - 10, NULL));
	assert_int_equal(bal, INT64_MAX - 10);
	assert_rc(h_charge(h, NULL, user, 11, NULL), CONCERT_EOVERFLOW);
	assert_rc(h_charge(h, NULL, user, INT64_MAX, NULL), CONCERT_EOVERFLOW);
	/* A refused charge records nothing, not even its idempotency key. */
	assert_rc(h_charge(h, NULL, user, 11, key), CONCERT_EOVERFLOW);
	assert_int_equal(h_balance(h, user), INT64_MAX - 10);
	assert_int_equal(h_tx_count(h, user), 1);
	assert_ok(h_charge(h, &bal, user, 10, key));
	assert_int_equal(bal, INT64_MAX);
	assert_rc(h_charge(h, NULL, user, 1, NULL), CONCERT_EOVERFLOW);
	assert_int_equal(h_check_wallet(h, user), INT64_MAX);
	h_check_audit(h);
}

static void test_history(void **state)
{
	harness *h = *state;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	concert_time t[7];
	for (int i = 0; i < 7; i++) {
		t[i] = h_advance(h, H_SECOND);
		assert_ok(h_charge(h, NULL, user, i + 1, NULL));
	}
	assert_ok(h_charge(h, NULL, other, 100, NULL));

	concert_wallet_tx_list *all = NULL;
	assert_ok(h->store->history(h->store_ctx, &all, user, 0, 1000));
	assert_int_equal(all->count, 7);
	assert_int_equal(all->next_cursor, 0);
	int64_t after = 28;
	for (size_t i = 0; i < 7; i++) {
		const concert_wallet_tx *tx = &all->items[i];
		assert_int_equal(tx->kind, CONCERT_TX_CHARGE);
		assert_int_equal(tx->amount, 7 - (int64_t)i);
		assert_int_equal(tx->balance_after, after);
		assert_int_equal(tx->ref_id, 0);
		assert_int_equal(tx->created_at, t[6 - i]);
		after -= tx->amount;
		if (i)
			assert_true(tx->id < all->items[i - 1].id);
	}

	/* Pages of 3 concatenate to the whole history. */
	int64_t cursor = 0;
	size_t seen = 0, pages = 0;
	do {
		concert_wallet_tx_list *page = NULL;
		assert_ok(h->store->history(h->store_ctx, &page, user, cursor, 3));
		assert_true(page->count <= 3);
		for (size_t i = 0; i < page->count; i++) {
			assert_true(seen < 7);
			assert_int_equal(page->items[i].id, all->items[seen].id);
			assert_int_equal(page->items[i].amount, all->items[seen].amount);
			seen++;
		}
		if (pages < 2) {
			assert_int_equal(page->count, 3);
			assert_true(page->next_cursor != 0);
		} else {
			assert_int_equal(page->count, 1);
			assert_int_equal(page->next_cursor, 0);
		}
		cursor = page->next_cursor;
		concert_free(page);
		pages++;
	} while (cursor != 0 && pages < 10);
	assert_int_equal(pages, 3);
	assert_int_equal(seen, 7);
	concert_free(all);

	assert_int_equal(h_check_wallet(h, user), 28);
	assert_int_equal(h_check_wallet(h, other), 100);
	h_check_audit(h);
}

/* ---- pay ------------------------------------------------------------------------- */

static void test_pay_success(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 6);
	int32_t seats[] = { 1, 2 };
	const int64_t amount = h_amount_of(seats, 2);
	assert_ok(h_charge(h, NULL, user, 500000, NULL));
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	int64_t held_version = h_seat(h, v.schedule_id, 1).version;

	h_advance(h, 10 * H_SECOND);
	concert_time paid_at = h_now(h);
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, NULL));
	assert_true(p->payment_id > 0);
	assert_true(p->reservation_id > 0);
	assert_int_equal(p->hold_id, hold->id);
	assert_int_equal(p->schedule_id, v.schedule_id);
	assert_int_equal(p->amount, amount);
	assert_int_equal(p->balance, 500000 - amount);
	assert_int_equal(p->created_at, paid_at);
	assert_string_equal(p->user_id, user);
	assert_int_equal(p->seat_count, 2);
	assert_int_equal(p->seat_nos[0], 1);
	assert_int_equal(p->seat_nos[1], 2);

	assert_int_equal(h_balance(h, user), 500000 - amount);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_true(h_seat(h, v.schedule_id, 1).version > held_version);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_PAID);
	assert_counts(h, v.schedule_id, 4, 0, 2);

	concert_reservation *r = NULL;
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->id, p->reservation_id);
	assert_int_equal(r->schedule_id, v.schedule_id);
	assert_int_equal(r->payment_id, p->payment_id);
	assert_int_equal(r->amount, amount);
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	assert_int_equal(r->created_at, paid_at);
	assert_string_equal(r->user_id, user);
	assert_int_equal(r->seat_count, 2);
	assert_int_equal(r->seat_nos[0], 1);
	assert_int_equal(r->seat_nos[1], 2);
	concert_free(r);

	concert_wallet_tx_list *list = NULL;
	assert_ok(h->store->history(h->store_ctx, &list, user, 0, 10));
	assert_int_equal(list->count, 2);
	assert_int_equal(list->items[0].kind, CONCERT_TX_PAYMENT);
	assert_int_equal(list->items[0].amount, -amount);
	assert_int_equal(list->items[0].balance_after, 500000 - amount);
	assert_int_equal(list->items[0].ref_id, p->reservation_id);
	assert_int_equal(list->items[0].created_at, paid_at);
	concert_free(list);

	/* Reserved seats are nobody else's. */
	int32_t want[] = { 2, 3 };
	int32_t conflict[] = { 2 };
	assert_rc(h_hold(h, NULL, other, &v, want, 2), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(conflict, 1);

	/* Paid is forever: long after the hold's expiry the seats stay reserved. */
	h_advance(h, 10 * H_DAY);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_PAID);

	assert_int_equal(h_reopen(h), h->durable);
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	assert_int_equal(r->payment_id, p->payment_id);
	concert_free(r);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_int_equal(h_check_wallet(h, user), 500000 - amount);
	concert_free(p);
	concert_free(hold);
	h_check_audit(h);
}

static void test_pay_funds(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], key[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(key, "key");
	h_make_venue(h, &v, 3);
	int32_t seats[] = { 1 };
	const int64_t amount = h_amount_of(seats, 1);
	assert_ok(h_charge(h, NULL, user, amount - 1, NULL));
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 1));
	seat_map before;
	map_read(h, v.schedule_id, &before);

	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, NULL), CONCERT_EFUNDS);
	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, key), CONCERT_EFUNDS);
	assert_int_equal(h_balance(h, user), amount - 1);
	assert_int_equal(h_tx_count(h, user), 1);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_HELD);
	map_unchanged(h, v.schedule_id, &before);
	assert_counts(h, v.schedule_id, 2, 1, 0);

	/* The hold is still payable, and the failed attempt did not take the key. */
	assert_ok(h_charge(h, NULL, user, 1, NULL));
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, key));
	assert_int_equal(p->balance, 0);
	assert_int_equal(h_check_wallet(h, user), 0);
	assert_states(h, v.schedule_id, seats, 1, CONCERT_SEAT_RESERVED);
	concert_free(p);
	concert_free(hold);
	h_check_audit(h);
}

static void test_pay_expired(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	h_make_venue(h, &v, 3);
	int32_t seats[] = { 2, 3 };
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *hold = NULL;
	concert_time t0 = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 2, t0 + 2000, 10, 10));
	h_set_time(h, t0 + 2000);
	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, NULL), CONCERT_EEXPIRED);
	assert_int_equal(h_balance(h, user), 1000000);
	assert_int_equal(h_tx_count(h, user), 1);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_EXPIRED);
	assert_counts(h, v.schedule_id, 3, 0, 0);
	concert_free(hold);
	h_check_audit(h);
}

static void test_pay_state(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], key[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(key, "key");
	h_make_venue(h, &v, 4);
	int32_t s1[] = { 1 }, s2[] = { 2 };
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *paid = NULL, *released = NULL;
	assert_ok(h_hold(h, &paid, user, &v, s1, 1));
	assert_ok(h_pay(h, NULL, user, v.concert_id, paid->id, NULL));
	int64_t bal = h_balance(h, user);
	size_t txs = h_tx_count(h, user);

	assert_rc(h_pay(h, NULL, user, v.concert_id, paid->id, NULL), CONCERT_ESTATE);
	assert_rc(h_pay(h, NULL, user, v.concert_id, paid->id, key), CONCERT_ESTATE);
	assert_rc(h_release(h, user, paid->id, NULL, 0), CONCERT_ESTATE);
	assert_rc(h_extend(h, NULL, user, paid->id, H_MINUTE, H_HOUR, 5), CONCERT_ESTATE);
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_RESERVED);

	assert_ok(h_hold(h, &released, user, &v, s2, 1));
	assert_ok(h_release(h, user, released->id, NULL, 0));
	assert_rc(h_pay(h, NULL, user, v.concert_id, released->id, NULL), CONCERT_ESTATE);
	assert_int_equal(h_seat_state(h, v.schedule_id, 2), CONCERT_SEAT_AVAILABLE);
	assert_int_equal(h_balance(h, user), bal);
	assert_int_equal(h_tx_count(h, user), txs);

	assert_rc(h_pay(h, NULL, user, v.concert_id, unknown_id(), NULL), CONCERT_ENOTFOUND);
	concert_reservation *r = NULL;
	assert_rc(h->store->reservation_get(h->store_ctx, &r, unknown_id()), CONCERT_ENOTFOUND);
	assert_null(r);
	concert_free(paid);
	concert_free(released);
	h_check_audit(h);
}

static void test_pay_forbidden_and_foreign(void **state)
{
	harness *h = *state;
	h_venue v, w;
	char user[H_NAME_SIZE], thief[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(thief, "user");
	h_make_venue(h, &v, 3);
	h_make_venue(h, &w, 3);
	int32_t seats[] = { 1 };
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	assert_ok(h_charge(h, NULL, thief, 1000000, NULL));
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 1));

	assert_rc(h_pay(h, NULL, thief, v.concert_id, hold->id, NULL), CONCERT_EFORBIDDEN);
	/* A token for another concert. */
	assert_rc(h_pay(h, NULL, user, w.concert_id, hold->id, NULL), CONCERT_ETOKEN);
	assert_int_equal(h_balance(h, user), 1000000);
	assert_int_equal(h_balance(h, thief), 1000000);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_HELD);
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_HELD);

	assert_ok(h_pay(h, NULL, user, v.concert_id, hold->id, NULL));
	concert_free(hold);
	h_check_audit(h);
}

static void test_pay_idempotent(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], key[H_NAME_SIZE], key2[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(key, "key");
	h_unique(key2, "key");
	h_make_venue(h, &v, 6);
	int32_t s1[] = { 1, 3 }, s2[] = { 5 };
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *hold = NULL, *second = NULL;
	concert_time t0 = h_now(h);
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, s1, 2, t0 + H_MINUTE, 10, 10));
	concert_payment *p = NULL, *again = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, key));
	int64_t bal = h_balance(h, user);
	size_t txs = h_tx_count(h, user);

	h_advance(h, H_SECOND);
	assert_ok(h_pay(h, &again, user, v.concert_id, hold->id, key));
	assert_int_equal(again->payment_id, p->payment_id);
	assert_int_equal(again->reservation_id, p->reservation_id);
	assert_int_equal(again->hold_id, p->hold_id);
	assert_int_equal(again->amount, p->amount);
	assert_int_equal(again->balance, p->balance);
	assert_int_equal(again->created_at, p->created_at);
	assert_int_equal(again->seat_count, 2);
	concert_free(again);
	assert_int_equal(h_balance(h, user), bal);
	assert_int_equal(h_tx_count(h, user), txs);

	/* The same key for another hold is refused and changes nothing. */
	assert_ok(h_hold(h, &second, user, &v, s2, 1));
	assert_rc(h_pay(h, NULL, user, v.concert_id, second->id, key), CONCERT_EIDEMPOTENCY);
	assert_int_equal(h_hold_read(h, second->id).state, CONCERT_HOLD_HELD);
	assert_int_equal(h_seat_state(h, v.schedule_id, 5), CONCERT_SEAT_HELD);
	assert_int_equal(h_balance(h, user), bal);

	/* The repeat is answered after the hold's expiry and across a reopen. */
	h_set_time(h, t0 + 2 * H_MINUTE);
	assert_int_equal(h_reopen(h), h->durable);
	assert_ok(h_pay(h, &again, user, v.concert_id, hold->id, key));
	assert_int_equal(again->payment_id, p->payment_id);
	assert_int_equal(again->reservation_id, p->reservation_id);
	concert_free(again);
	assert_int_equal(h_balance(h, user), bal);
	assert_int_equal(h_tx_count(h, user), txs);

	assert_ok(h_pay(h, &again, user, v.concert_id, second->id, key2));
	assert_true(again->payment_id != p->payment_id);
	assert_true(again->reservation_id != p->reservation_id);
	concert_free(again);
	concert_free(second);
	concert_free(hold);
	concert_free(p);
	h_check_wallet(h, user);
	h_check_audit(h);
}

static void test_pay_closed(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	concert_time t0 = h_now(h);
	h_make_venue_window(h, &v, 3, t0 - H_HOUR, t0 + H_MINUTE);
	int32_t seats[] = { 1 };
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *hold = NULL;
	assert_ok(h_hold_ex(h, &hold, user, v.concert_id, v.schedule_id, seats, 1, t0 + H_HOUR, 10, 10));
	h_set_time(h, t0 + H_MINUTE);
	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, NULL), CONCERT_ECLOSED);
	assert_int_equal(h_balance(h, user), 1000000);
	assert_int_equal(h_tx_count(h, user), 1);
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_HELD);
	concert_free(hold);
	h_check_audit(h);
}

/* ---- cancel ------------------------------------------------------------------ */

static void test_cancel(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 5);
	int32_t seats[] = { 2, 3 };
	const int64_t amount = h_amount_of(seats, 2);
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	concert_hold *hold = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, NULL));
	int64_t reserved_version = h_seat(h, v.schedule_id, 2).version;

	assert_rc(h_cancel(h, NULL, NULL, other, p->reservation_id), CONCERT_EFORBIDDEN);
	assert_rc(h_cancel(h, NULL, NULL, user, unknown_id()), CONCERT_ENOTFOUND);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_int_equal(h_balance(h, user), 1000000 - amount);

	h_advance(h, H_MINUTE);
	int64_t refunded = -1, bal = -1;
	assert_ok(h_cancel(h, &refunded, &bal, user, p->reservation_id));
	assert_int_equal(refunded, amount);
	assert_int_equal(bal, 1000000);
	assert_int_equal(h_balance(h, user), 1000000);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	assert_true(h_seat(h, v.schedule_id, 2).version > reserved_version);
	assert_counts(h, v.schedule_id, 5, 0, 0);

	concert_reservation *r = NULL;
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
	assert_int_equal(r->amount, amount);
	assert_int_equal(r->payment_id, p->payment_id);
	concert_free(r);

	concert_wallet_tx_list *list = NULL;
	assert_ok(h->store->history(h->store_ctx, &list, user, 0, 10));
	assert_int_equal(list->count, 3);
	assert_int_equal(list->items[0].kind, CONCERT_TX_REFUND);
	assert_int_equal(list->items[0].amount, amount);
	assert_int_equal(list->items[0].ref_id, p->reservation_id);
	assert_int_equal(list->items[0].balance_after, 1000000);
	concert_free(list);

	/* Once is all: no second refund. */
	assert_rc(h_cancel(h, NULL, NULL, user, p->reservation_id), CONCERT_ESTATE);
	assert_int_equal(h_balance(h, user), 1000000);
	assert_int_equal(h_tx_count(h, user), 3);

	/* The seats are holdable and payable again by someone else. */
	concert_hold *again = NULL;
	assert_ok(h_charge(h, NULL, other, 1000000, NULL));
	assert_ok(h_hold(h, &again, other, &v, seats, 2));
	assert_ok(h_pay(h, NULL, other, v.concert_id, again->id, NULL));
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	/* The old owner cannot cancel the new reservation, nor re-cancel the old. */
	assert_rc(h_cancel(h, NULL, NULL, user, p->reservation_id), CONCERT_ESTATE);
	assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);

	assert_int_equal(h_reopen(h), h->durable);
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
	concert_free(r);
	assert_int_equal(h_check_wallet(h, user), 1000000);
	h_check_wallet(h, other);
	concert_free(again);
	concert_free(hold);
	concert_free(p);
	h_check_audit(h);
}

static void test_cancel_overflow(void **state)
{
	harness *h = *state;
	h_venue v;
	char user[H_NAME_SIZE];
	h_unique(user, "user");
	h_make_venue(h, &v, 3);
	int32_t seats[] = { 1 };
	const int64_t amount = h_amount_of(seats, 1);
	assert_ok(h_charge(h, NULL, user, amount, NULL));
	concert_hold *hold = NULL;
	concert_payment *p = NULL;
	assert_ok(h_hold(h, &hold, user, &v, seats, 1));
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, NULL));
	assert_ok(h_charge(h, NULL, user, INT64_MAX - amount + 1, NULL));
	/* The refund would overflow the balance: refused, nothing changed.
	 * (No audit here: the store's totals themselves exceed int64.) */
	assert_rc(h_cancel(h, NULL, NULL, user, p->reservation_id), CONCERT_EOVERFLOW);
	assert_int_equal(h_balance(h, user), INT64_MAX - amount + 1);
	assert_int_equal(h_tx_count(h, user), 3);
	assert_int_equal(h_seat_state(h, v.schedule_id, 1), CONCERT_SEAT_RESERVED);
	concert_reservation *r = NULL;
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	concert_free(r);
	concert_free(hold);
	concert_free(p);
}

/* ---- sweep ------------------------------------------------------------------- */

static void test_sweep(void **state)
{
	harness *h = *state;
	if (!h->store->sweep) {
		/* Optional method: nothing to conform to. */
		print_message("store backend '%s' has no sweep\n", h->store->scheme);
		return;
	}
	h_venue v;
	char user[H_NAME_SIZE], other[H_NAME_SIZE];
	h_unique(user, "user");
	h_unique(other, "user");
	h_make_venue(h, &v, 6);
	concert_time t0 = h_now(h);
	int32_t s12[] = { 1, 2 }, s3[] = { 3 }, s4[] = { 4 }, s5[] = { 5 };
	concert_hold *short_hold = NULL, *long_hold = NULL, *released = NULL, *paid = NULL;
	concert_payment *payment = NULL, *again = NULL;
	char key[H_NAME_SIZE];
	h_unique(key, "key");
	assert_ok(h_charge(h, NULL, other, 1000000, NULL));
	assert_ok(h_hold_ex(h, &paid, other, v.concert_id, v.schedule_id, s5, 1, t0 + 1000, 10, 10));
	assert_ok(h_pay(h, &payment, other, v.concert_id, paid->id, key));
	assert_ok(h_hold_ex(h, &short_hold, user, v.concert_id, v.schedule_id, s12, 2, t0 + 1000, 10, 10));
	assert_ok(h_hold_ex(h, &long_hold, user, v.concert_id, v.schedule_id, s3, 1, t0 + 5000, 10, 10));
	assert_ok(h_hold_ex(h, &released, user, v.concert_id, v.schedule_id, s4, 1, t0 + 5000, 10, 10));
	assert_ok(h_release(h, user, released->id, NULL, 0));

	uint64_t swept = 0;
	h_set_time(h, t0 + 999);
	assert_ok(h->store->sweep(h->store_ctx, h_now(h), &swept));
	assert_states(h, v.schedule_id, s12, 2, CONCERT_SEAT_HELD);
	assert_int_equal(h_hold_read(h, short_hold->id).state, CONCERT_HOLD_HELD);

	h_set_time(h, t0 + 1000);
	swept = 0;
	assert_ok(h->store->sweep(h->store_ctx, h_now(h), &swept));
	assert_true(swept >= 1);
	assert_states(h, v.schedule_id, s12, 2, CONCERT_SEAT_AVAILABLE);
	assert_states(h, v.schedule_id, s3, 1, CONCERT_SEAT_HELD);
	assert_counts(h, v.schedule_id, 4, 1, 1);
	/* Paid is not expired: the sweep keeps what the engine relies on to
	 * answer an idempotent repeat (lib/core/payment.c reads the PAID hold),
	 * and the seat stays reserved. */
	assert_states(h, v.schedule_id, s5, 1, CONCERT_SEAT_RESERVED);
	assert_ok(h_pay(h, &again, other, v.concert_id, paid->id, key));
	assert_int_equal(again->payment_id, payment->payment_id);
	assert_int_equal(again->reservation_id, payment->reservation_id);
	concert_free(again);
	assert_int_equal(h_hold_read(h, paid->id).state, CONCERT_HOLD_PAID);
	/* A swept hold is gone or reads EXPIRED; it is never payable. */
	concert_hold *gone = NULL;
	concert_error_clear();
	int rc = h->store->hold_get(h->store_ctx, &gone, short_hold->id, h_now(h));
	if (rc == 0)
		assert_int_equal(gone->state, CONCERT_HOLD_EXPIRED);
	else
		assert_int_equal(rc, CONCERT_ENOTFOUND);
	concert_free(gone);
	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	rc = h_pay(h, NULL, user, v.concert_id, short_hold->id, NULL);
	assert_true(rc == CONCERT_EEXPIRED || rc == CONCERT_ENOTFOUND);
	assert_int_equal(h_balance(h, user), 1000000);

	/* The live hold survived the sweep and is payable. */
	assert_int_equal(h_hold_read(h, long_hold->id).state, CONCERT_HOLD_HELD);
	assert_ok(h_pay(h, NULL, user, v.concert_id, long_hold->id, NULL));
	assert_ok(h_hold(h, NULL, other, &v, s12, 2));
	concert_free(short_hold);
	concert_free(long_hold);
	concert_free(released);
	concert_free(paid);
	concert_free(payment);
	h_check_audit(h);
}

/* ---- audit ------------------------------------------------------------------ */

static concert_audit audit_now(harness *h)
{
	concert_audit *a = NULL;
	assert_ok(h->store->audit(h->store_ctx, &a));
	assert_non_null(a);
	concert_audit copy = *a;
	concert_free(a);
	return copy;
}

/*
 * The audit itself must count: an audit of zeros would pass every invariant.
 * Deltas around a known scenario (the suite runs alone on its database).
 */
static void test_audit_totals(void **state)
{
	harness *h = *state;
	h_venue v;
	char a[H_NAME_SIZE], b[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(b, "user");
	h_make_venue(h, &v, 6);
	concert_audit before = audit_now(h);

	int32_t s1[] = { 1, 2 }, s2[] = { 3 }, s3[] = { 4 };
	concert_hold *h1 = NULL, *h2 = NULL, *h3 = NULL;
	concert_payment *p2 = NULL;
	assert_ok(h_charge(h, NULL, a, 500000, NULL));
	assert_ok(h_charge(h, NULL, b, 300000, NULL));
	assert_ok(h_charge(h, NULL, b, 7, NULL));
	assert_ok(h_hold(h, &h1, a, &v, s1, 2));
	assert_ok(h_pay(h, NULL, a, v.concert_id, h1->id, NULL));
	assert_ok(h_hold(h, &h2, b, &v, s2, 1));
	assert_ok(h_pay(h, &p2, b, v.concert_id, h2->id, NULL));
	assert_ok(h_cancel(h, NULL, NULL, b, p2->reservation_id));
	assert_ok(h_hold(h, &h3, b, &v, s3, 1));   /* held only: no money moves */
	const int64_t paid = h_amount_of(s1, 2) + h_amount_of(s2, 1);
	const int64_t refunded = h_amount_of(s2, 1);

	concert_audit after = audit_now(h);
	assert_int_equal(after.total_charges - before.total_charges, 800007);
	assert_int_equal(after.total_payments - before.total_payments, paid);
	assert_int_equal(after.total_refunds - before.total_refunds, refunded);
	assert_int_equal(after.total_balance - before.total_balance, 800007 - paid + refunded);
	assert_int_equal(after.wallets - before.wallets, 2);
	assert_int_equal(after.reserved_seats - before.reserved_seats, 2);
	assert_int_equal(after.reservations - before.reservations, 1);
	assert_int_equal(after.wallet_mismatches, 0);
	assert_int_equal(after.seat_mismatches, 0);
	assert_int_equal(after.payment_mismatches, 0);
	concert_free(h1);
	concert_free(h2);
	concert_free(h3);
	concert_free(p2);
	h_check_audit(h);
}

/* ---- durability (a no-op reopen for ephemeral stores) ---------------------- */

static void test_reopen_keeps_everything(void **state)
{
	harness *h = *state;
	h_venue v;
	char a[H_NAME_SIZE], b[H_NAME_SIZE], key[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(b, "user");
	h_unique(key, "key");
	h_make_venue(h, &v, 8);
	int32_t s1[] = { 1, 2 }, s2[] = { 3 }, s3[] = { 4, 5 };
	concert_hold *h1 = NULL, *h2 = NULL, *h3 = NULL;
	concert_payment *p1 = NULL, *p2 = NULL;
	assert_ok(h_charge(h, NULL, a, 700000, key));
	assert_ok(h_charge(h, NULL, b, 300000, NULL));
	assert_ok(h_hold(h, &h1, a, &v, s1, 2));
	assert_ok(h_pay(h, &p1, a, v.concert_id, h1->id, NULL));
	assert_ok(h_hold(h, &h2, b, &v, s2, 1));
	assert_ok(h_pay(h, &p2, b, v.concert_id, h2->id, NULL));
	assert_ok(h_cancel(h, NULL, NULL, b, p2->reservation_id));
	assert_ok(h_hold(h, &h3, a, &v, s3, 2));
	int32_t part[] = { 5 };
	assert_ok(h_release(h, a, h3->id, part, 1));
	h_advance(h, H_MINUTE);
	assert_ok(h_extend(h, NULL, a, h3->id, H_HOLD_TTL, H_HOUR, 3));
	int64_t bal_a = h_balance(h, a), bal_b = h_balance(h, b);
	concert_schedule counts = h_schedule(h, v.schedule_id);
	concert_hold live = h_hold_read(h, h3->id);

	assert_int_equal(h_reopen(h), h->durable);
	assert_int_equal(h_reopen(h), h->durable);

	assert_int_equal(h_check_wallet(h, a), bal_a);
	assert_int_equal(h_check_wallet(h, b), bal_b);
	int64_t bal = -1;
	assert_ok(h_charge(h, &bal, a, 700000, key));
	assert_int_equal(bal, 700000);
	assert_int_equal(h_balance(h, a), bal_a);
	concert_schedule now_counts = h_schedule(h, v.schedule_id);
	assert_int_equal(now_counts.available_seats, counts.available_seats);
	assert_int_equal(now_counts.held_seats, counts.held_seats);
	assert_int_equal(now_counts.reserved_seats, counts.reserved_seats);
	assert_states(h, v.schedule_id, s1, 2, CONCERT_SEAT_RESERVED);
	assert_states(h, v.schedule_id, s2, 1, CONCERT_SEAT_AVAILABLE);
	int32_t four[] = { 4 };
	assert_states(h, v.schedule_id, four, 1, CONCERT_SEAT_HELD);
	assert_states(h, v.schedule_id, part, 1, CONCERT_SEAT_AVAILABLE);
	concert_hold again = h_hold_read(h, h3->id);
	assert_int_equal(again.expires_at, live.expires_at);
	assert_int_equal(again.extensions, 1);
	assert_int_equal(again.amount, h_price_of(4));
	assert_int_equal(h_hold_read(h, h1->id).state, CONCERT_HOLD_PAID);
	concert_reservation *r = NULL;
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p2->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
	concert_free(r);

	/* New ids never reuse old ones. */
	concert_hold *h4 = NULL;
	assert_ok(h_hold(h, &h4, b, &v, s2, 1));
	assert_true(h4->id != h1->id && h4->id != h2->id && h4->id != h3->id);
	concert_payment *p3 = NULL;
	assert_ok(h_pay(h, &p3, b, v.concert_id, h4->id, NULL));
	assert_true(p3->payment_id != p1->payment_id && p3->payment_id != p2->payment_id);
	assert_true(p3->reservation_id != p1->reservation_id &&
		    p3->reservation_id != p2->reservation_id);
	concert_free(h1);
	concert_free(h2);
	concert_free(h3);
	concert_free(h4);
	concert_free(p1);
	concert_free(p2);
	concert_free(p3);
	h_check_audit(h);
}

static void test_compact(void **state)
{
	harness *h = *state;
	if (!h->store->compact) {
		print_message("store backend '%s' has no compact\n", h->store->scheme);
		return;
	}
	h_venue v;
	char a[H_NAME_SIZE], key[H_NAME_SIZE], pay_key[H_NAME_SIZE];
	h_unique(a, "user");
	h_unique(key, "key");
	h_unique(pay_key, "key");
	h_make_venue(h, &v, 10);
	int32_t s1[] = { 1, 2 }, s2[] = { 3 }, s3[] = { 4 };
	concert_hold *h1 = NULL, *h2 = NULL, *h3 = NULL;
	concert_payment *p1 = NULL, *p2 = NULL, *again = NULL;
	assert_ok(h_charge(h, NULL, a, 900000, key));
	assert_ok(h_hold(h, &h1, a, &v, s1, 2));
	assert_ok(h_pay(h, &p1, a, v.concert_id, h1->id, pay_key));
	assert_ok(h_hold(h, &h2, a, &v, s2, 1));
	assert_ok(h_pay(h, &p2, a, v.concert_id, h2->id, NULL));
	assert_ok(h_cancel(h, NULL, NULL, a, p2->reservation_id));
	assert_ok(h_hold(h, &h3, a, &v, s3, 1));
	int64_t bal = h_balance(h, a);
	size_t txs = h_tx_count(h, a);

	/* Compaction changes nothing visible, now and after a reopen, and the
	 * idempotency keys it carried still answer. */
	for (int round = 0; round < 2; round++) {
		assert_ok(h->store->compact(h->store_ctx));
		if (round)
			assert_int_equal(h_reopen(h), h->durable);
		assert_int_equal(h_check_wallet(h, a), bal);
		assert_int_equal(h_tx_count(h, a), txs);
		int64_t repeat = -1;
		assert_ok(h_charge(h, &repeat, a, 900000, key));
		assert_int_equal(repeat, 900000);
		assert_ok(h_pay(h, &again, a, v.concert_id, h1->id, pay_key));
		assert_int_equal(again->payment_id, p1->payment_id);
		concert_free(again);
		assert_states(h, v.schedule_id, s1, 2, CONCERT_SEAT_RESERVED);
		assert_states(h, v.schedule_id, s2, 1, CONCERT_SEAT_AVAILABLE);
		assert_states(h, v.schedule_id, s3, 1, CONCERT_SEAT_HELD);
		assert_int_equal(h_hold_read(h, h3->id).state, CONCERT_HOLD_HELD);
		concert_reservation *r = NULL;
		assert_ok(h->store->reservation_get(h->store_ctx, &r, p2->reservation_id));
		assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
		concert_free(r);
		assert_counts(h, v.schedule_id, 7, 1, 2);
		h_check_audit(h);
	}
	/* Writes after compaction survive a reopen too, with fresh ids. */
	concert_hold *h4 = NULL;
	assert_ok(h_hold(h, &h4, a, &v, s2, 1));
	assert_true(h4->id != h1->id && h4->id != h2->id && h4->id != h3->id);
	assert_ok(h_pay(h, &again, a, v.concert_id, h3->id, NULL));
	assert_true(again->reservation_id != p1->reservation_id &&
		    again->reservation_id != p2->reservation_id);
	int64_t reservation = again->reservation_id;
	concert_free(again);
	assert_int_equal(h_reopen(h), h->durable);
	concert_reservation *r = NULL;
	assert_ok(h->store->reservation_get(h->store_ctx, &r, reservation));
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	concert_free(r);
	assert_int_equal(h_hold_read(h, h4->id).state, CONCERT_HOLD_HELD);
	assert_counts(h, v.schedule_id, 6, 1, 3);
	concert_free(h1);
	concert_free(h2);
	concert_free(h3);
	concert_free(h4);
	concert_free(p1);
	concert_free(p2);
	h_check_wallet(h, a);
	h_check_audit(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, h_setup_store, h_teardown)

int main(void)
{
	h_apply_filters();
	const struct CMUnitTest tests[] = {
		T(test_concerts),
		T(test_schedules),
		T(test_seats_add_and_list),
		T(test_seat_versions_and_counts),
		T(test_hold_success),
		T(test_hold_conflict),
		T(test_hold_not_found),
		T(test_hold_foreign_concert),
		T(test_hold_window),
		T(test_hold_limits),
		T(test_hold_expiry_exact),
		T(test_stale_now),
		T(test_release),
		T(test_release_errors),
		T(test_extend),
		T(test_charge),
		T(test_charge_overflow),
		T(test_history),
		T(test_pay_success),
		T(test_pay_funds),
		T(test_pay_expired),
		T(test_pay_state),
		T(test_pay_forbidden_and_foreign),
		T(test_pay_idempotent),
		T(test_pay_closed),
		T(test_cancel),
		T(test_cancel_overflow),
		T(test_sweep),
		T(test_audit_totals),
		T(test_reopen_keeps_everything),
		T(test_compact),
	};
	return cmocka_run_group_tests_name("conformance.store", tests, NULL, NULL);
}

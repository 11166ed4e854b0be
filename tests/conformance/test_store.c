/*
 * Store backend conformance, part 1: the catalog and seat holds (hold_seats,
 * hold_release, hold_extend, hold_get), their success and each error their
 * contract names (include/concert/sys/store.h and the public headers),
 * through the vtable of the backend named by CONCERT_TEST_STORE. Money,
 * sweep, audit and durability are in test_store_money.c. Every scenario ends
 * with the audit invariants.
 */
#include <stdint.h>

#include "conformance/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

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
	assert_rc(h->store->concert_get(h->store_ctx, &c, h_unknown_id()), CONCERT_ENOTFOUND);
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
	assert_rc(h->store->schedule_add(h->store_ctx, &none, h_unknown_id(), now, venue),
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
	assert_rc(h->store->schedules_list(h->store_ctx, &list, h_unknown_id(), now), CONCERT_ENOTFOUND);
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
	assert_rc(h->store->schedule_get(h->store_ctx, &s, h_unknown_id(), now), CONCERT_ENOTFOUND);
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
	h_assert_counts(h, v.schedule_id, 6, 0, 0);

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
	h_seat_map before;
	h_map_read(h, v.schedule_id, &before);
	concert_seat_spec dup[] = { { 30, 1000, "C" }, { 3, 1000, "C" }, { 31, 1000, "C" } };
	assert_rc(h->store->seats_add(h->store_ctx, v.schedule_id, dup, N(dup)), CONCERT_EEXISTS);
	h_map_unchanged(h, v.schedule_id, &before);
	h_assert_counts(h, v.schedule_id, 8, 0, 0);
	assert_int_equal(h_seat(h, v.schedule_id, 3).price, h_price_of(3));

	concert_seat_spec one[] = { { 1, 1000, "C" } };
	assert_rc(h->store->seats_add(h->store_ctx, h_unknown_id(), one, 1), CONCERT_ENOTFOUND);
	list = NULL;
	assert_rc(h->store->seats_list(h->store_ctx, &list, h_unknown_id(), h_now(h)), CONCERT_ENOTFOUND);
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
	h_assert_counts(h, v.schedule_id, 3, 2, 0);

	assert_ok(h_release(h, user, hold->id, NULL, 0));
	concert_free(hold);
	int64_t v2 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v2 > v1);
	h_assert_counts(h, v.schedule_id, 5, 0, 0);

	assert_ok(h_charge(h, NULL, user, 1000000, NULL));
	assert_ok(h_hold(h, &hold, user, &v, seats, 2));
	int64_t v3 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v3 > v2);
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, NULL));
	int64_t v4 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v4 > v3);
	h_assert_counts(h, v.schedule_id, 3, 0, 2);

	int32_t third[] = { 3 };
	concert_hold *h3 = NULL;
	assert_ok(h_hold(h, &h3, other, &v, third, 1));
	h_assert_counts(h, v.schedule_id, 2, 1, 2);

	assert_ok(h_cancel(h, NULL, NULL, user, p->reservation_id));
	int64_t v5 = h_seat(h, v.schedule_id, 2).version;
	assert_true(v5 > v4);
	assert_true(h_seat(h, v.schedule_id, 4).version > v4);
	h_assert_counts(h, v.schedule_id, 4, 1, 0);
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
	h_assert_hold_seats(hold, seats, N(seats));
	h_assert_states(h, v.schedule_id, seats, N(seats), CONCERT_SEAT_HELD);
	h_assert_counts(h, v.schedule_id, 7, 3, 0);

	concert_hold *read = NULL;
	assert_ok(h->store->hold_get(h->store_ctx, &read, hold->id, h_now(h)));
	assert_int_equal(read->id, hold->id);
	assert_int_equal(read->amount, hold->amount);
	assert_int_equal(read->expires_at, hold->expires_at);
	assert_int_equal(read->state, CONCERT_HOLD_HELD);
	assert_string_equal(read->user_id, user);
	h_assert_hold_seats(read, seats, N(seats));
	concert_free(read);
	read = NULL;
	assert_rc(h->store->hold_get(h->store_ctx, &read, h_unknown_id(), h_now(h)), CONCERT_ENOTFOUND);
	assert_null(read);

	/* A second hold gets another id. */
	int32_t more[] = { 1 };
	concert_hold *second = NULL;
	assert_ok(h_hold(h, &second, user, &v, more, 1));
	assert_true(second->id != hold->id);
	concert_free(second);
	concert_free(hold);

	assert_int_equal(h_reopen(h), h->durable);
	h_assert_states(h, v.schedule_id, seats, N(seats), CONCERT_SEAT_HELD);
	h_assert_counts(h, v.schedule_id, 6, 4, 0);
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

	h_seat_map before;
	h_map_read(h, v.schedule_id, &before);
	/* Held and reserved seats both conflict; free ones are not taken. */
	int32_t want[] = { 1, 3, 4, 5, 7, 8 };
	int32_t conflicts[] = { 3, 4, 7 };
	assert_rc(h_hold(h, NULL, b, &v, want, N(want)), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(conflicts, N(conflicts));
	h_map_unchanged(h, v.schedule_id, &before);
	h_assert_counts(h, v.schedule_id, 8, 3, 1);

	/* The owner cannot double-hold its own seats either. */
	int32_t own[] = { 4, 6 };
	int32_t own_conflict[] = { 4 };
	assert_rc(h_hold(h, NULL, a, &v, own, N(own)), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(own_conflict, 1);
	h_map_unchanged(h, v.schedule_id, &before);

	/* The free seats are still holdable. */
	int32_t rest[] = { 1, 5, 8 };
	assert_ok(h_hold(h, NULL, b, &v, rest, N(rest)));
	h_assert_states(h, v.schedule_id, rest, N(rest), CONCERT_SEAT_HELD);
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
	h_seat_map before;
	h_map_read(h, v.schedule_id, &before);
	int32_t seats[] = { 1, 2, 99 };
	assert_rc(h_hold(h, NULL, user, &v, seats, N(seats)), CONCERT_ENOTFOUND);
	h_map_unchanged(h, v.schedule_id, &before);
	h_assert_counts(h, v.schedule_id, 5, 0, 0);

	h_venue ghost = v;
	ghost.schedule_id = h_unknown_id();
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
	h_assert_counts(h, v.schedule_id, 3, 0, 0);
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
	h_assert_counts(h, v.schedule_id, 3, 0, 0);

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
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_HELD);
	h_assert_counts(h, v.schedule_id, 2, 2, 0);
	assert_rc(h_hold(h, NULL, b, &v, seats, 2), CONCERT_ESEAT_UNAVAILABLE);
	h_assert_conflicts(seats, 2);

	/* At exactly expires_at the hold blocks nobody, on every read. */
	h_set_time(h, t0 + 1000);
	assert_int_equal(h_hold_read(h, ha->id).state, CONCERT_HOLD_EXPIRED);
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	h_assert_counts(h, v.schedule_id, 4, 0, 0);
	concert_schedule_list *list = NULL;
	assert_ok(h->store->schedules_list(h->store_ctx, &list, v.concert_id, h_now(h)));
	assert_int_equal(list->count, 1);
	assert_int_equal(list->items[0].available_seats, 4);
	assert_int_equal(list->items[0].held_seats, 0);
	concert_free(list);
	assert_ok(h_hold(h, &hb, b, &v, seats, 2));
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_HELD);
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
	h_assert_hold_seats(read, left, 2);
	concert_free(read);
	h_assert_states(h, v.schedule_id, part, 2, CONCERT_SEAT_AVAILABLE);
	h_assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_HELD);
	assert_true(h_seat(h, v.schedule_id, 2).version > v2);
	h_assert_counts(h, v.schedule_id, 4, 2, 0);
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
	h_assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_AVAILABLE);
	concert_free(hold);

	/* count 0 releases all. */
	assert_ok(h_hold(h, &hold, user, &v, left, 2));
	assert_ok(h_release(h, user, hold->id, NULL, 0));
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_RELEASED);
	h_assert_states(h, v.schedule_id, left, 2, CONCERT_SEAT_AVAILABLE);
	h_assert_counts(h, v.schedule_id, 4, 1, 1);
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
	h_seat_map before;
	h_map_read(h, v.schedule_id, &before);

	assert_rc(h_release(h, other, hold->id, NULL, 0), CONCERT_EFORBIDDEN);
	int32_t stranger[] = { 2, 5 };
	assert_rc(h_release(h, user, hold->id, stranger, 2), CONCERT_EINVAL);
	int32_t missing[] = { 77 };
	assert_rc(h_release(h, user, hold->id, missing, 1), CONCERT_EINVAL);
	assert_rc(h_release(h, user, h_unknown_id(), NULL, 0), CONCERT_ENOTFOUND);
	h_map_unchanged(h, v.schedule_id, &before);
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
	h_assert_hold_seats(ext, seats, 2);
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
	assert_rc(h_extend(h, NULL, user, h_unknown_id(), ttl, life, 5), CONCERT_ENOTFOUND);
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
	};
	return cmocka_run_group_tests_name("conformance.store", tests, NULL, NULL);
}

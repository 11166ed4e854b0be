/*
 * Store backend conformance, part 2: wallets (charge, balance, history),
 * pay, cancel, reservation_get, sweep, audit, and what survives a reopen and
 * a compaction, through the vtable of the backend named by
 * CONCERT_TEST_STORE. Catalog and holds are in test_store.c. Every scenario
 * ends with the audit invariants.
 */
#include <stdint.h>

#include "conformance/harness.h"

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
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_true(h_seat(h, v.schedule_id, 1).version > held_version);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_PAID);
	h_assert_counts(h, v.schedule_id, 4, 0, 2);

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
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_PAID);

	assert_int_equal(h_reopen(h), h->durable);
	assert_ok(h->store->reservation_get(h->store_ctx, &r, p->reservation_id));
	assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
	assert_int_equal(r->payment_id, p->payment_id);
	concert_free(r);
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
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
	h_seat_map before;
	h_map_read(h, v.schedule_id, &before);

	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, NULL), CONCERT_EFUNDS);
	assert_rc(h_pay(h, NULL, user, v.concert_id, hold->id, key), CONCERT_EFUNDS);
	assert_int_equal(h_balance(h, user), amount - 1);
	assert_int_equal(h_tx_count(h, user), 1);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_HELD);
	h_map_unchanged(h, v.schedule_id, &before);
	h_assert_counts(h, v.schedule_id, 2, 1, 0);

	/* The hold is still payable, and the failed attempt did not take the key. */
	assert_ok(h_charge(h, NULL, user, 1, NULL));
	concert_payment *p = NULL;
	assert_ok(h_pay(h, &p, user, v.concert_id, hold->id, key));
	assert_int_equal(p->balance, 0);
	assert_int_equal(h_check_wallet(h, user), 0);
	h_assert_states(h, v.schedule_id, seats, 1, CONCERT_SEAT_RESERVED);
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
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	assert_int_equal(h_hold_read(h, hold->id).state, CONCERT_HOLD_EXPIRED);
	h_assert_counts(h, v.schedule_id, 3, 0, 0);
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

	assert_rc(h_pay(h, NULL, user, v.concert_id, h_unknown_id(), NULL), CONCERT_ENOTFOUND);
	concert_reservation *r = NULL;
	assert_rc(h->store->reservation_get(h->store_ctx, &r, h_unknown_id()), CONCERT_ENOTFOUND);
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
	assert_rc(h_cancel(h, NULL, NULL, user, h_unknown_id()), CONCERT_ENOTFOUND);
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	assert_int_equal(h_balance(h, user), 1000000 - amount);

	h_advance(h, H_MINUTE);
	int64_t refunded = -1, bal = -1;
	assert_ok(h_cancel(h, &refunded, &bal, user, p->reservation_id));
	assert_int_equal(refunded, amount);
	assert_int_equal(bal, 1000000);
	assert_int_equal(h_balance(h, user), 1000000);
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_AVAILABLE);
	assert_true(h_seat(h, v.schedule_id, 2).version > reserved_version);
	h_assert_counts(h, v.schedule_id, 5, 0, 0);

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
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);
	/* The old owner cannot cancel the new reservation, nor re-cancel the old. */
	assert_rc(h_cancel(h, NULL, NULL, user, p->reservation_id), CONCERT_ESTATE);
	h_assert_states(h, v.schedule_id, seats, 2, CONCERT_SEAT_RESERVED);

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
	h_assert_states(h, v.schedule_id, s12, 2, CONCERT_SEAT_HELD);
	assert_int_equal(h_hold_read(h, short_hold->id).state, CONCERT_HOLD_HELD);

	h_set_time(h, t0 + 1000);
	swept = 0;
	assert_ok(h->store->sweep(h->store_ctx, h_now(h), &swept));
	assert_true(swept >= 1);
	h_assert_states(h, v.schedule_id, s12, 2, CONCERT_SEAT_AVAILABLE);
	h_assert_states(h, v.schedule_id, s3, 1, CONCERT_SEAT_HELD);
	h_assert_counts(h, v.schedule_id, 4, 1, 1);
	/* Paid is not expired: the sweep keeps what the engine relies on to
	 * answer an idempotent repeat (lib/core/payment.c reads the PAID hold),
	 * and the seat stays reserved. */
	h_assert_states(h, v.schedule_id, s5, 1, CONCERT_SEAT_RESERVED);
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
	h_assert_states(h, v.schedule_id, s1, 2, CONCERT_SEAT_RESERVED);
	h_assert_states(h, v.schedule_id, s2, 1, CONCERT_SEAT_AVAILABLE);
	int32_t four[] = { 4 };
	h_assert_states(h, v.schedule_id, four, 1, CONCERT_SEAT_HELD);
	h_assert_states(h, v.schedule_id, part, 1, CONCERT_SEAT_AVAILABLE);
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
		h_assert_states(h, v.schedule_id, s1, 2, CONCERT_SEAT_RESERVED);
		h_assert_states(h, v.schedule_id, s2, 1, CONCERT_SEAT_AVAILABLE);
		h_assert_states(h, v.schedule_id, s3, 1, CONCERT_SEAT_HELD);
		assert_int_equal(h_hold_read(h, h3->id).state, CONCERT_HOLD_HELD);
		concert_reservation *r = NULL;
		assert_ok(h->store->reservation_get(h->store_ctx, &r, p2->reservation_id));
		assert_int_equal(r->state, CONCERT_RESERVATION_CANCELLED);
		concert_free(r);
		h_assert_counts(h, v.schedule_id, 7, 1, 2);
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
	h_assert_counts(h, v.schedule_id, 6, 1, 3);
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
	return cmocka_run_group_tests_name("conformance.store_money", tests, NULL, NULL);
}

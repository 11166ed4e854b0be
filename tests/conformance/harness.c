/*
 * Backend conformance harness (see harness.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conformance/harness.h"
#include "tmpdir.h"

/* Generous limits for tests that are not about limits. */
#define H_MAX_HOLDS 1000
#define H_MAX_SEATS 100000

static concert_time h_clock(void *ctx)
{
	return atomic_load((_Atomic int64_t *)ctx);
}

static void h_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

/* "<random hex>": distinguishes this run's rows in a shared database. */
static char run_prefix[17];
static _Atomic uint64_t unique_counter;

static void init_run_prefix(void)
{
	uint64_t r = 0;
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (fd >= 0)
		close(fd);
	snprintf(run_prefix, sizeof(run_prefix), "%016llx", (unsigned long long)r);
}

static void make_run_prefix(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_run_prefix);
}

const char *h_unique(char *buf, const char *tag)
{
	make_run_prefix();
	uint64_t n = atomic_fetch_add(&unique_counter, 1) + 1;
	snprintf(buf, H_NAME_SIZE, "t%.12s-%s%llu", run_prefix, tag, (unsigned long long)n);
	return buf;
}

int64_t h_unique_id(void)
{
	make_run_prefix();
	uint64_t base = strtoull(run_prefix, NULL, 16) & 0x3fffffffULL;
	uint64_t n = atomic_fetch_add(&unique_counter, 1) + 1;
	return (int64_t)((base << 24) + n);
}

/* "memory:TMP[?query]" -> "memory:<dir>[?query]"; anything else unchanged. */
static void substitute(harness *h, char *out, const char *uri)
{
	static const char tmp[] = "memory:TMP";
	size_t n = sizeof(tmp) - 1;
	if (strncmp(uri, tmp, n) != 0 || (uri[n] != '\0' && uri[n] != '?')) {
		snprintf(out, H_URI_MAX, "%s", uri);
		return;
	}
	if (!h->tmpdir[0]) {
		if (tmpdir_make(h->tmpdir, sizeof(h->tmpdir), "concert-conf") != 0) {
			print_error("cannot make a scratch directory: %s\n", strerror(errno));
			h->tmpdir[0] = '\0';
		}
	}
	snprintf(out, H_URI_MAX, "memory:%s%s", h->tmpdir, uri + n);
	h->durable = 1;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

/* Opens the store slot; on failure prints why and returns the code (setup
 * must not fail_msg: cmocka would skip teardown and leak the harness). */
static int open_store(harness *h)
{
	h->store = concert_registry_store(h->store_uri);
	if (!h->store) {
		print_error("no store backend for '%s'\n", h->store_uri);
		return CONCERT_EINVAL;
	}
	if (h->store->version < 1 || h->store->version > CONCERT_STORE_BACKEND_VERSION) {
		print_error("store backend version %u\n", h->store->version);
		return CONCERT_EVERSION;
	}
	int rc = h->store->open(&h->store_ctx, h->store_uri, &h->env);
	if (rc == 0)
		rc = h->store->health(h->store_ctx);
	if (rc < 0)
		print_error("store '%s': %s (%s)\n", h->store_uri, concert_error_name(rc),
			    concert_error_last()->message);
	return rc;
}

static int open_queue(harness *h)
{
	h->queue = concert_registry_queue(h->queue_uri);
	if (!h->queue) {
		print_error("no queue backend for '%s'\n", h->queue_uri);
		return CONCERT_EINVAL;
	}
	if (h->queue->version != CONCERT_QUEUE_BACKEND_VERSION) {
		print_error("queue backend version %u\n", h->queue->version);
		return CONCERT_EVERSION;
	}
	int rc = h->queue->open(&h->queue_ctx, h->queue_uri, &h->env);
	if (rc == 0)
		rc = h->queue->health(h->queue_ctx);
	if (rc < 0)
		print_error("queue '%s': %s (%s)\n", h->queue_uri, concert_error_name(rc),
			    concert_error_last()->message);
	return rc;
}

static int setup(void **state, int with_store, int with_queue)
{
	harness *h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	atomic_store(&h->clock, H_EPOCH);
	h->env = (concert_backend_env){ CONCERT_BACKEND_ENV_VERSION, h_clock, (void *)&h->clock,
		h_log, NULL, CONCERT_LOG_ERROR };
	*state = h;
	int rc = 0;
	if (with_store) {
		substitute(h, h->store_uri, env_or("CONCERT_TEST_STORE", "memory:"));
		rc = open_store(h);
	}
	if (rc == 0 && with_queue) {
		substitute(h, h->queue_uri, env_or("CONCERT_TEST_QUEUE", "memory:"));
		rc = open_queue(h);
	}
	if (rc < 0) {
		h_teardown(state);
		return -1;
	}
	return 0;
}

void h_apply_filters(void)
{
	const char *only = getenv("CONCERT_TEST_FILTER");
	const char *skip = getenv("CONCERT_TEST_SKIP");
	if (only && *only)
		cmocka_set_test_filter(only);
	if (skip && *skip)
		cmocka_set_skip_filter(skip);
}

int h_setup_store(void **state)
{
	return setup(state, 1, 0);
}

int h_setup_queue(void **state)
{
	return setup(state, 0, 1);
}

int h_setup_both(void **state)
{
	return setup(state, 1, 1);
}

int h_teardown(void **state)
{
	harness *h = *state;
	if (!h)
		return 0;
	if (h->queue && h->queue_ctx)
		h->queue->close(h->queue_ctx);
	if (h->store && h->store_ctx)
		h->store->close(h->store_ctx);
	if (h->tmpdir[0])
		tmpdir_remove(h->tmpdir);
	free(h);
	*state = NULL;
	return 0;
}

int h_reopen(harness *h)
{
	if (!h->durable)
		return 0;
	if (h->queue && h->queue_ctx) {
		h->queue->close(h->queue_ctx);
		h->queue_ctx = NULL;
	}
	if (h->store && h->store_ctx) {
		h->store->close(h->store_ctx);
		h->store_ctx = NULL;
		assert_ok(open_store(h));
	}
	if (h->queue)
		assert_ok(open_queue(h));
	return 1;
}

concert_time h_now(const harness *h)
{
	return atomic_load(&((harness *)h)->clock);
}

void h_set_time(harness *h, concert_time t)
{
	atomic_store(&h->clock, t);
}

concert_time h_advance(harness *h, concert_time ms)
{
	return atomic_fetch_add(&h->clock, ms) + ms;
}

/* ---- fixtures ------------------------------------------------------------ */

int64_t h_price_of(int32_t seat_no)
{
	static const int64_t prices[] = { 150000, 99000, 77000 };
	return prices[seat_no % 3];
}

const char *h_grade_of(int32_t seat_no)
{
	static const char *const grades[] = { "VIP", "R", "S" };
	return grades[seat_no % 3];
}

int64_t h_amount_of(const int32_t *seat_nos, size_t count)
{
	int64_t sum = 0;
	for (size_t i = 0; i < count; i++)
		sum += h_price_of(seat_nos[i]);
	return sum;
}

int64_t h_add_schedule(harness *h, int64_t concert_id, int32_t seats)
{
	int64_t id = 0;
	char venue[H_NAME_SIZE];
	assert_ok(h->store->schedule_add(h->store_ctx, &id, concert_id, h_now(h) + 7 * H_DAY,
					 h_unique(venue, "hall")));
	assert_true(id > 0);
	concert_seat_spec *specs = calloc((size_t)seats + 1, sizeof(*specs));
	assert_non_null(specs);
	for (int32_t i = 0; i < seats; i++) {
		specs[i].seat_no = i + 1;
		specs[i].price = h_price_of(i + 1);
		specs[i].grade = h_grade_of(i + 1);
	}
	if (seats > 0)
		assert_ok(h->store->seats_add(h->store_ctx, id, specs, (size_t)seats));
	free(specs);
	return id;
}

void h_make_venue_window(harness *h, h_venue *v, int32_t seats, concert_time opens_at,
			 concert_time closes_at)
{
	char title[H_NAME_SIZE];
	memset(v, 0, sizeof(*v));
	assert_ok(h->store->concert_add(h->store_ctx, &v->concert_id, h_unique(title, "concert"),
					opens_at, closes_at));
	assert_true(v->concert_id > 0);
	v->opens_at = opens_at;
	v->closes_at = closes_at;
	v->seats = seats;
	v->schedule_id = h_add_schedule(h, v->concert_id, seats);
}

void h_make_venue(harness *h, h_venue *v, int32_t seats)
{
	h_make_venue_window(h, v, seats, h_now(h) - H_DAY, h_now(h) + 30 * H_DAY);
}

/* ---- calls ------------------------------------------------------------------ */

int h_hold_ex(harness *h, concert_hold **out, const char *user, int64_t concert_id,
	      int64_t schedule_id, const int32_t *seat_nos, size_t count, concert_time expires_at,
	      uint32_t max_holds, uint32_t max_seats)
{
	concert_hold *hold = NULL;
	concert_hold_request req = { user, concert_id, schedule_id, seat_nos, count, h_now(h),
		expires_at, max_holds, max_seats };
	int rc = h->store->hold_seats(h->store_ctx, &hold, &req);
	if (out)
		*out = rc == 0 ? hold : NULL;
	if (!out || rc != 0)
		concert_free(hold);
	return rc;
}

int h_hold(harness *h, concert_hold **out, const char *user, const h_venue *v,
	   const int32_t *seat_nos, size_t count)
{
	return h_hold_ex(h, out, user, v->concert_id, v->schedule_id, seat_nos, count,
			 h_now(h) + H_HOLD_TTL, H_MAX_HOLDS, H_MAX_SEATS);
}

int h_release(harness *h, const char *user, int64_t hold_id, const int32_t *seat_nos,
	      size_t count)
{
	concert_hold_change req = { user, hold_id, count ? seat_nos : NULL, count, h_now(h), 0, 0, 0 };
	return h->store->hold_release(h->store_ctx, &req);
}

int h_extend(harness *h, concert_hold **out, const char *user, int64_t hold_id, concert_time ttl,
	     concert_time max_lifetime, uint32_t max_extensions)
{
	concert_hold *hold = NULL;
	concert_hold_change req = { user, hold_id, NULL, 0, h_now(h), ttl, max_lifetime,
		max_extensions };
	int rc = h->store->hold_extend(h->store_ctx, &hold, &req);
	if (out)
		*out = rc == 0 ? hold : NULL;
	if (!out || rc != 0)
		concert_free(hold);
	return rc;
}

int h_pay(harness *h, concert_payment **out, const char *user, int64_t concert_id,
	  int64_t hold_id, const char *idem_key)
{
	concert_payment *payment = NULL;
	concert_pay_request req = { user, concert_id, hold_id, idem_key, h_now(h) };
	int rc = h->store->pay(h->store_ctx, &payment, &req);
	if (out)
		*out = rc == 0 ? payment : NULL;
	if (!out || rc != 0)
		concert_free(payment);
	return rc;
}

int h_charge(harness *h, int64_t *out_balance, const char *user, int64_t amount,
	     const char *idem_key)
{
	int64_t balance = -1;
	int rc = h->store->charge(h->store_ctx, &balance, user, amount, idem_key, h_now(h));
	if (out_balance && rc == 0)
		*out_balance = balance;
	return rc;
}

int h_cancel(harness *h, int64_t *out_refunded, int64_t *out_balance, const char *user,
	     int64_t reservation_id)
{
	int64_t refunded = -1, balance = -1;
	int rc = h->store->cancel(h->store_ctx, &refunded, &balance, user, reservation_id, h_now(h));
	if (rc == 0) {
		if (out_refunded)
			*out_refunded = refunded;
		if (out_balance)
			*out_balance = balance;
	}
	return rc;
}

/* ---- reads --------------------------------------------------------------- */

concert_seat h_seat(harness *h, int64_t schedule_id, int32_t seat_no)
{
	concert_seat_list *list = NULL;
	concert_seat seat;
	memset(&seat, 0, sizeof(seat));
	assert_ok(h->store->seats_list(h->store_ctx, &list, schedule_id, h_now(h)));
	assert_non_null(list);
	int found = 0;
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].seat_no == seat_no) {
			seat = list->items[i];
			found = 1;
		}
	concert_free(list);
	if (!found)
		fail_msg("seat %d of schedule %lld not listed", (int)seat_no, (long long)schedule_id);
	return seat;
}

int32_t h_seat_state(harness *h, int64_t schedule_id, int32_t seat_no)
{
	return h_seat(h, schedule_id, seat_no).state;
}

concert_schedule h_schedule(harness *h, int64_t schedule_id)
{
	concert_schedule *s = NULL;
	assert_ok(h->store->schedule_get(h->store_ctx, &s, schedule_id, h_now(h)));
	assert_non_null(s);
	concert_schedule copy = *s;
	concert_free(s);
	return copy;
}

int64_t h_balance(harness *h, const char *user)
{
	int64_t balance = -1;
	assert_ok(h->store->balance(h->store_ctx, &balance, user));
	return balance;
}

size_t h_tx_count(harness *h, const char *user)
{
	concert_wallet_tx_list *list = NULL;
	assert_ok(h->store->history(h->store_ctx, &list, user, 0, 1000));
	assert_non_null(list);
	size_t n = list->count;
	concert_free(list);
	return n;
}

concert_hold h_hold_read(harness *h, int64_t hold_id)
{
	concert_hold *hold = NULL;
	assert_ok(h->store->hold_get(h->store_ctx, &hold, hold_id, h_now(h)));
	assert_non_null(hold);
	concert_hold copy = *hold;
	copy.seat_nos = NULL;  /* points into the freed block */
	concert_free(hold);
	return copy;
}

int64_t h_check_wallet(harness *h, const char *user)
{
	int64_t balance = h_balance(h, user);
	assert_true(balance >= 0);
	concert_wallet_tx_list *list = NULL;
	assert_ok(h->store->history(h->store_ctx, &list, user, 0, 1000));
	assert_non_null(list);
	int64_t sum = 0;
	for (size_t i = 0; i < list->count; i++) {
		const concert_wallet_tx *tx = &list->items[i];
		sum += tx->amount;
		assert_true(tx->balance_after >= 0);
		if (i == 0)
			assert_int_equal(tx->balance_after, balance);
		if (i + 1 < list->count) {
			/* newest first: this tx moved the older one's balance by amount */
			assert_int_equal(tx->balance_after, list->items[i + 1].balance_after + tx->amount);
			assert_true(tx->id > list->items[i + 1].id);
		} else {
			assert_int_equal(tx->balance_after, tx->amount);
		}
		switch (tx->kind) {
		case CONCERT_TX_CHARGE:
			assert_true(tx->amount > 0);
			assert_int_equal(tx->ref_id, 0);
			break;
		case CONCERT_TX_PAYMENT:
			assert_true(tx->amount < 0);
			assert_true(tx->ref_id > 0);
			break;
		case CONCERT_TX_REFUND:
			assert_true(tx->amount > 0);
			assert_true(tx->ref_id > 0);
			break;
		default:
			fail_msg("tx %lld has kind %d", (long long)tx->id, (int)tx->kind);
		}
	}
	assert_true(list->count < 1000);  /* the sum covers the whole history */
	concert_free(list);
	assert_int_equal(sum, balance);
	return balance;
}

void h_check_audit(harness *h)
{
	concert_audit *a = NULL;
	assert_ok(h->store->audit(h->store_ctx, &a));
	assert_non_null(a);
	if (a->wallet_mismatches || a->seat_mismatches || a->payment_mismatches ||
	    a->total_balance + a->total_payments - a->total_refunds != a->total_charges ||
	    a->total_balance < 0 || a->total_payments < 0 || a->total_refunds < 0 ||
	    a->total_refunds > a->total_payments) {
		concert_audit copy = *a;
		concert_free(a);
		fail_msg("audit: balance %lld + payments %lld - refunds %lld vs charges %lld; "
			 "mismatches wallet %lld seat %lld payment %lld",
			 (long long)copy.total_balance, (long long)copy.total_payments,
			 (long long)copy.total_refunds, (long long)copy.total_charges,
			 (long long)copy.wallet_mismatches, (long long)copy.seat_mismatches,
			 (long long)copy.payment_mismatches);
	}
	concert_free(a);
}

void h_map_read(harness *h, int64_t schedule_id, h_seat_map *m)
{
	concert_seat_list *list = NULL;
	assert_ok(h->store->seats_list(h->store_ctx, &list, schedule_id, h_now(h)));
	assert_true(list->count <= sizeof(m->items) / sizeof(m->items[0]));
	m->count = list->count;
	memcpy(m->items, list->items, list->count * sizeof(list->items[0]));
	concert_free(list);
}

void h_map_unchanged(harness *h, int64_t schedule_id, const h_seat_map *before)
{
	h_seat_map after;
	h_map_read(h, schedule_id, &after);
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

void h_assert_states(harness *h, int64_t schedule_id, const int32_t *seats, size_t n,
		     int32_t state)
{
	for (size_t i = 0; i < n; i++) {
		int32_t got = h_seat_state(h, schedule_id, seats[i]);
		if (got != state)
			fail_msg("seat %d is %s, expected %s", (int)seats[i],
				 concert_seat_state_name(got), concert_seat_state_name(state));
	}
}

void h_assert_counts(harness *h, int64_t schedule_id, int64_t available, int64_t held,
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

void h_assert_hold_seats(const concert_hold *hold, const int32_t *seats, size_t n)
{
	assert_int_equal(hold->seat_count, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(hold->seat_nos[i], seats[i]);
}

int64_t h_unknown_id(void)
{
	return INT64_MAX - 7;
}

void h_assert_conflicts(const int32_t *want, size_t count)
{
	const concert_error *e = concert_error_last();
	assert_int_equal(e->code, CONCERT_ESEAT_UNAVAILABLE);
	if (e->conflict_count != count)
		fail_msg("%zu conflicts reported (%s), expected %zu", e->conflict_count, e->message,
			 count);
	assert_non_null(e->conflicts);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(e->conflicts[i], want[i]);
}

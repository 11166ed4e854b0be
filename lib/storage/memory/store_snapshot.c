/*
 * The memory store as a whole: replaying records, writing snapshots and
 * auditing, the last two quiesced so they see one consistent state.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/store.h"

/* Seats and transactions per snapshot record. */
#define SNAPSHOT_CHUNK 1024

/* ---- replay ------------------------------------------------------------ */

static int replay_counters(memory_store *s, const store_record *r)
{
	for (size_t i = 0; i < STORE_COUNTER_COUNT; i++) {
		if (r->counters[i] < 1)
			return concert_sys_error(CONCERT_ECORRUPT, "store counters out of range");
		store_seen_id(s, (store_counter)i, r->counters[i] - 1);
	}
	return 0;
}

static int replay_record(memory_store *s, const store_record *r)
{
	switch (r->type) {
	case STORE_RECORD_CONCERT:
	case STORE_RECORD_SCHEDULE:
	case STORE_RECORD_SEATS:
	case STORE_RECORD_SEAT_STATE:
		return catalog_replay(s, r);
	case STORE_RECORD_HOLD:
	case STORE_RECORD_RELEASE:
	case STORE_RECORD_EXTEND:
	case STORE_RECORD_DROP:
	case STORE_RECORD_HOLD_STATE:
		return hold_replay(s, r);
	case STORE_RECORD_CHARGE:
	case STORE_RECORD_PAY:
	case STORE_RECORD_CANCEL:
	case STORE_RECORD_WALLET:
	case STORE_RECORD_IDEM:
	case STORE_RECORD_RESERVATION:
		return wallet_replay(s, r);
	case STORE_RECORD_COUNTERS:
		return replay_counters(s, r);
	}
	return concert_sys_error(CONCERT_ECORRUPT, "store record of an unknown type");
}

int store_replay(void *ctx, const uint8_t *payload, size_t len)
{
	store_record_reader rd;
	store_record r;
	store_record_reader_init(&rd);
	int rc = store_record_decode(&rd, &r, payload, len);
	if (rc == 0)
		rc = replay_record(ctx, &r);
	store_record_reader_free(&rd);
	return rc;
}

/* ---- snapshot ---------------------------------------------------------- */

typedef struct emitter {
	memory_store *s;
	journal_snapshot *snap;
	store_record_buf buf;
	store_seat_record *seats;   /* SNAPSHOT_CHUNK of them */
	int rc;
} emitter;

static void put(emitter *e, const store_record *r)
{
	if (e->rc == 0)
		e->rc = store_record_encode(&e->buf, r);
	if (e->rc == 0)
		e->rc = journal_snapshot_put(e->snap, e->buf.data, e->buf.len);
}

static void emit_schedule(emitter *e, const mem_schedule *sch)
{
	put(e, &(store_record){ .type = STORE_RECORD_SCHEDULE, .id = sch->id,
		.concert_id = sch->concert->id, .starts_at = sch->starts_at, .venue = sch->venue });
	for (size_t off = 0; off < sch->seat_count && e->rc == 0; off += SNAPSHOT_CHUNK) {
		size_t n = sch->seat_count - off < SNAPSHOT_CHUNK ? sch->seat_count - off : SNAPSHOT_CHUNK;
		for (size_t i = 0; i < n; i++) {
			const mem_seat *seat = &sch->seats[off + i];
			e->seats[i] = (store_seat_record){ seat->seat_no, seat->state, seat->price,
				seat->version, seat->owner, seat->hold_expires_at, seat->grade };
		}
		put(e, &(store_record){ .type = STORE_RECORD_SEAT_STATE, .schedule_id = sch->id,
			.count = n, .seats = e->seats });
	}
}

static void emit_catalog(emitter *e)
{
	memory_store *s = e->s;
	int64_t last = atomic_load_explicit(&s->next_id[STORE_COUNTER_CONCERT], memory_order_relaxed) - 1;
	for (int64_t id = 1; id <= last; id++) {
		const mem_concert *c = store_concert(s, id);
		if (c)
			put(e, &(store_record){ .type = STORE_RECORD_CONCERT, .id = c->id,
				.title = c->title, .opens_at = c->opens_at, .closes_at = c->closes_at });
	}
	last = atomic_load_explicit(&s->next_id[STORE_COUNTER_SCHEDULE], memory_order_relaxed) - 1;
	for (int64_t id = 1; id <= last; id++) {
		const mem_schedule *sch = store_schedule(s, id);
		if (sch)
			emit_schedule(e, sch);
	}
}

static void emit_wallet(void *node, void *ctx)
{
	const mem_user *u = node;
	emitter *e = ctx;
	size_t off = 0;
	if (!u->has_wallet)
		return;
	/* At least one record, so a wallet without transactions survives. */
	do {
		size_t n = u->tx_count - off < SNAPSHOT_CHUNK ? u->tx_count - off : SNAPSHOT_CHUNK;
		put(e, &(store_record){ .type = STORE_RECORD_WALLET, .user_id = u->id,
			.balance = u->balance, .count = n, .txs = u->txs + off });
		off += n;
	} while (off < u->tx_count && e->rc == 0);
}

static void emit_idem(void *node, void *ctx)
{
	const idem_entry *k = node;
	put(ctx, &(store_record){ .type = STORE_RECORD_IDEM, .user_id = k->user->id, .op = k->op,
		.idem_key = k->key, .amount = k->amount, .balance = k->balance,
		.hold_id = k->hold_id, .id = k->reservation_id });
}

static void emit_hold(void *node, void *ctx)
{
	store_record r;
	hold_to_record(node, &r);
	put(ctx, &r);
}

static void emit_reservation(void *node, void *ctx)
{
	const mem_reservation *res = node;
	put(ctx, &(store_record){ .type = STORE_RECORD_RESERVATION, .id = res->id,
		.schedule_id = res->schedule->id, .user_id = res->user->id, .hold_id = res->hold_id,
		.payment_id = res->payment_id, .amount = res->amount, .state = res->state,
		.created_at = res->created_at, .balance = res->balance_after,
		.seat_count = res->seat_count, .seat_nos = res->seat_nos });
}

static int emit_snapshot(void *ctx, journal_snapshot *snap)
{
	memory_store *s = ctx;
	emitter e = { .s = s, .snap = snap, .seats = malloc(SNAPSHOT_CHUNK * sizeof(store_seat_record)) };
	store_record_buf_init(&e.buf);
	if (!e.seats)
		e.rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	emit_catalog(&e);
	for (size_t i = 0; i < STORE_STRIPES; i++) {
		chain_each(&s->stripes[i].users, emit_wallet, &e);
		chain_each(&s->stripes[i].idem, emit_idem, &e);
	}
	for (size_t i = 0; i < STORE_SHARDS; i++) {
		chain_each(&s->holds[i].holds, emit_hold, &e);
		chain_each(&s->reservations[i].reservations, emit_reservation, &e);
	}
	store_record counters = { .type = STORE_RECORD_COUNTERS };
	for (size_t i = 0; i < STORE_COUNTER_COUNT; i++)
		counters.counters[i] = atomic_load_explicit(&s->next_id[i], memory_order_relaxed);
	put(&e, &counters);
	store_record_buf_free(&e.buf);
	free(e.seats);
	return e.rc;
}

int store_compact(void *ctx)
{
	memory_store *s = ctx;
	if (!s->journal)
		return 0;
	store_quiesce(s);
	int rc = journal_compact(s->journal, emit_snapshot, s);
	store_resume(s);
	return rc;
}

/* ---- audit --------------------------------------------------------------- */

/*
 * Sums wrap (unsigned) rather than overflow: an audit must describe any
 * state, even one whose totals do not fit.
 */
typedef struct audit_sums {
	memory_store *s;
	uint64_t balance, charges, payments, refunds;
	int64_t wallets, wallet_mismatches;
	int64_t reserved_seats, seat_mismatches, reservations, payment_mismatches;
} audit_sums;

static void audit_wallet(void *node, void *ctx)
{
	const mem_user *u = node;
	audit_sums *a = ctx;
	uint64_t sum = 0;
	if (!u->has_wallet)
		return;
	for (size_t i = 0; i < u->tx_count; i++) {
		const store_tx_record *tx = &u->txs[i];
		sum += (uint64_t)tx->amount;
		if (tx->kind == CONCERT_TX_CHARGE)
			a->charges += (uint64_t)tx->amount;
		else if (tx->kind == CONCERT_TX_PAYMENT)
			a->payments -= (uint64_t)tx->amount;
		else
			a->refunds += (uint64_t)tx->amount;
	}
	a->wallets++;
	a->balance += (uint64_t)u->balance;
	a->wallet_mismatches += sum != (uint64_t)u->balance || u->balance < 0;
}

static bool has_seat(const mem_reservation *res, int32_t seat_no)
{
	size_t lo = 0, hi = res->seat_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (res->seat_nos[mid] == seat_no)
			return true;
		if (res->seat_nos[mid] < seat_no)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void audit_reservation(void *node, void *ctx)
{
	const mem_reservation *res = node;
	audit_sums *a = ctx;
	if (res->state != CONCERT_RESERVATION_CONFIRMED)
		return;
	a->reservations++;
	a->payment_mismatches += res->payment_id <= 0;
	for (size_t i = 0; i < res->seat_count; i++) {
		const mem_seat *seat = schedule_seat(res->schedule, res->seat_nos[i]);
		a->seat_mismatches += !seat || seat->state != CONCERT_SEAT_RESERVED || seat->owner != res->id;
	}
}

/* RESERVED seats the reservation side did not vouch for. */
static void audit_seats(audit_sums *a, const mem_schedule *sch)
{
	for (size_t i = 0; i < sch->seat_count; i++) {
		const mem_seat *seat = &sch->seats[i];
		if (seat->state != CONCERT_SEAT_RESERVED)
			continue;
		a->reserved_seats++;
		const mem_reservation *res = reservation_find(a->s, seat->owner);
		a->seat_mismatches += !res || res->state != CONCERT_RESERVATION_CONFIRMED ||
				      res->schedule != sch || !has_seat(res, seat->seat_no);
	}
}

int store_audit(void *ctx, concert_audit **out)
{
	memory_store *s = ctx;
	audit_sums a = { .s = s };
	*out = NULL;
	concert_audit *result = concert_sys_audit_alloc();
	if (!result)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	store_quiesce(s);
	for (size_t i = 0; i < STORE_STRIPES; i++)
		chain_each(&s->stripes[i].users, audit_wallet, &a);
	for (size_t i = 0; i < STORE_SHARDS; i++)
		chain_each(&s->reservations[i].reservations, audit_reservation, &a);
	int64_t last = atomic_load_explicit(&s->next_id[STORE_COUNTER_SCHEDULE], memory_order_relaxed) - 1;
	for (int64_t id = 1; id <= last; id++) {
		const mem_schedule *sch = store_schedule(s, id);
		if (sch)
			audit_seats(&a, sch);
	}
	store_resume(s);
	*result = (concert_audit){ (int64_t)a.balance, (int64_t)a.charges, (int64_t)a.payments,
		(int64_t)a.refunds, a.wallets, a.wallet_mismatches, a.reserved_seats,
		a.seat_mismatches, a.reservations, a.payment_mismatches };
	*out = result;
	return 0;
}

/*
 * The memory store's money: wallets, idempotency keys, payments,
 * reservations and cancellations.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/store.h"

#define TX_FIRST_CAP 8

/* ---- transactions ------------------------------------------------------ */

static int tx_reserve(mem_user *u, size_t more)
{
	if (more <= u->tx_cap - u->tx_count)
		return 0;
	size_t cap = u->tx_cap ? u->tx_cap : TX_FIRST_CAP;
	while (cap - u->tx_count < more)
		cap *= 2;
	store_tx_record *txs = realloc(u->txs, cap * sizeof(*txs));
	if (!txs)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	u->txs = txs;
	u->tx_cap = cap;
	return 0;
}

/* Room for the tx was reserved. */
static void tx_apply(mem_user *u, const store_tx_record *tx)
{
	u->txs[u->tx_count++] = *tx;
	u->balance = tx->balance_after;
	u->has_wallet = true;
}

/* ---- idempotency keys -------------------------------------------------- */

static uint64_t idem_hash(const mem_user *u, int32_t op, const char *key)
{
	return store_hash_str(key) ^ (u->hash * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)op;
}

static idem_entry *idem_find(user_stripe *st, const mem_user *u, int32_t op, const char *key)
{
	uint64_t hash = idem_hash(u, op, key);
	for (idem_entry *e = chain_first(&st->idem, hash); e; e = e->next)
		if (e->hash == hash && e->user == u && e->op == op && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* A blank entry for `key`, or NULL for none; *rc is CONCERT_ENOMEM on failure. */
static idem_entry *idem_new(const char *key, int *rc)
{
	if (!key)
		return NULL;
	idem_entry *e = calloc(1, sizeof(*e));
	if (!e)
		*rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	return e;
}

static void idem_apply(user_stripe *st, idem_entry *e, mem_user *u, int32_t op, const char *key,
		       uint64_t seq)
{
	e->user = u;
	e->op = op;
	e->seq = seq;
	concert_sys_strlcpy(e->key, key, sizeof(e->key));
	e->hash = idem_hash(u, op, key);
	chain_insert(&st->idem, e);
}

/* ---- reservations ------------------------------------------------------- */

static reservation_shard *res_shard(memory_store *s, int64_t id)
{
	return &s->reservations[store_hash_id(id) & (STORE_SHARDS - 1)];
}

mem_reservation *reservation_find(memory_store *s, int64_t id)
{
	mem_reservation *res = chain_first(&res_shard(s, id)->reservations, store_hash_id(id));
	while (res && res->id != id)
		res = res->next;
	return res;
}

static mem_reservation *reservation_lookup(memory_store *s, int64_t id)
{
	reservation_shard *sh = res_shard(s, id);
	pthread_mutex_lock(&sh->lock);
	mem_reservation *res = reservation_find(s, id);
	pthread_mutex_unlock(&sh->lock);
	return res;
}

static mem_reservation *res_alloc(size_t seat_count, int *rc)
{
	mem_reservation *res = calloc(1, sizeof(*res) + seat_count * sizeof(int32_t));
	if (!res)
		*rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	return res;
}

static void res_insert(memory_store *s, mem_reservation *res)
{
	reservation_shard *sh = res_shard(s, res->id);
	pthread_mutex_lock(&sh->lock);
	chain_insert(&sh->reservations, res);
	pthread_mutex_unlock(&sh->lock);
}

static void free_reservation(void *node, void *ctx)
{
	(void)ctx;
	free(node);
}

void reservations_free(memory_store *s)
{
	for (size_t i = 0; i < STORE_SHARDS; i++) {
		chain_each(&s->reservations[i].reservations, free_reservation, NULL);
		chain_free(&s->reservations[i].reservations);
	}
}

/* ---- charge, balance, history ------------------------------------------ */

static void charge_apply(user_stripe *st, mem_user *u, idem_entry *idem,
			 const store_record *r, uint64_t seq)
{
	tx_apply(u, &r->tx);
	if (idem) {
		idem->amount = r->tx.amount;
		idem->balance = r->tx.balance_after;
		idem_apply(st, idem, u, STORE_IDEM_CHARGE, r->idem_key, seq);
	}
}

static int charge_locked(memory_store *s, user_stripe *st, mem_user *u, int64_t amount,
			 const char *idem_key, concert_time now, int64_t *balance, uint64_t *seq)
{
	if (idem_key) {
		const idem_entry *e = idem_find(st, u, STORE_IDEM_CHARGE, idem_key);
		if (e && e->amount != amount)
			return concert_sys_errorf(CONCERT_EIDEMPOTENCY,
						  "idempotency key '%s' was used for another amount", idem_key);
		if (e) {
			/* The original may still be on its way to disk. */
			*seq = e->seq;
			*balance = e->balance;
			return 0;
		}
	}
	if (u->balance > INT64_MAX - amount)
		return concert_sys_error(CONCERT_EOVERFLOW, "the charge would overflow the balance");
	int rc = tx_reserve(u, 1);
	idem_entry *idem = rc == 0 ? idem_new(idem_key, &rc) : NULL;
	if (rc < 0)
		return rc;
	store_record r = { .type = STORE_RECORD_CHARGE, .user_id = u->id, .idem_key = idem_key,
		.tx = { store_next_id(s, st, STORE_COUNTER_TX), CONCERT_TX_CHARGE, amount,
			u->balance + amount, 0, now } };
	rc = store_log(s, &r, seq);
	if (rc < 0) {
		free(idem);
		return rc;
	}
	charge_apply(st, u, idem, &r, *seq);
	*balance = u->balance;
	return 0;
}

int store_charge(void *ctx, int64_t *out_balance, const char *user_id, int64_t amount,
		 const char *idem_key, concert_time now)
{
	memory_store *s = ctx;
	uint64_t hash = store_hash_str(user_id), seq = 0;
	user_stripe *st = store_stripe(s, hash);
	int64_t balance = 0;
	stripe_enter(s, st);
	mem_user *u = user_get(st, user_id, hash);
	int rc = u ? charge_locked(s, st, u, amount, idem_key, now, &balance, &seq) : CONCERT_ENOMEM;
	pthread_mutex_unlock(&st->lock);
	if (rc == 0)
		rc = store_commit(s, seq);
	if (rc == 0 && out_balance)
		*out_balance = balance;
	return rc;
}

int store_balance(void *ctx, int64_t *out_balance, const char *user_id)
{
	memory_store *s = ctx;
	uint64_t hash = store_hash_str(user_id);
	user_stripe *st = store_stripe(s, hash);
	pthread_mutex_lock(&st->lock);
	const mem_user *u = user_find(st, user_id, hash);
	*out_balance = u ? u->balance : 0;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* Index just past the newest tx older than `cursor` (0: past the newest). */
static size_t history_end(const mem_user *u, int64_t cursor)
{
	size_t lo = 0, hi = u->tx_count;
	if (cursor == 0)
		return hi;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u->txs[mid].id < cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int store_history(void *ctx, concert_wallet_tx_list **out, const char *user_id, int64_t cursor,
		  size_t limit)
{
	memory_store *s = ctx;
	uint64_t hash = store_hash_str(user_id);
	user_stripe *st = store_stripe(s, hash);
	pthread_mutex_lock(&st->lock);
	const mem_user *u = user_find(st, user_id, hash);
	size_t end = u ? history_end(u, cursor) : 0;
	size_t n = end < limit ? end : limit;
	concert_wallet_tx_list *list = concert_sys_tx_list_alloc(n);
	for (size_t i = 0; list && i < n; i++) {
		const store_tx_record *tx = &u->txs[end - 1 - i];
		list->items[i] = (concert_wallet_tx){ tx->id, tx->kind, tx->amount, tx->balance_after,
			tx->ref_id, tx->created_at };
	}
	if (list)
		list->next_cursor = end > n ? list->items[n - 1].id : 0;
	pthread_mutex_unlock(&st->lock);
	*out = list;
	return list ? 0 : concert_sys_error(CONCERT_ENOMEM, NULL);
}

/* ---- pay --------------------------------------------------------------- */

/* `p` was allocated for at least res->seat_count seats. */
static void payment_describe(concert_payment *p, const mem_reservation *res)
{
	p->payment_id = res->payment_id;
	p->reservation_id = res->id;
	p->hold_id = res->hold_id;
	p->schedule_id = res->schedule->id;
	p->amount = res->amount;
	p->balance = res->balance_after;
	p->created_at = res->created_at;
	memcpy(p->user_id, res->user->id, sizeof(p->user_id));
	p->seat_count = res->seat_count;
	copy_seat_nos(p->seat_nos, res->seat_nos, res->seat_count);
}

/* Owner's stripe and the hold's schedule locked; res, tx room, idem prepared. */
static void pay_apply(memory_store *s, user_stripe *st, mem_hold *h, mem_reservation *res,
		      idem_entry *idem, const store_record *r, uint64_t seq)
{
	res->id = r->id;
	res->hash = store_hash_id(r->id);
	res->payment_id = r->payment_id;
	res->hold_id = h->id;
	res->amount = h->amount;
	res->balance_after = r->tx.balance_after;
	res->schedule = h->schedule;
	res->user = h->user;
	res->created_at = r->tx.created_at;
	res->state = CONCERT_RESERVATION_CONFIRMED;
	res->seat_count = h->seat_count;
	copy_seat_nos(res->seat_nos, h->seat_nos, h->seat_count);
	hold_apply_paid(h, res->id);
	tx_apply(h->user, &r->tx);
	res_insert(s, res);
	if (idem) {
		idem->hold_id = h->id;
		idem->reservation_id = res->id;
		idem_apply(st, idem, h->user, STORE_IDEM_PAY, r->idem_key, seq);
	}
}

/* A repeat of a payment made with the same key. */
static int pay_repeat(memory_store *s, const idem_entry *e, const concert_pay_request *req,
		      concert_payment **result, uint64_t *seq)
{
	if (e->hold_id != req->hold_id)
		return concert_sys_errorf(CONCERT_EIDEMPOTENCY,
					  "idempotency key '%s' was used to pay hold %lld", e->key,
					  (long long)e->hold_id);
	const mem_reservation *res = reservation_lookup(s, e->reservation_id);
	if (!res)
		return concert_sys_error(CONCERT_EINTERNAL, "payment of an idempotency key is missing");
	if (result && !(*result = concert_sys_payment_alloc(res->seat_count)))
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (result)
		payment_describe(*result, res);
	/* The original may still be on its way to disk. */
	*seq = e->seq;
	return 0;
}

/* Owner's stripe and the hold's schedule locked. */
static int pay_hold_locked(memory_store *s, user_stripe *st, mem_hold *h,
			   const concert_pay_request *req, concert_payment **result, uint64_t *seq)
{
	mem_user *u = h->user;
	int rc = hold_usable(h, req->now);
	if (rc == 0)
		rc = store_window(h->schedule->concert, req->now);
	if (rc == 0 && u->balance < h->amount)
		rc = concert_sys_errorf(CONCERT_EFUNDS, "balance %lld is less than %lld",
					(long long)u->balance, (long long)h->amount);
	if (rc < 0)
		return rc;
	mem_reservation *res = res_alloc(h->seat_count, &rc);
	idem_entry *idem = NULL;
	if (rc == 0)
		rc = tx_reserve(u, 1);
	if (rc == 0)
		idem = idem_new(req->idem_key, &rc);
	if (rc == 0 && result && !(*result = concert_sys_payment_alloc(h->seat_count)))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc == 0) {
		int64_t res_id = store_next_id(s, st, STORE_COUNTER_RESERVATION);
		store_record r = { .type = STORE_RECORD_PAY, .id = res_id, .hold_id = h->id,
			.payment_id = store_next_id(s, st, STORE_COUNTER_PAYMENT), .idem_key = req->idem_key,
			.tx = { store_next_id(s, st, STORE_COUNTER_TX), CONCERT_TX_PAYMENT, -h->amount,
				u->balance - h->amount, res_id, req->now } };
		rc = store_log(s, &r, seq);
		if (rc == 0)
			pay_apply(s, st, h, res, idem, &r, *seq);
	}
	if (rc < 0) {
		free(res);
		free(idem);
		return rc;
	}
	if (result)
		payment_describe(*result, res);
	return 0;
}

/* The caller's stripe locked. */
static int pay_locked(memory_store *s, user_stripe *st, mem_user *u, const concert_pay_request *req,
		      concert_payment **result, uint64_t *seq)
{
	if (req->idem_key && u) {
		const idem_entry *e = idem_find(st, u, STORE_IDEM_PAY, req->idem_key);
		if (e)
			return pay_repeat(s, e, req, result, seq);
	}
	mem_user *owner;
	mem_hold *h = hold_lookup(s, req->hold_id, &owner);
	if (!h)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no hold %lld", (long long)req->hold_id);
	if (!u || owner != u)
		return concert_sys_errorf(CONCERT_EFORBIDDEN, "hold %lld belongs to another user",
					  (long long)req->hold_id);
	if (h->schedule->concert->id != req->concert_id)
		return concert_sys_error(CONCERT_ETOKEN, "token is for another concert");
	pthread_mutex_lock(&h->schedule->lock);
	int rc = pay_hold_locked(s, st, h, req, result, seq);
	pthread_mutex_unlock(&h->schedule->lock);
	return rc;
}

int store_pay(void *ctx, concert_payment **out, const concert_pay_request *req)
{
	memory_store *s = ctx;
	concert_payment *result = NULL;
	uint64_t hash = store_hash_str(req->user_id), seq = 0;
	user_stripe *st = store_stripe(s, hash);
	if (out)
		*out = NULL;
	stripe_enter(s, st);
	int rc = pay_locked(s, st, user_find(st, req->user_id, hash), req, out ? &result : NULL, &seq);
	pthread_mutex_unlock(&st->lock);
	if (rc == 0)
		rc = store_commit(s, seq);
	if (rc < 0) {
		concert_free(result);
		return rc;
	}
	if (out)
		*out = result;
	return 0;
}

/* ---- cancel, reservation_get ------------------------------------------- */

/* Owner's stripe and the reservation's schedule locked; tx room reserved. */
static void cancel_apply(memory_store *s, mem_reservation *res, const store_record *r)
{
	for (size_t i = 0; i < res->seat_count; i++) {
		mem_seat *seat = schedule_seat(res->schedule, res->seat_nos[i]);
		if (seat->state != CONCERT_SEAT_RESERVED || seat->owner != res->id)
			continue;
		seat->state = CONCERT_SEAT_AVAILABLE;
		seat->owner = 0;
		seat->version++;
	}
	reservation_shard *sh = res_shard(s, res->id);
	pthread_mutex_lock(&sh->lock);
	res->state = CONCERT_RESERVATION_CANCELLED;
	pthread_mutex_unlock(&sh->lock);
	tx_apply(res->user, &r->tx);
}

static int cancel_locked(memory_store *s, user_stripe *st, mem_user *u, int64_t reservation_id,
			 concert_time now, int64_t *refunded, uint64_t *seq)
{
	mem_reservation *res = reservation_lookup(s, reservation_id);
	if (!res)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no reservation %lld", (long long)reservation_id);
	if (!u || res->user != u)
		return concert_sys_errorf(CONCERT_EFORBIDDEN, "reservation %lld belongs to another user",
					  (long long)reservation_id);
	if (res->state == CONCERT_RESERVATION_CANCELLED)
		return concert_sys_errorf(CONCERT_ESTATE, "reservation %lld is already cancelled",
					  (long long)reservation_id);
	if (u->balance > INT64_MAX - res->amount)
		return concert_sys_error(CONCERT_EOVERFLOW, "the refund would overflow the balance");
	int rc = tx_reserve(u, 1);
	if (rc < 0)
		return rc;
	store_record r = { .type = STORE_RECORD_CANCEL, .id = res->id,
		.tx = { store_next_id(s, st, STORE_COUNTER_TX), CONCERT_TX_REFUND, res->amount,
			u->balance + res->amount, res->id, now } };
	pthread_mutex_lock(&res->schedule->lock);
	rc = store_log(s, &r, seq);
	if (rc == 0)
		cancel_apply(s, res, &r);
	pthread_mutex_unlock(&res->schedule->lock);
	*refunded = res->amount;
	return rc;
}

int store_cancel(void *ctx, int64_t *out_refunded, int64_t *out_balance, const char *user_id,
		 int64_t reservation_id, concert_time now)
{
	memory_store *s = ctx;
	uint64_t hash = store_hash_str(user_id), seq = 0;
	user_stripe *st = store_stripe(s, hash);
	int64_t refunded = 0, balance = 0;
	stripe_enter(s, st);
	mem_user *u = user_find(st, user_id, hash);
	int rc = cancel_locked(s, st, u, reservation_id, now, &refunded, &seq);
	if (rc == 0)
		balance = u->balance;
	pthread_mutex_unlock(&st->lock);
	if (rc == 0)
		rc = store_commit(s, seq);
	if (rc < 0)
		return rc;
	if (out_refunded)
		*out_refunded = refunded;
	if (out_balance)
		*out_balance = balance;
	return 0;
}

int store_reservation_get(void *ctx, concert_reservation **out, int64_t reservation_id)
{
	memory_store *s = ctx;
	reservation_shard *sh = res_shard(s, reservation_id);
	*out = NULL;
	pthread_mutex_lock(&sh->lock);
	const mem_reservation *res = reservation_find(s, reservation_id);
	concert_reservation *item = res ? concert_sys_reservation_alloc(res->seat_count) : NULL;
	if (item) {
		item->id = res->id;
		item->schedule_id = res->schedule->id;
		item->payment_id = res->payment_id;
		item->amount = res->amount;
		item->state = res->state;
		item->created_at = res->created_at;
		memcpy(item->user_id, res->user->id, sizeof(item->user_id));
		copy_seat_nos(item->seat_nos, res->seat_nos, res->seat_count);
	}
	pthread_mutex_unlock(&sh->lock);
	if (!res)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no reservation %lld", (long long)reservation_id);
	if (!item)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	*out = item;
	return 0;
}

/* ---- replay --------------------------------------------------------------- */

static int corrupt(const store_record *r, const char *why)
{
	return concert_sys_errorf(CONCERT_ECORRUPT, "store record %d: %s", (int)r->type, why);
}

/* The user of a record, created when new; NULL when out of memory. */
static mem_user *record_user(memory_store *s, const char *user_id, user_stripe **st)
{
	uint64_t hash = store_hash_str(user_id);
	*st = store_stripe(s, hash);
	return user_get(*st, user_id, hash);
}

static bool tx_follows(const mem_user *u, const store_tx_record *tx, int32_t kind, int64_t amount)
{
	return tx->kind == kind && tx->amount == amount &&
	       !__builtin_add_overflow(u->balance, amount, &(int64_t){ 0 }) &&
	       tx->balance_after == u->balance + amount &&
	       (u->tx_count == 0 || tx->id > u->txs[u->tx_count - 1].id);
}

static int replay_charge(memory_store *s, const store_record *r)
{
	user_stripe *st;
	mem_user *u = record_user(s, r->user_id, &st);
	if (!u)
		return CONCERT_ENOMEM;
	if (r->tx.amount <= 0 || !tx_follows(u, &r->tx, CONCERT_TX_CHARGE, r->tx.amount))
		return corrupt(r, "charge does not follow the balance");
	if (r->idem_key && idem_find(st, u, STORE_IDEM_CHARGE, r->idem_key))
		return corrupt(r, "idempotency key used twice");
	int rc = tx_reserve(u, 1);
	idem_entry *idem = rc == 0 ? idem_new(r->idem_key, &rc) : NULL;
	if (rc == 0) {
		charge_apply(st, u, idem, r, 0);
		store_seen_id(s, STORE_COUNTER_TX, r->tx.id);
	}
	return rc;
}

static int replay_pay(memory_store *s, const store_record *r)
{
	mem_user *owner;
	mem_hold *h = hold_lookup(s, r->hold_id, &owner);
	if (!h || h->state != CONCERT_HOLD_HELD || reservation_lookup(s, r->id))
		return corrupt(r, "payment of a hold not held, or reservation recorded twice");
	user_stripe *st = store_stripe(s, owner->hash);
	if (!tx_follows(owner, &r->tx, CONCERT_TX_PAYMENT, -h->amount) || r->tx.ref_id != r->id)
		return corrupt(r, "payment does not follow the balance");
	if (r->idem_key && idem_find(st, owner, STORE_IDEM_PAY, r->idem_key))
		return corrupt(r, "idempotency key used twice");
	int rc = 0;
	mem_reservation *res = res_alloc(h->seat_count, &rc);
	idem_entry *idem = NULL;
	if (rc == 0)
		rc = tx_reserve(owner, 1);
	if (rc == 0)
		idem = idem_new(r->idem_key, &rc);
	if (rc < 0) {
		free(res);
		return rc;
	}
	pay_apply(s, st, h, res, idem, r, 0);
	store_seen_id(s, STORE_COUNTER_RESERVATION, r->id);
	store_seen_id(s, STORE_COUNTER_PAYMENT, r->payment_id);
	store_seen_id(s, STORE_COUNTER_TX, r->tx.id);
	return 0;
}

static int replay_cancel(memory_store *s, const store_record *r)
{
	mem_reservation *res = reservation_lookup(s, r->id);
	if (!res || res->state != CONCERT_RESERVATION_CONFIRMED ||
	    !tx_follows(res->user, &r->tx, CONCERT_TX_REFUND, res->amount))
		return corrupt(r, "cancellation of an unknown or cancelled reservation");
	int rc = tx_reserve(res->user, 1);
	if (rc == 0) {
		cancel_apply(s, res, r);
		store_seen_id(s, STORE_COUNTER_TX, r->tx.id);
	}
	return rc;
}

static int replay_wallet(memory_store *s, const store_record *r)
{
	user_stripe *st;
	mem_user *u = record_user(s, r->user_id, &st);
	if (!u)
		return CONCERT_ENOMEM;
	int rc = tx_reserve(u, r->count);
	for (size_t i = 0; i < r->count && rc == 0; i++) {
		const store_tx_record *tx = &r->txs[i];
		if (u->tx_count && tx->id <= u->txs[u->tx_count - 1].id)
			return corrupt(r, "transactions out of order");
		tx_apply(u, tx);
		store_seen_id(s, STORE_COUNTER_TX, tx->id);
	}
	u->balance = r->balance;
	u->has_wallet = true;
	return rc;
}

static int replay_idem(memory_store *s, const store_record *r)
{
	user_stripe *st;
	mem_user *u = record_user(s, r->user_id, &st);
	if (!u)
		return CONCERT_ENOMEM;
	if ((r->op != STORE_IDEM_CHARGE && r->op != STORE_IDEM_PAY) || idem_find(st, u, r->op, r->idem_key))
		return corrupt(r, "unknown or repeated idempotency key");
	int rc = 0;
	idem_entry *e = idem_new(r->idem_key, &rc);
	if (rc < 0)
		return rc;
	e->amount = r->amount;
	e->balance = r->balance;
	e->hold_id = r->hold_id;
	e->reservation_id = r->id;
	idem_apply(st, e, u, r->op, r->idem_key, 0);
	return 0;
}

static int replay_reservation(memory_store *s, const store_record *r)
{
	user_stripe *st;
	mem_schedule *sch = store_schedule(s, r->schedule_id);
	if (!sch || reservation_lookup(s, r->id) ||
	    (r->state != CONCERT_RESERVATION_CONFIRMED && r->state != CONCERT_RESERVATION_CANCELLED))
		return corrupt(r, "reservation of an unknown schedule, repeated or in an unknown state");
	mem_user *u = record_user(s, r->user_id, &st);
	int rc = u ? 0 : CONCERT_ENOMEM;
	mem_reservation *res = rc == 0 ? res_alloc(r->seat_count, &rc) : NULL;
	if (rc < 0)
		return rc;
	*res = (mem_reservation){ NULL, store_hash_id(r->id), r->id, r->payment_id, r->hold_id, r->amount,
		r->balance, sch, u, r->created_at, r->state, (uint32_t)r->seat_count };
	copy_seat_nos(res->seat_nos, r->seat_nos, r->seat_count);
	res_insert(s, res);
	store_seen_id(s, STORE_COUNTER_RESERVATION, r->id);
	store_seen_id(s, STORE_COUNTER_PAYMENT, r->payment_id);
	return 0;
}

int wallet_replay(memory_store *s, const store_record *r)
{
	switch (r->type) {
	case STORE_RECORD_CHARGE: return replay_charge(s, r);
	case STORE_RECORD_PAY: return replay_pay(s, r);
	case STORE_RECORD_CANCEL: return replay_cancel(s, r);
	case STORE_RECORD_WALLET: return replay_wallet(s, r);
	case STORE_RECORD_IDEM: return replay_idem(s, r);
	case STORE_RECORD_RESERVATION: return replay_reservation(s, r);
	default: return concert_sys_error(CONCERT_EINTERNAL, "not a wallet record");
	}
}

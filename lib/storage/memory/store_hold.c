/*
 * The memory store's holds: the hot path of the library.
 *
 * A hold lives in its id's shard table until it is dropped (see
 * hold_list_kind for when). Hold objects come from their owner's stripe: a
 * free list over slabs, so holding up to HOLD_INLINE_SEATS seats does not
 * call malloc.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/store.h"

#define SWEEP_BATCH 64

/* ---- hold objects and lists -------------------------------------------- */

/* A hold object from the stripe (locked); NULL when out of memory. */
static mem_hold *hold_take(user_stripe *st, size_t seat_count)
{
	if (!st->free_holds) {
		hold_slab *slab = malloc(sizeof(*slab));
		if (!slab) {
			concert_sys_error(CONCERT_ENOMEM, NULL);
			return NULL;
		}
		slab->next = st->slabs;
		st->slabs = slab;
		for (size_t i = HOLD_SLAB; i-- > 0;) {
			slab->holds[i].shard_next = st->free_holds;
			st->free_holds = &slab->holds[i];
		}
	}
	int32_t *seats = NULL;
	if (seat_count > HOLD_INLINE_SEATS && !(seats = malloc(seat_count * sizeof(*seats)))) {
		concert_sys_error(CONCERT_ENOMEM, NULL);
		return NULL;
	}
	mem_hold *h = st->free_holds;
	st->free_holds = h->shard_next;
	memset(h, 0, sizeof(*h));
	h->seat_nos = seats ? seats : h->inline_seats;
	return h;
}

static void hold_free_seats(mem_hold *h)
{
	if (h->seat_nos != h->inline_seats)
		free(h->seat_nos);
	h->seat_nos = h->inline_seats;
}

static void hold_give_back(user_stripe *st, mem_hold *h)
{
	hold_free_seats(h);
	h->shard_next = st->free_holds;
	st->free_holds = h;
}

/* Adds `h` in id order; holds are mostly listed in the order they came. */
static void list_add(mem_hold *h, hold_list_kind kind)
{
	hold_list *l = &h->user->holds[kind];
	mem_hold *after = l->tail;
	while (after && after->id > h->id)
		after = after->prev;
	h->list = kind;
	h->prev = after;
	h->next = after ? after->next : l->head;
	if (h->next)
		h->next->prev = h;
	else
		l->tail = h;
	if (after)
		after->next = h;
	else
		l->head = h;
	l->count++;
}

static void list_unlink(mem_hold *h)
{
	if (h->list == HOLD_LIST_NONE)
		return;
	hold_list *l = &h->user->holds[h->list];
	if (h->prev)
		h->prev->next = h->next;
	else
		l->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		l->tail = h->prev;
	h->prev = h->next = NULL;
	h->list = HOLD_LIST_NONE;
	l->count--;
}

static hold_shard *shard_of(memory_store *s, int64_t id)
{
	return &s->holds[store_hash_id(id) & (STORE_SHARDS - 1)];
}

mem_hold *hold_lookup(memory_store *s, int64_t id, mem_user **owner)
{
	hold_shard *sh = shard_of(s, id);
	uint64_t hash = store_hash_id(id);
	mem_hold *h;
	pthread_mutex_lock(&sh->lock);
	for (h = chain_first(&sh->holds, hash); h && h->id != id; h = h->shard_next)
		;
	*owner = h ? h->user : NULL;
	pthread_mutex_unlock(&sh->lock);
	return h;
}

static void shard_insert(memory_store *s, mem_hold *h)
{
	hold_shard *sh = shard_of(s, h->id);
	pthread_mutex_lock(&sh->lock);
	chain_insert(&sh->holds, h);
	pthread_mutex_unlock(&sh->lock);
}

/* ---- apply (live and replay) ------------------------------------------- */

static void seat_take(mem_seat *seat, const mem_hold *h)
{
	seat->state = CONCERT_SEAT_HELD;
	seat->owner = h->id;
	seat->hold_expires_at = h->expires_at;
	seat->version++;
}

/* Frees the seat if `h` still holds it; `bump` unless it already read free. */
static void seat_free_of(mem_seat *seat, const mem_hold *h, bool bump)
{
	if (seat->state != CONCERT_SEAT_HELD || seat->owner != h->id)
		return;
	seat->state = CONCERT_SEAT_AVAILABLE;
	seat->owner = 0;
	seat->hold_expires_at = 0;
	if (bump)
		seat->version++;
}

static void hold_fill(mem_hold *h, mem_schedule *sch, mem_user *u, const store_record *r)
{
	h->id = r->id;
	h->hash = store_hash_id(r->id);
	h->schedule = sch;
	h->user = u;
	h->created_at = r->created_at;
	h->expires_at = r->expires_at;
	h->amount = r->amount;
	h->state = CONCERT_HOLD_HELD;
	h->seat_count = (uint32_t)r->seat_count;
	copy_seat_nos(h->seat_nos, r->seat_nos, r->seat_count);
}

/* Redo of HOLD; the user's stripe and the schedule locked, `h` taken. */
static void hold_apply_new(memory_store *s, mem_schedule *sch, mem_user *u, mem_hold *h,
			   const store_record *r)
{
	hold_fill(h, sch, u, r);
	for (size_t i = 0; i < r->seat_count; i++)
		seat_take(schedule_seat(sch, r->seat_nos[i]), h);
	list_add(h, HOLD_LIST_LIVE);
	shard_insert(s, h);
}

/* A hold from a snapshot: its seats are restored by their own records. */
static void hold_restore(memory_store *s, mem_schedule *sch, mem_user *u, mem_hold *h,
			 const store_record *r)
{
	hold_fill(h, sch, u, r);
	h->state = r->state;
	h->extensions = r->extensions;
	if (h->state != CONCERT_HOLD_PAID)
		list_add(h, h->state == CONCERT_HOLD_HELD ? HOLD_LIST_LIVE : HOLD_LIST_RELEASED);
	shard_insert(s, h);
}

/* Forgets a hold (sweep, RELEASED_KEEP, replay of DROP); its seats are
 * freed if still its. */
static void hold_apply_drop(memory_store *s, user_stripe *st, mem_hold *h)
{
	/* An expired hold's seats already read AVAILABLE: no version bump. */
	if (h->state == CONCERT_HOLD_HELD)
		for (size_t i = 0; i < h->seat_count; i++)
			seat_free_of(schedule_seat(h->schedule, h->seat_nos[i]), h, false);
	list_unlink(h);
	hold_shard *sh = shard_of(s, h->id);
	pthread_mutex_lock(&sh->lock);
	chain_remove(&sh->holds, h);
	pthread_mutex_unlock(&sh->lock);
	hold_give_back(st, h);
}

/* r->seat_nos: a subset of the hold's seats, ascending. The owner's stripe
 * `st` and the hold's schedule locked. */
static void hold_apply_release(memory_store *s, user_stripe *st, mem_hold *h,
			       const store_record *r)
{
	size_t kept = 0, j = 0;
	for (size_t i = 0; i < h->seat_count; i++) {
		if (j < r->seat_count && h->seat_nos[i] == r->seat_nos[j]) {
			seat_free_of(schedule_seat(h->schedule, h->seat_nos[i]), h, true);
			j++;
		} else {
			h->seat_nos[kept++] = h->seat_nos[i];
		}
	}
	h->seat_count = (uint32_t)kept;
	h->amount = r->amount;
	if (kept == 0) {
		h->state = CONCERT_HOLD_RELEASED;
		hold_free_seats(h);
		list_unlink(h);
		list_add(h, HOLD_LIST_RELEASED);
		/* A released hold has no seats: dropping it needs no schedule lock. */
		hold_list *released = &h->user->holds[HOLD_LIST_RELEASED];
		if (released->count > RELEASED_KEEP)
			hold_apply_drop(s, st, released->head);
	}
}

void hold_apply_paid(mem_hold *h, int64_t reservation_id)
{
	for (size_t i = 0; i < h->seat_count; i++) {
		mem_seat *seat = schedule_seat(h->schedule, h->seat_nos[i]);
		seat->state = CONCERT_SEAT_RESERVED;
		seat->owner = reservation_id;
		seat->hold_expires_at = 0;
		seat->version++;
	}
	h->state = CONCERT_HOLD_PAID;
	list_unlink(h);
}

static void hold_apply_extend(mem_hold *h, const store_record *r)
{
	h->expires_at = r->expires_at;
	h->extensions = r->extensions;
	/* A call with an older now may extend a hold a newer one found expired. */
	if (h->list == HOLD_LIST_EXPIRED) {
		list_unlink(h);
		list_add(h, HOLD_LIST_LIVE);
	}
	for (size_t i = 0; i < h->seat_count; i++) {
		mem_seat *seat = schedule_seat(h->schedule, h->seat_nos[i]);
		if (seat->state == CONCERT_SEAT_HELD && seat->owner == h->id)
			seat->hold_expires_at = h->expires_at;
	}
}

/* ---- results and checks -------------------------------------------------- */

/* `out` was allocated for at least h->seat_count seats. */
static void hold_describe(const mem_hold *h, concert_hold *out, concert_time now)
{
	out->id = h->id;
	out->schedule_id = h->schedule->id;
	out->concert_id = h->schedule->concert->id;
	out->amount = h->amount;
	out->created_at = h->created_at;
	out->expires_at = h->expires_at;
	out->state = hold_expired(h, now) ? CONCERT_HOLD_EXPIRED : h->state;
	out->extensions = h->extensions;
	memcpy(out->user_id, h->user->id, sizeof(out->user_id));
	out->seat_count = h->seat_count;
	copy_seat_nos(out->seat_nos, h->seat_nos, h->seat_count);
}

static bool hold_owns_seats(const mem_hold *h)
{
	for (size_t i = 0; i < h->seat_count; i++) {
		const mem_seat *seat = schedule_seat(h->schedule, h->seat_nos[i]);
		if (seat->state != CONCERT_SEAT_HELD || seat->owner != h->id)
			return false;
	}
	return true;
}

/*
 * The hold can still be released, extended or paid. Callers read the clock
 * before taking locks, so `now` may be older than the `now` of a call that
 * already took this expired hold's seats: the seats, not the clock, say
 * whether the hold is still whole.
 */
int hold_usable(const mem_hold *h, concert_time now)
{
	if (h->state == CONCERT_HOLD_HELD && (hold_expired(h, now) || !hold_owns_seats(h)))
		return concert_sys_errorf(CONCERT_EEXPIRED, "hold %lld expired", (long long)h->id);
	if (h->state != CONCERT_HOLD_HELD)
		return concert_sys_errorf(CONCERT_ESTATE, "hold %lld is already %s", (long long)h->id,
					  h->state == CONCERT_HOLD_PAID ? "paid" : "released");
	return 0;
}

/*
 * Counts the user's live holds and their seats, this request included;
 * expired holds met on the way move to the EXPIRED list.
 */
static int check_limits(mem_user *u, const concert_hold_request *req)
{
	uint64_t holds = 1, seats = req->seat_count;
	for (mem_hold *h = u->holds[HOLD_LIST_LIVE].head, *next; h; h = next) {
		next = h->next;
		if (h->expires_at <= req->now) {
			list_unlink(h);
			list_add(h, HOLD_LIST_EXPIRED);
			continue;
		}
		holds++;
		seats += h->seat_count;
	}
	if (req->max_holds_per_user && holds > req->max_holds_per_user)
		return concert_sys_errorf(CONCERT_ELIMIT, "user '%s' may have %u live holds", u->id,
					  (unsigned)req->max_holds_per_user);
	if (req->max_seats_per_user && seats > req->max_seats_per_user)
		return concert_sys_errorf(CONCERT_ELIMIT, "user '%s' may hold %u seats", u->id,
					  (unsigned)req->max_seats_per_user);
	return 0;
}

/* ---- hold ------------------------------------------------------------- */

/* Sums the prices of the requested seats, which must all exist. */
static int requested_amount(mem_schedule *sch, const concert_hold_request *req, int64_t *amount)
{
	*amount = 0;
	for (size_t i = 0; i < req->seat_count; i++) {
		const mem_seat *seat = schedule_seat(sch, req->seat_nos[i]);
		if (!seat)
			return concert_sys_errorf(CONCERT_ENOTFOUND, "seat %d not found in schedule %lld",
						  (int)req->seat_nos[i], (long long)sch->id);
		if (seat->price > INT64_MAX - *amount)
			return concert_sys_error(CONCERT_EOVERFLOW, "the seats' prices overflow");
		*amount += seat->price;
	}
	return 0;
}

static int check_available(mem_schedule *sch, const concert_hold_request *req)
{
	int32_t conflicts[CONCERT_HOLD_SEATS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < req->seat_count; i++)
		if (seat_state(schedule_seat(sch, req->seat_nos[i]), req->now) != CONCERT_SEAT_AVAILABLE)
			conflicts[n++] = req->seat_nos[i];
	return n ? concert_sys_error_conflicts(conflicts, n) : 0;
}

/* User stripe and schedule locked. */
static int hold_locked(memory_store *s, user_stripe *st, mem_schedule *sch, mem_user *u,
		       const concert_hold_request *req, concert_hold *result, uint64_t *seq)
{
	int64_t amount;
	int rc = requested_amount(sch, req, &amount);
	if (rc == 0)
		rc = check_limits(u, req);
	if (rc == 0)
		rc = check_available(sch, req);
	if (rc < 0)
		return rc;
	mem_hold *h = hold_take(st, req->seat_count);
	if (!h)
		return CONCERT_ENOMEM;
	store_record r = { .type = STORE_RECORD_HOLD, .id = store_next_id(s, st, STORE_COUNTER_HOLD),
		.schedule_id = sch->id, .user_id = u->id, .created_at = req->now,
		.expires_at = req->expires_at, .amount = amount, .seat_count = req->seat_count,
		.seat_nos = req->seat_nos };
	rc = store_log(s, &r, seq);
	if (rc < 0) {
		hold_give_back(st, h);
		return rc;
	}
	hold_apply_new(s, sch, u, h, &r);
	if (result)
		hold_describe(h, result, req->now);
	return 0;
}

int store_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req)
{
	memory_store *s = ctx;
	if (out)
		*out = NULL;
	mem_schedule *sch = store_schedule(s, req->schedule_id);
	if (!sch)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no schedule %lld", (long long)req->schedule_id);
	if (sch->concert->id != req->concert_id)
		return concert_sys_error(CONCERT_ETOKEN, "token is for another concert");
	int rc = store_window(sch->concert, req->now);
	if (rc < 0)
		return rc;
	concert_hold *result = NULL;
	if (out && !(result = concert_sys_hold_alloc(req->seat_count)))
		return concert_sys_error(CONCERT_ENOMEM, NULL);

	uint64_t hash = store_hash_str(req->user_id), seq = 0;
	user_stripe *st = store_stripe(s, hash);
	stripe_enter(s, st);
	mem_user *u = user_get(st, req->user_id, hash);
	rc = u ? 0 : CONCERT_ENOMEM;
	if (rc == 0) {
		pthread_mutex_lock(&sch->lock);
		rc = hold_locked(s, st, sch, u, req, result, &seq);
		pthread_mutex_unlock(&sch->lock);
	}
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

/* ---- release, extend, get ---------------------------------------------- */

/*
 * Locks the caller's stripe and finds a hold it owns: on success the stripe
 * stays locked (which keeps the hold alive) and *out is the hold.
 */
static int owned_hold(memory_store *s, const char *user_id, int64_t hold_id, user_stripe **out_st,
		      mem_hold **out)
{
	uint64_t hash = store_hash_str(user_id);
	user_stripe *st = store_stripe(s, hash);
	mem_user *owner;
	stripe_enter(s, st);
	mem_user *u = user_find(st, user_id, hash);
	mem_hold *h = hold_lookup(s, hold_id, &owner);
	int rc = 0;
	if (!h)
		rc = concert_sys_errorf(CONCERT_ENOTFOUND, "no hold %lld", (long long)hold_id);
	else if (!u || owner != u)
		rc = concert_sys_errorf(CONCERT_EFORBIDDEN, "hold %lld belongs to another user",
					(long long)hold_id);
	if (rc < 0) {
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	*out_st = st;
	*out = h;
	return 0;
}

/* The seats to release (all when none are named) and the amount left. */
static int release_plan(const mem_hold *h, const concert_hold_change *req, int32_t *seats,
			size_t *count, int64_t *amount_left)
{
	const int32_t *want = req->seat_count ? req->seat_nos : h->seat_nos;
	size_t n = req->seat_count ? req->seat_count : h->seat_count;
	size_t j = 0;
	*amount_left = h->amount;
	for (size_t i = 0; i < n; i++) {
		while (j < h->seat_count && h->seat_nos[j] < want[i])
			j++;
		if (j == h->seat_count || h->seat_nos[j] != want[i])
			return concert_sys_errorf(CONCERT_EINVAL, "seat %d is not in hold %lld",
						  (int)want[i], (long long)h->id);
		seats[i] = want[i];
		*amount_left -= schedule_seat(h->schedule, want[i])->price;
	}
	*count = n;
	return 0;
}

int store_hold_release(void *ctx, const concert_hold_change *req)
{
	memory_store *s = ctx;
	user_stripe *st;
	mem_hold *h;
	int rc = owned_hold(s, req->user_id, req->hold_id, &st, &h);
	if (rc < 0)
		return rc;
	int32_t seats[CONCERT_HOLD_SEATS_MAX];
	store_record r = { .type = STORE_RECORD_RELEASE, .id = h->id, .seat_nos = seats };
	uint64_t seq = 0;
	mem_schedule *sch = h->schedule;
	pthread_mutex_lock(&sch->lock);
	rc = hold_usable(h, req->now);
	if (rc == 0)
		rc = release_plan(h, req, seats, &r.seat_count, &r.amount);
	if (rc == 0)
		rc = store_log(s, &r, &seq);
	if (rc == 0)
		hold_apply_release(s, st, h, &r);
	pthread_mutex_unlock(&sch->lock);
	pthread_mutex_unlock(&st->lock);
	return rc < 0 ? rc : store_commit(s, seq);
}

static int extend_locked(memory_store *s, mem_hold *h, const concert_hold_change *req,
			 concert_hold **result, uint64_t *seq)
{
	int rc = hold_usable(h, req->now);
	if (rc < 0)
		return rc;
	if (h->extensions >= req->max_extensions)
		return concert_sys_errorf(CONCERT_ELIMIT, "hold %lld was extended %u times already",
					  (long long)h->id, (unsigned)h->extensions);
	concert_time until = req->now + req->ttl, cap = h->created_at + req->max_lifetime;
	if (until > cap)
		until = cap;
	if (until <= h->expires_at)
		return concert_sys_errorf(CONCERT_ELIMIT, "hold %lld reached its maximum lifetime",
					  (long long)h->id);
	if (result && !(*result = concert_sys_hold_alloc(h->seat_count)))
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	store_record r = { .type = STORE_RECORD_EXTEND, .id = h->id, .expires_at = until,
		.extensions = h->extensions + 1 };
	rc = store_log(s, &r, seq);
	if (rc < 0)
		return rc;
	hold_apply_extend(h, &r);
	if (result)
		hold_describe(h, *result, req->now);
	return 0;
}

int store_hold_extend(void *ctx, concert_hold **out, const concert_hold_change *req)
{
	memory_store *s = ctx;
	concert_hold *result = NULL;
	user_stripe *st;
	mem_hold *h;
	uint64_t seq = 0;
	if (out)
		*out = NULL;
	int rc = owned_hold(s, req->user_id, req->hold_id, &st, &h);
	if (rc < 0)
		return rc;
	mem_schedule *sch = h->schedule;
	pthread_mutex_lock(&sch->lock);
	rc = extend_locked(s, h, req, out ? &result : NULL, &seq);
	pthread_mutex_unlock(&sch->lock);
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

int store_hold_get(void *ctx, concert_hold **out, int64_t hold_id, concert_time now)
{
	memory_store *s = ctx;
	mem_user *owner;
	*out = NULL;
	if (!hold_lookup(s, hold_id, &owner))
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no hold %lld", (long long)hold_id);
	/* The owner's stripe keeps the hold from changing or going away; look
	 * again under it, as a sweep may have dropped the hold meanwhile. */
	user_stripe *st = store_stripe(s, owner->hash);
	pthread_mutex_lock(&st->lock);
	mem_hold *h = hold_lookup(s, hold_id, &owner);
	int rc = 0;
	if (!h)
		rc = concert_sys_errorf(CONCERT_ENOTFOUND, "no hold %lld", (long long)hold_id);
	else if (!(*out = concert_sys_hold_alloc(h->seat_count)))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	else
		hold_describe(h, *out, now);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---- sweep ------------------------------------------------------------- */

typedef struct sweep_state {
	memory_store *s;
	user_stripe *st;
	concert_time now;
	mem_hold *batch[SWEEP_BATCH];
	size_t count;
	uint64_t swept;
	uint64_t seq;
	int rc;
} sweep_state;

/* Logs and drops the batched holds. */
static void sweep_flush(sweep_state *w)
{
	int64_t ids[SWEEP_BATCH];
	for (size_t i = 0; i < w->count; i++)
		ids[i] = w->batch[i]->id;
	store_record r = { .type = STORE_RECORD_DROP, .count = w->count, .ids = ids };
	if (w->count && w->rc == 0)
		w->rc = store_log(w->s, &r, &w->seq);
	for (size_t i = 0; i < w->count && w->rc == 0; i++) {
		mem_hold *h = w->batch[i];
		mem_schedule *sch = h->schedule;
		w->swept += h->state == CONCERT_HOLD_HELD;
		pthread_mutex_lock(&sch->lock);
		hold_apply_drop(w->s, w->st, h);
		pthread_mutex_unlock(&sch->lock);
	}
	w->count = 0;
}

/* Batches the list's holds whose expiry has passed. Flushing only unlinks
 * holds already behind the walk, so `next` stays valid. */
static void sweep_list(sweep_state *w, mem_hold *head)
{
	for (mem_hold *h = head, *next; h && w->rc == 0; h = next) {
		next = h->next;
		if (h->expires_at > w->now)
			continue;
		w->batch[w->count++] = h;
		if (w->count == SWEEP_BATCH)
			sweep_flush(w);
	}
}

static void sweep_user(void *node, void *ctx)
{
	mem_user *u = node;
	for (size_t kind = HOLD_LIST_LIVE; kind < HOLD_LIST_KINDS; kind++)
		sweep_list(ctx, u->holds[kind].head);
}

int store_sweep(void *ctx, concert_time now, uint64_t *out_swept)
{
	memory_store *s = ctx;
	sweep_state w = { .s = s, .now = now };
	for (size_t i = 0; i < STORE_STRIPES && w.rc == 0; i++) {
		w.st = &s->stripes[i];
		stripe_enter(s, w.st);
		chain_each(&w.st->users, sweep_user, &w);
		sweep_flush(&w);
		pthread_mutex_unlock(&w.st->lock);
	}
	int rc = w.rc < 0 ? w.rc : store_commit(s, w.seq);
	if (out_swept)
		*out_swept = w.swept;
	return rc;
}

/* ---- replay, snapshot, teardown ---------------------------------------- */

static int corrupt(const store_record *r, const char *why)
{
	return concert_sys_errorf(CONCERT_ECORRUPT, "store record %d, hold %lld: %s", (int)r->type,
				  (long long)r->id, why);
}

/* Ascending seat numbers that all exist in the schedule. */
static bool seats_valid(mem_schedule *sch, const int32_t *seat_nos, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if ((i && seat_nos[i] <= seat_nos[i - 1]) || !schedule_seat(sch, seat_nos[i]))
			return false;
	return true;
}

static int replay_hold(memory_store *s, const store_record *r, bool snapshot)
{
	mem_schedule *sch = store_schedule(s, r->schedule_id);
	mem_user *owner;
	if (!sch || r->id <= 0 || hold_lookup(s, r->id, &owner))
		return corrupt(r, "unknown schedule or hold recorded twice");
	if (!seats_valid(sch, r->seat_nos, r->seat_count) || (!snapshot && r->seat_count == 0))
		return corrupt(r, "seats unknown or out of order");
	if (snapshot && (r->state < CONCERT_HOLD_HELD || r->state > CONCERT_HOLD_PAID))
		return corrupt(r, "unknown state");
	uint64_t hash = store_hash_str(r->user_id);
	user_stripe *st = store_stripe(s, hash);
	mem_user *u = user_get(st, r->user_id, hash);
	mem_hold *h = u ? hold_take(st, r->seat_count) : NULL;
	if (!h)
		return CONCERT_ENOMEM;
	if (snapshot)
		hold_restore(s, sch, u, h, r);
	else
		hold_apply_new(s, sch, u, h, r);
	store_seen_id(s, STORE_COUNTER_HOLD, h->id);
	return 0;
}

/* The HELD hold a RELEASE or EXTEND record changes. */
static mem_hold *held_hold(memory_store *s, const store_record *r)
{
	mem_user *owner;
	mem_hold *h = hold_lookup(s, r->id, &owner);
	return h && h->state == CONCERT_HOLD_HELD ? h : NULL;
}

static int replay_release(memory_store *s, const store_record *r)
{
	mem_hold *h = held_hold(s, r);
	if (!h || !seats_valid(h->schedule, r->seat_nos, r->seat_count))
		return corrupt(r, "release of a hold not held");
	for (size_t i = 0, j = 0; i < r->seat_count; i++) {
		while (j < h->seat_count && h->seat_nos[j] < r->seat_nos[i])
			j++;
		if (j == h->seat_count || h->seat_nos[j] != r->seat_nos[i])
			return corrupt(r, "released seat not in the hold");
	}
	hold_apply_release(s, store_stripe(s, h->user->hash), h, r);
	return 0;
}

static int replay_drop(memory_store *s, const store_record *r)
{
	for (size_t i = 0; i < r->count; i++) {
		mem_user *owner;
		mem_hold *h = hold_lookup(s, r->ids[i], &owner);
		if (!h || h->state == CONCERT_HOLD_PAID)
			return concert_sys_errorf(CONCERT_ECORRUPT, "drop of hold %lld, unknown or paid",
						  (long long)r->ids[i]);
		hold_apply_drop(s, store_stripe(s, owner->hash), h);
	}
	return 0;
}

int hold_replay(memory_store *s, const store_record *r)
{
	mem_hold *h;
	switch (r->type) {
	case STORE_RECORD_HOLD: return replay_hold(s, r, false);
	case STORE_RECORD_HOLD_STATE: return replay_hold(s, r, true);
	case STORE_RECORD_RELEASE: return replay_release(s, r);
	case STORE_RECORD_EXTEND:
		if (!(h = held_hold(s, r)))
			return corrupt(r, "extension of a hold not held");
		hold_apply_extend(h, r);
		return 0;
	case STORE_RECORD_DROP: return replay_drop(s, r);
	default: return concert_sys_error(CONCERT_EINTERNAL, "not a hold record");
	}
}

void hold_to_record(const mem_hold *h, store_record *r)
{
	*r = (store_record){ .type = STORE_RECORD_HOLD_STATE, .id = h->id,
		.schedule_id = h->schedule->id, .user_id = h->user->id, .created_at = h->created_at,
		.expires_at = h->expires_at, .amount = h->amount, .seat_count = h->seat_count,
		.seat_nos = h->seat_nos, .state = h->state, .extensions = h->extensions };
}

static void free_hold_seats(void *node, void *ctx)
{
	(void)ctx;
	hold_free_seats(node);
}

void holds_free(memory_store *s)
{
	for (size_t i = 0; i < STORE_SHARDS; i++) {
		chain_each(&s->holds[i].holds, free_hold_seats, NULL);
		chain_free(&s->holds[i].holds);
	}
	for (size_t i = 0; i < STORE_STRIPES; i++) {
		for (hold_slab *slab = s->stripes[i].slabs, *next; slab; slab = next) {
			next = slab->next;
			free(slab);
		}
	}
}

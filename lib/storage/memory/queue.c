/*
 * The memory queue backend ("memory:" and "memory:/dir").
 *
 * Every call locks one concert and does its maintenance lazily there:
 * expire what the clock has ended, admit the oldest WAITING tokens while
 * there is room (max_active, admit_per_second), then answer. No call is
 * O(n) in the queue length:
 *  - WAITING tokens sit in a list ordered by last touch and ACTIVE ones in
 *    a list ordered by admission; with constant TTLs their deadlines ascend,
 *    so expiry pops list heads (O(1) amortised). A token whose own deadline
 *    has passed is also ended when it is looked at, so a TTL changed between
 *    calls (or a replay) can make expiry late in the lists, never wrong for
 *    the token asked about.
 *  - positions and the admission head come from the rank (queue_index.c);
 *  - tokens are found through hash maps by id and by user.
 *
 * Ended (EXPIRED/DONE) tokens stay findable for active_ttl + wait_idle_ttl
 * after they ended (of the last policy seen); after that they are forgotten
 * and status answers CONCERT_ETOKEN, which bounds memory by the entry rate.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "storage/memory/queue.h"

/* --- concert table ------------------------------------------------------ */

static memq_table *table_new(size_t cap)
{
	memq_table *t = calloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
	if (t)
		t->mask = cap - 1;
	return t;
}

static memq_concert *table_lookup(const memq_table *t, int64_t id)
{
	for (size_t i = memq_hash_id(id) & t->mask;; i = (i + 1) & t->mask) {
		memq_concert *c = atomic_load_explicit(&t->slots[i], memory_order_acquire);
		if (!c || c->id == id)
			return c;
	}
}

static void table_place(memq_table *t, memq_concert *c)
{
	size_t i = memq_hash_id(c->id) & t->mask;
	while (atomic_load_explicit(&t->slots[i], memory_order_relaxed))
		i = (i + 1) & t->mask;
	atomic_store_explicit(&t->slots[i], c, memory_order_release);
	t->count++;
}

/* Under table_lock. Readers see either table, both of which stay valid. */
static int table_insert(memory_queue *q, memq_concert *c)
{
	memq_table *t = atomic_load_explicit(&q->concerts, memory_order_relaxed);
	if ((t->count + 1) * 2 > t->mask + 1) {
		memq_table *bigger = table_new((t->mask + 1) * 2);
		if (!bigger)
			return concert_sys_error(CONCERT_ENOMEM, NULL);
		for (size_t i = 0; i <= t->mask; i++) {
			memq_concert *old = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
			if (old)
				table_place(bigger, old);
		}
		bigger->retired = t;
		atomic_store_explicit(&q->concerts, bigger, memory_order_release);
		t = bigger;
	}
	table_place(t, c);
	return 0;
}

static void memq_concert_destroy(memq_concert *c)
{
	memq_slab_free(&c->slab);
	memq_map_free(&c->by_id);
	memq_map_free(&c->by_user);
	memq_rank_free(&c->rank);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static memq_concert *concert_new(int64_t id, uint64_t hash_seed)
{
	memq_concert *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->id = id;
	c->hash_seed = hash_seed;
	c->retention = -1;
	memq_slab_init(&c->slab);
	memq_list_init(&c->waiting);
	memq_list_init(&c->active);
	memq_list_init(&c->ended);
	if (memq_map_init(&c->by_id) < 0 || memq_map_init(&c->by_user) < 0 ||
	    memq_rank_init(&c->rank) < 0) {
		memq_concert_destroy(c);
		return NULL;
	}
	return c;
}

memq_concert *memq_concert_find(memory_queue *q, int64_t concert_id)
{
	return table_lookup(atomic_load_explicit(&q->concerts, memory_order_acquire), concert_id);
}

int memq_concert_get(memory_queue *q, int64_t concert_id, memq_concert **out)
{
	*out = memq_concert_find(q, concert_id);
	if (*out)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&q->table_lock);
	memq_concert *c = memq_concert_find(q, concert_id);
	if (!c) {
		c = concert_new(concert_id, q->hash_seed);
		rc = c ? table_insert(q, c) : concert_sys_error(CONCERT_ENOMEM, NULL);
		if (rc < 0 && c) {
			memq_concert_destroy(c);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&q->table_lock);
	*out = c;
	return rc;
}

int memq_each_concert(memory_queue *q, int (*fn)(void *arg, memq_concert *c), void *arg)
{
	const memq_table *t = atomic_load_explicit(&q->concerts, memory_order_acquire);
	int rc = 0;
	for (size_t i = 0; i <= t->mask && rc == 0; i++) {
		memq_concert *c = atomic_load_explicit(&t->slots[i], memory_order_acquire);
		if (c)
			rc = fn(arg, c);
	}
	return rc;
}

/* --- token transitions (under the concert lock) --------------------------- */

int memq_token_alloc(memq_concert *c, memq_token **out, int64_t id, int64_t seq,
		     const char *user_id, size_t user_len, concert_time issued_at, concert_time deadline)
{
	int rc = memq_map_reserve(&c->by_id);
	if (rc == 0)
		rc = memq_map_reserve(&c->by_user);
	if (rc == 0)
		rc = memq_rank_reserve(&c->rank);
	memq_token *t;
	if (rc == 0)
		rc = memq_slab_alloc(&c->slab, &t);
	if (rc < 0)
		return rc;
	t->id = id;
	t->seq = seq;
	t->issued_at = issued_at;
	t->expires_at = deadline;
	t->state = CONCERT_QUEUE_WAITING;
	t->user_len = (uint8_t)user_len;
	memcpy(t->user_id, user_id, user_len);
	*out = t;
	return 0;
}

void memq_token_insert(memq_concert *c, memq_token *t, uint32_t user_tag)
{
	memq_rank_append(&c->rank, t);
	memq_list_append(&c->waiting, &t->link);
	memq_map_insert(&c->by_id, memq_hash_id(t->id), t->ref);
	memq_map_insert(&c->by_user, user_tag, t->ref);
	if (t->seq > c->last_seq)
		c->last_seq = t->seq;
}

void memq_token_activate(memq_concert *c, memq_token *t, concert_time active_until)
{
	memq_rank_remove(&c->rank, t->slot);
	memq_list_unlink(&t->link);
	memq_list_append(&c->active, &t->link);
	t->state = CONCERT_QUEUE_ACTIVE;
	t->expires_at = active_until;
	c->active_count++;
}

void memq_token_end(memq_concert *c, memq_token *t, int state, concert_time now)
{
	if (t->state == CONCERT_QUEUE_WAITING)
		memq_rank_remove(&c->rank, t->slot);
	else
		c->active_count--;
	memq_list_unlink(&t->link);
	/* The tag is not kept in the token (it would not fit its record). */
	memq_map_remove(&c->by_user, memq_hash_user(c->hash_seed, t->user_id, t->user_len), t->ref);
	t->state = (uint8_t)state;
	t->ended_at = now;
	memq_list_append(&c->ended, &t->link);
}

static int token_live(const memq_token *t)
{
	return t->state == CONCERT_QUEUE_WAITING || t->state == CONCERT_QUEUE_ACTIVE;
}

/*
 * Expiry is journaled as a hint: it is never committed on its own (status
 * must stay free of I/O), but it reaches the disk with the next commit, so
 * after a restart most tokens that had expired stay expired. A lost hint
 * only revives a WAITING token for one more wait_idle_ttl.
 */
static void token_expire(memory_queue *q, memq_concert *c, memq_token *t, concert_time now)
{
	if (q->journal) {
		queue_record r = { .type = QUEUE_RECORD_EXPIRE, .concert_id = c->id,
			.token_id = t->id, .at = now };
		uint64_t seq;
		if (memq_journal_append(q, &r, &seq) < 0)
			concert_error_clear();   /* a lost hint is allowed; the call goes on */
	}
	memq_token_end(c, t, CONCERT_QUEUE_EXPIRED, now);
}

static void token_forget(memq_concert *c, memq_token *t)
{
	memq_list_unlink(&t->link);
	memq_map_remove(&c->by_id, memq_hash_id(t->id), t->ref);
	memq_slab_release(&c->slab, t);
}

/* Ends what the clock has ended and forgets old ended tokens; returns how many. */
static uint64_t expire_due(memory_queue *q, memq_concert *c, concert_time now)
{
	uint64_t n = 0;
	for (; !memq_list_empty(&c->waiting) && memq_list_first(&c->waiting)->expires_at <= now; n++)
		token_expire(q, c, memq_list_first(&c->waiting), now);
	for (; !memq_list_empty(&c->active) && memq_list_first(&c->active)->expires_at <= now; n++)
		token_expire(q, c, memq_list_first(&c->active), now);
	if (c->retention < 0)
		return n;
	for (; !memq_list_empty(&c->ended) &&
	       memq_list_first(&c->ended)->ended_at <= now - c->retention; n++)
		token_forget(c, memq_list_first(&c->ended));
	return n;
}

static void expire_if_due(memory_queue *q, memq_concert *c, memq_token *t, concert_time now)
{
	if (token_live(t) && t->expires_at <= now)
		token_expire(q, c, t, now);
}

static void policy_seen(memq_concert *c, const concert_queue_policy *policy)
{
	c->wait_idle_ttl = policy->wait_idle_ttl;
	c->retention = policy->active_ttl + policy->wait_idle_ttl;
}

static void token_touch(memq_concert *c, memq_token *t, const concert_queue_policy *policy,
			concert_time now)
{
	if (t->state != CONCERT_QUEUE_WAITING)
		return;
	t->expires_at = now + policy->wait_idle_ttl;
	memq_list_unlink(&t->link);
	memq_list_append(&c->waiting, &t->link);
}

/* --- admission ---------------------------------------------------------- */

/*
 * Admissions admit_per_second allows now: a bucket refilled at `rate` per
 * second from the clock, holding at most one second's worth (the burst).
 * It starts full, and again whenever the rate changes.
 */
static uint32_t bucket_allows(memq_concert *c, uint32_t rate, concert_time now)
{
	int64_t full = (int64_t)rate * 1000;
	if (c->bucket_rate != rate) {
		c->bucket_rate = rate;
		c->bucket = full;
		c->bucket_at = now;
	} else if (now > c->bucket_at) {
		int64_t elapsed = now - c->bucket_at;
		c->bucket += (elapsed < 1000 ? elapsed : 1000) * rate;
		if (c->bucket > full)
			c->bucket = full;
		c->bucket_at = now;
	}
	return (uint32_t)(c->bucket / 1000);
}

/* Journals the admission of the next `count` WAITING tokens, before they change. */
static int journal_admit(memory_queue *q, memq_concert *c, uint32_t count,
			 concert_time active_until, uint64_t *commit)
{
	queue_record r = { .type = QUEUE_RECORD_ADMIT, .concert_id = c->id,
		.expires_at = active_until, .id_count = count };
	for (uint32_t i = 0, slot = c->rank.head; i < count; i++, slot++) {
		slot = memq_rank_next(&c->rank, slot);
		r.ids[i] = c->rank.tokens[slot]->id;
	}
	return memq_journal_append(q, &r, commit);
}

static int admit_ready(memory_queue *q, memq_concert *c, const concert_queue_policy *policy,
		       concert_time now, uint32_t *out_admitted, uint64_t *commit)
{
	uint32_t room = c->active_count < policy->max_active ? policy->max_active - c->active_count : 0;
	if (room > c->rank.live)
		room = c->rank.live;
	if (room && policy->admit_per_second) {
		uint32_t allowed = bucket_allows(c, policy->admit_per_second, now);
		if (room > allowed)
			room = allowed;
	}
	concert_time active_until = now + policy->active_ttl;
	uint32_t admitted = 0;
	while (admitted < room) {
		uint32_t batch = room - admitted < QUEUE_ADMIT_BATCH ? room - admitted : QUEUE_ADMIT_BATCH;
		if (q->journal) {
			int rc = journal_admit(q, c, batch, active_until, commit);
			if (rc < 0)
				return rc;
		}
		for (uint32_t i = 0; i < batch; i++)
			memq_token_activate(c, memq_rank_first(&c->rank), active_until);
		c->admitted_total += batch;
		if (policy->admit_per_second)
			c->bucket -= (int64_t)batch * 1000;
		admitted += batch;
	}
	if (out_admitted)
		*out_admitted = admitted;
	return 0;
}

/* --- operations ----------------------------------------------------------- */

static void entry_fill(concert_queue_entry *out, const memq_concert *c, const memq_token *t,
		       int created)
{
	out->token_id = t->id;
	out->concert_id = c->id;
	out->state = t->state;
	out->created = created;
	out->position = t->state == CONCERT_QUEUE_WAITING ? memq_rank_position(&c->rank, t->slot) : 0;
	out->issued_at = t->issued_at;
	out->expires_at = t->expires_at;
	out->admitted_total = c->admitted_total;
	memcpy(out->user_id, t->user_id, t->user_len);
	out->user_id[t->user_len] = '\0';
}

/* Commits what the call journaled, after its locks are released. */
static int finish(memory_queue *q, int rc, uint64_t commit)
{
	int committed = memq_journal_commit(q, commit);
	return rc < 0 ? rc : committed;
}

static int unknown_token(void)
{
	return concert_sys_error(CONCERT_ETOKEN, "no such queue token for this concert");
}

static int enter_new(memory_queue *q, memq_concert *c, memq_token **out, const char *user_id,
		     size_t len, uint32_t tag, const concert_queue_policy *policy, concert_time now,
		     uint64_t *commit)
{
	int64_t id = atomic_fetch_add_explicit(&q->next_token_id, 1, memory_order_relaxed);
	memq_map_prefetch(&c->by_id, memq_hash_id(id));
	memq_token *t = NULL;
	int rc = memq_token_alloc(c, &t, id, c->last_seq + 1, user_id, len, now,
				  now + policy->wait_idle_ttl);
	if (rc < 0)
		return rc;
	if (q->journal) {
		queue_record r = { .type = QUEUE_RECORD_ENTER, .token_id = id, .concert_id = c->id,
			.seq = t->seq, .issued_at = now, .expires_at = t->expires_at,
			.wait_idle_ttl = policy->wait_idle_ttl };
		memcpy(r.user_id, user_id, len);
		rc = memq_journal_append(q, &r, commit);
		if (rc < 0) {
			memq_slab_release(&c->slab, t);
			return rc;
		}
	}
	memq_token_insert(c, t, tag);
	*out = t;
	return 0;
}

/*
 * A new token is admitted in the same call when there is room, so nobody
 * waits behind an empty queue; it is at the back, so FIFO order holds.
 */
static int queue_enter(void *ctx, concert_queue_entry *out, const char *user_id,
		       int64_t concert_id, const concert_queue_policy *policy, concert_time now)
{
	memory_queue *q = ctx;
	size_t len = user_id ? concert_strnlen(user_id, CONCERT_USER_ID_MAX) : 0;
	if (!out || !policy || len == 0 || len > CONCERT_USER_ID_MAX)
		return concert_sys_error(CONCERT_EINVAL, "enter needs out, a policy and a user id");
	memq_concert *c;
	int rc = memq_concert_get(q, concert_id, &c);
	if (rc < 0)
		return rc;
	uint32_t tag = memq_hash_user(q->hash_seed, user_id, len);
	uint64_t commit = 0;
	pthread_mutex_lock(&c->lock);
	memq_map_prefetch(&c->by_user, tag);
	/* Most enters are new users, and the id a new token will get is
	 * usually the counter's next one: its slot's miss then overlaps the
	 * user look-up's instead of following it. */
	memq_map_prefetch(&c->by_id,
			  memq_hash_id(atomic_load_explicit(&q->next_token_id, memory_order_relaxed)));
	policy_seen(c, policy);
	expire_due(q, c, now);
	int created = 0;
	memq_token *t = memq_map_find_user(&c->by_user, &c->slab, user_id, len, tag);
	if (t)
		expire_if_due(q, c, t, now);
	if (t && token_live(t)) {
		token_touch(c, t, policy, now);
	} else {
		rc = enter_new(q, c, &t, user_id, len, tag, policy, now, &commit);
		created = 1;
	}
	if (rc == 0)
		rc = admit_ready(q, c, policy, now, NULL, &commit);
	if (rc == 0)
		entry_fill(out, c, t, created);
	pthread_mutex_unlock(&c->lock);
	return finish(q, rc, commit);
}

static int queue_status(void *ctx, concert_queue_entry *out, int64_t concert_id,
			int64_t token_id, int touch, const concert_queue_policy *policy,
			concert_time now)
{
	memory_queue *q = ctx;
	if (!out || !policy)
		return concert_sys_error(CONCERT_EINVAL, "status needs out and a policy");
	memq_concert *c = memq_concert_find(q, concert_id);
	if (!c)
		return unknown_token();
	uint64_t commit = 0;
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	policy_seen(c, policy);
	expire_due(q, c, now);
	memq_token *t = memq_map_find_id(&c->by_id, &c->slab, token_id);
	if (t) {
		expire_if_due(q, c, t, now);
		if (touch)
			token_touch(c, t, policy, now);
	}
	rc = admit_ready(q, c, policy, now, NULL, &commit);
	if (rc == 0 && !t)
		rc = unknown_token();
	if (rc == 0)
		entry_fill(out, c, t, 0);
	pthread_mutex_unlock(&c->lock);
	return finish(q, rc, commit);
}

/* leave and complete: end a live token with a LEAVE or DONE record. */
static int end_token(memory_queue *q, int64_t concert_id, int64_t token_id, concert_time now,
		     queue_record_type type)
{
	memq_concert *c = memq_concert_find(q, concert_id);
	if (!c)
		return unknown_token();
	uint64_t commit = 0;
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	expire_due(q, c, now);
	memq_token *t = memq_map_find_id(&c->by_id, &c->slab, token_id);
	if (t)
		expire_if_due(q, c, t, now);
	if (!t)
		rc = unknown_token();
	else if (type == QUEUE_RECORD_LEAVE && !token_live(t))
		rc = concert_sys_error(CONCERT_EEXPIRED, "queue token already expired or used");
	else if (type == QUEUE_RECORD_DONE && t->state != CONCERT_QUEUE_ACTIVE)
		rc = concert_sys_error(CONCERT_ESTATE, "queue token is not ACTIVE");
	if (rc == 0 && q->journal) {
		queue_record r = { .type = type, .concert_id = concert_id, .token_id = token_id,
			.at = now };
		rc = memq_journal_append(q, &r, &commit);
	}
	if (rc == 0)
		memq_token_end(c, t, type == QUEUE_RECORD_DONE ? CONCERT_QUEUE_DONE : CONCERT_QUEUE_EXPIRED,
			       now);
	pthread_mutex_unlock(&c->lock);
	return finish(q, rc, commit);
}

static int queue_leave(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	return end_token(ctx, concert_id, token_id, now, QUEUE_RECORD_LEAVE);
}

static int queue_complete(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	return end_token(ctx, concert_id, token_id, now, QUEUE_RECORD_DONE);
}

static int queue_admit(void *ctx, uint32_t *out_admitted, int64_t concert_id,
		       const concert_queue_policy *policy, concert_time now)
{
	memory_queue *q = ctx;
	if (!policy)
		return concert_sys_error(CONCERT_EINVAL, "admit needs a policy");
	uint32_t admitted = 0;
	uint64_t commit = 0;
	int rc = 0;
	/* The queue does not know the catalog: an unknown concert has nobody to admit. */
	memq_concert *c = memq_concert_find(q, concert_id);
	if (c) {
		pthread_mutex_lock(&c->lock);
		policy_seen(c, policy);
		expire_due(q, c, now);
		rc = admit_ready(q, c, policy, now, &admitted, &commit);
		pthread_mutex_unlock(&c->lock);
	}
	if (out_admitted)
		*out_admitted = admitted;
	return finish(q, rc, commit);
}

static int queue_counts(void *ctx, int64_t concert_id, concert_time now, uint64_t *out_waiting,
			uint64_t *out_active)
{
	memory_queue *q = ctx;
	memq_concert *c = memq_concert_find(q, concert_id);
	*out_waiting = *out_active = 0;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	expire_due(q, c, now);
	*out_waiting = c->rank.live;
	*out_active = c->active_count;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

typedef struct sweep_state {
	memory_queue *q;
	concert_time now;
	uint64_t swept;
} sweep_state;

static int sweep_concert(void *arg, memq_concert *c)
{
	sweep_state *s = arg;
	pthread_mutex_lock(&c->lock);
	s->swept += expire_due(s->q, c, s->now);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* *out_swept: tokens expired plus ended tokens forgotten. */
static int queue_sweep(void *ctx, concert_time now, uint64_t *out_swept)
{
	sweep_state s = { ctx, now, 0 };
	memq_each_concert(ctx, sweep_concert, &s);
	if (out_swept)
		*out_swept = s.swept;
	return 0;
}

static int queue_health(void *ctx)
{
	(void)ctx;
	return 0;
}

/* --- open / close ----------------------------------------------------------- */

static void queue_close(void *ctx)
{
	memory_queue *q = ctx;
	if (!q)
		return;
	journal_close(q->journal);
	memq_table *t = atomic_load_explicit(&q->concerts, memory_order_relaxed);
	for (size_t i = 0; t && i <= t->mask; i++) {
		memq_concert *c = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
		if (c)
			memq_concert_destroy(c);
	}
	while (t) {
		memq_table *retired = t->retired;
		free(t);
		t = retired;
	}
	pthread_mutex_destroy(&q->table_lock);
	pthread_mutex_destroy(&q->compact_lock);
	free(q);
}

/* Seeds the user hash; a predictable seed only weakens flooding resistance. */
static uint64_t random_seed(const memory_queue *q)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)q;
}

static int queue_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	if (!out_ctx || !env || !env->clock || !env->log)
		return concert_sys_error(CONCERT_EINVAL, "open needs out_ctx and an environment");
	*out_ctx = NULL;
	char *dir;
	journal_fsync fsync_policy;
	int rc = memory_uri_parse(uri, &dir, &fsync_policy);
	if (rc < 0)
		return rc;
	memory_queue *q = calloc(1, sizeof(*q));
	if (!q) {
		free(dir);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	memq_table *table = table_new(8);
	if (!table) {
		free(q);
		free(dir);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	atomic_init(&q->concerts, table);
	pthread_mutex_init(&q->table_lock, NULL);
	pthread_mutex_init(&q->compact_lock, NULL);
	atomic_init(&q->next_token_id, 1);
	q->env = *env;
	q->hash_seed = random_seed(q);
	q->opened_at = env->clock(env->clock_ctx);
	if (dir)
		rc = memq_durable_open(q, dir, fsync_policy);
	free(dir);
	if (rc < 0) {
		queue_close(q);
		return rc;
	}
	*out_ctx = q;
	return 0;
}

const concert_queue_backend concert_memory_queue_backend = {
	.version = CONCERT_QUEUE_BACKEND_VERSION,
	.scheme = "memory",
	.open = queue_open,
	.close = queue_close,
	.health = queue_health,
	.enter = queue_enter,
	.status = queue_status,
	.leave = queue_leave,
	.complete = queue_complete,
	.admit = queue_admit,
	.sweep = queue_sweep,
	.counts = queue_counts,
	.compact = memory_queue_compact,
};

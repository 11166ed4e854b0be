/*
 * The durable side of the memory queue: the "queue" journal, its replay and
 * its snapshots.
 *
 * Journaled: ENTER, ADMIT, LEAVE and DONE (committed before the call
 * returns) and EXPIRE (a hint, see token_expire in queue.c). Not journaled:
 * heartbeat touches (too hot) and the admit_per_second bucket. So on replay
 * a WAITING token's idle deadline is max(recorded deadline, clock at open +
 * the wait_idle_ttl recorded with it): a restart gives every waiting user a
 * full idle TTL instead of expiring everyone who was idle during the
 * downtime. ACTIVE tokens keep their recorded active_until. If the journal
 * shows a user entering again while an older token of theirs is live, the
 * older one had expired without a durable hint and is ended then.
 *
 * Snapshots hold the live tokens, the ended ones still remembered (so a
 * compaction changes no answer), each concert's seq and admitted_total, and
 * the token id counter so that ids are never reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/memory/queue.h"

int memq_journal_append(memory_queue *q, const queue_record *record, uint64_t *out_seq)
{
	uint8_t buf[QUEUE_RECORD_MAX];
	size_t len = queue_record_encode(record, buf, sizeof(buf));
	if (!len)
		return concert_sys_error(CONCERT_EINTERNAL, "unencodable queue record");
	uint64_t seq = journal_append(q->journal, buf, len);
	if (!seq)
		return concert_error_last()->code;   /* journal_append said why */
	*out_seq = seq;
	return 0;
}

static void memq_log(const memory_queue *q, int level, const char *message)
{
	if (level <= q->env.log_level)
		q->env.log(q->env.log_ctx, level, message);
}

/* --- replay --------------------------------------------------------------- */

static int corrupt(const char *why, int64_t id)
{
	return concert_sys_errorf(CONCERT_ECORRUPT, "queue journal: %s (%lld)", why, (long long)id);
}

static void counter_at_least(memory_queue *q, int64_t next_id)
{
	if (atomic_load_explicit(&q->next_token_id, memory_order_relaxed) < next_id)
		atomic_store_explicit(&q->next_token_id, next_id, memory_order_relaxed);
}

/* ENTER and TOKEN: a token with its state as recorded. */
static int replay_token(memory_queue *q, const queue_record *r, int state)
{
	if (r->token_id <= 0 || r->concert_id <= 0 || r->seq <= 0)
		return corrupt("bad token record", r->token_id);
	if (state != CONCERT_QUEUE_WAITING && state != CONCERT_QUEUE_ACTIVE)
		return corrupt("snapshot token not live", r->token_id);
	memq_concert *c;
	int rc = memq_concert_get(q, r->concert_id, &c);
	if (rc < 0)
		return rc;
	if (r->type == QUEUE_RECORD_ENTER && r->seq <= c->last_seq)
		return corrupt("queue entry out of order", r->token_id);
	if (memq_map_find_id(&c->by_id, &c->slab, r->token_id))
		return corrupt("token id used twice", r->token_id);
	size_t len = strlen(r->user_id);
	uint32_t tag = memq_hash_user(q->hash_seed, r->user_id, len);
	memq_token *older = memq_map_find_user(&c->by_user, &c->slab, r->user_id, len, tag);
	if (older)
		memq_token_end(c, older, CONCERT_QUEUE_EXPIRED, r->issued_at);
	concert_time deadline = r->expires_at;
	if (state == CONCERT_QUEUE_WAITING && deadline < q->opened_at + r->wait_idle_ttl)
		deadline = q->opened_at + r->wait_idle_ttl;
	memq_token *t;
	rc = memq_token_alloc(c, &t, r->token_id, r->seq, r->user_id, len, r->issued_at, deadline);
	if (rc < 0)
		return rc;
	memq_token_insert(c, t, tag);
	if (state == CONCERT_QUEUE_ACTIVE)
		memq_token_activate(c, t, r->expires_at);
	c->wait_idle_ttl = r->wait_idle_ttl;
	counter_at_least(q, r->token_id + 1);
	return 0;
}

/* The token a record names, which must exist. */
static int recorded_token(memory_queue *q, const queue_record *r, int64_t token_id,
			  memq_concert **out_concert, memq_token **out)
{
	*out_concert = memq_concert_find(q, r->concert_id);
	*out = *out_concert ? memq_map_find_id(&(*out_concert)->by_id, &(*out_concert)->slab, token_id)
			    : NULL;
	return *out ? 0 : corrupt("record for an unknown token", token_id);
}

static int replay_admit(memory_queue *q, const queue_record *r)
{
	for (size_t i = 0; i < r->id_count; i++) {
		memq_concert *c;
		memq_token *t;
		int rc = recorded_token(q, r, r->ids[i], &c, &t);
		if (rc < 0)
			return rc;
		if (t->state != CONCERT_QUEUE_WAITING)
			return corrupt("admission of a token not waiting", t->id);
		memq_token_activate(c, t, r->expires_at);
		c->admitted_total++;
	}
	return 0;
}

static int replay_end(memory_queue *q, const queue_record *r)
{
	memq_concert *c;
	memq_token *t;
	int rc = recorded_token(q, r, r->token_id, &c, &t);
	if (rc < 0)
		return rc;
	int live = t->state == CONCERT_QUEUE_WAITING || t->state == CONCERT_QUEUE_ACTIVE;
	if (!live || (r->type == QUEUE_RECORD_DONE && t->state != CONCERT_QUEUE_ACTIVE))
		return corrupt("state change of a token in the wrong state", t->id);
	memq_token_end(c, t, r->type == QUEUE_RECORD_DONE ? CONCERT_QUEUE_DONE : CONCERT_QUEUE_EXPIRED,
		       r->at);
	return 0;
}

static int replay_concert(memory_queue *q, const queue_record *r)
{
	memq_concert *c;
	if (r->concert_id <= 0)
		return corrupt("bad concert record", r->concert_id);
	int rc = memq_concert_get(q, r->concert_id, &c);
	if (rc < 0)
		return rc;
	if (r->seq > c->last_seq)
		c->last_seq = r->seq;
	c->admitted_total = r->counter;
	return 0;
}

static int replay_apply(void *ctx, const uint8_t *payload, size_t len)
{
	memory_queue *q = ctx;
	queue_record r;
	int rc = queue_record_decode(&r, payload, len);
	if (rc < 0)
		return rc;
	switch (r.type) {
	case QUEUE_RECORD_ENTER:
		return replay_token(q, &r, CONCERT_QUEUE_WAITING);
	case QUEUE_RECORD_TOKEN:
		return replay_token(q, &r, r.state);
	case QUEUE_RECORD_ADMIT:
		return replay_admit(q, &r);
	case QUEUE_RECORD_LEAVE:
	case QUEUE_RECORD_DONE:
	case QUEUE_RECORD_EXPIRE:
		return replay_end(q, &r);
	case QUEUE_RECORD_CONCERT:
		return replay_concert(q, &r);
	case QUEUE_RECORD_COUNTER:
		if (r.counter > INT64_MAX)
			return corrupt("bad token counter", 0);
		counter_at_least(q, (int64_t)r.counter);
		return 0;
	}
	return corrupt("unknown record type", r.type);
}

/* --- after replay: put the lists back in deadline order --------------------- */

static int by_expiry(const void *a, const void *b)
{
	const memq_token *x = *(memq_token *const *)a, *y = *(memq_token *const *)b;
	if (x->expires_at != y->expires_at)
		return x->expires_at < y->expires_at ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int by_end(const void *a, const void *b)
{
	const memq_token *x = *(memq_token *const *)a, *y = *(memq_token *const *)b;
	if (x->ended_at != y->ended_at)
		return x->ended_at < y->ended_at ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Replay appends in journal order, but expiry pops list heads and needs
 * deadline order (touches reorder a snapshot's waiting tokens, and replayed
 * deadlines were raised). Sorting once at open restores it.
 */
static int list_sort(memq_link *list, int (*cmp)(const void *, const void *))
{
	size_t n = 0;
	for (memq_link *l = list->next; l != list; l = l->next)
		n++;
	if (n < 2)
		return 0;
	memq_token **items = malloc(n * sizeof(*items));
	if (!items)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	n = 0;
	for (memq_link *l = list->next; l != list; l = l->next)
		items[n++] = (memq_token *)l;
	qsort(items, n, sizeof(*items), cmp);
	memq_list_init(list);
	for (size_t i = 0; i < n; i++)
		memq_list_append(list, &items[i]->link);
	free(items);
	return 0;
}

static int sort_concert(void *arg, memq_concert *c)
{
	(void)arg;
	int rc = list_sort(&c->waiting, by_expiry);
	if (rc == 0)
		rc = list_sort(&c->active, by_expiry);
	if (rc == 0)
		rc = list_sort(&c->ended, by_end);
	return rc;
}

int memq_durable_open(memory_queue *q, const char *dir, journal_fsync policy)
{
	journal_report report;
	int rc = journal_open(&q->journal, dir, "queue", policy, replay_apply, q, &report);
	if (rc == 0)
		rc = memq_each_concert(q, sort_concert, NULL);
	if (rc == 0 && report.truncated_bytes) {
		char message[160];
		snprintf(message, sizeof(message), "queue journal: torn tail of %llu bytes truncated",
			 (unsigned long long)report.truncated_bytes);
		memq_log(q, CONCERT_LOG_WARN, message);
	}
	return rc;
}

/* --- snapshots ------------------------------------------------------------ */

typedef struct snapshot_state {
	journal_snapshot *snap;
	int rc;
} snapshot_state;

static void snapshot_put(snapshot_state *s, const queue_record *r)
{
	uint8_t buf[QUEUE_RECORD_MAX];
	size_t len = queue_record_encode(r, buf, sizeof(buf));
	if (s->rc == 0)
		s->rc = len ? journal_snapshot_put(s->snap, buf, len)
			    : concert_sys_error(CONCERT_EINTERNAL, "unencodable queue token");
}

static void snapshot_token(snapshot_state *s, const memq_concert *c, const memq_token *t)
{
	queue_record r = { .type = QUEUE_RECORD_TOKEN, .token_id = t->id, .concert_id = c->id,
		.seq = t->seq, .state = t->state, .issued_at = t->issued_at,
		.expires_at = t->expires_at, .wait_idle_ttl = c->wait_idle_ttl };
	memcpy(r.user_id, t->user_id, t->user_len);
	snapshot_put(s, &r);
}

/*
 * An ended token still remembered (status answers DONE or EXPIRED until
 * retention passes): a compaction must not change that answer, so it is
 * written as an ACTIVE token followed by the record that ended it.
 */
static void snapshot_ended_token(snapshot_state *s, const memq_concert *c, const memq_token *t)
{
	queue_record r = { .type = QUEUE_RECORD_TOKEN, .token_id = t->id, .concert_id = c->id,
		.seq = t->seq, .state = CONCERT_QUEUE_ACTIVE, .issued_at = t->issued_at,
		.expires_at = t->expires_at, .wait_idle_ttl = c->wait_idle_ttl };
	memcpy(r.user_id, t->user_id, t->user_len);
	snapshot_put(s, &r);
	queue_record end = { .type = t->state == CONCERT_QUEUE_DONE ? QUEUE_RECORD_DONE
								    : QUEUE_RECORD_EXPIRE,
		.token_id = t->id, .concert_id = c->id, .at = t->ended_at };
	snapshot_put(s, &end);
}

/* Ended tokens first, then ACTIVE ones, then WAITING ones in queue order, as
 * replay expects. */
static void snapshot_concert(snapshot_state *s, const memq_concert *c)
{
	queue_record r = { .type = QUEUE_RECORD_CONCERT, .concert_id = c->id, .seq = c->last_seq,
		.counter = c->admitted_total };
	snapshot_put(s, &r);
	for (const memq_link *l = c->ended.next; l != &c->ended; l = l->next)
		snapshot_ended_token(s, c, (const memq_token *)l);
	for (const memq_link *l = c->active.next; l != &c->active; l = l->next)
		snapshot_token(s, c, (const memq_token *)l);
	for (uint32_t slot = memq_rank_next(&c->rank, 0); slot != UINT32_MAX;
	     slot = memq_rank_next(&c->rank, slot + 1))
		snapshot_token(s, c, c->rank.tokens[slot]);
}

static int snapshot_emit_concert(void *arg, memq_concert *c)
{
	snapshot_concert(arg, c);
	return 0;
}

static int snapshot_emit(void *ctx, journal_snapshot *snap)
{
	memory_queue *q = ctx;
	snapshot_state s = { snap, 0 };
	queue_record r = { .type = QUEUE_RECORD_COUNTER,
		.counter = (uint64_t)atomic_load_explicit(&q->next_token_id, memory_order_relaxed) };
	snapshot_put(&s, &r);
	memq_each_concert(q, snapshot_emit_concert, &s);
	return s.rc;
}

static int lock_concert(void *arg, memq_concert *c)
{
	(void)arg;
	pthread_mutex_lock(&c->lock);
	return 0;
}

static int unlock_concert(void *arg, memq_concert *c)
{
	(void)arg;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * With compact_lock held: table_lock keeps new concerts out, then every
 * concert lock stops every append while the snapshot is written.
 */
static int compact_locked(memory_queue *q)
{
	pthread_mutex_lock(&q->table_lock);
	memq_each_concert(q, lock_concert, NULL);
	int rc = journal_compact(q->journal, snapshot_emit, q);
	memq_each_concert(q, unlock_concert, NULL);
	pthread_mutex_unlock(&q->table_lock);
	return rc;
}

int memory_queue_compact(void *ctx)
{
	memory_queue *q = ctx;
	if (!q->journal)
		return 0;
	pthread_mutex_lock(&q->compact_lock);
	int rc = compact_locked(q);
	pthread_mutex_unlock(&q->compact_lock);
	return rc;
}

/*
 * The call that pushed the journal past the threshold compacts, unless
 * another is already at it. Its own change is committed already, so a
 * failed compaction is logged rather than returned.
 */
static void compact_if_large(memory_queue *q)
{
	if (pthread_mutex_trylock(&q->compact_lock) != 0)
		return;
	if (journal_size(q->journal) > MEMQ_COMPACT_BYTES && compact_locked(q) < 0) {
		char message[300];
		snprintf(message, sizeof(message), "queue journal compaction failed: %s",
			 concert_error_last()->message);
		memq_log(q, CONCERT_LOG_ERROR, message);
		concert_error_clear();
	}
	pthread_mutex_unlock(&q->compact_lock);
}

int memq_journal_commit(memory_queue *q, uint64_t seq)
{
	if (!seq)
		return 0;
	int rc = journal_commit(q->journal, seq);
	if (rc == 0 && journal_size(q->journal) > MEMQ_COMPACT_BYTES)
		compact_if_large(q);
	return rc;
}

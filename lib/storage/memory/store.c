/*
 * The memory store: open/close, the tables every part shares, the journal
 * plumbing and the vtable. The locking rules are in store.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/memory/store.h"

#define CHAIN_MIN_BUCKETS 16
#define STRIPE_SHIFT 8   /* log2(STORE_STRIPES) */
#define SHARD_SHIFT 6    /* log2(STORE_SHARDS) */

_Static_assert(STORE_STRIPES == 1 << STRIPE_SHIFT, "stripe shift");
_Static_assert(STORE_SHARDS == 1 << SHARD_SHIFT, "shard shift");

/* ---- id tables --------------------------------------------------------- */

static void *id_table_get(id_table *t, int64_t id)
{
	if (id <= 0 || id > ID_TABLE_MAX)
		return NULL;
	uint64_t i = (uint64_t)id - 1;
	id_slot *chunk = atomic_load_explicit(&t->chunks[i >> ID_TABLE_CHUNK_BITS], memory_order_acquire);
	if (!chunk)
		return NULL;
	return atomic_load_explicit(&chunk[i & ((1u << ID_TABLE_CHUNK_BITS) - 1)], memory_order_acquire);
}

int id_table_set(id_table *t, int64_t id, void *obj)
{
	if (id <= 0 || id > ID_TABLE_MAX)
		return concert_sys_errorf(CONCERT_ELIMIT, "id %lld is beyond the memory store's tables",
					  (long long)id);
	uint64_t i = (uint64_t)id - 1;
	_Atomic(id_slot *) *slot = &t->chunks[i >> ID_TABLE_CHUNK_BITS];
	id_slot *chunk = atomic_load_explicit(slot, memory_order_relaxed);
	if (!chunk) {
		chunk = calloc((size_t)1 << ID_TABLE_CHUNK_BITS, sizeof(*chunk));
		if (!chunk)
			return concert_sys_error(CONCERT_ENOMEM, NULL);
		atomic_store_explicit(slot, chunk, memory_order_release);
	}
	atomic_store_explicit(&chunk[i & ((1u << ID_TABLE_CHUNK_BITS) - 1)], obj, memory_order_release);
	return 0;
}

static void id_table_free(id_table *t)
{
	for (size_t i = 0; i < ID_TABLE_CHUNKS; i++)
		free(atomic_load_explicit(&t->chunks[i], memory_order_relaxed));
}

/* ---- chained hash tables ----------------------------------------------- */

static void **link_of(const chain_table *t, const void *node)
{
	return (void **)((char *)node + t->link);
}

static uint64_t hash_of(const chain_table *t, const void *node)
{
	return *(const uint64_t *)((const char *)node + t->hash_at);
}

static size_t bucket_of(const chain_table *t, uint64_t hash)
{
	return (size_t)(hash >> t->shift) & t->mask;
}

/* Allocates the first buckets: 0 or CONCERT_ENOMEM. */
static int chain_init(chain_table *t, size_t link, size_t hash_at, unsigned shift)
{
	*t = (chain_table){ calloc(CHAIN_MIN_BUCKETS, sizeof(void *)), CHAIN_MIN_BUCKETS - 1, 0,
		link, hash_at, shift };
	return t->buckets ? 0 : concert_sys_error(CONCERT_ENOMEM, NULL);
}

void *chain_first(const chain_table *t, uint64_t hash)
{
	return t->buckets[bucket_of(t, hash)];
}

static void chain_grow(chain_table *t)
{
	size_t n = (t->mask + 1) * 2;
	void **buckets = calloc(n, sizeof(*buckets));
	if (!buckets)
		return;
	chain_table grown = *t;
	grown.buckets = buckets;
	grown.mask = n - 1;
	for (size_t b = 0; b <= t->mask; b++) {
		void *node = t->buckets[b];
		while (node) {
			void *next = *link_of(t, node);
			size_t i = bucket_of(&grown, hash_of(t, node));
			*link_of(t, node) = buckets[i];
			buckets[i] = node;
			node = next;
		}
	}
	free(t->buckets);
	*t = grown;
}

void chain_insert(chain_table *t, void *node)
{
	/* A failed growth only makes the chains longer. */
	if (t->count > t->mask)
		chain_grow(t);
	size_t i = bucket_of(t, hash_of(t, node));
	*link_of(t, node) = t->buckets[i];
	t->buckets[i] = node;
	t->count++;
}

void chain_remove(chain_table *t, void *node)
{
	void **p = &t->buckets[bucket_of(t, hash_of(t, node))];
	while (*p != node)
		p = link_of(t, *p);
	*p = *link_of(t, node);
	t->count--;
}

void chain_each(chain_table *t, void (*fn)(void *node, void *ctx), void *ctx)
{
	for (size_t b = 0; t->buckets && b <= t->mask; b++) {
		void *node = t->buckets[b];
		while (node) {
			void *next = *link_of(t, node);
			fn(node, ctx);
			node = next;
		}
	}
}

void chain_free(chain_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->count = 0;
}

/* ---- hashing, ids, look-ups -------------------------------------------- */

/*
 * The low bits choose the shard: the id's block, so the ids one stripe hands
 * out in a row share a shard. Above them goes the id's rank among the ids of
 * its shard, so a shard's ids fill its buckets densely.
 */
uint64_t store_hash_id(int64_t id)
{
	uint64_t u = (uint64_t)id, block = u / ID_BLOCK;
	uint64_t rank = block / STORE_SHARDS * ID_BLOCK + u % ID_BLOCK;
	return block % STORE_SHARDS | rank << SHARD_SHIFT;
}

/* FNV-1a, then a 64-bit finaliser so the low bits (the stripe) mix well. */
uint64_t store_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

int64_t store_next_id(memory_store *s, user_stripe *st, store_counter kind)
{
	id_block *b = &st->ids[kind];
	if (b->next == b->end) {
		b->next = atomic_fetch_add_explicit(&s->next_id[kind], ID_BLOCK, memory_order_relaxed);
		b->end = b->next + ID_BLOCK;
	}
	return b->next++;
}

void store_seen_id(memory_store *s, store_counter kind, int64_t id)
{
	if (id >= atomic_load_explicit(&s->next_id[kind], memory_order_relaxed))
		atomic_store_explicit(&s->next_id[kind], id + 1, memory_order_relaxed);
}

mem_concert *store_concert(memory_store *s, int64_t id)
{
	return id_table_get(&s->concerts, id);
}

mem_schedule *store_schedule(memory_store *s, int64_t id)
{
	return id_table_get(&s->schedules, id);
}

int store_window(const mem_concert *c, concert_time now)
{
	if (now < c->opens_at || now >= c->closes_at)
		return concert_sys_errorf(CONCERT_ECLOSED, "concert %lld is not open for reservations now",
					  (long long)c->id);
	return 0;
}

user_stripe *store_stripe(memory_store *s, uint64_t user_hash)
{
	return &s->stripes[user_hash & (STORE_STRIPES - 1)];
}

mem_user *user_find(user_stripe *st, const char *user_id, uint64_t hash)
{
	for (mem_user *u = chain_first(&st->users, hash); u; u = u->next)
		if (u->hash == hash && strcmp(u->id, user_id) == 0)
			return u;
	return NULL;
}

mem_user *user_get(user_stripe *st, const char *user_id, uint64_t hash)
{
	mem_user *u = user_find(st, user_id, hash);
	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u) {
		concert_sys_error(CONCERT_ENOMEM, NULL);
		return NULL;
	}
	u->hash = hash;
	concert_sys_strlcpy(u->id, user_id, sizeof(u->id));
	chain_insert(&st->users, u);
	return u;
}

mem_seat *schedule_seat(mem_schedule *sch, int32_t seat_no)
{
	if (!sch->seat_count)
		return NULL;
	if (sch->dense) {
		int64_t i = (int64_t)seat_no - sch->seats[0].seat_no;
		return i >= 0 && (size_t)i < sch->seat_count ? &sch->seats[i] : NULL;
	}
	size_t lo = 0, hi = sch->seat_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sch->seats[mid].seat_no < seat_no)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sch->seat_count && sch->seats[lo].seat_no == seat_no ? &sch->seats[lo] : NULL;
}

/* ---- journal ------------------------------------------------------------ */

int store_log(memory_store *s, const store_record *r, uint64_t *seq)
{
	*seq = 0;
	if (!s->journal)
		return 0;
	store_record_buf buf;
	store_record_buf_init(&buf);
	int rc = store_record_encode(&buf, r);
	if (rc == 0) {
		*seq = journal_append(s->journal, buf.data, buf.len);
		if (!*seq) {
			rc = concert_error_last()->code;
			if (rc >= 0)
				rc = concert_sys_error(CONCERT_EIO, "journal append failed");
		}
	}
	store_record_buf_free(&buf);
	return rc;
}

int store_commit(memory_store *s, uint64_t seq)
{
	if (!seq || journal_commit(s->journal, seq) == 0)
		return 0;
	/* The change is applied in memory but not durable: that is an I/O
	 * error whatever the journal reported. */
	char message[256];
	concert_sys_strlcpy(message, concert_error_last()->message, sizeof(message));
	return concert_sys_error(CONCERT_EIO, message);
}

static void store_logf(memory_store *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void store_logf(memory_store *s, int level, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	if (level > s->env.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->env.log(s->env.log_ctx, level, line);
}

/* ---- quiescing ------------------------------------------------------------ */

void stripe_enter(memory_store *s, user_stripe *st)
{
	pthread_mutex_lock(&st->lock);
	while (atomic_load_explicit(&s->quiesced, memory_order_acquire)) {
		pthread_mutex_unlock(&st->lock);
		pthread_mutex_lock(&s->gate_lock);
		while (s->gate_closed)
			pthread_cond_wait(&s->gate_opened, &s->gate_lock);
		pthread_mutex_unlock(&s->gate_lock);
		pthread_mutex_lock(&st->lock);
	}
}

void store_quiesce(memory_store *s)
{
	pthread_mutex_lock(&s->exclusive);
	pthread_rwlock_wrlock(&s->catalog);
	pthread_mutex_lock(&s->gate_lock);
	s->gate_closed = true;
	atomic_store_explicit(&s->quiesced, true, memory_order_release);
	pthread_mutex_unlock(&s->gate_lock);
	/* A mutation under way holds its stripe; one that takes it after us
	 * sees the gate closed. */
	for (size_t i = 0; i < STORE_STRIPES; i++) {
		pthread_mutex_lock(&s->stripes[i].lock);
		pthread_mutex_unlock(&s->stripes[i].lock);
	}
}

void store_resume(memory_store *s)
{
	pthread_mutex_lock(&s->gate_lock);
	s->gate_closed = false;
	atomic_store_explicit(&s->quiesced, false, memory_order_release);
	pthread_cond_broadcast(&s->gate_opened);
	pthread_mutex_unlock(&s->gate_lock);
	pthread_rwlock_unlock(&s->catalog);
	pthread_mutex_unlock(&s->exclusive);
}

/* ---- open / close -------------------------------------------------------- */

static void free_node(void *node, void *ctx)
{
	(void)ctx;
	free(node);
}

static void free_user(void *node, void *ctx)
{
	mem_user *u = node;
	(void)ctx;
	free(u->txs);
	free(u);
}

static void store_close(void *ctx)
{
	memory_store *s = ctx;
	if (!s)
		return;
	journal_close(s->journal);
	holds_free(s);
	reservations_free(s);
	for (size_t i = 0; i < STORE_STRIPES; i++) {
		user_stripe *st = &s->stripes[i];
		chain_each(&st->idem, free_node, NULL);
		chain_free(&st->idem);
		chain_each(&st->users, free_user, NULL);
		chain_free(&st->users);
		pthread_mutex_destroy(&st->lock);
	}
	for (size_t i = 0; i < STORE_SHARDS; i++) {
		pthread_mutex_destroy(&s->holds[i].lock);
		pthread_mutex_destroy(&s->reservations[i].lock);
	}
	catalog_free(s);
	id_table_free(&s->concerts);
	id_table_free(&s->schedules);
	pthread_rwlock_destroy(&s->catalog);
	pthread_mutex_destroy(&s->exclusive);
	pthread_mutex_destroy(&s->gate_lock);
	pthread_cond_destroy(&s->gate_opened);
	free(s);
}

static int init_tables(memory_store *s)
{
	int rc = 0;
	for (size_t i = 0; i < STORE_STRIPES && rc == 0; i++) {
		user_stripe *st = &s->stripes[i];
		rc = chain_init(&st->users, offsetof(mem_user, next), offsetof(mem_user, hash),
				STRIPE_SHIFT);
		if (rc == 0)
			rc = chain_init(&st->idem, offsetof(idem_entry, next), offsetof(idem_entry, hash),
					STRIPE_SHIFT);
	}
	for (size_t i = 0; i < STORE_SHARDS && rc == 0; i++) {
		rc = chain_init(&s->holds[i].holds, offsetof(mem_hold, shard_next),
				offsetof(mem_hold, hash), SHARD_SHIFT);
		if (rc == 0)
			rc = chain_init(&s->reservations[i].reservations, offsetof(mem_reservation, next),
					offsetof(mem_reservation, hash), SHARD_SHIFT);
	}
	return rc;
}

static memory_store *store_new(const concert_backend_env *env)
{
	size_t size = (sizeof(memory_store) + STORE_CACHE_LINE - 1) / STORE_CACHE_LINE * STORE_CACHE_LINE;
	memory_store *s = aligned_alloc(STORE_CACHE_LINE, size);
	if (!s)
		return NULL;
	memset(s, 0, size);
	s->env = *env;
	pthread_rwlock_init(&s->catalog, NULL);
	pthread_mutex_init(&s->exclusive, NULL);
	pthread_mutex_init(&s->gate_lock, NULL);
	pthread_cond_init(&s->gate_opened, NULL);
	atomic_init(&s->quiesced, false);
	for (size_t i = 0; i < STORE_COUNTER_COUNT; i++)
		atomic_init(&s->next_id[i], 1);
	for (size_t i = 0; i < STORE_STRIPES; i++)
		pthread_mutex_init(&s->stripes[i].lock, NULL);
	for (size_t i = 0; i < STORE_SHARDS; i++) {
		pthread_mutex_init(&s->holds[i].lock, NULL);
		pthread_mutex_init(&s->reservations[i].lock, NULL);
	}
	return s;
}

static int open_journal(memory_store *s, const char *dir, journal_fsync policy)
{
	journal_report report;
	int rc = journal_open(&s->journal, dir, "store", policy, store_replay, s, &report);
	if (rc < 0)
		return rc;
	store_logf(s, CONCERT_LOG_INFO,
		   "memory store %s: generation %llu, %llu snapshot and %llu journal records replayed",
		   dir, (unsigned long long)report.generation,
		   (unsigned long long)report.snapshot_records,
		   (unsigned long long)report.journal_records);
	if (report.truncated_bytes)
		store_logf(s, CONCERT_LOG_WARN,
			   "memory store %s: torn journal tail of %llu bytes truncated", dir,
			   (unsigned long long)report.truncated_bytes);
	return 0;
}

static int store_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	char *dir = NULL;
	journal_fsync policy;
	*out_ctx = NULL;
	int rc = memory_uri_parse(uri, &dir, &policy);
	if (rc < 0)
		return rc;
	memory_store *s = store_new(env);
	rc = s ? init_tables(s) : concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc == 0 && dir)
		rc = open_journal(s, dir, policy);
	free(dir);
	if (rc < 0) {
		/* Closing must not replace the reason. */
		concert_error saved = *concert_error_last();
		char message[256];
		concert_sys_strlcpy(message, saved.message, sizeof(message));
		store_close(s);
		return concert_sys_error(rc, message);
	}
	*out_ctx = s;
	return 0;
}

static int store_health(void *ctx)
{
	(void)ctx;
	return 0;
}

const concert_store_backend concert_memory_store_backend = {
	.version = CONCERT_STORE_BACKEND_VERSION,
	.scheme = "memory",
	.open = store_open,
	.close = store_close,
	.health = store_health,
	.concert_add = store_concert_add,
	.schedule_add = store_schedule_add,
	.seats_add = store_seats_add,
	.concerts_list = store_concerts_list,
	.concert_get = store_concert_get,
	.schedules_list = store_schedules_list,
	.schedule_get = store_schedule_get,
	.seats_list = store_seats_list,
	.hold_seats = store_hold_seats,
	.hold_release = store_hold_release,
	.hold_extend = store_hold_extend,
	.hold_get = store_hold_get,
	.charge = store_charge,
	.balance = store_balance,
	.history = store_history,
	.pay = store_pay,
	.cancel = store_cancel,
	.reservation_get = store_reservation_get,
	.sweep = store_sweep,
	.compact = store_compact,
	.audit = store_audit,
};

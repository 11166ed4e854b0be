/*
 * Internal: the memory queue backend, shared by queue.c (the operations),
 * queue_index.c (per-concert indexes) and queue_durable.c (journal, replay,
 * snapshots).
 *
 * Each concert has its own mutex and its own indexes, so calls on different
 * concerts never contend, and finding a concert takes no lock at all.
 * Lock order: compact_lock, table_lock, then concert locks (compaction
 * takes them all; other calls hold at most one of them at a time).
 */
#ifndef CONCERT_MEMORY_QUEUE_H
#define CONCERT_MEMORY_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>

#include "codec/queue_records.h"
#include "storage/memory/memory.h"

/* An intrusive doubly linked list node; a list is a circular sentinel. */
typedef struct memq_link {
	struct memq_link *prev, *next;
} memq_link;

/*
 * A token's number in its concert's slab (queue_slab.c): chunk number and
 * record within the chunk, plus one. The maps hold these instead of
 * pointers, so that a map slot is 8 bytes. 0: none.
 */
typedef uint32_t memq_ref;

/*
 * One slab record. A token's fields and its user id fit in two cache
 * lines; the user id is not NUL-terminated, user_len says where it ends.
 */
typedef struct memq_token {
	memq_link link;            /* first: the concert's waiting, active or ended list */
	int64_t id;
	int64_t seq;               /* per-concert entry order, as journaled */
	concert_time issued_at;
	concert_time expires_at;   /* WAITING: idle deadline; ACTIVE: active_until */
	union {                    /* never needed at once: */
		uint32_t slot;         /* WAITING: its slot in the concert's rank */
		concert_time ended_at; /* EXPIRED/DONE: when it ended */
	};
	memq_ref ref;              /* its own record; while free, the next free one */
	uint8_t state;             /* concert_queue_state */
	uint8_t user_len;
	char user_id[CONCERT_USER_ID_MAX];
} memq_token;

#define MEMQ_RECORD_SIZE 128
_Static_assert(sizeof(memq_token) <= MEMQ_RECORD_SIZE, "a token must fit its slab record");

/*
 * A chunk of records. The chunks with a free record form a doubly linked
 * chain (by chunk number plus one), so that a chunk whose last token goes
 * can leave it from anywhere.
 */
typedef struct memq_slab_chunk {
	memq_token *records;       /* NULL: released, number free for reuse */
	uint32_t capacity;
	uint32_t used;             /* records handed out at least once */
	uint32_t live;
	uint32_t free;             /* first free record below `used`, plus one; 0: none */
	uint32_t prev_open, next_open;
} memq_slab_chunk;

/*
 * Tokens of one concert, in fixed-size records: no allocator call per
 * token, and a token is found from its ref by arithmetic (the chunk table
 * is small enough to stay in cache), so the maps can hold 32-bit refs.
 */
typedef struct memq_slab {
	memq_slab_chunk *chunks;
	uint32_t count;            /* chunk numbers handed out */
	uint32_t chunks_cap;
	uint32_t max_chunks;       /* bounds the refs; a test lowers it */
	uint32_t open;             /* first chunk with a free record, plus one; 0: none */
	uint32_t spare;            /* an empty chunk kept back, plus one; 0: none */
	uint32_t released;         /* a released chunk number, plus one; 0: none */
	uint64_t live;
} memq_slab;

/*
 * Open addressing, linear probing, backward-shift deletion. A slot holds
 * 32 bits of the key's hash, whose top bits are its home slot, so growing
 * or shrinking never looks at a token and writes the new table in order;
 * a token is only looked at when its tag matches.
 */
typedef struct memq_map_slot {
	uint32_t tag;
	memq_ref ref;              /* 0: empty */
} memq_map_slot;

typedef struct memq_map {
	memq_map_slot *slots;
	size_t mask;
	unsigned shift;            /* 32 - log2(slots): tag >> shift is the home slot */
	size_t count;
} memq_map;

/*
 * The WAITING tokens in entry order, for positions and admission. Each
 * token owns a slot (slots only grow until a rebuild renumbers them densely);
 * a bitmap marks live slots and a Fenwick tree counts live slots per 64-slot
 * word, so a position is one O(log(n/64)) prefix sum plus one popcount, over
 * arrays small enough to stay in cache (≈ 200 KiB for a million tokens).
 */
typedef struct memq_rank {
	memq_token **tokens;       /* slot -> token; NULL once it left the slot */
	uint64_t *bits;            /* live slots */
	uint32_t *tree;            /* Fenwick tree over words, 1-based */
	uint32_t cap;              /* slots: a power of two, at least 64 */
	uint32_t used;             /* next free slot */
	uint32_t head;             /* no live slot below it */
	uint32_t live;
} memq_rank;

typedef struct memq_concert {
	pthread_mutex_t lock;
	int64_t id;
	uint64_t hash_seed;        /* the backend's, for by_user */
	memq_slab slab;            /* every token still remembered */
	memq_map by_id;            /* every token still remembered */
	memq_map by_user;          /* live (WAITING or ACTIVE) tokens */
	memq_rank rank;            /* WAITING tokens by seq */
	memq_link waiting;         /* WAITING by last touch: deadlines ascend */
	memq_link active;          /* ACTIVE by admission: active_until ascends */
	memq_link ended;           /* EXPIRED/DONE by end time */
	uint32_t active_count;
	int64_t last_seq;
	uint64_t admitted_total;
	/* From the last policy seen; used by sweep and snapshots, which get none. */
	concert_time wait_idle_ttl;
	concert_time retention;    /* ended tokens are forgotten after this; -1: never */
	/* Token bucket for admit_per_second, in thousandths of an admission. */
	int64_t bucket;
	concert_time bucket_at;
	uint32_t bucket_rate;      /* 0: not started */
} memq_concert;

/*
 * The concert table. Concerts are never removed before close, so lookups
 * need no lock: entries are published with release stores, and a table
 * replaced by a bigger one is kept (retired) until close, so a reader
 * holding it still reads valid memory. A reader on a replaced table can only
 * miss concerts created after it loaded the table pointer. Creation is rare
 * and takes q->table_lock.
 */
typedef struct memq_table {
	struct memq_table *retired;   /* the table this one replaced */
	size_t mask;
	size_t count;
	_Atomic(memq_concert *) slots[];
} memq_table;

typedef struct memory_queue {
	_Atomic(memq_table *) concerts;
	pthread_mutex_t table_lock;   /* creation; compaction holds it too */
	_Atomic int64_t next_token_id;
	concert_backend_env env;
	journal *journal;          /* NULL: ephemeral */
	pthread_mutex_t compact_lock;
	concert_time opened_at;    /* clock at open, for replayed idle deadlines */
	uint64_t hash_seed;
} memory_queue;

/* queue_index.c --------------------------------------------------------- */

/* Map tags (32 bits of a hash) of a token id and of a user id. */
uint32_t memq_hash_id(int64_t id);
/* Keyed by a random seed per backend: user ids come from the outside. */
uint32_t memq_hash_user(uint64_t seed, const char *user_id, size_t len);

int memq_map_init(memq_map *m);
void memq_map_free(memq_map *m);
memq_token *memq_map_find_id(const memq_map *m, const memq_slab *slab, int64_t id);
memq_token *memq_map_find_user(const memq_map *m, const memq_slab *slab, const char *user_id,
	size_t len, uint32_t tag);
/* Makes room for one more entry; CONCERT_ENOMEM. */
int memq_map_reserve(memq_map *m);
/* Inserts a token known to be absent after memq_map_reserve succeeded. */
void memq_map_insert(memq_map *m, uint32_t tag, memq_ref ref);
void memq_map_remove(memq_map *m, uint32_t tag, memq_ref ref);

/*
 * Starts loading the slot a look-up or insert of `tag` will probe first: a
 * big table's slot is a cache miss, and the caller has other work to do
 * meanwhile. Under the concert lock (the table may be replaced otherwise).
 */
static inline void memq_map_prefetch(const memq_map *m, uint32_t tag)
{
	__builtin_prefetch(&m->slots[tag >> m->shift]);
}

int memq_rank_init(memq_rank *r);
void memq_rank_free(memq_rank *r);
/* Makes sure a slot is free, renumbering or growing; CONCERT_ENOMEM. */
int memq_rank_reserve(memq_rank *r);
/* Appends a token after memq_rank_reserve succeeded (sets token->slot). */
void memq_rank_append(memq_rank *r, memq_token *token);
void memq_rank_remove(memq_rank *r, uint32_t slot);
/* 1-based position of a live slot among the live slots. */
int64_t memq_rank_position(const memq_rank *r, uint32_t slot);
/* The first live slot at or after `from`, or UINT32_MAX. */
uint32_t memq_rank_next(const memq_rank *r, uint32_t from);
/* The oldest WAITING token (advancing the head cursor), or NULL. */
memq_token *memq_rank_first(memq_rank *r);

static inline void memq_list_init(memq_link *list)
{
	list->prev = list->next = list;
}

static inline int memq_list_empty(const memq_link *list)
{
	return list->next == list;
}

static inline void memq_list_append(memq_link *list, memq_link *node)
{
	node->prev = list->prev;
	node->next = list;
	list->prev->next = node;
	list->prev = node;
}

static inline void memq_list_unlink(memq_link *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
}

/* The token at the head of a non-empty list (link is its first member). */
static inline memq_token *memq_list_first(const memq_link *list)
{
	return (memq_token *)list->next;
}

/* queue_slab.c ---------------------------------------------------------- */

void memq_slab_init(memq_slab *s);
/* Releases every chunk: the tokens go with them. */
void memq_slab_free(memq_slab *s);
/* A record with only its ref set; CONCERT_ENOMEM, or CONCERT_ELIMIT when refs run out. */
int memq_slab_alloc(memq_slab *s, memq_token **out);
void memq_slab_release(memq_slab *s, memq_token *t);

#define MEMQ_CHUNK_BITS 14     /* at most 2^14 records (2 MiB) per chunk */

static inline memq_token *memq_slab_token(const memq_slab *s, memq_ref ref)
{
	uint32_t n = ref - 1;
	return &s->chunks[n >> MEMQ_CHUNK_BITS].records[n & ((1u << MEMQ_CHUNK_BITS) - 1)];
}

/* queue.c --------------------------------------------------------------- */

memq_concert *memq_concert_find(memory_queue *q, int64_t concert_id);
int memq_concert_get(memory_queue *q, int64_t concert_id, memq_concert **out);

/*
 * A new WAITING token, with room reserved in every index so that
 * memq_token_insert cannot fail (the caller journals in between; if that
 * fails, it gives the record back with memq_slab_release).
 * CONCERT_ENOMEM or CONCERT_ELIMIT.
 */
int memq_token_alloc(memq_concert *c, memq_token **out, int64_t id, int64_t seq,
	const char *user_id, size_t user_len, concert_time issued_at, concert_time deadline);
/* Puts an allocated token at the back of the queue; user_tag: memq_hash_user's. */
void memq_token_insert(memq_concert *c, memq_token *t, uint32_t user_tag);
/* WAITING -> ACTIVE (admitted_total is the caller's). */
void memq_token_activate(memq_concert *c, memq_token *t, concert_time active_until);
/* Ends a live token: EXPIRED or DONE (journaling not included). */
void memq_token_end(memq_concert *c, memq_token *t, int state, concert_time now);

/* Calls fn on every concert (taking no lock); stops at a non-zero return. */
int memq_each_concert(memory_queue *q, int (*fn)(void *arg, memq_concert *c), void *arg);

/* queue_durable.c ------------------------------------------------------- */

/* Opens the journal in `dir` and replays it into q. */
int memq_durable_open(memory_queue *q, const char *dir, journal_fsync policy);
/* Appends a record and sets *out_seq. CONCERT_ENOMEM, or CONCERT_EIO once the journal failed. */
int memq_journal_append(memory_queue *q, const queue_record *record, uint64_t *out_seq);
/* Commits `seq` (if any) after the caller released its locks; may compact. */
int memq_journal_commit(memory_queue *q, uint64_t seq);

/*
 * Writes a snapshot of the live tokens and starts a new journal, holding
 * every lock. Done automatically when the journal passes MEMQ_COMPACT_BYTES;
 * exposed for tests and for a future engine-level compact.
 */
int memory_queue_compact(void *ctx);

#define MEMQ_COMPACT_BYTES ((uint64_t)64 << 20)

#endif

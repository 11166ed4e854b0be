/*
 * Internal: the memory store's data, shared by lib/storage/memory/store*.c.
 *
 * Locks, always taken in this order (any of them may be skipped):
 *   catalog rwlock -> user stripe -> schedule -> hold shard -> reservation shard
 * - catalog: adding concerts and schedules, and each concert's schedule
 *   list. Looking a concert or schedule up by id takes no lock: the id
 *   tables publish entries atomically and nothing in them is ever freed.
 * - user stripe (users hashed by id): the user, its wallet, transactions,
 *   idempotency keys and hold lists, the fields of every hold the user owns,
 *   and the stripe's free holds. A hold is only changed or freed by a thread
 *   holding its owner's stripe, so holding it makes the hold safe to use.
 * - schedule: its seats (state, version, owner, hold expiry).
 * - hold shard (by id block, see store_hash_id): the id -> hold table; a
 *   hold's owner may be read under it, to find which stripe to take.
 * - reservation shard (likewise): the id -> reservation table and each
 *   reservation's state. Reservations are never freed.
 * Every mutation runs under the catalog lock (catalog changes; seats_add
 * takes it for reading) or under a user stripe taken with stripe_enter(),
 * which waits while the store is quiesced. So whole-store operations
 * (compact, audit) quiesce instead of taking every lock: they close the
 * gate, take the catalog lock for writing and each stripe once to drain the
 * mutations under way, and then read a state nothing changes (readers may
 * still run beside them).
 *
 * Every mutation validates, builds its redo record, appends it (durable
 * mode) and then applies that same record with the function replay uses,
 * so replay cannot diverge from what happened live. Everything the apply
 * step allocates is allocated before the append: an append either happens
 * and is applied, or the call fails without an effect.
 */
#ifndef CONCERT_MEMORY_STORE_H
#define CONCERT_MEMORY_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "codec/store_records.h"
#include "storage/memory/memory.h"

#define STORE_STRIPES 256
#define STORE_SHARDS 64
#define STORE_CACHE_LINE 64
#define ID_TABLE_CHUNK_BITS 12
#define ID_TABLE_CHUNKS 4096
#define ID_TABLE_MAX ((int64_t)ID_TABLE_CHUNKS << ID_TABLE_CHUNK_BITS)
#define HOLD_INLINE_SEATS 4
/* Ids a stripe takes from a sequence at a time (see store_next_id). */
#define ID_BLOCK 64

typedef struct memory_store memory_store;
typedef struct mem_user mem_user;
typedef struct mem_schedule mem_schedule;

/* id -> object for dense ids 1..ID_TABLE_MAX; lock-free readers. */
typedef _Atomic(void *) id_slot;
typedef struct id_table {
	_Atomic(id_slot *) chunks[ID_TABLE_CHUNKS];
} id_table;

/* An intrusive chained hash table; nodes carry their link at `link`. */
typedef struct chain_table {
	void **buckets;
	size_t mask;
	size_t count;
	size_t link;      /* offsetof the node's next pointer */
	size_t hash_at;   /* offsetof the node's uint64_t hash */
	unsigned shift;   /* hash bits below it chose the stripe or shard */
} chain_table;

typedef struct mem_concert {
	int64_t id;
	concert_time opens_at;
	concert_time closes_at;
	mem_schedule **schedules;   /* catalog lock */
	size_t schedule_count;
	size_t schedule_cap;
	char title[CONCERT_TITLE_MAX + 1];
} mem_concert;

typedef struct mem_seat {
	int32_t seat_no;
	int32_t state;              /* as stored; see seat_state() */
	int64_t price;
	int64_t version;
	int64_t owner;              /* hold id (HELD) or reservation id (RESERVED) */
	concert_time hold_expires_at;
	char grade[CONCERT_GRADE_MAX + 1];
} mem_seat;

struct mem_schedule {
	_Alignas(STORE_CACHE_LINE) pthread_mutex_t lock;
	mem_seat *seats;            /* ascending seat_no */
	size_t seat_count;
	bool dense;                 /* seats[i].seat_no == seats[0].seat_no + i */
	int64_t id;
	const mem_concert *concert;
	concert_time starts_at;
	char venue[CONCERT_VENUE_MAX + 1];
};

/*
 * A user's holds by kind. LIVE: HELD, perhaps expired (walked to enforce
 * the per-user limits, which move the expired ones to EXPIRED). RELEASED:
 * by id, at most RELEASED_KEEP: releasing more forgets the oldest, so a
 * hold+release loop recycles its hold objects instead of growing. PAID
 * holds are in no list and stay for good; the others stay until a sweep
 * after their expiry (or, when released, until forgotten).
 */
typedef enum hold_list_kind {
	HOLD_LIST_NONE,
	HOLD_LIST_LIVE,
	HOLD_LIST_EXPIRED,
	HOLD_LIST_RELEASED,
	HOLD_LIST_KINDS
} hold_list_kind;

#define RELEASED_KEEP 16

typedef struct hold_list {
	struct mem_hold *head;
	struct mem_hold *tail;
	uint32_t count;
} hold_list;

typedef struct mem_hold {
	int64_t id;
	uint64_t hash;              /* of id, for the shard table */
	struct mem_hold *shard_next;   /* shard chain, or the stripe's free list */
	struct mem_hold *prev;      /* in the owner's list of its kind */
	struct mem_hold *next;
	mem_schedule *schedule;
	mem_user *user;
	concert_time created_at;
	concert_time expires_at;
	int64_t amount;
	uint32_t extensions;
	int32_t state;              /* HELD, RELEASED or PAID; EXPIRED is computed */
	hold_list_kind list;
	uint32_t seat_count;
	int32_t *seat_nos;          /* ascending; inline_seats or malloc'd */
	int32_t inline_seats[HOLD_INLINE_SEATS];
} mem_hold;

struct mem_user {
	mem_user *next;             /* stripe chain */
	uint64_t hash;
	hold_list holds[HOLD_LIST_KINDS];
	bool has_wallet;
	int64_t balance;
	store_tx_record *txs;       /* ascending id */
	size_t tx_count;
	size_t tx_cap;
	char id[CONCERT_USER_ID_MAX + 1];
};

typedef struct idem_entry {
	struct idem_entry *next;
	uint64_t hash;
	mem_user *user;
	int32_t op;                 /* store_idem_op */
	int64_t amount;             /* CHARGE: the amount and the balance after it */
	int64_t balance;
	int64_t hold_id;            /* PAY: the hold paid and its reservation */
	int64_t reservation_id;
	uint64_t seq;               /* journal record that made it (0: replayed) */
	char key[CONCERT_IDEM_KEY_MAX + 1];
} idem_entry;

#define HOLD_SLAB 128
typedef struct hold_slab {
	struct hold_slab *next;
	mem_hold holds[HOLD_SLAB];
} hold_slab;

/* The rest of the ids a stripe took from a sequence: [next, end). */
typedef struct id_block {
	int64_t next;
	int64_t end;
} id_block;

typedef struct user_stripe {
	_Alignas(STORE_CACHE_LINE) pthread_mutex_t lock;
	chain_table users;
	chain_table idem;
	mem_hold *free_holds;
	hold_slab *slabs;
	id_block ids[STORE_COUNTER_COUNT];
} user_stripe;

typedef struct hold_shard {
	_Alignas(STORE_CACHE_LINE) pthread_mutex_t lock;
	chain_table holds;
} hold_shard;

typedef struct mem_reservation {
	struct mem_reservation *next;   /* shard chain */
	uint64_t hash;
	int64_t id;
	int64_t payment_id;
	int64_t hold_id;
	int64_t amount;
	int64_t balance_after;      /* the payer's balance right after paying */
	mem_schedule *schedule;
	mem_user *user;
	concert_time created_at;
	int32_t state;              /* shard lock (and the owner's stripe to change) */
	uint32_t seat_count;
	int32_t seat_nos[];
} mem_reservation;

typedef struct reservation_shard {
	_Alignas(STORE_CACHE_LINE) pthread_mutex_t lock;
	chain_table reservations;
} reservation_shard;

struct memory_store {
	concert_backend_env env;
	journal *journal;           /* NULL: ephemeral */
	pthread_rwlock_t catalog;
	pthread_mutex_t exclusive;  /* one whole-store operation at a time */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_opened;
	bool gate_closed;           /* gate_lock */
	id_table concerts;
	id_table schedules;
	/* Mirrors gate_closed; read (only) by every mutation, so on its own line. */
	_Alignas(STORE_CACHE_LINE) atomic_bool quiesced;
	_Alignas(STORE_CACHE_LINE) _Atomic int64_t next_id[STORE_COUNTER_COUNT];
	user_stripe stripes[STORE_STRIPES];
	hold_shard holds[STORE_SHARDS];
	reservation_shard reservations[STORE_SHARDS];
};

/* ---- store.c: tables, ids, journal ------------------------------------ */

/* Publishes `obj` at `id` (caller serialises writers). ENOMEM, or ELIMIT past ID_TABLE_MAX. */
int id_table_set(id_table *t, int64_t id, void *obj);

/* First node of the chain `hash` falls in; follow the nodes' links. */
void *chain_first(const chain_table *t, uint64_t hash);
/* Never fails: when growing is impossible the chains just get longer. */
void chain_insert(chain_table *t, void *node);
void chain_remove(chain_table *t, void *node);
/* Calls fn on every node (which may free it). */
void chain_each(chain_table *t, void (*fn)(void *node, void *ctx), void *ctx);
void chain_free(chain_table *t);

uint64_t store_hash_id(int64_t id);
uint64_t store_hash_str(const char *s);

/*
 * A fresh id of `kind` (hold, reservation, payment, tx) for a mutation under
 * the stripe `st`. Each stripe takes ID_BLOCK ids from the sequence at a
 * time, so threads on different users neither share the sequence's cache
 * line nor, as shards are chosen by id block, a shard. Ids are unique and
 * increase per user, not across users.
 */
int64_t store_next_id(memory_store *s, user_stripe *st, store_counter kind);
/* Keeps the sequence of `kind` past `id` (catalog, replay). */
void store_seen_id(memory_store *s, store_counter kind, int64_t id);

mem_concert *store_concert(memory_store *s, int64_t id);
mem_schedule *store_schedule(memory_store *s, int64_t id);

/* Window check: CONCERT_ECLOSED outside [opens_at, closes_at). */
int store_window(const mem_concert *c, concert_time now);

user_stripe *store_stripe(memory_store *s, uint64_t user_hash);
/* The user (stripe locked), or NULL. */
mem_user *user_find(user_stripe *st, const char *user_id, uint64_t hash);
/* The user, created when new. NULL when out of memory (error set). */
mem_user *user_get(user_stripe *st, const char *user_id, uint64_t hash);

/* Appends `r` to the journal when durable; *seq is 0 when ephemeral. */
int store_log(memory_store *s, const store_record *r, uint64_t *seq);
/* Waits for `seq` to be durable. 0, or CONCERT_EIO. */
int store_commit(memory_store *s, uint64_t seq);

/* Locks a stripe for a mutation, once the store is not quiesced. */
void stripe_enter(memory_store *s, user_stripe *st);
/* Stops every mutation until store_resume (compact, audit). */
void store_quiesce(memory_store *s);
void store_resume(memory_store *s);

/* ---- seats ------------------------------------------------------------- */

/* The seat's state with lazy expiry applied. */
static inline int32_t seat_state(const mem_seat *seat, concert_time now)
{
	if (seat->state == CONCERT_SEAT_HELD && seat->hold_expires_at <= now)
		return CONCERT_SEAT_AVAILABLE;
	return seat->state;
}

/* memcpy of seat numbers, where an empty array may be NULL. */
static inline void copy_seat_nos(int32_t *dst, const int32_t *src, size_t count)
{
	if (count)
		memcpy(dst, src, count * sizeof(*dst));
}

/* The seat numbered `seat_no` (schedule locked), or NULL. */
mem_seat *schedule_seat(mem_schedule *sch, int32_t seat_no);

/* ---- store_catalog.c ---------------------------------------------------- */

int catalog_replay(memory_store *s, const store_record *r);
void catalog_free(memory_store *s);

/* ---- store_hold.c ------------------------------------------------------ */

static inline bool hold_expired(const mem_hold *h, concert_time now)
{
	return h->state == CONCERT_HOLD_HELD && h->expires_at <= now;
}

/* The hold `id` and its owner, read under the shard lock; NULL if none. */
mem_hold *hold_lookup(memory_store *s, int64_t id, mem_user **owner);
/* The hold's seats become RESERVED by `reservation_id`; the hold PAID.
 * The owner's stripe and the schedule locked (live and replay). */
void hold_apply_paid(mem_hold *h, int64_t reservation_id);
/* Can the hold still be released, extended or paid? EEXPIRED, ESTATE. Schedule locked. */
int hold_usable(const mem_hold *h, concert_time now);
/* Snapshot state of one hold. */
void hold_to_record(const mem_hold *h, store_record *r);
int hold_replay(memory_store *s, const store_record *r);
void holds_free(memory_store *s);

/* ---- store_wallet.c ---------------------------------------------------- */

int wallet_replay(memory_store *s, const store_record *r);
/* The reservation `id` or NULL; its shard locked (or the store quiesced). */
mem_reservation *reservation_find(memory_store *s, int64_t id);
void reservations_free(memory_store *s);

/* ---- store_snapshot.c -------------------------------------------------- */

int store_replay(void *ctx, const uint8_t *payload, size_t len);

/* ---- the vtable methods ------------------------------------------------ */

int store_concert_add(void *ctx, int64_t *out_id, const char *title, concert_time opens_at,
	concert_time closes_at);
int store_schedule_add(void *ctx, int64_t *out_id, int64_t concert_id, concert_time starts_at,
	const char *venue);
int store_seats_add(void *ctx, int64_t schedule_id, const concert_seat_spec *specs, size_t count);
int store_concerts_list(void *ctx, concert_concert_list **out);
int store_concert_get(void *ctx, concert_concert **out, int64_t concert_id);
int store_schedules_list(void *ctx, concert_schedule_list **out, int64_t concert_id,
	concert_time now);
int store_schedule_get(void *ctx, concert_schedule **out, int64_t schedule_id, concert_time now);
int store_seats_list(void *ctx, concert_seat_list **out, int64_t schedule_id, concert_time now);
int store_hold_seats(void *ctx, concert_hold **out, const concert_hold_request *req);
int store_hold_release(void *ctx, const concert_hold_change *req);
int store_hold_extend(void *ctx, concert_hold **out, const concert_hold_change *req);
int store_hold_get(void *ctx, concert_hold **out, int64_t hold_id, concert_time now);
int store_sweep(void *ctx, concert_time now, uint64_t *out_swept);
int store_charge(void *ctx, int64_t *out_balance, const char *user_id, int64_t amount,
	const char *idem_key, concert_time now);
int store_balance(void *ctx, int64_t *out_balance, const char *user_id);
int store_history(void *ctx, concert_wallet_tx_list **out, const char *user_id, int64_t cursor,
	size_t limit);
int store_pay(void *ctx, concert_payment **out, const concert_pay_request *req);
int store_cancel(void *ctx, int64_t *out_refunded, int64_t *out_balance, const char *user_id,
	int64_t reservation_id, concert_time now);
int store_reservation_get(void *ctx, concert_reservation **out, int64_t reservation_id);
int store_compact(void *ctx);
int store_audit(void *ctx, concert_audit **out);

#endif

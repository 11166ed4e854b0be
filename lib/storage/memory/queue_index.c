/*
 * Per-concert indexes of the memory queue: token maps (by id, by user) and
 * the rank of WAITING tokens (positions and the admission head).
 * All calls run under the concert's lock.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "storage/memory/queue.h"

/* splitmix64's finalizer: spreads a key over all 64 bits. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Ids are ours and sequential, but they are drawn for every concert from
 * one counter, so one concert's ids come with gaps: used as they are under
 * linear probing, the ids that wrap around the table land on a run that is
 * already nearly full and walk it (hundreds of probes with two concerts
 * filling at once). Mixed, they probe like random keys.
 */
uint32_t memq_hash_id(int64_t id)
{
	return (uint32_t)(mix64((uint64_t)id) >> 32);
}

__extension__ typedef unsigned __int128 memq_u128;

/* Multiply-fold of a word with the running state (as in wyhash). */
static uint64_t mum(uint64_t a, uint64_t b)
{
	memq_u128 p = (memq_u128)a * b;
	return (uint64_t)p ^ (uint64_t)(p >> 64);
}

uint32_t memq_hash_user(uint64_t seed, const char *user_id, size_t len)
{
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
	while (len >= 8) {
		uint64_t word;
		memcpy(&word, user_id, 8);
		h = mum(h ^ 0xa0761d6478bd642fULL, word ^ 0xe7037ed1a0b428dbULL);
		user_id += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, user_id, len);
	return (uint32_t)(mix64(mum(h ^ 0x8ebc6af09c88c6e3ULL, tail ^ 0x589965cc75374cc3ULL)) >> 32);
}

/* --- maps --------------------------------------------------------------- */

/*
 * A table of a million users is tens of MiB probed at random: with 4 KiB
 * pages nearly every look-up also misses the TLB, which costs more than the
 * cache miss itself (twice over under virtualisation). Tables from 2 MiB up
 * are therefore mapped on their own and offered to transparent huge pages;
 * fresh anonymous memory is zero, as calloc's would be.
 */
#define MAP_HUGE_BYTES ((size_t)2 << 20)

static memq_map_slot *slots_alloc(size_t cap)
{
	size_t bytes = cap * sizeof(memq_map_slot);
	if (bytes < MAP_HUGE_BYTES)
		return calloc(cap, sizeof(memq_map_slot));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE);   /* a hint: without it the table still works */
	return p;
}

static void slots_free(memq_map_slot *slots, size_t cap)
{
	size_t bytes = cap * sizeof(memq_map_slot);
	if (bytes < MAP_HUGE_BYTES)
		free(slots);
	else if (slots)
		munmap(slots, bytes);
}

#define MAP_MIN_BITS 4

static int map_alloc(memq_map *m, unsigned bits)
{
	size_t cap = (size_t)1 << bits;
	m->slots = slots_alloc(cap);
	if (!m->slots)
		return CONCERT_ENOMEM;
	m->mask = cap - 1;
	m->shift = 32 - bits;
	return 0;
}

int memq_map_init(memq_map *m)
{
	m->count = 0;
	return map_alloc(m, MAP_MIN_BITS) ? concert_sys_error(CONCERT_ENOMEM, NULL) : 0;
}

void memq_map_free(memq_map *m)
{
	slots_free(m->slots, m->mask + 1);
	m->slots = NULL;
}

memq_token *memq_map_find_id(const memq_map *m, const memq_slab *slab, int64_t id)
{
	uint32_t tag = memq_hash_id(id);
	for (size_t i = tag >> m->shift;; i = (i + 1) & m->mask) {
		const memq_map_slot *s = &m->slots[i];
		if (!s->ref)
			return NULL;
		if (s->tag == tag) {
			memq_token *t = memq_slab_token(slab, s->ref);
			if (t->id == id)
				return t;
		}
	}
}

memq_token *memq_map_find_user(const memq_map *m, const memq_slab *slab, const char *user_id,
			       size_t len, uint32_t tag)
{
	for (size_t i = tag >> m->shift;; i = (i + 1) & m->mask) {
		const memq_map_slot *s = &m->slots[i];
		if (!s->ref)
			return NULL;
		if (s->tag == tag) {
			memq_token *t = memq_slab_token(slab, s->ref);
			if (t->user_len == len && memcmp(t->user_id, user_id, len) == 0)
				return t;
		}
	}
}

static void map_place(memq_map *m, memq_map_slot slot)
{
	size_t i = slot.tag >> m->shift;
	while (m->slots[i].ref)
		i = (i + 1) & m->mask;
	m->slots[i] = slot;
}

/*
 * Homes are the tags' top bits, so walking the old table in order places
 * entries in order in the new one: both are streamed, not hit at random.
 */
static int map_resize(memq_map *m, unsigned bits)
{
	memq_map n = { .count = m->count };
	if (map_alloc(&n, bits))
		return CONCERT_ENOMEM;
	for (size_t i = 0; i <= m->mask; i++)
		if (m->slots[i].ref)
			map_place(&n, m->slots[i]);
	memq_map_free(m);
	*m = n;
	return 0;
}

static unsigned map_bits(const memq_map *m)
{
	return 32 - m->shift;
}

/*
 * The slab's refs bound the count below 2^31, so at 3/4 load a map never
 * needs more than 2^32 slots, which 32-bit tags can still address.
 */
int memq_map_reserve(memq_map *m)
{
	size_t cap = m->mask + 1;
	if ((m->count + 1) * 4 <= cap * 3)
		return 0;
	return map_resize(m, map_bits(m) + 1) ? concert_sys_error(CONCERT_ENOMEM, NULL) : 0;
}

void memq_map_insert(memq_map *m, uint32_t tag, memq_ref ref)
{
	map_place(m, (memq_map_slot){ tag, ref });
	m->count++;
}

void memq_map_remove(memq_map *m, uint32_t tag, memq_ref ref)
{
	size_t mask = m->mask, i = tag >> m->shift;
	while (m->slots[i].ref != ref)
		i = (i + 1) & mask;
	/* Shift back each later entry of the run that may live in the hole. */
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (!m->slots[j].ref)
			break;
		size_t home = m->slots[j].tag >> m->shift;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].ref = 0;
	m->count--;
	/* Give back memory after a burst; if that allocation fails the map
	 * simply stays larger, which is still correct. */
	if (map_bits(m) > MAP_MIN_BITS && m->count * 8 < mask + 1)
		(void)map_resize(m, map_bits(m) - 1);
}

/* --- rank --------------------------------------------------------------- */

#define RANK_MIN 256u
#define RANK_MAX (1u << 31)

static uint32_t rank_words(uint32_t cap)
{
	return cap / 64;
}

static int rank_alloc(memq_rank *r, uint32_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->tokens = calloc(cap, sizeof(*r->tokens));
	r->bits = calloc(rank_words(cap), sizeof(*r->bits));
	r->tree = calloc(rank_words(cap) + 1, sizeof(*r->tree));
	if (r->tokens && r->bits && r->tree)
		return 0;
	memq_rank_free(r);
	return concert_sys_error(CONCERT_ENOMEM, NULL);
}

int memq_rank_init(memq_rank *r)
{
	return rank_alloc(r, RANK_MIN);
}

void memq_rank_free(memq_rank *r)
{
	free(r->tokens);
	free(r->bits);
	free(r->tree);
	r->tokens = NULL;
	r->bits = NULL;
	r->tree = NULL;
}

static void tree_add(memq_rank *r, uint32_t word, int32_t delta)
{
	uint32_t words = rank_words(r->cap);
	for (uint32_t i = word + 1; i <= words; i += i & -i)
		r->tree[i] += (uint32_t)delta;
}

/* Live slots in words [0, word). */
static uint32_t tree_prefix(const memq_rank *r, uint32_t word)
{
	uint32_t sum = 0;
	for (uint32_t i = word; i > 0; i -= i & -i)
		sum += r->tree[i];
	return sum;
}

/* Copies the live slots densely into a fresh rank of `cap` slots: O(cap). */
static int rank_rebuild(memq_rank *r, uint32_t cap)
{
	memq_rank n;
	int rc = rank_alloc(&n, cap);
	if (rc < 0)
		return rc;
	for (uint32_t s = memq_rank_next(r, r->head); s != UINT32_MAX; s = memq_rank_next(r, s + 1)) {
		memq_token *t = r->tokens[s];
		t->slot = n.used;
		n.tokens[n.used] = t;
		n.bits[n.used / 64] |= 1ULL << (n.used % 64);
		n.used++;
	}
	n.live = n.used;
	uint32_t words = rank_words(cap);
	for (uint32_t i = 1; i <= words; i++)
		n.tree[i] += (uint32_t)__builtin_popcountll(n.bits[i - 1]);
	for (uint32_t i = 1; i <= words; i++) {
		uint32_t parent = i + (i & -i);
		if (parent <= words)
			n.tree[parent] += n.tree[i];
	}
	memq_rank_free(r);
	*r = n;
	return 0;
}

/*
 * When the slots run out, rebuild at twice the live count: at least half of
 * the new slots are then free, so rebuilds cost O(1) amortised per entry,
 * and the rank shrinks back after a burst has drained.
 */
int memq_rank_reserve(memq_rank *r)
{
	if (r->used < r->cap)
		return 0;
	uint64_t want = (uint64_t)r->live * 2;
	uint64_t cap = RANK_MIN;
	while (cap < want)
		cap *= 2;
	if (cap > RANK_MAX)
		return concert_sys_error(CONCERT_ELIMIT, "too many tokens waiting for one concert");
	return rank_rebuild(r, (uint32_t)cap);
}

void memq_rank_append(memq_rank *r, memq_token *token)
{
	uint32_t slot = r->used++;
	token->slot = slot;
	r->tokens[slot] = token;
	r->bits[slot / 64] |= 1ULL << (slot % 64);
	tree_add(r, slot / 64, 1);
	r->live++;
}

void memq_rank_remove(memq_rank *r, uint32_t slot)
{
	r->tokens[slot] = NULL;
	r->bits[slot / 64] &= ~(1ULL << (slot % 64));
	tree_add(r, slot / 64, -1);
	r->live--;
}

int64_t memq_rank_position(const memq_rank *r, uint32_t slot)
{
	uint64_t upto = r->bits[slot / 64] & (~0ULL >> (63 - slot % 64));
	return (int64_t)tree_prefix(r, slot / 64) + __builtin_popcountll(upto);
}

uint32_t memq_rank_next(const memq_rank *r, uint32_t from)
{
	if (from >= r->used)
		return UINT32_MAX;
	uint32_t word = from / 64, words = (r->used + 63) / 64;
	uint64_t bits = r->bits[word] & (~0ULL << (from % 64));
	while (!bits) {
		if (++word >= words)
			return UINT32_MAX;
		bits = r->bits[word];
	}
	return word * 64 + (uint32_t)__builtin_ctzll(bits);
}

memq_token *memq_rank_first(memq_rank *r)
{
	uint32_t slot = memq_rank_next(r, r->head);
	if (slot == UINT32_MAX) {
		r->head = r->used;
		return NULL;
	}
	r->head = slot;
	return r->tokens[slot];
}

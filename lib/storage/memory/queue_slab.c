/*
 * The token slab of a concert: fixed-size records in chunks that grow with
 * the number of live tokens, up to 2 MiB. A burst of entries takes records
 * in order, one allocation per chunk; freed records are reused within their
 * chunk, and a chunk whose last token is forgotten is given back, so memory
 * follows the live count as the maps' does. All calls run under the
 * concert's lock.
 *
 * Unlike the maps, chunks are not offered huge pages: records are written
 * in order, so 4 KiB pages cost few TLB misses, while faulting in fresh
 * huge pages measured slower (zeroing 2 MiB at a time, every chunk).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/queue.h"

#define CHUNK_MIN 32u
#define CHUNK_MAX (1u << MEMQ_CHUNK_BITS)
/* Refs are 32 bits with 0 meaning none: chunk numbers stay below 2^17. */
#define CHUNKS_MAX (1u << (31 - MEMQ_CHUNK_BITS))

void memq_slab_init(memq_slab *s)
{
	memset(s, 0, sizeof(*s));
	s->max_chunks = CHUNKS_MAX;
}

void memq_slab_free(memq_slab *s)
{
	for (uint32_t n = 0; n < s->count; n++)
		if (s->chunks[n].records)
			free(s->chunks[n].records);
	free(s->chunks);
	s->chunks = NULL;
	s->count = s->chunks_cap = 0;
}

static int has_room(const memq_slab_chunk *c)
{
	return c->free || c->used < c->capacity;
}

static void open_link(memq_slab *s, uint32_t n)
{
	memq_slab_chunk *c = &s->chunks[n];
	c->prev_open = 0;
	c->next_open = s->open;
	if (s->open)
		s->chunks[s->open - 1].prev_open = n + 1;
	s->open = n + 1;
}

static void open_unlink(memq_slab *s, uint32_t n)
{
	memq_slab_chunk *c = &s->chunks[n];
	if (c->prev_open)
		s->chunks[c->prev_open - 1].next_open = c->next_open;
	else
		s->open = c->next_open;
	if (c->next_open)
		s->chunks[c->next_open - 1].prev_open = c->prev_open;
}

/* A chunk about as big as what is live, so chunks double during a burst. */
static int chunk_new(memq_slab *s)
{
	uint32_t n;
	if (s->released) {
		n = s->released - 1;
	} else {
		if (s->count >= s->max_chunks)
			return concert_sys_error(CONCERT_ELIMIT, "too many tokens remembered for one concert");
		if (s->count == s->chunks_cap) {
			uint32_t cap = s->chunks_cap ? s->chunks_cap * 2 : 8;
			memq_slab_chunk *chunks = realloc(s->chunks, cap * sizeof(*chunks));
			if (!chunks)
				return concert_sys_error(CONCERT_ENOMEM, NULL);
			s->chunks = chunks;
			s->chunks_cap = cap;
		}
		n = s->count;
	}
	uint32_t capacity = CHUNK_MIN;
	while (capacity < CHUNK_MAX && capacity < s->live)
		capacity *= 2;
	/* Cache-line aligned, so that a record spans two lines, not three. */
	memq_token *records = aligned_alloc(64, (size_t)capacity * MEMQ_RECORD_SIZE);
	if (!records)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (s->released)
		s->released = s->chunks[n].next_open;
	else
		s->count++;
	s->chunks[n] = (memq_slab_chunk){ .records = records, .capacity = capacity };
	open_link(s, n);
	return 0;
}

int memq_slab_alloc(memq_slab *s, memq_token **out)
{
	if (!s->open) {
		int rc = chunk_new(s);
		if (rc < 0)
			return rc;
	}
	uint32_t n = s->open - 1, record;
	memq_slab_chunk *c = &s->chunks[n];
	memq_token *t;
	if (c->free) {
		record = c->free - 1;
		t = &c->records[record];
		c->free = t->ref;
	} else {
		record = c->used++;
		t = &c->records[record];
	}
	c->live++;
	s->live++;
	if (s->spare == n + 1)
		s->spare = 0;
	if (!has_room(c))
		open_unlink(s, n);
	t->ref = (n << MEMQ_CHUNK_BITS | record) + 1;
	*out = t;
	return 0;
}

/*
 * One empty chunk is kept back, so that a queue hovering at a chunk's
 * edge does not allocate and free a chunk per token; it starts over from its
 * first record, in address order. Any other empty chunk is given back.
 */
static void chunk_empty(memq_slab *s, uint32_t n)
{
	memq_slab_chunk *c = &s->chunks[n];
	if (!s->spare) {
		c->used = 0;
		c->free = 0;
		s->spare = n + 1;
		return;
	}
	open_unlink(s, n);
	free(c->records);
	c->records = NULL;
	c->next_open = s->released;
	s->released = n + 1;
}

void memq_slab_release(memq_slab *s, memq_token *t)
{
	uint32_t index = t->ref - 1, n = index >> MEMQ_CHUNK_BITS;
	memq_slab_chunk *c = &s->chunks[n];
	if (!has_room(c))
		open_link(s, n);
	t->ref = c->free;
	c->free = (index & (CHUNK_MAX - 1)) + 1;
	c->live--;
	s->live--;
	if (c->live == 0)
		chunk_empty(s, n);
}

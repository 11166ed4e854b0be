/*
 * The memory store's catalog: concerts, schedules and their seats.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/store.h"

/* A new seat's version; every change adds one. */
#define SEAT_FIRST_VERSION 1

static mem_schedule *schedule_new(void)
{
	size_t size = (sizeof(mem_schedule) + STORE_CACHE_LINE - 1) / STORE_CACHE_LINE * STORE_CACHE_LINE;
	mem_schedule *sch = aligned_alloc(STORE_CACHE_LINE, size);
	if (!sch)
		return NULL;
	memset(sch, 0, size);
	pthread_mutex_init(&sch->lock, NULL);
	return sch;
}

static void schedule_free(mem_schedule *sch)
{
	if (!sch)
		return;
	pthread_mutex_destroy(&sch->lock);
	free(sch->seats);
	free(sch);
}

/* ---- apply (live and replay) ------------------------------------------- */

/* The id's slot was reserved (set to NULL) before the record was logged. */
static void apply_concert(memory_store *s, mem_concert *c, const store_record *r)
{
	c->id = r->id;
	c->opens_at = r->opens_at;
	c->closes_at = r->closes_at;
	concert_sys_strlcpy(c->title, r->title, sizeof(c->title));
	id_table_set(&s->concerts, c->id, c);
	store_seen_id(s, STORE_COUNTER_CONCERT, c->id);
}

/* The concert's schedule list has room for one more. */
static void apply_schedule(memory_store *s, mem_concert *c, mem_schedule *sch, const store_record *r)
{
	sch->id = r->id;
	sch->concert = c;
	sch->starts_at = r->starts_at;
	concert_sys_strlcpy(sch->venue, r->venue, sizeof(sch->venue));
	c->schedules[c->schedule_count++] = sch;
	id_table_set(&s->schedules, sch->id, sch);
	store_seen_id(s, STORE_COUNTER_SCHEDULE, sch->id);
}

static void seat_from_record(mem_seat *seat, const store_seat_record *rec, bool fresh)
{
	memset(seat, 0, sizeof(*seat));
	seat->seat_no = rec->seat_no;
	seat->price = rec->price;
	concert_sys_strlcpy(seat->grade, rec->grade, sizeof(seat->grade));
	if (fresh) {
		seat->state = CONCERT_SEAT_AVAILABLE;
		seat->version = SEAT_FIRST_VERSION;
	} else {
		seat->state = rec->state;
		seat->version = rec->version;
		seat->owner = rec->owner;
		seat->hold_expires_at = rec->hold_expires_at;
	}
}

/*
 * The schedule's seats merged with `add` (strictly ascending) into a new
 * array. CONCERT_EEXISTS if a seat exists, CONCERT_EINVAL if `add` is not
 * ascending, CONCERT_ENOMEM. `fresh`: new AVAILABLE seats rather than the
 * recorded states of a snapshot.
 */
static int seats_merge(const mem_schedule *sch, const store_seat_record *add, size_t count,
		       bool fresh, mem_seat **out)
{
	*out = NULL;
	for (size_t i = 1; i < count; i++)
		if (add[i].seat_no <= add[i - 1].seat_no)
			return concert_sys_errorf(CONCERT_EINVAL, "seat %d given twice", (int)add[i].seat_no);
	if (count > SIZE_MAX / sizeof(mem_seat) - sch->seat_count)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	mem_seat *merged = malloc((sch->seat_count + count) * sizeof(*merged));
	if (!merged)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	size_t i = 0, j = 0, n = 0;
	while (i < sch->seat_count || j < count) {
		if (j == count || (i < sch->seat_count && sch->seats[i].seat_no < add[j].seat_no)) {
			merged[n++] = sch->seats[i++];
		} else if (i < sch->seat_count && sch->seats[i].seat_no == add[j].seat_no) {
			free(merged);
			return concert_sys_errorf(CONCERT_EEXISTS, "seat %d already exists in schedule %lld",
						  (int)add[j].seat_no, (long long)sch->id);
		} else {
			seat_from_record(&merged[n++], &add[j++], fresh);
		}
	}
	*out = merged;
	return 0;
}

static void apply_seats(mem_schedule *sch, mem_seat *merged, size_t count)
{
	free(sch->seats);
	sch->seats = merged;
	sch->seat_count = count;
	sch->dense = count > 0 &&
		     (int64_t)merged[count - 1].seat_no - merged[0].seat_no + 1 == (int64_t)count;
}

/* ---- mutations ----------------------------------------------------------- */

int store_concert_add(void *ctx, int64_t *out_id, const char *title, concert_time opens_at,
		      concert_time closes_at)
{
	memory_store *s = ctx;
	mem_concert *c = calloc(1, sizeof(*c));
	if (!c)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	uint64_t seq = 0;
	pthread_rwlock_wrlock(&s->catalog);
	/* Ids are taken under the catalog lock, so failures leave no gaps. */
	store_record r = { .type = STORE_RECORD_CONCERT, .title = title, .opens_at = opens_at,
		.closes_at = closes_at,
		.id = atomic_load_explicit(&s->next_id[STORE_COUNTER_CONCERT], memory_order_relaxed) };
	int rc = id_table_set(&s->concerts, r.id, NULL);
	if (rc == 0)
		rc = store_log(s, &r, &seq);
	if (rc == 0)
		apply_concert(s, c, &r);
	pthread_rwlock_unlock(&s->catalog);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*out_id = r.id;
	return store_commit(s, seq);
}

static int reserve_schedule_slot(mem_concert *c)
{
	if (c->schedule_count < c->schedule_cap)
		return 0;
	size_t cap = c->schedule_cap ? c->schedule_cap * 2 : 4;
	mem_schedule **p = realloc(c->schedules, cap * sizeof(*p));
	if (!p)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	c->schedules = p;
	c->schedule_cap = cap;
	return 0;
}

int store_schedule_add(void *ctx, int64_t *out_id, int64_t concert_id, concert_time starts_at,
		       const char *venue)
{
	memory_store *s = ctx;
	mem_concert *c = store_concert(s, concert_id);
	if (!c)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no concert %lld", (long long)concert_id);
	mem_schedule *sch = schedule_new();
	if (!sch)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	uint64_t seq = 0;
	pthread_rwlock_wrlock(&s->catalog);
	store_record r = { .type = STORE_RECORD_SCHEDULE, .concert_id = concert_id,
		.starts_at = starts_at, .venue = venue ? venue : "",
		.id = atomic_load_explicit(&s->next_id[STORE_COUNTER_SCHEDULE], memory_order_relaxed) };
	int rc = reserve_schedule_slot(c);
	if (rc == 0)
		rc = id_table_set(&s->schedules, r.id, NULL);
	if (rc == 0)
		rc = store_log(s, &r, &seq);
	if (rc == 0)
		apply_schedule(s, c, sch, &r);
	pthread_rwlock_unlock(&s->catalog);
	if (rc < 0) {
		schedule_free(sch);
		return rc;
	}
	*out_id = r.id;
	return store_commit(s, seq);
}

static int compare_seat_record(const void *a, const void *b)
{
	int32_t x = ((const store_seat_record *)a)->seat_no, y = ((const store_seat_record *)b)->seat_no;
	return (x > y) - (x < y);
}

int store_seats_add(void *ctx, int64_t schedule_id, const concert_seat_spec *specs, size_t count)
{
	memory_store *s = ctx;
	mem_schedule *sch = store_schedule(s, schedule_id);
	if (!sch)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no schedule %lld", (long long)schedule_id);
	store_seat_record *add = calloc(count ? count : 1, sizeof(*add));
	if (!add)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	for (size_t i = 0; i < count; i++)
		add[i] = (store_seat_record){ .seat_no = specs[i].seat_no, .price = specs[i].price,
			.grade = specs[i].grade };
	qsort(add, count, sizeof(*add), compare_seat_record);
	store_record r = { .type = STORE_RECORD_SEATS, .schedule_id = schedule_id, .count = count,
		.seats = add };
	mem_seat *merged;
	uint64_t seq = 0;
	/* Read mode is enough to keep a quiesced store still. */
	pthread_rwlock_rdlock(&s->catalog);
	pthread_mutex_lock(&sch->lock);
	int rc = seats_merge(sch, add, count, true, &merged);
	if (rc == 0)
		rc = store_log(s, &r, &seq);
	if (rc == 0)
		apply_seats(sch, merged, sch->seat_count + count);
	else
		free(merged);
	pthread_mutex_unlock(&sch->lock);
	pthread_rwlock_unlock(&s->catalog);
	free(add);
	return rc < 0 ? rc : store_commit(s, seq);
}

/* ---- reads ------------------------------------------------------------- */

int store_concerts_list(void *ctx, concert_concert_list **out)
{
	memory_store *s = ctx;
	pthread_rwlock_rdlock(&s->catalog);
	int64_t last = atomic_load_explicit(&s->next_id[STORE_COUNTER_CONCERT], memory_order_relaxed) - 1;
	size_t n = 0;
	for (int64_t id = 1; id <= last; id++)
		n += store_concert(s, id) != NULL;
	concert_concert_list *list = concert_sys_concert_list_alloc(n);
	for (int64_t id = 1, i = 0; list && id <= last; id++) {
		const mem_concert *c = store_concert(s, id);
		if (!c)
			continue;
		concert_concert *item = &list->items[i++];
		item->id = c->id;
		item->opens_at = c->opens_at;
		item->closes_at = c->closes_at;
		memcpy(item->title, c->title, sizeof(item->title));
	}
	pthread_rwlock_unlock(&s->catalog);
	*out = list;
	return list ? 0 : concert_sys_error(CONCERT_ENOMEM, NULL);
}

int store_concert_get(void *ctx, concert_concert **out, int64_t concert_id)
{
	memory_store *s = ctx;
	const mem_concert *c = store_concert(s, concert_id);
	*out = NULL;
	if (!c)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no concert %lld", (long long)concert_id);
	concert_concert *item = concert_sys_concert_alloc();
	if (!item)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	item->id = c->id;
	item->opens_at = c->opens_at;
	item->closes_at = c->closes_at;
	memcpy(item->title, c->title, sizeof(item->title));
	*out = item;
	return 0;
}

/* Fills `item` from the schedule, counting seats as of `now`. */
static void schedule_describe(mem_schedule *sch, concert_schedule *item, concert_time now)
{
	item->id = sch->id;
	item->concert_id = sch->concert->id;
	item->starts_at = sch->starts_at;
	memcpy(item->venue, sch->venue, sizeof(item->venue));
	int64_t counts[CONCERT_SEAT_RESERVED + 1] = { 0 };
	pthread_mutex_lock(&sch->lock);
	for (size_t i = 0; i < sch->seat_count; i++)
		counts[seat_state(&sch->seats[i], now)]++;
	item->total_seats = (int64_t)sch->seat_count;
	pthread_mutex_unlock(&sch->lock);
	item->available_seats = counts[CONCERT_SEAT_AVAILABLE];
	item->held_seats = counts[CONCERT_SEAT_HELD];
	item->reserved_seats = counts[CONCERT_SEAT_RESERVED];
}

static int compare_schedule(const void *a, const void *b)
{
	const concert_schedule *x = a, *y = b;
	if (x->starts_at != y->starts_at)
		return x->starts_at < y->starts_at ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

int store_schedules_list(void *ctx, concert_schedule_list **out, int64_t concert_id,
			 concert_time now)
{
	memory_store *s = ctx;
	const mem_concert *c = store_concert(s, concert_id);
	*out = NULL;
	if (!c)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no concert %lld", (long long)concert_id);
	pthread_rwlock_rdlock(&s->catalog);
	concert_schedule_list *list = concert_sys_schedule_list_alloc(c->schedule_count);
	for (size_t i = 0; list && i < c->schedule_count; i++)
		schedule_describe(c->schedules[i], &list->items[i], now);
	pthread_rwlock_unlock(&s->catalog);
	if (!list)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if (list->count > 1)
		qsort(list->items, list->count, sizeof(*list->items), compare_schedule);
	*out = list;
	return 0;
}

int store_schedule_get(void *ctx, concert_schedule **out, int64_t schedule_id, concert_time now)
{
	memory_store *s = ctx;
	mem_schedule *sch = store_schedule(s, schedule_id);
	*out = NULL;
	if (!sch)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no schedule %lld", (long long)schedule_id);
	concert_schedule *item = concert_sys_schedule_alloc();
	if (!item)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	schedule_describe(sch, item, now);
	*out = item;
	return 0;
}

int store_seats_list(void *ctx, concert_seat_list **out, int64_t schedule_id, concert_time now)
{
	memory_store *s = ctx;
	mem_schedule *sch = store_schedule(s, schedule_id);
	*out = NULL;
	if (!sch)
		return concert_sys_errorf(CONCERT_ENOTFOUND, "no schedule %lld", (long long)schedule_id);
	pthread_mutex_lock(&sch->lock);
	concert_seat_list *list = concert_sys_seat_list_alloc(sch->seat_count);
	for (size_t i = 0; list && i < sch->seat_count; i++) {
		const mem_seat *seat = &sch->seats[i];
		concert_seat *item = &list->items[i];
		item->seat_no = seat->seat_no;
		item->state = seat_state(seat, now);
		item->price = seat->price;
		item->version = seat->version;
		memcpy(item->grade, seat->grade, sizeof(item->grade));
	}
	pthread_mutex_unlock(&sch->lock);
	if (!list)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	list->schedule_id = schedule_id;
	*out = list;
	return 0;
}

/* ---- replay, snapshot, teardown ---------------------------------------- */

/* Reserves the slot of a replayed id: a recorded id the tables cannot hold is corrupt. */
static int reserve_replayed_id(id_table *t, int64_t id)
{
	int rc = id_table_set(t, id, NULL);
	return rc == CONCERT_ELIMIT ? concert_sys_errorf(CONCERT_ECORRUPT, "id %lld out of range",
							 (long long)id) : rc;
}

static int replay_concert(memory_store *s, const store_record *r)
{
	if (store_concert(s, r->id))
		return concert_sys_errorf(CONCERT_ECORRUPT, "concert %lld recorded twice", (long long)r->id);
	mem_concert *c = calloc(1, sizeof(*c));
	int rc = c ? reserve_replayed_id(&s->concerts, r->id) : concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc < 0) {
		free(c);
		return rc;
	}
	apply_concert(s, c, r);
	return 0;
}

static int replay_schedule(memory_store *s, const store_record *r)
{
	mem_concert *c = store_concert(s, r->concert_id);
	if (!c || store_schedule(s, r->id))
		return concert_sys_errorf(CONCERT_ECORRUPT, "schedule %lld: unknown concert or recorded twice",
					  (long long)r->id);
	mem_schedule *sch = schedule_new();
	int rc = sch ? reserve_schedule_slot(c) : concert_sys_error(CONCERT_ENOMEM, NULL);
	if (rc == 0)
		rc = reserve_replayed_id(&s->schedules, r->id);
	if (rc < 0) {
		schedule_free(sch);
		return rc;
	}
	apply_schedule(s, c, sch, r);
	return 0;
}

static int replay_seats(memory_store *s, const store_record *r, bool fresh)
{
	mem_schedule *sch = store_schedule(s, r->schedule_id);
	if (!sch)
		return concert_sys_errorf(CONCERT_ECORRUPT, "seats of unknown schedule %lld",
					  (long long)r->schedule_id);
	for (size_t i = 0; !fresh && i < r->count; i++)
		if (r->seats[i].state < CONCERT_SEAT_AVAILABLE || r->seats[i].state > CONCERT_SEAT_RESERVED)
			return concert_sys_error(CONCERT_ECORRUPT, "seat in an unknown state");
	mem_seat *merged;
	int rc = seats_merge(sch, r->seats, r->count, fresh, &merged);
	if (rc == CONCERT_ENOMEM)
		return rc;
	if (rc < 0)
		return concert_sys_errorf(CONCERT_ECORRUPT,
					  "schedule %lld: recorded seats overlap or are out of order",
					  (long long)sch->id);
	apply_seats(sch, merged, sch->seat_count + r->count);
	return 0;
}

int catalog_replay(memory_store *s, const store_record *r)
{
	switch (r->type) {
	case STORE_RECORD_CONCERT: return replay_concert(s, r);
	case STORE_RECORD_SCHEDULE: return replay_schedule(s, r);
	case STORE_RECORD_SEATS: return replay_seats(s, r, true);
	case STORE_RECORD_SEAT_STATE: return replay_seats(s, r, false);
	default: return concert_sys_error(CONCERT_EINTERNAL, "not a catalog record");
	}
}

void catalog_free(memory_store *s)
{
	int64_t last = atomic_load_explicit(&s->next_id[STORE_COUNTER_SCHEDULE], memory_order_relaxed) - 1;
	for (int64_t id = 1; id <= last; id++)
		schedule_free(store_schedule(s, id));
	last = atomic_load_explicit(&s->next_id[STORE_COUNTER_CONCERT], memory_order_relaxed) - 1;
	for (int64_t id = 1; id <= last; id++) {
		mem_concert *c = store_concert(s, id);
		if (c)
			free(c->schedules);
		free(c);
	}
}

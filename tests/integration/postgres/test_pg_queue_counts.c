/*
 * concert_queue_counts on the PostgreSQL queue: WAITING and ACTIVE tokens at
 * the engine's now, read without a lock from the admission counters and the
 * departures tree (no count of the queue), minus what is due but not yet
 * booked. Checked against the states the tokens themselves report.
 */
#define _GNU_SOURCE
#include <string.h>

#include "pg_itest.h"

enum { USERS = 12, MAX_ACTIVE = 3 };

static void expect(concert_engine *e, int64_t concert, uint64_t waiting, uint64_t active,
		   const char *when)
{
	uint64_t w = 99, a = 99;
	IT_RC(concert_queue_counts(e, concert, &w, &a), 0);
	IT_CHECK(w == waiting && a == active, "%s: %llu waiting, %llu active; expected %llu, %llu",
		 when, (unsigned long long)w, (unsigned long long)a, (unsigned long long)waiting,
		 (unsigned long long)active);
}

int main(void)
{
	char uri[IT_URI_MAX];
	it_uri(uri, "counts", 2);
	it_clock *clock = it_clock_new();
	concert_engine *e = it_queue_engine(uri, uri, clock, MAX_ACTIVE, 10 * IT_MINUTE, 30 * IT_MINUTE);
	it_venue v;
	it_make_venue(e, &v, 1, 100);
	expect(e, v.concert_id, 0, 0, "no queue yet");

	char tokens[USERS][CONCERT_TOKEN_MAX + 1];
	for (int i = 0; i < USERS; i++) {
		char user[32];
		snprintf(user, sizeof(user), "counts-%d", i);
		concert_queue_status *st = NULL;
		IT_RC(concert_queue_enter(e, &st, user, v.concert_id), 0);
		if (st)
			memcpy(tokens[i], st->token, sizeof(tokens[i]));
		concert_free(st);
		if (i == 5)
			atomic_fetch_add(&clock->now, IT_MINUTE);
	}
	expect(e, v.concert_id, USERS - MAX_ACTIVE, MAX_ACTIVE, "after entering");

	/* One WAITING and one ACTIVE token leave: no admission happens in between. */
	IT_RC(concert_queue_leave(e, tokens[7]), 0);
	IT_RC(concert_queue_leave(e, tokens[0]), 0);
	expect(e, v.concert_id, USERS - MAX_ACTIVE - 1, MAX_ACTIVE - 1, "after two leaves");

	/* An admission fills the freed slot from the head. */
	uint32_t admitted = 0;
	IT_RC(concert_queue_admit(e, v.concert_id, &admitted), 0);
	IT_CHECK(admitted == 1, "admitted %u", admitted);
	expect(e, v.concert_id, USERS - MAX_ACTIVE - 2, MAX_ACTIVE, "after admitting");

	/* The first six waiting entered a minute before the rest: once their idle
	 * time is over they no longer count, before anyone books their expiry. */
	atomic_fetch_add(&clock->now, 10 * IT_MINUTE - IT_MINUTE / 2);
	expect(e, v.concert_id, USERS - 6 - 1, MAX_ACTIVE, "first entrants idle");
	atomic_fetch_add(&clock->now, IT_MINUTE);
	expect(e, v.concert_id, 0, MAX_ACTIVE, "everyone idle");
	atomic_fetch_add(&clock->now, 30 * IT_MINUTE);
	expect(e, v.concert_id, 0, 0, "all expired");
	concert_engine_close(e);
	return it_finish("queue counts");
}

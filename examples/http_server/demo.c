/*
 * The demo catalog: prices by grade, as at a typical Seoul arena.
 */
#include "demo.h"

#include <stdio.h>

#define DAY_MS (24 * 60 * 60 * 1000LL)
#define HOUR_MS (60 * 60 * 1000LL)
#define SEATS_PER_SCHEDULE 50

/* Seats 1-10 VIP, 11-30 R, 31-50 S. */
static void seat_specs(concert_seat_spec *specs)
{
	for (int i = 0; i < SEATS_PER_SCHEDULE; i++) {
		int no = i + 1;
		specs[i].seat_no = no;
		specs[i].grade = no <= 10 ? "VIP" : no <= 30 ? "R" : "S";
		specs[i].price = no <= 10 ? 150000 : no <= 30 ? 120000 : 90000;
	}
}

static int failed(app *a, const char *what, int rc)
{
	log_line(a, CONCERT_LOG_ERROR, what, "detail", concert_error_last()->message);
	return rc;
}

int demo_seed(app *a)
{
	concert_engine *e = a->engine;
	concert_concert_list *existing = NULL;
	int rc = concert_concerts_list(e, &existing);
	if (rc < 0)
		return failed(a, "demo: cannot list concerts", rc);
	size_t count = existing->count;
	concert_free(existing);
	if (count) {
		log_line(a, CONCERT_LOG_INFO, "demo: the store has concerts already; not seeding",
			 NULL, NULL);
		return 0;
	}
	/* Open from an hour ago for 30 days; shows two and three weeks out at
	 * 19:00 UTC. */
	concert_time now = concert_engine_now(e);
	concert_time midnight = now - now % DAY_MS;
	int64_t concert_id, schedule_id;
	rc = concert_concert_add(e, &concert_id, "libconcert Demo Night", now - HOUR_MS, now + 30 * DAY_MS);
	if (rc < 0)
		return failed(a, "demo: cannot add the concert", rc);
	static const char *const venues[] = { "Olympic Hall, Seoul", "KSPO Dome, Seoul" };
	concert_seat_spec specs[SEATS_PER_SCHEDULE];
	seat_specs(specs);
	for (int i = 0; i < 2; i++) {
		concert_time starts = midnight + (14 + 7 * i) * DAY_MS + 19 * HOUR_MS;
		rc = concert_schedule_add(e, &schedule_id, concert_id, starts, venues[i]);
		if (rc == 0)
			rc = concert_seats_add(e, schedule_id, specs, SEATS_PER_SCHEDULE);
		if (rc < 0)
			return failed(a, "demo: cannot add a schedule", rc);
	}
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)concert_id);
	log_line(a, CONCERT_LOG_INFO, "demo: seeded 1 concert, 2 schedules x 50 seats", "concertId", id);
	return 0;
}

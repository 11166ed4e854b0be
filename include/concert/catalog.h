/*
 * libconcert — catalog: concerts, schedules (performances) and seats.
 */
#ifndef CONCERT_CATALOG_H
#define CONCERT_CATALOG_H

#include "engine.h"

CONCERT_BEGIN_DECL

typedef enum concert_seat_state {
	CONCERT_SEAT_AVAILABLE = 0,
	CONCERT_SEAT_HELD = 1,
	CONCERT_SEAT_RESERVED = 2
} concert_seat_state;

/** "AVAILABLE", "HELD", "RESERVED"; "UNKNOWN" if out of range. */
CONCERT_EXTERN(const char *) concert_seat_state_name(int state);

typedef struct concert_concert {
	int64_t id;
	concert_time opens_at;   /**< holds and payments allowed from ... */
	concert_time closes_at;  /**< ... until (exclusive) */
	char title[CONCERT_TITLE_MAX + 1];
} concert_concert;

typedef struct concert_concert_list {
	size_t count;
	concert_concert *items;
} concert_concert_list;

typedef struct concert_schedule {
	int64_t id;
	int64_t concert_id;
	concert_time starts_at;
	int64_t total_seats;
	int64_t available_seats;  /**< counts judge expired holds as available */
	int64_t held_seats;
	int64_t reserved_seats;
	char venue[CONCERT_VENUE_MAX + 1];
} concert_schedule;

typedef struct concert_schedule_list {
	size_t count;
	concert_schedule *items;
} concert_schedule_list;

/** A seat to create. */
typedef struct concert_seat_spec {
	int32_t seat_no;   /**< > 0, unique within the schedule */
	int64_t price;     /**< > 0, smallest currency unit */
	const char *grade; /**< 1..CONCERT_GRADE_MAX bytes */
} concert_seat_spec;

typedef struct concert_seat {
	int32_t seat_no;
	int32_t state;     /**< concert_seat_state; an expired hold reads AVAILABLE */
	int64_t price;
	int64_t version;   /**< bumps on every change */
	char grade[CONCERT_GRADE_MAX + 1];
} concert_seat;

typedef struct concert_seat_list {
	int64_t schedule_id;
	size_t count;
	concert_seat *items;   /**< ordered by seat_no */
} concert_seat_list;

/**
 * Creates a concert. Holds and payments are allowed in [opens_at, closes_at).
 * *out_id gets its id. Errors: CONCERT_EINVAL (NULL/empty/too long title,
 * closes_at <= opens_at).
 */
CONCERT_EXTERN(int) concert_concert_add(concert_engine *engine, int64_t *out_id,
	const char *title, concert_time opens_at, concert_time closes_at);

/**
 * Adds a schedule (one performance) to a concert. Errors: CONCERT_EINVAL,
 * CONCERT_ENOTFOUND (no such concert).
 */
CONCERT_EXTERN(int) concert_schedule_add(concert_engine *engine, int64_t *out_id,
	int64_t concert_id, concert_time starts_at, const char *venue);

/**
 * Adds `count` seats to a schedule, all or none. Errors: CONCERT_EINVAL
 * (bad spec, duplicate seat_no within specs), CONCERT_ENOTFOUND,
 * CONCERT_EEXISTS (a seat_no already exists).
 */
CONCERT_EXTERN(int) concert_seats_add(concert_engine *engine, int64_t schedule_id,
	const concert_seat_spec *specs, size_t count);

/** Lists all concerts by id. *out is owned by the caller (concert_free). */
CONCERT_EXTERN(int) concert_concerts_list(concert_engine *engine, concert_concert_list **out);

/** One concert. Errors: CONCERT_ENOTFOUND. *out owned by the caller. */
CONCERT_EXTERN(int) concert_concert_get(concert_engine *engine, concert_concert **out,
	int64_t concert_id);

/**
 * Lists a concert's schedules with seat counts, by starts_at.
 * Errors: CONCERT_ENOTFOUND. *out owned by the caller.
 */
CONCERT_EXTERN(int) concert_schedules_list(concert_engine *engine, concert_schedule_list **out,
	int64_t concert_id);

/** One schedule with counts. Errors: CONCERT_ENOTFOUND. *out owned by the caller. */
CONCERT_EXTERN(int) concert_schedule_get(concert_engine *engine, concert_schedule **out,
	int64_t schedule_id);

/** The seat map of a schedule. Errors: CONCERT_ENOTFOUND. *out owned by the caller. */
CONCERT_EXTERN(int) concert_seats_list(concert_engine *engine, concert_seat_list **out,
	int64_t schedule_id);

CONCERT_END_DECL

#endif

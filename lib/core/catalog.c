/*
 * Catalog: concerts, schedules and seats.
 */
#include <stdlib.h>

#include "core/engine.h"

const char *concert_seat_state_name(int state)
{
	static const char *const names[] = { "AVAILABLE", "HELD", "RESERVED" };
	return (state >= 0 && state <= CONCERT_SEAT_RESERVED) ? names[state] : "UNKNOWN";
}

int concert_concert_add(concert_engine *e, int64_t *out_id, const char *title,
			concert_time opens_at, concert_time closes_at)
{
	REQUIRE_ENGINE(e, out_id);
	int rc = check_title(title);
	if (rc == 0 && closes_at <= opens_at)
		rc = concert_sys_error(CONCERT_EINVAL, "closes_at must be after opens_at");
	if (rc == 0)
		rc = e->store->concert_add(e->store_ctx, out_id, title, opens_at, closes_at);
	return engine_finish(e, CONCERT_OP_CONCERT_ADD, rc);
}

int concert_schedule_add(concert_engine *e, int64_t *out_id, int64_t concert_id,
			 concert_time starts_at, const char *venue)
{
	REQUIRE_ENGINE(e, out_id);
	int rc = check_id(concert_id, "concert_id");
	if (rc == 0)
		rc = check_venue(venue);
	if (rc == 0)
		rc = e->store->schedule_add(e->store_ctx, out_id, concert_id, starts_at,
					    venue ? venue : "");
	return engine_finish(e, CONCERT_OP_SCHEDULE_ADD, rc);
}

static int check_specs(const concert_seat_spec *specs, size_t count)
{
	if (!specs || count == 0)
		return concert_sys_error(CONCERT_EINVAL, "no seats given");
	if (count > INT32_MAX)
		return concert_sys_error(CONCERT_EINVAL, "too many seats");
	int32_t *nos = malloc(count * sizeof(*nos));
	if (!nos)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		nos[i] = specs[i].seat_no;
		if (specs[i].price <= 0)
			rc = concert_sys_errorf(CONCERT_EINVAL, "seat %d: price must be positive",
						(int)specs[i].seat_no);
		else
			rc = check_grade(specs[i].grade);
	}
	if (rc == 0)
		rc = check_seat_nos(nos, count, count, nos);
	free(nos);
	return rc;
}

int concert_seats_add(concert_engine *e, int64_t schedule_id, const concert_seat_spec *specs,
		      size_t count)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int rc = check_id(schedule_id, "schedule_id");
	if (rc == 0)
		rc = check_specs(specs, count);
	if (rc == 0)
		rc = e->store->seats_add(e->store_ctx, schedule_id, specs, count);
	return engine_finish(e, CONCERT_OP_SEATS_ADD, rc);
}

int concert_concerts_list(concert_engine *e, concert_concert_list **out)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	return engine_finish(e, CONCERT_OP_CATALOG_READ, e->store->concerts_list(e->store_ctx, out));
}

int concert_concert_get(concert_engine *e, concert_concert **out, int64_t concert_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_id(concert_id, "concert_id");
	if (rc == 0)
		rc = e->store->concert_get(e->store_ctx, out, concert_id);
	return engine_finish(e, CONCERT_OP_CATALOG_READ, rc);
}

int concert_schedules_list(concert_engine *e, concert_schedule_list **out, int64_t concert_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_id(concert_id, "concert_id");
	if (rc == 0)
		rc = e->store->schedules_list(e->store_ctx, out, concert_id, concert_engine_now(e));
	return engine_finish(e, CONCERT_OP_CATALOG_READ, rc);
}

int concert_schedule_get(concert_engine *e, concert_schedule **out, int64_t schedule_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_id(schedule_id, "schedule_id");
	if (rc == 0)
		rc = e->store->schedule_get(e->store_ctx, out, schedule_id, concert_engine_now(e));
	return engine_finish(e, CONCERT_OP_CATALOG_READ, rc);
}

int concert_seats_list(concert_engine *e, concert_seat_list **out, int64_t schedule_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	int rc = check_id(schedule_id, "schedule_id");
	if (rc == 0)
		rc = e->store->seats_list(e->store_ctx, out, schedule_id, concert_engine_now(e));
	return engine_finish(e, CONCERT_OP_CATALOG_READ, rc);
}

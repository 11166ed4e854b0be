/*
 * The PostgreSQL store: open/close/health, the catalog (concerts,
 * schedules, seats), the audit, and the vtable. Its context is the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/postgres/pg.h"

static int store_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	if (!out_ctx)
		return concert_sys_error(CONCERT_EINVAL, "open needs out_ctx");
	*out_ctx = NULL;
	pg_pool *pool;
	int rc = pg_pool_open(&pool, uri, env);
	if (rc == 0)
		*out_ctx = pool;
	return rc;
}

static void store_close(void *ctx)
{
	pg_pool_close(ctx);
}

static int store_health(void *ctx)
{
	PGresult *res;
	int rc = pg_exec(ctx, PG_PING, NULL, PG_REPEATABLE, &res);
	PQclear(res);
	return rc;
}

static int concert_add(void *ctx, int64_t *out_id, const char *title, concert_time opens_at,
		       concert_time closes_at)
{
	char a[PG_INT_BUF], b[PG_INT_BUF];
	const char *params[] = { title, pg_param_int(a, opens_at), pg_param_int(b, closes_at) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_CONCERT_ADD, params, PG_ONCE, &res);
	if (rc == 0)
		*out_id = pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

static int schedule_add(void *ctx, int64_t *out_id, int64_t concert_id, concert_time starts_at,
			const char *venue)
{
	char a[PG_INT_BUF], b[PG_INT_BUF];
	const char *params[] = { pg_param_int(a, concert_id), pg_param_int(b, starts_at),
		venue ? venue : "" };
	PGresult *res;
	int rc = pg_exec(ctx, PG_SCHEDULE_ADD, params, PG_ONCE, &res);
	if (rc == 0 && PQntuples(res) == 0)
		rc = concert_sys_error(CONCERT_ENOTFOUND, "no such concert");
	else if (rc == 0)
		*out_id = pg_get_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

/* Appends `s` as a quoted array element ("a\"b") to buf at *len. */
static void array_text_element(char *buf, size_t *len, const char *s)
{
	buf[(*len)++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf[(*len)++] = '\\';
		buf[(*len)++] = *s;
	}
	buf[(*len)++] = '"';
}

static int seats_add(void *ctx, int64_t schedule_id, const concert_seat_spec *specs, size_t count)
{
	if (!specs || count == 0 || count > INT32_MAX)
		return concert_sys_error(CONCERT_EINVAL, "no seats given");
	size_t grades_size = 3;
	for (size_t i = 0; i < count; i++)
		grades_size += 2 * concert_strnlen(specs[i].grade, CONCERT_GRADE_MAX) + 3;
	int32_t *nos = malloc(count * sizeof(*nos));
	char *prices = malloc(count * (PG_INT_BUF + 1) + 3);
	char *grades = malloc(grades_size);
	char *seat_array = NULL;
	int rc = 0;
	if (!nos || !prices || !grades) {
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
		goto out;
	}
	size_t plen = 0, glen = 0;
	prices[plen++] = '{';
	grades[glen++] = '{';
	for (size_t i = 0; i < count; i++) {
		char num[PG_INT_BUF];
		if (concert_strnlen(specs[i].grade, CONCERT_GRADE_MAX) > CONCERT_GRADE_MAX) {
			rc = concert_sys_error(CONCERT_EINVAL, "grade too long");
			goto out;
		}
		nos[i] = specs[i].seat_no;
		if (i) {
			prices[plen++] = ',';
			grades[glen++] = ',';
		}
		size_t n = strlen(pg_param_int(num, specs[i].price));
		memcpy(prices + plen, num, n);
		plen += n;
		array_text_element(grades, &glen, specs[i].grade);
	}
	prices[plen++] = '}';
	prices[plen] = '\0';
	grades[glen++] = '}';
	grades[glen] = '\0';
	seat_array = pg_param_int_array(nos, count);
	if (!seat_array) {
		rc = CONCERT_ENOMEM;
		goto out;
	}
	char id[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, schedule_id), seat_array, prices, grades };
	PGresult *res;
	rc = pg_exec(ctx, PG_SEATS_ADD, params, PG_ONCE, &res);
	PQclear(res);
out:
	free(nos);
	free(prices);
	free(grades);
	free(seat_array);
	return rc;
}

static void concert_row(concert_concert *c, const PGresult *res, int row)
{
	c->id = pg_get_int64(res, row, 0);
	pg_get_text(c->title, sizeof(c->title), res, row, 1);
	c->opens_at = pg_get_int64(res, row, 2);
	c->closes_at = pg_get_int64(res, row, 3);
}

static int concerts_list(void *ctx, concert_concert_list **out)
{
	PGresult *res;
	int rc = pg_exec(ctx, PG_CONCERTS_LIST, NULL, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	int n = PQntuples(res);
	concert_concert_list *list = concert_sys_concert_list_alloc((size_t)n);
	if (!list)
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	for (int i = 0; rc == 0 && i < n; i++)
		concert_row(&list->items[i], res, i);
	PQclear(res);
	if (rc == 0)
		*out = list;
	return rc;
}

static int concert_get(void *ctx, concert_concert **out, int64_t concert_id)
{
	char id[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, concert_id) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_CONCERT_GET, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	concert_concert *c = NULL;
	if (PQntuples(res) == 0)
		rc = concert_sys_error(CONCERT_ENOTFOUND, "no such concert");
	else if (!(c = concert_sys_concert_alloc()))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	else
		concert_row(c, res, 0);
	PQclear(res);
	if (rc == 0)
		*out = c;
	return rc;
}

/* Columns: id, concert_id, starts_at, venue, total, held, reserved. */
static void schedule_row(concert_schedule *s, const PGresult *res, int row)
{
	s->id = pg_get_int64(res, row, 0);
	s->concert_id = pg_get_int64(res, row, 1);
	s->starts_at = pg_get_int64(res, row, 2);
	pg_get_text(s->venue, sizeof(s->venue), res, row, 3);
	s->total_seats = pg_get_int64(res, row, 4);
	s->held_seats = pg_get_int64(res, row, 5);
	s->reserved_seats = pg_get_int64(res, row, 6);
	s->available_seats = s->total_seats - s->held_seats - s->reserved_seats;
}

static int schedules_list(void *ctx, concert_schedule_list **out, int64_t concert_id,
			  concert_time now)
{
	char id[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, concert_id), pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_SCHEDULES_LIST, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	int n = PQntuples(res);
	/* No row: no concert; one row of NULLs: a concert without schedules. */
	if (n == 0) {
		PQclear(res);
		return concert_sys_error(CONCERT_ENOTFOUND, "no such concert");
	}
	if (n == 1 && pg_get_null(res, 0, 0))
		n = 0;
	concert_schedule_list *list = concert_sys_schedule_list_alloc((size_t)n);
	if (!list)
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	for (int i = 0; rc == 0 && i < n; i++)
		schedule_row(&list->items[i], res, i);
	PQclear(res);
	if (rc == 0)
		*out = list;
	return rc;
}

static int schedule_get(void *ctx, concert_schedule **out, int64_t schedule_id, concert_time now)
{
	char id[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, schedule_id), pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_SCHEDULE_GET, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	concert_schedule *s = NULL;
	if (PQntuples(res) == 0)
		rc = concert_sys_error(CONCERT_ENOTFOUND, "no such schedule");
	else if (!(s = concert_sys_schedule_alloc()))
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	else
		schedule_row(s, res, 0);
	PQclear(res);
	if (rc == 0)
		*out = s;
	return rc;
}

static int seats_list(void *ctx, concert_seat_list **out, int64_t schedule_id, concert_time now)
{
	char id[PG_INT_BUF], at[PG_INT_BUF];
	const char *params[] = { pg_param_int(id, schedule_id), pg_param_int(at, now) };
	PGresult *res;
	int rc = pg_exec(ctx, PG_SEATS_LIST, params, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	int n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return concert_sys_error(CONCERT_ENOTFOUND, "no such schedule");
	}
	if (n == 1 && pg_get_null(res, 0, 0))
		n = 0;
	concert_seat_list *list = concert_sys_seat_list_alloc((size_t)n);
	if (!list)
		rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	for (int i = 0; rc == 0 && i < n; i++) {
		concert_seat *seat = &list->items[i];
		seat->seat_no = (int32_t)pg_get_int64(res, i, 0);
		seat->state = (int32_t)pg_get_int64(res, i, 1);
		seat->price = pg_get_int64(res, i, 2);
		seat->version = pg_get_int64(res, i, 3);
		pg_get_text(seat->grade, sizeof(seat->grade), res, i, 4);
	}
	PQclear(res);
	if (rc == 0) {
		list->schedule_id = schedule_id;
		*out = list;
	}
	return rc;
}

/* A numeric total that must fit int64: the store's sums may exceed it. */
static int audit_value(int64_t *out, const PGresult *res, int col)
{
	const char *v = PQgetvalue(res, 0, col);
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno == ERANGE || *end)
		return concert_sys_errorf(CONCERT_EOVERFLOW, "audit total %s does not fit 64 bits", v);
	*out = x;
	return 0;
}

static int store_audit(void *ctx, concert_audit **out)
{
	PGresult *res;
	int rc = pg_exec(ctx, PG_AUDIT, NULL, PG_REPEATABLE, &res);
	if (rc < 0)
		return rc;
	concert_audit *a = concert_sys_audit_alloc();
	if (!a) {
		PQclear(res);
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	int64_t *fields[] = { &a->total_balance, &a->total_charges, &a->total_payments,
		&a->total_refunds, &a->wallets, &a->wallet_mismatches, &a->reserved_seats,
		&a->seat_mismatches, &a->reservations, &a->payment_mismatches };
	for (int i = 0; rc == 0 && i < (int)(sizeof(fields) / sizeof(fields[0])); i++)
		rc = audit_value(fields[i], res, i);
	PQclear(res);
	if (rc == 0)
		*out = a;
	else
		concert_free(a);
	return rc;
}

const concert_store_backend concert_postgres_store_backend = {
	.version = CONCERT_STORE_BACKEND_VERSION,
	.scheme = "postgresql",
	.open = store_open,
	.close = store_close,
	.health = store_health,
	.concert_add = concert_add,
	.schedule_add = schedule_add,
	.seats_add = seats_add,
	.concerts_list = concerts_list,
	.concert_get = concert_get,
	.schedules_list = schedules_list,
	.schedule_get = schedule_get,
	.seats_list = seats_list,
	.hold_seats = pg_hold_seats,
	.hold_release = pg_hold_release,
	.hold_extend = pg_hold_extend,
	.hold_get = pg_hold_get,
	.charge = pg_charge,
	.balance = pg_balance,
	.history = pg_history,
	.pay = pg_pay,
	.cancel = pg_cancel,
	.reservation_get = pg_reservation_get,
	.sweep = pg_hold_sweep,
	.compact = NULL,
	.audit = store_audit,
	.queue_shared = pg_store_queue_shared,
	.hold_seats_token = pg_hold_seats_token,
	.pay_token = pg_pay_token,
};

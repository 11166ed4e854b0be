/*
 * The Redis lock backend ("redis://..."): the hot-seat filter.
 *
 * A seat's lock is the key seat:{scheduleId}:<seatNo> holding the
 * contender's random value with a TTL (PX). All seats of a call share the
 * schedule's hash tag, so the all-or-none acquire is one function call in
 * one Cluster slot (a single seat is a plain SET NX PX). Release is
 * compare-and-delete, so a contender whose lock expired cannot delete the
 * next holder's. The lock only spares the store work: the store's own seat
 * state check decides who holds a seat.
 */
#include <stdio.h>
#include <string.h>

#include "storage/redis/redis.h"

#define KEY_MAX (REDIS_PREFIX_MAX + 48)
/* DEL/SET words + value + NX PX ttl around the keys. */
#define LOCK_ARGS_MAX (CONCERT_HOLD_SEATS_MAX + 6)

typedef struct lock_call {
	char keys[CONCERT_HOLD_SEATS_MAX][KEY_MAX];
	char ttl[24];
	const char *argv[LOCK_ARGS_MAX];
	size_t len[LOCK_ARGS_MAX];
	int argc;
} lock_call;

static void call_str(lock_call *call, const char *s, size_t len)
{
	call->argv[call->argc] = s;
	call->len[call->argc++] = len;
}

static int call_keys(lock_call *call, const redis_client *client, int64_t schedule_id,
		     const int32_t *seat_nos, size_t count)
{
	if (schedule_id <= 0 || !seat_nos || count == 0 || count > CONCERT_HOLD_SEATS_MAX)
		return concert_sys_error(CONCERT_EINVAL, "lock needs a schedule and 1..64 seats");
	for (size_t i = 0; i < count; i++) {
		int n = snprintf(call->keys[i], KEY_MAX, "%sseat:{%lld}:%d", redis_client_prefix(client),
				 (long long)schedule_id, (int)seat_nos[i]);
		call_str(call, call->keys[i], (size_t)n);
	}
	return 0;
}

static int bad_reply(const char *what)
{
	return concert_sys_errorf(CONCERT_EINTERNAL, "redis lock: unexpected reply to %s", what);
}

static int value_length(const char *value, size_t *out)
{
	size_t len = value ? concert_strnlen(value, CONCERT_LOCK_VALUE_MAX) : 0;
	if (len == 0 || len > CONCERT_LOCK_VALUE_MAX)
		return concert_sys_error(CONCERT_EINVAL, "lock value must be 1..63 bytes");
	*out = len;
	return 0;
}

/* One seat: SET key value NX PX ttl; a nil reply means it is locked. */
static int acquire_one(redis_client *client, lock_call *call, int32_t seat_no)
{
	redisReply *r;
	int rc = redis_client_command(client, &r, call->argc, call->argv, call->len);
	if (rc < 0)
		return rc;
	if (r->type == REDIS_REPLY_NIL)
		rc = concert_sys_error_conflicts(&seat_no, 1);
	else if (r->type != REDIS_REPLY_STATUS)
		rc = bad_reply("SET");
	freeReplyObject(r);
	return rc;
}

static int lock_acquire(void *ctx, int64_t schedule_id, const int32_t *seat_nos, size_t count,
			const char *value, concert_time ttl)
{
	redis_client *client = ctx;
	lock_call call;
	size_t value_len = 0;
	call.argc = 0;
	int rc = value_length(value, &value_len);
	if (rc == 0 && ttl <= 0)
		rc = concert_sys_error(CONCERT_EINVAL, "lock ttl must be positive");
	if (rc < 0)
		return rc;
	int ttl_len = snprintf(call.ttl, sizeof(call.ttl), "%lld", (long long)ttl);
	if (count == 1) {
		call_str(&call, "SET", 3);
		rc = call_keys(&call, client, schedule_id, seat_nos, count);
		call_str(&call, value, value_len);
		call_str(&call, "NX", 2);
		call_str(&call, "PX", 2);
		call_str(&call, call.ttl, (size_t)ttl_len);
		return rc < 0 ? rc : acquire_one(client, &call, seat_nos[0]);
	}
	rc = call_keys(&call, client, schedule_id, seat_nos, count);
	if (rc < 0)
		return rc;
	call_str(&call, value, value_len);
	call_str(&call, call.ttl, (size_t)ttl_len);
	redisReply *r;
	rc = redis_client_fcall(client, &r, REDIS_FN_ACQUIRE, (int)count, call.argc, call.argv,
				call.len);
	if (rc < 0)
		return rc;
	int32_t taken[CONCERT_HOLD_SEATS_MAX];
	size_t n = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements > count)
		rc = bad_reply("acquire");
	for (size_t i = 0; rc == 0 && i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_INTEGER || e->integer < 1 || e->integer > (long long)count)
			rc = bad_reply("acquire");
		else
			taken[n++] = seat_nos[e->integer - 1];
	}
	freeReplyObject(r);
	if (rc == 0 && n > 0)
		rc = concert_sys_error_conflicts(taken, n);
	return rc;
}

static int lock_release(void *ctx, int64_t schedule_id, const int32_t *seat_nos, size_t count,
			const char *value)
{
	redis_client *client = ctx;
	lock_call call;
	size_t value_len = 0;
	call.argc = 0;
	int rc = value ? value_length(value, &value_len) : 0;
	if (rc < 0)
		return rc;
	redisReply *r;
	if (!value) {
		/* The store freed these seats: whoever locks them, they go. */
		call_str(&call, "DEL", 3);
		rc = call_keys(&call, client, schedule_id, seat_nos, count);
		if (rc == 0)
			rc = redis_client_command(client, &r, call.argc, call.argv, call.len);
	} else {
		rc = call_keys(&call, client, schedule_id, seat_nos, count);
		call_str(&call, value, value_len);
		if (rc == 0)
			rc = redis_client_fcall(client, &r, REDIS_FN_RELEASE, (int)count, call.argc,
						call.argv, call.len);
	}
	if (rc < 0)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER)
		rc = bad_reply("release");
	freeReplyObject(r);
	return rc;
}

static int lock_health(void *ctx)
{
	return redis_client_ping(ctx);
}

static int lock_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	if (!out_ctx || !env || !env->clock || !env->log)
		return concert_sys_error(CONCERT_EINVAL, "open needs out_ctx and an environment");
	*out_ctx = NULL;
	redis_client *client;
	int rc = redis_client_open(&client, uri, env);
	if (rc == 0)
		*out_ctx = client;
	return rc;
}

static void lock_close(void *ctx)
{
	redis_client_close(ctx);
}

const concert_lock_backend concert_redis_lock_backend = {
	.version = CONCERT_LOCK_BACKEND_VERSION,
	.scheme = "redis",
	.open = lock_open,
	.close = lock_close,
	.health = lock_health,
	.acquire = lock_acquire,
	.release = lock_release,
};

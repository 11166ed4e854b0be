/*
 * The engine handle: options, backends, statistics, maintenance.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/engine.h"

#define MINUTE_MS (60 * 1000)
#define SECRET_RANDOM_BYTES 32

int concert_options_init(concert_options *opts, unsigned int version)
{
	if (!opts)
		return concert_sys_error(CONCERT_EINVAL, "opts is NULL");
	if (version != CONCERT_OPTIONS_VERSION)
		return concert_sys_errorf(CONCERT_EVERSION, "options version %u not supported", version);
	concert_options init = CONCERT_OPTIONS_INIT;
	*opts = init;
	return 0;
}

static concert_time realtime_clock(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (concert_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void silent_log(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

#define DEFAULT(field, value) \
	do { if (!o->field) o->field = (value); } while (0)

static int apply_defaults(concert_options *o)
{
	DEFAULT(max_active, 100);
	DEFAULT(wait_idle_ttl, 5 * MINUTE_MS);
	DEFAULT(active_ttl, 10 * MINUTE_MS);
	DEFAULT(hold_ttl, 5 * MINUTE_MS);
	DEFAULT(hold_max_lifetime, 15 * MINUTE_MS);
	DEFAULT(hold_max_extensions, 2);
	DEFAULT(max_holds_per_user, 4);
	DEFAULT(max_seats_per_user, 8);
	if (o->wait_idle_ttl < 0 || o->active_ttl < 0 || o->hold_ttl < 0 || o->hold_max_lifetime < 0)
		return concert_sys_error(CONCERT_EINVAL, "durations must not be negative");
	if (o->hold_max_lifetime < o->hold_ttl)
		return concert_sys_error(CONCERT_EINVAL, "hold_max_lifetime is shorter than hold_ttl");
	if (!o->clock)
		o->clock = realtime_clock;
	if (!o->log)
		o->log = silent_log;
	return 0;
}

static int copy_secret(concert_engine *e, const concert_options *opts)
{
	size_t len = opts->secret ? opts->secret_len : SECRET_RANDOM_BYTES;
	if (opts->secret && !len)
		return concert_sys_error(CONCERT_EINVAL, "secret_len is 0");
	e->secret = malloc(len);
	if (!e->secret)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	e->secret_len = len;
	if (opts->secret)
		memcpy(e->secret, opts->secret, len);
	else if (RAND_bytes(e->secret, (int)len) != 1)
		return concert_sys_error(CONCERT_EINTERNAL, "no randomness for the token secret");
	return 0;
}

static int open_backends(concert_engine *e)
{
	e->store = concert_registry_store(e->store_uri);
	if (!e->store)
		return concert_sys_errorf(CONCERT_EINVAL, "no store backend for '%s'", e->store_uri);
	e->queue = concert_registry_queue(e->queue_uri);
	if (!e->queue)
		return concert_sys_errorf(CONCERT_EINVAL, "no queue backend for '%s'", e->queue_uri);

	int rc = e->store->open(&e->store_ctx, e->store_uri, &e->env);
	if (rc < 0) {
		e->store = NULL;
		return rc;
	}
	rc = e->queue->open(&e->queue_ctx, e->queue_uri, &e->env);
	if (rc < 0) {
		e->queue = NULL;
		return rc;
	}
	e->store_checks_tokens = e->store->version >= 2 && e->store->queue_shared &&
				 e->store->hold_seats_token && e->store->pay_token &&
				 e->store->queue_shared(e->store_ctx, e->queue, e->queue_ctx) == 1;
	if (!e->lock_uri)
		return 0;
	e->lock = concert_registry_lock(e->lock_uri);
	if (!e->lock)
		return concert_sys_errorf(CONCERT_EINVAL, "no lock backend for '%s'", e->lock_uri);
	rc = e->lock->open(&e->lock_ctx, e->lock_uri, &e->env);
	if (rc < 0)
		e->lock = NULL;
	return rc;
}

int concert_engine_open(concert_engine **out, const concert_options *opts)
{
	concert_options defaults = CONCERT_OPTIONS_INIT;
	engine_begin();
	if (!out)
		return concert_sys_error(CONCERT_EINVAL, "out is NULL");
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->version != CONCERT_OPTIONS_VERSION)
		return concert_sys_errorf(CONCERT_EVERSION, "options version %u not supported", opts->version);

	/* The counters' stripes are cache-line aligned: so must the engine be. */
	size_t size = (sizeof(concert_engine) + _Alignof(concert_engine) - 1) /
		      _Alignof(concert_engine) * _Alignof(concert_engine);
	concert_engine *e = aligned_alloc(_Alignof(concert_engine), size);
	if (!e)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	memset(e, 0, size);
	static _Atomic uint64_t serials;
	e->serial = atomic_fetch_add(&serials, 1) + 1;
	e->opts = *opts;
	int rc = apply_defaults(&e->opts);
	if (rc == 0) {
		/* The queue lives beside the store unless told otherwise. */
		const char *store = opts->store && *opts->store ? opts->store : "memory:";
		const char *queue = opts->queue && *opts->queue ? opts->queue : store;
		e->store_uri = strdup(store);
		e->queue_uri = strdup(queue);
		if (!e->store_uri || !e->queue_uri)
			rc = concert_sys_error(CONCERT_ENOMEM, NULL);
		if (rc == 0 && opts->lock && *opts->lock && strcmp(opts->lock, "none") != 0 &&
		    !(e->lock_uri = strdup(opts->lock)))
			rc = concert_sys_error(CONCERT_ENOMEM, NULL);
	}
	if (rc == 0)
		rc = copy_secret(e, opts);
	if (rc == 0) {
		e->opts.store = e->store_uri;
		e->opts.queue = e->queue_uri;
		e->opts.lock = e->lock_uri;
		e->opts.secret = NULL;
		e->env = (concert_backend_env){ CONCERT_BACKEND_ENV_VERSION, e->opts.clock,
			e->opts.clock_ctx, e->opts.log, e->opts.log_ctx, e->opts.log_level };
		e->queue_policy = (concert_queue_policy){ e->opts.max_active, e->opts.admit_per_second,
			e->opts.wait_idle_ttl, e->opts.active_ttl };
		rc = open_backends(e);
	}
	if (rc < 0) {
		/* Keep the backend's message: closing must not overwrite it. */
		concert_error saved = *concert_error_last();
		char message[256];
		concert_sys_strlcpy(message, saved.message, sizeof(message));
		concert_engine_close(e);
		return concert_sys_error(rc, message);
	}
	*out = e;
	return 0;
}

void concert_engine_close(concert_engine *e)
{
	if (!e)
		return;
	if (e->lock)
		e->lock->close(e->lock_ctx);
	if (e->queue)
		e->queue->close(e->queue_ctx);
	if (e->store)
		e->store->close(e->store_ctx);
	if (e->secret)
		OPENSSL_cleanse(e->secret, e->secret_len);
	free(e->secret);
	free(e->store_uri);
	free(e->queue_uri);
	free(e->lock_uri);
	free(e);
}

concert_time concert_engine_now(concert_engine *e)
{
	return e ? e->env.clock(e->env.clock_ctx) : 0;
}

void engine_log(concert_engine *e, int level, const char *message)
{
	if (level <= e->opts.log_level)
		e->opts.log(e->opts.log_ctx, level, message);
}

/* The calling thread's stripe of the counters, handed out round-robin. */
static unsigned stat_stripe(void)
{
	static _Atomic unsigned next_stripe;
	static _Thread_local unsigned stripe = UINT_MAX;
	if (stripe == UINT_MAX)
		stripe = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) % STAT_STRIPES;
	return stripe;
}

int engine_finish(concert_engine *e, concert_op op, int rc)
{
	int index = (rc <= 0 && rc > -CONCERT_ERROR_COUNT) ? -rc : -CONCERT_EINTERNAL;
	if (rc == 0)
		concert_error_clear();
	else if (concert_error_last()->code != rc)
		concert_sys_error(rc, NULL);
	atomic_fetch_add_explicit(&e->stats[stat_stripe()].count[op][index], 1, memory_order_relaxed);
	if (rc < 0)
		engine_log(e, CONCERT_LOG_DEBUG, concert_error_last()->message);
	return rc;
}

uint64_t concert_engine_stat(concert_engine *e, int op, int code)
{
	if (!e || op < 0 || op >= CONCERT_OP_COUNT || code > 0 || code <= -CONCERT_ERROR_COUNT)
		return 0;
	uint64_t total = 0;
	for (int s = 0; s < STAT_STRIPES; s++)
		total += atomic_load_explicit(&e->stats[s].count[op][-code], memory_order_relaxed);
	return total;
}

const char *concert_op_name(int op)
{
	static const char *const names[CONCERT_OP_COUNT] = {
		"concert_add", "schedule_add", "seats_add", "catalog_read", "queue_enter",
		"queue_status", "queue_leave", "token_validate", "hold", "hold_release",
		"hold_extend", "hold_read", "charge", "wallet_read", "pay", "cancel",
		"reservation_read",
	};
	return (op >= 0 && op < CONCERT_OP_COUNT) ? names[op] : "unknown";
}

int concert_engine_health(concert_engine *e)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int rc = e->store->health(e->store_ctx);
	if (rc < 0)
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "store: %s", concert_error_last()->message);
	rc = e->queue->health(e->queue_ctx);
	if (rc < 0)
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "queue: %s", concert_error_last()->message);
	rc = e->lock ? e->lock->health(e->lock_ctx) : 0;
	if (rc < 0)
		return concert_sys_errorf(CONCERT_EUNAVAILABLE, "lock: %s", concert_error_last()->message);
	return 0;
}

int concert_engine_sweep(concert_engine *e, uint64_t *out_swept)
{
	uint64_t holds = 0, tokens = 0;
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	concert_time now = concert_engine_now(e);
	int rc = e->store->sweep ? e->store->sweep(e->store_ctx, now, &holds) : 0;
	if (rc == 0 && e->queue->sweep)
		rc = e->queue->sweep(e->queue_ctx, now, &tokens);
	if (out_swept)
		*out_swept = holds;
	return rc;
}

int concert_engine_compact(concert_engine *e)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int rc = e->store->compact ? e->store->compact(e->store_ctx) : 0;
	if (rc == 0 && e->queue->compact)
		rc = e->queue->compact(e->queue_ctx);
	return rc;
}

int concert_engine_audit(concert_engine *e, concert_audit **out)
{
	engine_begin();
	if (!e || !out)
		return concert_sys_error(CONCERT_EINVAL, "engine or out is NULL");
	*out = NULL;
	return e->store->audit(e->store_ctx, out);
}

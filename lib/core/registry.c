/*
 * Backend registry: URI scheme -> vtable, process-wide.
 */
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

#define REGISTRY_MAX 16

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static const concert_store_backend *stores[REGISTRY_MAX];
static const concert_queue_backend *queues[REGISTRY_MAX];
static const concert_lock_backend *locks[REGISTRY_MAX];
static size_t store_count, queue_count, lock_count;
static int builtins_registered;

/* Store methods every backend must have (all but sweep and compact). */
static int store_complete(const concert_store_backend *b)
{
	return b->open && b->close && b->health && b->concert_add && b->schedule_add &&
	       b->seats_add && b->concerts_list && b->concert_get && b->schedules_list &&
	       b->schedule_get && b->seats_list && b->hold_seats && b->hold_release &&
	       b->hold_extend && b->hold_get && b->charge && b->balance && b->history &&
	       b->pay && b->cancel && b->reservation_get && b->audit;
}

static int queue_complete(const concert_queue_backend *b)
{
	return b->open && b->close && b->health && b->enter && b->status && b->leave &&
	       b->complete && b->admit;
}

static int scheme_ok(const char *scheme)
{
	return scheme && *scheme && concert_strnlen(scheme, 31) <= 31;
}

static int register_locked(const void **table, size_t *count, const char *scheme,
			   const void *backend, const char *(*scheme_of)(const void *))
{
	for (size_t i = 0; i < *count; i++)
		if (strcmp(scheme_of(table[i]), scheme) == 0)
			return concert_sys_errorf(CONCERT_EEXISTS, "scheme '%s' already registered", scheme);
	if (*count == REGISTRY_MAX)
		return concert_sys_error(CONCERT_ELIMIT, "too many backends registered");
	table[(*count)++] = backend;
	return 0;
}

static const char *store_scheme(const void *b)
{
	return ((const concert_store_backend *)b)->scheme;
}

static const char *queue_scheme(const void *b)
{
	return ((const concert_queue_backend *)b)->scheme;
}

static const char *lock_scheme(const void *b)
{
	return ((const concert_lock_backend *)b)->scheme;
}

static void register_builtins_locked(void)
{
	if (builtins_registered)
		return;
	builtins_registered = 1;
	stores[store_count++] = &concert_memory_store_backend;
	queues[queue_count++] = &concert_memory_queue_backend;
#ifdef CONCERT_WITH_POSTGRES
	stores[store_count++] = &concert_postgres_store_backend;
	queues[queue_count++] = &concert_postgres_queue_backend;
#endif
#ifdef CONCERT_WITH_REDIS
	queues[queue_count++] = &concert_redis_queue_backend;
	locks[lock_count++] = &concert_redis_lock_backend;
#endif
}

int concert_sys_store_register(const concert_store_backend *backend)
{
	if (!backend)
		return concert_sys_error(CONCERT_EINVAL, "backend is NULL");
	/* Version 2 only appended optional methods: version 1 still works. */
	if (backend->version < 1 || backend->version > CONCERT_STORE_BACKEND_VERSION)
		return concert_sys_errorf(CONCERT_EVERSION, "store backend version %u not supported",
					  backend->version);
	if (!scheme_ok(backend->scheme) || !store_complete(backend))
		return concert_sys_error(CONCERT_EINVAL, "store backend lacks a scheme or a required method");
	if (backend->version >= 2 && backend->queue_shared &&
	    !(backend->hold_seats_token && backend->pay_token))
		return concert_sys_error(CONCERT_EINVAL, "queue_shared needs hold_seats_token and pay_token");
	pthread_mutex_lock(&registry_lock);
	register_builtins_locked();
	int rc = register_locked((const void **)stores, &store_count, backend->scheme, backend,
				 store_scheme);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

int concert_sys_queue_register(const concert_queue_backend *backend)
{
	if (!backend)
		return concert_sys_error(CONCERT_EINVAL, "backend is NULL");
	if (backend->version != CONCERT_QUEUE_BACKEND_VERSION)
		return concert_sys_errorf(CONCERT_EVERSION, "queue backend version %u not supported",
					  backend->version);
	if (!scheme_ok(backend->scheme) || !queue_complete(backend))
		return concert_sys_error(CONCERT_EINVAL, "queue backend lacks a scheme or a required method");
	pthread_mutex_lock(&registry_lock);
	register_builtins_locked();
	int rc = register_locked((const void **)queues, &queue_count, backend->scheme, backend,
				 queue_scheme);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

int concert_sys_lock_register(const concert_lock_backend *backend)
{
	if (!backend)
		return concert_sys_error(CONCERT_EINVAL, "backend is NULL");
	if (backend->version != CONCERT_LOCK_BACKEND_VERSION)
		return concert_sys_errorf(CONCERT_EVERSION, "lock backend version %u not supported",
					  backend->version);
	if (!scheme_ok(backend->scheme) || !backend->open || !backend->close || !backend->health ||
	    !backend->acquire || !backend->release)
		return concert_sys_error(CONCERT_EINVAL, "lock backend lacks a scheme or a required method");
	pthread_mutex_lock(&registry_lock);
	register_builtins_locked();
	int rc = register_locked((const void **)locks, &lock_count, backend->scheme, backend,
				 lock_scheme);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

/* "postgres://" and "postgresql://" are one scheme; libpq key=value strings
 * (no ':' before the first '=') belong to "postgresql" too. */
static void uri_scheme(const char *uri, char *out, size_t out_size)
{
	size_t n = strcspn(uri, ":");
	if (uri[n] != ':' || n == 0 || n >= out_size) {
		concert_sys_strlcpy(out, strchr(uri, '=') ? "postgresql" : "", out_size);
		return;
	}
	memcpy(out, uri, n);
	out[n] = '\0';
	if (strcmp(out, "postgres") == 0)
		concert_sys_strlcpy(out, "postgresql", out_size);
}

static const void *lookup(const void **table, size_t *count, const char *uri,
			  const char *(*scheme_of)(const void *))
{
	char scheme[32];
	const void *found = NULL;
	uri_scheme(uri, scheme, sizeof(scheme));
	pthread_mutex_lock(&registry_lock);
	register_builtins_locked();
	for (size_t i = 0; i < *count && !found; i++)
		if (strcmp(scheme_of(table[i]), scheme) == 0)
			found = table[i];
	pthread_mutex_unlock(&registry_lock);
	return found;
}

const concert_store_backend *concert_registry_store(const char *uri)
{
	return lookup((const void **)stores, &store_count, uri, store_scheme);
}

const concert_queue_backend *concert_registry_queue(const char *uri)
{
	return lookup((const void **)queues, &queue_count, uri, queue_scheme);
}

const concert_lock_backend *concert_registry_lock(const char *uri)
{
	return lookup((const void **)locks, &lock_count, uri, lock_scheme);
}

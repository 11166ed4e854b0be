/*
 * The Redis backend (hiredis): shared by its queue and lock slots.
 *
 * A redis_client is one URI's connection pool plus the Lua scripts its slot
 * runs. Every call checks a connection out, runs one command or one script
 * (EVALSHA; after NOSCRIPT the script is loaded again and run once more),
 * and checks it back in. Any I/O failure or timeout drops that connection
 * and answers CONCERT_EUNAVAILABLE: the outcome of the interrupted command
 * is unknown to us, so nothing is retried behind the caller's back.
 */
#ifndef CONCERT_STORAGE_REDIS_H
#define CONCERT_STORAGE_REDIS_H

#include <hiredis/hiredis.h>

#include "core/internal.h"

/* Longest key prefix (the URI's prefix= option). */
#define REDIS_PREFIX_MAX 64

/* What a URI says (see docs/redis.md for the forms). */
typedef struct redis_uri {
	char *host;              /* NULL for a unix socket */
	int port;
	char *path;              /* unix socket path, or NULL */
	char *username;          /* ACL user, or NULL */
	char *password;          /* AUTH password, or NULL */
	int db;
	int pool;                /* most connections open at once */
	int connect_timeout_ms;
	int timeout_ms;          /* every command */
	char prefix[REDIS_PREFIX_MAX + 1];
} redis_uri;

int redis_uri_parse(redis_uri *out, const char *uri);
void redis_uri_free(redis_uri *uri);

/* A Lua script and, once loaded, its SHA1 (written at open only). */
typedef struct redis_script {
	const char *name;
	const char *body;
} redis_script;

typedef struct redis_client redis_client;

/*
 * Connects one connection (so a wrong URI fails here, clearly) and loads the
 * scripts. `scripts` must outlive the client. CONCERT_EINVAL for a bad URI,
 * CONCERT_EUNAVAILABLE when Redis does not answer.
 */
int redis_client_open(redis_client **out, const char *uri, const concert_backend_env *env,
	const redis_script *scripts, size_t script_count);
void redis_client_close(redis_client *client);

/* The key prefix from the URI ("" by default). */
const char *redis_client_prefix(const redis_client *client);

/* PING. */
int redis_client_ping(redis_client *client);

/*
 * Runs one command. *out gets the reply (freeReplyObject) unless it is a
 * Redis error, which becomes CONCERT_EUNAVAILABLE for transient server
 * states (LOADING, BUSY, READONLY, OOM, MASTERDOWN, TRYAGAIN) and
 * CONCERT_EINTERNAL otherwise.
 */
int redis_client_command(redis_client *client, redisReply **out, int argc, const char **argv,
	const size_t *argvlen);

/*
 * Runs script `index` with `nkeys` keys followed by the arguments
 * (argv/argvlen hold keys then args, `argc` of them in all).
 */
int redis_client_eval(redis_client *client, redisReply **out, size_t index, int nkeys, int argc,
	const char **argv, const size_t *argvlen);

/* The scripts of each slot (scripts.c), indexed by the enums. */
enum {
	REDIS_QUEUE_ENTER,
	REDIS_QUEUE_STATUS,
	REDIS_QUEUE_END,
	REDIS_QUEUE_ADMIT,
	REDIS_QUEUE_SWEEP,
	REDIS_QUEUE_COUNTS,
	REDIS_QUEUE_SCRIPT_COUNT
};
extern const redis_script redis_queue_scripts[REDIS_QUEUE_SCRIPT_COUNT];

enum {
	REDIS_LOCK_ACQUIRE,
	REDIS_LOCK_RELEASE,
	REDIS_LOCK_SCRIPT_COUNT
};
extern const redis_script redis_lock_scripts[REDIS_LOCK_SCRIPT_COUNT];

/* Script replies: element 0 is 0, a negative CONCERT_E* code, or this. */
#define REDIS_REPLY_ID_TAKEN 1

#endif

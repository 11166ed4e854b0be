/*
 * The Redis backend (hiredis): shared by its queue and lock slots.
 *
 * A redis_client is one URI's connection pool plus the Lua function library
 * (scripts.c). Every call runs one command or one function (FCALL; after
 * "Function not found" the library is loaded again and the call made once
 * more) on a pooled connection, pipelined behind other callers' commands
 * when all `pool` connections are busy (client.c). Any I/O failure or
 * timeout drops that connection and answers CONCERT_EUNAVAILABLE to every
 * call on it: the outcome of an interrupted command is unknown to us, so
 * nothing is retried behind the caller's back.
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

typedef struct redis_client redis_client;

/*
 * Connects one connection (so a wrong URI fails here, clearly) and loads the
 * function library. CONCERT_EINVAL for a bad URI, CONCERT_EUNAVAILABLE when
 * Redis does not answer or is older than 7.0.
 */
int redis_client_open(redis_client **out, const char *uri, const concert_backend_env *env);
void redis_client_close(redis_client *client);

/* The key prefix from the URI ("" by default). */
const char *redis_client_prefix(const redis_client *client);

/* PING. */
int redis_client_ping(redis_client *client);

/*
 * Runs one command. *out gets the reply (freeReplyObject) unless it is a
 * Redis error, which becomes CONCERT_EUNAVAILABLE for transient server
 * states (LOADING, BUSY, READONLY, OOM, MASTERDOWN, TRYAGAIN, ...) and
 * CONCERT_EINTERNAL otherwise.
 */
int redis_client_command(redis_client *client, redisReply **out, int argc, const char **argv,
	const size_t *argvlen);

/* Most words in one call: FCALL, name, numkeys, then the keys and arguments. */
#define REDIS_CALL_ARGS_MAX 80

/*
 * Calls library function `function` (FCALL) with `nkeys` keys followed by
 * the arguments (argv/argvlen hold keys then args, `argc` of them in all);
 * replies as redis_client_command. A server that lost the library gets it
 * again and the call is made once more.
 */
int redis_client_fcall(redis_client *client, redisReply **out, int function, int nkeys,
	int argc, const char **argv, const size_t *argvlen);

/* The Lua library (scripts.c) and its functions, indexed by the enum. */
extern const char redis_library_body[];
enum {
	REDIS_FN_ENTER,
	REDIS_FN_STATUS,
	REDIS_FN_END,
	REDIS_FN_ADMIT,
	REDIS_FN_SWEEP,
	REDIS_FN_COUNTS,
	REDIS_FN_ACQUIRE,
	REDIS_FN_RELEASE,
	REDIS_FN_COUNT
};
extern const char *const redis_function_names[REDIS_FN_COUNT];

/* Queue replies: element 0 is 0, a negative CONCERT_E* code, or this. */
#define REDIS_REPLY_ID_TAKEN 1

#endif

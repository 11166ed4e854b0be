/*
 * The Redis queue backend ("redis://..."): each primitive is one Lua
 * function (scripts.c) over the keys of one concert, one round trip.
 *
 * Time is the engine's `now`, passed to every function, never Redis TIME: the
 * engine's clock is injectable (tests drive it), and several hosts sharing
 * one Redis must keep their clocks synchronised (NTP) as they must for the
 * signed tokens anyway.
 *
 * Token ids are random in [1, 2^53): unique within a concert (the enter
 * function refuses a taken id and the client draws again), and the engine
 * always presents a token id together with its concert id, so no counter
 * outside the concert's hash tag is needed. 2^53 keeps them exact in
 * doubles (Lua, JavaScript, JSON).
 *
 * A status that would change nothing is not a function call but one HMGET
 * (status_read): a read of one key is atomic by itself, and it costs Redis
 * a fifth of the status function (most of which is Lua).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "storage/redis/redis.h"

_Static_assert(CONCERT_ETOKEN == -7 && CONCERT_EEXPIRED == -6 && CONCERT_ESTATE == -11,
	       "the error codes in scripts.c must match errors.h");

#define KEY_MAX (REDIS_PREFIX_MAX + 64)
#define QUEUE_KEYS 8
#define QUEUE_ARGS_MAX 8
#define ENTER_ATTEMPTS 8

/* One function call: the concert's keys, then the arguments. */
typedef struct queue_call {
	char keys[QUEUE_KEYS][KEY_MAX];
	char numbers[QUEUE_ARGS_MAX][24];
	const char *argv[QUEUE_KEYS + QUEUE_ARGS_MAX];
	size_t len[QUEUE_KEYS + QUEUE_ARGS_MAX];
	int argc;
	int numbers_used;
} queue_call;

enum { KEY_TOKENS = 4 }; /* keys[4] of every function (scripts.c) */

/* The name of one of a concert's keys (docs/redis.md); its length. */
static size_t concert_key(char key[KEY_MAX], const redis_client *client, int64_t concert_id,
			  int index)
{
	static const char *const suffix[QUEUE_KEYS] = { "meta", "waiting", "idle", "active",
		[KEY_TOKENS] = "tokens", "users", "ended", "gone" };
	return (size_t)snprintf(key, KEY_MAX, "%sconcert:{%lld}:%s", redis_client_prefix(client),
				(long long)concert_id, suffix[index]);
}

static void call_init(queue_call *call, const redis_client *client, int64_t concert_id)
{
	for (int i = 0; i < QUEUE_KEYS; i++) {
		call->len[i] = concert_key(call->keys[i], client, concert_id, i);
		call->argv[i] = call->keys[i];
	}
	call->argc = QUEUE_KEYS;
	call->numbers_used = 0;
}

static void call_str(queue_call *call, const char *s, size_t len)
{
	call->argv[call->argc] = s;
	call->len[call->argc++] = len;
}

static void call_int(queue_call *call, int64_t v)
{
	char *buf = call->numbers[call->numbers_used++];
	int n = snprintf(buf, sizeof(call->numbers[0]), "%lld", (long long)v);
	call_str(call, buf, (size_t)n);
}

static void call_policy(queue_call *call, const concert_queue_policy *p, concert_time now)
{
	call_int(call, now);
	call_int(call, p->max_active);
	call_int(call, p->admit_per_second);
	call_int(call, p->wait_idle_ttl);
	call_int(call, p->active_ttl);
}

static int run(redis_client *client, redisReply **out, int function, queue_call *call)
{
	return redis_client_fcall(client, out, function, QUEUE_KEYS, call->argc, call->argv,
				  call->len);
}

/* --- replies --------------------------------------------------------------------- */

static int bad_reply(const char *what)
{
	return concert_sys_errorf(CONCERT_EINTERNAL, "redis queue: unexpected reply to %s", what);
}

/* The status element of a function's reply: 0, a CONCERT_E* code or ID_TAKEN. */
static int reply_status(const redisReply *r, const char *what, long long *out)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return bad_reply(what);
	*out = r->element[0]->integer;
	return 0;
}

static int script_error(long long code)
{
	switch (code) {
	case CONCERT_ETOKEN:
		return concert_sys_error(CONCERT_ETOKEN, "no such queue token for this concert");
	case CONCERT_EEXPIRED:
		return concert_sys_error(CONCERT_EEXPIRED, "queue token already expired or used");
	case CONCERT_ESTATE:
		return concert_sys_error(CONCERT_ESTATE, "queue token is not ACTIVE");
	default:
		return concert_sys_errorf(CONCERT_EINTERNAL, "redis queue: function answered %lld", code);
	}
}

static int integer_at(const redisReply *r, size_t i, long long *out)
{
	if (r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	*out = r->element[i]->integer;
	return 0;
}

/* A decimal token id string as sent by the client. */
static int parse_id(const redisReply *e, int64_t *out)
{
	if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 19)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < e->len; i++) {
		if (e->str[i] < '0' || e->str[i] > '9')
			return -1;
		v = v * 10 + (e->str[i] - '0');
	}
	*out = v;
	return v > 0 ? 0 : -1;
}

/* {0, id, state, created, position, issued, expires, admitted_total, user} */
static int entry_from_reply(concert_queue_entry *out, int64_t concert_id, const redisReply *r,
			    const char *what)
{
	long long state, created, position, issued, expires, admitted;
	if (r->elements != 9 || parse_id(r->element[1], &out->token_id) < 0 ||
	    integer_at(r, 2, &state) < 0 || integer_at(r, 3, &created) < 0 ||
	    integer_at(r, 4, &position) < 0 || integer_at(r, 5, &issued) < 0 ||
	    integer_at(r, 6, &expires) < 0 || integer_at(r, 7, &admitted) < 0 ||
	    r->element[8]->type != REDIS_REPLY_STRING || r->element[8]->len == 0 ||
	    r->element[8]->len > CONCERT_USER_ID_MAX || state < CONCERT_QUEUE_WAITING ||
	    state > CONCERT_QUEUE_DONE || admitted < 0)
		return bad_reply(what);
	out->concert_id = concert_id;
	out->state = (int32_t)state;
	out->created = (int32_t)created;
	out->position = position;
	out->issued_at = issued;
	out->expires_at = expires;
	out->admitted_total = (uint64_t)admitted;
	memcpy(out->user_id, r->element[8]->str, r->element[8]->len);
	out->user_id[r->element[8]->len] = '\0';
	return 0;
}

/* --- operations ----------------------------------------------------------------- */

static int random_token_id(int64_t *out)
{
	uint64_t r;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return concert_sys_error(CONCERT_EINTERNAL, "no randomness for a token id");
	r &= (UINT64_C(1) << 53) - 1;
	*out = r ? (int64_t)r : 1;
	return 0;
}

static int check_policy(const concert_queue_policy *policy)
{
	if (!policy || policy->wait_idle_ttl <= 0 || policy->active_ttl <= 0)
		return concert_sys_error(CONCERT_EINVAL, "a queue policy with positive TTLs is needed");
	return 0;
}

static int queue_enter(void *ctx, concert_queue_entry *out, const char *user_id,
		       int64_t concert_id, const concert_queue_policy *policy, concert_time now)
{
	size_t len = user_id ? concert_strnlen(user_id, CONCERT_USER_ID_MAX) : 0;
	if (!out || len == 0 || len > CONCERT_USER_ID_MAX)
		return concert_sys_error(CONCERT_EINVAL, "enter needs out and a user id");
	int rc = check_policy(policy);
	for (int attempt = 0; rc == 0 && attempt < ENTER_ATTEMPTS; attempt++) {
		int64_t id = 0;
		rc = random_token_id(&id);
		if (rc < 0)
			break;
		char id_text[24];
		int id_len = snprintf(id_text, sizeof(id_text), "%lld", (long long)id);
		queue_call call;
		call_init(&call, ctx, concert_id);
		call_str(&call, user_id, len);
		call_str(&call, id_text, (size_t)id_len);
		call_policy(&call, policy, now);
		redisReply *r;
		rc = run(ctx, &r, REDIS_FN_ENTER, &call);
		if (rc < 0)
			break;
		long long status = -1;
		rc = reply_status(r, "enter", &status);
		if (rc == 0 && status == 0)
			rc = entry_from_reply(out, concert_id, r, "enter");
		else if (rc == 0 && status != REDIS_REPLY_ID_TAKEN)
			rc = script_error(status);
		freeReplyObject(r);
		if (rc < 0 || status == 0)
			return rc;
		rc = 0;
	}
	return rc < 0 ? rc : concert_sys_error(CONCERT_EINTERNAL, "redis queue: no free token id");
}

/* A decimal integer field of an HMGET reply; -1 if missing or not one. */
static int field_int(const redisReply *e, long long *out)
{
	if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20)
		return -1;
	char text[24], *end;
	memcpy(text, e->str, e->len);
	text[e->len] = '\0';
	errno = 0;
	*out = strtoll(text, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -1;
}

/* A token record, "state|seq|issued|expires|ended|user" (scripts.c). */
static int parse_record(const redisReply *e, concert_queue_entry *out, long long *seq)
{
	char text[5 * 21 + CONCERT_USER_ID_MAX + 1], *p = text;
	if (e->type != REDIS_REPLY_STRING || e->len >= sizeof(text))
		return -1;
	memcpy(text, e->str, e->len);
	text[e->len] = '\0';
	long long v[5];
	for (int i = 0; i < 5; i++) {
		errno = 0;
		v[i] = strtoll(p, &p, 10);
		if (errno || *p++ != '|')
			return -1;
	}
	size_t user_len = (size_t)(text + e->len - p);
	if (v[0] < CONCERT_QUEUE_WAITING || v[0] > CONCERT_QUEUE_DONE || user_len == 0 ||
	    user_len > CONCERT_USER_ID_MAX)
		return -1;
	out->state = (int32_t)v[0];
	*seq = v[1];
	out->issued_at = v[2];
	out->expires_at = v[3];
	memcpy(out->user_id, p, user_len);
	out->user_id[user_len] = '\0';
	return 0;
}

/*
 * A status without touch, answered from one HMGET of the tokens hash when
 * the status function would write nothing: the counters say the policy is
 * the one seen, nothing is due to expire, no one can be admitted (running
 * >= max_active) and no token left from behind the head (gone = 0), and the
 * token is not past its deadline. The answer is then the function's, with
 * the position computed as it does (scripts.c). 1: answered; 0: run the
 * function (it also answers a missing token); or an error.
 */
static int status_read(redis_client *client, concert_queue_entry *out, int64_t concert_id,
		       int64_t token_id, const concert_queue_policy *p, concert_time now)
{
	enum { ADMITTED, RETENTION, EXPIRE_AT, RUNNING, HEAD, GONE, RECORD, FIELDS };
	char key[KEY_MAX], id_text[24];
	const char *argv[2 + FIELDS] = { "HMGET", key, "admitted", "retention", "expire_at",
		"running", "head", "gone", id_text };
	size_t len[2 + FIELDS];
	len[1] = concert_key(key, client, concert_id, KEY_TOKENS);
	len[2 + RECORD] = (size_t)snprintf(id_text, sizeof(id_text), "%lld", (long long)token_id);
	for (int i = 0; i < 2 + RECORD; i++)
		if (i != 1)
			len[i] = strlen(argv[i]);
	redisReply *r;
	int rc = redis_client_command(client, &r, 2 + FIELDS, argv, len);
	if (rc < 0)
		return rc;
	long long v[RECORD], seq = 0;
	int fast = r->type == REDIS_REPLY_ARRAY && r->elements == FIELDS;
	for (int i = 0; fast && i < RECORD; i++) {
		/* Counters never written yet are 0, as the function reads them. */
		int unset = r->element[i]->type == REDIS_REPLY_NIL && (i == ADMITTED || i == GONE);
		v[i] = 0;
		fast = unset || field_int(r->element[i], &v[i]) == 0;
	}
	fast = fast && parse_record(r->element[RECORD], out, &seq) == 0 &&
	       v[RETENTION] == (long long)p->wait_idle_ttl + p->active_ttl && now < v[EXPIRE_AT] &&
	       v[RUNNING] >= p->max_active && v[GONE] == 0 && v[ADMITTED] >= 0 &&
	       !((out->state == CONCERT_QUEUE_WAITING || out->state == CONCERT_QUEUE_ACTIVE) &&
		 out->expires_at <= now);
	freeReplyObject(r);
	if (!fast)
		return 0;
	out->token_id = token_id;
	out->concert_id = concert_id;
	out->created = 0;
	out->position = out->state == CONCERT_QUEUE_WAITING ? seq - v[HEAD] + 1 : 0;
	out->admitted_total = (uint64_t)v[ADMITTED];
	return 1;
}

/*
 * Where the status function has work on most calls (a busy queue where some
 * deadline is always due), the HMGET before it is a wasted round trip: a
 * thread whose last two reads fell through to the function calls it
 * directly for its next STATUS_READ_BACKOFF statuses, then tries again.
 */
#define STATUS_READ_BACKOFF 8
static _Thread_local struct {
	unsigned misses, skip;
} status_reads;

static int queue_status(void *ctx, concert_queue_entry *out, int64_t concert_id,
			int64_t token_id, int touch, const concert_queue_policy *policy,
			concert_time now)
{
	if (!out)
		return concert_sys_error(CONCERT_EINVAL, "status needs out");
	int rc = check_policy(policy);
	if (rc < 0)
		return rc;
	if (!touch && status_reads.skip > 0) {
		status_reads.skip--;
	} else if (!touch) {
		rc = status_read(ctx, out, concert_id, token_id, policy, now);
		if (rc != 0) {
			status_reads.misses = 0;
			return rc < 0 ? rc : 0;
		}
		if (++status_reads.misses == 2) {
			status_reads.misses = 0;
			status_reads.skip = STATUS_READ_BACKOFF;
		}
	}
	queue_call call;
	call_init(&call, ctx, concert_id);
	call_int(&call, token_id);
	call_str(&call, touch ? "1" : "0", 1);
	call_policy(&call, policy, now);
	redisReply *r;
	rc = run(ctx, &r, REDIS_FN_STATUS, &call);
	if (rc < 0)
		return rc;
	long long status = 0;
	rc = reply_status(r, "status", &status);
	if (rc == 0)
		rc = status == 0 ? entry_from_reply(out, concert_id, r, "status") : script_error(status);
	freeReplyObject(r);
	return rc;
}

static int end_token(void *ctx, int64_t concert_id, int64_t token_id, concert_time now,
		     const char *kind)
{
	queue_call call;
	call_init(&call, ctx, concert_id);
	call_int(&call, token_id);
	call_int(&call, now);
	call_str(&call, kind, strlen(kind));
	redisReply *r;
	int rc = run(ctx, &r, REDIS_FN_END, &call);
	if (rc < 0)
		return rc;
	long long status = 0;
	rc = reply_status(r, kind, &status);
	if (rc == 0 && status != 0)
		rc = script_error(status);
	freeReplyObject(r);
	return rc;
}

static int queue_leave(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	return end_token(ctx, concert_id, token_id, now, "leave");
}

static int queue_complete(void *ctx, int64_t concert_id, int64_t token_id, concert_time now)
{
	return end_token(ctx, concert_id, token_id, now, "done");
}

static int queue_admit(void *ctx, uint32_t *out_admitted, int64_t concert_id,
		       const concert_queue_policy *policy, concert_time now)
{
	if (out_admitted)
		*out_admitted = 0;
	int rc = check_policy(policy);
	if (rc < 0)
		return rc;
	queue_call call;
	call_init(&call, ctx, concert_id);
	call_policy(&call, policy, now);
	redisReply *r;
	rc = run(ctx, &r, REDIS_FN_ADMIT, &call);
	if (rc < 0)
		return rc;
	long long status = 0, admitted = 0;
	rc = reply_status(r, "admit", &status);
	if (rc == 0 && (status != 0 || r->elements != 2 || integer_at(r, 1, &admitted) < 0 ||
			admitted < 0))
		rc = bad_reply("admit");
	freeReplyObject(r);
	if (rc == 0 && out_admitted)
		*out_admitted = (uint32_t)admitted;
	return rc;
}

/* Expires and forgets what is due in one concert, batch after batch. */
static int sweep_concert(redis_client *client, int64_t concert_id, concert_time now,
			 uint64_t *swept)
{
	long long more = 1;
	for (int batch = 0; more && batch < 10000; batch++) {
		queue_call call;
		call_init(&call, client, concert_id);
		call_int(&call, now);
		redisReply *r;
		int rc = run(client, &r, REDIS_FN_SWEEP, &call);
		if (rc < 0)
			return rc;
		long long status = 0, n = 0;
		rc = reply_status(r, "sweep", &status);
		if (rc == 0 && (status != 0 || r->elements != 3 || integer_at(r, 1, &n) < 0 ||
				integer_at(r, 2, &more) < 0))
			rc = bad_reply("sweep");
		freeReplyObject(r);
		if (rc < 0)
			return rc;
		*swept += (uint64_t)n;
	}
	return 0;
}

/* The concert id of "<prefix>concert:{<id>}:tokens", or 0. */
static int64_t concert_of_key(const redis_client *client, const redisReply *key)
{
	size_t plen = strlen(redis_client_prefix(client)) + sizeof("concert:{") - 1;
	if (key->type != REDIS_REPLY_STRING || key->len <= plen)
		return 0;
	int64_t id = 0;
	size_t i = plen;
	for (; i < key->len && key->str[i] >= '0' && key->str[i] <= '9' && id < INT64_MAX / 10; i++)
		id = id * 10 + (key->str[i] - '0');
	return i < key->len && key->str[i] == '}' ? id : 0;
}

/*
 * Finds the concerts by SCAN over their tokens keys (an O(keys) walk, fine
 * for an occasional maintenance call; on Redis Cluster, run it per node).
 */
static int queue_sweep(void *ctx, concert_time now, uint64_t *out_swept)
{
	redis_client *client = ctx;
	uint64_t swept = 0;
	char pattern[KEY_MAX], cursor[32] = "0";
	snprintf(pattern, sizeof(pattern), "%sconcert:{*}:tokens", redis_client_prefix(client));
	int rc = 0;
	do {
		const char *argv[6] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
		redisReply *r;
		rc = redis_client_command(client, &r, 6, argv, NULL);
		if (rc < 0)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			rc = bad_reply("SCAN");
			break;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		for (size_t i = 0; rc == 0 && i < r->element[1]->elements; i++) {
			int64_t concert_id = concert_of_key(client, r->element[1]->element[i]);
			if (concert_id > 0)
				rc = sweep_concert(client, concert_id, now, &swept);
		}
		freeReplyObject(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	if (out_swept)
		*out_swept = swept;
	return rc;
}

static int queue_counts(void *ctx, int64_t concert_id, concert_time now, uint64_t *out_waiting,
			uint64_t *out_active)
{
	*out_waiting = *out_active = 0;
	queue_call call;
	call_init(&call, ctx, concert_id);
	call_int(&call, now);
	redisReply *r;
	int rc = run(ctx, &r, REDIS_FN_COUNTS, &call);
	if (rc < 0)
		return rc;
	long long status = 0, waiting = 0, active = 0;
	rc = reply_status(r, "counts", &status);
	if (rc == 0 && (status != 0 || r->elements != 3 || integer_at(r, 1, &waiting) < 0 ||
			integer_at(r, 2, &active) < 0 || waiting < 0 || active < 0))
		rc = bad_reply("counts");
	freeReplyObject(r);
	if (rc == 0) {
		*out_waiting = (uint64_t)waiting;
		*out_active = (uint64_t)active;
	}
	return rc;
}

static int queue_health(void *ctx)
{
	return redis_client_ping(ctx);
}

static int queue_open(void **out_ctx, const char *uri, const concert_backend_env *env)
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

static void queue_close(void *ctx)
{
	redis_client_close(ctx);
}

const concert_queue_backend concert_redis_queue_backend = {
	.version = CONCERT_QUEUE_BACKEND_VERSION,
	.scheme = "redis",
	.open = queue_open,
	.close = queue_close,
	.health = queue_health,
	.enter = queue_enter,
	.status = queue_status,
	.leave = queue_leave,
	.complete = queue_complete,
	.admit = queue_admit,
	.sweep = queue_sweep,
	.counts = queue_counts,
};

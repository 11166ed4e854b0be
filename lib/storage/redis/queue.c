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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/futex.h"
#include "storage/redis/redis.h"

_Static_assert(CONCERT_ETOKEN == -7 && CONCERT_EEXPIRED == -6 && CONCERT_ESTATE == -11,
	       "the error codes in scripts.c must match errors.h");

#define KEY_MAX (REDIS_PREFIX_MAX + 64)
#define QUEUE_KEYS 8
#define QUEUE_NUMBERS_MAX 8
/* Enters sent in one call at most (see enter_in_line). */
#define ENTER_BATCH_MAX 32
/* Arguments after the keys at most: those of an enter of a full batch. */
#define QUEUE_ARGS_MAX (5 + 2 * ENTER_BATCH_MAX)
_Static_assert(3 + QUEUE_KEYS + QUEUE_ARGS_MAX <= REDIS_CALL_ARGS_MAX,
	       "a full batch fits one function call");
#define ENTER_ATTEMPTS 8

/* One function call: the concert's keys, then the arguments. */
typedef struct queue_call {
	char keys[QUEUE_KEYS][KEY_MAX];
	char numbers[QUEUE_NUMBERS_MAX][24];
	const char *argv[QUEUE_KEYS + QUEUE_ARGS_MAX];
	size_t len[QUEUE_KEYS + QUEUE_ARGS_MAX];
	int argc;
	int numbers_used;
} queue_call;

enum { KEY_TOKENS = 4 }; /* keys[4] of every function (scripts.c) */

typedef struct enter_req enter_req;

/* The queue slot's context: the client, and the line of enters (see enter_in_line). */
typedef struct redis_queue {
	redis_client *client;
	pthread_mutex_t lock;
	enter_req *head, *tail;     /* enters waiting to be sent, in arrival order */
	int in_flight;              /* enter calls out */
} redis_queue;

static redis_client *client_of(void *ctx)
{
	return ((redis_queue *)ctx)->client;
}

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

/*
 * Enters are combined. Concurrent enters through one context line up; the
 * caller at the head of the line, while fewer than ENTER_IN_FLIGHT calls
 * are out, takes every enter in line for the same concert and policy (up
 * to ENTER_BATCH_MAX, in line order) and sends them as one call of the
 * enter function, which enters them in that order and answers each; then
 * it hands each caller its answer. An enter costs Redis mostly per call
 * (its I/O, the function's setup, a few commands), not per user: at 50
 * callers this took enters from ~60,000/s to ~90,000/s on a 2-core box
 * (docs/redis.md). A lone caller sends its enter alone, at once.
 *
 * ENTER_IN_FLIGHT 3 measured best at 8 and 50 callers: with 2, Redis idles
 * while the next sender wakes up; with more, the batches get smaller.
 */
#define ENTER_IN_FLIGHT 3

struct enter_req {
	enter_req *next;
	const char *user;
	size_t user_len;
	int64_t concert_id;
	const concert_queue_policy *policy;
	concert_time now;
	concert_queue_entry *out;
	int64_t id_value;           /* the new token id offered */
	char id[24];                /* the same, decimal */
	size_t id_len;
	int rc;                     /* 0: *out is the entry; REDIS_REPLY_ID_TAKEN; or CONCERT_E* */
	char why[256];              /* the message with an error code */
	_Atomic uint32_t turn;      /* its caller sleeps on it while it is IN_LINE */
};

/* enter_req.turn: set by whoever sends it (DONE) or by the last to send (LEAD). */
enum { IN_LINE, LEAD, DONE };

static int same_batch(const enter_req *a, const enter_req *b)
{
	return a->concert_id == b->concert_id && a->policy->max_active == b->policy->max_active &&
	       a->policy->admit_per_second == b->policy->admit_per_second &&
	       a->policy->wait_idle_ttl == b->policy->wait_idle_ttl &&
	       a->policy->active_ttl == b->policy->active_ttl;
}

/* Unlinks the head of the line and the enters that can go with it (q->lock held). */
static int take_batch(redis_queue *q, enter_req **batch)
{
	int n = 0;
	enter_req **link = &q->head, *kept = NULL;
	while (*link && n < ENTER_BATCH_MAX) {
		enter_req *r = *link;
		if (n == 0 || same_batch(batch[0], r)) {
			batch[n++] = r;
			*link = r->next;
		} else {
			kept = r;
			link = &r->next;
		}
	}
	if (!*link)
		q->tail = kept;
	return n;
}

/* One request's answer: an entry, ID_TAKEN, or an error (its message kept for its caller). */
static void answer(enter_req *req, const redisReply *r)
{
	long long status = -1;
	int rc = reply_status(r, "enter", &status);
	if (rc == 0 && status == 0)
		rc = entry_from_reply(req->out, req->concert_id, r, "enter");
	else if (rc == 0 && status == REDIS_REPLY_ID_TAKEN)
		rc = REDIS_REPLY_ID_TAKEN;
	else if (rc == 0)
		rc = script_error(status);
	req->rc = rc;
	if (rc < 0)
		concert_sys_strlcpy(req->why, concert_error_last()->message, sizeof(req->why));
}

/* {position of the first, issued, expires, admitted}: each a new WAITING token, in order. */
static int answer_lean(enter_req **batch, int n, const redisReply *r)
{
	long long v[4];
	for (int i = 0; i < 4; i++)
		if (integer_at(r, (size_t)i, &v[i]) < 0)
			return bad_reply("enter");
	if (v[0] < 1 || v[3] < 0)
		return bad_reply("enter");
	for (int i = 0; i < n; i++) {
		enter_req *req = batch[i];
		concert_queue_entry *e = req->out;
		e->token_id = req->id_value;
		e->concert_id = req->concert_id;
		e->state = CONCERT_QUEUE_WAITING;
		e->created = 1;
		e->position = v[0] + i;
		e->issued_at = v[1];
		e->expires_at = v[2];
		e->admitted_total = (uint64_t)v[3];
		memcpy(e->user_id, req->user, req->user_len);
		e->user_id[req->user_len] = '\0';
		req->rc = 0;
	}
	return 0;
}

/* One reply per enter. */
static int answer_each(enter_req **batch, int n, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n)
		return bad_reply("enter");
	for (int i = 0; i < n; i++)
		answer(batch[i], r->element[i]);
	return 0;
}

/* One call of the enter function for the batch (without q->lock); answers each. */
static void send_batch(redis_queue *q, enter_req **batch, int n)
{
	const concert_queue_policy *p = batch[0]->policy;
	concert_time now = batch[0]->now;
	for (int i = 1; i < n; i++)
		if (batch[i]->now > now)
			now = batch[i]->now;
	queue_call call;
	call_init(&call, q->client, batch[0]->concert_id);
	call_policy(&call, p, now);
	for (int i = 0; i < n; i++) {
		call_str(&call, batch[i]->user, batch[i]->user_len);
		call_str(&call, batch[i]->id, batch[i]->id_len);
	}
	redisReply *r;
	int rc = run(q->client, &r, REDIS_FN_ENTER, &call);
	if (rc == 0) {
		int lean = r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
			   r->element[0]->type == REDIS_REPLY_INTEGER;
		rc = lean ? answer_lean(batch, n, r) : answer_each(batch, n, r);
		freeReplyObject(r);
	}
	for (int i = 0; rc < 0 && i < n; i++) {
		batch[i]->rc = rc;
		concert_sys_strlcpy(batch[i]->why, concert_error_last()->message, sizeof(batch[i]->why));
	}
}

/*
 * The head of the line, if it may send now (q->lock held): told to lead;
 * its caller is woken (concert_futex_wake_all) after q->lock is let go.
 */
static enter_req *next_leader(redis_queue *q)
{
	if (!q->head || q->in_flight >= ENTER_IN_FLIGHT)
		return NULL;
	atomic_store_explicit(&q->head->turn, LEAD, memory_order_relaxed);
	return q->head;
}

/*
 * Gets `req` entered, by this thread or by another's call; sets req->rc.
 * Only the head of the line sends, and it stays the head until it does, so
 * LEAD is given to one caller at a time. A caller woken with DONE returns
 * without touching q->lock again: its answer was written before the DONE.
 */
static void enter_in_line(redis_queue *q, enter_req *req)
{
	req->next = NULL;
	atomic_store_explicit(&req->turn, IN_LINE, memory_order_relaxed);
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
	if (q->head != req || q->in_flight >= ENTER_IN_FLIGHT) {
		pthread_mutex_unlock(&q->lock);
		uint32_t turn;
		while ((turn = atomic_load_explicit(&req->turn, memory_order_acquire)) == IN_LINE)
			concert_futex_wait(&req->turn, IN_LINE);
		if (turn == DONE)
			return;
		pthread_mutex_lock(&q->lock);
	}
	enter_req *batch[ENTER_BATCH_MAX];
	int n = take_batch(q, batch);
	q->in_flight++;
	enter_req *leader = next_leader(q);
	pthread_mutex_unlock(&q->lock);
	if (leader)
		concert_futex_wake_all(&leader->turn);
	send_batch(q, batch, n);
	pthread_mutex_lock(&q->lock);
	q->in_flight--;
	leader = next_leader(q);
	pthread_mutex_unlock(&q->lock);
	/* The next call first: Redis is kept busy sooner. */
	if (leader)
		concert_futex_wake_all(&leader->turn);
	for (int i = 1; i < n; i++) {
		_Atomic uint32_t *turn = &batch[i]->turn;
		atomic_store_explicit(turn, DONE, memory_order_release);
		concert_futex_wake_all(turn);
	}
}

static int queue_enter(void *ctx, concert_queue_entry *out, const char *user_id,
		       int64_t concert_id, const concert_queue_policy *policy, concert_time now)
{
	size_t len = user_id ? concert_strnlen(user_id, CONCERT_USER_ID_MAX) : 0;
	if (!out || len == 0 || len > CONCERT_USER_ID_MAX)
		return concert_sys_error(CONCERT_EINVAL, "enter needs out and a user id");
	int rc = check_policy(policy);
	if (rc < 0)
		return rc;
	enter_req req = { .user = user_id, .user_len = len, .concert_id = concert_id,
			  .policy = policy, .now = now, .out = out };
	for (int attempt = 0; attempt < ENTER_ATTEMPTS; attempt++) {
		rc = random_token_id(&req.id_value);
		if (rc < 0)
			return rc;
		req.id_len = (size_t)snprintf(req.id, sizeof(req.id), "%lld", (long long)req.id_value);
		enter_in_line(ctx, &req);
		if (req.rc < 0)
			return concert_sys_error(req.rc, req.why);
		if (req.rc == 0)
			return 0;
	}
	return concert_sys_error(CONCERT_EINTERNAL, "redis queue: no free token id");
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
		rc = status_read(client_of(ctx), out, concert_id, token_id, policy, now);
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
	call_init(&call, client_of(ctx), concert_id);
	call_int(&call, token_id);
	call_str(&call, touch ? "1" : "0", 1);
	call_policy(&call, policy, now);
	redisReply *r;
	rc = run(client_of(ctx), &r, REDIS_FN_STATUS, &call);
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
	call_init(&call, client_of(ctx), concert_id);
	call_int(&call, token_id);
	call_int(&call, now);
	call_str(&call, kind, strlen(kind));
	redisReply *r;
	int rc = run(client_of(ctx), &r, REDIS_FN_END, &call);
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
	call_init(&call, client_of(ctx), concert_id);
	call_policy(&call, policy, now);
	redisReply *r;
	rc = run(client_of(ctx), &r, REDIS_FN_ADMIT, &call);
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
	redis_client *client = client_of(ctx);
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
	call_init(&call, client_of(ctx), concert_id);
	call_int(&call, now);
	redisReply *r;
	int rc = run(client_of(ctx), &r, REDIS_FN_COUNTS, &call);
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
	return redis_client_ping(client_of(ctx));
}

static int queue_open(void **out_ctx, const char *uri, const concert_backend_env *env)
{
	if (!out_ctx || !env || !env->clock || !env->log)
		return concert_sys_error(CONCERT_EINVAL, "open needs out_ctx and an environment");
	*out_ctx = NULL;
	redis_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return concert_sys_error(CONCERT_ENOMEM, "cannot allocate a redis queue");
	int rc = redis_client_open(&q->client, uri, env);
	if (rc < 0) {
		free(q);
		return rc;
	}
	pthread_mutex_init(&q->lock, NULL);
	*out_ctx = q;
	return 0;
}

static void queue_close(void *ctx)
{
	redis_queue *q = ctx;
	redis_client_close(q->client);
	pthread_mutex_destroy(&q->lock);
	free(q);
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

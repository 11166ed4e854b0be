/*
 * The Lua scripts of the Redis backend. Every step that touches more than
 * one key, or reads and then writes, is one of these: Redis runs a script
 * atomically, so each queue and lock primitive is one round trip and needs
 * no client-side locking. docs/redis.md describes the keys.
 *
 * Numbers: Redis Lua numbers are doubles. Times (ms since the epoch),
 * sequence numbers and counters stay far below 2^53, so they are exact;
 * token ids (below 2^53 too) are kept as the strings the client sent.
 * int() formats a number without an exponent for keys and records.
 */
#include "storage/redis/redis.h"

/*
 * Every queue script works on the keys of one concert, all with the hash
 * tag {concertId} so they live in one Cluster slot:
 *   KEYS[1] meta     HASH  seq, admitted, retention, bucket_rate, bucket, bucket_at
 *   KEYS[2] waiting  ZSET  token id -> seq (FIFO order; ZRANK is the position)
 *   KEYS[3] idle     ZSET  WAITING token id -> idle deadline
 *   KEYS[4] active   ZSET  ACTIVE token id -> active_until
 *   KEYS[5] tokens   HASH  token id -> "state|seq|issued|expires|ended|user"
 *   KEYS[6] users    HASH  user id -> live token id
 *   KEYS[7] ended    ZSET  EXPIRED/DONE token id -> when it ended
 * Invariant: a token is live (WAITING/ACTIVE) iff users maps its user to it.
 *
 * The meta hash is read once at the start of a script (HMGET) and written
 * once at its end (set_meta/done), so a status call that changes nothing
 * writes nothing. Expiry works at most BATCH tokens of each kind per call,
 * so no call blocks Redis for long; the token asked about is always judged
 * by its own deadline, and admission never admits an expired token, so a
 * backlog only delays clean-up (sweep works it off).
 */
#define QUEUE_PRELUDE                                                                          \
	"local META, WAITING_Z, IDLE_Z, ACTIVE_Z, TOKENS, USERS, ENDED_Z =\n"                  \
	"  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]\n"                    \
	"local WAITING, ACTIVE, EXPIRED, DONE = 1, 2, 3, 4\n"                                  \
	"local BATCH = 1000\n"                                                                 \
	"local function int(n) return string.format('%d', n) end\n"                           \
	"local meta = redis.call('HMGET', META, 'seq', 'admitted', 'retention',\n"             \
	"  'bucket_rate', 'bucket', 'bucket_at')\n"                                            \
	"local seq, admitted_total = tonumber(meta[1]) or 0, tonumber(meta[2]) or 0\n"        \
	"local retention = tonumber(meta[3])\n"                                                \
	"local meta_out = {}\n"                                                                \
	"local function set_meta(field, value)\n"                                              \
	"  meta_out[#meta_out + 1] = field\n"                                                  \
	"  meta_out[#meta_out + 1] = int(value)\n"                                             \
	"end\n"                                                                                \
	"local function done(result)\n"                                                        \
	"  if #meta_out > 0 then redis.call('HSET', META, unpack(meta_out)) end\n"             \
	"  return result\n"                                                                    \
	"end\n"                                                                                \
	"local function load(id)\n"                                                            \
	"  local v = redis.call('HGET', TOKENS, id)\n"                                         \
	"  if not v then return nil end\n"                                                     \
	"  local s, tseq, issued, expires, ended, user =\n"                                    \
	"    string.match(v, '^(%d)|(%d+)|(%-?%d+)|(%-?%d+)|(%-?%d+)|(.*)$')\n"                \
	"  if not s then error('corrupt queue token record ' .. id) end\n"                     \
	"  return { id = id, state = tonumber(s), seq = tonumber(tseq),\n"                     \
	"    issued = tonumber(issued), expires = tonumber(expires),\n"                        \
	"    ended = tonumber(ended), user = user }\n"                                         \
	"end\n"                                                                                \
	"local function record(t)\n"                                                           \
	"  return t.state .. '|' .. int(t.seq) .. '|' .. int(t.issued) .. '|' ..\n"            \
	"    int(t.expires) .. '|' .. int(t.ended) .. '|' .. t.user\n"                         \
	"end\n"                                                                                \
	"local function save(t) redis.call('HSET', TOKENS, t.id, record(t)) end\n"            \
	"local function live(t) return t.state == WAITING or t.state == ACTIVE end\n"          \
	"local function finish(t, state, now)\n"                                               \
	"  if t.state == WAITING then\n"                                                       \
	"    redis.call('ZREM', WAITING_Z, t.id)\n"                                            \
	"    redis.call('ZREM', IDLE_Z, t.id)\n"                                               \
	"  else\n"                                                                             \
	"    redis.call('ZREM', ACTIVE_Z, t.id)\n"                                             \
	"  end\n"                                                                              \
	"  redis.call('HDEL', USERS, t.user)\n"                                                \
	"  t.state = state\n"                                                                  \
	"  t.ended = now\n"                                                                    \
	"  save(t)\n"                                                                          \
	"  redis.call('ZADD', ENDED_Z, int(now), t.id)\n"                                      \
	"end\n"                                                                                \
	"local function expire_if_due(t, now)\n"                                               \
	"  if live(t) and t.expires <= now then finish(t, EXPIRED, now) end\n"                 \
	"end\n"                                                                                \
	"local active_backlog = true\n"                                                        \
	"local function expire_z(z, now)\n"                                                    \
	"  local ids = redis.call('ZRANGEBYSCORE', z, '-inf', int(now), 'LIMIT', 0, BATCH)\n"  \
	"  for _, id in ipairs(ids) do\n"                                                      \
	"    local t = load(id)\n"                                                             \
	"    if t and live(t) then\n"                                                          \
	"      finish(t, EXPIRED, now)\n"                                                      \
	"    else\n"                                                                           \
	"      redis.call('ZREM', z, id)\n"                                                    \
	"      if z == IDLE_Z then redis.call('ZREM', WAITING_Z, id) end\n"                    \
	"    end\n"                                                                            \
	"  end\n"                                                                              \
	"  return #ids\n"                                                                      \
	"end\n"                                                                                \
	/* Ends what the clock has ended; with `purge`, forgets tokens that ended   \
	 * more than `retention` (active_ttl + wait_idle_ttl) ago. */                         \
	"local function expire_due(now, purge)\n"                                              \
	"  local idle, active = expire_z(IDLE_Z, now), expire_z(ACTIVE_Z, now)\n"              \
	"  active_backlog = active == BATCH\n"                                                 \
	"  local n, more = idle + active, idle == BATCH or active == BATCH\n"                  \
	"  if purge and retention then\n"                                                      \
	"    local ids = redis.call('ZRANGEBYSCORE', ENDED_Z, '-inf', int(now - retention),\n" \
	"      'LIMIT', 0, BATCH)\n"                                                           \
	"    if #ids > 0 then\n"                                                               \
	"      redis.call('HDEL', TOKENS, unpack(ids))\n"                                      \
	"      redis.call('ZREM', ENDED_Z, unpack(ids))\n"                                     \
	"    end\n"                                                                            \
	"    n = n + #ids\n"                                                                   \
	"    more = more or #ids == BATCH\n"                                                   \
	"  end\n"                                                                              \
	"  return n, more\n"                                                                   \
	"end\n"                                                                                \
	/* The retention of the last policy seen, for calls that get no policy. */            \
	"local function policy_seen(idle_ttl, active_ttl)\n"                                   \
	"  if retention ~= idle_ttl + active_ttl then\n"                                       \
	"    retention = idle_ttl + active_ttl\n"                                              \
	"    set_meta('retention', retention)\n"                                               \
	"  end\n"                                                                              \
	"end\n"                                                                                \
	"local function touch(t, idle_ttl, now)\n"                                             \
	"  if t.state ~= WAITING then return end\n"                                            \
	"  t.expires = now + idle_ttl\n"                                                       \
	"  save(t)\n"                                                                          \
	"  redis.call('ZADD', IDLE_Z, int(t.expires), t.id)\n"                                 \
	"end\n"                                                                                \
	/* admit_per_second: a bucket of thousandths refilled at `rate` per second,      \
	 * holding one second's worth; full at first and whenever the rate changes. */        \
	"local function bucket_level(rate, now)\n"                                             \
	"  local full = rate * 1000\n"                                                         \
	"  if tonumber(meta[4]) ~= rate then return full, now end\n"                           \
	"  local level, at = tonumber(meta[5]), tonumber(meta[6])\n"                           \
	"  if now > at then\n"                                                                 \
	"    level = math.min(level + math.min(now - at, 1000) * rate, full)\n"                \
	"    at = now\n"                                                                       \
	"  end\n"                                                                              \
	"  return level, at\n"                                                                 \
	"end\n"                                                                                \
	/* FIFO admission while fewer than max_active are ACTIVE (and the bucket     \
	 * allows); ACTIVE tokens past their deadline do not count. Returns how      \
	 * many, and the admitted tokens by id. */                                            \
	"local function admit(now, max_active, rate, active_ttl)\n"                            \
	"  local changed = {}\n"                                                               \
	"  local running\n"                                                                    \
	"  if active_backlog then\n"                                                           \
	"    running = redis.call('ZCOUNT', ACTIVE_Z, '(' .. int(now), '+inf')\n"              \
	"  else\n"                                                                             \
	"    running = redis.call('ZCARD', ACTIVE_Z)\n"                                        \
	"  end\n"                                                                              \
	"  if running >= max_active then return 0, changed end\n"                             \
	"  local room = math.min(max_active - running, redis.call('ZCARD', WAITING_Z))\n"     \
	"  if room <= 0 then return 0, changed end\n"                                          \
	"  local level, at\n"                                                                  \
	"  if rate > 0 then\n"                                                                 \
	"    level, at = bucket_level(rate, now)\n"                                            \
	"    room = math.min(room, math.floor(level / 1000))\n"                                \
	"  end\n"                                                                              \
	"  local admitted = 0\n"                                                               \
	"  local active_until = now + active_ttl\n"                                            \
	"  while admitted < room do\n"                                                         \
	"    local head = redis.call('ZRANGE', WAITING_Z, 0, room - admitted - 1)\n"           \
	"    if #head == 0 then break end\n"                                                   \
	"    for _, id in ipairs(head) do\n"                                                   \
	"      local t = load(id)\n"                                                           \
	"      if t and t.state == WAITING and t.expires <= now then\n"                        \
	"        finish(t, EXPIRED, now)\n"                                                    \
	"      else\n"                                                                         \
	"        redis.call('ZREM', WAITING_Z, id)\n"                                          \
	"        redis.call('ZREM', IDLE_Z, id)\n"                                             \
	"        if t and t.state == WAITING then\n"                                           \
	"          redis.call('ZADD', ACTIVE_Z, int(active_until), id)\n"                      \
	"          t.state = ACTIVE\n"                                                         \
	"          t.expires = active_until\n"                                                 \
	"          save(t)\n"                                                                  \
	"          changed[id] = t\n"                                                          \
	"          admitted = admitted + 1\n"                                                  \
	"        end\n"                                                                        \
	"      end\n"                                                                          \
	"    end\n"                                                                            \
	"  end\n"                                                                              \
	"  if admitted > 0 then\n"                                                             \
	"    admitted_total = admitted_total + admitted\n"                                     \
	"    set_meta('admitted', admitted_total)\n"                                           \
	"  end\n"                                                                              \
	"  if rate > 0 then\n"                                                                 \
	"    set_meta('bucket_rate', rate)\n"                                                  \
	"    set_meta('bucket', level - admitted * 1000)\n"                                    \
	"    set_meta('bucket_at', at)\n"                                                      \
	"  end\n"                                                                              \
	"  return admitted, changed\n"                                                         \
	"end\n"                                                                                \
	/* {0, id, state, created, position, issued, expires, admitted_total, user} */        \
	"local function reply(t, created)\n"                                                   \
	"  local position = 0\n"                                                               \
	"  if t.state == WAITING then\n"                                                       \
	"    local rank = redis.call('ZRANK', WAITING_Z, t.id)\n"                              \
	"    if rank then position = rank + 1 end\n"                                           \
	"  end\n"                                                                              \
	"  return done({ 0, t.id, t.state, created, position, t.issued, t.expires,\n"          \
	"    admitted_total, t.user })\n"                                                      \
	"end\n"

/* The error codes scripts return (checked against errors.h in queue.c). */
#define QUEUE_CODES "local ETOKEN, EEXPIRED, ESTATE, ID_TAKEN = -7, -6, -11, 1\n"

/*
 * ARGV: user, new token id, now, max_active, admit_per_second, wait_idle_ttl,
 * active_ttl. The user's live token (touched), or a new one at the back when
 * the id is free (ID_TAKEN otherwise: the client draws another).
 */
static const char enter_script[] = QUEUE_PRELUDE QUEUE_CODES
	"local user, new_id = ARGV[1], ARGV[2]\n"
	"local now, max_active, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local idle_ttl, active_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"policy_seen(idle_ttl, active_ttl)\n"
	"expire_due(now, true)\n"
	"local created, t = 0, nil\n"
	"local id = redis.call('HGET', USERS, user)\n"
	"if id then\n"
	"  t = load(id)\n"
	"  if t then expire_if_due(t, now) end\n"
	"end\n"
	"if t and live(t) then\n"
	"  touch(t, idle_ttl, now)\n"
	"else\n"
	"  t = { id = new_id, state = WAITING, seq = seq + 1, issued = now,\n"
	"    expires = now + idle_ttl, ended = 0, user = user }\n"
	"  if redis.call('HSETNX', TOKENS, new_id, record(t)) == 0 then return done({ ID_TAKEN }) end\n"
	"  seq = seq + 1\n"
	"  set_meta('seq', seq)\n"
	"  redis.call('ZADD', WAITING_Z, seq, new_id)\n"
	"  redis.call('ZADD', IDLE_Z, int(t.expires), new_id)\n"
	"  redis.call('HSET', USERS, user, new_id)\n"
	"  created = 1\n"
	"end\n"
	"local _, changed = admit(now, max_active, rate, active_ttl)\n"
	"return reply(changed[t.id] or t, created)\n";

/* ARGV: token id, touch (0/1), now, max_active, admit_per_second, wait_idle_ttl, active_ttl. */
static const char status_script[] = QUEUE_PRELUDE QUEUE_CODES
	"local id, touch_it = ARGV[1], ARGV[2] == '1'\n"
	"local now, max_active, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local idle_ttl, active_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"policy_seen(idle_ttl, active_ttl)\n"
	"expire_due(now, false)\n"
	"local t = load(id)\n"
	"if t then\n"
	"  expire_if_due(t, now)\n"
	"  if touch_it then touch(t, idle_ttl, now) end\n"
	"end\n"
	"local _, changed = admit(now, max_active, rate, active_ttl)\n"
	"if not t then return done({ ETOKEN }) end\n"
	"return reply(changed[id] or t, 0)\n";

/* ARGV: token id, now, 'leave' (-> EXPIRED) or 'done' (ACTIVE -> DONE). */
static const char end_script[] = QUEUE_PRELUDE QUEUE_CODES
	"local id, now, kind = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
	"expire_due(now, true)\n"
	"local t = load(id)\n"
	"if not t then return { ETOKEN } end\n"
	"expire_if_due(t, now)\n"
	"if kind == 'leave' then\n"
	"  if not live(t) then return { EEXPIRED } end\n"
	"  finish(t, EXPIRED, now)\n"
	"else\n"
	"  if t.state ~= ACTIVE then return { ESTATE } end\n"
	"  finish(t, DONE, now)\n"
	"end\n"
	"return { 0 }\n";

/* ARGV: now, max_active, admit_per_second, wait_idle_ttl, active_ttl -> {0, admitted}. */
static const char admit_script[] = QUEUE_PRELUDE
	"local now, max_active, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"local idle_ttl, active_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"policy_seen(idle_ttl, active_ttl)\n"
	"expire_due(now, true)\n"
	"local admitted = admit(now, max_active, rate, active_ttl)\n"
	"return done({ 0, admitted })\n";

/* ARGV: now -> {0, tokens expired or forgotten, 1 if more are due}. */
static const char sweep_script[] = QUEUE_PRELUDE
	"local n, more = expire_due(tonumber(ARGV[1]), true)\n"
	"return { 0, n, more and 1 or 0 }\n";

/*
 * ARGV: now -> {0, WAITING, ACTIVE}, what is live at `now` (read only; a
 * token past its deadline is not counted even before a call expires it).
 */
static const char counts_script[] =
	"local now = ARGV[1]\n"
	"local waiting = redis.call('ZCARD', KEYS[2]) - redis.call('ZCOUNT', KEYS[3], '-inf', now)\n"
	"local active = redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')\n"
	"return { 0, waiting, active }\n";

const redis_script redis_queue_scripts[REDIS_QUEUE_SCRIPT_COUNT] = {
	[REDIS_QUEUE_ENTER] = { "enter", enter_script },
	[REDIS_QUEUE_STATUS] = { "status", status_script },
	[REDIS_QUEUE_END] = { "end", end_script },
	[REDIS_QUEUE_ADMIT] = { "admit", admit_script },
	[REDIS_QUEUE_SWEEP] = { "sweep", sweep_script },
	[REDIS_QUEUE_COUNTS] = { "counts", counts_script },
};

/*
 * Seat locks: KEYS are the seats of one schedule, seat:{scheduleId}:<seatNo>,
 * one hash tag. All or none, with SET NX PX semantics: if any seat is locked
 * the reply lists their (1-based) KEYS indexes and nothing is set.
 * ARGV: value, ttl ms. (A single seat is a plain SET NX PX, no script.)
 */
static const char acquire_script[] =
	"local taken = {}\n"
	"for i, key in ipairs(KEYS) do\n"
	"  if redis.call('EXISTS', key) == 1 then taken[#taken + 1] = i end\n"
	"end\n"
	"if #taken == 0 then\n"
	"  for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end\n"
	"end\n"
	"return taken\n";

/* Compare-and-delete: unlocks the seats still locked with ARGV[1]. */
static const char release_script[] =
	"local n = 0\n"
	"for _, key in ipairs(KEYS) do\n"
	"  if redis.call('GET', key) == ARGV[1] then\n"
	"    redis.call('DEL', key)\n"
	"    n = n + 1\n"
	"  end\n"
	"end\n"
	"return n\n";

const redis_script redis_lock_scripts[REDIS_LOCK_SCRIPT_COUNT] = {
	[REDIS_LOCK_ACQUIRE] = { "acquire", acquire_script },
	[REDIS_LOCK_RELEASE] = { "release", release_script },
};

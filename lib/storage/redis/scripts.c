/*
 * The Lua of the Redis backend: one Redis Functions library (Redis 7.0+)
 * holding every queue and lock primitive. Every step that touches more than
 * one key, or reads and then writes, is one of these functions: Redis runs
 * a function atomically, so each primitive is one round trip (FCALL) and
 * needs no client-side locking. docs/redis.md describes the keys.
 *
 * Why a library and not EVALSHA scripts: a script is a fresh chunk on every
 * call, so each call re-created the ~25 helper closures below and paid
 * EVALSHA's own setup (KEYS/ARGV globals); a library defines them once, at
 * FUNCTION LOAD, and FCALL hands keys and arguments straight to the
 * function. Measured on Redis 7.0: ~1.5 us less Redis CPU per queue call.
 *
 * Numbers: Redis Lua numbers are doubles. Times (ms since the epoch),
 * sequence numbers and counters stay far below 2^53, so they are exact;
 * token ids (below 2^53 too) are kept as the strings the client sent.
 * int() formats a number without an exponent for records and range bounds;
 * a number passed to redis.call as an argument Redis formats exactly itself
 * (and faster), so scores and counters go as numbers.
 *
 * Only `redis.register_function` may run while the library loads (client.c
 * prepends the library's name and PREFIX, the prefix of its function names);
 * everything else runs inside the functions.
 */
#include "storage/redis/redis.h"

/*
 * Every queue function works on the keys of one concert, all with the hash
 * tag {concertId} so they live in one Cluster slot:
 *   keys[1] meta     HASH  the counters of an earlier layout, adopted into tokens once
 *   keys[2] waiting  ZSET  token id -> seq (FIFO order)
 *   keys[3] idle     ZSET  WAITING token id -> idle deadline
 *   keys[4] active   ZSET  ACTIVE token id -> active_until
 *   keys[5] tokens   HASH  token id -> "state|seq|issued|expires|ended|user",
 *                          and the concert's counters: seq, admitted, running
 *                          (members of active), head, gone (members of gone),
 *                          retention, expire_at, purge_at, bucket_rate, bucket,
 *                          bucket_at
 *   keys[6] users    HASH  user id -> live token id
 *   keys[7] ended    ZSET  EXPIRED/DONE token id -> when it ended
 *   keys[8] gone     ZSET  seq -> seq of tokens that left waiting from behind its head
 * Invariants: a token is live (WAITING/ACTIVE) iff users maps its user to it;
 * head is the lowest seq in waiting (NEVER if empty); gone holds every seq
 * above head that left waiting (and may still hold some below it).
 *
 * Position: seqs are handed out one by one, so the WAITING token with seq s
 * is preceded by the seqs head..s-1 less those that left: s - head + 1 minus
 * the members of gone in [head, s). Most tokens leave from the head
 * (admission), so gone is small or empty and a status reads no ZSET at all;
 * ZRANK in a ZSET of a million members costs ~5 us of cache misses.
 *
 * Every redis.call costs Redis CPU beyond its command (its arguments and
 * reply converted), so the functions make few: the counters live in the
 * tokens hash beside the records (names are not digits, token ids are), so
 * one HMGET reads the counters a call needs and the token asked about, and
 * one HSET at the end (done) writes the counters that changed and a new
 * token's record. A status of a WAITING token is that HMGET (and a ZCOUNT
 * of gone if that is not empty); a status call that changes nothing writes
 * nothing, and the client does not even call it then (queue.c).
 *
 * Expiry and forgetting run only when due: expire_at (no idle or active
 * deadline is earlier) and purge_at (no ended token is due to be forgotten
 * earlier) are lower bounds, lowered by every write of an earlier deadline
 * and recomputed after each pass, so most calls skip the scans. A pass
 * works at most BATCH tokens of each kind, so no call blocks Redis for long;
 * the token asked about is always judged by its own deadline, admission
 * never admits an expired token and never counts an expired ACTIVE one, so
 * a backlog only delays clean-up (sweep works it off).
 */
#define QUEUE_LIBRARY                                                                                      \
	"local WAITING, ACTIVE, EXPIRED, DONE = 1, 2, 3, 4\n"                                              \
	/* The error codes replies carry (checked against errors.h in queue.c). */                         \
	"local ETOKEN, EEXPIRED, ESTATE, ID_TAKEN = -7, -6, -11, 1\n"                                      \
	"local BATCH = 1000\n"                                                                             \
	/* "Nothing due": 2^53, exact in a double and printable by int(). */                               \
	"local NEVER = 9007199254740992\n"                                                                 \
	"local function int(n) return string.format('%d', n) end\n"                                        \
	"local function first_score(z)\n"                                                                  \
	"  local r = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"                                        \
	"  return r[2] and tonumber(r[2]) or NEVER\n"                                                      \
	"end\n"                                                                                            \
	"local function set(c, field, value)\n"                                                            \
	"  c[field] = value\n"                                                                             \
	"  c.dirty[field] = true\n"                                                                        \
	"end\n"                                                                                            \
	/* An earlier layout kept the counters in a HASH of their own (keys[1]): adopt them                \
	 * once, on the first call that finds none in tokens. */                                           \
	"local function adopt_legacy(c)\n"                                                                 \
	"  local m = redis.call('HMGET', c.k[1], 'seq', 'admitted', 'retention', 'bucket_rate',\n"         \
	"    'bucket', 'bucket_at')\n"                                                                     \
	"  if not m[1] then return end\n"                                                                  \
	"  set(c, 'seq', tonumber(m[1]))\n"                                                                \
	"  set(c, 'admitted', tonumber(m[2]) or 0)\n"                                                      \
	"  if m[3] then set(c, 'retention', tonumber(m[3])) end\n"                                         \
	"  if m[4] then\n"                                                                                 \
	"    set(c, 'bucket_rate', tonumber(m[4]))\n"                                                      \
	"    set(c, 'bucket', tonumber(m[5]))\n"                                                           \
	"    set(c, 'bucket_at', tonumber(m[6]))\n"                                                        \
	"  end\n"                                                                                          \
	"  redis.call('DEL', c.k[1])\n"                                                                    \
	"end\n"                                                                                            \
	/* One HMGET of tokens: the counters the call needs (`full`: also those of the calls               \
	 * that create or forget tokens) and the token `id`, if any. Returns the context and the           \
	 * token's record. */                                                                              \
	"local function open(keys, full, id)\n"                                                            \
	"  local c = { k = keys, dirty = {} }\n"                                                           \
	"  local q = { keys[5], 'admitted', 'retention', 'expire_at', 'running', 'head', 'gone', 'seq',\n" \
	"    'purge_at' }\n"                                                                               \
	"  local n = full and 9 or 7\n"                                                                    \
	"  if id then\n"                                                                                   \
	"    n = n + 1\n"                                                                                  \
	"    q[n] = id\n"                                                                                  \
	"  end\n"                                                                                          \
	"  local m = redis.call('HMGET', unpack(q, 1, n))\n"                                               \
	"  c.admitted, c.retention = tonumber(m[1]) or 0, tonumber(m[2])\n"                                \
	"  c.expire_at, c.running = tonumber(m[3]) or 0, tonumber(m[4])\n"                                 \
	"  c.head, c.gone = tonumber(m[5]), tonumber(m[6]) or 0\n"                                         \
	"  if full then c.seq, c.purge_at = tonumber(m[7]) or 0, tonumber(m[8]) or 0 end\n"                \
	"  if not c.retention then\n"                                                                      \
	"    adopt_legacy(c)\n"                                                                            \
	"    c.seq = c.seq or 0\n"                                                                         \
	"  end\n"                                                                                          \
	"  if not c.running then set(c, 'running', redis.call('ZCARD', keys[4])) end\n"                    \
	/* Data of a layout without head: gone is empty, head is waiting's first. */                       \
	"  if not c.head then set(c, 'head', first_score(keys[2])) end\n"                                  \
	"  return c, id and m[n - 1] or nil\n"                                                             \
	"end\n"                                                                                            \
	/* Takes token `id` (seq `seq`; nil: look it up) out of waiting. `at_head`: it is among            \
	 * the first of waiting (admission), so it moves head and is never gone. */                        \
	"local function unwait(c, id, seq, at_head)\n"                                                     \
	"  seq = seq or tonumber(redis.call('ZSCORE', c.k[2], id))\n"                                      \
	"  if not seq or redis.call('ZREM', c.k[2], id) == 0 then return end\n"                            \
	"  if at_head or seq <= c.head then\n"                                                             \
	"    c.head_moved = true\n"                                                                        \
	"  else\n"                                                                                         \
	"    set(c, 'gone', c.gone + redis.call('ZADD', c.k[8], seq, seq))\n"                              \
	"  end\n"                                                                                          \
	"end\n"                                                                                            \
	/* head after tokens left the front of waiting; the gone below it are forgotten. */                \
	"local function settle_head(c)\n"                                                                  \
	"  if not c.head_moved then return end\n"                                                          \
	"  c.head_moved = false\n"                                                                         \
	"  set(c, 'head', first_score(c.k[2]))\n"                                                          \
	"  if c.gone > 0 then\n"                                                                           \
	"    local below = c.head == NEVER and '+inf' or '(' .. int(c.head)\n"                             \
	"    set(c, 'gone', c.gone - redis.call('ZREMRANGEBYSCORE', c.k[8], '-inf', below))\n"             \
	"  end\n"                                                                                          \
	"end\n"                                                                                            \
	"local function record(t)\n"                                                                       \
	"  return t.state .. '|' .. int(t.seq) .. '|' .. int(t.issued) .. '|' ..\n"                        \
	"    int(t.expires) .. '|' .. int(t.ended) .. '|' .. t.user\n"                                     \
	"end\n"                                                                                            \
	/* The counters that changed, and the record of `t` (if given), in one HSET. */                    \
	"local function done(c, result, t)\n"                                                              \
	"  settle_head(c)\n"                                                                               \
	"  local out, n = { c.k[5] }, 1\n"                                                                 \
	"  for field in pairs(c.dirty) do\n"                                                               \
	"    out[n + 1] = field\n"                                                                         \
	"    out[n + 2] = c[field]\n"                                                                      \
	"    n = n + 2\n"                                                                                  \
	"  end\n"                                                                                          \
	"  if t then\n"                                                                                    \
	"    out[n + 1] = t.id\n"                                                                          \
	"    out[n + 2] = record(t)\n"                                                                     \
	"    n = n + 2\n"                                                                                  \
	"  end\n"                                                                                          \
	"  if n > 1 then redis.call('HSET', unpack(out, 1, n)) end\n"                                      \
	"  return result\n"                                                                                \
	"end\n"                                                                                            \
	"local function parse(id, v)\n"                                                                    \
	"  if not v then return nil end\n"                                                                 \
	"  local s, seq, issued, expires, ended, user =\n"                                                 \
	"    string.match(v, '^(%d)|(%d+)|(%-?%d+)|(%-?%d+)|(%-?%d+)|(.*)$')\n"                            \
	"  if not s then error('corrupt queue token record ' .. id) end\n"                                 \
	"  return { id = id, state = tonumber(s), seq = tonumber(seq),\n"                                  \
	"    issued = tonumber(issued), expires = tonumber(expires),\n"                                    \
	"    ended = tonumber(ended), user = user }\n"                                                     \
	"end\n"                                                                                            \
	"local function load(c, id) return parse(id, redis.call('HGET', c.k[5], id)) end\n"                \
	"local function save(c, t) redis.call('HSET', c.k[5], t.id, record(t)) end\n"                      \
	"local function live(t) return t.state == WAITING or t.state == ACTIVE end\n"                      \
	/* Every idle or active deadline written goes through here. */                                     \
	"local function deadline(c, at)\n"                                                                 \
	"  if at < c.expire_at then set(c, 'expire_at', at) end\n"                                         \
	"end\n"                                                                                            \
	/* `running` counts the members of active: every change to it goes through these two. */           \
	"local function activate(c, id, until_)\n"                                                         \
	"  set(c, 'running', c.running + redis.call('ZADD', c.k[4], until_, id))\n"                        \
	"  deadline(c, until_)\n"                                                                          \
	"end\n"                                                                                            \
	"local function deactivate(c, id)\n"                                                               \
	"  set(c, 'running', c.running - redis.call('ZREM', c.k[4], id))\n"                                \
	"end\n"                                                                                            \
	"local function finish(c, t, state, now)\n"                                                        \
	"  if t.state == WAITING then\n"                                                                   \
	"    unwait(c, t.id, t.seq)\n"                                                                     \
	"    redis.call('ZREM', c.k[3], t.id)\n"                                                           \
	"  else\n"                                                                                         \
	"    deactivate(c, t.id)\n"                                                                        \
	"  end\n"                                                                                          \
	"  redis.call('HDEL', c.k[6], t.user)\n"                                                           \
	"  t.state = state\n"                                                                              \
	"  t.ended = now\n"                                                                                \
	"  save(c, t)\n"                                                                                   \
	"  redis.call('ZADD', c.k[7], now, t.id)\n"                                                        \
	"  if c.retention then\n"                                                                          \
	"    if not c.purge_at then\n"                                                                     \
	"      c.purge_at = tonumber(redis.call('HGET', c.k[5], 'purge_at')) or 0\n"                       \
	"    end\n"                                                                                        \
	"    if now + c.retention < c.purge_at then set(c, 'purge_at', now + c.retention) end\n"           \
	"  end\n"                                                                                          \
	"end\n"                                                                                            \
	"local function expire_if_due(c, t, now)\n"                                                        \
	"  if live(t) and t.expires <= now then finish(c, t, EXPIRED, now) end\n"                          \
	"end\n"                                                                                            \
	"local function expire_z(c, z, now)\n"                                                             \
	"  local ids = redis.call('ZRANGEBYSCORE', z, '-inf', int(now), 'LIMIT', 0, BATCH)\n"              \
	"  for _, id in ipairs(ids) do\n"                                                                  \
	"    local t = load(c, id)\n"                                                                      \
	"    if t and live(t) then\n"                                                                      \
	"      finish(c, t, EXPIRED, now)\n"                                                               \
	"    elseif z == c.k[4] then\n"                                                                    \
	"      deactivate(c, id)\n"                                                                        \
	"    else\n"                                                                                       \
	"      redis.call('ZREM', z, id)\n"                                                                \
	"      unwait(c, id)\n"                                                                            \
	"    end\n"                                                                                        \
	"  end\n"                                                                                          \
	"  return #ids\n"                                                                                  \
	"end\n"                                                                                            \
	/* Ends what the clock has ended (if anything is due); with `purge`, forgets tokens that           \
	 * ended more than `retention` (active_ttl + wait_idle_ttl) ago. Returns how many, and             \
	 * whether more are due. */                                                                        \
	"local function expire_due(c, now, purge)\n"                                                       \
	"  local n, more = 0, false\n"                                                                     \
	"  if now >= c.expire_at then\n"                                                                   \
	"    local idle, active = expire_z(c, c.k[3], now), expire_z(c, c.k[4], now)\n"                    \
	"    c.active_backlog = active == BATCH\n"                                                         \
	"    n, more = idle + active, idle == BATCH or active == BATCH\n"                                  \
	"    local first = math.min(first_score(c.k[3]), first_score(c.k[4]))\n"                           \
	"    if first ~= c.expire_at then set(c, 'expire_at', first) end\n"                                \
	"  end\n"                                                                                          \
	"  if purge and c.retention and now >= c.purge_at then\n"                                          \
	"    local ids = redis.call('ZRANGEBYSCORE', c.k[7], '-inf', int(now - c.retention),\n"            \
	"      'LIMIT', 0, BATCH)\n"                                                                       \
	"    if #ids > 0 then\n"                                                                           \
	"      redis.call('HDEL', c.k[5], unpack(ids))\n"                                                  \
	"      redis.call('ZREM', c.k[7], unpack(ids))\n"                                                  \
	"    end\n"                                                                                        \
	"    n = n + #ids\n"                                                                               \
	"    more = more or #ids == BATCH\n"                                                               \
	"    local first = first_score(c.k[7])\n"                                                          \
	"    if first ~= NEVER then first = first + c.retention end\n"                                     \
	"    if first ~= c.purge_at then set(c, 'purge_at', first) end\n"                                  \
	"  end\n"                                                                                          \
	"  return n, more\n"                                                                               \
	"end\n"                                                                                            \
	/* The retention of the last policy seen, for calls that get no policy; a new one may              \
	 * make ended tokens due sooner, so purge_at starts over. */                                       \
	"local function policy_seen(c, idle_ttl, active_ttl)\n"                                            \
	"  if c.retention ~= idle_ttl + active_ttl then\n"                                                 \
	"    set(c, 'retention', idle_ttl + active_ttl)\n"                                                 \
	"    set(c, 'purge_at', 0)\n"                                                                      \
	"  end\n"                                                                                          \
	"end\n"                                                                                            \
	"local function touch(c, t, idle_ttl, now)\n"                                                      \
	"  if t.state ~= WAITING then return end\n"                                                        \
	"  t.expires = now + idle_ttl\n"                                                                   \
	"  save(c, t)\n"                                                                                   \
	"  redis.call('ZADD', c.k[3], t.expires, t.id)\n"                                                  \
	"  deadline(c, t.expires)\n"                                                                       \
	"end\n"                                                                                            \
	/* admit_per_second: a bucket of thousandths refilled at `rate` per second, holding one            \
	 * second's worth; full at first and whenever the rate changes. */                                 \
	"local function bucket_level(c, rate, now)\n"                                                      \
	"  if not c.dirty.bucket_rate then\n"                                                              \
	"    local m = redis.call('HMGET', c.k[5], 'bucket_rate', 'bucket', 'bucket_at')\n"                \
	"    c.bucket_rate, c.bucket, c.bucket_at = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])\n"      \
	"  end\n"                                                                                          \
	"  local full = rate * 1000\n"                                                                     \
	"  if c.bucket_rate ~= rate then return full, now end\n"                                           \
	"  local level, at = c.bucket, c.bucket_at\n"                                                      \
	"  if now > at then\n"                                                                             \
	"    level = math.min(level + math.min(now - at, 1000) * rate, full)\n"                            \
	"    at = now\n"                                                                                   \
	"  end\n"                                                                                          \
	"  return level, at\n"                                                                             \
	"end\n"                                                                                            \
	/* FIFO admission while fewer than max_active are ACTIVE (and the bucket allows); ACTIVE           \
	 * tokens past their deadline do not count (`running` is exact unless an expiry pass               \
	 * left some behind). Nothing to admit costs no command. Returns how many, and the                 \
	 * admitted tokens by id. */                                                                       \
	"local function admit(c, now, max_active, rate, active_ttl)\n"                                     \
	"  local running = c.running\n"                                                                    \
	"  if c.active_backlog then running = redis.call('ZCOUNT', c.k[4], '(' .. int(now), '+inf') end\n" \
	"  if running >= max_active then return 0 end\n"                                                   \
	"  local room = math.min(max_active - running, redis.call('ZCARD', c.k[2]))\n"                     \
	"  if room <= 0 then return 0 end\n"                                                               \
	"  local level, at\n"                                                                              \
	"  if rate > 0 then\n"                                                                             \
	"    level, at = bucket_level(c, rate, now)\n"                                                     \
	"    room = math.min(room, math.floor(level / 1000))\n"                                            \
	"  end\n"                                                                                          \
	"  local admitted, changed = 0, {}\n"                                                              \
	"  local active_until = now + active_ttl\n"                                                        \
	"  while admitted < room do\n"                                                                     \
	"    local head = redis.call('ZRANGE', c.k[2], 0, room - admitted - 1)\n"                          \
	"    if #head == 0 then break end\n"                                                               \
	"    for _, id in ipairs(head) do\n"                                                               \
	"      local t = c.fresh and c.fresh.id == id and c.fresh or load(c, id)\n"                        \
	"      if t and t.state == WAITING and t.expires <= now then\n"                                    \
	"        finish(c, t, EXPIRED, now)\n"                                                             \
	"      else\n"                                                                                     \
	"        unwait(c, id, t and t.seq, true)\n"                                                       \
	"        redis.call('ZREM', c.k[3], id)\n"                                                         \
	"        if t and t.state == WAITING then\n"                                                       \
	"          activate(c, id, active_until)\n"                                                        \
	"          t.state = ACTIVE\n"                                                                     \
	"          t.expires = active_until\n"                                                             \
	"          save(c, t)\n"                                                                           \
	"          changed[id] = t\n"                                                                      \
	"          admitted = admitted + 1\n"                                                              \
	"        end\n"                                                                                    \
	"      end\n"                                                                                      \
	"    end\n"                                                                                        \
	"  end\n"                                                                                          \
	"  if admitted > 0 then set(c, 'admitted', c.admitted + admitted) end\n"                           \
	"  if rate > 0 then\n"                                                                             \
	"    set(c, 'bucket_rate', rate)\n"                                                                \
	"    set(c, 'bucket', level - admitted * 1000)\n"                                                  \
	"    set(c, 'bucket_at', at)\n"                                                                    \
	"  end\n"                                                                                          \
	"  return admitted, changed\n"                                                                     \
	"end\n"                                                                                            \
	/* The token as it is now (admission may just have changed it). */                                 \
	"local function current(t, changed)\n"                                                             \
	"  return changed and changed[t.id] or t\n"                                                        \
	"end\n"                                                                                            \
	/* {0, id, state, created, position, issued, expires, admitted_total, user} */                     \
	"local function entry(c, t, created, position)\n"                                                  \
	"  return { 0, t.id, t.state, created, position, t.issued, t.expires, c.admitted, t.user }\n"      \
	"end\n"                                                                                            \
	"local function rank(c, t)\n"                                                                      \
	"  if t.state ~= WAITING then return 0 end\n"                                                      \
	"  settle_head(c)\n"                                                                               \
	"  local p = t.seq - c.head + 1\n"                                                                 \
	"  if c.gone > 0 then\n"                                                                           \
	"    p = p - redis.call('ZCOUNT', c.k[8], int(c.head), '(' .. int(t.seq))\n"                       \
	"  end\n"                                                                                          \
	"  return p\n"                                                                                     \
	"end\n"                                                                                            \
	/* args: now, max_active, admit_per_second, wait_idle_ttl, active_ttl, then a user and a           \
	 * new token id for each of n enters (queue.c combines concurrent callers' enters into             \
	 * one call), entered in that order, each as if alone: the user's live token (touched),            \
	 * or a new one at the back when the id is free ({ID_TAKEN} otherwise: the client draws            \
	 * another). Replies one entry per enter, or, when all n made new WAITING tokens at the            \
	 * back (enter_lean), {position of the first, issued, expires, admitted_total}. */                 \
	/* The common case, users new to a queue where nothing is due to expire, nobody can be             \
	 * admitted and the policy is the one seen: what enter_one below would do for each, with           \
	 * one command per structure for all n and none of its bookkeeping. nil: nothing was               \
	 * written; take enter_one for each. */                                                            \
	"local function enter_lean(keys, args, n, now, max_active, idle_ttl, active_ttl)\n"                \
	"  local q = { keys[5], 'retention', 'expire_at', 'purge_at', 'running', 'head', 'seq',\n"         \
	"    'gone', 'admitted' }\n"                                                                       \
	"  for i = 1, n do q[9 + i] = args[5 + 2 * i] end\n"                                               \
	"  local m = redis.call('HMGET', unpack(q, 1, 9 + n))\n"                                           \
	"  local expire_at, purge_at, running, head =\n"                                                   \
	"    tonumber(m[2]) or 0, tonumber(m[3]) or 0, tonumber(m[4]) or 0, tonumber(m[5]) or NEVER\n"     \
	"  if tonumber(m[1]) ~= idle_ttl + active_ttl or now >= expire_at or now >= purge_at or\n"         \
	"    running < max_active or head == NEVER then return nil end\n"                                  \
	"  for i = 9, 8 + n do if m[i] then return nil end end\n"                                          \
	"  if n == 1 then\n"                                                                               \
	"    if redis.call('HSETNX', keys[6], args[6], args[7]) == 0 then return nil end\n"                \
	"  else\n"                                                                                         \
	"    local users, seen_user, seen_id = { keys[6] }, {}, {}\n"                                      \
	"    for i = 1, n do\n"                                                                            \
	"      local user, id = args[4 + 2 * i], args[5 + 2 * i]\n"                                        \
	"      if seen_user[user] or seen_id[id] then return nil end\n"                                    \
	"      seen_user[user], seen_id[id] = true, true\n"                                                \
	"      users[i + 1] = user\n"                                                                      \
	"    end\n"                                                                                        \
	"    local known = redis.call('HMGET', unpack(users, 1, n + 1))\n"                                 \
	"    for i = 1, n do if known[i] then return nil end end\n"                                        \
	"    for i = 1, n do\n"                                                                            \
	"      users[2 * i], users[2 * i + 1] = args[4 + 2 * i], args[5 + 2 * i]\n"                        \
	"    end\n"                                                                                        \
	"    redis.call('HSET', unpack(users, 1, 2 * n + 1))\n"                                            \
	"  end\n"                                                                                          \
	"  local seq, gone, admitted = tonumber(m[6]) or 0, tonumber(m[7]) or 0, tonumber(m[8]) or 0\n"    \
	"  local expires = now + idle_ttl\n"                                                               \
	"  local waiting, idle, tokens = { keys[2] }, { keys[3] }, { keys[5], 'seq', seq + n }\n"          \
	"  local first = (seq + 1) - head + 1 - gone\n"                                                    \
	"  if expires < expire_at then tokens[4], tokens[5] = 'expire_at', expires end\n"                  \
	"  local tail = '|' .. args[1] .. '|' .. int(expires) .. '|0|'\n"                                  \
	"  for i = 1, n do\n"                                                                              \
	"    local user, id = args[4 + 2 * i], args[5 + 2 * i]\n"                                          \
	"    seq = seq + 1\n"                                                                              \
	"    waiting[2 * i], waiting[2 * i + 1] = seq, id\n"                                               \
	"    idle[2 * i], idle[2 * i + 1] = expires, id\n"                                                 \
	"    tokens[#tokens + 1] = id\n"                                                                   \
	"    tokens[#tokens + 1] = WAITING .. '|' .. int(seq) .. tail .. user\n"                           \
	"  end\n"                                                                                          \
	"  redis.call('ZADD', unpack(waiting, 1, 2 * n + 1))\n"                                            \
	"  redis.call('ZADD', unpack(idle, 1, 2 * n + 1))\n"                                               \
	"  redis.call('HSET', unpack(tokens))\n"                                                           \
	"  return { first, now, expires, admitted }\n"                                                     \
	"end\n"                                                                                            \
	"local function enter_one(keys, user, new_id, now, max_active, rate, idle_ttl, active_ttl)\n"      \
	"  local c, taken = open(keys, true, new_id)\n"                                                    \
	"  policy_seen(c, idle_ttl, active_ttl)\n"                                                         \
	"  expire_due(c, now, true)\n"                                                                     \
	/* A user new to the queue is claimed in one command; one already there is looked at. */           \
	"  if taken or redis.call('HSETNX', keys[6], user, new_id) == 0 then\n"                            \
	"    local t\n"                                                                                    \
	"    local id = redis.call('HGET', keys[6], user)\n"                                               \
	"    if id then\n"                                                                                 \
	"      t = load(c, id)\n"                                                                          \
	"      if t then expire_if_due(c, t, now) end\n"                                                   \
	"    end\n"                                                                                        \
	"    if t and live(t) then\n"                                                                      \
	"      touch(c, t, idle_ttl, now)\n"                                                               \
	"      local _, changed = admit(c, now, max_active, rate, active_ttl)\n"                           \
	"      t = current(t, changed)\n"                                                                  \
	"      return done(c, entry(c, t, 0, rank(c, t)))\n"                                               \
	"    end\n"                                                                                        \
	"    if taken then return done(c, { ID_TAKEN }) end\n"                                             \
	"    redis.call('HSET', keys[6], user, new_id)\n"                                                  \
	"  end\n"                                                                                          \
	"  local t = { id = new_id, state = WAITING, seq = c.seq + 1, issued = now,\n"                     \
	"    expires = now + idle_ttl, ended = 0, user = user }\n"                                         \
	"  set(c, 'seq', t.seq)\n"                                                                         \
	/* Its record is written last, with the counters: admission must not take it for a                 \
	 * stale id meanwhile. */                                                                          \
	"  c.fresh = t\n"                                                                                  \
	"  redis.call('ZADD', keys[2], t.seq, new_id)\n"                                                   \
	"  if t.seq < c.head then set(c, 'head', t.seq) end\n"                                             \
	"  redis.call('ZADD', keys[3], t.expires, new_id)\n"                                               \
	"  deadline(c, t.expires)\n"                                                                       \
	"  local _, changed = admit(c, now, max_active, rate, active_ttl)\n"                               \
	"  if changed and changed[new_id] then\n"                                                          \
	"    return done(c, entry(c, changed[new_id], 1, 0))\n"                                            \
	"  end\n"                                                                                          \
	/* Still WAITING: its record goes with the counters. It is last in waiting, behind                 \
	 * every member of gone. */                                                                        \
	"  settle_head(c)\n"                                                                               \
	"  return done(c, entry(c, t, 1, t.seq - c.head + 1 - c.gone), t)\n"                               \
	"end\n"                                                                                            \
	"local function enter(keys, args)\n"                                                               \
	"  local now, max_active, rate = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])\n"        \
	"  local idle_ttl, active_ttl = tonumber(args[4]), tonumber(args[5])\n"                            \
	"  local n = (#args - 5) / 2\n"                                                                    \
	"  local out = enter_lean(keys, args, n, now, max_active, idle_ttl, active_ttl)\n"                 \
	"  if out then return out end\n"                                                                   \
	"  out = {}\n"                                                                                     \
	"  for i = 1, n do\n"                                                                              \
	"    out[i] = enter_one(keys, args[4 + 2 * i], args[5 + 2 * i], now, max_active, rate,\n"          \
	"      idle_ttl, active_ttl)\n"                                                                    \
	"  end\n"                                                                                          \
	"  return out\n"                                                                                   \
	"end\n"                                                                                            \
	/* args: token id, touch (0/1), now, max_active, admit_per_second, wait_idle_ttl,                  \
	 * active_ttl. */                                                                                  \
	"local function status(keys, args)\n"                                                              \
	"  local id, touch_it = args[1], args[2] == '1'\n"                                                 \
	"  local c, v = open(keys, false, id)\n"                                                           \
	"  local now, max_active, rate = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])\n"        \
	"  local idle_ttl, active_ttl = tonumber(args[6]), tonumber(args[7])\n"                            \
	"  policy_seen(c, idle_ttl, active_ttl)\n"                                                         \
	"  local expired = expire_due(c, now, false) > 0\n"                                                \
	"  local t\n"                                                                                      \
	/* An expiry pass may have ended the token just read. */                                           \
	"  if expired then t = load(c, id) else t = parse(id, v) end\n"                                    \
	"  if t then\n"                                                                                    \
	"    expire_if_due(c, t, now)\n"                                                                   \
	"    if touch_it then touch(c, t, idle_ttl, now) end\n"                                            \
	"  end\n"                                                                                          \
	"  local _, changed = admit(c, now, max_active, rate, active_ttl)\n"                               \
	"  if not t then return done(c, { ETOKEN }) end\n"                                                 \
	"  t = current(t, changed)\n"                                                                      \
	"  return done(c, entry(c, t, 0, rank(c, t)))\n"                                                   \
	"end\n"                                                                                            \
	/* args: token id, now, 'leave' (-> EXPIRED) or 'done' (ACTIVE -> DONE). */                        \
	"local function finish_token(keys, args)\n"                                                        \
	"  local c = open(keys, true)\n"                                                                   \
	"  local id, now, kind = args[1], tonumber(args[2]), args[3]\n"                                    \
	"  expire_due(c, now, true)\n"                                                                     \
	"  local t = load(c, id)\n"                                                                        \
	"  if not t then return done(c, { ETOKEN }) end\n"                                                 \
	"  expire_if_due(c, t, now)\n"                                                                     \
	"  if kind == 'leave' then\n"                                                                      \
	"    if not live(t) then return done(c, { EEXPIRED }) end\n"                                       \
	"    finish(c, t, EXPIRED, now)\n"                                                                 \
	"  else\n"                                                                                         \
	"    if t.state ~= ACTIVE then return done(c, { ESTATE }) end\n"                                   \
	"    finish(c, t, DONE, now)\n"                                                                    \
	"  end\n"                                                                                          \
	"  return done(c, { 0 })\n"                                                                        \
	"end\n"                                                                                            \
	/* args: now, max_active, admit_per_second, wait_idle_ttl, active_ttl -> {0, admitted}. */         \
	"local function admit_only(keys, args)\n"                                                          \
	"  local c = open(keys, true)\n"                                                                   \
	"  local now, max_active, rate = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])\n"        \
	"  local idle_ttl, active_ttl = tonumber(args[4]), tonumber(args[5])\n"                            \
	"  policy_seen(c, idle_ttl, active_ttl)\n"                                                         \
	"  expire_due(c, now, true)\n"                                                                     \
	"  local admitted = admit(c, now, max_active, rate, active_ttl)\n"                                 \
	"  return done(c, { 0, admitted })\n"                                                              \
	"end\n"                                                                                            \
	/* args: now -> {0, tokens expired or forgotten, 1 if more are due}. */                            \
	"local function sweep(keys, args)\n"                                                               \
	"  local c = open(keys, true)\n"                                                                   \
	"  local n, more = expire_due(c, tonumber(args[1]), true)\n"                                       \
	"  return done(c, { 0, n, more and 1 or 0 })\n"                                                    \
	"end\n"                                                                                            \
	/* args: now -> {0, WAITING, ACTIVE}, what is live at `now` (read only; a token past its           \
	 * deadline is not counted even before a call expires it). */                                      \
	"local function counts(keys, args)\n"                                                              \
	"  local now = args[1]\n"                                                                          \
	"  local waiting = redis.call('ZCARD', keys[2]) - redis.call('ZCOUNT', keys[3], '-inf', now)\n"    \
	"  local active = redis.call('ZCOUNT', keys[4], '(' .. now, '+inf')\n"                             \
	"  return { 0, waiting, active }\n"                                                                \
	"end\n"

/*
 * Seat locks: keys are the seats of one schedule, seat:{scheduleId}:<seatNo>,
 * one hash tag. All or none, with SET NX PX semantics: if any seat is locked
 * the reply lists their (1-based) key indexes and nothing is set.
 * args: value, ttl ms. (A single seat is a plain SET NX PX, no function.)
 */
#define LOCK_LIBRARY                                                                           \
	"local function acquire(keys, args)\n"                                                 \
	"  local taken = {}\n"                                                                 \
	"  for i, key in ipairs(keys) do\n"                                                    \
	"    if redis.call('EXISTS', key) == 1 then taken[#taken + 1] = i end\n"               \
	"  end\n"                                                                              \
	"  if #taken == 0 then\n"                                                              \
	"    for _, key in ipairs(keys) do redis.call('SET', key, args[1], 'PX', args[2]) end\n" \
	"  end\n"                                                                              \
	"  return taken\n"                                                                     \
	"end\n"                                                                                \
	/* Compare-and-delete: unlocks the seats still locked with args[1]. */                 \
	"local function release(keys, args)\n"                                                 \
	"  local n = 0\n"                                                                      \
	"  for _, key in ipairs(keys) do\n"                                                    \
	"    if redis.call('GET', key) == args[1] then\n"                                      \
	"      redis.call('DEL', key)\n"                                                       \
	"      n = n + 1\n"                                                                    \
	"    end\n"                                                                            \
	"  end\n"                                                                              \
	"  return n\n"                                                                         \
	"end\n"

const char redis_library_body[] = QUEUE_LIBRARY LOCK_LIBRARY
	"redis.register_function(PREFIX .. 'enter', enter)\n"
	"redis.register_function(PREFIX .. 'status', status)\n"
	"redis.register_function(PREFIX .. 'end', finish_token)\n"
	"redis.register_function(PREFIX .. 'admit', admit_only)\n"
	"redis.register_function(PREFIX .. 'sweep', sweep)\n"
	"redis.register_function{ function_name = PREFIX .. 'counts', callback = counts,\n"
	"  flags = { 'no-writes' } }\n"
	"redis.register_function(PREFIX .. 'acquire', acquire)\n"
	"redis.register_function(PREFIX .. 'release', release)\n";

const char *const redis_function_names[REDIS_FN_COUNT] = {
	[REDIS_FN_ENTER] = "enter",
	[REDIS_FN_STATUS] = "status",
	[REDIS_FN_END] = "end",
	[REDIS_FN_ADMIT] = "admit",
	[REDIS_FN_SWEEP] = "sweep",
	[REDIS_FN_COUNTS] = "counts",
	[REDIS_FN_ACQUIRE] = "acquire",
	[REDIS_FN_RELEASE] = "release",
};

--- libconcert for Lua 5.4 and LuaJIT: `local concert = require "concert"`.
--
-- A thin layer over the SWIG module concert_core. Results are tables with
-- snake_case fields; a failure returns `nil, name, detail` where name is the
-- stable error name ("seat_unavailable", "insufficient_funds", ...) and
-- detail is `{code=, name=, message=, conflicts={...}}`. Wrong argument
-- types raise a Lua error, as Lua's own libraries do.
--
--   local engine = assert(concert.open{ store = "memory:" })
--   local id = assert(engine:add_concert("Spring Tour", opens_at, closes_at))
--
-- An engine is closed by engine:close() or, failing that, by its __gc.
local core = require "concert_core"

local M = { version = core.concert_version() }

local function failure()
    local code, name, message, conflicts = core.last_error()
    return nil, name, { code = code, name = name, message = message, conflicts = conflicts }
end

-- rc, results... -> results... or nil, name, detail
local function check(rc, ...)
    if rc < 0 then
        return failure()
    end
    return ...
end

-- For calls whose only result is the code.
local function check_ok(rc)
    if rc < 0 then
        return failure()
    end
    return true
end

local function check_type(value, expected, what, optional)
    if (value == nil and optional) or type(value) == expected then
        return
    end
    error(string.format("%s must be a %s, not %s", what, expected, type(value)), 3)
end

local Engine = {}
Engine.__index = Engine

--- Opens an engine. opts: store, queue, lock (URIs), secret (string),
-- and the policy fields of concert_options (max_active, admit_per_second,
-- wait_idle_ttl, active_ttl, hold_ttl, hold_max_lifetime,
-- hold_max_extensions, max_holds_per_user, max_seats_per_user; ms for times).
function M.open(opts)
    opts = opts or {}
    check_type(opts, "table", "opts")
    check_type(opts.secret, "string", "opts.secret", true)
    local handle = core.luaconcert_engine_open(opts.store or "memory:", opts.queue, opts.lock,
        opts.secret, opts.max_active or 0, opts.admit_per_second or 0,
        opts.wait_idle_ttl or 0, opts.active_ttl or 0, opts.hold_ttl or 0,
        opts.hold_max_lifetime or 0, opts.hold_max_extensions or 0,
        opts.max_holds_per_user or 0, opts.max_seats_per_user or 0)
    if not handle then
        return failure()
    end
    return setmetatable({ handle = handle }, Engine)
end

function Engine:close()
    core.luaconcert_engine_close(self.handle)
end

function Engine:is_open()
    return core.luaconcert_engine_is_open(self.handle) == 1
end

function Engine:now() return core.concert_engine_now(self.handle) end
function Engine:health() return check_ok(core.concert_engine_health(self.handle)) end
function Engine:sweep() return check(core.concert_engine_sweep(self.handle)) end
function Engine:compact() return check_ok(core.concert_engine_compact(self.handle)) end
function Engine:audit() return check(core.concert_engine_audit(self.handle)) end

--- Non-zero counters as {op=, outcome=, count=}.
function Engine:stats()
    return core.luaconcert_push_stats(self.handle)
end

-- catalog

function Engine:add_concert(title, opens_at, closes_at)
    check_type(title, "string", "title")
    return check(core.concert_concert_add(self.handle, title, opens_at, closes_at))
end

function Engine:add_schedule(concert_id, starts_at, venue)
    check_type(venue, "string", "venue")
    return check(core.concert_schedule_add(self.handle, concert_id, starts_at, venue))
end

--- seats: array of {seat_no=, price=, grade=}.
function Engine:add_seats(schedule_id, seats)
    check_type(seats, "table", "seats")
    return check_ok(core.concert_seats_add(self.handle, schedule_id, seats))
end

function Engine:concerts() return check(core.concert_concerts_list(self.handle)) end
function Engine:concert(id) return check(core.concert_concert_get(self.handle, id)) end
function Engine:schedules(concert_id) return check(core.concert_schedules_list(self.handle, concert_id)) end
function Engine:schedule(id) return check(core.concert_schedule_get(self.handle, id)) end
function Engine:seats(schedule_id) return check(core.concert_seats_list(self.handle, schedule_id)) end

-- queue

function Engine:enter(user_id, concert_id)
    check_type(user_id, "string", "user_id")
    return check(core.concert_queue_enter(self.handle, user_id, concert_id))
end

function Engine:status(token)
    check_type(token, "string", "token")
    return check(core.concert_queue_status_get(self.handle, token))
end

function Engine:heartbeat(token)
    check_type(token, "string", "token")
    return check(core.concert_queue_heartbeat(self.handle, token))
end

function Engine:leave(token)
    check_type(token, "string", "token")
    return check_ok(core.concert_queue_leave(self.handle, token))
end

--- Signature AND backend state (revocation); concert_id 0 = any concert.
function Engine:validate(token, concert_id)
    check_type(token, "string", "token")
    return check(core.concert_queue_validate(self.handle, token, concert_id or 0))
end

function Engine:admit(concert_id) return check(core.concert_queue_admit(self.handle, concert_id)) end

--- waiting, active
function Engine:queue_counts(concert_id)
    return check(core.concert_queue_counts(self.handle, concert_id))
end

-- holds

function Engine:hold(token, schedule_id, seat_nos)
    check_type(token, "string", "token")
    check_type(seat_nos, "table", "seat_nos")
    return check(core.concert_hold_seats(self.handle, token, schedule_id, seat_nos))
end

--- seat_nos nil releases the whole hold.
function Engine:release(token, hold_id, seat_nos)
    check_type(token, "string", "token")
    check_type(seat_nos, "table", "seat_nos", true)
    return check_ok(core.concert_hold_release(self.handle, token, hold_id, seat_nos))
end

function Engine:extend(token, hold_id)
    check_type(token, "string", "token")
    return check(core.concert_hold_extend(self.handle, token, hold_id))
end

function Engine:get_hold(token, hold_id)
    check_type(token, "string", "token")
    return check(core.concert_hold_get(self.handle, token, hold_id))
end

-- wallet and payments

function Engine:charge(user_id, amount, idem_key)
    check_type(user_id, "string", "user_id")
    check_type(idem_key, "string", "idem_key", true)
    return check(core.concert_wallet_charge(self.handle, user_id, amount, idem_key))
end

function Engine:balance(user_id)
    check_type(user_id, "string", "user_id")
    return check(core.concert_wallet_balance(self.handle, user_id))
end

--- {items={...}, next_cursor=} newest first.
function Engine:history(user_id, cursor, limit)
    check_type(user_id, "string", "user_id")
    return check(core.concert_wallet_history(self.handle, user_id, cursor or 0, limit or 50))
end

function Engine:pay(token, hold_id, idem_key)
    check_type(token, "string", "token")
    check_type(idem_key, "string", "idem_key", true)
    return check(core.concert_pay(self.handle, token, hold_id, idem_key))
end

--- refunded, balance
function Engine:cancel(user_id, reservation_id)
    check_type(user_id, "string", "user_id")
    return check(core.concert_reservation_cancel(self.handle, user_id, reservation_id))
end

function Engine:reservation(id) return check(core.concert_reservation_get(self.handle, id)) end

-- tokens without an engine (what an edge does)

--- Verifies a token with the secret and the time `now` (ms): claims, or
-- nil, name ("token_not_active", "expired", "invalid_token"), detail; the
-- claims come as a fourth result whenever the signature is valid.
function M.verify(token, secret, concert_id, now)
    check_type(token, "string", "token")
    check_type(secret, "string", "secret")
    local rc, claims = core.concert_token_verify(token, secret, concert_id or 0, now)
    if rc < 0 then
        local _, name, detail = failure()
        return nil, name, detail, claims
    end
    return claims
end

--- Signs claims {token_id, concert_id, user_id, issued_at, kind="ACTIVE"|"WAITING",
-- active_until} with secret: a token string, or nil, name, detail.
function M.sign(secret, claims)
    check_type(secret, "string", "secret")
    check_type(claims, "table", "claims")
    local c = {}
    for k, v in pairs(claims) do c[k] = v end
    c.kind = (claims.kind == "WAITING" or claims.kind == "waiting") and core.CONCERT_TOKEN_WAITING or core.CONCERT_TOKEN_ACTIVE
    return check(core.token_sign(secret, c))
end

--- Stable name and fixed text of an error code.
function M.error_name(code) return core.concert_error_name(code) end
function M.strerror(code) return core.concert_strerror(code) end

M.Engine = Engine
return M

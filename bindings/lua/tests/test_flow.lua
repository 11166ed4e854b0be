-- The Lua module under lua5.4 and luajit: the whole flow, errors as
-- nil, err, and bad arguments. Run: LUA_PATH=... LUA_CPATH=... lua5.4 test_flow.lua
local concert = require "concert"

local h = require "harness"
local test, eq = h.test, h.eq

local DAY = 86400 * 1000

local function setup(opts)
    local engine = assert(concert.open(opts or { secret = "flow-secret", max_active = 1 }))
    local now = engine:now()
    local concert_id = assert(engine:add_concert("Spring Tour", now - DAY, now + 30 * DAY))
    local schedule_id = assert(engine:add_schedule(concert_id, now + 20 * DAY, "Olympic Hall"))
    local seats = {}
    for i = 1, 10 do
        seats[i] = { seat_no = i, price = 1000 * i, grade = i <= 2 and "VIP" or "R" }
    end
    assert(engine:add_seats(schedule_id, seats))
    return engine, concert_id, schedule_id
end

test("version", function()
    assert(concert.version:match("^%d+%.%d+%.%d+$"), concert.version)
end)

test("catalog", function()
    local engine, concert_id, schedule_id = setup()
    local list = assert(engine:concerts())
    eq(#list, 1, "concerts")
    eq(list[1].title, "Spring Tour")
    eq(math.type and math.type(list[1].id) or "integer", "integer", "id type")
    local schedules = assert(engine:schedules(concert_id))
    eq(schedules[1].id, schedule_id)
    eq(schedules[1].available_seats, 10)
    local seats = assert(engine:seats(schedule_id))
    eq(#seats, 10)
    eq(seats[1].grade, "VIP")
    eq(seats[3].price, 3000)
    eq(seats[3].state, "AVAILABLE")
    engine:close()
end)

test("flow: enter, status, hold, charge, pay", function()
    local engine, concert_id, schedule_id = setup()
    local first = assert(engine:enter("alice", concert_id))
    eq(first.state, "ACTIVE", "alice admitted")
    eq(first.created, true)
    local second = assert(engine:enter("bob", concert_id))
    eq(second.state, "WAITING", "bob waits (max_active 1)")
    eq(second.position, 1)
    local again = assert(engine:enter("alice", concert_id))
    eq(again.created, false, "enter is idempotent")
    local status = assert(engine:status(first.token))
    eq(status.state, "ACTIVE")
    local claims = assert(engine:validate(first.token, concert_id))
    eq(claims.user_id, "alice")
    eq(claims.kind, "ACTIVE")

    local hold = assert(engine:hold(first.token, schedule_id, { 3, 4 }))
    eq(hold.amount, 7000)
    eq(#hold.seat_nos, 2)
    eq(hold.state, "HELD")
    local nothing, err, detail = engine:pay(first.token, hold.id)
    eq(nothing, nil)
    eq(err, "insufficient_funds")
    eq(detail.code, -9)
    eq(assert(engine:charge("alice", 10000, "k1")), 10000)
    eq(assert(engine:charge("alice", 10000, "k1")), 10000, "idempotent charge")
    local payment = assert(engine:pay(first.token, hold.id, "pay-1"))
    eq(payment.amount, 7000)
    eq(payment.balance, 3000)
    eq(assert(engine:balance("alice")), 3000)
    local reservation = assert(engine:reservation(payment.reservation_id))
    eq(reservation.state, "CONFIRMED")
    local history = assert(engine:history("alice"))
    eq(#history.items, 2)
    eq(history.items[1].kind, "PAYMENT")

    local refunded, balance = engine:cancel("alice", payment.reservation_id)
    eq(refunded, 7000)
    eq(balance, 10000)
    local audit = assert(engine:audit())
    eq(audit.wallet_mismatches, 0)
    eq(audit.total_balance + audit.total_payments - audit.total_refunds, audit.total_charges)
    assert(#engine:stats() > 0)
    engine:close()
end)

test("errors are nil, name, detail", function()
    local engine, concert_id, schedule_id = setup({ secret = "s", max_active = 2 })
    local a = assert(engine:enter("a", concert_id))
    local b = assert(engine:enter("b", concert_id))
    assert(engine:hold(a.token, schedule_id, { 1, 2 }))
    local r, err, detail = engine:hold(b.token, schedule_id, { 2, 3 })
    eq(r, nil)
    eq(err, "seat_unavailable")
    eq(detail.conflicts[1], 2, "conflicting seat")
    eq(#detail.conflicts, 1)
    r, err = engine:hold("garbage", schedule_id, { 5 })
    eq(err, "invalid_token")
    r, err = engine:concert(424242)
    eq(err, "not_found")
    r, err = engine:charge("a", 0)
    eq(err, "invalid_argument")
    r, err = engine:hold(a.token, 999, { 5 })
    eq(r, nil)
    assert(err == "not_found" or err == "invalid_argument", err)
    eq(concert.error_name(-5), "seat_unavailable")
    r, err = concert.open({ store = "bogus:" })
    eq(r, nil)
    eq(err, "invalid_argument")
    engine:close()
end)

test("bad arguments raise", function()
    local engine, concert_id = setup()
    assert(not pcall(engine.enter, engine, 42, concert_id), "user id must be a string")
    assert(not pcall(engine.enter, engine, "u", "one"), "concert id must be a number")
    assert(not pcall(engine.enter, engine, "u", 1.5), "concert id must be an integer")
    assert(not pcall(engine.hold, engine, "t", 1, "3"), "seats must be a table")
    assert(not pcall(engine.hold, engine, "t", 1, { "x" }), "seat numbers must be integers")
    assert(not pcall(engine.add_seats, engine, 1, { { seat_no = 1 } }), "specs need price and grade")
    assert(not pcall(concert.open, { secret = 5 }), "secret must be a string")
    engine:close()
    assert(not engine:is_open())
    local ok, err = pcall(engine.concerts, engine)
    assert(not ok and tostring(err):find("closed"), "closed engine: " .. tostring(err))
    engine:close()  -- twice is fine
end)

test("sign and verify tokens without an engine", function()
    local secret = "edge-secret"
    local now = 1700000000000
    local token = assert(concert.sign(secret, { token_id = 7, concert_id = 3, user_id = "carol",
        issued_at = now - 1000, kind = "active", active_until = now + 60000 }))
    local claims = assert(concert.verify(token, secret, 3, now))
    eq(claims.user_id, "carol")
    eq(claims.token_id, 7)
    local r, err = concert.verify(token, secret, 3, now + 120000)
    eq(err, "expired")
    r, err = concert.verify(token, "other", 3, now)
    eq(err, "invalid_token")
    r, err = concert.verify(token, secret, 4, now)
    eq(err, "invalid_token", "foreign concert")
    local waiting = assert(concert.sign(secret, { token_id = 8, concert_id = 3, user_id = "dave",
        issued_at = now, kind = "waiting" }))
    r, err = concert.verify(waiting, secret, 3, now)
    eq(err, "token_not_active")
end)

test("engines are freed by the GC", function()
    for _ = 1, 50 do
        local e = assert(concert.open())
        assert(e:add_concert("x", 0, 1))
    end
    collectgarbage()
    collectgarbage()
end)

h.done()

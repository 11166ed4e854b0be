-- resty.concert's verify under plain luajit, outside nginx: the FFI path
-- an edge runs, against tokens signed by the SWIG module. Needs CONCERT_LIB
-- (or libconcert.so on package.cpath / the loader's path).
local concert = require "concert"
local resty = require "resty.concert"

local h = require "harness"
local test, eq = h.test, h.eq

local SECRET = "resty-secret-0123456789"
local NOW = 1700000000000
local function sign(fields, secret)
    local claims = { token_id = 11, concert_id = 1, user_id = "erin", issued_at = NOW - 5000,
        kind = "ACTIVE", active_until = NOW + 600000 }
    for k, v in pairs(fields or {}) do claims[k] = v end
    return assert(concert.sign(secret or SECRET, claims))
end
local opts = { secret = SECRET, concert_id = 1, now = NOW }

test("init finds the library", function()
    assert(resty.init())
    eq(resty.lib_version, concert.version)
    local ok, err = resty.init({ lib = "/nonexistent/libconcert.so" })
    eq(ok, nil)
    assert(err:find("cannot load"), err)
    assert(resty.init())
end)

test("valid token", function()
    local claims = assert(resty.verify(sign(), opts))
    eq(claims.user_id, "erin")
    eq(claims.token_id, 11)
    eq(claims.concert_id, 1)
    eq(claims.kind, "ACTIVE")
    eq(claims.active_until, NOW + 600000)
end)

test("missing", function()
    local r, why = resty.verify(nil, opts)
    eq(r, nil)
    eq(why, "missing")
    r, why = resty.verify("", opts)
    eq(why, "missing")
end)

test("tampered", function()
    local token = sign()
    local dot = token:find(".", 1, true)
    -- flip one character of the claims and one of the mac
    local c = token:sub(dot - 1, dot - 1)
    local tampered = token:sub(1, dot - 2) .. (c == "A" and "B" or "A") .. token:sub(dot)
    local _, why = resty.verify(tampered, opts)
    eq(why, "forged", "claims tampered")
    local last = token:sub(-1)
    _, why = resty.verify(token:sub(1, -2) .. (last == "A" and "B" or "A"), opts)
    eq(why, "forged", "mac tampered")
    _, why = resty.verify(sign(nil, "another-secret"), opts)
    eq(why, "forged", "other secret")
end)

test("truncated and garbage", function()
    local token = sign()
    for _, n in ipairs({ 1, 5, math.floor(#token / 2), #token - 1 }) do
        local _, why = resty.verify(token:sub(1, n), opts)
        eq(why, "forged", "truncated to " .. n)
    end
    local _, why = resty.verify(string.rep("x", 4000), opts)
    eq(why, "forged", "oversized")
    _, why = resty.verify("a.b.c", opts)
    eq(why, "forged")
    _, why = resty.verify("\0\1\2", opts)
    eq(why, "forged")
end)

test("foreign concert", function()
    local r, why, claims = resty.verify(sign({ concert_id = 2 }), opts)
    eq(r, nil)
    eq(why, "foreign")
    eq(claims.concert_id, 2)
    assert(resty.verify(sign({ concert_id = 2 }), { secret = SECRET, now = NOW }),
        "no concert_id: any concert")
end)

test("expired", function()
    local _, why = resty.verify(sign({ active_until = NOW - 1 }), opts)
    eq(why, "expired")
    _, why = resty.verify(sign(), { secret = SECRET, concert_id = 1, now = NOW + 600000 })
    eq(why, "expired", "at active_until")
end)

test("verified tokens are cached per secret, expiry judged each time", function()
    local token = sign({ active_until = NOW + 1000 })
    local first = assert(resty.verify(token, opts))
    local again = assert(resty.verify(token, opts))
    eq(again, first, "the second check is served from the cache")
    local _, why = resty.verify(token, { secret = SECRET, concert_id = 1, now = NOW + 1000 })
    eq(why, "expired", "a cached token still expires")
    _, why = resty.verify(token, { secret = "another-secret", concert_id = 1, now = NOW })
    eq(why, "forged", "another secret never sees the cached claims")
    _, why = resty.verify(token, { secret = SECRET, concert_id = 2, now = NOW })
    eq(why, "foreign", "the concert is checked on cached claims too")
end)

test("waiting", function()
    local _, why, claims = resty.verify(sign({ kind = "WAITING", active_until = 0 }), opts)
    eq(why, "not_active")
    eq(claims.user_id, "erin")
end)

test("secret_file and the real clock", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(SECRET .. "\n")
    f:close()
    local now = os.time() * 1000
    local token = sign({ issued_at = now - 1000, active_until = now + 60000 })
    local claims = assert(resty.verify(token, { secret_file = path, concert_id = 1 }))
    eq(claims.user_id, "erin")
    os.remove(path)
    assert(not pcall(resty.verify, token, { secret_file = "/nonexistent/secret" }))
end)

test("many verifications (JIT-compiled loop)", function()
    local token = sign()
    for _ = 1, 20000 do
        assert(resty.verify(token, opts))
    end
end)

h.done()

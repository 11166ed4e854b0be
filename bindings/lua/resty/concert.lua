--- resty.concert: queue-token checks at the edge (OpenResty / lua-nginx-module).
--
-- LuaJIT FFI over libconcert.so's concert_token_verify: the secret and the
-- clock are all it needs, so a worker rejects forged, foreign and expired
-- tokens without a backend round trip and without blocking. The claims go
-- into one caller-allocated struct per worker (ffi.new, owned by the GC);
-- no C object is allocated, so there is nothing to free.
--
--   init_by_lua_block { require("resty.concert").init{ lib = "/usr/lib/.../libconcert.so" } }
--   access_by_lua_block {
--       require("resty.concert").access{ secret_file = "/etc/concert/secret", concert_id = 1 }
--   }
local ffi = require "ffi"

local C_DEF = [[
typedef struct concert_token_claims {
    int64_t token_id;
    int64_t concert_id;
    int64_t issued_at;
    int64_t active_until;
    int32_t kind;
    char user_id[65];
} concert_token_claims;
int concert_token_verify(concert_token_claims *out, const char *token, size_t token_len,
    const char *secret, size_t secret_len, int64_t concert_id, int64_t now);
const char *concert_version(void);
]]
pcall(ffi.cdef, C_DEF)  -- a second copy of this module (package.loaded cleared) must not fail

local CONCERT_EEXPIRED = -6
local CONCERT_ENOT_ACTIVE = -8
local TOKEN_MAX = 255

local ngx = ngx  -- nil outside nginx
local tonumber, type = tonumber, type

local M = { _VERSION = "0.1.0" }

local lib        -- the ffi.load()ed libconcert
local claims = ffi.new("concert_token_claims")
local secrets = {}  -- secret_file path -> contents, read once per worker

-- Candidate paths: explicit, $CONCERT_LIB, then package.cpath's directories.
local function find_library(path)
    if path then
        return path
    end
    local env = os.getenv("CONCERT_LIB")
    if env and env ~= "" then
        return env
    end
    for dir in package.cpath:gmatch("([^;]*)/%?[^;]*") do
        for _, name in ipairs({ "libconcert.so", "libconcert.so.0" }) do
            local candidate = dir .. "/" .. name
            local f = io.open(candidate, "rb")
            if f then
                f:close()
                return candidate
            end
        end
    end
    return "concert"  -- let the dynamic loader search (LD_LIBRARY_PATH, ld.so.cache)
end

--- Loads libconcert. opts.lib: path of libconcert.so (default: $CONCERT_LIB,
-- then package.cpath's directories, then the loader's search path).
-- Returns true, or nil, err. Call from init_by_lua so workers inherit it.
function M.init(opts)
    opts = opts or {}
    local ok, loaded = pcall(ffi.load, find_library(opts.lib))
    if not ok then
        return nil, "cannot load libconcert: " .. tostring(loaded)
    end
    lib = loaded
    M.lib_version = ffi.string(lib.concert_version())
    return true
end

local function read_secret(path)
    local secret = secrets[path]
    if secret then
        return secret
    end
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    secret = f:read("*a")
    f:close()
    -- A file written by `echo` ends with a newline that is not part of the key,
    -- which is what concert-http-server --secret-file does too.
    secret = secret:gsub("[\r\n]+$", "")
    if secret == "" then
        return nil, path .. ": empty secret"
    end
    secrets[path] = secret
    return secret
end

local function now_ms()
    if ngx then
        return ngx.now() * 1000
    end
    return os.time() * 1000
end

-- Genuine tokens already verified, per secret: token -> claims table. A
-- client sends the same token with every request, and the claims are a
-- pure function of token and secret, so only expiry is judged again. Forged
-- tokens are never cached (a flood of them cannot fill the cache), and a
-- full cache starts over rather than grow.
local CACHE_MAX = 10000
local caches = {}

local function cached_claims(secret)
    local cache = caches[secret]
    if not cache or cache.n >= CACHE_MAX then
        cache = { n = 0, tokens = {} }
        caches[secret] = cache
    end
    return cache
end

--- Verifies a queue token locally (signature, concert, expiry; no storage).
-- opts: secret or secret_file, concert_id (0 or nil: any concert), now (ms;
-- default ngx.now() or os.time()). Returns a claims table
-- {token_id, concert_id, user_id, issued_at, active_until, kind="ACTIVE"},
-- or nil, reason: "missing", "forged" (malformed, truncated, tampered or
-- another secret), "foreign" (another concert), "expired", "not_active"
-- (still WAITING); the claims come third when the signature is valid.
-- The claims table may be shared with later calls: treat it as read-only.
function M.verify(token, opts)
    if not lib then
        local ok, err = M.init()
        if not ok then
            error(err, 2)
        end
    end
    if type(token) ~= "string" or token == "" then
        return nil, "missing"
    end
    if #token > TOKEN_MAX then
        return nil, "forged"
    end
    local secret = opts.secret
    if not secret then
        if not opts.secret_file then
            error("resty.concert: opts.secret or opts.secret_file is required", 2)
        end
        local err
        secret, err = read_secret(opts.secret_file)
        if not secret then
            error("resty.concert: no secret: " .. tostring(err), 2)
        end
    end
    local now = opts.now or now_ms()
    local cache = cached_claims(secret)
    local result = cache.tokens[token]
    local rc
    if result then
        -- As concert_token_verify judges it: expired at active_until.
        if result.kind ~= "ACTIVE" then
            rc = CONCERT_ENOT_ACTIVE
        elseif result.active_until <= now then
            rc = CONCERT_EEXPIRED
        else
            rc = 0
        end
    else
        -- concert_id 0: the library checks signature and time only; the
        -- concert is compared here so that "foreign" can be told from "forged".
        rc = lib.concert_token_verify(claims, token, #token, secret, #secret, 0, now)
        -- The claims are written only when the signature is valid: read them
        -- for these three codes and no other.
        if rc ~= 0 and rc ~= CONCERT_EEXPIRED and rc ~= CONCERT_ENOT_ACTIVE then
            return nil, "forged"
        end
        result = {
            token_id = tonumber(claims.token_id),
            concert_id = tonumber(claims.concert_id),
            user_id = ffi.string(claims.user_id),
            issued_at = tonumber(claims.issued_at),
            active_until = tonumber(claims.active_until),
            kind = claims.kind == 2 and "ACTIVE" or "WAITING",
        }
        cache.tokens[token] = result
        cache.n = cache.n + 1
    end
    local want = opts.concert_id
    if want and want ~= 0 and result.concert_id ~= want then
        return nil, "foreign", result
    end
    if rc == CONCERT_EEXPIRED then
        return nil, "expired", result
    end
    if rc == CONCERT_ENOT_ACTIVE then
        return nil, "not_active", result
    end
    return result
end

-- reason -> status, error name (as the HTTP API's bodies), message.
local REJECT = {
    missing = { 401, "invalid_token", "missing queue token" },
    forged = { 401, "invalid_token", "forged or malformed queue token" },
    foreign = { 401, "invalid_token", "queue token for another concert" },
    expired = { 401, "expired", "queue token expired; enter the queue again" },
    not_active = { 403, "token_not_active", "queue token not active yet" },
}
M.REJECT = REJECT

-- opts table -> "http_x_queue_token": computed once per configuration.
local header_vars = setmetatable({}, { __mode = "k" })

--- The access_by_lua handler: checks the request's token header and
-- answers 401 (missing, forged, foreign, expired) or 403 (waiting) with a
-- JSON error body, or lets the request through with the user id in
-- opts.user_header, replacing any client-sent one (a rejected request
-- goes nowhere), so the upstream can trust it.
-- opts: as verify, plus header (default "X-QUEUE-TOKEN") and user_header
-- (default "X-Concert-User").
function M.access(opts)
    local var = header_vars[opts]
    if not var then
        var = "http_" .. (opts.header or "X-QUEUE-TOKEN"):lower():gsub("-", "_")
        header_vars[opts] = var
    end
    local token = ngx.var[var]
    local result, reason = M.verify(token, opts)
    if result then
        -- Replaces whatever the client sent under that name.
        ngx.req.set_header(opts.user_header or "X-Concert-User", result.user_id)
        return result
    end
    local reject = REJECT[reason]
    ngx.status = reject[1]
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    ngx.say('{"error":"', reject[2], '","message":"', reject[3], '"}')
    return ngx.exit(reject[1])
end

return M

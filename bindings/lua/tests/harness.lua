-- The small runner the Lua binding's tests share (tests/ is on LUA_PATH):
-- test(name, fn) runs fn and reports it, eq compares, done() prints the
-- tally and exits non-zero if any test failed.
local M = {}
local failures, count = 0, 0

function M.test(name, fn)
    count = count + 1
    local ok, err = pcall(fn)
    if ok then
        print("ok   " .. name)
    else
        failures = failures + 1
        print("FAIL " .. name .. ": " .. tostring(err))
    end
end

function M.eq(got, want, what)
    if got ~= want then
        error(string.format("%s: got %s, want %s", what or "value", tostring(got), tostring(want)), 2)
    end
end

function M.done()
    print(string.format("%d/%d passed", count - failures, count))
    os.exit(failures == 0 and 0 or 1)
end

return M

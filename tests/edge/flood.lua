-- wrk script: POST /v1/holds with a different forged X-QUEUE-TOKEN each
-- time; every thread stops after its share of EDGE_FLOOD_REQUESTS answers.
-- (wrk still runs for its -d duration; that bounds the run.)
-- Prints "statuses <code>=<count> ..." for the test to parse.
local threads = {}
local quota = math.ceil(tonumber(os.getenv("EDGE_FLOOD_REQUESTS") or "10000") /
                        tonumber(os.getenv("EDGE_FLOOD_THREADS") or "2"))

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

function init()
    answered = 0
    statuses = {}
    math.randomseed(id * 7919)
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function forged()
    local t = {}
    for i = 1, 60 do
        local k = math.random(#alphabet)
        t[i] = alphabet:sub(k, k)
    end
    t[30] = "."
    return table.concat(t)
end

function request()
    return wrk.format("POST", "/v1/holds", {
        ["X-QUEUE-TOKEN"] = forged(),
        ["Content-Type"] = "application/json",
        ["X-Request-Id"] = "edge-flood",
    }, '{"scheduleId":1,"seatNos":[1]}')
end

function response(status)
    statuses[status] = (statuses[status] or 0) + 1
    answered = answered + 1
    if answered >= quota then
        wrk.thread:stop()
    end
end

function done()
    local total = {}
    for _, thread in ipairs(threads) do
        local s = thread:get("statuses")
        for code, n in pairs(s) do
            total[code] = (total[code] or 0) + n
        end
    end
    local parts = {}
    for code, n in pairs(total) do
        parts[#parts + 1] = code .. "=" .. n
    end
    io.write("statuses " .. table.concat(parts, " ") .. "\n")
end

-- wrk script for bench/bench_http.sh: a POST /v1/holds -> DELETE /v1/holds/{id}
-- cycle. Each slot is one user (its own ACTIVE queue token) and one seat,
-- so the cycle never conflicts. The server echoes X-Request-Id, which tells
-- response() which slot an answer belongs to.
-- Reads BENCH_TOKENS (lines "token scheduleId seatNo") and BENCH_THREADS.

local tokens_file = os.getenv("BENCH_TOKENS")
local threads_total = tonumber(os.getenv("BENCH_THREADS") or "2")

local thread_list, created = {}, 0
function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(thread_list, thread)
end

local slots, by_name, next_slot = {}, {}, 1
fallbacks, unexpected = 0, 0

function init(args)
  local i = 0
  for line in io.lines(tokens_file) do
    if i % threads_total == id then
      local token, schedule, seat = line:match("^(%S+) (%d+) (%d+)$")
      local slot = { name = "slot-" .. i, token = token, schedule = schedule, seat = seat }
      slots[#slots + 1] = slot
      by_name[slot.name] = slot
    end
    i = i + 1
  end
end

function request()
  for _ = 1, #slots do
    local s = slots[next_slot]
    next_slot = next_slot % #slots + 1
    if not s.busy then
      s.busy = true
      local headers = { ["X-QUEUE-TOKEN"] = s.token, ["X-Request-Id"] = s.name }
      if s.hold then
        return wrk.format("DELETE", "/v1/holds/" .. s.hold, headers)
      end
      headers["Content-Type"] = "application/json"
      return wrk.format("POST", "/v1/holds", headers,
        '{"scheduleId":' .. s.schedule .. ',"seatNos":[' .. s.seat .. ']}')
    end
  end
  -- Every slot has a request in flight (more connections than slots).
  fallbacks = fallbacks + 1
  return wrk.format("GET", "/health")
end

function response(status, headers, body)
  local s = by_name[headers["X-Request-Id"]]
  if not s then
    return
  end
  s.busy = false
  if status == 201 then
    s.hold = body:match('"holdId":(%d+)')
  elseif status == 204 then
    s.hold = nil
  else
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local f, u = 0, 0
  for _, t in ipairs(thread_list) do
    f = f + t:get("fallbacks")
    u = u + t:get("unexpected")
  end
  io.write(string.format("holds-bench fallbacks=%d unexpected=%d\n", f, u))
end

-- mtpaas: GET /api/users rotating over tenants, each request with its tenant's JWT.
-- Arguments (after --): TOKENS_FILE ("tenant jwt" per line) and the thread count.
-- Each thread starts at its own offset in the list.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "report"

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local reqs = {}
local idx = 1

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local t, tok = line:match("^(%S+) (%S+)$")
    if t then
      reqs[#reqs + 1] = wrk.format("GET", "/api/users",
        { ["X-Tenant-ID"] = t, ["Authorization"] = "Bearer " .. tok })
    end
  end
  f:close()
  assert(#reqs > 0, "no tokens in " .. args[1])
  local threads = tonumber(args[2] or "2")
  idx = (id * math.floor(#reqs / threads)) % #reqs + 1
end

function request()
  local r = reqs[idx]
  idx = idx % #reqs + 1
  return r
end

function done(summary, latency, requests)
  bench_done(summary, latency, requests)
end

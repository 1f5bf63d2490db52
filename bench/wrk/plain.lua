-- The baseline: GET /api/users with no headers.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "report"

wrk.method = "GET"
wrk.path = "/api/users"

function done(summary, latency, requests)
  bench_done(summary, latency, requests)
end

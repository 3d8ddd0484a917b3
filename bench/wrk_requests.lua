-- wrk script of the benches (bench/_harness.py): each thread sends, in order, the raw HTTP
-- requests pre-built in its own file ($BENCH_REQUESTS.<thread>, lengths in .len), so no two
-- threads send the same one. Past its slice a thread sends GET /healthz (counted as
-- "wrapped": the bench then says its pool was too small). done() writes the figures as JSON
-- to $BENCH_OUT.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

local requests = {}
local n = 0
local i = 0
issued = 0
wrapped = 0
local fallback = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
local wrap = os.getenv("BENCH_WRAP") == "1"

function init(args)
   local prefix = os.getenv("BENCH_REQUESTS") .. "." .. id
   local f = assert(io.open(prefix, "rb"))
   local data = f:read("*a")
   f:close()
   local pos = 1
   for line in io.lines(prefix .. ".len") do
      local len = tonumber(line)
      if len then
         n = n + 1
         requests[n] = data:sub(pos, pos + len - 1)
         pos = pos + len
      end
   end
end

function request()
   if i < n then
      i = i + 1
      issued = i
      return requests[i]
   end
   wrapped = wrapped + 1
   if wrap then
      i = 1
      return requests[1]
   end
   return fallback
end

function done(summary, latency, requests_)
   local issued_all, wrapped_all = 0, 0
   for _, t in ipairs(threads) do
      issued_all = issued_all + t:get("issued")
      wrapped_all = wrapped_all + t:get("wrapped")
   end
   local e = summary.errors
   local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
   out:write(string.format(
      '{"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, "max": %d, ' ..
      '"issued": %d, "wrapped": %d, "errors": {"connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d}}',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
      latency:percentile(99), latency.max, issued_all, wrapped_all,
      e.connect, e.read, e.write, e.status, e.timeout))
   out:close()
end

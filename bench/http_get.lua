-- wrk script: one GET route with a bearer token per connection.
--   wrk -tN -cN -d10s --latency -s bench/http_get.lua http://HOST:PORT -- PATH TOKEN1 .. TOKENN
-- Unlike bench/http_cycle.lua, a thread may have several connections (one
-- wrk thread per core): thread i takes token i for all of them.

local threads = 0

function setup(thread)
	threads = threads + 1
	thread:set("id", threads)
end

local req

function init(args)
	local token = args[id + 1]
	if not token then
		error("no token for thread " .. id .. ": pass one per thread")
	end
	req = wrk.format("GET", args[1], {["Authorization"] = "Bearer " .. token})
end

function request()
	return req
end

-- One line for bench/bench.sh: requests/s, p50 and p99 in ms, failed requests.
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.status + e.connect + e.read + e.write + e.timeout))
end

-- wrk script: reserve + release cycles over HTTP.
--   wrk -tN -cN -d10s --latency -s bench/http_cycle.lua http://HOST:PORT -- TOKEN1 .. TOKENN
-- One connection per thread (-t = -c), so a thread is a connection: it takes
-- its own token (bench/bench.sh logs in bench1..benchN once each before wrk
-- starts; wrk's Lua cannot make a request of its own), and its requests and
-- answers strictly alternate.  A reserve answer queues its code; the next
-- request releases it, else reserves one.  One cycle = two requests.

local threads = 0

function setup(thread)
	threads = threads + 1
	thread:set("id", threads)
end

local token
local held
local status_errors = 0

function init(args)
	token = args[id]
	if not token then
		error("no token for connection " .. id .. ": pass one per connection")
	end
end

local function headers()
	return {["Authorization"] = "Bearer " .. token,
	        ["Content-Type"] = "application/json"}
end

function request()
	if held then
		local code = held
		held = nil
		return wrk.format("POST", "/users/release", headers(), '{"code": "' .. code .. '"}')
	end
	return wrk.format("POST", "/users/reserve", headers(), '{"tester_name": "wrk"}')
end

function response(status, _, body)
	if status ~= 200 then
		return
	end
	if body:find('"reservation_token"', 1, true) then
		held = body:match('"code"%s*:%s*"([^"]+)"')
	end
end

-- One line for bench/bench.sh: cycles/s, p50 and p99 of a request (half a
-- cycle) in ms, and the failed requests (non-2xx, socket errors).
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
		summary.requests / 2 / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.status + e.connect + e.read + e.write + e.timeout))
end

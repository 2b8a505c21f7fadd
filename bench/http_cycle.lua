-- wrk script: reserve + release cycles over HTTP.
--   wrk -t2 -c32 -d15s --latency -s bench/http_cycle.lua http://HOST:PORT -- TOKEN...
-- bench/run.sh logs in once per connection beforehand (wrk's Lua cannot
-- make a request of its own) and passes the tokens; each request takes the
-- next token.  A reserve answer queues its code; the next request releases
-- a queued code, else reserves one: the requests alternate.

local tokens = {}
local next_token = 0
local queued = {}
local errors = 0

function init(args)
	for _, t in ipairs(args) do
		tokens[#tokens + 1] = t
	end
end

local function auth()
	next_token = next_token % #tokens + 1
	return {["Authorization"] = "Bearer " .. tokens[next_token],
	        ["Content-Type"] = "application/json"}
end

function request()
	local code = table.remove(queued)
	if code then
		return wrk.format("POST", "/users/release", auth(), '{"code": "' .. code .. '"}')
	end
	return wrk.format("POST", "/users/reserve", auth(), '{"tester_name": "wrk"}')
end

function response(status, headers, body)
	if status ~= 200 then
		errors = errors + 1
		return
	end
	if body:find('"reservation_token"', 1, true) then
		queued[#queued + 1] = body:match('"code"%s*:%s*"([^"]+)"')
	end
end

function done(summary, latency, requests)
	io.write(string.format("cycles/s %.0f (requests/s %.0f), non-200 %d, p50 %.2f ms, p99 %.2f ms\n",
		summary.requests / 2 / (summary.duration / 1e6),
		summary.requests / (summary.duration / 1e6),
		summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

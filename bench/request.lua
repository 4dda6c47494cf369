-- wrk script: replays request lines picked at random, counts answers outside 2xx, prints one JSON summary.
--
-- Usage: wrk ... -s request.lua URL -- LINES_FILE
-- Each line of LINES_FILE is METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY (BODY may be empty). "%R" in a body is
-- replaced by a random number per request, so writes do not repeat each other.
-- With BENCH_SPLIT="host:port,host:port,..." in the environment, wrk's thread i (and so its connections) loads
-- the ((i - 1) mod n + 1)-th of those servers instead of URL's: several instances, one summary.

local threads = {}
local next_id = 1
local split = os.getenv("BENCH_SPLIT")

function setup(thread)
  thread:set("id", next_id)
  if split and split ~= "" then
    local targets = {}
    for host, port in split:gmatch("([^,:]+):(%d+)") do
      table.insert(targets, { host = host, port = port })
    end
    local target = targets[(next_id - 1) % #targets + 1]
    thread.addr = wrk.lookup(target.host, target.port)[1]
  end
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    local method, path, token, body = line:match("^(%S+)\t(%S+)\t(%S+)\t(.*)$")
    if method then
      table.insert(lines, { method = method, path = path, auth = "Bearer " .. token, body = body })
    end
  end
  if #lines == 0 then
    error("no request lines in " .. args[1])
  end
  math.randomseed(os.time() * 1000 + id)
  non2xx = 0
  last_bad = 0
end

function request()
  local r = lines[math.random(#lines)]
  local headers = { ["Authorization"] = r.auth }
  local body = nil
  if r.body ~= "" then
    body = (r.body:gsub("%%R", tostring(math.random(1, 1000000000))))
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(r.method, r.path, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_bad = status
  end
end

function done(summary, latency, requests)
  local bad, last = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    local status = thread:get("last_bad")
    if status ~= 0 then
      last = status
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "non2xx": %d,'
      .. ' "last_bad_status": %d, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max, bad, last,
    e.connect + e.read + e.write, e.timeout))
end

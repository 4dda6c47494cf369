-- wrk script: real deltas, each at the length its reply's last answer gave (bench/delta_wrk.py).
--
-- Usage: wrk ... -s delta.lua URL -- LINES_FILE
-- LINES_FILE: a first line "#threads<TAB>N" (wrk's -t), then one in_progress reply per line:
-- DELTAS_PATH<TAB>TOKEN<TAB>MESSAGE_ID. wrk thread i takes the lines i, i + N, … as its pool. wrk does not tell
-- which connection an answer came on, so a reply is taken from the pool when a delta is sent and put back, at
-- the `length` of the answer (which names the message), when the 200 comes: no reply has two deltas in
-- flight, and every delta is an append at the stored length, never a retry of one stored. The pool must be
-- larger than the thread's connections; a reply whose answer was not 200 stays out of it. Should the pool run
-- dry, the request goes to a path that answers 404, counted with the non-2xx: the run then does not count.
-- Prints the summary line of request.lua.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local count = 1
  local all = {}
  for line in io.lines(args[1]) do
    local n = line:match("^#threads\t(%d+)$")
    if n then
      count = tonumber(n)
    else
      local path, token, message = line:match("^(%S+)\t(%S+)\t(%S+)$")
      if path then
        table.insert(all, { path = path, auth = "Bearer " .. token, message = message, offset = 0 })
      end
    end
  end
  pool, head, tail, replies = {}, 1, 0, {}
  for i, reply in ipairs(all) do
    if (i - 1) % count == id - 1 then
      replies[reply.message] = reply
      tail = tail + 1
      pool[tail] = reply
    end
  end
  if tail == 0 then
    error("no replies for wrk thread " .. id .. " in " .. args[1])
  end
  text = "Streaming reply text, forty characters. "
  non2xx = 0
  last_bad = 0
end

function request()
  if head > tail then
    return wrk.format("GET", "/bench-delta-pool-empty")
  end
  local reply = pool[head]
  pool[head] = nil
  head = head + 1
  local body = '{"offset": ' .. reply.offset .. ', "text": "' .. text .. '"}'
  local headers = { ["Authorization"] = reply.auth, ["Content-Type"] = "application/json" }
  return wrk.format("POST", reply.path, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_bad = status
    return
  end
  local message = body:match('"message_id"%s*:%s*"([^"]+)"')
  local length = body:match('"length"%s*:%s*(%d+)')
  local reply = message and replies[message]
  if reply and length then
    reply.offset = tonumber(length)
    tail = tail + 1
    pool[tail] = reply
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

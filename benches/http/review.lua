-- wrk script: POST /v1/applications/{id}/review, approving each submitted application once,
-- each request with its own Idempotency-Key, as county reviewers would send them.
-- Usage: wrk ... -s review.lua URL -- TOKEN IDS_FILE
-- IDS_FILE holds one application id per line; wrk's threads take every other line each, so no
-- application is approved twice. Once a thread has used its lines it sends nothing new: it
-- repeats its last review under a new key (answered 409 invalid_state: a non-2xx response).

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  ids = {}
  local n = 0
  for line in io.lines(args[2]) do
    if n % 2 == tid then table.insert(ids, line) end
    n = n + 1
  end
  next_id = 0
  sent = 0
end

request = function()
  if next_id < #ids then next_id = next_id + 1 end
  local id = ids[next_id]
  sent = sent + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = "approve-" .. tid .. "-" .. sent,
  }
  return wrk.format("POST", "/v1/applications/" .. id .. "/review", headers, '{"decision":"approve"}')
end

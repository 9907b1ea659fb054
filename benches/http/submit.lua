-- wrk script: POST /v1/applications, one new person per request (a valid resident ID number
-- with its GB 11643 check character), each with its own Idempotency-Key, as a county system
-- would send them. Usage: wrk ... -s submit.lua URL -- TOKEN [BATCH]
-- With BATCH > 0, each request is POST /v1/batch with BATCH submissions.

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local counter = 0
local W = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local C = {"1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"}

function init(args)
  token = args[1]
  batch = tonumber(args[2] or "0")
  run = args[3] or tostring(os.time())
  -- Batches draw persons of their own: the single requests' persons have a submission already
  -- (a second one is refused, 409), and both runs use the same threads' numbers.
  if batch > 0 then counter = 200000 end
end

local function id_number(n)
  local seq = n % 1000
  local day = math.floor(n / 1000) % 28 + 1
  local month = math.floor(n / 28000) % 12 + 1
  local year = 1940 + tid * 30 + math.floor(n / 336000)
  local body = string.format("371502%04d%02d%02d%03d", year, month, day, seq)
  local sum = 0
  for i = 1, 17 do sum = sum + tonumber(body:sub(i, i)) * W[i] end
  return body .. C[(sum % 11) + 1]
end

local function application(n)
  return '{"program":"vocational_training","county":"371502","submitted_on":"2024-10-20",' ..
    '"applicant":{"id_number":"' .. id_number(n) .. '","name":"王小五"},' ..
    '"eligibility":{"receiving_unemployment_benefit":true},' ..
    '"training":{"catalog":"urgent","occupation_code":"4-10-01-05","level":5,' ..
    '"assessment":"certificate","class_start_on":"2024-09-10","hours":40}}'
end

request = function()
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  if batch > 0 then
    local items = {}
    for i = 1, batch do
      counter = counter + 1
      items[i] = '{"path":"/v1/applications","idempotency_key":"' .. run .. "-" .. tid .. "-" .. counter ..
        '","body":' .. application(counter) .. '}'
    end
    return wrk.format("POST", "/v1/batch", headers, '{"requests":[' .. table.concat(items, ",") .. ']}')
  end
  counter = counter + 1
  headers["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter
  return wrk.format("POST", "/v1/applications", headers, application(counter))
end

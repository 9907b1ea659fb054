-- wrk script: the reads a county office and a finance bureau make while others write:
-- the application list, the spending report, the pool's notices of the county, liveness.
-- Usage: wrk ... -s read.lua URL -- TOKEN
local paths = {
  "/v1/applications?county=371502&limit=20",
  "/v1/applications?county=371502&status=payout_issued&limit=20",
  "/v1/reports/spending?pool=371500&year=2024",
  "/healthz",
}
local i = 0
function init(args) token = args[1] end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {["Authorization"] = "Bearer " .. token})
end

-- GetItem of random items among the first ITEMS written by put.lua's first thread; misses are
-- counted and reported.
local items = tonumber(os.getenv("ITEMS") or "20000")
misses = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0)) end
function request()
  local k = math.random(1, items - 1) -- wrk builds (and drops) one request per thread before the run: item 0 may be missing
  local body = string.format('{"TableName":"wtab","Key":{"pk":{"S":"p1-%d"},"sk":{"N":"%d"}}}', math.floor(k / 100), k % 100)
  return wrk.format("POST", "/", {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "DynamoDB_20120810.GetItem"}, body)
end
function response(status, hdrs, body)
  if status == 200 and not body:find('"Item"') then misses = misses + 1 end
end
function done()
  local m = 0
  for _, t in ipairs(threads) do m = m + t:get("misses") end
  io.write(string.format("get_misses %d\n", m))
end

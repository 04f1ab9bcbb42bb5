-- PutItem of items under random keys (pk a random 32-bit hex string, as a UUID spreads keys;
-- sk 0–99; ~100 bytes) into table `wtab`: the writes land all over the table, not next to
-- each other as put.lua's counting keys do.
local n = 0
function init() math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0)) end
function request()
  local body = string.format(
    '{"TableName":"wtab","Item":{"pk":{"S":"r%08x"},"sk":{"N":"%d"},"n":{"N":"%d"},"pad":{"S":"%s"}}}',
    math.random(0, 2147483647), n % 100, n, string.rep("y", 64))
  n = n + 1
  return wrk.format("POST", "/", {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "DynamoDB_20120810.PutItem"}, body)
end

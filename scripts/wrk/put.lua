-- PutItem of fresh items (pk "p<thread>-<n/100>", sk n%100, ~100 bytes) into table `wtab`.
local n, counter = 0, 0
tid = 0 -- set per thread by setup()
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function request()
  local body = string.format(
    '{"TableName":"wtab","Item":{"pk":{"S":"p%d-%d"},"sk":{"N":"%d"},"n":{"N":"%d"},"pad":{"S":"%s"}}}',
    tid, math.floor(n / 100), n % 100, n, string.rep("y", 64))
  n = n + 1
  return wrk.format("POST", "/", {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "DynamoDB_20120810.PutItem"}, body)
end

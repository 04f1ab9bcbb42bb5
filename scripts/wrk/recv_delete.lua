-- ReceiveMessage (up to 10); each answer's receipt handles go back as one DeleteMessageBatch,
-- the thread's next request. Failed deletes are counted and reported.
-- The handles are found with plain `string.find` (LuaJIT compiles it; a `gmatch` pattern runs
-- in its interpreter and made this script cost wrk ~25 us a request against ~12 us now, on a
-- 2-core machine where wrk shares the cores with the server: see docs/benchmarks.md).
local url = os.getenv("QUEUE_URL")
local rh = {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "AmazonSQS.ReceiveMessage"}
local dh = {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "AmazonSQS.DeleteMessageBatch"}
local receive
-- Formatted once per thread, after wrk has set the Host header.
function init(args)
  receive = wrk.format("POST", "/", rh, '{"QueueUrl":"' .. url .. '","MaxNumberOfMessages":10,"VisibilityTimeout":120}')
end
local head = '{"QueueUrl":"' .. url .. '","Entries":['
local pending, np = {}, 0
failed = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function request()
  if np > 0 then
    local d = pending[np]
    pending[np] = nil
    np = np - 1
    return wrk.format("POST", "/", dh, d)
  end
  return receive
end
local find, sub = string.find, string.sub
local key = '"ReceiptHandle":"'
function response(status, hdrs, body)
  if status ~= 200 then return end
  local s, e = find(body, key, 1, true)
  if not s then
    if find(body, '"Failed":[{', 1, true) then failed = failed + 1 end
    return
  end
  local parts, n = {}, 0
  while s do
    local q = find(body, '"', e + 1, true)
    n = n + 1
    parts[n] = '{"Id":"d' .. n .. '","ReceiptHandle":"' .. sub(body, e + 1, q - 1) .. '"}'
    s, e = find(body, key, q + 1, true)
  end
  np = np + 1
  pending[np] = head .. table.concat(parts, ",") .. ']}'
end
function done()
  local f = 0
  for _, t in ipairs(threads) do f = f + t:get("failed") end
  io.write(string.format("failed_deletes %d\n", f))
end

-- ReceiveMessage (up to 10); each answer's receipt handles go back as one DeleteMessageBatch,
-- the thread's next request. Failed deletes are counted and reported.
local url = os.getenv("QUEUE_URL")
local headers = function(action)
  return {["Content-Type"] = "application/x-amz-json-1.0", ["X-Amz-Target"] = "AmazonSQS." .. action}
end
local receive = '{"QueueUrl":"' .. url .. '","MaxNumberOfMessages":10,"VisibilityTimeout":120}'
local pending = {}
failed = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function request()
  local d = table.remove(pending)
  if d then return wrk.format("POST", "/", headers("DeleteMessageBatch"), d) end
  return wrk.format("POST", "/", headers("ReceiveMessage"), receive)
end
function response(status, hdrs, body)
  if status ~= 200 then return end
  if body:find('"Failed":%[{') then failed = failed + 1 end
  local entries, n = {}, 0
  for h in body:gmatch('"ReceiptHandle":"(.-)"') do
    n = n + 1
    entries[n] = '{"Id":"d' .. n .. '","ReceiptHandle":"' .. h .. '"}'
  end
  if n > 0 then
    pending[#pending + 1] = '{"QueueUrl":"' .. url .. '","Entries":[' .. table.concat(entries, ",") .. ']}'
  end
end
function done()
  local f = 0
  for _, t in ipairs(threads) do f = f + t:get("failed") end
  io.write(string.format("failed_deletes %d\n", f))
end

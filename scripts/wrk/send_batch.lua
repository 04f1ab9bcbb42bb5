-- SendMessageBatch of 10 messages of 100 bytes to queue `wq` (JSON protocol).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessageBatch"
local entries = {}
for i = 1, 10 do
  entries[#entries + 1] = string.format('{"Id":"m%d","MessageBody":"%s"}', i, string.rep("x", 100))
end
wrk.body = '{"QueueUrl":"' .. os.getenv("QUEUE_URL") .. '","Entries":[' .. table.concat(entries, ",") .. ']}'

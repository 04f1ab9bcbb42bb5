-- SendMessage of one 100-byte message to queue `wq` (JSON protocol).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessage"
wrk.body = '{"QueueUrl":"' .. os.getenv("QUEUE_URL") .. '","MessageBody":"' .. string.rep("x", 100) .. '"}'

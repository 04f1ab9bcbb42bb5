#!/usr/bin/env python3
"""Write the seed corpus of every fuzz target into fuzz/corpus/<target>/.

The seeds are the requests and documents kedge's own tests send (the SDK tests' operations,
the engine tests' expressions, the examples' manifests and scenarios), so the fuzzer starts
from inputs that reach deep into each parser. Re-run after changing a harness's input format:
    python3 fuzz/make_seeds.py
SigV4 seeds are signed here (independently of kedge's verifier) with the AWS test suite's
key at the suite's date, the time the `sigv4` harness verifies at.
"""
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
SEP = "\n~~\n"
Q = "http://localhost:4566/000000000000/q"
QF = "http://localhost:4566/000000000000/q.fifo"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def j(v):
    return json.dumps(v, separators=(",", ":"))


def sqs_json():
    attrs = {
        "a": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": "AAEC"},
        "n": {"DataType": "Number.int", "StringValue": "12"},
    }
    reqs = {
        "create": ("CreateQueue", {"QueueName": "new", "Attributes": {"VisibilityTimeout": "5", "DelaySeconds": "0", "MessageRetentionPeriod": "60", "MaximumMessageSize": "1024", "ReceiveMessageWaitTimeSeconds": "1"}, "tags": {"k": "v"}}),
        "create-fifo": ("CreateQueue", {"QueueName": "new.fifo", "Attributes": {"FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId", "ContentBasedDeduplication": "false"}}),
        "send": ("SendMessage", {"QueueUrl": Q, "MessageBody": "hello", "DelaySeconds": 0, "MessageAttributes": attrs, "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}}}),
        "send-fifo": ("SendMessage", {"QueueUrl": QF, "MessageBody": "{\"id\":1}", "MessageGroupId": "g1", "MessageDeduplicationId": "d1"}),
        "send-batch": ("SendMessageBatch", {"QueueUrl": Q, "Entries": [{"Id": "a", "MessageBody": "one", "DelaySeconds": 1}, {"Id": "b", "MessageBody": "two", "MessageAttributes": attrs}]}),
        "receive": ("ReceiveMessage", {"QueueUrl": Q, "MaxNumberOfMessages": 10, "VisibilityTimeout": 0, "WaitTimeSeconds": 1, "AttributeNames": ["All"], "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"], "ReceiveRequestAttemptId": "x"}),
        "delete": ("DeleteMessage", {"QueueUrl": Q, "ReceiptHandle": "AQEBnotreal"}),
        "delete-batch": ("DeleteMessageBatch", {"QueueUrl": Q, "Entries": [{"Id": "a", "ReceiptHandle": "h1"}, {"Id": "b", "ReceiptHandle": "h2"}]}),
        "visibility": ("ChangeMessageVisibility", {"QueueUrl": Q, "ReceiptHandle": "h", "VisibilityTimeout": 30}),
        "visibility-batch": ("ChangeMessageVisibilityBatch", {"QueueUrl": Q, "Entries": [{"Id": "a", "ReceiptHandle": "h", "VisibilityTimeout": 43200}]}),
        "get-attrs": ("GetQueueAttributes", {"QueueUrl": Q, "AttributeNames": ["All"]}),
        "set-attrs": ("SetQueueAttributes", {"QueueUrl": Q, "Attributes": {"VisibilityTimeout": "60", "RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\",\"maxReceiveCount\":\"5\"}", "RedriveAllowPolicy": "{\"redrivePermission\":\"byQueue\",\"sourceQueueArns\":[\"arn:aws:sqs:us-east-1:000000000000:q\"]}", "Policy": "{}"}}),
        "list": ("ListQueues", {"QueueNamePrefix": "q", "MaxResults": 1, "NextToken": "x"}),
        "url": ("GetQueueUrl", {"QueueName": "q", "QueueOwnerAWSAccountId": "000000000000"}),
        "purge": ("PurgeQueue", {"QueueUrl": Q}),
        "delete-queue": ("DeleteQueue", {"QueueUrl": QF}),
        "tag": ("TagQueue", {"QueueUrl": Q, "Tags": {"team": "a", "env": "dev"}}),
        "untag": ("UntagQueue", {"QueueUrl": Q, "TagKeys": ["team"]}),
        "list-tags": ("ListQueueTags", {"QueueUrl": Q}),
        "dlq-sources": ("ListDeadLetterSourceQueues", {"QueueUrl": "http://localhost:4566/000000000000/dlq", "MaxResults": 10}),
        "move": ("StartMessageMoveTask", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "MaxNumberOfMessagesPerSecond": 10}),
        "list-moves": ("ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "MaxResults": 10}),
        "cancel-move": ("CancelMessageMoveTask", {"TaskHandle": "eyJ0YXNrSWQiOiIxIn0="}),
        "add-permission": ("AddPermission", {"QueueUrl": Q, "Label": "l", "AWSAccountIds": ["1"], "Actions": ["SendMessage"]}),
    }
    for name, (action, body) in reqs.items():
        write("sqs_json", name, f"{action}\n{j(body)}")
    # Sequences: a send, receives that redeliver past maxReceiveCount into the DLQ, FIFO order.
    write("sqs_json", "seq-redrive", SEP.join([
        f"SendMessage\n{j({'QueueUrl': Q, 'MessageBody': 'poison'})}",
        f"ReceiveMessage\n{j({'QueueUrl': Q, 'VisibilityTimeout': 0, 'MaxNumberOfMessages': 10})}",
        f"ReceiveMessage\n{j({'QueueUrl': Q, 'VisibilityTimeout': 0, 'MaxNumberOfMessages': 10})}",
        f"ReceiveMessage\n{j({'QueueUrl': Q, 'VisibilityTimeout': 0, 'MaxNumberOfMessages': 10})}",
        f"ReceiveMessage\n{j({'QueueUrl': 'http://localhost:4566/000000000000/dlq', 'AttributeNames': ['All']})}",
        f"StartMessageMoveTask\n{j({'SourceArn': 'arn:aws:sqs:us-east-1:000000000000:dlq'})}",
    ]))
    # $HANDLE: the receipt handle of the last message received (the harness fills it in).
    write("sqs_json", "seq-handles", SEP.join([
        f"ReceiveMessage\n{j({'QueueUrl': Q, 'VisibilityTimeout': 30})}",
        f"ChangeMessageVisibility\n{j({'QueueUrl': Q, 'ReceiptHandle': '$HANDLE', 'VisibilityTimeout': 0})}",
        f"ReceiveMessage\n{j({'QueueUrl': Q})}",
        f"ChangeMessageVisibilityBatch\n{j({'QueueUrl': Q, 'Entries': [{'Id': 'a', 'ReceiptHandle': '$HANDLE', 'VisibilityTimeout': 5}]})}",
        f"DeleteMessageBatch\n{j({'QueueUrl': Q, 'Entries': [{'Id': 'a', 'ReceiptHandle': '$HANDLE'}]})}",
        f"DeleteMessage\n{j({'QueueUrl': Q, 'ReceiptHandle': '$HANDLE'})}",
    ]))
    write("sqs_json", "seq-fifo", SEP.join([
        f"SendMessageBatch\n{j({'QueueUrl': QF, 'Entries': [{'Id': str(i), 'MessageBody': f'm{i}', 'MessageGroupId': 'g' + str(i % 2)} for i in range(4)]})}",
        f"ReceiveMessage\n{j({'QueueUrl': QF, 'MaxNumberOfMessages': 10, 'AttributeNames': ['All']})}",
        f"ReceiveMessage\n{j({'QueueUrl': QF, 'MaxNumberOfMessages': 1, 'VisibilityTimeout': 0})}",
        f"GetQueueAttributes\n{j({'QueueUrl': QF, 'AttributeNames': ['All']})}",
    ]))
    write("sqs_json", "empty-body", "ListQueues\n")
    write("sqs_json", "not-json", "SendMessage\n{\"QueueUrl\": ")
    write("sqs_json", "unknown-action", "Frobnicate\n{}")


def sqs_query():
    enc = urllib.parse.urlencode
    reqs = {
        "create": ("/", [("Action", "CreateQueue"), ("QueueName", "new"), ("Attribute.1.Name", "VisibilityTimeout"), ("Attribute.1.Value", "5"), ("Tag.1.Key", "k"), ("Tag.1.Value", "v"), ("Version", "2012-11-05")]),
        "create-fifo": ("/", [("Action", "CreateQueue"), ("QueueName", "n.fifo"), ("Attribute.1.Name", "FifoQueue"), ("Attribute.1.Value", "true")]),
        "send": ("/000000000000/q", [("Action", "SendMessage"), ("MessageBody", "hi & <xml>"), ("DelaySeconds", "0"), ("MessageAttribute.1.Name", "a"), ("MessageAttribute.1.Value.DataType", "String"), ("MessageAttribute.1.Value.StringValue", "x"), ("MessageAttribute.2.Name", "b"), ("MessageAttribute.2.Value.DataType", "Binary"), ("MessageAttribute.2.Value.BinaryValue", "AAE=")]),
        "send-batch": ("/000000000000/q", [("Action", "SendMessageBatch"), ("SendMessageBatchRequestEntry.1.Id", "a"), ("SendMessageBatchRequestEntry.1.MessageBody", "one"), ("SendMessageBatchRequestEntry.2.Id", "b"), ("SendMessageBatchRequestEntry.2.MessageBody", "two"), ("SendMessageBatchRequestEntry.2.DelaySeconds", "2")]),
        "send-fifo": ("/", [("Action", "SendMessage"), ("QueueUrl", QF), ("MessageBody", "f"), ("MessageGroupId", "g"), ("MessageDeduplicationId", "d")]),
        "receive": ("/000000000000/q", [("Action", "ReceiveMessage"), ("MaxNumberOfMessages", "10"), ("AttributeName.1", "All"), ("MessageAttributeName.1", "All"), ("VisibilityTimeout", "0"), ("WaitTimeSeconds", "2")]),
        "delete": ("/000000000000/q", [("Action", "DeleteMessage"), ("ReceiptHandle", "h")]),
        "delete-batch": ("/000000000000/q", [("Action", "DeleteMessageBatch"), ("DeleteMessageBatchRequestEntry.1.Id", "a"), ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", "h")]),
        "visibility-batch": ("/000000000000/q", [("Action", "ChangeMessageVisibilityBatch"), ("ChangeMessageVisibilityBatchRequestEntry.1.Id", "a"), ("ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle", "h"), ("ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout", "10")]),
        "get-attrs": ("/000000000000/q", [("Action", "GetQueueAttributes"), ("AttributeName.1", "All")]),
        "set-attrs": ("/000000000000/q", [("Action", "SetQueueAttributes"), ("Attribute.1.Name", "RedrivePolicy"), ("Attribute.1.Value", "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:dlq\",\"maxReceiveCount\":3}")]),
        "list": ("/", [("Action", "ListQueues"), ("QueueNamePrefix", "q"), ("MaxResults", "2")]),
        "url": ("/", [("Action", "GetQueueUrl"), ("QueueName", "q")]),
        "tags": ("/000000000000/q", [("Action", "TagQueue"), ("Tag.1.Key", "a"), ("Tag.1.Value", "b")]),
        "list-tags": ("/000000000000/q", [("Action", "ListQueueTags")]),
        "untag": ("/000000000000/q", [("Action", "UntagQueue"), ("TagKey.1", "a")]),
        "dlq-sources": ("/000000000000/dlq", [("Action", "ListDeadLetterSourceQueues")]),
        "purge": ("/000000000000/q", [("Action", "PurgeQueue")]),
    }
    for name, (path, params) in reqs.items():
        write("sqs_query", name, f"{path}\n{enc(params)}")
    write("sqs_query", "in-query-string", "/000000000000/q?Action=ReceiveMessage&MaxNumberOfMessages=1\n")
    write("sqs_query", "no-action", "/\nQueueName=x")
    write("sqs_query", "seq-handles", SEP.join([
        "/000000000000/q.fifo\nAction=ReceiveMessage&VisibilityTimeout=30",
        "/000000000000/q.fifo\nAction=ChangeMessageVisibility&ReceiptHandle=$HANDLE&VisibilityTimeout=0",
        "/000000000000/q.fifo\nAction=ReceiveMessage",
        "/000000000000/q.fifo\nAction=DeleteMessage&ReceiptHandle=$HANDLE",
    ]))
    write("sqs_query", "seq", SEP.join([
        "/000000000000/q\nAction=SendMessage&MessageBody=a",
        "/000000000000/q\nAction=ReceiveMessage&MaxNumberOfMessages=10&VisibilityTimeout=0&AttributeName.1=All",
        "/000000000000/q\nAction=GetQueueAttributes&AttributeName.1=ApproximateNumberOfMessages",
    ]))


def dynamodb():
    item = {"pk": {"S": "b"}, "sk": {"N": "3"}, "gk": {"S": "x"}, "lk": {"B": "AAE="}, "n": {"N": "1E+3"},
            "l": {"L": [{"S": "a"}, {"NULL": True}]}, "m": {"M": {"k": {"BOOL": False}}},
            "ss": {"SS": ["a"]}, "ns": {"NS": ["-1.5"]}, "bs": {"BS": ["AQ=="]}}
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    reqs = {
        "create": ("CreateTable", {"TableName": "new", "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "s", "AttributeType": "N"}], "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}], "BillingMode": "PAY_PER_REQUEST", "Tags": [{"Key": "k", "Value": "v"}], "GlobalSecondaryIndexes": [{"IndexName": "bys", "KeySchema": [{"AttributeName": "s", "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}]}),
        "describe": ("DescribeTable", {"TableName": "tbl"}),
        "list": ("ListTables", {"Limit": 1, "ExclusiveStartTableName": "a"}),
        "delete-table": ("DeleteTable", {"TableName": "hash"}),
        "update-table": ("UpdateTable", {"TableName": "hash", "AttributeDefinitions": [{"AttributeName": "v", "AttributeType": "N"}], "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "byv", "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}], "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}, "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}}]}),
        "update-table-delete-gsi": ("UpdateTable", {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "gsi"}}]}),
        "ttl": ("DescribeTimeToLive", {"TableName": "tbl"}),
        "tag": ("TagResource", {"ResourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/tbl", "Tags": [{"Key": "a", "Value": "b"}]}),
        "list-tags": ("ListTagsOfResource", {"ResourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/tbl"}),
        "put": ("PutItem", {"TableName": "tbl", "Item": item, "ReturnValues": "ALL_OLD"}),
        "put-cond": ("PutItem", {"TableName": "tbl", "Item": item, "ConditionExpression": "attribute_not_exists(pk) OR #n < :v", "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":v": {"N": "10"}}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        "put-expected": ("PutItem", {"TableName": "hash", "Item": {"id": {"S": "one"}}, "Expected": {"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}}}),
        "get": ("GetItem", {"TableName": "tbl", "Key": key, "ProjectionExpression": "n, l[1], m.k, #x", "ExpressionAttributeNames": {"#x": "ss"}, "ConsistentRead": True}),
        "get-legacy": ("GetItem", {"TableName": "tbl", "Key": key, "AttributesToGet": ["n", "m"]}),
        "delete": ("DeleteItem", {"TableName": "tbl", "Key": key, "ConditionExpression": "size(l) > :z", "ExpressionAttributeValues": {":z": {"N": "0"}}, "ReturnValues": "ALL_OLD"}),
        "update": ("UpdateItem", {"TableName": "tbl", "Key": key, "UpdateExpression": "SET n = n + :d, #l = list_append(#l, :l), m.k2 = if_not_exists(m.k2, :s) REMOVE m.gone ADD ns :ns DELETE ss :ss", "ExpressionAttributeNames": {"#l": "l"}, "ExpressionAttributeValues": {":d": {"N": "2"}, ":l": {"L": [{"S": "z"}]}, ":s": {"S": "v"}, ":ns": {"NS": ["7"]}, ":ss": {"SS": ["a"]}}, "ReturnValues": "UPDATED_NEW"}),
        "update-legacy": ("UpdateItem", {"TableName": "hash", "Key": {"id": {"S": "one"}}, "AttributeUpdates": {"v": {"Action": "ADD", "Value": {"N": "1"}}, "w": {"Action": "PUT", "Value": {"S": "x"}}, "x": {"Action": "DELETE"}}, "ReturnValues": "ALL_NEW"}),
        "query": ("Query", {"TableName": "tbl", "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b", "FilterExpression": "attribute_exists(n) AND NOT contains(ss, :c)", "ExpressionAttributeValues": {":p": {"S": "a"}, ":a": {"N": "0"}, ":b": {"N": "9"}, ":c": {"S": "q"}}, "ScanIndexForward": False, "Limit": 1, "Select": "ALL_ATTRIBUTES"}),
        "query-page": ("Query", {"TableName": "tbl", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}, "ExclusiveStartKey": key, "Select": "COUNT"}),
        "query-gsi": ("Query", {"TableName": "tbl", "IndexName": "gsi", "KeyConditionExpression": "gk = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}),
        "query-lsi": ("Query", {"TableName": "tbl", "IndexName": "lsi", "KeyConditionExpression": "pk = :p AND begins_with(lk, :b)", "ExpressionAttributeValues": {":p": {"S": "a"}, ":b": {"B": "AQ=="}}}),
        "query-legacy": ("Query", {"TableName": "tbl", "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}, "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "0"}]}}, "QueryFilter": {"n": {"ComparisonOperator": "NOT_NULL"}}, "ConditionalOperator": "OR"}),
        "scan": ("Scan", {"TableName": "tbl", "FilterExpression": "attribute_type(n, :t) OR n IN (:a, :b)", "ExpressionAttributeValues": {":t": {"S": "N"}, ":a": {"N": "1"}, ":b": {"N": "2"}}, "Segment": 0, "TotalSegments": 2, "ProjectionExpression": "pk, sk"}),
        "scan-legacy": ("Scan", {"TableName": "tbl", "ScanFilter": {"gk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "x"}]}}}),
        "batch-write": ("BatchWriteItem", {"RequestItems": {"tbl": [{"PutRequest": {"Item": item}}, {"DeleteRequest": {"Key": key}}], "hash": [{"PutRequest": {"Item": {"id": {"S": "two"}}}}]}, "ReturnConsumedCapacity": "TOTAL"}),
        "batch-get": ("BatchGetItem", {"RequestItems": {"tbl": {"Keys": [key, {"pk": {"S": "a"}, "sk": {"N": "2"}}], "ProjectionExpression": "n"}, "hash": {"Keys": [{"id": {"S": "one"}}]}}}),
        "transact-write": ("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "hash", "Item": {"id": {"S": "t1"}}, "ConditionExpression": "attribute_not_exists(id)"}}, {"Update": {"TableName": "tbl", "Key": key, "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "0"}}}}, {"ConditionCheck": {"TableName": "hash", "Key": {"id": {"S": "one"}}, "ConditionExpression": "v = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}, {"Delete": {"TableName": "tbl", "Key": {"pk": {"S": "a"}, "sk": {"N": "2"}}}}], "ClientRequestToken": "tok"}),
        "transact-get": ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "tbl", "Key": key, "ProjectionExpression": "m"}}, {"Get": {"TableName": "hash", "Key": {"id": {"S": "one"}}}}]}),
        "update-ttl": ("UpdateTimeToLive", {"TableName": "hash", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "exp"}}),
        "big-number": ("PutItem", {"TableName": "hash", "Item": {"id": {"S": "n"}, "v": {"N": "-9.9999999999999999999999999999999999999E+125"}, "w": {"N": "1E-130"}}}),
    }
    for name, (op, body) in reqs.items():
        write("dynamodb", name, f"{op}\n{j(body)}")
    write("dynamodb", "not-json", "PutItem\n{\"TableName\":")
    write("dynamodb", "unknown-op", "Frobnicate\n{}")
    write("dynamodb", "seq", SEP.join([
        f"PutItem\n{j({'TableName': 'hash', 'Item': {'id': {'S': 'c'}, 'cnt': {'N': '0'}}})}",
        f"UpdateItem\n{j({'TableName': 'hash', 'Key': {'id': {'S': 'c'}}, 'UpdateExpression': 'ADD cnt :one', 'ExpressionAttributeValues': {':one': {'N': '1'}}, 'ReturnValues': 'ALL_NEW'})}",
        f"Scan\n{j({'TableName': 'hash'})}",
        f"DeleteItem\n{j({'TableName': 'hash', 'Key': {'id': {'S': 'c'}}})}",
    ]))


def ddb_expr():
    exprs = [
        "attribute_not_exists(pk)", "n > :n", "pk = :s AND a < :s", "sk BETWEEN :n AND :n",
        "ADD v :n", "SET g = :s", "SET n = n + :n, #a = :s ADD c :n", "SET pk = :s",
        "a = :s OR b = :s AND NOT c = :s", "a BETWEEN :n AND :n", "foo(a)",
        "m.k, l[2], l[0], zz", "SET a = :s SET b = :s",
        "SET n = n + :n, m = if_not_exists(m, :m), l = list_append(l, :l) REMOVE l[0] DELETE ss :ss",
        "SET n = n - :n, q = list_append(:l, l) REMOVE l[0], l[2] DELETE ss :ss",
        "#a = :s", "attribute_exists(#b) AND begins_with(a, :s)", "contains(ss, :s) OR contains(l, :s)",
        "size(l) >= :n AND attribute_type(m, :s)", "n IN (:n, :s, :t)", "(a <> :s) AND (NOT (n <= :n))",
        "l[1][0] = :s", "m.inner.z = :b", "#m.#n[0].k = :z", "SET l[5] = :s, m.new = :m",
        "REMOVE m.k, ss", "ADD ns :ns, ss :ss", "DELETE ns :ns", "SET #n = if_not_exists(#n, :n) + :n",
        "pk = :s AND begins_with(sk, :s)", "n, #a, l[1][0], m.inner",
    ]
    for i, e in enumerate(exprs):
        write("ddb_expr", f"e{i:02}", e)


AK = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
DATE = "20150830T123600Z"


def _h(b):
    return hashlib.sha256(b).hexdigest()


def _sign_key(date, region, service):
    k = ("AWS4" + SECRET).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def _canonical_query(pairs):
    return "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in pairs))


def signed_request(method, path, headers, body, service, region="us-east-1", date=DATE, query=()):
    """A request signed in the Authorization header, as an SDK signs it."""
    headers = dict(headers, **{"host": "localhost:4566", "x-amz-date": date})
    names = sorted(headers)
    canon_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
    signed = ";".join(names)
    creq = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), _canonical_query(query), canon_headers, signed, _h(body)])
    scope = f"{date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, _h(creq.encode())])
    sig = hmac.new(_sign_key(date[:8], region, service), sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={sig}"
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    head = f"{method} {target}\n" + "".join(f"{k}: {v}\n" for k, v in headers.items())
    return head.encode() + b"\n" + body


def presigned_request(path, params, service="sqs", expires=300):
    """A presigned GET (query-signed, as botocore's SigV4QueryAuth does)."""
    scope = f"{DATE[:8]}/us-east-1/{service}/aws4_request"
    q = list(params) + [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{AK}/{scope}"),
                        ("X-Amz-Date", DATE), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    creq = "\n".join(["GET", path, _canonical_query(q), "host:localhost:4566\n", "host", _h(b"")])
    sts = "\n".join(["AWS4-HMAC-SHA256", DATE, scope, _h(creq.encode())])
    sig = hmac.new(_sign_key(DATE[:8], "us-east-1", service), sts.encode(), hashlib.sha256).hexdigest()
    q.append(("X-Amz-Signature", sig))
    return f"GET {path}?{urllib.parse.urlencode(q, quote_via=urllib.parse.quote)}\nhost: localhost:4566\n\n".encode()


def sigv4():
    body = b'{"QueueName":"q"}'
    write("sigv4", "valid-sqs-json", signed_request("POST", "/", {"content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.CreateQueue"}, body, "sqs"))
    write("sigv4", "valid-sqs-json-sha256", signed_request("POST", "/", {"content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ListQueues", "x-amz-content-sha256": _h(b"{}")}, b"{}", "sqs"))
    form = b"Action=SendMessage&MessageBody=hi&Version=2012-11-05"
    write("sigv4", "valid-sqs-query", signed_request("POST", "/000000000000/q", {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, form, "sqs"))
    write("sigv4", "valid-sqs-query-get", signed_request("GET", "/000000000000/q", {}, b"", "sqs", query=[("Action", "ReceiveMessage"), ("MaxNumberOfMessages", "10")]))
    write("sigv4", "valid-dynamodb", signed_request("POST", "/", {"content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.ListTables"}, b"{}", "dynamodb"))
    write("sigv4", "valid-presigned", presigned_request("/000000000000/q", [("Action", "ReceiveMessage"), ("Version", "2012-11-05")]))
    write("sigv4", "valid-presigned-dynamodb", presigned_request("/", [("Action", "ListTables")], service="dynamodb", expires=604800))
    write("sigv4", "suite-get-vanilla", (
        "GET /\nhost: example.amazonaws.com\nx-amz-date: 20150830T123600Z\n"
        "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\n\n"))
    write("sigv4", "expired", signed_request("POST", "/", {"x-amz-target": "AmazonSQS.ListQueues"}, b"{}", "sqs", date="20150830T120000Z"))
    write("sigv4", "no-auth", "POST /\nhost: localhost\nx-amz-target: AmazonSQS.ListQueues\n\n{}")


def copy_files(target, paths):
    for p in paths:
        p = ROOT / p
        write(target, p.name, p.read_bytes())


def manifests():
    copy_files("manifest", [
        "examples/eks-sqs/20-keda.yaml", "examples/eks-sqs/30-nodepool.yaml", "examples/eks-sqs/40-ec2nodeclass.yaml",
        "examples/eks-sqs/10-sqs-app.yaml", "examples/up/demo-manifests.yaml", "examples/up/seed-manifests.yaml",
        "crates/kedge/tests/fixtures/up-short-manifests.yaml",
    ])
    write("manifest", "json-scaledobject.json", j({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "s", "namespace": "n"},
        "spec": {"scaleTargetRef": {"name": "d"}, "minReplicaCount": 0, "maxReplicaCount": 10, "fallback": {"failureThreshold": 3, "replicas": 2},
                 "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 15}]}}},
                              "scalingModifiers": {"formula": "a + b", "target": "2", "activationTarget": "1", "metricType": "AverageValue"}},
                 "triggers": [{"type": "aws-sqs-queue", "name": "a", "metadata": {"queueURL": Q, "queueLength": "2", "awsRegion": "us-east-1"}, "authenticationRef": {"name": "auth"}},
                              {"type": "cron", "name": "b", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3"}}]}}))
    write("manifest", "triggerauth.yaml", "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: auth\nspec:\n  podIdentity:\n    provider: aws\n  secretTargetRef:\n  - parameter: awsAccessKeyID\n    name: s\n    key: k\n---\napiVersion: keda.sh/v1alpha1\nkind: ClusterTriggerAuthentication\nmetadata:\n  name: c\nspec:\n  env:\n  - parameter: p\n    name: E\n")
    write("manifest", "nodeclaim.yaml", "apiVersion: karpenter.sh/v1\nkind: NodeClaim\nmetadata:\n  name: c\nspec:\n  nodeClassRef:\n    group: karpenter.k8s.aws\n    kind: EC2NodeClass\n    name: default\n  requirements:\n  - key: node.kubernetes.io/instance-type\n    operator: In\n    values: [m5.large]\n  resources:\n    requests:\n      cpu: 1500m\n      memory: 1Gi\n  taints:\n  - key: k\n    value: v\n    effect: NoSchedule\n  expireAfter: 720h\n")
    write("manifest", "nodepool-v1beta1.yaml", "apiVersion: karpenter.sh/v1beta1\nkind: NodePool\nmetadata:\n  name: p\nspec:\n  template:\n    spec:\n      nodeClassRef:\n        name: default\n      requirements:\n      - key: karpenter.sh/capacity-type\n        operator: In\n        values: [spot, on-demand]\n      - key: karpenter.k8s.aws/instance-cpu\n        operator: Gt\n        values: ['3']\n  disruption:\n    consolidationPolicy: WhenUnderutilized\n    expireAfter: Never\n  limits:\n    cpu: '1000'\n    memory: 1000Gi\n  weight: 10\n")
    write("manifest", "anchors.yaml", "a: &x [1, 2]\nb: *x\n---\n- just\n- a list\n---\n")


def scenarios():
    copy_files("scenario", ["examples/up/demo.yaml", "examples/up/seed.yaml",
                            "crates/kedge/tests/fixtures/up-short.yaml", "crates/kedge/tests/fixtures/up-sigkill.yaml"])
    write("scenario", "minimal.yaml", "name: m\nbaseline: {instance_type: m5.large, count: 1}\npod: {cpu: 125m, memory: 32Mi}\nmanifests: []\nphases:\n- {duration: 10s, producers: 1, rate: 5}\n")
    write("scenario", "full.yaml", "name: f\nduration: 1m\ntick: 100ms\nboot_delay: 2s\njoint: false\nbaseline: {instance_type: m5.large, count: 2}\npod: {cpu: 1, memory: 1Gi}\nconsumer: {work: 250ms, batch: 1, concurrency: 2, visibility_timeout: 30s, wait_time: 1s, grace_period: 5s}\nqueue: {name: q.fifo, table: t, max_receive_count: 3, groups: 8}\nmanifests: [m.yaml]\nphases:\n- {duration: 0.5m, producers: 2, rate: 2.5}\n- {duration: 1h, producers: 0}\nchaos:\n- {at: 10s, sigkill_busy: 1}\n")


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    sqs_json()
    sqs_query()
    dynamodb()
    ddb_expr()
    sigv4()
    manifests()
    scenarios()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()

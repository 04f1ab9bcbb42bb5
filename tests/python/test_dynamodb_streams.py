"""DynamoDB Streams with boto3 against a real `kedge serve`: tables changed through the
`dynamodb` client, their change records read through `boto3.client('dynamodbstreams')` on the
same endpoint, and the records of acknowledged writes still there after `kill -9`.

Run: .venv/bin/pytest tests/python/test_dynamodb_streams.py
The server binary is $KEDGE_BIN or target/debug/kedge (build it with `cargo build -p kedge`).
"""

import pytest
from botocore.exceptions import ClientError

from conftest import make_client


@pytest.fixture
def server(kedge_server_factory):
    """A durable `kedge serve` whose tables are ACTIVE at once (no status delay), so the test
    needs no waiting."""
    return kedge_server_factory("--table-status-delay-ms", "0")


def _create(ddb, name, view):
    return ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )["TableDescription"]


def _all_records(streams, arn):
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return streams.get_records(ShardIterator=it)["Records"]


def test_boto3_reads_the_changes_of_a_table(server):
    ddb = make_client("dynamodb", server.url)
    streams = make_client("dynamodbstreams", server.url)
    desc = _create(ddb, "orders", "NEW_AND_OLD_IMAGES")
    arn = desc["LatestStreamArn"]
    assert arn.startswith("arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/")
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}

    ddb.put_item(TableName="orders", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    ddb.put_item(TableName="orders", Item={"pk": {"S": "a"}, "n": {"N": "1"}})  # no change
    ddb.update_item(
        TableName="orders", Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = n + :one", ExpressionAttributeValues={":one": {"N": "1"}},
    )
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "a"}})

    listed = streams.list_streams(TableName="orders")["Streams"]
    assert [s["StreamArn"] for s in listed] == [arn]
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamStatus"] == "ENABLED"
    assert d["TableName"] == "orders"
    assert d["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]

    recs = _all_records(streams, arn)
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY", "REMOVE"]
    modify = recs[1]["dynamodb"]
    assert modify["OldImage"]["n"] == {"N": "1"}
    assert modify["NewImage"]["n"] == {"N": "2"}
    assert modify["Keys"] == {"pk": {"S": "a"}}
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert all(r["eventSource"] == "aws:dynamodb" and r["eventVersion"] == "1.1" for r in recs)

    with pytest.raises(ClientError) as e:
        ddb.update_table(
            TableName="orders",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Error"]["Message"] == "Table already has an enabled stream: TableName: orders"

    with pytest.raises(streams.exceptions.ResourceNotFoundException):
        streams.describe_stream(StreamArn=arn + "x")

    # Disabled, the stream stays readable and its shard is closed.
    ddb.update_table(TableName="orders", StreamSpecification={"StreamEnabled": False})
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert d["StreamStatus"] == "DISABLED"
    assert "EndingSequenceNumber" in d["Shards"][0]["SequenceNumberRange"]
    assert len(_all_records(streams, arn)) == 3


def test_records_of_acknowledged_writes_survive_kill_9(server):
    ddb = make_client("dynamodb", server.url)
    arn = _create(ddb, "ledger", "KEYS_ONLY")["LatestStreamArn"]
    for i in range(20):
        ddb.put_item(TableName="ledger", Item={"pk": {"S": f"k{i}"}})
    server.kill()
    server.start()
    ddb = make_client("dynamodb", server.url)
    streams = make_client("dynamodbstreams", server.url)
    recs = _all_records(streams, arn)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in recs] == [f"k{i}" for i in range(20)]
    assert all("NewImage" not in r["dynamodb"] for r in recs)
    ddb.put_item(TableName="ledger", Item={"pk": {"S": "after"}})
    recs = _all_records(streams, arn)
    assert recs[-1]["dynamodb"]["Keys"] == {"pk": {"S": "after"}}
    assert int(recs[-1]["dynamodb"]["SequenceNumber"]) > int(recs[-2]["dynamodb"]["SequenceNumber"])

"""boto3 (low-level client, Table resource, batch_writer) and the aws CLI against a real
`kedge serve` (DynamoDB half).

Run: .venv/bin/pytest tests/python/test_dynamodb_clients.py
The server binary is $KEDGE_BIN or target/debug/kedge (build it with `cargo build -p kedge`).
"""

import datetime
import json
import os
import subprocess
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from unittest.mock import ANY

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ddb_endpoint():
    """A fresh durable `kedge serve` on a free port, for this module."""
    binary = os.environ.get("KEDGE_BIN", str(ROOT / "target" / "debug" / "kedge"))
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [binary, "serve", "--bind", "127.0.0.1:0", "--data-dir", data],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert "listening on" in line, f"kedge serve did not start: {line!r}"
            yield line.strip().split()[-1]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _session():
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


@pytest.fixture(scope="module")
def client(ddb_endpoint):
    return _session().client("dynamodb", endpoint_url=ddb_endpoint)


@pytest.fixture(scope="module")
def resource(ddb_endpoint):
    return _session().resource("dynamodb", endpoint_url=ddb_endpoint)


def _create(client, name, range_key=None, **extra):
    defs = [{"AttributeName": "pk", "AttributeType": "S"}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if range_key:
        defs.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    defs += extra.pop("extra_defs", [])
    client.create_table(
        TableName=name,
        AttributeDefinitions=defs,
        KeySchema=schema,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})


def test_low_level_client_items_conditions_and_errors(client):
    _create(client, "py-items", ("sk", "N"))
    client.put_item(
        TableName="py-items",
        Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "n": {"N": "0.1"}, "l": {"L": [{"S": "x"}]}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    with pytest.raises(ClientError) as e:
        client.put_item(
            TableName="py-items",
            Item={"pk": {"S": "a"}, "sk": {"N": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert e.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert isinstance(e.value, client.exceptions.ConditionalCheckFailedException)

    # m does not exist, so the nested SET is invalid: AWS's message.
    with pytest.raises(ClientError) as e:
        client.update_item(
            TableName="py-items",
            Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
            UpdateExpression="SET m.deep = :v",
            ExpressionAttributeValues={":v": {"S": "v"}},
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "document path provided in the update expression is invalid" in e.value.response["Error"]["Message"]

    r = client.update_item(
        TableName="py-items",
        Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
        UpdateExpression="SET n = n + :d, l = list_append(l, :more)",
        ExpressionAttributeValues={":d": {"N": "0.2"}, ":more": {"L": [{"S": "y"}]}},
        ReturnValues="ALL_NEW",
    )
    assert r["Attributes"]["n"] == {"N": "0.3"}  # exact decimal, not 0.30000000000000004
    assert r["Attributes"]["l"] == {"L": [{"S": "x"}, {"S": "y"}]}

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_item(TableName="py-nope", Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as e:
        client.put_item(TableName="py-items", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"SS": []}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        client.query(
            TableName="py-items",
            KeyConditionExpression="pk = :p AND sk BETWEEN :hi AND :lo",
            ExpressionAttributeValues={":p": {"S": "a"}, ":hi": {"N": "5"}, ":lo": {"N": "1"}},
        )
    assert "BETWEEN operator requires upper bound" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        client.scan(TableName="py-items", FilterExpression="name = :n", ExpressionAttributeValues={":n": {"S": "x"}})
    assert "reserved keyword; reserved keyword: name" in e.value.response["Error"]["Message"]


def test_table_resource_batch_writer_query_and_paging(resource, client):
    _create(client, "py-orders", ("ts", "N"))
    table = resource.Table("py-orders")
    with table.batch_writer() as bw:
        for i in range(120):
            bw.put_item(Item={"pk": f"c{i % 3}", "ts": i, "amount": Decimal("19.99"), "open": i % 2 == 0})
    r = table.query(KeyConditionExpression=Key("pk").eq("c0") & Key("ts").between(0, 30), ScanIndexForward=False)
    assert [int(i["ts"]) for i in r["Items"]] == list(range(30, -1, -3))
    assert r["Items"][0]["amount"] == Decimal("19.99")

    # Paging by hand through LastEvaluatedKey with a filter.
    seen, kwargs = [], {"FilterExpression": Attr("open").eq(True), "Limit": 7}
    while True:
        page = table.scan(**kwargs)
        seen += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert len(seen) == 60

    paginator = client.get_paginator("query")
    total = sum(
        p["Count"]
        for p in paginator.paginate(
            TableName="py-orders",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "c1"}},
            PaginationConfig={"PageSize": 9},
        )
    )
    assert total == 40

    table.update_item(
        Key={"pk": "c0", "ts": 0},
        UpdateExpression="ADD visits :one SET tags = :t",
        ExpressionAttributeValues={":one": 1, ":t": {"x", "y"}},
    )
    table.update_item(Key={"pk": "c0", "ts": 0}, UpdateExpression="ADD visits :one DELETE tags :x", ExpressionAttributeValues={":one": 1, ":x": {"x"}})
    item = table.get_item(Key={"pk": "c0", "ts": 0}, ProjectionExpression="visits, tags")["Item"]
    assert item == {"visits": 2, "tags": {"y"}}


def test_transactions_and_racing_conditional_writes(client):
    _create(client, "py-tx")
    client.put_item(TableName="py-tx", Item={"pk": {"S": "acct-a"}, "bal": {"N": "100"}})
    client.put_item(TableName="py-tx", Item={"pk": {"S": "acct-b"}, "bal": {"N": "0"}})

    def transfer(amount):
        client.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "py-tx", "Key": {"pk": {"S": "acct-a"}}, "UpdateExpression": "SET bal = bal - :a", "ConditionExpression": "bal >= :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
                {"Update": {"TableName": "py-tx", "Key": {"pk": {"S": "acct-b"}}, "UpdateExpression": "SET bal = bal + :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
            ]
        )

    transfer(60)
    with pytest.raises(ClientError) as e:
        transfer(60)
    err = e.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in err["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    got = client.transact_get_items(TransactItems=[{"Get": {"TableName": "py-tx", "Key": {"pk": {"S": k}}}} for k in ("acct-a", "acct-b")])
    assert [r["Item"]["bal"]["N"] for r in got["Responses"]] == ["40", "60"]

    results = []

    def racer(i):
        try:
            _session().client("dynamodb", endpoint_url=client.meta.endpoint_url).put_item(
                TableName="py-tx", Item={"pk": {"S": "lock"}, "owner": {"N": str(i)}}, ConditionExpression="attribute_not_exists(pk)"
            )
            results.append("won")
        except ClientError as ex:
            results.append(ex.response["Error"]["Code"])

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == 1
    assert results.count("ConditionalCheckFailedException") == 7


def test_partiql_statements_batches_and_transactions(client):
    _create(client, "py-ql", ("sk", "N"))
    for sk in (1, 2, 3):
        client.execute_statement(
            Statement="INSERT INTO \"py-ql\" VALUE {'pk': ?, 'sk': ?, 'n': ?}",
            Parameters=[{"S": "a"}, {"N": str(sk)}, {"N": str(sk * 10)}],
        )
    with pytest.raises(client.exceptions.DuplicateItemException):
        client.execute_statement(Statement="INSERT INTO \"py-ql\" VALUE {'pk': 'a', 'sk': 1}")

    got = client.execute_statement(
        Statement="SELECT sk FROM \"py-ql\" WHERE pk = 'a' AND sk >= 2 ORDER BY sk DESC"
    )
    assert got["Items"] == [{"sk": {"N": "3"}}, {"sk": {"N": "2"}}]
    page = client.execute_statement(Statement="SELECT * FROM \"py-ql\"", Limit=2)
    assert len(page["Items"]) == 2 and "NextToken" in page
    rest = client.execute_statement(Statement="SELECT * FROM \"py-ql\"", NextToken=page["NextToken"])
    assert sorted(i["sk"]["N"] for i in page["Items"] + rest["Items"]) == ["1", "2", "3"]

    updated = client.execute_statement(
        Statement="UPDATE \"py-ql\" SET n = n + 1 SET tags = set_add(tags, <<'x'>>) REMOVE gone "
        "WHERE pk = 'a' AND sk = 1 RETURNING ALL NEW *"
    )
    assert updated["Items"] == [{"pk": {"S": "a"}, "sk": {"N": "1"}, "n": {"N": "11"}, "tags": {"SS": ["x"]}}]
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.execute_statement(Statement="UPDATE \"py-ql\" SET n = 0 WHERE pk = 'nobody' AND sk = 1")
    with pytest.raises(ClientError) as e:
        client.execute_statement(Statement="SELECT * FROM \"py-ql\" WHERE pk = ?")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Error"]["Message"] == "Number of parameters in request and statement don't match."

    batch = client.batch_execute_statement(
        Statements=[
            {"Statement": "DELETE FROM \"py-ql\" WHERE pk = 'a' AND sk = 3"},
            {"Statement": "INSERT INTO \"py-ql\" VALUE {'pk': 'a', 'sk': 2}"},
        ]
    )["Responses"]
    assert "Error" not in batch[0]
    assert batch[1]["Error"]["Code"] == "DuplicateItem"

    with pytest.raises(ClientError) as e:
        client.execute_transaction(
            TransactStatements=[
                {"Statement": "UPDATE \"py-ql\" SET n = 0 WHERE pk = 'a' AND sk = 1"},
                {"Statement": "DELETE FROM \"py-ql\" WHERE pk = 'a' AND sk = 2 AND n = 999"},
            ]
        )
    err = e.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in err["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    read = client.execute_transaction(
        TransactStatements=[
            {"Statement": "SELECT n FROM \"py-ql\" WHERE pk = 'a' AND sk = 1"},
            {"Statement": "SELECT n FROM \"py-ql\" WHERE pk = 'a' AND sk = 3"},
        ]
    )
    assert read["Responses"] == [{"Item": {"n": {"N": "11"}}}, {}]

    limits = client.describe_limits()
    assert (limits["AccountMaxReadCapacityUnits"], limits["TableMaxWriteCapacityUnits"]) == (80000, 40000)
    endpoints = client.describe_endpoints()["Endpoints"]
    assert endpoints == [{"Address": client.meta.endpoint_url.split("://", 1)[1], "CachePeriodInMinutes": 1440}]


def _aws(endpoint, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    aws = str(ROOT / ".venv" / "bin" / "aws")
    out = subprocess.run([aws, "--endpoint-url", endpoint, "--output", "json", "dynamodb", *args], env=env, capture_output=True, text=True)
    return out


def test_aws_cli(ddb_endpoint):
    r = _aws(
        ddb_endpoint,
        "create-table",
        "--table-name", "cli-table",
        "--attribute-definitions", "AttributeName=id,AttributeType=S",
        "--key-schema", "AttributeName=id,KeyType=HASH",
        "--billing-mode", "PAY_PER_REQUEST",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["TableDescription"]["TableName"] == "cli-table"
    # As against DynamoDB, a new table is CREATING for a moment: wait until it is ACTIVE.
    for _ in range(50):
        r = _aws(ddb_endpoint, "describe-table", "--table-name", "cli-table")
        assert r.returncode == 0, r.stderr
        if json.loads(r.stdout)["Table"]["TableStatus"] == "ACTIVE":
            break
    else:
        raise AssertionError("cli-table never became ACTIVE")
    r = _aws(ddb_endpoint, "put-item", "--table-name", "cli-table", "--item", '{"id": {"S": "1"}, "v": {"N": "42"}}')
    assert r.returncode == 0, r.stderr
    r = _aws(ddb_endpoint, "get-item", "--table-name", "cli-table", "--key", '{"id": {"S": "1"}}')
    assert json.loads(r.stdout)["Item"]["v"] == {"N": "42"}
    r = _aws(ddb_endpoint, "scan", "--table-name", "cli-table")
    assert json.loads(r.stdout)["Count"] == 1
    r = _aws(ddb_endpoint, "list-tables")
    assert "cli-table" in json.loads(r.stdout)["TableNames"]
    r = _aws(ddb_endpoint, "describe-table", "--table-name", "cli-missing")
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr
    r = _aws(ddb_endpoint, "update-time-to-live", "--table-name", "cli-table", "--time-to-live-specification", "Enabled=true,AttributeName=exp")
    assert r.returncode == 0, r.stderr
    r = _aws(ddb_endpoint, "delete-table", "--table-name", "cli-table")
    assert r.returncode == 0, r.stderr


def test_sts_get_caller_identity_names_the_account(ddb_endpoint):
    sts = _session().client("sts", endpoint_url=ddb_endpoint)
    who = sts.get_caller_identity()
    assert who["Account"] == "000000000000"
    assert who["Arn"] == "arn:aws:iam::000000000000:root"
    assert who["UserId"]


def test_resource_policy_by_table_arn(client):
    client.create_table(
        TableName="py-policy",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName="py-policy", WaiterConfig={"Delay": 1})
    arn = client.describe_table(TableName="py-policy")["Table"]["TableArn"]
    with pytest.raises(client.exceptions.PolicyNotFoundException):
        client.get_resource_policy(ResourceArn=arn)
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Principal": {"AWS": "000000000000"}, "Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"}]})
    rev = client.put_resource_policy(ResourceArn=arn, Policy=doc, ExpectedRevisionId="NO_POLICY")["RevisionId"]
    got = client.get_resource_policy(ResourceArn=arn)
    assert (got["Policy"], got["RevisionId"]) == (doc, rev)
    assert client.put_resource_policy(ResourceArn=arn, Policy=doc)["RevisionId"] == rev
    with pytest.raises(client.exceptions.PolicyNotFoundException):
        client.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId="0")
    assert client.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=rev)["RevisionId"] == rev
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_resource_policy(ResourceArn=arn + "x")
    # The table's ARN is its name too.
    client.put_item(TableName=arn, Item={"pk": {"S": "a"}})
    assert client.get_item(TableName=arn, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}
    # A stream has a policy of its own.
    stream = client.update_table(
        TableName="py-policy",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )["TableDescription"]["LatestStreamArn"]
    client.get_waiter("table_exists").wait(TableName="py-policy", WaiterConfig={"Delay": 0.1})
    reader = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Principal": {"AWS": "000000000000"}, "Effect": "Allow", "Action": ["dynamodb:GetRecords"],
         "Resource": stream}]})
    srev = client.put_resource_policy(ResourceArn=stream, Policy=reader)["RevisionId"]
    assert client.get_resource_policy(ResourceArn=stream) == {
        "Policy": reader, "RevisionId": srev, "ResponseMetadata": ANY}
    with pytest.raises(client.exceptions.PolicyNotFoundException):
        client.get_resource_policy(ResourceArn=arn)
    assert client.delete_resource_policy(ResourceArn=stream)["RevisionId"] == srev


def test_backups_restore_and_multi_attribute_indexes(client):
    """boto3's own shapes: an on-demand backup restored into a new table, and a global
    index with a two-attribute partition key and a two-attribute sort key."""
    client.create_table(
        TableName="py-bk-orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "tenant", "AttributeType": "S"},
            {"AttributeName": "region", "AttributeType": "S"},
            {"AttributeName": "day", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-tenant",
            "KeySchema": [
                {"AttributeName": "tenant", "KeyType": "HASH"},
                {"AttributeName": "region", "KeyType": "HASH"},
                {"AttributeName": "day", "KeyType": "RANGE"},
                {"AttributeName": "seq", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName="py-bk-orders", WaiterConfig={"Delay": 0.1})
    for i, (day, seq) in enumerate([("d2", 1), ("d1", 2), ("d1", 1), ("d3", 9)]):
        client.put_item(TableName="py-bk-orders", Item={
            "id": {"S": f"o{i}"}, "tenant": {"S": "t1"}, "region": {"S": "eu"},
            "day": {"S": day}, "seq": {"N": str(seq)}})
    got = client.query(
        TableName="py-bk-orders", IndexName="by-tenant",
        KeyConditionExpression="tenant = :t AND #g = :r AND #d = :d AND seq >= :s",
        ExpressionAttributeNames={"#d": "day", "#g": "region"},
        ExpressionAttributeValues={":t": {"S": "t1"}, ":r": {"S": "eu"}, ":d": {"S": "d1"}, ":s": {"N": "1"}},
    )
    assert [i["id"]["S"] for i in got["Items"]] == ["o2", "o1"]
    with pytest.raises(ClientError) as e:
        client.query(TableName="py-bk-orders", IndexName="by-tenant",
                     KeyConditionExpression="tenant = :t",
                     ExpressionAttributeValues={":t": {"S": "t1"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"

    backup = client.create_backup(TableName="py-bk-orders", BackupName="nightly")["BackupDetails"]
    client.delete_item(TableName="py-bk-orders", Key={"id": {"S": "o0"}})
    listed = client.list_backups(TableName="py-bk-orders")["BackupSummaries"]
    assert [b["BackupArn"] for b in listed] == [backup["BackupArn"]]
    desc = client.describe_backup(BackupArn=backup["BackupArn"])["BackupDescription"]
    assert desc["SourceTableDetails"]["ItemCount"] == 4
    client.restore_table_from_backup(TargetTableName="py-bk-orders-copy", BackupArn=backup["BackupArn"])
    client.get_waiter("table_exists").wait(TableName="py-bk-orders-copy", WaiterConfig={"Delay": 0.1})
    assert client.scan(TableName="py-bk-orders-copy", Select="COUNT")["Count"] == 4
    assert client.scan(TableName="py-bk-orders", Select="COUNT")["Count"] == 3
    with pytest.raises(client.exceptions.TableAlreadyExistsException):
        client.restore_table_from_backup(TargetTableName="py-bk-orders", BackupArn=backup["BackupArn"])
    client.delete_backup(BackupArn=backup["BackupArn"])
    with pytest.raises(client.exceptions.BackupNotFoundException):
        client.describe_backup(BackupArn=backup["BackupArn"])


def test_point_in_time_restore(client):
    """boto3's RestoreTableToPointInTime: the latest restorable time is five minutes ago (here:
    when recovery was turned on), so a write made since is not in the restored table, and
    boto3's typed exceptions name what is wrong."""
    client.create_table(
        TableName="py-pitr",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName="py-pitr", WaiterConfig={"Delay": 0.1})
    client.put_item(TableName="py-pitr", Item={"id": {"S": "before"}})
    with pytest.raises(client.exceptions.PointInTimeRecoveryUnavailableException):
        client.restore_table_to_point_in_time(
            SourceTableName="py-pitr", TargetTableName="py-pitr-copy", UseLatestRestorableTime=True)
    client.update_continuous_backups(
        TableName="py-pitr",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    client.put_item(TableName="py-pitr", Item={"id": {"S": "after"}})
    window = client.describe_continuous_backups(TableName="py-pitr")[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    restored = client.restore_table_to_point_in_time(
        SourceTableName="py-pitr", TargetTableName="py-pitr-copy",
        RestoreDateTime=window["LatestRestorableDateTime"])["TableDescription"]
    assert restored["RestoreSummary"]["SourceTableArn"].endswith(":table/py-pitr")
    client.get_waiter("table_exists").wait(TableName="py-pitr-copy", WaiterConfig={"Delay": 0.1})
    got = client.scan(TableName="py-pitr-copy")["Items"]
    assert [i["id"]["S"] for i in got] == ["before"]
    with pytest.raises(client.exceptions.InvalidRestoreTimeException):
        client.restore_table_to_point_in_time(
            SourceTableName="py-pitr", TargetTableName="py-pitr-later",
            RestoreDateTime=window["EarliestRestorableDateTime"].timestamp() - 3600)
    with pytest.raises(client.exceptions.TableAlreadyExistsException):
        client.restore_table_to_point_in_time(
            SourceTableName="py-pitr", TargetTableName="py-pitr-copy", UseLatestRestorableTime=True)
    # Deleting a table with recovery on keeps it in a SYSTEM backup, listed on request.
    client.delete_table(TableName="py-pitr")
    assert "py-pitr" not in [b["TableName"] for b in client.list_backups()["BackupSummaries"]]
    system = [b for b in client.list_backups(BackupType="SYSTEM")["BackupSummaries"]
              if b["TableName"] == "py-pitr"]
    assert [b["BackupName"] for b in system] == ["py-pitr$DeletedTableBackup"]
    assert system[0]["BackupExpiryDateTime"] > system[0]["BackupCreationDateTime"]


def test_table_settings_and_empty_key_query(client):
    """boto3's SSESpecification, TableClass and WarmThroughput come back as DynamoDB reports
    them (a table on DynamoDB's own key has no SSEDescription), UpdateTable changes the
    class alone, and a Query for an empty partition key is refused as DynamoDB refuses it."""
    _create(client, "py-settings",
            SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "alias/app"},
            TableClass="STANDARD_INFREQUENT_ACCESS",
            WarmThroughput={"ReadUnitsPerSecond": 13000, "WriteUnitsPerSecond": 4500})
    table = client.describe_table(TableName="py-settings")["Table"]
    assert table["SSEDescription"] == {
        "Status": "ENABLED", "SSEType": "KMS",
        "KMSMasterKeyArn": "arn:aws:kms:us-east-1:000000000000:alias/app"}
    assert table["TableClassSummary"] == {"TableClass": "STANDARD_INFREQUENT_ACCESS"}
    assert table["WarmThroughput"] == {
        "ReadUnitsPerSecond": 13000, "WriteUnitsPerSecond": 4500, "Status": "ACTIVE"}
    client.update_table(TableName="py-settings", TableClass="STANDARD")
    client.get_waiter("table_exists").wait(TableName="py-settings", WaiterConfig={"Delay": 0.1})
    summary = client.describe_table(TableName="py-settings")["Table"]["TableClassSummary"]
    assert summary["TableClass"] == "STANDARD" and "LastUpdateDateTime" in summary
    _create(client, "py-plain")
    assert "SSEDescription" not in client.describe_table(TableName="py-plain")["Table"]
    with pytest.raises(client.exceptions.ClientError) as e:
        client.query(TableName="py-plain", KeyConditionExpression="pk = :v",
                     ExpressionAttributeValues={":v": {"S": ""}})
    assert e.value.response["Error"]["Message"] == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: pk")


def _until(fetch, done, timeout=10.0):
    """Call `fetch` until `done` holds of its answer (the server's status delay is short) or
    `timeout` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_contributor_insights(client):
    """boto3's contributor insights calls: DISABLED until enabled, ENABLING then ENABLED with
    DynamoDB's rule names, listed (by the table's ARN too) while on, an unknown index and
    an unknown action refused as DynamoDB refuses them."""
    _create(client, "py-insights", range_key=("sk", "N"))
    arn = client.describe_table(TableName="py-insights")["Table"]["TableArn"]
    before = client.describe_contributor_insights(TableName="py-insights")
    assert before["ContributorInsightsStatus"] == "DISABLED"
    assert "ContributorInsightsRuleList" not in before
    on = client.update_contributor_insights(TableName=arn, ContributorInsightsAction="ENABLE")
    assert on["TableName"] == "py-insights" and on["ContributorInsightsStatus"] == "ENABLING"
    d = _until(lambda: client.describe_contributor_insights(TableName="py-insights"),
               lambda d: d["ContributorInsightsStatus"] == "ENABLED")
    assert d["ContributorInsightsStatus"] == "ENABLED"
    assert [r.split("-")[1] for r in d["ContributorInsightsRuleList"]] == ["PKC", "SKC", "PKT", "SKT"]
    assert d["ContributorInsightsMode"] == "ACCESSED_AND_THROTTLED_KEYS"
    assert isinstance(d["LastUpdateDateTime"], datetime.datetime)
    listed = client.list_contributor_insights(TableName=arn)["ContributorInsightsSummaries"]
    assert listed == [{"TableName": "py-insights", "ContributorInsightsStatus": "ENABLED",
                       "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"}]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_contributor_insights(TableName="py-insights", IndexName="nope",
                                           ContributorInsightsAction="ENABLE")
    with pytest.raises(client.exceptions.ClientError) as e:
        client.update_contributor_insights(TableName="py-insights", ContributorInsightsAction="ON")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_contributor_insights(TableName="py-missing-table")


def test_on_demand_throughput(client):
    """boto3's OnDemandThroughput (an on-demand table's maximum request units) is kept and
    reported by DescribeTable, changed alone by UpdateTable, -1 taking a maximum away."""
    _create(client, "py-capped", OnDemandThroughput={"MaxReadRequestUnits": 200})
    table = client.describe_table(TableName="py-capped")["Table"]
    assert table["OnDemandThroughput"] == {"MaxReadRequestUnits": 200}
    client.update_table(TableName="py-capped",
                        OnDemandThroughput={"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 40})
    client.get_waiter("table_exists").wait(TableName="py-capped", WaiterConfig={"Delay": 0.1})
    assert client.describe_table(TableName="py-capped")["Table"]["OnDemandThroughput"] == {
        "MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 40}
    with pytest.raises(client.exceptions.ClientError) as e:
        client.update_table(TableName="py-capped", OnDemandThroughput={"MaxWriteRequestUnits": 0})
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_what_needs_another_service_or_region(client):
    """Exports and imports are checked as DynamoDB checks them, then fail as for a bucket that
    does not exist (kedge serves no S3); global tables and Kinesis destinations: the reads say
    there are none, the writes are refused saying which service they need."""
    _create(client, "py-elsewhere")
    table_arn = client.describe_table(TableName="py-elsewhere")["Table"]["TableArn"]
    with pytest.raises(client.exceptions.PointInTimeRecoveryUnavailableException):
        client.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="bucket")
    client.update_continuous_backups(
        TableName="py-elsewhere",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    started = client.export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket="bucket", S3Prefix="daily")["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS"
    export_arn = started["ExportArn"]
    failed = _until(lambda: client.describe_export(ExportArn=export_arn)["ExportDescription"],
                    lambda d: d["ExportStatus"] == "FAILED")
    assert failed["ExportStatus"] == "FAILED"
    assert failed["FailureCode"] == "S3NoSuchBucket"
    assert "The specified bucket does not exist" in failed["FailureMessage"]
    assert [e["ExportArn"] for e in client.list_exports(TableArn=table_arn)["ExportSummaries"]] == [
        export_arn]
    with pytest.raises(client.exceptions.ExportNotFoundException):
        client.describe_export(ExportArn=export_arn + "0")
    # A retry with the same ClientToken is the same export; other parameters conflict.
    retried = [client.export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket="bucket", ClientToken="py-token")["ExportDescription"]["ExportArn"]
        for _ in range(2)]
    assert retried[0] == retried[1]
    with pytest.raises(client.exceptions.ExportConflictException):
        client.export_table_to_point_in_time(
            TableArn=table_arn, S3Bucket="other-bucket", ClientToken="py-token")
    with pytest.raises(client.exceptions.ClientError) as e:
        client.import_table(
            S3BucketSource={"S3Bucket": "bucket"}, InputFormat="DYNAMODB_JSON",
            TableCreationParameters={
                "TableName": "py-imported",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PROVISIONED"})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    imported = client.import_table(
        S3BucketSource={"S3Bucket": "bucket"}, InputFormat="CSV",
        TableCreationParameters={
            "TableName": "py-imported",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]
    assert imported["ImportStatus"] == "IN_PROGRESS"
    done = _until(
        lambda: client.describe_import(ImportArn=imported["ImportArn"])["ImportTableDescription"],
        lambda d: d["ImportStatus"] == "FAILED")
    assert done["ImportStatus"] == "FAILED"
    assert "py-imported" not in client.list_tables()["TableNames"]
    assert imported["ImportArn"] in [
        i["ImportArn"] for i in client.list_imports(PageSize=25)["ImportSummaryList"]]

    kinesis = client.describe_kinesis_streaming_destination(TableName="py-elsewhere")
    assert kinesis["TableName"] == "py-elsewhere"
    assert kinesis["KinesisDataStreamDestinations"] == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_kinesis_streaming_destination(TableName="py-missing-table")
    assert client.list_global_tables()["GlobalTables"] == []
    with pytest.raises(client.exceptions.GlobalTableNotFoundException):
        client.describe_global_table(GlobalTableName="py-elsewhere")
    with pytest.raises(client.exceptions.GlobalTableNotFoundException):
        client.describe_global_table_settings(GlobalTableName="py-elsewhere")
    with pytest.raises(client.exceptions.ClientError) as e:
        client.list_exports(MaxResults=100)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(client.exceptions.ClientError) as e:
        client.enable_kinesis_streaming_destination(
            TableName="py-elsewhere",
            StreamArn="arn:aws:kinesis:us-east-1:000000000000:stream/changes")
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "Kinesis" in e.value.response["Error"]["Message"]

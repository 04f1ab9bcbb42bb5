"""SQS through real boto3 (AWS JSON 1.0 protocol) and raw query-protocol requests against a
real `kedge serve` process. Expectations follow AWS's documented SQS behaviour."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCOUNT_ID, REGION, make_client, make_resource

ONE_MIB = 1_048_576


# ----- helpers -----------------------------------------------------------------------------


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def md5(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def md5_of_message_attributes(attrs: dict) -> str:
    """AWS's algorithm for MD5OfMessageAttributes (names sorted; length-prefixed fields)."""
    buf = b""

    def field(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    for name in sorted(attrs):
        value = attrs[name]
        dtype = value["DataType"]
        buf += field(name.encode()) + field(dtype.encode())
        if dtype.startswith("Binary"):
            raw = value["BinaryValue"]
            if isinstance(raw, str):
                raw = base64.b64decode(raw)
            buf += b"\x02" + field(raw)
        else:
            buf += b"\x01" + field(value["StringValue"].encode())
    return hashlib.md5(buf).hexdigest()


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def attrs_of(sqs, url, *names) -> dict:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"]).get("Attributes", {})


def counters(sqs, url) -> tuple[int, int, int]:
    a = attrs_of(sqs, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed")
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


def receive(sqs, url, **kw) -> list[dict]:
    kw.setdefault("WaitTimeSeconds", 0)
    return sqs.receive_message(QueueUrl=url, **kw).get("Messages", [])


def receive_n(sqs, url, n, attempts=20, **kw) -> list[dict]:
    """Receive until n messages were collected (short polls may return a subset)."""
    got: list[dict] = []
    for _ in range(attempts):
        got += receive(sqs, url, MaxNumberOfMessages=min(10, n - len(got)), **kw)
        if len(got) >= n:
            break
    assert len(got) == n, f"expected {n} messages, got {len(got)}: {[m['Body'] for m in got]}"
    return got


def one(sqs, url, **kw) -> dict:
    msgs = receive(sqs, url, **kw)
    assert len(msgs) == 1, msgs
    return msgs[0]


def create(sqs, name, **attrs) -> str:
    return sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})["QueueUrl"]


def now_ms() -> int:
    return int(time.time() * 1000)


# ----- CreateQueue / GetQueueUrl / ListQueues / DeleteQueue ------------------------------


def test_create_queue_url_arn_and_default_attributes(sqs, kedge_endpoint):
    before = int(time.time())
    url = create(sqs, "orders")
    assert url == f"{kedge_endpoint}/{ACCOUNT_ID}/orders"
    a = attrs_of(sqs, url, "All")
    assert a["QueueArn"] == queue_arn("orders")
    assert a["VisibilityTimeout"] == "30"
    assert a["MaximumMessageSize"] == str(ONE_MIB)
    assert a["MessageRetentionPeriod"] == "345600"
    assert a["DelaySeconds"] == "0"
    assert a["ReceiveMessageWaitTimeSeconds"] == "0"
    assert a["ApproximateNumberOfMessages"] == "0"
    assert a["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert a["ApproximateNumberOfMessagesDelayed"] == "0"
    # Timestamps are epoch seconds.
    assert before - 5 <= int(a["CreatedTimestamp"]) <= time.time() + 5
    assert int(a["LastModifiedTimestamp"]) >= int(a["CreatedTimestamp"])
    assert "FifoQueue" not in a or a["FifoQueue"] == "false"


def test_create_queue_is_idempotent_with_equal_attributes(sqs):
    u1 = create(sqs, "idem", VisibilityTimeout=45, DelaySeconds=2)
    u2 = create(sqs, "idem", VisibilityTimeout=45, DelaySeconds=2)
    assert u1 == u2
    assert sqs.list_queues()["QueueUrls"] == [u1]


def test_create_queue_with_different_attributes_fails(sqs):
    create(sqs, "conflict", VisibilityTimeout=45)
    with pytest.raises(sqs.exceptions.QueueNameExists) as ei:
        create(sqs, "conflict", VisibilityTimeout=46)
    assert code(ei) == "QueueAlreadyExists"
    assert http_status(ei) == 400
    # the original attribute is unchanged
    assert attrs_of(sqs, sqs.get_queue_url(QueueName="conflict")["QueueUrl"], "VisibilityTimeout") == {
        "VisibilityTimeout": "45"}


@pytest.mark.parametrize("name", ["has space", "a" * 81, "bad/slash", "dot.not-fifo", ""])
def test_create_queue_rejects_invalid_names(sqs, name):
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=name)
    assert code(ei) in ("InvalidParameterValue", "MissingParameter")


def test_create_queue_accepts_80_character_names(sqs):
    name = "a-_" + "b" * 77
    assert len(name) == 80
    assert create(sqs, name).endswith("/" + name)


@pytest.mark.parametrize("attrs,expected", [
    ({"VisibilityTimeout": "43201"}, "InvalidAttributeValue"),
    ({"DelaySeconds": "901"}, "InvalidAttributeValue"),
    ({"Bogus": "1"}, "InvalidAttributeName"),
])
def test_create_queue_validates_attributes(sqs, attrs, expected):
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="badattrs", Attributes=attrs)
    assert code(ei) == expected
    assert sqs.list_queues().get("QueueUrls", []) == []


def test_create_queue_with_tags(sqs):
    url = sqs.create_queue(QueueName="tagged", tags={"env": "dev", "owner": "me"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev", "owner": "me"}


def test_get_queue_url(sqs):
    url = create(sqs, "lookup")
    assert sqs.get_queue_url(QueueName="lookup")["QueueUrl"] == url


def test_get_queue_url_nonexistent(sqs):
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as ei:
        sqs.get_queue_url(QueueName="missing")
    assert code(ei) == "AWS.SimpleQueueService.NonExistentQueue"
    assert http_status(ei) == 400
    assert ei.value.response["Error"]["Type"] == "Sender"


def test_actions_on_nonexistent_queue(sqs, kedge_endpoint):
    url = f"{kedge_endpoint}/{ACCOUNT_ID}/ghost"
    calls = [
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=url),
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"}),
        lambda: sqs.purge_queue(QueueUrl=url),
        lambda: sqs.delete_queue(QueueUrl=url),
        lambda: sqs.list_queue_tags(QueueUrl=url),
        lambda: sqs.tag_queue(QueueUrl=url, Tags={"a": "b"}),
        lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}]),
    ]
    for call in calls:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist) as ei:
            call()
        assert code(ei) == "AWS.SimpleQueueService.NonExistentQueue"


def test_list_queues_with_prefix(sqs):
    urls = {n: create(sqs, n) for n in ("alpha-1", "alpha-2", "beta-1")}
    assert sorted(sqs.list_queues()["QueueUrls"]) == sorted(urls.values())
    assert sorted(sqs.list_queues(QueueNamePrefix="alpha")["QueueUrls"]) == sorted(
        [urls["alpha-1"], urls["alpha-2"]])
    assert sqs.list_queues(QueueNamePrefix="beta-1")["QueueUrls"] == [urls["beta-1"]]
    assert sqs.list_queues(QueueNamePrefix="zzz").get("QueueUrls", []) == []


def test_list_queues_pagination(sqs):
    names = [f"page-{i}" for i in range(5)]
    expected = sorted(create(sqs, n) for n in names)
    create(sqs, "other")
    seen = []
    resp = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2)
    pages = 1
    assert len(resp["QueueUrls"]) == 2
    while "NextToken" in resp:
        seen += resp["QueueUrls"]
        resp = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2, NextToken=resp["NextToken"])
        pages += 1
        assert pages <= 5, "pagination does not terminate"
    seen += resp.get("QueueUrls", [])
    assert pages == 3
    assert sorted(seen) == expected
    # boto3's paginator uses the same MaxResults/NextToken contract
    paged = []
    for page in sqs.get_paginator("list_queues").paginate(PaginationConfig={"PageSize": 2}):
        paged += page.get("QueueUrls", [])
    assert len(paged) == 6 and len(set(paged)) == 6
    # without MaxResults, no NextToken is returned
    assert "NextToken" not in sqs.list_queues()


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_queues_max_results_out_of_range(sqs, max_results):
    with pytest.raises(ClientError) as ei:
        sqs.list_queues(MaxResults=max_results)
    assert code(ei) == "InvalidParameterValue"


def test_delete_queue(sqs):
    url = create(sqs, "doomed")
    keep = create(sqs, "kept")
    sqs.send_message(QueueUrl=url, MessageBody="bye")
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="doomed")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert sqs.list_queues()["QueueUrls"] == [keep]
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.delete_queue(QueueUrl=url)


def test_recreate_deleted_queue_within_60_seconds(sqs):
    url = create(sqs, "phoenix")
    sqs.delete_queue(QueueUrl=url)
    # AWS: wait at least 60 seconds after deleting a queue before creating one with the same name
    with pytest.raises(sqs.exceptions.QueueDeletedRecently) as ei:
        sqs.create_queue(QueueName="phoenix")
    assert code(ei) == "AWS.SimpleQueueService.QueueDeletedRecently"


def test_boto3_resource_api(kedge_endpoint):
    sqs_r = make_resource("sqs", kedge_endpoint)
    queue = sqs_r.create_queue(QueueName="resource", Attributes={"VisibilityTimeout": "20"})
    assert queue.attributes["VisibilityTimeout"] == "20"
    same = sqs_r.get_queue_by_name(QueueName="resource")
    assert same.url == queue.url
    queue.send_message(MessageBody="via resource",
                       MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    queue.send_messages(Entries=[{"Id": "a", "MessageBody": "batch a"}, {"Id": "b", "MessageBody": "batch b"}])
    queue.load()
    assert queue.attributes["ApproximateNumberOfMessages"] == "3"
    bodies = []
    for _ in range(10):
        for message in queue.receive_messages(MaxNumberOfMessages=10, MessageAttributeNames=["All"]):
            bodies.append(message.body)
            if message.body == "via resource":
                assert message.message_attributes == {"k": {"DataType": "String", "StringValue": "v"}}
            message.delete()
        if len(bodies) == 3:
            break
    assert sorted(bodies) == ["batch a", "batch b", "via resource"]
    assert [q.url for q in sqs_r.queues.filter(QueueNamePrefix="res")] == [queue.url]
    queue.delete()
    assert list(sqs_r.queues.all()) == []


# ----- PurgeQueue ----------------------------------------------------------------------------


def test_purge_queue(sqs):
    url = create(sqs, "purge-me")
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=60)
    inflight = one(sqs, url, VisibilityTimeout=60)  # noqa: F841 - purge also removes in-flight
    sqs.purge_queue(QueueUrl=url)
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    assert counters(sqs, url) == (0, 0, 0)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as ei:
        sqs.purge_queue(QueueUrl=url)
    assert code(ei) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert http_status(ei) == 403  # as AWS documents it


# ----- Get/SetQueueAttributes ----------------------------------------------------------------


def test_queue_attribute_counters(sqs):
    url = create(sqs, "counted")
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"visible-{i}")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=120)
    assert counters(sqs, url) == (3, 0, 1)
    got = receive_n(sqs, url, 2, VisibilityTimeout=120)
    assert {m["Body"] for m in got} <= {f"visible-{i}" for i in range(3)}
    assert counters(sqs, url) == (1, 2, 1)
    a = attrs_of(sqs, url, "All")
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("1", "2", "1")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    assert counters(sqs, url) == (1, 1, 1)


def test_get_queue_attributes_subset(sqs):
    url = create(sqs, "subset")
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "QueueArn"])["Attributes"]
    assert a == {"VisibilityTimeout": "30", "QueueArn": queue_arn("subset")}
    # no names: no attributes
    assert sqs.get_queue_attributes(QueueUrl=url).get("Attributes", {}) == {}


def test_responses_carry_a_request_id(sqs):
    meta = sqs.list_queues()["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta["RequestId"]
    with pytest.raises(ClientError) as ei:
        sqs.get_queue_url(QueueName="absent")
    assert ei.value.response["ResponseMetadata"]["RequestId"]


def test_set_queue_attributes_roundtrip(sqs):
    url = create(sqs, "settable")
    created = attrs_of(sqs, url, "CreatedTimestamp")["CreatedTimestamp"]
    new = {
        "VisibilityTimeout": "10",
        "DelaySeconds": "5",
        "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "120",
        "ReceiveMessageWaitTimeSeconds": "2",
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes=new)
    a = attrs_of(sqs, url, "All")
    for k, v in new.items():
        assert a[k] == v, k
    assert a["CreatedTimestamp"] == created
    assert int(a["LastModifiedTimestamp"]) >= int(created)
    # boundaries are accepted
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "43200", "DelaySeconds": "900", "MaximumMessageSize": "1024",
        "MessageRetentionPeriod": "1209600", "ReceiveMessageWaitTimeSeconds": "20"})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "0", "DelaySeconds": "0", "MaximumMessageSize": str(ONE_MIB),
        "MessageRetentionPeriod": "60", "ReceiveMessageWaitTimeSeconds": "0"})
    assert attrs_of(sqs, url, "MaximumMessageSize")["MaximumMessageSize"] == str(ONE_MIB)


@pytest.mark.parametrize("name,value", [
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "-1"),
    ("VisibilityTimeout", "abc"),
    ("DelaySeconds", "901"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", str(ONE_MIB + 1)),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
])
def test_set_queue_attributes_invalid_values(sqs, name, value):
    url = create(sqs, "strict")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={name: value})
    assert code(ei) == "InvalidAttributeValue"
    assert http_status(ei) == 400
    assert isinstance(ei.value, sqs.exceptions.InvalidAttributeValue)
    # nothing changed
    assert attrs_of(sqs, url, "VisibilityTimeout")["VisibilityTimeout"] == "30"


def test_unknown_or_read_only_attribute_names(sqs):
    url = create(sqs, "names")
    with pytest.raises(ClientError) as ei:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert code(ei) == "InvalidAttributeName"
    assert isinstance(ei.value, sqs.exceptions.InvalidAttributeName)
    for name in ("NoSuchAttribute", "QueueArn", "ApproximateNumberOfMessages", "CreatedTimestamp"):
        with pytest.raises(ClientError) as ei:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={name: "1"})
        assert code(ei) == "InvalidAttributeName", name


def test_standard_queue_message_group_id_fair_queues(sqs):
    # standard queues accept MessageGroupId (fair queues); it does not serialise the group
    url = create(sqs, "fair")
    a = sqs.send_message(QueueUrl=url, MessageBody="t1-a", MessageGroupId="tenant-1")
    b = sqs.send_message(QueueUrl=url, MessageBody="t1-b", MessageGroupId="tenant-1")
    assert "SequenceNumber" not in a
    first = one(sqs, url, MaxNumberOfMessages=1)
    second = one(sqs, url, MaxNumberOfMessages=1)  # same group, first still in flight
    assert {first["MessageId"], second["MessageId"]} == {a["MessageId"], b["MessageId"]}


def test_fifo_only_attributes_on_standard_queue(sqs):
    url = create(sqs, "standard")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
    assert code(ei) in ("InvalidAttributeName", "InvalidAttributeValue")
    with pytest.raises(ClientError) as ei:  # FifoQueue can only be given at creation
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert code(ei) in ("InvalidAttributeName", "InvalidAttributeValue")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert code(ei) == "InvalidParameterValue"
    assert counters(sqs, url) == (0, 0, 0)


def test_documented_optional_attributes_are_accepted(sqs):
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage",
        "Resource": queue_arn("secured")}]})
    url = create(sqs, "secured", Policy=policy, SqsManagedSseEnabled="true")
    a = attrs_of(sqs, url, "All")
    assert json.loads(a["Policy"]) == json.loads(policy)
    assert a["SqsManagedSseEnabled"] == "true"
    kms = create(sqs, "kms", KmsMasterKeyId="alias/aws/sqs", KmsDataKeyReusePeriodSeconds="300")
    a = attrs_of(sqs, kms, "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds")
    assert a == {"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "300"}
    fifo = sqs.create_queue(QueueName="fast.fifo", Attributes={
        "FifoQueue": "true", "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId"})["QueueUrl"]
    a = attrs_of(sqs, fifo, "DeduplicationScope", "FifoThroughputLimit")
    assert a == {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoThroughputLimit": "warp-speed"})
    assert code(ei) == "InvalidAttributeValue"


# ----- Tags ----------------------------------------------------------------------------------


def test_tag_untag_list_queue_tags(sqs):
    url = create(sqs, "tags")
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test", "team": "a"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test", "team": "a"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod", "team": "a"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "not-there"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


# ----- SendMessage / ReceiveMessage / DeleteMessage ------------------------------------------


def test_send_receive_delete(sqs):
    url = create(sqs, "basic")
    body = "hello, kedge ✓"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5(body)
    uuid.UUID(sent["MessageId"])  # AWS message ids are UUIDs
    assert "MD5OfMessageAttributes" not in sent
    m = one(sqs, url)
    assert m["Body"] == body
    assert m["MessageId"] == sent["MessageId"]
    assert m["MD5OfBody"] == md5(body)
    assert m["ReceiptHandle"]
    assert "MessageAttributes" not in m
    assert counters(sqs, url) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert counters(sqs, url) == (0, 0, 0)
    assert receive(sqs, url) == []


def test_message_attributes_and_md5s(sqs):
    url = create(sqs, "attrs")
    attrs = {
        "s": {"DataType": "String", "StringValue": "héllo ☃"},
        "n": {"DataType": "Number", "StringValue": "3.14"},
        "b": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
        "custom": {"DataType": "String.custom", "StringValue": "x"},
        "int": {"DataType": "Number.int", "StringValue": "-42"},
        "png": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == md5("with attributes")
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    m = one(sqs, url, MessageAttributeNames=["All"])
    assert m["MessageAttributes"] == attrs
    assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    assert m["MD5OfBody"] == md5("with attributes")


def test_message_attribute_name_filters(sqs):
    url = create(sqs, "filters")
    attrs = {
        "foo.a": {"DataType": "String", "StringValue": "1"},
        "foo.b": {"DataType": "Number", "StringValue": "2"},
        "bar": {"DataType": "String", "StringValue": "3"},
    }
    sqs.send_message(QueueUrl=url, MessageBody="filtered", MessageAttributes=attrs)

    def names(requested):
        kw = {} if requested is None else {"MessageAttributeNames": requested}
        m = one(sqs, url, VisibilityTimeout=0, **kw)
        got = m.get("MessageAttributes", {})
        if got:
            # the MD5 covers the attributes returned
            assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(got)
        return set(got)

    assert names(None) == set()
    assert names(["All"]) == {"foo.a", "foo.b", "bar"}
    assert names([".*"]) == {"foo.a", "foo.b", "bar"}
    assert names(["foo.*"]) == {"foo.a", "foo.b"}
    assert names(["bar"]) == {"bar"}
    assert names(["bar", "foo.a"]) == {"bar", "foo.a"}
    assert names(["nothing"]) == set()


def test_message_system_attribute_aws_trace_header(sqs):
    url = create(sqs, "tracing")
    trace = {"AWSTraceHeader": {"DataType": "String",
                                "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="traced", MessageSystemAttributes=trace)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_message_attributes(trace)
    m = one(sqs, url, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert m["Attributes"] == {"AWSTraceHeader": trace["AWSTraceHeader"]["StringValue"]}
    assert "MessageAttributes" not in m


@pytest.mark.parametrize("attrs", [
    {"x": {"DataType": "Integer", "StringValue": "1"}},
    {"x": {"DataType": "Number", "StringValue": "not-a-number"}},
    {"x": {"DataType": "String", "StringValue": ""}},
    {"x": {"DataType": "Binary", "BinaryValue": b""}},  # "name, type, and value must not be empty"
    {"x": {"DataType": "String"}},
    {"AWS.reserved": {"DataType": "String", "StringValue": "1"}},
    {"amazon.reserved": {"DataType": "String", "StringValue": "1"}},
    {"bad name!": {"DataType": "String", "StringValue": "1"}},
    {".leading-dot": {"DataType": "String", "StringValue": "1"}},
    {"double..dot": {"DataType": "String", "StringValue": "1"}},
    {"n" * 257: {"DataType": "String", "StringValue": "1"}},
    {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)},
], ids=["bad-type", "nan", "empty-string", "empty-binary", "no-value", "aws-prefix", "amazon-prefix",
        "bad-chars", "leading-dot", "double-dot", "long-name", "eleven"])
def test_invalid_message_attributes(sqs, attrs):
    url = create(sqs, "badattr")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
    assert code(ei) == "InvalidParameterValue"
    assert counters(sqs, url) == (0, 0, 0)


def test_message_attribute_value_characters(sqs):
    url = create(sqs, "attrchars")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x",
                         MessageAttributes={"a": {"DataType": "String", "StringValue": "nul\x00"}})
    assert code(ei) in ("InvalidParameterValue", "InvalidMessageContents")
    assert counters(sqs, url) == (0, 0, 0)


def test_per_message_delay(sqs):
    url = create(sqs, "delayed")
    sent = sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    t0 = time.monotonic()
    assert receive(sqs, url) == []
    assert counters(sqs, url) == (0, 0, 1)
    m = one(sqs, url, WaitTimeSeconds=5)
    elapsed = time.monotonic() - t0
    assert m["MessageId"] == sent["MessageId"]
    assert 0.5 <= elapsed < 4, elapsed
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code(ei) == "InvalidParameterValue"


def test_per_message_delay_overrides_queue_delay(sqs):
    url = create(sqs, "queue-delay", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="queue default")
    sqs.send_message(QueueUrl=url, MessageBody="immediate", DelaySeconds=0)
    assert counters(sqs, url) == (1, 0, 1)
    assert one(sqs, url)["Body"] == "immediate"


def test_message_size_limit(sqs):
    small = create(sqs, "small", MaximumMessageSize=1024)
    sqs.send_message(QueueUrl=small, MessageBody="x" * 1024)
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=small, MessageBody="x" * 1025)
    assert code(ei) == "InvalidParameterValue"
    # message attributes count towards the size: name + type + value
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=small, MessageBody="x" * 1000, MessageAttributes={
            "attr": {"DataType": "String", "StringValue": "y" * 30}})
    assert code(ei) == "InvalidParameterValue"
    # size is in bytes of UTF-8, not characters
    with pytest.raises(ClientError):
        sqs.send_message(QueueUrl=small, MessageBody="é" * 600)
    default = create(sqs, "default-size")
    sqs.send_message(QueueUrl=default, MessageBody="z" * ONE_MIB)
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=default, MessageBody="z" * (ONE_MIB + 1))
    assert code(ei) == "InvalidParameterValue"
    assert counters(sqs, small)[0] == 1
    assert counters(sqs, default)[0] == 1
    big = one(sqs, default)
    assert len(big["Body"]) == ONE_MIB and big["MD5OfBody"] == md5("z" * ONE_MIB)


@pytest.mark.parametrize("body", ["a\x00b", "\x08", "\x1f", "ok\ufffe", "\uffff"])
def test_invalid_message_contents(sqs, body):
    url = create(sqs, "contents")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert code(ei) == "InvalidMessageContents"
    assert isinstance(ei.value, sqs.exceptions.InvalidMessageContents)
    assert counters(sqs, url) == (0, 0, 0)


def test_allowed_unusual_characters_round_trip(sqs):
    url = create(sqs, "unicode")
    body = "tab\tnl\ncr\r\ud7ff\ue000\ufffd\U0001F600\U0010FFFF <xml attr=\"1\">&amp;</xml>"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5(body)
    m = one(sqs, url)
    assert m["Body"] == body
    assert m["MD5OfBody"] == md5(body)


def test_empty_body_rejected(sqs):
    url = create(sqs, "empty-body")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="")
    assert code(ei) in ("MissingParameter", "InvalidParameterValue")


# ----- SendMessageBatch ----------------------------------------------------------------------


def test_send_message_batch(sqs):
    url = create(sqs, "batch")
    entries = [
        {"Id": "plain", "MessageBody": "one"},
        {"Id": "attrs", "MessageBody": "two",
         "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "delayed_1-x", "MessageBody": "three", "DelaySeconds": 60},
    ]
    resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert resp.get("Failed", []) == []
    ok = {e["Id"]: e for e in resp["Successful"]}
    assert set(ok) == {"plain", "attrs", "delayed_1-x"}
    assert ok["plain"]["MD5OfMessageBody"] == md5("one")
    assert ok["attrs"]["MD5OfMessageAttributes"] == md5_of_message_attributes(entries[1]["MessageAttributes"])
    assert len({e["MessageId"] for e in ok.values()}) == 3
    assert counters(sqs, url) == (2, 0, 1)
    got = receive_n(sqs, url, 2, MessageAttributeNames=["All"])
    by_body = {m["Body"]: m for m in got}
    assert set(by_body) == {"one", "two"}
    assert by_body["two"]["MessageAttributes"] == entries[1]["MessageAttributes"]
    assert by_body["one"]["MessageId"] == ok["plain"]["MessageId"]


def test_send_message_batch_partial_failure(sqs):
    url = create(sqs, "batch-partial")
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "good1", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "nul\x00char"},
        {"Id": "good2", "MessageBody": "also fine"},
    ])
    assert {e["Id"] for e in resp["Successful"]} == {"good1", "good2"}
    assert len(resp["Failed"]) == 1
    failed = resp["Failed"][0]
    assert failed["Id"] == "bad"
    assert failed["Code"] == "InvalidMessageContents"
    assert failed["SenderFault"] is True
    assert counters(sqs, url) == (2, 0, 0)


def test_send_message_batch_limits(sqs):
    url = create(sqs, "batch-limits")
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": "x"} for i in range(11)])
    assert code(ei) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "same", "MessageBody": "x"},
                                                      {"Id": "same", "MessageBody": "y"}])
    assert code(ei) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(sqs.exceptions.EmptyBatchRequest) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    assert code(ei) == "AWS.SimpleQueueService.EmptyBatchRequest"
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "not valid!", "MessageBody": "x"}])
    assert code(ei) == "AWS.SimpleQueueService.InvalidBatchEntryId"
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId):  # at most 80 characters
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "i" * 81, "MessageBody": "x"}])
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "i" * 80, "MessageBody": "x"}])
    sqs.purge_queue(QueueUrl=url)
    # the sum of all messages in a batch may not exceed 1 MiB
    chunk = "q" * (110 * 1024)
    with pytest.raises(sqs.exceptions.BatchRequestTooLong) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": chunk} for i in range(10)])
    assert code(ei) == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert counters(sqs, url) == (0, 0, 0)
    # exactly 10 is fine
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": "x"} for i in range(10)])
    assert len(resp["Successful"]) == 10


def test_oversized_batch_entry_fails_alone(sqs):
    url = create(sqs, "batch-small", MaximumMessageSize=1024)
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "big", "MessageBody": "b" * 2000},
        {"Id": "ok", "MessageBody": "fits"},
    ])
    assert [e["Id"] for e in resp["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"]) for e in resp["Failed"]] == [("big", "InvalidParameterValue")]


# ----- ReceiveMessage ------------------------------------------------------------------------


def test_receive_max_number_of_messages(sqs):
    url = create(sqs, "many")
    bodies = {f"m{i}" for i in range(15)}
    for chunk in (sorted(bodies)[:10], sorted(bodies)[10:]):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": b, "MessageBody": b} for b in chunk])
    first = receive(sqs, url, MaxNumberOfMessages=10)
    assert 1 <= len(first) <= 10
    rest = receive_n(sqs, url, 15 - len(first))
    assert sorted(m["Body"] for m in first + rest) == sorted(bodies)
    assert len({m["MessageId"] for m in first + rest}) == 15
    assert receive(sqs, url, MaxNumberOfMessages=10) == []
    # default is one message
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"n{i}", "MessageBody": "n"} for i in range(3)])
    assert len(receive(sqs, url)) == 1


@pytest.mark.parametrize("kw", [
    {"MaxNumberOfMessages": 11},
    {"MaxNumberOfMessages": 0},
    {"WaitTimeSeconds": 21},
    {"VisibilityTimeout": 43201},
])
def test_receive_parameter_ranges(sqs, kw):
    url = create(sqs, "ranges")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    with pytest.raises(ClientError) as ei:
        sqs.receive_message(QueueUrl=url, **kw)
    assert code(ei) == "InvalidParameterValue"
    assert http_status(ei) == 400
    assert counters(sqs, url) == (1, 0, 0)


def test_receive_system_attributes(sqs):
    url = create(sqs, "sysattrs")
    t0 = now_ms()
    sqs.send_message(QueueUrl=url, MessageBody="stamp")
    m = one(sqs, url, AttributeNames=["All"], VisibilityTimeout=0)
    a = m["Attributes"]
    assert {"SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(a)
    sent = int(a["SentTimestamp"])
    first = int(a["ApproximateFirstReceiveTimestamp"])
    assert t0 - 5000 <= sent <= now_ms() + 5000  # epoch milliseconds
    assert sent <= first <= now_ms() + 5000
    assert a["ApproximateReceiveCount"] == "1"
    assert a["SenderId"]
    # the newer MessageSystemAttributeNames parameter behaves the same
    m2 = one(sqs, url, MessageSystemAttributeNames=["All"], VisibilityTimeout=0)
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2"
    assert m2["Attributes"]["ApproximateFirstReceiveTimestamp"] == a["ApproximateFirstReceiveTimestamp"]
    assert m2["Attributes"]["SentTimestamp"] == a["SentTimestamp"]
    # a specific name returns just that one
    m3 = one(sqs, url, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)
    assert m3["Attributes"] == {"ApproximateReceiveCount": "3"}
    # no names → no attributes
    m4 = one(sqs, url, VisibilityTimeout=0)
    assert "Attributes" not in m4


# ----- visibility timeout --------------------------------------------------------------------


def test_visibility_timeout_zero_on_receive(sqs):
    url = create(sqs, "vis0")
    sqs.send_message(QueueUrl=url, MessageBody="again")
    counts = []
    for _ in range(3):
        m = one(sqs, url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
        counts.append(int(m["Attributes"]["ApproximateReceiveCount"]))
    assert counts == [1, 2, 3]


def test_default_visibility_hides_message(sqs):
    url = create(sqs, "vis-default")
    sqs.send_message(QueueUrl=url, MessageBody="hidden")
    m = one(sqs, url)
    assert receive(sqs, url) == []
    assert counters(sqs, url) == (0, 1, 0)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert counters(sqs, url) == (1, 0, 0)
    m2 = one(sqs, url, AttributeNames=["ApproximateReceiveCount"])
    assert m2["MessageId"] == m["MessageId"]
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2"
    assert m2["ReceiptHandle"] != m["ReceiptHandle"]


def test_queue_visibility_timeout_attribute_applies(sqs):
    url = create(sqs, "vis-queue-attr", VisibilityTimeout=0)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    first = one(sqs, url)
    assert one(sqs, url)["MessageId"] == first["MessageId"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "600"})
    one(sqs, url)
    assert receive(sqs, url) == []


def test_change_visibility_extends(sqs):
    url = create(sqs, "vis-extend")
    sqs.send_message(QueueUrl=url, MessageBody="extend")
    m = one(sqs, url, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=300)
    # without the change it would reappear after 1 s
    t = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=2) == []
    assert time.monotonic() - t >= 1.9
    assert counters(sqs, url) == (0, 1, 0)


def test_visibility_expiry_wakes_long_poll(sqs):
    url = create(sqs, "vis-expiry")
    sent = sqs.send_message(QueueUrl=url, MessageBody="comes back")
    one(sqs, url, VisibilityTimeout=1)
    t = time.monotonic()
    m = one(sqs, url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])
    elapsed = time.monotonic() - t
    assert m["MessageId"] == sent["MessageId"]
    assert m["Attributes"]["ApproximateReceiveCount"] == "2"
    assert 0.5 <= elapsed < 3, elapsed


def test_change_visibility_of_message_not_in_flight(sqs):
    url = create(sqs, "vis-notinflight")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    m = one(sqs, url, VisibilityTimeout=0)  # visible again at once: no longer in flight
    # AWS answers 200 (LocalStack's AWS-recorded snapshot of this case) and changes nothing.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=30)
    assert counters(sqs, url) == (1, 0, 0)


def test_change_visibility_errors(sqs):
    url = create(sqs, "vis-errors")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    m = one(sqs, url)
    with pytest.raises(ClientError) as ei:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43201)
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as ei:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="garbage", VisibilityTimeout=0)
    assert code(ei) == "ReceiptHandleIsInvalid"


def test_old_receipt_handle_deletes_after_redelivery(sqs):
    # SQS answers a handle from an earlier delivery with success and removes the message.
    url = create(sqs, "stale")
    sqs.send_message(QueueUrl=url, MessageBody="stale-handle")
    h1 = one(sqs, url, VisibilityTimeout=0)["ReceiptHandle"]
    h2 = one(sqs, url, VisibilityTimeout=0)["ReceiptHandle"]
    assert h1 != h2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=h1)
    assert receive(sqs, url) == []
    assert counters(sqs, url) == (0, 0, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=h2)


def test_expired_fifo_receipt_handle_is_rejected(sqs):
    url = sqs.create_queue(
        QueueName="expired.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="f", MessageGroupId="g")
    h1 = one(sqs, url, VisibilityTimeout=0)["ReceiptHandle"]
    with pytest.raises(ClientError) as ei:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=h1)
    assert code(ei) == "InvalidParameterValue"
    assert "The receipt handle has expired" in ei.value.response["Error"]["Message"]
    h2 = one(sqs, url)["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=h2)
    assert receive(sqs, url) == []


def test_latest_handle_deletes_after_visibility_expired(sqs):
    url = create(sqs, "expired-handle")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    m = one(sqs, url, VisibilityTimeout=0)  # visible again, but this is still the newest handle
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert receive(sqs, url) == []
    assert counters(sqs, url) == (0, 0, 0)


def test_change_message_visibility_batch(sqs):
    url = create(sqs, "vis-batch")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"b{i}"} for i in range(3)])
    msgs = receive_n(sqs, url, 3, VisibilityTimeout=120)
    assert counters(sqs, url) == (0, 3, 0)
    resp = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "b", "ReceiptHandle": msgs[1]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "c", "ReceiptHandle": "garbage", "VisibilityTimeout": 0},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == [("c", "ReceiptHandleIsInvalid", True)]
    assert counters(sqs, url) == (2, 1, 0)
    again = receive_n(sqs, url, 2)
    assert {m["MessageId"] for m in again} == {msgs[0]["MessageId"], msgs[1]["MessageId"]}
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "x", "ReceiptHandle": msgs[2]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "x", "ReceiptHandle": msgs[2]["ReceiptHandle"], "VisibilityTimeout": 0}])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": f"x{i}", "ReceiptHandle": msgs[2]["ReceiptHandle"], "VisibilityTimeout": 0} for i in range(11)])
    resp = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "toolong", "ReceiptHandle": msgs[2]["ReceiptHandle"], "VisibilityTimeout": 43201}])
    assert resp.get("Successful", []) == []
    assert [(f["Id"], f["Code"]) for f in resp["Failed"]] == [("toolong", "InvalidParameterValue")]


def test_delete_message_invalid_handle(sqs):
    url = create(sqs, "del-invalid")
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as ei:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-real-handle")
    assert code(ei) == "ReceiptHandleIsInvalid"
    assert http_status(ei) == 400


def test_receipt_handle_only_works_on_its_own_queue(sqs):
    q1 = create(sqs, "own-1")
    q2 = create(sqs, "own-2")
    sqs.send_message(QueueUrl=q1, MessageBody="mine")
    m = one(sqs, q1)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=q2, ReceiptHandle=m["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.change_message_visibility(QueueUrl=q2, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert counters(sqs, q1) == (0, 1, 0)
    sqs.delete_message(QueueUrl=q1, ReceiptHandle=m["ReceiptHandle"])
    assert counters(sqs, q1) == (0, 0, 0)


def test_delete_message_batch(sqs):
    url = create(sqs, "del-batch")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": f"b{i}"} for i in range(3)])
    msgs = receive_n(sqs, url, 3)
    resp = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "one", "ReceiptHandle": msgs[0]["ReceiptHandle"]},
        {"Id": "two", "ReceiptHandle": msgs[1]["ReceiptHandle"]},
        {"Id": "junk", "ReceiptHandle": "garbage"},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["one", "two"]
    assert len(resp["Failed"]) == 1
    f = resp["Failed"][0]
    assert (f["Id"], f["Code"], f["SenderFault"]) == ("junk", "ReceiptHandleIsInvalid", True)
    assert counters(sqs, url) == (0, 1, 0)
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.delete_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": "d", "ReceiptHandle": msgs[2]["ReceiptHandle"]},
            {"Id": "d", "ReceiptHandle": msgs[2]["ReceiptHandle"]}])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": f"d{i}", "ReceiptHandle": msgs[2]["ReceiptHandle"]} for i in range(11)])
    assert counters(sqs, url) == (0, 1, 0)


def test_concurrent_consumers_receive_each_message_once(sqs, kedge_endpoint):
    url = create(sqs, "concurrent")
    total = 100
    senders = [make_client("sqs", kedge_endpoint) for _ in range(4)]

    def send(client, start):
        for b in range(start, total, 40):
            client.send_message_batch(QueueUrl=url, Entries=[
                {"Id": f"m{i}", "MessageBody": f"msg-{i}"} for i in range(b, min(b + 10, total))])

    threads = [threading.Thread(target=send, args=(c, k * 10)) for k, c in enumerate(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert counters(sqs, url) == (total, 0, 0)

    received: list = []
    lock = threading.Lock()
    deadline = time.monotonic() + 15

    def consume(client):
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= total:
                    return
            msgs = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120,
                                          WaitTimeSeconds=0).get("Messages", [])
            if msgs:
                client.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            with lock:
                received.extend(m["Body"] for m in msgs)

    consumers = [make_client("sqs", kedge_endpoint) for _ in range(4)]
    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert len(received) == total, f"{len(received)} deliveries"
    assert sorted(received) == sorted(f"msg-{i}" for i in range(total))
    assert counters(sqs, url) == (0, 0, 0)


# ----- long polling --------------------------------------------------------------------------


def test_long_poll_returns_when_a_message_is_sent(sqs, kedge_endpoint):
    url = create(sqs, "longpoll")
    poller = make_client("sqs", kedge_endpoint)
    result: dict = {}

    def poll():
        t = time.monotonic()
        try:
            result["messages"] = poller.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
        except Exception as e:  # surfaced below
            result["error"] = e
        result["returned_at"] = time.monotonic()
        result["started_at"] = t

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)  # let the poll reach the server and start waiting
    assert th.is_alive(), f"long poll returned before any message was sent: {result}"
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    th.join(timeout=15)
    assert not th.is_alive()
    assert "error" not in result, result.get("error")
    assert [m["Body"] for m in result["messages"]] == ["wake up"]
    latency = result["returned_at"] - sent_at
    total = result["returned_at"] - result["started_at"]
    assert latency < 5, f"long poll returned {latency:.2f}s after the send"
    assert total < 5, total


def test_concurrent_long_polls_deliver_a_message_once(sqs, kedge_endpoint):
    url = create(sqs, "two-pollers")
    results: list = []
    lock = threading.Lock()

    def poll():
        client = pollers.pop()
        t = time.monotonic()
        msgs = client.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
        with lock:
            results.append((msgs, time.monotonic() - t))

    pollers = [make_client("sqs", kedge_endpoint) for _ in range(2)]
    threads = [threading.Thread(target=poll) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="only once")
    for th in threads:
        th.join(timeout=10)
    delivered = [m["Body"] for msgs, _ in results for m in msgs]
    assert delivered == ["only once"]
    winner = [t for msgs, t in results if msgs][0]
    assert winner < 1.5, winner


def _poll_in_thread(client, url, wait=5):
    result: dict = {}

    def poll():
        try:
            result["messages"] = client.receive_message(QueueUrl=url, WaitTimeSeconds=wait,
                                                        MaxNumberOfMessages=1).get("Messages", [])
        except Exception as e:
            result["error"] = e
        result["at"] = time.monotonic()

    th = threading.Thread(target=poll)
    th.start()
    return th, result


def test_long_poll_wakes_when_a_message_becomes_visible_again(sqs, kedge_endpoint):
    url = create(sqs, "wake-visible")
    sqs.send_message(QueueUrl=url, MessageBody="retry me")
    m = one(sqs, url, VisibilityTimeout=120)
    th, result = _poll_in_thread(make_client("sqs", kedge_endpoint), url)
    time.sleep(0.3)
    assert th.is_alive()
    t = time.monotonic()
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    th.join(timeout=10)
    assert "error" not in result, result
    assert [x["Body"] for x in result["messages"]] == ["retry me"]
    assert result["at"] - t < 2, "the long poll was not woken by ChangeMessageVisibility"


def test_long_poll_wakes_when_a_fifo_group_unlocks(sqs, kedge_endpoint):
    url = create_fifo(sqs, "wake-group.fifo")
    for b in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=b, MessageGroupId="g", MessageDeduplicationId=b)
    m = one(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=120)
    assert m["Body"] == "first"
    th, result = _poll_in_thread(make_client("sqs", kedge_endpoint), url, wait=3)
    time.sleep(0.3)
    assert th.is_alive(), "the group is locked: the poll should be waiting"
    t = time.monotonic()
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    th.join(timeout=10)
    assert "error" not in result, result
    assert [x["Body"] for x in result["messages"]] == ["second"]
    assert result["at"] - t < 2, "the long poll was not woken when the group unlocked"


def test_empty_long_poll_waits_the_full_time(sqs):
    url = create(sqs, "longpoll-empty")
    t = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=1) == []
    elapsed = time.monotonic() - t
    assert 0.9 <= elapsed < 3, elapsed


def test_queue_receive_wait_time_default(sqs):
    url = create(sqs, "longpoll-default", ReceiveMessageWaitTimeSeconds=1)
    t = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert 0.9 <= time.monotonic() - t < 3
    t = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=0) == []  # explicit 0 overrides the queue default
    assert time.monotonic() - t < 0.9


# ----- FIFO ----------------------------------------------------------------------------------


def create_fifo(sqs, name, **attrs):
    attrs = {"FifoQueue": "true", **{k: str(v) for k, v in attrs.items()}}
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


def test_fifo_queue_creation_rules(sqs):
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="jobs.fifo")
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="jobs", Attributes={"FifoQueue": "true"})
    assert code(ei) == "InvalidParameterValue"
    url = create_fifo(sqs, "jobs.fifo")
    assert url.endswith("/jobs.fifo")
    a = attrs_of(sqs, url, "All")
    assert a["FifoQueue"] == "true"
    assert a["ContentBasedDeduplication"] == "false"
    assert a["QueueArn"] == queue_arn("jobs.fifo")
    assert sqs.list_queues()["QueueUrls"] == [url]


def test_fifo_send_parameter_rules(sqs):
    url = create_fifo(sqs, "rules.fifo")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert code(ei) == "MissingParameter"
    with pytest.raises(ClientError) as ei:  # no dedup id and no content-based deduplication
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d",
                         DelaySeconds=5)
    assert code(ei) == "InvalidParameterValue"
    assert counters(sqs, url) == (0, 0, 0)


def test_fifo_ordering_and_sequence_numbers(sqs):
    url = create_fifo(sqs, "ordered.fifo")
    seqs = []
    for i in range(6):
        r = sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g1", MessageDeduplicationId=f"d{i}")
        assert r["MD5OfMessageBody"] == md5(f"m{i}")
        assert re.fullmatch(r"\d+", r["SequenceNumber"]), r["SequenceNumber"]
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    got = receive(sqs, url, MaxNumberOfMessages=10, AttributeNames=["All"])
    assert [m["Body"] for m in got] == [f"m{i}" for i in range(len(got))]
    assert len(got) >= 1
    first = got[0]["Attributes"]
    assert first["MessageGroupId"] == "g1"
    assert first["MessageDeduplicationId"] == "d0"
    assert int(first["SequenceNumber"]) == seqs[0]
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    rest = []
    for _ in range(10):
        batch = receive(sqs, url, MaxNumberOfMessages=10)
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        rest += batch
        if len(got) + len(rest) == 6:
            break
    assert [m["Body"] for m in got + rest] == [f"m{i}" for i in range(6)]


def test_fifo_group_with_inflight_message_is_locked(sqs):
    url = create_fifo(sqs, "groups.fifo")
    for body, group in (("a1", "ga"), ("a2", "ga"), ("b1", "gb")):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)
    a1 = one(sqs, url, MaxNumberOfMessages=1)
    assert a1["Body"] == "a1"
    second = receive(sqs, url, MaxNumberOfMessages=10)
    assert {m["Body"] for m in second} <= {"b1"}, "group ga is locked while a1 is in flight"
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=10)] == []
    # making a1 visible again redelivers a1 (not a2): order is kept across retries
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=a1["ReceiptHandle"], VisibilityTimeout=0)
    again = one(sqs, url, MaxNumberOfMessages=1)
    assert again["Body"] == "a1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert one(sqs, url, MaxNumberOfMessages=1)["Body"] == "a2"


def test_fifo_deduplication_id(sqs):
    url = create_fifo(sqs, "dedup.fifo")
    r1 = sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g", MessageDeduplicationId="same")
    r2 = sqs.send_message(QueueUrl=url, MessageBody="second", MessageGroupId="g", MessageDeduplicationId="same")
    assert r2["MessageId"] == r1["MessageId"]
    assert counters(sqs, url) == (1, 0, 0)
    r3 = sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g", MessageDeduplicationId="other")
    assert r3["MessageId"] != r1["MessageId"]
    assert int(r3["SequenceNumber"]) > int(r1["SequenceNumber"])
    assert counters(sqs, url) == (2, 0, 0)
    m = one(sqs, url)
    assert m["Body"] == "first" and m["MessageId"] == r1["MessageId"]
    # deleting the message does not end the deduplication interval
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    r4 = sqs.send_message(QueueUrl=url, MessageBody="again", MessageGroupId="g", MessageDeduplicationId="same")
    assert r4["MessageId"] == r1["MessageId"]
    assert counters(sqs, url) == (1, 0, 0)


def test_fifo_deduplication_scope(sqs):
    queue_scope = create_fifo(sqs, "scope-queue.fifo")
    a = sqs.send_message(QueueUrl=queue_scope, MessageBody="x", MessageGroupId="g1", MessageDeduplicationId="same")
    b = sqs.send_message(QueueUrl=queue_scope, MessageBody="x", MessageGroupId="g2", MessageDeduplicationId="same")
    assert a["MessageId"] == b["MessageId"]  # default scope is the whole queue
    assert counters(sqs, queue_scope) == (1, 0, 0)
    group_scope = create_fifo(sqs, "scope-group.fifo", DeduplicationScope="messageGroup",
                              FifoThroughputLimit="perMessageGroupId")
    a = sqs.send_message(QueueUrl=group_scope, MessageBody="x", MessageGroupId="g1", MessageDeduplicationId="same")
    b = sqs.send_message(QueueUrl=group_scope, MessageBody="x", MessageGroupId="g2", MessageDeduplicationId="same")
    c = sqs.send_message(QueueUrl=group_scope, MessageBody="x", MessageGroupId="g1", MessageDeduplicationId="same")
    assert a["MessageId"] != b["MessageId"]
    assert c["MessageId"] == a["MessageId"]
    assert counters(sqs, group_scope) == (2, 0, 0)


def test_fifo_content_based_deduplication(sqs):
    url = create_fifo(sqs, "cbd.fifo", ContentBasedDeduplication="true")
    assert attrs_of(sqs, url, "ContentBasedDeduplication")["ContentBasedDeduplication"] == "true"
    r1 = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    r2 = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    assert r1["MessageId"] == r2["MessageId"]
    r3 = sqs.send_message(QueueUrl=url, MessageBody="other body", MessageGroupId="g")
    assert r3["MessageId"] != r1["MessageId"]
    assert counters(sqs, url) == (2, 0, 0)
    m = one(sqs, url, AttributeNames=["All"])
    assert m["Body"] == "same body"
    # the generated deduplication id is the SHA-256 of the body
    assert m["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same body").hexdigest()
    # an explicit id still wins
    r4 = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g", MessageDeduplicationId="x")
    assert r4["MessageId"] != r1["MessageId"]
    # the hash covers the body only, not the message attributes
    r5 = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g",
                          MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
    assert r5["MessageId"] == r1["MessageId"]
    # an explicit id equal to a generated one is a duplicate of it
    r6 = sqs.send_message(QueueUrl=url, MessageBody="different body", MessageGroupId="g",
                          MessageDeduplicationId=hashlib.sha256(b"other body").hexdigest())
    assert r6["MessageId"] == r3["MessageId"]


def test_fifo_send_message_batch(sqs):
    url = create_fifo(sqs, "batch.fifo")
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": f"e{i}", "MessageBody": f"m{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"d{i}"}
        for i in range(4)])
    assert resp.get("Failed", []) == []
    ok = sorted(resp["Successful"], key=lambda e: e["Id"])
    seqs = [int(e["SequenceNumber"]) for e in ok]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    got = receive(sqs, url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in got] == [f"m{i}" for i in range(len(got))] and got


@pytest.mark.parametrize("group", ["has space", "g" * 129, "émoji"])
def test_fifo_invalid_message_group_id(sqs, group):
    url = create_fifo(sqs, "groupid.fifo")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId=group, MessageDeduplicationId="d")
    assert code(ei) == "InvalidParameterValue"


def test_fifo_invalid_deduplication_id(sqs):
    url = create_fifo(sqs, "dedupid.fifo")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d" * 129)
    assert code(ei) == "InvalidParameterValue"


def test_fifo_receive_request_attempt_id(sqs):
    url = create_fifo(sqs, "attempt.fifo")
    sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="ga", MessageDeduplicationId="a1")
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="gb", MessageDeduplicationId="b1")
    first = receive(sqs, url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")
    assert first
    # a retry with the same attempt id returns the same messages and receipt handles
    retry = receive(sqs, url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in retry] == [
        (m["MessageId"], m["ReceiptHandle"]) for m in first]
    other = receive(sqs, url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-2")
    assert not {m["MessageId"] for m in other} & {m["MessageId"] for m in first}


def test_fifo_concurrent_consumers_keep_group_order(sqs, kedge_endpoint):
    url = create_fifo(sqs, "busy.fifo")
    groups, per_group = 5, 8
    for i in range(per_group):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"g{g}", "MessageBody": f"g{g}:{i}", "MessageGroupId": f"g{g}",
             "MessageDeduplicationId": f"g{g}-{i}"} for g in range(groups)])
    events: list = []  # (group, index) in the order received
    lock = threading.Lock()
    deadline = time.monotonic() + 15

    def consume(client):
        while time.monotonic() < deadline:
            with lock:
                if len(events) >= groups * per_group:
                    return
            for m in client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60,
                                            WaitTimeSeconds=0).get("Messages", []):
                g, i = m["Body"].split(":")
                with lock:
                    events.append((g, int(i)))
                # the group stays locked until this delete: no other consumer can overtake
                client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    consumers = [make_client("sqs", kedge_endpoint) for _ in range(4)]
    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert len(events) == groups * per_group
    for g in range(groups):
        assert [i for grp, i in events if grp == f"g{g}"] == list(range(per_group)), f"group g{g} out of order"
    assert counters(sqs, url) == (0, 0, 0)


def test_fifo_dead_letter_queue(sqs):
    dlq = create_fifo(sqs, "dead.fifo")
    src = create_fifo(sqs, "live.fifo", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": queue_arn("dead.fifo"), "maxReceiveCount": 1}))
    sqs.send_message(QueueUrl=src, MessageBody="p1", MessageGroupId="g", MessageDeduplicationId="1")
    sqs.send_message(QueueUrl=src, MessageBody="p2", MessageGroupId="g", MessageDeduplicationId="2")
    m = one(sqs, src, VisibilityTimeout=0, MaxNumberOfMessages=1)
    assert m["Body"] == "p1"
    # p1 exceeded maxReceiveCount: it moves to the DLQ and p2 is next in the group
    nxt = one(sqs, src, MaxNumberOfMessages=1)
    assert nxt["Body"] == "p2"
    dead = one(sqs, dlq, AttributeNames=["All"])
    assert dead["Body"] == "p1"
    assert dead["Attributes"]["MessageGroupId"] == "g"


# ----- dead-letter queues --------------------------------------------------------------------


def redrive(dlq_name, max_receive_count=2) -> str:
    return json.dumps({"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": max_receive_count})


def test_dead_letter_queue_after_max_receives(sqs):
    dlq = create(sqs, "dlq")
    src = create(sqs, "work", RedrivePolicy=redrive("dlq", 2))
    # AWS returns the policy as JSON with a numeric maxReceiveCount
    policy = json.loads(attrs_of(sqs, src, "RedrivePolicy")["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": queue_arn("dlq"), "maxReceiveCount": 2}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    for n in (1, 2):
        m = one(sqs, src, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
        assert m["Attributes"]["ApproximateReceiveCount"] == str(n)
    # the receive count would exceed maxReceiveCount: the message moves to the DLQ instead
    assert receive(sqs, src, VisibilityTimeout=0, MaxNumberOfMessages=10) == []
    assert counters(sqs, src) == (0, 0, 0)
    assert counters(sqs, dlq) == (1, 0, 0)
    m = one(sqs, dlq, AttributeNames=["All"])
    assert m["Body"] == "poison"
    assert m["MessageId"] == sent["MessageId"]
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn("work")


def test_list_dead_letter_source_queues(sqs):
    dlq = create(sqs, "dlq2")
    s1 = create(sqs, "src-a", RedrivePolicy=redrive("dlq2"))
    s2 = create(sqs, "src-b")
    create(sqs, "unrelated")
    # AWS's own examples give maxReceiveCount as a string
    sqs.set_queue_attributes(QueueUrl=s2, Attributes={"RedrivePolicy": redrive("dlq2", "5")})
    assert json.loads(attrs_of(sqs, s2, "RedrivePolicy")["RedrivePolicy"])["maxReceiveCount"] == 5
    resp = sqs.list_dead_letter_source_queues(QueueUrl=dlq)
    assert sorted(resp["queueUrls"]) == sorted([s1, s2])
    assert sqs.list_dead_letter_source_queues(QueueUrl=s1).get("queueUrls", []) == []
    page = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1)
    assert len(page["queueUrls"]) == 1 and "NextToken" in page
    page2 = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1, NextToken=page["NextToken"])
    assert sorted(page["queueUrls"] + page2["queueUrls"]) == sorted([s1, s2])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.list_dead_letter_source_queues(QueueUrl=dlq.replace("dlq2", "nope"))
    # an empty RedrivePolicy removes it
    sqs.set_queue_attributes(QueueUrl=s1, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in attrs_of(sqs, s1, "All")
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [s2]


def test_redrive_allow_policy(sqs):
    create(sqs, "closed-dlq", RedriveAllowPolicy=json.dumps({"redrivePermission": "denyAll"}))
    create(sqs, "picky-dlq", RedriveAllowPolicy=json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn("allowed")]}))
    create(sqs, "open-dlq", RedriveAllowPolicy=json.dumps({"redrivePermission": "allowAll"}))
    allowed = create(sqs, "allowed")
    other = create(sqs, "other")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": redrive("closed-dlq")})
    assert code(ei) in ("InvalidParameterValue", "InvalidAttributeValue")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": redrive("picky-dlq")})
    assert code(ei) in ("InvalidParameterValue", "InvalidAttributeValue")
    sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": redrive("picky-dlq")})
    sqs.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": redrive("open-dlq")})
    assert "RedrivePolicy" in attrs_of(sqs, allowed, "RedrivePolicy")
    assert json.loads(attrs_of(sqs, other, "RedrivePolicy")["RedrivePolicy"])["deadLetterTargetArn"] == queue_arn("open-dlq")


@pytest.mark.parametrize("policy", [
    "not json",
    json.dumps({"deadLetterTargetArn": queue_arn("missing-dlq"), "maxReceiveCount": 2}),
    json.dumps({"deadLetterTargetArn": queue_arn("real-dlq"), "maxReceiveCount": 0}),
    json.dumps({"maxReceiveCount": 2}),
])
def test_invalid_redrive_policy(sqs, policy):
    create(sqs, "real-dlq")
    src = create(sqs, "src")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": policy})
    assert code(ei) in ("InvalidParameterValue", "InvalidAttributeValue")
    assert "RedrivePolicy" not in attrs_of(sqs, src, "All")


def test_fifo_dlq_must_be_fifo(sqs):
    create(sqs, "std-dlq")
    src = create_fifo(sqs, "src.fifo")
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": redrive("std-dlq")})
    assert code(ei) in ("InvalidParameterValue", "InvalidAttributeValue")


def wait_move_task(sqs, source_arn, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)["Results"]
        assert tasks, "ListMessageMoveTasks returned no task"
        if tasks[0]["Status"] not in ("RUNNING", "CANCELLING"):
            return tasks[0]
        assert time.monotonic() < deadline, tasks
        time.sleep(0.05)


def move_to_dlq(sqs, src, body, max_receive_count=1):
    sqs.send_message(QueueUrl=src, MessageBody=body)
    for _ in range(max_receive_count):
        one(sqs, src, VisibilityTimeout=0)
    assert receive(sqs, src, VisibilityTimeout=0) == []


def test_start_message_move_task_back_to_source(sqs):
    dlq = create(sqs, "mv-dlq")
    src = create(sqs, "mv-src", RedrivePolicy=redrive("mv-dlq", 1))
    move_to_dlq(sqs, src, "first")
    move_to_dlq(sqs, src, "second")
    assert counters(sqs, dlq) == (2, 0, 0)
    handle = sqs.start_message_move_task(SourceArn=queue_arn("mv-dlq"))["TaskHandle"]
    assert handle
    task = wait_move_task(sqs, queue_arn("mv-dlq"))
    assert task["Status"] == "COMPLETED"
    assert task["SourceArn"] == queue_arn("mv-dlq")
    assert task["ApproximateNumberOfMessagesMoved"] == 2
    assert "TaskHandle" not in task  # only a running task lists its handle
    assert counters(sqs, dlq) == (0, 0, 0)
    back = receive_n(sqs, src, 2)
    assert sorted(m["Body"] for m in back) == ["first", "second"]


def test_start_message_move_task_to_destination(sqs):
    create(sqs, "mv2-dlq")
    src = create(sqs, "mv2-src", RedrivePolicy=redrive("mv2-dlq", 1))
    dest = create(sqs, "mv2-dest")
    move_to_dlq(sqs, src, "elsewhere")
    sqs.start_message_move_task(SourceArn=queue_arn("mv2-dlq"), DestinationArn=queue_arn("mv2-dest"))
    task = wait_move_task(sqs, queue_arn("mv2-dlq"))
    assert task["Status"] == "COMPLETED"
    assert task.get("DestinationArn") == queue_arn("mv2-dest")
    assert one(sqs, dest)["Body"] == "elsewhere"
    assert receive(sqs, src) == []


def test_start_message_move_task_requires_a_dlq(sqs):
    create(sqs, "plain")
    with pytest.raises(ClientError) as ei:
        sqs.start_message_move_task(SourceArn=queue_arn("plain"))
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == "Source queue must be configured as a Dead Letter Queue."
    with pytest.raises(ClientError):
        sqs.start_message_move_task(SourceArn=queue_arn("does-not-exist"))


def collect(sqs, url, n, timeout=30) -> list[dict]:
    """Long-poll until n messages were received (moves at a rate arrive over seconds)."""
    deadline = time.monotonic() + timeout
    got: list[dict] = []
    while len(got) < n:
        assert time.monotonic() < deadline, f"got {len(got)} of {n}"
        got += receive(sqs, url, MaxNumberOfMessages=min(10, n - len(got)), WaitTimeSeconds=1)
    return got


def dead_lettered(sqs, prefix, n) -> tuple[str, str]:
    """A DLQ `prefix-dlq` holding n messages and an empty `prefix-dest`; their URLs."""
    dlq = create(sqs, f"{prefix}-dlq")
    src = create(sqs, f"{prefix}-src", RedrivePolicy=redrive(f"{prefix}-dlq", 1))
    for i in range(n):
        move_to_dlq(sqs, src, f"m{i}")
    assert counters(sqs, dlq) == (n, 0, 0)
    return dlq, create(sqs, f"{prefix}-dest")


def test_message_move_task_moves_at_its_rate(sqs):
    dlq, dest = dead_lettered(sqs, "rate", 4)
    started = time.monotonic()
    sqs.start_message_move_task(SourceArn=queue_arn("rate-dlq"), DestinationArn=queue_arn("rate-dest"),
                                MaxNumberOfMessagesPerSecond=2)
    got = collect(sqs, dest, 4)
    # The first moves at once, then two a second: the fourth not before 1.5 s.
    assert time.monotonic() - started >= 1.5
    assert sorted(m["Body"] for m in got) == ["m0", "m1", "m2", "m3"]
    task = wait_move_task(sqs, queue_arn("rate-dlq"))
    assert task["Status"] == "COMPLETED"
    assert (task["ApproximateNumberOfMessagesMoved"], task["ApproximateNumberOfMessagesToMove"]) == (4, 4)
    assert task["MaxNumberOfMessagesPerSecond"] == 2
    assert counters(sqs, dlq) == (0, 0, 0)


def test_running_message_move_task_is_listed_refuses_a_second_and_can_be_cancelled(sqs):
    dlq, dest = dead_lettered(sqs, "cancel", 10)
    handle = sqs.start_message_move_task(SourceArn=queue_arn("cancel-dlq"), DestinationArn=queue_arn("cancel-dest"),
                                         MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    with pytest.raises(ClientError) as ei:
        sqs.start_message_move_task(SourceArn=queue_arn("cancel-dlq"), DestinationArn=queue_arn("cancel-dest"),
                                    MaxNumberOfMessagesPerSecond=1)
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == (
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
    assert len(collect(sqs, dest, 2)) == 2
    running = sqs.list_message_move_tasks(SourceArn=queue_arn("cancel-dlq"))["Results"]
    assert len(running) == 1
    assert running[0]["Status"] == "RUNNING" and running[0]["TaskHandle"] == handle
    assert running[0]["ApproximateNumberOfMessagesToMove"] == 10
    assert 2 <= running[0]["ApproximateNumberOfMessagesMoved"] < 10
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 2 <= moved < 10
    task = wait_move_task(sqs, queue_arn("cancel-dlq"))
    assert task["Status"] == "CANCELLED" and "TaskHandle" not in task
    assert task["ApproximateNumberOfMessagesMoved"] == moved
    # The rest stay in the DLQ, and no more arrive.
    assert counters(sqs, dlq)[0] == 10 - moved
    with pytest.raises(ClientError) as ei:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert http_status(ei) == 400


def test_message_move_task_fails_when_its_destination_is_deleted(sqs):
    dlq, dest = dead_lettered(sqs, "gone", 5)
    sqs.start_message_move_task(SourceArn=queue_arn("gone-dlq"), DestinationArn=queue_arn("gone-dest"),
                                MaxNumberOfMessagesPerSecond=1)
    sqs.delete_queue(QueueUrl=dest)
    task = wait_move_task(sqs, queue_arn("gone-dlq"))
    assert task["Status"] == "FAILED"
    assert task["FailureReason"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert counters(sqs, dlq)[0] == 5 - task["ApproximateNumberOfMessagesMoved"] > 0


def test_cancel_message_move_task_errors_in_sqs_words(sqs):
    with pytest.raises(ClientError) as ei:
        sqs.cancel_message_move_task(TaskHandle="foobared")
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == "Value for parameter TaskHandle is invalid."
    forged = base64.b64encode(json.dumps({"taskId": "t-0", "sourceArn": queue_arn("nope")}).encode()).decode()
    with pytest.raises(ClientError) as ei:
        sqs.cancel_message_move_task(TaskHandle=forged)
    assert http_status(ei) == 404
    assert ei.value.response["Error"]["Message"] == (
        "The resource that you specified for the SourceArn parameter doesn't exist.")
    create(sqs, "cancel-src")
    forged = base64.b64encode(json.dumps({"taskId": "t-0", "sourceArn": queue_arn("cancel-src")}).encode()).decode()
    with pytest.raises(ClientError) as ei:
        sqs.cancel_message_move_task(TaskHandle=forged)
    assert http_status(ei) == 404 and ei.value.response["Error"]["Message"] == "Task does not exist."


# ----- durability across restart -------------------------------------------------------------


def test_state_survives_restart(kedge_server, sqs):
    url = create(sqs, "durable", VisibilityTimeout=45)
    sqs.tag_queue(QueueUrl=url, Tags={"keep": "me"})
    mattrs = {"s": {"DataType": "String", "StringValue": "kept"},
              "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    sent = {b: sqs.send_message(QueueUrl=url, MessageBody=b, MessageAttributes=mattrs)["MessageId"]
            for b in ("deleted", "visible", "inflight")}
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    msgs = {m["Body"]: m for m in receive_n(sqs, url, 3, VisibilityTimeout=300, AttributeNames=["All"])}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs["deleted"]["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msgs["visible"]["ReceiptHandle"], VisibilityTimeout=0)
    fifo = create_fifo(sqs, "durable.fifo")
    f1 = sqs.send_message(QueueUrl=fifo, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="once")
    locked = create_fifo(sqs, "locked.fifo")
    for b in ("l1", "l2"):
        sqs.send_message(QueueUrl=locked, MessageBody=b, MessageGroupId="lock", MessageDeduplicationId=b)
    assert one(sqs, locked, MaxNumberOfMessages=1, VisibilityTimeout=300)["Body"] == "l1"
    assert counters(sqs, url) == (1, 1, 1)
    # a redrive policy and a receive count that has reached maxReceiveCount
    create(sqs, "durable-dlq")
    poison = create(sqs, "poison", RedrivePolicy=redrive("durable-dlq", 1))
    sqs.send_message(QueueUrl=poison, MessageBody="poison")
    one(sqs, poison, VisibilityTimeout=0)

    kedge_server.restart()
    sqs2 = make_client("sqs", kedge_server.url)
    url2 = sqs2.get_queue_url(QueueName="durable")["QueueUrl"]
    assert url2.endswith(f"/{ACCOUNT_ID}/durable")
    assert attrs_of(sqs2, url2, "VisibilityTimeout")["VisibilityTimeout"] == "45"
    assert sqs2.list_queue_tags(QueueUrl=url2)["Tags"] == {"keep": "me"}
    assert counters(sqs2, url2) == (1, 1, 1)
    got = receive(sqs2, url2, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"])
    assert [m["Body"] for m in got] == ["visible"]
    assert got[0]["MessageId"] == sent["visible"]
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    before = msgs["visible"]["Attributes"]
    for k in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
        assert got[0]["Attributes"][k] == before[k], k
    assert got[0]["MessageAttributes"] == mattrs
    assert got[0]["MD5OfMessageAttributes"] == md5_of_message_attributes(mattrs)
    # the in-flight message's receipt handle from before the restart still works
    sqs2.delete_message(QueueUrl=url2, ReceiptHandle=msgs["inflight"]["ReceiptHandle"])
    sqs2.delete_message(QueueUrl=url2, ReceiptHandle=got[0]["ReceiptHandle"])
    assert counters(sqs2, url2) == (0, 0, 1)
    # FIFO deduplication and sequence numbers survive too
    fifo2 = sqs2.get_queue_url(QueueName="durable.fifo")["QueueUrl"]
    f2 = sqs2.send_message(QueueUrl=fifo2, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="once")
    assert f2["MessageId"] == f1["MessageId"]
    assert counters(sqs2, fifo2) == (1, 0, 0)
    f3 = sqs2.send_message(QueueUrl=fifo2, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="twice")
    assert int(f3["SequenceNumber"]) > int(f1["SequenceNumber"])
    assert counters(sqs2, fifo2) == (2, 0, 0)
    # an in-flight FIFO message still locks its group after the restart
    locked2 = sqs2.get_queue_url(QueueName="locked.fifo")["QueueUrl"]
    assert receive(sqs2, locked2, MaxNumberOfMessages=10) == []
    assert counters(sqs2, locked2) == (1, 1, 0)
    # redrive configuration and receive counts survive: the next receive moves the message
    poison2 = sqs2.get_queue_url(QueueName="poison")["QueueUrl"]
    dlq2 = sqs2.get_queue_url(QueueName="durable-dlq")["QueueUrl"]
    assert sqs2.list_dead_letter_source_queues(QueueUrl=dlq2)["queueUrls"] == [poison2]
    assert receive(sqs2, poison2, VisibilityTimeout=0) == []
    assert one(sqs2, dlq2)["Body"] == "poison"


def test_acknowledged_writes_survive_sigkill(kedge_server, sqs):
    url = create(sqs, "crash")
    sent = sqs.send_message(QueueUrl=url, MessageBody="acknowledged")
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"b{i}", "MessageBody": f"b{i}"} for i in range(3)])
    gone = receive_n(sqs, url, 4, VisibilityTimeout=0)
    doomed = [m for m in gone if m["Body"] == "b0"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=doomed["ReceiptHandle"])
    # no graceful shutdown: every acknowledged write must already be on disk
    kedge_server.kill()
    port = kedge_server.port
    try:
        kedge_server.start(bind=f"127.0.0.1:{port}")
    except RuntimeError:
        kedge_server.start()
    sqs2 = make_client("sqs", kedge_server.url)
    url2 = sqs2.get_queue_url(QueueName="crash")["QueueUrl"]
    bodies = sorted(m["Body"] for m in receive_n(sqs2, url2, 3))
    assert bodies == ["acknowledged", "b1", "b2"]
    assert sent["MessageId"] and len(batch["Successful"]) == 3


def test_deleted_queue_stays_deleted_after_restart(kedge_server, sqs):
    url = create(sqs, "gone")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.delete_queue(QueueUrl=url)
    kedge_server.restart()
    sqs2 = make_client("sqs", kedge_server.url)
    with pytest.raises(sqs2.exceptions.QueueDoesNotExist):
        sqs2.get_queue_url(QueueName="gone")
    assert sqs2.list_queues().get("QueueUrls", []) == []


def test_in_memory_server_keeps_nothing(kedge_server_factory):
    server = kedge_server_factory(in_memory=True)
    client = make_client("sqs", server.url)
    client.create_queue(QueueName="ephemeral")
    server.restart()
    client = make_client("sqs", server.url)
    assert client.list_queues().get("QueueUrls", []) == []


def test_sigterm_right_after_ready_line_exits_cleanly(kedge_server_factory):
    # "SIGTERM → graceful exit 0" must hold as soon as the ready line is printed
    for _ in range(20):
        server = kedge_server_factory(in_memory=True)
        rc = server.stop()
        assert rc == 0, f"exit status {rc} when SIGTERM arrived right after the ready line"


def test_sigterm_during_long_poll_exits_cleanly(kedge_server, sqs):
    url = create(sqs, "shutdown")
    poller = make_client("sqs", kedge_server.url)
    result: dict = {}

    def poll():
        try:
            result["messages"] = poller.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
        except Exception as e:  # a dropped connection is acceptable on shutdown
            result["error"] = e

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    assert th.is_alive()
    t = time.monotonic()
    rc = kedge_server.stop()
    assert rc == 0
    assert time.monotonic() - t < 5, "shutdown waited for the long poll to run out"
    th.join(timeout=10)
    assert not th.is_alive()
    assert result.get("messages", []) == []


# ----- SigV4 ---------------------------------------------------------------------------------


AK, SECRET = "AKIDKEDGETEST", "kedge-secret-key"


@pytest.fixture
def signed_server(kedge_server_factory):
    return kedge_server_factory("--credentials", f"{AK}:{SECRET}")


def test_sigv4_right_credentials(signed_server):
    client = make_client("sqs", signed_server.url, access_key=AK, secret_key=SECRET)
    url = client.create_queue(QueueName="signed")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="authentic",
                        MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
    m = one(client, url, AttributeNames=["SenderId"])
    assert m["Body"] == "authentic"
    assert m["Attributes"]["SenderId"]


def test_sigv4_wrong_secret(signed_server):
    client = make_client("sqs", signed_server.url, access_key=AK, secret_key="wrong-secret")
    with pytest.raises(ClientError) as ei:
        client.list_queues()
    assert code(ei) == "SignatureDoesNotMatch"
    assert http_status(ei) == 403


def test_sigv4_unknown_access_key(signed_server):
    client = make_client("sqs", signed_server.url, access_key="AKIDUNKNOWN", secret_key=SECRET)
    with pytest.raises(ClientError) as ei:
        client.create_queue(QueueName="nope")
    assert code(ei) == "InvalidClientTokenId"
    assert http_status(ei) == 403
    good = make_client("sqs", signed_server.url, access_key=AK, secret_key=SECRET)
    assert good.list_queues().get("QueueUrls", []) == []


def test_sigv4_unsigned_request_rejected(signed_server):
    status, body, _ = query(signed_server.url, {"Action": "ListQueues"})
    assert status == 403, body


def test_sigv4_signed_query_protocol(signed_server):
    params = {"Action": "CreateQueue", "QueueName": "signed-query", "Version": "2012-11-05"}
    status, body, _ = signed_query(signed_server.url, params, AK, SECRET)
    assert status == 200, body
    assert xml_text(body, "QueueUrl").endswith("/signed-query")
    status, body, _ = signed_query(signed_server.url, {"Action": "ListQueues"}, AK, "bad-secret")
    assert status == 403
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    status, body, _ = signed_query(signed_server.url, {"Action": "ListQueues"}, "AKIDOTHER", SECRET)
    assert status == 403
    assert xml_error_code(body) == "InvalidClientTokenId"


def test_sigv4_tampered_body(signed_server):
    params = {"Action": "CreateQueue", "QueueName": "signed-for-this"}
    tampered = {"Action": "CreateQueue", "QueueName": "but-sent-that"}
    status, body, _ = signed_query(signed_server.url, params, AK, SECRET, send_params=tampered)
    assert status == 403
    assert xml_error_code(body) == "SignatureDoesNotMatch"
    client = make_client("sqs", signed_server.url, access_key=AK, secret_key=SECRET)
    assert client.list_queues().get("QueueUrls", []) == []


def test_no_credentials_flag_accepts_any_signature(kedge_endpoint):
    client = make_client("sqs", kedge_endpoint, access_key="anything", secret_key="whatever")
    client.create_queue(QueueName="open")
    status, _, _ = query(kedge_endpoint, {"Action": "ListQueues"})
    assert status == 200


# ----- metrics -------------------------------------------------------------------------------


def test_metrics_endpoint(sqs, kedge_endpoint):
    sqs.create_queue(QueueName="metered")
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName="absent")
    with urllib.request.urlopen(f"{kedge_endpoint}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers.get("Content-Type", "").startswith("text/plain")
        text = r.read().decode()
    assert "kedge_requests_total" in text
    samples = [ln for ln in text.splitlines() if ln.startswith("kedge_requests_total{")]
    assert any("CreateQueue" in ln for ln in samples), samples
    assert any("GetQueueUrl" in ln and "400" in ln for ln in samples), samples


# ----- raw JSON protocol ---------------------------------------------------------------------


def json_call(endpoint, action, payload):
    req = urllib.request.Request(endpoint + "/", data=json.dumps(payload).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"AmazonSQS.{action}",
    })
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def test_raw_json_protocol_errors_carry_query_error_header(kedge_endpoint):
    status, body, headers = json_call(kedge_endpoint, "GetQueueUrl", {"QueueName": "absent"})
    assert status == 400
    assert body["__type"].endswith("QueueDoesNotExist")
    hdr = {k.lower(): v for k, v in headers.items()}
    assert hdr["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    status, body, _ = json_call(kedge_endpoint, "CreateQueue", {"QueueName": "raw"})
    assert status == 200 and body["QueueUrl"].endswith("/raw")
    status, body, _ = json_call(kedge_endpoint, "NoSuchAction", {})
    assert status == 400


# ----- legacy query protocol (form POST, XML) ------------------------------------------------


def query(endpoint, params, path="/", method="POST"):
    data = urllib.parse.urlencode(params)
    if method == "GET":
        req = urllib.request.Request(f"{endpoint}{path}?{data}", method="GET")
    else:
        req = urllib.request.Request(endpoint + path, data=data.encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def signed_query(endpoint, params, access_key, secret_key, send_params=None):
    data = urllib.parse.urlencode(params)
    aws_req = AWSRequest(method="POST", url=endpoint + "/", data=data,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(access_key, secret_key), "sqs", REGION).add_auth(aws_req)
    sent = urllib.parse.urlencode(send_params) if send_params is not None else data
    req = urllib.request.Request(endpoint + "/", data=sent.encode(), method="POST", headers=dict(aws_req.headers))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def strip_ns(root):
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def xml(body) -> ET.Element:
    return strip_ns(ET.fromstring(body))


def xml_text(body, tag) -> str:
    el = xml(body).find(f".//{tag}")
    assert el is not None, f"<{tag}> not in {body}"
    return el.text or ""


def xml_error_code(body) -> str:
    root = xml(body)
    assert root.tag == "ErrorResponse", body
    return root.find("./Error/Code").text


def test_query_protocol_message_lifecycle(kedge_endpoint):
    ep = kedge_endpoint
    status, body, headers = query(ep, {"Action": "CreateQueue", "QueueName": "legacy", "Version": "2012-11-05",
                                       "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40"})
    assert status == 200, body
    root = xml(body)
    assert root.tag == "CreateQueueResponse"
    qurl = root.find("./CreateQueueResult/QueueUrl").text
    assert qurl == f"{ep}/{ACCOUNT_ID}/legacy"
    assert root.find("./ResponseMetadata/RequestId").text
    assert "xml" in {k.lower(): v for k, v in headers.items()}["content-type"]

    text = "<tag attr=\"v\">fish & chips</tag> 'quoted' ✓\r\n"
    status, body, _ = query(ep, {"Action": "SendMessage", "QueueUrl": qurl, "MessageBody": text,
                                 "Version": "2012-11-05"})
    assert status == 200, body
    root = xml(body)
    assert root.tag == "SendMessageResponse"
    assert root.find("./SendMessageResult/MD5OfMessageBody").text == md5(text)
    message_id = root.find("./SendMessageResult/MessageId").text
    uuid.UUID(message_id)

    status, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl, "AttributeName.1": "All",
                                 "MaxNumberOfMessages": "5", "Version": "2012-11-05"})
    assert status == 200, body
    root = xml(body)
    assert root.tag == "ReceiveMessageResponse"
    msgs = root.findall("./ReceiveMessageResult/Message")
    assert len(msgs) == 1
    m = msgs[0]
    assert m.find("MessageId").text == message_id
    assert m.find("Body").text == text
    assert m.find("MD5OfBody").text == md5(text)
    attrs = {a.find("Name").text: a.find("Value").text for a in m.findall("Attribute")}
    assert {"SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(attrs)
    assert attrs["ApproximateReceiveCount"] == "1"
    handle = m.find("ReceiptHandle").text

    status, body, _ = query(ep, {"Action": "GetQueueAttributes", "QueueUrl": qurl, "AttributeName.1": "All"})
    assert status == 200, body
    qattrs = {a.find("Name").text: a.find("Value").text
              for a in xml(body).findall("./GetQueueAttributesResult/Attribute")}
    assert qattrs["VisibilityTimeout"] == "40"
    assert qattrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert qattrs["QueueArn"] == queue_arn("legacy")

    status, body, _ = query(ep, {"Action": "DeleteMessage", "QueueUrl": qurl, "ReceiptHandle": handle})
    assert status == 200, body
    assert xml(body).tag == "DeleteMessageResponse"

    status, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl})
    assert status == 200, body
    assert xml(body).findall(".//Message") == []

    status, body, _ = query(ep, {"Action": "ListQueues"})
    assert [u.text for u in xml(body).findall("./ListQueuesResult/QueueUrl")] == [qurl]

    status, body, _ = query(ep, {"Action": "DeleteQueue", "QueueUrl": qurl})
    assert status == 200 and xml(body).tag == "DeleteQueueResponse"


def test_query_protocol_message_attributes(kedge_endpoint):
    ep = kedge_endpoint
    _, body, _ = query(ep, {"Action": "CreateQueue", "QueueName": "qattrs"})
    qurl = xml_text(body, "QueueUrl")
    blob = bytes([0, 1, 2, 250, 255])
    status, body, _ = query(ep, {
        "Action": "SendMessage", "QueueUrl": qurl, "MessageBody": "attrs",
        "MessageAttribute.1.Name": "city", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "Zürich",
        "MessageAttribute.2.Name": "n", "MessageAttribute.2.Value.DataType": "Number",
        "MessageAttribute.2.Value.StringValue": "12",
        "MessageAttribute.3.Name": "blob", "MessageAttribute.3.Value.DataType": "Binary",
        "MessageAttribute.3.Value.BinaryValue": base64.b64encode(blob).decode(),
    })
    assert status == 200, body
    expected = {
        "city": {"DataType": "String", "StringValue": "Zürich"},
        "n": {"DataType": "Number", "StringValue": "12"},
        "blob": {"DataType": "Binary", "BinaryValue": blob},
    }
    assert xml_text(body, "MD5OfMessageAttributes") == md5_of_message_attributes(expected)
    status, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl, "MessageAttributeName.1": "All"})
    assert status == 200, body
    m = xml(body).find("./ReceiveMessageResult/Message")
    got = {}
    for a in m.findall("MessageAttribute"):
        v = a.find("Value")
        entry = {"DataType": v.find("DataType").text}
        if v.find("StringValue") is not None:
            entry["StringValue"] = v.find("StringValue").text
        if v.find("BinaryValue") is not None:
            entry["BinaryValue"] = base64.b64decode(v.find("BinaryValue").text)
        got[a.find("Name").text] = entry
    assert got == expected
    assert m.find("MD5OfMessageAttributes").text == md5_of_message_attributes(expected)


def test_query_protocol_batches_and_tags(kedge_endpoint):
    ep = kedge_endpoint
    _, body, _ = query(ep, {"Action": "CreateQueue", "QueueName": "qbatch",
                            "Tag.1.Key": "team", "Tag.1.Value": "core"})
    qurl = xml_text(body, "QueueUrl")
    status, body, _ = query(ep, {
        "Action": "SendMessageBatch", "QueueUrl": qurl,
        "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "first",
        "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "bad\x01",
        "SendMessageBatchRequestEntry.3.Id": "c", "SendMessageBatchRequestEntry.3.MessageBody": "third",
        "SendMessageBatchRequestEntry.3.MessageAttribute.1.Name": "color",
        "SendMessageBatchRequestEntry.3.MessageAttribute.1.Value.DataType": "String",
        "SendMessageBatchRequestEntry.3.MessageAttribute.1.Value.StringValue": "blue",
        "SendMessageBatchRequestEntry.4.Id": "d", "SendMessageBatchRequestEntry.4.MessageBody": "later",
        "SendMessageBatchRequestEntry.4.DelaySeconds": "60",
    })
    assert status == 200, body
    root = xml(body)
    assert root.tag == "SendMessageBatchResponse"
    ok = root.findall("./SendMessageBatchResult/SendMessageBatchResultEntry")
    assert sorted(e.find("Id").text for e in ok) == ["a", "c", "d"]
    assert {e.find("Id").text: e.find("MD5OfMessageBody").text for e in ok}["a"] == md5("first")
    assert {e.find("Id").text: getattr(e.find("MD5OfMessageAttributes"), "text", None) for e in ok}["c"] == \
        md5_of_message_attributes({"color": {"DataType": "String", "StringValue": "blue"}})
    failed = root.findall("./SendMessageBatchResult/BatchResultErrorEntry")
    assert [(f.find("Id").text, f.find("Code").text, f.find("SenderFault").text) for f in failed] == [
        ("b", "InvalidMessageContents", "true")]

    _, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl, "MaxNumberOfMessages": "10"})
    handles = [m.find("ReceiptHandle").text for m in xml(body).findall(".//Message")]
    assert len(handles) == 2
    params = {"Action": "DeleteMessageBatch", "QueueUrl": qurl}
    for i, h in enumerate(handles + ["garbage"], start=1):
        params[f"DeleteMessageBatchRequestEntry.{i}.Id"] = f"d{i}"
        params[f"DeleteMessageBatchRequestEntry.{i}.ReceiptHandle"] = h
    status, body, _ = query(ep, params)
    assert status == 200, body
    root = xml(body)
    assert sorted(e.find("Id").text for e in root.findall("./DeleteMessageBatchResult/DeleteMessageBatchResultEntry")) == ["d1", "d2"]
    assert [f.find("Code").text for f in root.findall("./DeleteMessageBatchResult/BatchResultErrorEntry")] == [
        "ReceiptHandleIsInvalid"]

    query(ep, {"Action": "SendMessage", "QueueUrl": qurl, "MessageBody": "vis"})
    _, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl})
    handle = xml_text(body, "ReceiptHandle")
    status, body, _ = query(ep, {
        "Action": "ChangeMessageVisibilityBatch", "QueueUrl": qurl,
        "ChangeMessageVisibilityBatchRequestEntry.1.Id": "v1",
        "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": handle,
        "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "0",
    })
    assert status == 200, body
    entries = xml(body).findall("./ChangeMessageVisibilityBatchResult/ChangeMessageVisibilityBatchResultEntry")
    assert [e.find("Id").text for e in entries] == ["v1"]
    _, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl})
    assert xml_text(body, "Body") == "vis"

    status, body, _ = query(ep, {"Action": "ListQueueTags", "QueueUrl": qurl})
    assert status == 200, body
    tags = {t.find("Key").text: t.find("Value").text for t in xml(body).findall("./ListQueueTagsResult/Tag")}
    assert tags == {"team": "core"}
    status, body, _ = query(ep, {"Action": "SendMessageBatch", "QueueUrl": qurl})
    # in the query protocol an empty list cannot be told from a missing one
    assert status == 400 and xml_error_code(body) in ("AWS.SimpleQueueService.EmptyBatchRequest",
                                                      "MissingParameter")


def test_query_protocol_queue_url_in_path_and_get(kedge_endpoint):
    ep = kedge_endpoint
    query(ep, {"Action": "CreateQueue", "QueueName": "pathq"})
    status, body, _ = query(ep, {"Action": "SendMessage", "MessageBody": "via path"}, path=f"/{ACCOUNT_ID}/pathq")
    assert status == 200, body
    assert xml_text(body, "MD5OfMessageBody") == md5("via path")
    status, body, _ = query(ep, {"Action": "ListQueues", "QueueNamePrefix": "path"}, method="GET")
    assert status == 200, body
    assert [u.text for u in xml(body).findall(".//QueueUrl")] == [f"{ep}/{ACCOUNT_ID}/pathq"]
    status, body, _ = query(ep, {"Action": "GetQueueAttributes", "QueueUrl": f"{ep}/{ACCOUNT_ID}/pathq",
                                 "AttributeName.1": "ApproximateNumberOfMessages"}, method="GET")
    assert status == 200, body
    assert xml_text(body, "Value") == "1"


def test_get_of_a_queue_url_without_an_action_is_unknown_operation(kedge_endpoint):
    # As AWS answers it (LocalStack's tests recorded against AWS), whatever the Accept header.
    ep = kedge_endpoint
    query(ep, {"Action": "CreateQueue", "QueueName": "getq"})
    for headers in ({}, {"Accept": "application/json"}):
        req = urllib.request.Request(f"{ep}/{ACCOUNT_ID}/getq", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 404
        assert "<UnknownOperationException" in e.value.read().decode()
    # Other paths keep their answers: the DynamoDB health line at the root.
    with urllib.request.urlopen(f"{ep}/", timeout=10) as r:
        assert r.status == 200


def test_query_protocol_errors(kedge_endpoint):
    ep = kedge_endpoint
    status, body, _ = query(ep, {"Action": "GetQueueUrl", "QueueName": "nope"})
    assert status == 400
    root = xml(body)
    assert root.tag == "ErrorResponse"
    assert root.find("./Error/Code").text == "AWS.SimpleQueueService.NonExistentQueue"
    assert root.find("./Error/Type").text == "Sender"
    assert root.find("./Error/Message").text
    assert root.find("./RequestId").text

    status, body, _ = query(ep, {"Action": "SendMessage", "QueueUrl": f"{ep}/{ACCOUNT_ID}/nope", "MessageBody": "x"})
    assert status == 400 and xml_error_code(body) == "AWS.SimpleQueueService.NonExistentQueue"

    query(ep, {"Action": "CreateQueue", "QueueName": "qerr", "Attribute.1.Name": "DelaySeconds",
               "Attribute.1.Value": "1"})
    status, body, _ = query(ep, {"Action": "CreateQueue", "QueueName": "qerr", "Attribute.1.Name": "DelaySeconds",
                                 "Attribute.1.Value": "2"})
    assert status == 400 and xml_error_code(body) == "QueueAlreadyExists"

    qurl = f"{ep}/{ACCOUNT_ID}/qerr"
    status, body, _ = query(ep, {"Action": "ReceiveMessage", "QueueUrl": qurl, "MaxNumberOfMessages": "11"})
    assert status == 400 and xml_error_code(body) == "InvalidParameterValue"
    status, body, _ = query(ep, {"Action": "SendMessage", "QueueUrl": qurl, "MessageBody": "nul\x00"})
    assert status == 400 and xml_error_code(body) == "InvalidMessageContents"
    status, body, _ = query(ep, {"Action": "DeleteMessage", "QueueUrl": qurl, "ReceiptHandle": "garbage"})
    assert status == 400 and xml_error_code(body) == "ReceiptHandleIsInvalid"
    status, body, _ = query(ep, {"Action": "SendMessage", "QueueUrl": qurl})
    assert status == 400 and xml_error_code(body) == "MissingParameter"
    status, body, _ = query(ep, {"Action": "SetQueueAttributes", "QueueUrl": qurl,
                                 "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "99999"})
    assert status == 400 and xml_error_code(body) == "InvalidAttributeValue"
    status, body, _ = query(ep, {"Action": "PurgeQueue", "QueueUrl": qurl})
    assert status == 200, body
    status, body, _ = query(ep, {"Action": "PurgeQueue", "QueueUrl": qurl})
    assert status == 403 and xml_error_code(body) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    status, body, _ = query(ep, {"Action": "FlyToTheMoon"})
    assert status == 400 and xml_error_code(body) == "InvalidAction"


# ----- answers as AWS recorded them (LocalStack's and moto's AWS-validated tests) ------------


def test_fifo_batch_entry_without_group_or_dedup_id_fails_the_whole_request(sqs):
    url = create_fifo(sqs, f"whole-{uuid.uuid4().hex[:8]}.fifo")
    ok = {"Id": "a", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d1"}
    with pytest.raises(ClientError) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[ok, {"Id": "b", "MessageBody": "x",
                                                           "MessageDeduplicationId": "d2"}])
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == "The request must contain the parameter MessageGroupId."
    with pytest.raises(ClientError) as ei:
        sqs.send_message_batch(QueueUrl=url, Entries=[ok, {"Id": "b", "MessageBody": "x", "MessageGroupId": "g"}])
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == (
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
    # Nothing of either batch was sent, not even the valid entry.
    assert counters(sqs, url) == (0, 0, 0)
    # A single SendMessage without the group says the parameter is missing.
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d3")
    assert code(ei) == "MissingParameter"
    # The JSON answer's error shape is AWS's (botocore keeps it as QueryErrorCode).
    assert ei.value.response["Error"]["QueryErrorCode"] == "MissingRequiredParameterException"


def test_fifo_accepts_an_explicit_zero_delay_and_refuses_any_other(sqs):
    url = create_fifo(sqs, f"delay0-{uuid.uuid4().hex[:8]}.fifo", DelaySeconds=0)
    sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="1",
                     DelaySeconds=0)
    r = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "b", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "2", "DelaySeconds": 0}])
    assert [e["Id"] for e in r["Successful"]] == ["b"] and not r.get("Failed")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="c", MessageGroupId="g", MessageDeduplicationId="3",
                         DelaySeconds=2)
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["QueryErrorCode"] == "InvalidParameterValueException"
    assert ei.value.response["Error"]["Message"] == (
        "Value 2 for parameter DelaySeconds is invalid. Reason: "
        "The request include parameter that is not valid for this queue type.")
    assert [m["Body"] for m in receive_n(sqs, url, 2)] == ["a", "b"]


def test_fifo_ids_refused_with_sqs_words(sqs):
    url = create_fifo(sqs, f"ids-{uuid.uuid4().hex[:8]}.fifo", ContentBasedDeduplication="true")
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="group 123")
    assert ei.value.response["Error"]["Message"] == (
        "Value group 123 for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include "
        "alphanumeric and punctuation characters. 1 to 128 in length.")


@pytest.mark.parametrize("call,entry", [
    ("send_message_batch", "SendMessageBatchRequestEntry"),
    ("delete_message_batch", "DeleteMessageBatchRequestEntry"),
    ("change_message_visibility_batch", "ChangeMessageVisibilityBatchRequestEntry"),
])
def test_empty_batches_name_their_entry_type(sqs, call, entry):
    url = create(sqs, f"empty-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ClientError) as ei:
        getattr(sqs, call)(QueueUrl=url, Entries=[])
    assert code(ei) == "AWS.SimpleQueueService.EmptyBatchRequest"
    assert ei.value.response["Error"]["Message"] == f"There should be at least one {entry} in the request."


def test_change_visibility_after_the_timeout_passed_and_with_an_earlier_handle(sqs):
    url = create(sqs, f"cmv-{uuid.uuid4().hex[:8]}", VisibilityTimeout=1)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = one(sqs, url)
    time.sleep(1.3)
    # The timeout passed: SQS answers 200 and the message stays visible.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=2)
    second = one(sqs, url)
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # The first delivery's handle still reaches the message in flight: here, it lets it go.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    third = one(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(ClientError) as ei:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5)
    assert code(ei) == "InvalidParameterValue"
    assert ei.value.response["Error"]["Message"] == (
        f"Value {first['ReceiptHandle']} for parameter ReceiptHandle is invalid. "
        "Reason: Message does not exist or is not available for visibility timeout change.")


def test_a_queue_url_that_names_no_queue_is_a_missing_queue(sqs):
    with pytest.raises(ClientError) as ei:
        sqs.get_queue_attributes(QueueUrl="http://whatever-incorrect-queue-address", AttributeNames=["All"])
    assert code(ei) == "AWS.SimpleQueueService.NonExistentQueue"
    assert http_status(ei) == 400


def test_create_queue_compares_only_the_attributes_it_names(sqs):
    name = f"idem-{uuid.uuid4().hex[:8]}"
    url = create(sqs, name, DelaySeconds=1, ReceiveMessageWaitTimeSeconds=1)
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == url
    assert create(sqs, name, DelaySeconds=1) == url
    with pytest.raises(ClientError) as ei:
        create(sqs, name, DelaySeconds=2, ReceiveMessageWaitTimeSeconds=1)
    assert code(ei) == "QueueAlreadyExists"
    assert ei.value.response["Error"]["Message"] == (
        "A queue already exists with the same name and a different value for attribute DelaySeconds")


def test_fifo_only_attributes_on_a_standard_queue(sqs):
    name = f"std-{uuid.uuid4().hex[:8]}"
    for attrs, message in [
        ({"FifoQueue": "false"}, "Unknown Attribute FifoQueue."),
        ({"ContentBasedDeduplication": "false"}, "Unknown Attribute ContentBasedDeduplication."),
        ({"DeduplicationScope": "queue"}, "You can specify the DeduplicationScope only when FifoQueue is set to true."),
        ({"FifoThroughputLimit": "perQueue"},
         "You can specify the FifoThroughputLimit only when FifoQueue is set to true."),
    ]:
        with pytest.raises(ClientError) as ei:
            sqs.create_queue(QueueName=name, Attributes=attrs)
        assert code(ei) == "InvalidAttributeName"
        assert ei.value.response["Error"]["Message"] == message
    url = create(sqs, name)
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert code(ei) == "InvalidAttributeName"
    fifo = create_fifo(sqs, f"{name}.fifo")
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "true"})
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "false"})
    assert code(ei) == "InvalidAttributeValue"


def test_encryption_and_policy_attributes_as_sqs_reports_them(sqs):
    url = create(sqs, f"sse-{uuid.uuid4().hex[:8]}")
    a = attrs_of(sqs, url)
    assert a["SqsManagedSseEnabled"] == "true"
    assert "Policy" not in a and "KmsDataKeyReusePeriodSeconds" not in a
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "testKeyId",
                                                      "KmsDataKeyReusePeriodSeconds": "6000"})
    a = attrs_of(sqs, url)
    assert (a["KmsMasterKeyId"], a["KmsDataKeyReusePeriodSeconds"], a["SqsManagedSseEnabled"]) == (
        "testKeyId", "6000", "false")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "300"})
    a = attrs_of(sqs, url)
    assert "KmsMasterKeyId" not in a and "KmsDataKeyReusePeriodSeconds" not in a
    assert a["SqsManagedSseEnabled"] == "false"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    assert json.loads(attrs_of(sqs, url)["Policy"]) == json.loads(policy)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in attrs_of(sqs, url)
    sqs.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["111111111111"], Actions=["SendMessage"])
    assert json.loads(attrs_of(sqs, url)["Policy"])["Version"] == "2008-10-17"


def test_list_queues_without_a_match_has_no_urls_member(sqs):
    resp = sqs.list_queues(QueueNamePrefix=f"none-{uuid.uuid4().hex}")
    assert "QueueUrls" not in resp


def test_batch_answers_leave_empty_lists_out(sqs):
    url = create(sqs, f"lists-{uuid.uuid4().hex[:8]}", MaximumMessageSize=1024)
    r = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert "Failed" not in r and [e["Id"] for e in r["Successful"]] == ["a"]
    r = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "big", "MessageBody": "a" * 1025}])
    assert "Successful" not in r
    assert r["Failed"][0]["Message"] == (
        "One or more parameters cannot be validated. Reason: Message must be shorter than 1024 bytes.")


def test_message_attribute_names_and_values(sqs):
    url = create(sqs, f"mattr-{uuid.uuid4().hex[:8]}")
    sqs.send_message(QueueUrl=url, MessageBody="x",
                     MessageAttributes={"attr.1øßä": {"StringValue": "ok", "DataType": "String"}})
    for name in ["aWs.-x", "AMAZON.-x", ".-x", "a!b", "a§b", "L" * 257, "öther_encodings"]:
        with pytest.raises(ClientError) as ei:
            sqs.send_message(QueueUrl=url, MessageBody="x",
                             MessageAttributes={name: {"StringValue": "v", "DataType": "String"}})
        assert code(ei) == "InvalidParameterValue", name
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x",
                         MessageAttributes={"a": {"StringValue": f"bad-{chr(8)}", "DataType": "String"}})
    assert code(ei) == "InvalidParameterValue"


def test_x_ray_header_becomes_the_aws_trace_header(sqs):
    url = create(sqs, f"xray-{uuid.uuid4().hex[:8]}")
    trace = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = trace

    sqs.meta.events.register("before-send.sqs.SendMessage", add_header)
    try:
        sqs.send_message(QueueUrl=url, MessageBody="traced")
    finally:
        sqs.meta.events.unregister("before-send.sqs.SendMessage", add_header)
    sqs.send_message(QueueUrl=url, MessageBody="plain")
    got = {m["Body"]: m for m in receive_n(sqs, url, 2, MessageSystemAttributeNames=["AWSTraceHeader"])}
    assert got["traced"]["Attributes"]["AWSTraceHeader"] == trace
    assert "AWSTraceHeader" not in got["plain"].get("Attributes", {})


def test_purge_forgets_fifo_deduplication_ids(sqs):
    url = create_fifo(sqs, f"purge-dedup-{uuid.uuid4().hex[:8]}.fifo")
    sqs.send_message(QueueUrl=url, MessageBody="1", MessageGroupId="g", MessageDeduplicationId="d")
    sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody="2", MessageGroupId="g", MessageDeduplicationId="d")
    assert [m["Body"] for m in receive_n(sqs, url, 1)] == ["2"]


def test_query_protocol_words_a_missing_queue_as_the_old_api(kedge_endpoint):
    status, body, _ = query(kedge_endpoint, {"Action": "GetQueueAttributes",
                                             "QueueUrl": f"{kedge_endpoint}/{ACCOUNT_ID}/nope-{uuid.uuid4().hex[:6]}"})
    assert status == 400
    assert "<Message>The specified queue does not exist for this wsdl version.</Message>" in body


def test_message_attribute_name_filters(sqs):
    url = create(sqs, f"filters-{uuid.uuid4().hex[:8]}")
    attrs = {n: {"DataType": "String", "StringValue": v}
             for n, v in [("General", "Kenobi"), ("Hello", "There"), ("Help.Me", "Me")]}
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)

    def names(filters):
        m = one(sqs, url, VisibilityTimeout=0, MessageAttributeNames=filters)
        return sorted(m.get("MessageAttributes", {}))

    assert names(["*"]) == names([".*"]) == names(["All"]) == ["General", "Hello", "Help.Me"]
    assert names(["Hel.*"]) == ["Hello", "Help.Me"]
    assert names(["Foo", "Hello"]) == ["Hello"]
    assert names([]) == []


def test_a_queue_url_refuses_the_service_actions(kedge_endpoint, sqs):
    url = create(sqs, f"qpath-{uuid.uuid4().hex[:8]}")
    for action, extra in [("CreateQueue", {"QueueName": "other"}), ("ListQueues", {})]:
        status, body, _ = query(url, {"Action": action, **extra}, path="", method="GET")
        assert status == 400
        assert "<Code>InvalidAction</Code>" in body
        assert f"<Message>The action {action} is not valid for this endpoint" in body
    status, body, _ = query(kedge_endpoint, {"Action": "ListQueues"}, method="GET")
    assert status == 200 and url in body


def test_fifo_group_reopens_when_its_oldest_message_is_visible_again(sqs):
    url = create_fifo(sqs, f"reopen-{uuid.uuid4().hex[:8]}.fifo", VisibilityTimeout=30,
                      ContentBasedDeduplication="true")
    for body, group in [("g1-m1", "1"), ("g1-m2", "1"), ("g2-m1", "2")]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    first = receive(sqs, url, MaxNumberOfMessages=2)
    assert [m["Body"] for m in first] == ["g1-m1", "g1-m2"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    # Group 1 is open again for its visible message (g1-m2 stays in flight), after group 2.
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=3)] == ["g2-m1", "g1-m1"]


def test_fifo_extending_one_message_holds_back_the_later_ones(sqs):
    url = create_fifo(sqs, f"extend-{uuid.uuid4().hex[:8]}.fifo", VisibilityTimeout=1)
    for body in ["foo", "bar", "baz"]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="1", MessageDeduplicationId=body)
    got = receive(sqs, url, MaxNumberOfMessages=5)
    assert [m["Body"] for m in got] == ["foo", "bar", "baz"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got[1]["ReceiptHandle"], VisibilityTimeout=4)
    time.sleep(2)
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=5)] == ["foo"]


def test_fifo_groups_are_served_in_the_order_they_became_visible(sqs):
    url = create_fifo(sqs, f"turns-{uuid.uuid4().hex[:8]}.fifo", VisibilityTimeout=1,
                      ContentBasedDeduplication="true")
    for body in ["g1-m1", "g1-m2", "g1-m3", "g1-m4", "g2-m1", "g3-m1"]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=body[:2])
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=2)] == ["g1-m1", "g1-m2"]
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=1)] == ["g2-m1"]
    time.sleep(2)
    # g3 waited all along; g1 became visible again before g2 did (AWS's recorded order).
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=10, VisibilityTimeout=0)] == [
        "g3-m1", "g1-m1", "g1-m2", "g1-m3", "g1-m4", "g2-m1"]


def test_fifo_receive_retried_with_its_attempt_id(sqs):
    """A FIFO receive retried with the same ReceiveRequestAttemptId answers the same messages
    and receipt handles; another id is another receive (the group stays locked)."""
    url = create_fifo(sqs, "attempt.fifo")
    for i in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g",
                         MessageDeduplicationId=f"d{i}")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                ReceiveRequestAttemptId="attempt-1")["Messages"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                ReceiveRequestAttemptId="attempt-1")["Messages"]
    assert [(m["Body"], m["ReceiptHandle"]) for m in again] == [
        (m["Body"], m["ReceiptHandle"]) for m in first]
    assert "Messages" not in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, ReceiveRequestAttemptId="attempt-2")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    after = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                ReceiveRequestAttemptId="attempt-1")["Messages"]
    assert [m["Body"] for m in after] == ["m1"]


def test_fifo_receive_attempt_id_follows_the_deduplication_id_rules(sqs):
    """An attempt id of a FIFO receive is 1 to 128 alphanumeric or punctuation characters;
    a standard queue does not read it."""
    fifo = create_fifo(sqs, "attempt-rules.fifo")
    plain = sqs.create_queue(QueueName="attempt-rules")["QueueUrl"]
    for bad in ["has space", "a" * 129]:
        with pytest.raises(ClientError) as e:
            sqs.receive_message(QueueUrl=fifo, ReceiveRequestAttemptId=bad)
        assert e.value.response["Error"]["Code"] in (
            "InvalidParameterValue", "AWS.SimpleQueueService.InvalidParameterValue")
        assert "ReceiveRequestAttemptId" in e.value.response["Error"]["Message"]
        assert "Messages" not in sqs.receive_message(QueueUrl=plain, ReceiveRequestAttemptId=bad)
    assert "Messages" not in sqs.receive_message(QueueUrl=fifo, ReceiveRequestAttemptId="a" * 128)

"""SQS through the real aws CLI (subprocess) against a real `kedge serve` process.

Each CLI start costs most of a second, so the CLI drives the representative calls and boto3
(`sqs` fixture) does the set-up and checks around them."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from conftest import ACCOUNT_ID, REGION, AwsCli


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def parallel(*calls):
    """Run independent CLI invocations at once (each CLI start costs most of a second)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def counters(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_cli_queue_lifecycle(aws_cli, sqs, kedge_endpoint):
    url = aws_cli("sqs", "create-queue", "--queue-name", "cli-q",
                  "--attributes", json.dumps({"VisibilityTimeout": "40"}),
                  "--tags", json.dumps({"team": "cli"}))["QueueUrl"]
    assert url == f"{kedge_endpoint}/{ACCOUNT_ID}/cli-q"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "cli"}
    other = sqs.create_queue(QueueName="other-q")["QueueUrl"]
    got_url, listed, attrs = parallel(
        lambda: aws_cli("sqs", "get-queue-url", "--queue-name", "cli-q"),
        lambda: aws_cli("sqs", "list-queues", "--queue-name-prefix", "cli"),
        lambda: aws_cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All"),
    )
    assert got_url["QueueUrl"] == url
    assert listed["QueueUrls"] == [url]
    attrs = attrs["Attributes"]
    assert attrs["VisibilityTimeout"] == "40"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:cli-q"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    aws_cli("sqs", "delete-queue", "--queue-url", url)
    assert sqs.list_queues()["QueueUrls"] == [other]


def test_cli_send_receive_delete(aws_cli, sqs):
    url = sqs.create_queue(QueueName="cli-msgs")["QueueUrl"]
    attrs = {"kind": {"DataType": "String", "StringValue": "greeting"},
             "n": {"DataType": "Number", "StringValue": "7"}}
    sent = aws_cli("sqs", "send-message", "--queue-url", url, "--message-body", "hello from the CLI",
                   "--message-attributes", json.dumps(attrs))
    assert sent["MD5OfMessageBody"] == md5("hello from the CLI")
    assert sent["MD5OfMessageAttributes"]
    got = aws_cli("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10",
                  "--attribute-names", "All", "--message-attribute-names", "All")
    assert len(got["Messages"]) == 1
    m = got["Messages"][0]
    assert m["Body"] == "hello from the CLI"
    assert m["MessageId"] == sent["MessageId"]
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"] == attrs
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(m["Attributes"])
    assert counters(sqs, url) == (0, 1)
    aws_cli("sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
    assert counters(sqs, url) == (0, 0)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_cli_batch_and_purge(aws_cli, sqs):
    url = sqs.create_queue(QueueName="cli-batch")["QueueUrl"]
    entries = [{"Id": f"e{i}", "MessageBody": f"body {i}"} for i in range(5)]
    out = aws_cli("sqs", "send-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
    assert sorted(e["Id"] for e in out["Successful"]) == [f"e{i}" for i in range(5)]
    assert out.get("Failed", []) == []
    assert counters(sqs, url) == (5, 0)
    aws_cli("sqs", "purge-queue", "--queue-url", url)
    assert counters(sqs, url) == (0, 0)
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    second = aws_cli.run("sqs", "purge-queue", "--queue-url", url)
    assert second.returncode != 0
    assert "AWS.SimpleQueueService.PurgeQueueInProgress" in second.stderr


def test_cli_fifo(aws_cli, sqs):
    url = sqs.create_queue(QueueName="cli.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    send_one = ("sqs", "send-message", "--queue-url", url, "--message-body", "one", "--message-group-id", "g")
    first, dup = parallel(lambda: aws_cli(*send_one), lambda: aws_cli(*send_one))
    assert dup["MessageId"] == first["MessageId"]  # content-based deduplication
    second = sqs.send_message(QueueUrl=url, MessageBody="two", MessageGroupId="g")
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])
    got, missing_group = parallel(
        lambda: aws_cli("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10"),
        lambda: aws_cli.run("sqs", "send-message", "--queue-url", url, "--message-body", "x"),
    )
    assert [m["Body"] for m in got["Messages"]] == ["one", "two"]
    assert missing_group.returncode != 0
    assert "MissingParameter" in missing_group.stderr


def test_cli_errors_on_nonexistent_queue(aws_cli, kedge_endpoint):
    r, s = parallel(
        lambda: aws_cli.run("sqs", "get-queue-url", "--queue-name", "no-such-queue"),
        lambda: aws_cli.run("sqs", "send-message", "--queue-url",
                            f"{kedge_endpoint}/{ACCOUNT_ID}/no-such-queue", "--message-body", "x"),
    )
    # aws CLI v1 exits 255 on a service error, v2 exits 254
    assert r.returncode in (254, 255), (r.returncode, r.stderr)
    assert "AWS.SimpleQueueService.NonExistentQueue" in r.stderr
    assert "GetQueueUrl" in r.stderr
    assert s.returncode in (254, 255), (s.returncode, s.stderr)
    assert "AWS.SimpleQueueService.NonExistentQueue" in s.stderr


def test_cli_sigv4_credentials(kedge_server_factory, tmp_path):
    server = kedge_server_factory("--credentials", "AKIDCLI:cli-secret")
    good = AwsCli(server.url, tmp_path, access_key="AKIDCLI", secret_key="cli-secret")
    assert good("sqs", "create-queue", "--queue-name", "cli-signed")["QueueUrl"].endswith("/cli-signed")
    bad_secret, bad_key = parallel(
        lambda: AwsCli(server.url, tmp_path, access_key="AKIDCLI", secret_key="nope").run("sqs", "list-queues"),
        lambda: AwsCli(server.url, tmp_path, access_key="AKIDWHO", secret_key="cli-secret").run("sqs", "list-queues"),
    )
    assert bad_secret.returncode != 0
    assert "SignatureDoesNotMatch" in bad_secret.stderr
    assert bad_key.returncode != 0
    assert "InvalidClientTokenId" in bad_key.stderr

//! aws-sdk-sqs (the real Rust SDK) against a real gateway on a free port.

mod common;

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use clock::{ManualClock, Timestamp};
use common::{Options, TestServer};

async fn create(c: &aws_sdk_sqs::Client, name: &str) -> String {
    c.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

#[tokio::test]
async fn queue_management_round_trip() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let url = create(&c, "orders").await;
    assert_eq!(url, format!("{}/000000000000/orders", s.url));
    // Idempotent with equal attributes, an error with different ones.
    create(&c, "orders").await;
    let err = c
        .create_queue()
        .queue_name("orders")
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("QueueAlreadyExists"));
    assert_eq!(
        c.get_queue_url()
            .queue_name("orders")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap(),
        url
    );
    let err = c
        .get_queue_url()
        .queue_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_queue_does_not_exist(),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("AWS.SimpleQueueService.NonExistentQueue"));

    for n in ["orders-a", "orders-b", "other"] {
        create(&c, n).await;
    }
    let page1 = c
        .list_queues()
        .queue_name_prefix("orders")
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.queue_urls().len(), 2);
    let token = page1.next_token.clone().expect("more pages");
    let page2 = c
        .list_queues()
        .queue_name_prefix("orders")
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(page2.queue_urls().len(), 1);
    assert!(page2.next_token.is_none());

    c.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .send()
        .await
        .unwrap();
    let attrs = c
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes.unwrap();
    assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        a[&QueueAttributeName::QueueArn],
        "arn:aws:sqs:us-east-1:000000000000:orders"
    );
    let err = c
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::DelaySeconds, "901")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidAttributeValue"));

    c.tag_queue()
        .queue_url(&url)
        .tags("team", "pay")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    c.untag_queue()
        .queue_url(&url)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["team"], "pay");

    c.delete_queue().queue_url(&url).send().await.unwrap();
    let err = c
        .get_queue_url()
        .queue_name("orders")
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_queue_does_not_exist());
    s.stop().await;
}

#[tokio::test]
async fn send_receive_delete_with_attributes_and_digests() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let url = create(&c, "q").await;
    let sent = c
        .send_message()
        .queue_url(&url)
        .message_body("hello")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("payment")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "amount",
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("12.5")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "blob",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0u8, 1, 2, 255]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        sent.md5_of_message_body(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    let got = c
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    assert_eq!(m.body(), Some("hello"));
    assert_eq!(m.message_id(), sent.message_id());
    assert_eq!(
        m.md5_of_message_attributes(),
        sent.md5_of_message_attributes()
    );
    let ma = m.message_attributes.as_ref().unwrap();
    assert_eq!(ma["amount"].string_value(), Some("12.5"));
    assert_eq!(
        ma["blob"].binary_value.as_ref().unwrap().as_ref(),
        &[0u8, 1, 2, 255]
    );
    let sa = m.attributes.as_ref().unwrap();
    assert_eq!(
        sa[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert!(sa.contains_key(&MessageSystemAttributeName::SentTimestamp));
    assert_eq!(sa[&MessageSystemAttributeName::SenderId], "AKIDTEST");
    c.delete_message()
        .queue_url(&url)
        .receipt_handle(m.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let err = c
        .delete_message()
        .queue_url(&url)
        .receipt_handle("not-a-handle")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_receipt_handle_is_invalid(),
        "{err:?}"
    );
    let err = c
        .send_message()
        .queue_url(&url)
        .message_body("bad\u{1}")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_invalid_message_contents(),
        "{err:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn batches_report_per_entry_results_and_batch_errors() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let url = create(&c, "q").await;
    let entry = |id: &str, body: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .build()
            .unwrap()
    };
    let r = c
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("a", "one"))
        .entries(entry("b", "two"))
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("c")
                .message_body("late")
                .delay_seconds(1000)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.successful().len(), 2);
    assert_eq!(r.failed().len(), 1);
    assert_eq!(r.failed()[0].id(), "c");
    assert!(r.failed()[0].sender_fault());

    let mut too_many = c.send_message_batch().queue_url(&url);
    for i in 0..11 {
        too_many = too_many.entries(entry(&format!("e{i}"), "x"));
    }
    let err = too_many.send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_too_many_entries_in_batch_request(),
        "{err:?}"
    );
    let err = c
        .send_message_batch()
        .queue_url(&url)
        .entries(entry("same", "x"))
        .entries(entry("same", "y"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_batch_entry_ids_not_distinct(),
        "{err:?}"
    );

    let got = c
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 2);
    let mut del = c.delete_message_batch().queue_url(&url);
    for (i, m) in got.messages().iter().enumerate() {
        del = del.entries(
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(m.receipt_handle().unwrap())
                .build()
                .unwrap(),
        );
    }
    del = del.entries(
        DeleteMessageBatchRequestEntry::builder()
            .id("bad")
            .receipt_handle("zzz")
            .build()
            .unwrap(),
    );
    let r = del.send().await.unwrap();
    assert_eq!(r.successful().len(), 2);
    assert_eq!(r.failed()[0].code(), "ReceiptHandleIsInvalid");
    s.stop().await;
}

#[tokio::test]
async fn visibility_timeout_expiry_redelivers_under_a_manual_clock() {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let s = TestServer::with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = common::sqs(&s.url).await;
    let url = create(&c, "q").await;
    c.send_message()
        .queue_url(&url)
        .message_body("job")
        .send()
        .await
        .unwrap();
    let first = c
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(30)
        .send()
        .await
        .unwrap();
    assert_eq!(first.messages().len(), 1);
    let none = c.receive_message().queue_url(&url).send().await.unwrap();
    assert!(none.messages().is_empty());
    clock.advance(Duration::from_secs(31));
    let again = c
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let m = &again.messages()[0];
    assert_eq!(
        m.attributes.as_ref().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "2"
    );
    c.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(m.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.receive_message()
            .queue_url(&url)
            .send()
            .await
            .unwrap()
            .messages()
            .len(),
        1
    );
    // A handle from the first delivery still deletes the message, as SQS answers it.
    c.delete_message()
        .queue_url(&url)
        .receipt_handle(first.messages()[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(31));
    assert!(
        c.receive_message()
            .queue_url(&url)
            .send()
            .await
            .unwrap()
            .messages()
            .is_empty()
    );
    s.stop().await;
}

#[tokio::test]
async fn long_poll_is_woken_at_once_by_a_send() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let url = create(&c, "q").await;
    let (c2, url2) = (c.clone(), url.clone());
    let poll = tokio::spawn(async move {
        c2.receive_message()
            .queue_url(url2)
            .wait_time_seconds(20)
            .send()
            .await
            .unwrap()
    });
    // Give the poll a moment to be parked; if it is not yet, the send is simply found at once.
    tokio::task::yield_now().await;
    c.send_message()
        .queue_url(&url)
        .message_body("wake")
        .send()
        .await
        .unwrap();
    // A 20 s poll that is not woken would hit this timeout.
    let got = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.messages()[0].body(), Some("wake"));
    let err = c
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(21)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    s.stop().await;
}

#[tokio::test]
async fn fifo_queue_ordering_groups_and_deduplication() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let url = c
        .create_queue()
        .queue_name("pay.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut seqs = Vec::new();
    for i in 0..4 {
        let r = c
            .send_message()
            .queue_url(&url)
            .message_body(format!("tx{i}"))
            .message_group_id("acct-1")
            .send()
            .await
            .unwrap();
        seqs.push(r.sequence_number.unwrap().parse::<u128>().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let dup = c
        .send_message()
        .queue_url(&url)
        .message_body("tx0")
        .message_group_id("acct-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        dup.sequence_number.unwrap().parse::<u128>().unwrap(),
        seqs[0]
    );
    let err = c
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MissingParameter"));
    let got = c
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(2)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = got.messages().iter().map(|m| m.body().unwrap()).collect();
    assert_eq!(bodies, ["tx0", "tx1"]);
    // The group is locked while those are in flight.
    assert!(
        c.receive_message()
            .queue_url(&url)
            .send()
            .await
            .unwrap()
            .messages()
            .is_empty()
    );
    s.stop().await;
}

#[tokio::test]
async fn dead_letter_queue_redrive() {
    let s = TestServer::start().await;
    let c = common::sqs(&s.url).await;
    let dlq = create(&c, "dlq").await;
    let src = c
        .create_queue()
        .queue_name("src")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"2"}"#,
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    c.send_message()
        .queue_url(&src)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let r = c
            .receive_message()
            .queue_url(&src)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        assert_eq!(r.messages().len(), 1);
    }
    assert!(
        c.receive_message()
            .queue_url(&src)
            .send()
            .await
            .unwrap()
            .messages()
            .is_empty()
    );
    let d = c.receive_message().queue_url(&dlq).send().await.unwrap();
    assert_eq!(d.messages()[0].body(), Some("poison"));
    let sources = c
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert_eq!(sources.queue_urls(), std::slice::from_ref(&src));
    s.stop().await;
}

#[tokio::test]
async fn sigv4_is_verified_when_credentials_are_configured() {
    let s = TestServer::with(Options {
        credentials: Some("AKIDGOOD:goodsecret".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let good =
        aws_sdk_sqs::Client::new(&common::sdk_config(&s.url, "AKIDGOOD", "goodsecret").await);
    good.create_queue().queue_name("q").send().await.unwrap();
    let bad_secret =
        aws_sdk_sqs::Client::new(&common::sdk_config(&s.url, "AKIDGOOD", "wrong").await);
    let err = bad_secret.list_queues().send().await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    let bad_key =
        aws_sdk_sqs::Client::new(&common::sdk_config(&s.url, "AKIDBAD", "goodsecret").await);
    let err = bad_key.list_queues().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    s.stop().await;
}

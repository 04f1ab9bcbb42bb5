//! `external` and `external-push` against a small external scaler written here: a gRPC server
//! (HTTP/2, hyper) implementing KEDA's ExternalScaler service (`GetMetricSpec`, `GetMetrics`,
//! `IsActive`, `StreamIsActive`), as any scaler written for KEDA does.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clock::Timestamp;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use scalers::external::{frame, proto, unframe};
use scalers::{ResolvedAuth, build_scaler_for};
use tokio::sync::mpsc;

/// A response body fed by a channel: data frames, then trailers.
struct Frames(mpsc::UnboundedReceiver<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

fn ok_trailers() -> Frame<Bytes> {
    let mut h = hyper::HeaderMap::new();
    h.insert("grpc-status", "0".parse().unwrap());
    Frame::trailers(h)
}

/// A decoded ScaledObjectRef: name, namespace, metadata pairs.
type SeenRef = (String, String, Vec<(String, String)>);

#[derive(Default)]
struct State {
    /// Decoded ScaledObjectRef fields of every request: (name, namespace, metadata pairs).
    seen: Mutex<Vec<SeenRef>>,
    queue: Mutex<f64>,
    /// Senders of open StreamIsActive streams.
    streams: Mutex<VecDeque<mpsc::UnboundedSender<Frame<Bytes>>>>,
}

fn decode_ref(b: &[u8]) -> SeenRef {
    let mut out = (String::new(), String::new(), Vec::new());
    for (f, v) in proto::fields(b).unwrap_or_default() {
        let proto::Value::Bytes(s) = v else { continue };
        match f {
            1 => out.0 = String::from_utf8_lossy(s).into_owned(),
            2 => out.1 = String::from_utf8_lossy(s).into_owned(),
            3 => {
                let kv = proto::fields(s).unwrap_or_default();
                let get = |n: u32| {
                    kv.iter()
                        .find_map(|(f, v)| match v {
                            proto::Value::Bytes(x) if *f == n => {
                                Some(String::from_utf8_lossy(x).into_owned())
                            }
                            _ => None,
                        })
                        .unwrap_or_default()
                };
                out.2.push((get(1), get(2)));
            }
            _ => {}
        }
    }
    out
}

async fn serve(state: Arc<State>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let method = req
                                .uri()
                                .path()
                                .rsplit('/')
                                .next()
                                .unwrap_or("")
                                .to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let msg = unframe(&body).into_iter().next().unwrap_or_default();
                            let (tx, rx) = mpsc::unbounded_channel();
                            let queue = *state.queue.lock().unwrap();
                            let reply = match method.as_str() {
                                "GetMetricSpec" => {
                                    state.seen.lock().unwrap().push(decode_ref(&msg));
                                    Some(proto::encode_repeated(&[proto::encode_named_number(
                                        "queue", 5, 5.0,
                                    )]))
                                }
                                "GetMetrics" => {
                                    Some(proto::encode_repeated(&[proto::encode_named_number(
                                        "queue",
                                        queue as i64,
                                        queue,
                                    )]))
                                }
                                "IsActive" => Some(proto::encode_bool(1, queue > 0.0)),
                                "StreamIsActive" => {
                                    let _ = tx.send(Frame::data(frame(&proto::encode_bool(
                                        1,
                                        queue > 0.0,
                                    ))));
                                    state.streams.lock().unwrap().push_back(tx.clone());
                                    None
                                }
                                _ => None,
                            };
                            if let Some(r) = reply {
                                let _ = tx.send(Frame::data(frame(&r)));
                                let _ = tx.send(ok_trailers());
                            }
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(Frames(rx))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    addr.to_string()
}

fn trigger(ty: &str, addr: &str) -> model::keda::Trigger {
    model::keda::Trigger {
        trigger_type: ty.into(),
        name: None,
        metadata: [("scalerAddress", addr), ("queue", "orders")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        authentication_ref: None,
        metric_type: None,
        use_cached_metrics: false,
    }
}

#[tokio::test]
async fn external_scaler_metric_target_and_activity() {
    let state = Arc::new(State::default());
    *state.queue.lock().unwrap() = 20.0;
    let addr = serve(state.clone()).await;
    let s = build_scaler_for(
        &trigger("external", &addr),
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "orders-worker",
    )
    .unwrap();
    let m = s.get_metric_and_activity(Timestamp::ZERO).await.unwrap();
    // 20 against the scaler's target 5: reported as 4 against 1 (the same HPA ratio).
    assert_eq!((m.value, m.active), (4.0, true));
    let seen = state.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "orders-worker");
    assert_eq!(seen[0].1, "shop");
    assert!(
        seen[0]
            .2
            .contains(&("queue".to_string(), "orders".to_string()))
    );
    *state.queue.lock().unwrap() = 0.0;
    let m = s.get_metric_and_activity(Timestamp::ZERO).await.unwrap();
    assert_eq!((m.value, m.active), (0.0, false));
    // Nobody listening: a connect error.
    let down = build_scaler_for(
        &trigger("external", "127.0.0.1:1"),
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "x",
    )
    .unwrap();
    let e = down
        .get_metric_and_activity(Timestamp::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "connect", "{e}");
}

#[tokio::test]
async fn external_push_wakes_the_loop_when_the_scaler_pushes() {
    let state = Arc::new(State::default());
    let addr = serve(state.clone()).await;
    let s = build_scaler_for(
        &trigger("external-push", &addr),
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "orders-worker",
    )
    .unwrap();
    // Wait for the stream to be open (the server registers it), bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.streams.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "StreamIsActive never opened"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let woken = s.changed().expect("external-push has change notifications");
    let tx = state.streams.lock().unwrap().front().cloned().unwrap();
    tx.send(Frame::data(frame(&proto::encode_bool(1, true))))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken)
        .await
        .expect("a pushed IsActive wakes the loop");
}

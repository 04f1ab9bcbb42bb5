//! The queue engine: Amazon SQS semantics over the journal.
//!
//! # Layout
//! - [`error`]: SQS error codes, statuses and legacy query codes.
//! - [`attrs`]: queue attributes, their validation and AWS defaults.
//! - [`md5`]: body and attribute digests as SQS computes them.
//! - [`persist`]: journal records, SQL and recovery.
//! - this file: [`QueueEngine`], the in-memory state machine of every queue.
//!
//! # Message states
//! Each message is in exactly one [`MsgState`]; a per-queue timer set (`(due, seq)`) holds every
//! delayed or in-flight message, and `tick(now)` moves the due ones back to available. Receives
//! read only the available index, so their cost is O(log n) in the queue's depth, not O(n).
//! FIFO queues keep messages per group; a group with a message in flight is locked (at most
//! one in-flight batch per group) and a ready-groups index ordered by the group's oldest
//! message gives the next group to serve.

pub mod attrs;
pub mod error;
pub mod md5;
pub mod message_id;
pub mod move_task;
pub mod persist;
pub mod segment;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clock::{Clock, Timestamp};
use parking_lot::Mutex;
use rand::Rng;

pub use attrs::{QueueAttrs, RedriveAllow, RedrivePolicy};
pub use error::{SqsError, SqsErrorKind};
pub use message_id::MessageId;
use persist::QueueRecord;

use crate::journal::{Journal, Record, Ticket};

/// The account id in queue URLs and ARNs (as other local AWS endpoints use).
pub const ACCOUNT_ID: &str = "000000000000";
/// The FIFO deduplication interval.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// A message a FIFO receive attempt returned: its sequence number, receipt token and the time
/// it was to be visible again then.
type Issued = (u64, u64, Timestamp);
const MAX_INFLIGHT_STANDARD: usize = 120_000;
const MAX_INFLIGHT_FIFO: usize = 120_000;

/// A typed message attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttributeValue {
    /// `String`, `Number` or `Binary`, optionally with a custom suffix (`Number.int`).
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// A message as stored (in memory and on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub queue_id: u64,
    pub seq: u64,
    pub message_id: MessageId,
    pub body: Arc<str>,
    pub attributes: BTreeMap<String, MessageAttributeValue>,
    pub trace_header: Option<String>,
    pub sent: Timestamp,
    pub sender_id: Arc<str>,
    pub group_id: Option<Arc<str>>,
    pub dedup_id: Option<String>,
    pub dlq_source_arn: Option<String>,
    pub receive_count: u32,
    pub first_receive: Option<Timestamp>,
    /// When the message is (or becomes) visible.
    pub visible: Timestamp,
    /// Changes at every receive; a receipt handle names the token it was issued with.
    pub token: u64,
}

impl StoredMessage {
    /// The part of the message that receives and visibility changes change.
    pub fn receive_state(&self) -> persist::ReceiveState {
        persist::ReceiveState {
            receive_count: self.receive_count,
            first_receive: self.first_receive,
            visible: self.visible,
            token: self.token,
        }
    }

    pub fn set_receive_state(&mut self, s: persist::ReceiveState) {
        self.receive_count = s.receive_count;
        self.first_receive = s.first_receive;
        self.visible = s.visible;
        self.token = s.token;
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgState {
    /// Sent with a delay that has not elapsed; invisible, counted as delayed.
    Delayed,
    /// Can be received.
    Available,
    /// Received and not yet deleted; invisible until its visibility timeout passes.
    InFlight,
}

/// Boxed in the map: B-tree nodes then hold pointers, not half-empty slots of whole
/// messages (sequential inserts leave Rust's B-tree nodes about half full). Digests are
/// computed when a message is handed out rather than kept per message: MD5 of a body is far
/// cheaper than the memory to hold it for every queued message.
struct Msg {
    m: StoredMessage,
    state: MsgState,
    /// The body's digest, kept from the send (a receive answers it); `None` for messages
    /// loaded at start or moved between queues until their first receive computes it.
    md5_body: Option<md5::RawDigest>,
}

// A queued message is one allocation of its own: it stays in mimalloc's 256-byte size class
// (the next one is 320 bytes, a quarter more for every message a deep queue holds).
const _: () = assert!(std::mem::size_of::<Msg>() <= 256);

impl Msg {
    /// The body's digest: kept from the send, or computed.
    fn body_digest(&self) -> md5::RawDigest {
        self.md5_body
            .unwrap_or_else(|| md5::RawDigest::of(self.m.body.as_bytes()))
    }
}

#[derive(Default)]
struct Group {
    /// Messages of the group in send order, whatever their state.
    msgs: VecDeque<u64>,
    inflight: usize,
    /// The turn under which the group sits in `ready_groups`, if it does.
    ready_at: Option<u64>,
}

struct Queue {
    id: u64,
    name: String,
    attrs: QueueAttrs,
    tags: HashMap<String, String>,
    created: Timestamp,
    modified: Timestamp,
    messages: BTreeMap<u64, Box<Msg>>,
    /// Standard queues: available messages by seq.
    available: BTreeSet<u64>,
    /// Delayed and in-flight messages by the time they become available.
    timers: BTreeSet<(Timestamp, u64)>,
    inflight: usize,
    delayed: usize,
    /// FIFO queues: groups and the receivable ones by their oldest message.
    groups: HashMap<Arc<str>, Group>,
    /// Groups that can be received from, by turn: the order in which they became
    /// receivable (SQS serves a group that became visible again after the ones waiting).
    ready_groups: BTreeSet<(u64, Arc<str>)>,
    /// The next turn handed to a group that becomes receivable.
    next_turn: u64,
    dedup: HashMap<String, (Timestamp, String, u64)>,
    dedup_order: VecDeque<(Timestamp, String)>,
    last_purge: Option<Timestamp>,
    notify: Arc<tokio::sync::Notify>,
    /// FIFO receive attempts: id → (expiry, the messages it returned).
    attempts: HashMap<String, (Timestamp, Vec<Issued>)>,
    /// After a change of `DeduplicationScope`: the scope sends keep deduplicating by, and
    /// until when ([`SCOPE_PROPAGATION`]). Not journaled: after a restart the new scope applies.
    scope_change: Option<(String, Timestamp)>,
}

/// How long a changed `DeduplicationScope` takes to apply to sends. SQS documents that an
/// attribute change "can take up to 60 seconds" to propagate, and a FIFO queue switched to
/// (or from) high throughput keeps deduplicating by its earlier scope right after the change
/// (LocalStack's tests recorded against AWS: a message of another group with the same
/// deduplication id is still dropped after the switch to `messageGroup`).
const SCOPE_PROPAGATION: Duration = Duration::from_secs(60);

impl Queue {
    /// The deduplication scope sends use at `now`: the queue's, or the one before a change
    /// that has not propagated yet.
    fn dedup_scope(&self, now: Timestamp) -> &str {
        match &self.scope_change {
            Some((before, until)) if now < *until => before,
            _ => &self.attrs.deduplication_scope,
        }
    }

    fn new(id: u64, name: String, attrs: QueueAttrs, now: Timestamp) -> Self {
        Queue {
            id,
            name,
            attrs,
            tags: HashMap::new(),
            created: now,
            modified: now,
            messages: BTreeMap::new(),
            available: BTreeSet::new(),
            timers: BTreeSet::new(),
            inflight: 0,
            delayed: 0,
            groups: HashMap::new(),
            ready_groups: BTreeSet::new(),
            next_turn: 0,
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            last_purge: None,
            notify: Arc::new(tokio::sync::Notify::new()),
            attempts: HashMap::new(),
            scope_change: None,
        }
    }

    fn put_record(&self) -> QueueRecord {
        QueueRecord::PutQueue {
            id: self.id,
            name: self.name.clone(),
            attributes: serde_json::to_string(&self.attrs.raw).unwrap_or_else(|_| "{}".into()),
            tags: serde_json::to_string(&self.tags).unwrap_or_else(|_| "{}".into()),
            created: self.created,
            modified: self.modified,
        }
    }

    /// Insert a message into the indexes according to its stored visibility.
    fn insert(&mut self, m: StoredMessage, now: Timestamp) {
        self.insert_digested(m, now, None);
    }

    /// [`insert`](Self::insert) with the body's digest when it is known.
    fn insert_digested(
        &mut self,
        m: StoredMessage,
        now: Timestamp,
        md5_body: Option<md5::RawDigest>,
    ) {
        let seq = m.seq;
        let state = if m.visible > now {
            // Invisible after a receive means in flight; before any receive, delayed.
            if m.receive_count > 0 {
                MsgState::InFlight
            } else {
                MsgState::Delayed
            }
        } else {
            MsgState::Available
        };
        let group = m.group_id.clone();
        let visible = m.visible;
        self.messages
            .insert(seq, Box::new(Msg { m, state, md5_body }));
        match state {
            MsgState::Available => {}
            MsgState::Delayed => {
                self.delayed += 1;
                self.timers.insert((visible, seq));
            }
            MsgState::InFlight => {
                self.inflight += 1;
                self.timers.insert((visible, seq));
            }
        }
        if self.attrs.fifo {
            let g = group.unwrap_or_else(|| Arc::from(""));
            let grp = self.groups.entry(g.clone()).or_default();
            grp.msgs.push_back(seq);
            if state == MsgState::InFlight {
                grp.inflight += 1;
            }
            self.refresh_group(&g);
        } else if state == MsgState::Available {
            self.available.insert(seq);
        }
    }

    /// Recompute whether a FIFO group can be received from, and drop empty groups.
    ///
    /// A group can be received from while its oldest message is visible: a receive hands out
    /// its visible messages in order up to the first one in flight (AWS-recorded answers:
    /// extending one message's visibility keeps it and every later message of its group
    /// back; a message of the group made visible again reopens the group while later ones are
    /// still in flight). A group that becomes receivable takes the next turn.
    fn refresh_group(&mut self, gid: &Arc<str>) {
        let Some(g) = self.groups.get_mut(gid) else {
            return;
        };
        let receivable = g
            .msgs
            .front()
            .and_then(|s| self.messages.get(s))
            .is_some_and(|m| m.state == MsgState::Available);
        match (receivable, g.ready_at) {
            (true, None) => {
                let turn = self.next_turn;
                self.next_turn += 1;
                g.ready_at = Some(turn);
                self.ready_groups.insert((turn, gid.clone()));
            }
            (false, Some(turn)) => {
                g.ready_at = None;
                self.ready_groups.remove(&(turn, gid.clone()));
            }
            _ => {}
        }
        if g.msgs.is_empty() && g.inflight == 0 {
            self.groups.remove(gid);
        }
    }

    /// Remove a message from every index; returns it.
    fn remove(&mut self, seq: u64) -> Option<Box<Msg>> {
        let msg = self.messages.remove(&seq)?;
        match msg.state {
            MsgState::Available => {
                self.available.remove(&seq);
            }
            MsgState::Delayed => {
                self.delayed -= 1;
                self.timers.remove(&(msg.m.visible, seq));
            }
            MsgState::InFlight => {
                self.inflight -= 1;
                self.timers.remove(&(msg.m.visible, seq));
            }
        }
        if self.attrs.fifo {
            let gid = msg.m.group_id.clone().unwrap_or_else(|| Arc::from(""));
            if let Some(g) = self.groups.get_mut(&gid) {
                if let Some(pos) = g.msgs.iter().position(|&s| s == seq) {
                    g.msgs.remove(pos);
                }
                if msg.state == MsgState::InFlight {
                    g.inflight -= 1;
                }
            }
            self.refresh_group(&gid);
        }
        Some(msg)
    }

    /// Move due timers to available, expire retention and dedup entries.
    fn tick(&mut self, now: Timestamp, records: &mut Vec<Record>) {
        while let Some(&(due, seq)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            let fifo = self.attrs.fifo;
            let Some(msg) = self.messages.get_mut(&seq) else {
                continue;
            };
            let gid = msg.m.group_id.clone();
            match msg.state {
                MsgState::Delayed => self.delayed -= 1,
                MsgState::InFlight => {
                    self.inflight -= 1;
                    if fifo {
                        let g = gid.clone().unwrap_or_else(|| Arc::from(""));
                        if let Some(g) = self.groups.get_mut(&g) {
                            g.inflight -= 1;
                        }
                    }
                }
                MsgState::Available => {}
            }
            msg.state = MsgState::Available;
            if fifo {
                let g = gid.unwrap_or_else(|| Arc::from(""));
                self.refresh_group(&g);
            } else {
                self.available.insert(seq);
            }
        }
        let retention = Duration::from_secs(self.attrs.message_retention_period as u64);
        while let Some((&seq, msg)) = self.messages.first_key_value() {
            if msg.m.sent.add(retention) > now {
                break;
            }
            self.remove(seq);
            records.push(Record::Queue(QueueRecord::Delete {
                queue: self.id,
                seq,
            }));
        }
        while let Some((exp, _)) = self.dedup_order.front() {
            if *exp > now {
                break;
            }
            if let Some((_, key)) = self.dedup_order.pop_front()
                && self.dedup.get(&key).is_some_and(|(e, _, _)| *e <= now)
            {
                self.dedup.remove(&key);
            }
        }
    }

    fn arn(&self, region: &str) -> String {
        format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{}", self.name)
    }
}

/// What a client asks to send (one entry of a batch).
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub body: Arc<str>,
    pub delay_seconds: Option<i64>,
    pub attributes: BTreeMap<String, MessageAttributeValue>,
    pub system_attributes: BTreeMap<String, MessageAttributeValue>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The request's `X-Amzn-Trace-Id` HTTP header: the message's `AWSTraceHeader` when the
    /// entry's system attributes carry none (as SQS propagates X-Ray traces).
    pub http_trace_header: Option<String>,
}

/// What a send answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub md5_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// A receive request, validated by the caller's protocol layer for presence only.
#[derive(Debug, Clone, Default)]
pub struct ReceiveRequest {
    pub max_messages: Option<i64>,
    pub visibility_timeout: Option<i64>,
    /// System attribute names (`All`, `SentTimestamp`, …).
    pub attribute_names: Vec<String>,
    /// Message attribute names (`All`, `.*`, `prefix.*`, exact names).
    pub message_attribute_names: Vec<String>,
    /// FIFO only: a retry with the same id within 5 minutes returns the same messages and
    /// receipt handles, as long as none of them was deleted or had its visibility changed.
    pub attempt_id: Option<String>,
}

/// A received message, ready to encode.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: MessageId,
    pub receipt_handle: String,
    pub body: Arc<str>,
    pub md5_body: md5::HexDigest,
    pub attributes: Vec<(&'static str, String)>,
    pub message_attributes: BTreeMap<String, MessageAttributeValue>,
    pub md5_attributes: Option<String>,
}

/// The queue counters the autoscaler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
}

struct State {
    queues: HashMap<String, Queue>,
    /// Names deleted in the last 60 s: AWS refuses to reuse them that soon.
    recently_deleted: HashMap<String, Timestamp>,
    last_sender: Option<Arc<str>>,
    next_seq: u64,
    next_queue_id: u64,
    rng: rand::rngs::StdRng,
    /// Message move tasks, oldest first (kept across restarts).
    move_tasks: Vec<move_task::MoveTask>,
    /// Running move tasks' pace, by handle (not journaled: a restart paces from itself).
    move_pace: HashMap<String, move_task::Pace>,
}

/// The queue engine: every queue's state behind one lock, journaled.
pub struct QueueEngine {
    state: Mutex<State>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    region: String,
}

impl std::fmt::Debug for QueueEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueEngine").finish_non_exhaustive()
    }
}

type Batch<T> = Vec<Result<T, SqsError>>;

impl QueueEngine {
    pub fn new(journal: Journal, clock: Arc<dyn Clock>) -> Self {
        Self::from_state(persist::LoadedState::default(), journal, clock)
    }

    /// Rebuild the engine from recovered state.
    pub fn from_state(st: persist::LoadedState, journal: Journal, clock: Arc<dyn Clock>) -> Self {
        use rand::SeedableRng;
        let now = clock.now();
        let mut queues = HashMap::new();
        let mut by_id = HashMap::new();
        for lq in st.queues {
            let fifo = lq
                .attributes
                .get("FifoQueue")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let mut attrs = QueueAttrs::defaults(fifo);
            // Earlier versions accepted `FifoQueue=false` on a standard queue (SQS refuses it
            // now as an unknown attribute): it says nothing, so it is left out when reading.
            let mut stored = lq.attributes.clone();
            if !fifo {
                stored.remove("FifoQueue");
            }
            // Attributes were validated when set; re-applying cannot fail unless the file was
            // edited by hand, in which case defaults are the safe reading.
            if let Err(e) = attrs.apply(&stored, true) {
                tracing::warn!(queue = %lq.name, error = %e, "stored queue attributes invalid; using defaults");
                attrs = QueueAttrs::defaults(fifo);
            }
            let mut q = Queue::new(lq.id, lq.name.clone(), attrs, now);
            q.tags = lq.tags;
            q.created = lq.created;
            q.modified = lq.modified;
            by_id.insert(lq.id, lq.name.clone());
            queues.insert(lq.name, q);
        }
        for m in st.messages {
            if let Some(name) = by_id.get(&m.queue_id)
                && let Some(q) = queues.get_mut(name)
            {
                q.insert(m, now);
            }
        }
        for (qid, key, exp, mid, seq) in st.dedup {
            if let Some(name) = by_id.get(&qid)
                && let Some(q) = queues.get_mut(name)
            {
                q.dedup_order.push_back((exp, key.clone()));
                q.dedup.insert(key, (exp, mid, seq));
            }
        }
        for q in queues.values_mut() {
            q.dedup_order.make_contiguous().sort();
        }
        QueueEngine {
            state: Mutex::new(State {
                queues,
                recently_deleted: HashMap::new(),
                last_sender: None,
                next_seq: st.next_seq.max(1),
                next_queue_id: st.next_queue_id.max(1),
                rng: rand::rngs::StdRng::from_os_rng(),
                move_pace: move_task::paces_after_restart(&st.move_tasks, now),
                move_tasks: st.move_tasks,
            }),
            journal,
            clock,
            region: "us-east-1".into(),
        }
    }

    /// The region used in ARNs.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{ACCOUNT_ID}:{name}", self.region)
    }

    // ----- queue management ---------------------------------------------------------------

    /// `CreateQueue`: idempotent for equal attributes, `QueueNameExists` otherwise.
    pub fn create_queue(
        &self,
        name: &str,
        attributes: &HashMap<String, String>,
        tags: &HashMap<String, String>,
    ) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let fifo_attr = attributes
            .get("FifoQueue")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        if attributes
            .get("FifoQueue")
            .is_some_and(|v| !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false"))
        {
            return Err(SqsError::new(
                SqsErrorKind::InvalidAttributeValue,
                format!(
                    "Invalid value for the parameter FifoQueue. Value: {}",
                    attributes["FifoQueue"]
                ),
            ));
        }
        let is_fifo_name = name.ends_with(".fifo");
        if is_fifo_name && !fifo_attr {
            return Err(SqsError::invalid_param(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
            ));
        }
        attrs::validate_queue_name(name, fifo_attr)?;
        let mut a = QueueAttrs::defaults(fifo_attr);
        a.apply(attributes, true)?;
        validate_tags(tags)?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        self.check_redrive(&st, name, &a)?;
        if let Some(q) = st.queues.get(name) {
            // Idempotent when every attribute the request names has the queue's value; the
            // ones it leaves out are not compared (SQS). The answer names one that differs.
            let existing = q.attrs.report();
            let mut names: Vec<&String> = attributes.keys().collect();
            names.sort();
            for k in names {
                let mut probe = q.attrs.clone();
                probe.apply(&HashMap::from([(k.clone(), attributes[k].clone())]), true)?;
                if probe.report() != existing {
                    return Err(SqsError::new(
                        SqsErrorKind::QueueNameExists,
                        format!(
                            "A queue already exists with the same name and a different value for attribute {k}"
                        ),
                    ));
                }
            }
            return Ok(Ticket::ready(Ok(())));
        }
        st.recently_deleted
            .retain(|_, at| now.since(*at) < Duration::from_secs(60));
        if st.recently_deleted.contains_key(name) {
            return Err(SqsError::new(
                SqsErrorKind::QueueDeletedRecently,
                "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
            ));
        }
        let id = st.next_queue_id;
        st.next_queue_id += 1;
        let mut q = Queue::new(id, name.to_owned(), a, now);
        q.tags = tags.clone();
        let recs = vec![
            Record::Queue(q.put_record()),
            Record::Queue(QueueRecord::Meta {
                next_seq: st.next_seq,
                next_queue_id: st.next_queue_id,
            }),
        ];
        st.queues.insert(name.to_owned(), q);
        Ok(self.journal.submit(recs))
    }

    /// A DLQ must exist, be of the same type and allow this source.
    fn check_redrive(&self, st: &State, source: &str, a: &QueueAttrs) -> Result<(), SqsError> {
        let Some(rp) = &a.redrive_policy else {
            return Ok(());
        };
        let bad = |why: &str| {
            SqsError::new(
                SqsErrorKind::InvalidAttributeValue,
                format!(
                    "Value {{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":\"{}\"}} for parameter RedrivePolicy is invalid. Reason: {why}",
                    rp.dead_letter_target_arn, rp.max_receive_count
                ),
            )
        };
        let dlq_name = attrs::parse_arn(&rp.dead_letter_target_arn)
            .ok_or_else(|| bad("Invalid value for deadLetterTargetArn."))?;
        let dlq = st
            .queues
            .get(dlq_name)
            .ok_or_else(|| bad("Dead letter target does not exist."))?;
        if dlq.attrs.fifo != a.fifo {
            return Err(bad(
                "Dead-letter queue must be of the same type as the source queue (FIFO or standard).",
            ));
        }
        let src_arn = self.arn(source);
        match &dlq.attrs.redrive_allow_policy {
            None | Some(RedriveAllow::AllowAll) => Ok(()),
            Some(RedriveAllow::DenyAll) => Err(bad(
                "Dead-letter queue's RedriveAllowPolicy does not allow this source queue.",
            )),
            Some(RedriveAllow::ByQueue(arns)) if arns.contains(&src_arn) => Ok(()),
            Some(RedriveAllow::ByQueue(_)) => Err(bad(
                "Dead-letter queue's RedriveAllowPolicy does not allow this source queue.",
            )),
        }
    }

    pub fn queue_exists(&self, name: &str) -> bool {
        self.state.lock().queues.contains_key(name)
    }

    /// `ListQueues`: names with `prefix`, sorted, paginated by an opaque token (the last name).
    pub fn list_queues(
        &self,
        prefix: Option<&str>,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), SqsError> {
        let max = match max_results {
            None => None,
            Some(n) if (1..=1000).contains(&n) => Some(n as usize),
            Some(n) => {
                return Err(SqsError::bad_value(
                    "MaxResults",
                    n,
                    "Must be between 1 and 1000, if provided.",
                ));
            }
        };
        if next_token.is_some() && max.is_none() {
            return Err(SqsError::invalid_param(
                "MaxResults is required when NextToken is provided.",
            ));
        }
        let after = match next_token {
            None => None,
            Some(t) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| SqsError::invalid_param("Invalid or expired next token."))?,
            ),
        };
        let st = self.state.lock();
        let mut names: Vec<&String> = st
            .queues
            .keys()
            .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
            .filter(|n| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
            .collect();
        names.sort();
        let limit = max.unwrap_or(1000);
        let more = names.len() > limit && max.is_some();
        names.truncate(limit);
        let token = if more {
            names
                .last()
                .map(|n| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n.as_bytes()))
        } else {
            None
        };
        Ok((names.into_iter().cloned().collect(), token))
    }

    pub fn delete_queue(&self, name: &str) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        let q = st.queues.remove(name).ok_or_else(SqsError::no_queue)?;
        st.recently_deleted.insert(name.to_owned(), now);
        // Wake long pollers so they notice the queue is gone.
        q.notify.notify_waiters();
        Ok(self
            .journal
            .submit(vec![Record::Queue(QueueRecord::DeleteQueue { id: q.id })]))
    }

    /// `PurgeQueue`: one purge per 60 seconds, as AWS allows.
    pub fn purge_queue(&self, name: &str) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        let upto = st.next_seq;
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        if let Some(last) = q.last_purge
            && now.since(last) < Duration::from_secs(60)
        {
            return Err(SqsError::new(
                SqsErrorKind::PurgeQueueInProgress,
                format!("Only one PurgeQueue operation on {name} is allowed every 60 seconds."),
            ));
        }
        q.last_purge = Some(now);
        let seqs: Vec<u64> = q.messages.keys().copied().collect();
        for s in seqs {
            q.remove(s);
        }
        // SQS forgets a FIFO queue's deduplication ids on purge: the same id is accepted again.
        q.dedup.clear();
        q.dedup_order.clear();
        Ok(self
            .journal
            .submit(vec![Record::Queue(QueueRecord::Purge { id: q.id, upto })]))
    }

    /// `GetQueueAttributes`. `names` may contain `All`. Unknown names are an error.
    pub fn get_attributes(
        &self,
        name: &str,
        names: &[String],
    ) -> Result<Vec<(&'static str, String)>, SqsError> {
        const KNOWN: &[&str] = &[
            "All",
            "Policy",
            "VisibilityTimeout",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "CreatedTimestamp",
            "LastModifiedTimestamp",
            "QueueArn",
            "ApproximateNumberOfMessagesDelayed",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "RedrivePolicy",
            "FifoQueue",
            "ContentBasedDeduplication",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "RedriveAllowPolicy",
            "SqsManagedSseEnabled",
        ];
        for n in names {
            if !KNOWN.contains(&n.as_str()) {
                return Err(SqsError::new(
                    SqsErrorKind::InvalidAttributeName,
                    format!("Unknown Attribute {n}."),
                ));
            }
        }
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        q.tick(now, &mut records);
        let counts = counts_of(q);
        let mut all: Vec<(&'static str, String)> = vec![
            ("QueueArn", q.arn(&self.region)),
            ("ApproximateNumberOfMessages", counts.visible.to_string()),
            (
                "ApproximateNumberOfMessagesNotVisible",
                counts.not_visible.to_string(),
            ),
            (
                "ApproximateNumberOfMessagesDelayed",
                counts.delayed.to_string(),
            ),
            ("CreatedTimestamp", q.created.as_secs().to_string()),
            ("LastModifiedTimestamp", q.modified.as_secs().to_string()),
        ];
        all.extend(q.attrs.report());
        if !records.is_empty() {
            // Retention expiries found while reading; durable in the background.
            drop(self.journal.submit(records));
        }
        let want_all = names.iter().any(|n| n == "All");
        Ok(all
            .into_iter()
            .filter(|(k, _)| want_all || names.iter().any(|n| n == k))
            .collect())
    }

    /// The three counters the `aws-sqs-queue` scaler reads.
    pub fn counts(&self, name: &str) -> Result<QueueCounts, SqsError> {
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        q.tick(now, &mut records);
        if !records.is_empty() {
            drop(self.journal.submit(records));
        }
        Ok(counts_of(q))
    }

    pub fn set_attributes(
        &self,
        name: &str,
        attributes: &HashMap<String, String>,
    ) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut st = self.state.lock();
        let q = st.queues.get(name).ok_or_else(SqsError::no_queue)?;
        let mut a = q.attrs.clone();
        a.apply(attributes, false)?;
        self.check_redrive(&st, name, &a)?;
        let Some(q) = st.queues.get_mut(name) else {
            return Err(SqsError::no_queue());
        };
        if a.deduplication_scope != q.attrs.deduplication_scope {
            let before = q.dedup_scope(now).to_owned();
            q.scope_change = Some((before, now.add(SCOPE_PROPAGATION)));
        }
        q.attrs = a;
        q.modified = now;
        let rec = q.put_record();
        // A changed wait time or retention may change what waiters should do.
        q.notify.notify_waiters();
        Ok(self.journal.submit(vec![Record::Queue(rec)]))
    }

    pub fn tag_queue(
        &self,
        name: &str,
        tags: &HashMap<String, String>,
    ) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        let mut merged = q.tags.clone();
        merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        validate_tags(&merged)?;
        q.tags = merged;
        let rec = q.put_record();
        Ok(self.journal.submit(vec![Record::Queue(rec)]))
    }

    pub fn untag_queue(&self, name: &str, keys: &[String]) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        for k in keys {
            q.tags.remove(k);
        }
        let rec = q.put_record();
        Ok(self.journal.submit(vec![Record::Queue(rec)]))
    }

    pub fn list_tags(&self, name: &str) -> Result<HashMap<String, String>, SqsError> {
        let st = self.state.lock();
        let q = st.queues.get(name).ok_or_else(SqsError::no_queue)?;
        Ok(q.tags.clone())
    }

    /// Queues whose RedrivePolicy targets `name`.
    pub fn dead_letter_sources(&self, name: &str) -> Result<Vec<String>, SqsError> {
        let st = self.state.lock();
        if !st.queues.contains_key(name) {
            return Err(SqsError::no_queue());
        }
        let arn = self.arn(name);
        let mut v: Vec<String> = st
            .queues
            .values()
            .filter(|q| {
                q.attrs
                    .redrive_policy
                    .as_ref()
                    .is_some_and(|r| r.dead_letter_target_arn == arn)
            })
            .map(|q| q.name.clone())
            .collect();
        v.sort();
        Ok(v)
    }

    /// A long poller's wake-up: the queue's notifier and when its next timer falls due.
    pub fn waiter(&self, name: &str) -> Option<(Arc<tokio::sync::Notify>, Option<Timestamp>)> {
        let st = self.state.lock();
        let q = st.queues.get(name)?;
        Some((q.notify.clone(), q.timers.first().map(|(t, _)| *t)))
    }

    /// The queue's `ReceiveMessageWaitTimeSeconds`.
    pub fn default_wait(&self, name: &str) -> Result<u32, SqsError> {
        let st = self.state.lock();
        let q = st.queues.get(name).ok_or_else(SqsError::no_queue)?;
        Ok(q.attrs.receive_wait_time_seconds)
    }

    // ----- messages -------------------------------------------------------------------------

    /// `SendMessage`: one result per entry (each fails alone); the ticket covers them all.
    pub fn send(
        &self,
        name: &str,
        entries: Vec<SendRequest>,
        sender_id: &str,
    ) -> Result<(Batch<SendResult>, Ticket), SqsError> {
        self.send_entries(name, entries, sender_id, false)
    }

    /// `SendMessageBatch`: as [`send`](Self::send), except that on a FIFO queue an entry
    /// without `MessageGroupId`, or without `MessageDeduplicationId` where the queue has no
    /// content-based deduplication, fails the whole request, as SQS answers it.
    pub fn send_batch(
        &self,
        name: &str,
        entries: Vec<SendRequest>,
        sender_id: &str,
    ) -> Result<(Batch<SendResult>, Ticket), SqsError> {
        self.send_entries(name, entries, sender_id, true)
    }

    fn send_entries(
        &self,
        name: &str,
        entries: Vec<SendRequest>,
        sender_id: &str,
        batch: bool,
    ) -> Result<(Batch<SendResult>, Ticket), SqsError> {
        self.journal.check()?;
        // Digests and the checks that need no queue, before the lock all sends share.
        let prepared: Vec<Prepared> = entries
            .into_iter()
            .map(|e| Prepared::new(e, batch))
            .collect();
        let now = self.clock.now();
        let mut records = Vec::with_capacity(prepared.len() + 1);
        let mut st = self.state.lock();
        let st = &mut *st;
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        if batch && q.attrs.fifo {
            for p in &prepared {
                if p.request.dedup_id.is_none() && !q.attrs.content_based_deduplication {
                    return Err(SqsError::invalid_param(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ));
                }
                if p.request.group_id.is_none() {
                    return Err(SqsError::invalid_param(
                        "The request must contain the parameter MessageGroupId.",
                    ));
                }
            }
        }
        q.tick(now, &mut records);
        // Most messages come from one sender: share its id instead of a copy per message.
        let sender: Arc<str> = match &st.last_sender {
            Some(s) if &**s == sender_id => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(sender_id);
                st.last_sender = Some(s.clone());
                s
            }
        };
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            let r = send_one(
                q,
                p,
                now,
                &sender,
                &mut st.next_seq,
                &mut st.rng,
                &mut records,
            );
            out.push(r);
        }
        if out.iter().any(|r| r.is_ok()) {
            records.push(Record::Queue(QueueRecord::Meta {
                next_seq: st.next_seq,
                next_queue_id: st.next_queue_id,
            }));
            q.notify.notify_waiters();
        }
        let ticket = self.journal.submit(records);
        Ok((out, ticket))
    }

    /// `ReceiveMessage` without waiting: whatever is available now (possibly nothing).
    pub fn receive(
        &self,
        name: &str,
        req: &ReceiveRequest,
    ) -> Result<(Vec<ReceivedMessage>, Ticket), SqsError> {
        let (mut out, ticket) = self.receive_locked(name, req)?;
        // The digests need no lock.
        for m in &mut out {
            m.md5_attributes = (!m.message_attributes.is_empty())
                .then(|| md5::md5_of_attributes(&m.message_attributes));
        }
        Ok((out, ticket))
    }

    /// [`receive`](Self::receive) under the engine's lock, answers without their digests.
    fn receive_locked(
        &self,
        name: &str,
        req: &ReceiveRequest,
    ) -> Result<(Vec<ReceivedMessage>, Ticket), SqsError> {
        self.journal.check()?;
        let max = match req.max_messages {
            None => 1,
            Some(n) if (1..=10).contains(&n) => n as usize,
            Some(n) => {
                return Err(SqsError::bad_value(
                    "MaxNumberOfMessages",
                    n,
                    "Must be between 1 and 10, if provided.",
                ));
            }
        };
        let vis_override = match req.visibility_timeout {
            None => None,
            Some(v) if (0..=43_200).contains(&v) => Some(v as u32),
            Some(v) => {
                return Err(SqsError::bad_value(
                    "VisibilityTimeout",
                    v,
                    "Must be >= 0 and <= 43200, if provided.",
                ));
            }
        };
        let now = self.clock.now();
        // One record per message received, and room for what the queue's tick adds.
        let mut records = Vec::with_capacity(max + 2);
        let mut st = self.state.lock();
        let st = &mut *st;
        let dlq_target = {
            let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
            // An attempt id follows the rules of a deduplication id (SQS's API reference);
            // a standard queue does not read it.
            if q.attrs.fifo
                && let Some(id) = &req.attempt_id
            {
                validate_fifo_id("ReceiveRequestAttemptId", id)?;
            }
            q.tick(now, &mut records);
            q.attrs.redrive_policy.clone()
        };
        // Take the DLQ out of the map while we work so both queues can be borrowed.
        let dlq_name = dlq_target
            .as_ref()
            .and_then(|r| attrs::parse_arn(&r.dead_letter_target_arn).map(str::to_owned))
            .filter(|n| n != name);
        let mut dlq = dlq_name.as_ref().and_then(|n| st.queues.remove(n));
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        let vis = Duration::from_secs(vis_override.unwrap_or(q.attrs.visibility_timeout) as u64);
        let limit = if q.attrs.fifo {
            MAX_INFLIGHT_FIFO
        } else {
            MAX_INFLIGHT_STANDARD
        };
        if q.inflight >= limit {
            if let (Some(d), Some(n)) = (dlq, dlq_name) {
                st.queues.insert(n, d);
            }
            return Err(SqsError::new(
                SqsErrorKind::OverLimit,
                "Too many messages in flight for this queue (the in-flight limit is reached).",
            ));
        }
        if q.attrs.fifo
            && let Some(id) = &req.attempt_id
        {
            q.attempts.retain(|_, (exp, _)| *exp > now);
            // A retry within the deduplication interval answers the same messages with the
            // same receipt handles, as long as none was deleted or had its visibility changed
            // since, and resets their visibility timeout (SQS's ReceiveRequestAttemptId).
            // Otherwise it is a new receive, under the same id.
            if let Some(mut prev) = q.attempts.remove(id) {
                let unchanged = prev.1.iter().all(|(seq, token, visible)| {
                    q.messages.get(seq).is_some_and(|m| {
                        m.state == MsgState::InFlight
                            && m.m.token == *token
                            && m.m.visible == *visible
                    })
                });
                if unchanged {
                    let due = now.add(vis);
                    let mut out = Vec::with_capacity(prev.1.len());
                    for (seq, _, visible) in prev.1.iter_mut() {
                        let Some(m) = q.messages.get_mut(seq) else {
                            continue;
                        };
                        q.timers.remove(&(*visible, *seq));
                        m.m.visible = due;
                        q.timers.insert((due, *seq));
                        *visible = due;
                        records.push(Record::Queue(QueueRecord::Update {
                            queue: q.id,
                            seq: *seq,
                            state: m.m.receive_state(),
                        }));
                        out.push(encode_received(q.id, m, m.body_digest().hex(), req));
                    }
                    q.attempts.insert(id.clone(), prev);
                    if let (Some(d), Some(n)) = (dlq, dlq_name) {
                        st.queues.insert(n, d);
                    }
                    return Ok((out, self.journal.submit(records)));
                }
            }
        }
        let mut chosen: Vec<u64> = Vec::with_capacity(max);
        loop {
            if chosen.len() >= max {
                break;
            }
            let next = if q.attrs.fifo {
                next_fifo_candidate(q, &chosen)
            } else {
                q.available.first().copied()
            };
            let Some(seq) = next else { break };
            // Redrive: a message received maxReceiveCount times goes to the DLQ instead.
            if let (Some(rp), Some(d)) = (&dlq_target, dlq.as_mut())
                && q.messages
                    .get(&seq)
                    .is_some_and(|m| m.m.receive_count >= rp.max_receive_count)
            {
                if let Some(msg) = q.remove(seq) {
                    records.push(Record::Queue(QueueRecord::Delete { queue: q.id, seq }));
                    let md5_body = msg.md5_body;
                    let mut m = msg.m;
                    m.queue_id = d.id;
                    m.seq = st.next_seq;
                    st.next_seq += 1;
                    m.visible = now;
                    m.dlq_source_arn = Some(self.arn(name));
                    records.push(Record::Queue(QueueRecord::Insert(Arc::new(m.clone()))));
                    d.insert_digested(m, now, md5_body);
                    d.notify.notify_waiters();
                }
                continue;
            }
            // Mark in flight.
            let token: u64 = st.rng.random();
            let Some(msg) = q.messages.get_mut(&seq) else {
                break;
            };
            msg.state = MsgState::InFlight;
            msg.m.receive_count += 1;
            msg.m.first_receive.get_or_insert(now);
            msg.m.visible = now.add(vis);
            msg.m.token = token;
            let gid = msg.m.group_id.clone();
            records.push(Record::Queue(QueueRecord::Update {
                queue: q.id,
                seq,
                state: msg.m.receive_state(),
            }));
            let due = msg.m.visible;
            q.timers.insert((due, seq));
            q.inflight += 1;
            if q.attrs.fifo {
                let g = gid.unwrap_or_else(|| Arc::from(""));
                if let Some(gr) = q.groups.get_mut(&g) {
                    gr.inflight += 1;
                }
                q.refresh_group(&g);
            } else {
                q.available.remove(&seq);
            }
            chosen.push(seq);
        }
        if q.attrs.fifo
            && let Some(id) = &req.attempt_id
        {
            let issued = chosen
                .iter()
                .filter_map(|s| q.messages.get(s).map(|m| (*s, m.m.token, m.m.visible)))
                .collect();
            q.attempts
                .insert(id.clone(), (now.add(DEDUP_WINDOW), issued));
        }
        let mut out = Vec::with_capacity(chosen.len());
        for seq in chosen {
            if let Some(msg) = q.messages.get_mut(&seq) {
                // Kept for the next receive once computed.
                let md5 = msg.body_digest();
                msg.md5_body = Some(md5);
                out.push(encode_received(q.id, msg, md5.hex(), req));
            }
        }
        if let (Some(d), Some(n)) = (dlq, dlq_name) {
            st.queues.insert(n, d);
        }
        if records
            .iter()
            .any(|r| matches!(r, Record::Queue(QueueRecord::Insert(_))))
        {
            records.push(Record::Queue(QueueRecord::Meta {
                next_seq: st.next_seq,
                next_queue_id: st.next_queue_id,
            }));
        }
        let ticket = self.journal.submit(records);
        Ok((out, ticket))
    }

    /// `DeleteMessage` / `DeleteMessageBatch`.
    pub fn delete<H: AsRef<str>>(
        &self,
        name: &str,
        handles: &[H],
    ) -> Result<(Batch<()>, Ticket), SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut records = Vec::with_capacity(handles.len());
        let mut out = Vec::with_capacity(handles.len());
        // The handles are read before the lock is taken, and the deleted messages freed after
        // it is released: neither needs the queue.
        let parsed: Vec<Option<(u64, u64, u64)>> =
            handles.iter().map(|h| parse_handle(h.as_ref())).collect();
        let mut gone = Vec::with_capacity(handles.len());
        let ticket = {
            let mut st = self.state.lock();
            let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
            q.tick(now, &mut records);
            for (h, p) in handles.iter().zip(parsed) {
                out.push(delete_one(q, h.as_ref(), p, &mut records, &mut gone));
            }
            if q.attrs.fifo && out.iter().any(|r| r.is_ok()) {
                // Deleting the in-flight messages of a group unlocks it: wake long polls.
                q.notify.notify_waiters();
            }
            self.journal.submit(records)
        };
        drop(gone);
        Ok((out, ticket))
    }

    /// `ChangeMessageVisibility` / `…Batch`: `(handle, timeout seconds)` per entry.
    pub fn change_visibility(
        &self,
        name: &str,
        entries: &[(String, i64)],
    ) -> Result<(Batch<()>, Ticket), SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut out = Vec::with_capacity(entries.len());
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        q.tick(now, &mut records);
        let mut woke = false;
        for (h, t) in entries {
            let r = change_visibility_one(q, h, *t, now, &mut records);
            woke |= matches!(r, Ok(true));
            out.push(r.map(|_| ()));
        }
        if woke {
            q.notify.notify_waiters();
        }
        let ticket = self.journal.submit(records);
        Ok((out, ticket))
    }

    /// `AddPermission`: a statement in the queue's `Policy`, written as SQS writes it.
    pub fn add_permission(
        &self,
        name: &str,
        label: &str,
        accounts: &[String],
        actions: &[String],
    ) -> Result<Ticket, SqsError> {
        if label.is_empty()
            || label.len() > 80
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SqsError::bad_value(
                "Label",
                label,
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            ));
        }
        if accounts.is_empty() {
            return Err(SqsError::missing("AWSAccountIds"));
        }
        if actions.is_empty() {
            return Err(SqsError::missing("Actions"));
        }
        const GRANTABLE: &[&str] = &[
            "*",
            "SendMessage",
            "ReceiveMessage",
            "DeleteMessage",
            "ChangeMessageVisibility",
            "GetQueueAttributes",
            "GetQueueUrl",
            "ListDeadLetterSourceQueues",
            "PurgeQueue",
            "ListQueueTags",
        ];
        if let Some(bad) = actions.iter().find(|a| !GRANTABLE.contains(&a.as_str())) {
            return Err(SqsError::bad_value(
                "ActionName.1",
                format!("SQS:{bad}"),
                "Please refer to the appropriate WSDL for a list of valid actions.",
            ));
        }
        let arn = self.arn(name);
        self.edit_policy(name, |policy| {
            let statements = policy_statements(policy);
            if statements
                .iter()
                .any(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(label))
            {
                return Err(SqsError::bad_value("Label", label, "Already exists."));
            }
            let one_or_many = |v: Vec<String>| -> serde_json::Value {
                if v.len() == 1 {
                    serde_json::Value::String(v.into_iter().next().unwrap_or_default())
                } else {
                    serde_json::Value::from(v)
                }
            };
            let principals: Vec<String> = accounts
                .iter()
                .map(|a| format!("arn:aws:iam::{a}:root"))
                .collect();
            let acts: Vec<String> = actions.iter().map(|a| format!("SQS:{a}")).collect();
            statements.push(serde_json::json!({
                "Sid": label,
                "Effect": "Allow",
                "Principal": {"AWS": one_or_many(principals)},
                "Action": one_or_many(acts),
                "Resource": arn,
            }));
            Ok(())
        })
    }

    /// `RemovePermission`: drop the statement `label` from the queue's `Policy`.
    pub fn remove_permission(&self, name: &str, label: &str) -> Result<Ticket, SqsError> {
        self.edit_policy(name, |policy| {
            let statements = policy_statements(policy);
            let before = statements.len();
            statements.retain(|s| s.get("Sid").and_then(|v| v.as_str()) != Some(label));
            if statements.len() == before {
                return Err(SqsError::bad_value("Label", label, "can't find label."));
            }
            Ok(())
        })
    }

    /// Change the queue's `Policy` document in place; an emptied policy is removed.
    fn edit_policy(
        &self,
        name: &str,
        edit: impl FnOnce(&mut serde_json::Value) -> Result<(), SqsError>,
    ) -> Result<Ticket, SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let arn = self.arn(name);
        let mut st = self.state.lock();
        let q = st.queues.get_mut(name).ok_or_else(SqsError::no_queue)?;
        let mut policy = q
            .attrs
            .passthrough
            .get("Policy")
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .filter(|p| p.is_object())
            .unwrap_or_else(|| {
                serde_json::json!({
                    // The version SQS writes in the policies AddPermission creates.
                    "Version": "2008-10-17",
                    "Id": format!("{arn}/SQSDefaultPolicy"),
                    "Statement": [],
                })
            });
        edit(&mut policy)?;
        if policy_statements(&mut policy).is_empty() {
            q.attrs.passthrough.remove("Policy");
            q.attrs.raw.remove("Policy");
        } else {
            let text = policy.to_string();
            q.attrs.passthrough.insert("Policy".into(), text.clone());
            q.attrs.raw.insert("Policy".into(), text);
        }
        q.modified = now;
        let rec = q.put_record();
        Ok(self.journal.submit(vec![Record::Queue(rec)]))
    }
}

/// The `Statement` list of a policy document, created when missing (a single statement
/// object is turned into a list of one).
fn policy_statements(policy: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    if !policy.is_object() {
        *policy = serde_json::json!({});
    }
    let st = &mut policy["Statement"];
    if !st.is_array() {
        let one = std::mem::take(st);
        *st = serde_json::Value::Array(if one.is_null() { vec![] } else { vec![one] });
    }
    match st {
        serde_json::Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

fn counts_of(q: &Queue) -> QueueCounts {
    let total = q.messages.len() as u64;
    QueueCounts {
        visible: total - q.inflight as u64 - q.delayed as u64,
        not_visible: q.inflight as u64,
        delayed: q.delayed as u64,
    }
}

fn validate_tags(tags: &HashMap<String, String>) -> Result<(), SqsError> {
    if tags.len() > 50 {
        return Err(SqsError::invalid_param(
            "Too many tags added for queue. The maximum is 50.",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(SqsError::invalid_param(format!(
                "Tag key {k:?} is invalid: it must be 1 to 128 characters long."
            )));
        }
        if v.chars().count() > 256 {
            return Err(SqsError::invalid_param(format!(
                "Tag value for key {k:?} is invalid: it must be at most 256 characters long."
            )));
        }
    }
    Ok(())
}

/// The next FIFO message to hand out: continue the group already being served in this
/// receive if its next message is available, else the oldest ready group.
fn next_fifo_candidate(q: &Queue, chosen: &[u64]) -> Option<u64> {
    if let Some(&last) = chosen.last()
        && let Some(gid) = q.messages.get(&last).and_then(|m| m.m.group_id.clone())
        && let Some(g) = q.groups.get(&gid)
    {
        // Messages of this group after the ones already taken, in order.
        if let Some(pos) = g.msgs.iter().position(|&s| s == last)
            && let Some(&next) = g.msgs.get(pos + 1)
            && q.messages
                .get(&next)
                .is_some_and(|m| m.state == MsgState::Available)
        {
            return Some(next);
        }
    }
    q.ready_groups
        .first()
        .and_then(|(_, gid)| q.groups.get(gid))
        .and_then(|g| g.msgs.front().copied())
}

/// Characters SQS accepts in a message body and attribute values.
pub fn valid_sqs_chars(s: &str) -> bool {
    // Printable ASCII with tabs and line breaks (most bodies) byte by byte, which the
    // compiler vectorises; anything else character by character.
    if s.bytes()
        .all(|b| (0x20..0x80).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return true;
    }
    s.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

fn validate_message_attributes(
    attrs: &BTreeMap<String, MessageAttributeValue>,
    system: bool,
) -> Result<usize, SqsError> {
    if !system && attrs.len() > 10 {
        return Err(SqsError::invalid_param(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attrs.len()
        )));
    }
    let mut size = 0usize;
    for (name, v) in attrs {
        if system {
            if name != "AWSTraceHeader" {
                return Err(SqsError::invalid_param(format!(
                    "Message system attribute name '{name}' is invalid."
                )));
            }
        } else {
            let lower = name.to_ascii_lowercase();
            // `_`, `-`, `.` and letters and digits: of any script after the first character
            // (SQS takes `attr.1øßä`), ASCII ones first (it refuses `öther_encodings`).
            let ok_chars = name.chars().enumerate().all(|(i, c)| {
                (if i == 0 {
                    c.is_ascii_alphanumeric()
                } else {
                    c.is_alphanumeric()
                }) || c == '_'
                    || c == '-'
                    || c == '.'
            });
            if name.is_empty()
                || name.len() > 256
                || !ok_chars
                || name.starts_with('.')
                || name.ends_with('.')
                || name.contains("..")
                || lower.starts_with("aws.")
                || lower.starts_with("amazon.")
            {
                return Err(SqsError::invalid_param(format!(
                    "The message attribute name '{name}' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters."
                )));
            }
        }
        let base = v.data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") || v.data_type.len() > 256 {
            return Err(SqsError::invalid_param(format!(
                "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        match base {
            "Binary" => {
                if v.binary_value.as_ref().is_some_and(|b| b.is_empty()) {
                    return Err(SqsError::invalid_param(format!(
                        "Message (user) attribute '{name}' must contain a non-empty value of type 'Binary'."
                    )));
                }
                if v.binary_value.is_none() {
                    return Err(SqsError::invalid_param(format!(
                        "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                    )));
                }
            }
            _ => {
                let Some(s) = &v.string_value else {
                    return Err(SqsError::invalid_param(format!(
                        "The message attribute '{name}' with type '{base}' must use field 'String'."
                    )));
                };
                if s.is_empty() {
                    return Err(SqsError::invalid_param(format!(
                        "Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
                    )));
                }
                if !valid_sqs_chars(s) {
                    // SQS answers InvalidParameterValue here (InvalidMessageContents is the body's).
                    return Err(SqsError::invalid_param(format!(
                        "Message attribute '{name}' contains characters outside the allowed set."
                    )));
                }
                if base == "Number" && !valid_sqs_number(s) {
                    return Err(SqsError::invalid_param(format!(
                        "Could not cast message attribute '{name}' value to number."
                    )));
                }
            }
        }
        size += name.len()
            + v.data_type.len()
            + v.string_value.as_ref().map_or(0, |s| s.len())
            + v.binary_value.as_ref().map_or(0, |b| b.len());
    }
    Ok(size)
}

/// SQS numbers: up to 38 significant digits, between -10^128 and 10^126.
fn valid_sqs_number(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()),
        None => (t, Some(0)),
    };
    let Some(exp) = exp else { return false };
    let mut parts = mant.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    if int.is_empty() && frac.is_empty() {
        return false;
    }
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let digits: String = format!("{int}{frac}");
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return true;
    }
    let sig = trimmed.trim_end_matches('0').len();
    let magnitude = int.trim_start_matches('0').len() as i32 + exp;
    sig <= 38 && magnitude <= 127
}

#[allow(clippy::too_many_arguments)]
/// A message to send with what sending it computes without the engine's lock.
struct Prepared {
    request: SendRequest,
    digests: Digests,
    /// An entry of a `SendMessageBatch` (SQS words some refusals differently there).
    batch: bool,
}

struct Digests {
    md5_body: md5::RawDigest,
    md5_attributes: Option<String>,
    md5_system_attributes: Option<String>,
    /// Whether the body has only the characters SQS allows.
    valid_chars: bool,
}

impl Prepared {
    fn new(e: SendRequest, batch: bool) -> Prepared {
        let digests = Digests {
            md5_body: md5::RawDigest::of(e.body.as_bytes()),
            md5_attributes: (!e.attributes.is_empty())
                .then(|| md5::md5_of_attributes(&e.attributes)),
            md5_system_attributes: (!e.system_attributes.is_empty())
                .then(|| md5::md5_of_attributes(&e.system_attributes)),
            valid_chars: valid_sqs_chars(&e.body),
        };
        Prepared {
            request: e,
            digests,
            batch,
        }
    }
}

fn send_one(
    q: &mut Queue,
    Prepared {
        request: e,
        digests: p,
        batch,
    }: Prepared,
    now: Timestamp,
    sender_id: &Arc<str>,
    next_seq: &mut u64,
    rng: &mut rand::rngs::StdRng,
    records: &mut Vec<Record>,
) -> Result<SendResult, SqsError> {
    if e.body.is_empty() {
        return Err(SqsError::missing("MessageBody"));
    }
    if !p.valid_chars {
        return Err(SqsError::new(
            SqsErrorKind::InvalidMessageContents,
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
        ));
    }
    let attr_size = validate_message_attributes(&e.attributes, false)?;
    validate_message_attributes(&e.system_attributes, true)?;
    let size = e.body.len() + attr_size;
    if size > q.attrs.maximum_message_size as usize {
        // SQS words it differently for a batch's entry (AWS-recorded answers).
        let verb = if batch {
            "cannot be validated"
        } else {
            "are invalid"
        };
        return Err(SqsError::invalid_param(format!(
            "One or more parameters {verb}. Reason: Message must be shorter than {} bytes.",
            q.attrs.maximum_message_size
        )));
    }
    let delay = match e.delay_seconds {
        // FIFO queues delay on the queue's level only; an explicit 0 is accepted (as in SQS,
        // and SDKs that always send the member send 0).
        None | Some(0) if q.attrs.fifo => q.attrs.delay_seconds,
        None => q.attrs.delay_seconds,
        Some(d) if q.attrs.fifo => {
            return Err(SqsError::bad_value(
                "DelaySeconds",
                d,
                "The request include parameter that is not valid for this queue type.",
            ));
        }
        Some(d) if (0..=900).contains(&d) => d as u32,
        Some(d) => {
            return Err(SqsError::bad_value(
                "DelaySeconds",
                d,
                "DelaySeconds must be >= 0 and <= 900.",
            ));
        }
    };
    let mut dedup_key = None;
    if q.attrs.fifo {
        let Some(gid) = e.group_id.as_deref() else {
            return Err(SqsError::missing("MessageGroupId"));
        };
        validate_fifo_id("MessageGroupId", gid)?;
        let dedup = match (&e.dedup_id, q.attrs.content_based_deduplication) {
            (Some(d), _) => {
                validate_fifo_id("MessageDeduplicationId", d)?;
                d.clone()
            }
            (None, true) => sha256_hex(e.body.as_bytes()),
            (None, false) => {
                return Err(SqsError::invalid_param(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        };
        let key = if q.dedup_scope(now) == "messageGroup" {
            format!("{gid}\u{0}{dedup}")
        } else {
            dedup.clone()
        };
        if let Some((exp, mid, seq)) = q.dedup.get(&key)
            && *exp > now
        {
            // A duplicate within the window: accepted, not enqueued, same identity.
            return Ok(SendResult {
                message_id: mid.clone(),
                md5_body: p.md5_body.hex().to_string(),
                md5_attributes: p.md5_attributes,
                md5_system_attributes: p.md5_system_attributes,
                sequence_number: Some(format!("{seq:020}")),
            });
        }
        dedup_key = Some((key, dedup));
    } else if let Some(d) = &e.dedup_id {
        let _ = d;
        return Err(SqsError::bad_value(
            "MessageDeduplicationId",
            d,
            "The request includes a parameter that is not valid for this queue type.",
        ));
    } else if let Some(g) = &e.group_id {
        // Standard queues accept MessageGroupId (fair queues); it is kept and reported.
        validate_fifo_id("MessageGroupId", g)?;
    }
    let seq = *next_seq;
    *next_seq += 1;
    let message_id = MessageId::v4(rng.random());
    let id_text = String::from(&*message_id.text());
    let trace_header = e
        .system_attributes
        .get("AWSTraceHeader")
        .and_then(|v| v.string_value.clone())
        .or(e.http_trace_header);
    let m = StoredMessage {
        queue_id: q.id,
        seq,
        message_id,
        body: e.body,
        attributes: e.attributes,
        trace_header,
        sent: now,
        sender_id: sender_id.clone(),
        group_id: e.group_id.map(Arc::from),
        dedup_id: dedup_key.as_ref().map(|(_, d)| d.clone()),
        dlq_source_arn: None,
        receive_count: 0,
        first_receive: None,
        visible: now.add(Duration::from_secs(delay as u64)),
        token: 0,
    };
    if let Some((key, _)) = dedup_key {
        let exp = now.add(DEDUP_WINDOW);
        q.dedup.insert(key.clone(), (exp, id_text.clone(), seq));
        q.dedup_order.push_back((exp, key.clone()));
        records.push(Record::Queue(QueueRecord::PutDedup {
            queue: q.id,
            key,
            expires: exp,
            message_id: id_text.clone(),
            seq,
        }));
    }
    let fifo = q.attrs.fifo;
    records.push(Record::Queue(QueueRecord::Insert(Arc::new(m.clone()))));
    q.insert_digested(m, now, Some(p.md5_body));
    Ok(SendResult {
        message_id: id_text,
        md5_body: p.md5_body.hex().to_string(),
        md5_attributes: p.md5_attributes,
        md5_system_attributes: p.md5_system_attributes,
        sequence_number: fifo.then(|| format!("{seq:020}")),
    })
}

fn validate_fifo_id(param: &str, v: &str) -> Result<(), SqsError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(SqsError::bad_value(
            param,
            v,
            &format!(
                "{param} can only include alphanumeric and punctuation characters. 1 to 128 in length."
            ),
        ))
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

fn uuid_v4(rng: &mut rand::rngs::StdRng) -> String {
    uuid_v4_text(rng.random())
}

/// A version-4 UUID in canonical lower-case form from 16 random bytes (request ids in the
/// gateway, move-task handles here), written as a message id is ([`MessageId::text`]).
pub fn uuid_v4_text(b: [u8; 16]) -> String {
    String::from(&*MessageId::v4(b).text())
}

/// A receipt handle: `base64url(queue_id:seq:token)` — opaque to clients, checkable here.
fn receipt_handle(queue_id: u64, seq: u64, token: u64) -> String {
    // Numbers through itoa into a buffer on the stack, not `format!` (one handle per message
    // received; the encoded handle is the only allocation).
    let mut raw = [0u8; 62];
    let mut len = 0;
    let mut digits = itoa::Buffer::new();
    for (i, n) in [queue_id, seq, token].into_iter().enumerate() {
        if i > 0 {
            raw[len] = b':';
            len += 1;
        }
        let d = digits.format(n).as_bytes();
        raw[len..len + d.len()].copy_from_slice(d);
        len += d.len();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..len])
}

fn parse_handle(h: &str) -> Option<(u64, u64, u64)> {
    // Decoded on the stack: a handle kedge issued is at most 62 bytes once decoded (three
    // numbers and two colons); anything longer is not one.
    let mut raw = [0u8; 64];
    let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(h, &mut raw)
        .ok()?;
    let s = std::str::from_utf8(&raw[..len]).ok()?;
    let mut it = s.split(':');
    let q = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    let t = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((q, seq, t))
}

fn invalid_handle(h: &str) -> SqsError {
    SqsError::new(
        SqsErrorKind::ReceiptHandleIsInvalid,
        format!("The input receipt handle \"{h}\" is not a valid receipt handle."),
    )
}

/// Delete the message of handle `h` (`parsed` is [`parse_handle`]'s reading of it); the
/// message removed goes to `gone`, to be freed once the lock is released.
// Boxed as the queue keeps them: moving a message out of its box would free the box here.
#[allow(clippy::vec_box)]
fn delete_one(
    q: &mut Queue,
    h: &str,
    parsed: Option<(u64, u64, u64)>,
    records: &mut Vec<Record>,
    gone: &mut Vec<Box<Msg>>,
) -> Result<(), SqsError> {
    let (qid, seq, token) = parsed.ok_or_else(|| invalid_handle(h))?;
    if qid != q.id {
        return Err(invalid_handle(h));
    }
    let Some(msg) = q.messages.get(&seq) else {
        // Already deleted (or expired): deleting again succeeds, as in SQS.
        return Ok(());
    };
    let current = msg.m.token == token && msg.m.receive_count > 0;
    if q.attrs.fifo && (!current || msg.state != MsgState::InFlight) {
        // FIFO receipt handles live only as long as the receive's visibility timeout: once the
        // message is visible again (or received again) the handle has expired, as SQS says.
        return Err(SqsError::bad_value(
            "ReceiptHandle",
            h,
            "The receipt handle has expired.",
        ));
    }
    // Standard queues: a handle from an earlier delivery of a message that still exists
    // deletes it, as SQS does ("the request succeeds"); only the queue and message must match.
    gone.extend(q.remove(seq));
    records.push(Record::Queue(QueueRecord::Delete { queue: q.id, seq }));
    Ok(())
}

/// Returns whether the message became available now (so waiters should wake).
fn change_visibility_one(
    q: &mut Queue,
    h: &str,
    timeout: i64,
    now: Timestamp,
    records: &mut Vec<Record>,
) -> Result<bool, SqsError> {
    if !(0..=43_200).contains(&timeout) {
        return Err(SqsError::bad_value(
            "VisibilityTimeout",
            timeout,
            "VisibilityTimeout must be an integer between 0 and 43200.",
        ));
    }
    let (qid, seq, token) = parse_handle(h).ok_or_else(|| invalid_handle(h))?;
    if qid != q.id {
        return Err(invalid_handle(h));
    }
    let fifo = q.attrs.fifo;
    let Some(msg) = q.messages.get_mut(&seq) else {
        return Err(SqsError::bad_value(
            "ReceiptHandle",
            h,
            "Message does not exist or is not available for visibility timeout change.",
        ));
    };
    if !fifo && msg.state != MsgState::InFlight {
        // Standard queues: the message is visible again (its visibility timeout passed, or it
        // was received and let go): the change succeeds and changes nothing, as SQS answers.
        return Ok(false);
    }
    // Standard queues: a handle from an earlier delivery reaches the message in flight, as
    // DeleteMessage's does (SQS accepts it). FIFO handles live as long as their delivery.
    if fifo && (msg.m.token != token || msg.state != MsgState::InFlight) {
        if msg.state != MsgState::InFlight && msg.m.token == token {
            return Err(SqsError::new(
                SqsErrorKind::MessageNotInflight,
                "The message referred to isn't in flight.",
            ));
        }
        return Err(SqsError::bad_value(
            "ReceiptHandle",
            h,
            "Message does not exist or is not available for visibility timeout change.",
        ));
    }
    let old = msg.m.visible;
    let new = now.add(Duration::from_secs(timeout as u64));
    msg.m.visible = new;
    records.push(Record::Queue(QueueRecord::Update {
        queue: q.id,
        seq,
        state: msg.m.receive_state(),
    }));
    q.timers.remove(&(old, seq));
    if timeout == 0 {
        // Visible again at once.
        let gid = msg.m.group_id.clone();
        msg.state = MsgState::Available;
        q.inflight -= 1;
        if fifo {
            let g = gid.unwrap_or_else(|| Arc::from(""));
            if let Some(gr) = q.groups.get_mut(&g) {
                gr.inflight -= 1;
            }
            q.refresh_group(&g);
        } else {
            q.available.insert(seq);
        }
        Ok(true)
    } else {
        q.timers.insert((new, seq));
        Ok(false)
    }
}

/// Whether a message attribute name is selected by the request's `MessageAttributeNames`.
fn attribute_selected(name: &str, wanted: &[String]) -> bool {
    wanted.iter().any(|w| {
        // `prefix.*` selects the names starting with `prefix` (AWS-recorded: `Hel.*` selects
        // `Hello` and `Help.Me`); `*` and `.*` select all.
        w == "All"
            || w == ".*"
            || w == "*"
            || w == name
            || w.strip_suffix(".*").is_some_and(|p| name.starts_with(p))
    })
}

fn encode_received(
    queue_id: u64,
    msg: &Msg,
    md5_body: md5::HexDigest,
    req: &ReceiveRequest,
) -> ReceivedMessage {
    let m = &msg.m;
    let all = req.attribute_names.iter().any(|a| a == "All");
    let want = |n: &str| all || req.attribute_names.iter().any(|a| a == n);
    let mut attributes = Vec::new();
    if want("SenderId") {
        attributes.push(("SenderId", m.sender_id.to_string()));
    }
    if want("SentTimestamp") {
        attributes.push(("SentTimestamp", m.sent.as_millis().to_string()));
    }
    if want("ApproximateReceiveCount") {
        attributes.push(("ApproximateReceiveCount", m.receive_count.to_string()));
    }
    if want("ApproximateFirstReceiveTimestamp") {
        attributes.push((
            "ApproximateFirstReceiveTimestamp",
            m.first_receive.unwrap_or(m.sent).as_millis().to_string(),
        ));
    }
    if let Some(g) = &m.group_id
        && want("MessageGroupId")
    {
        attributes.push(("MessageGroupId", g.to_string()));
    }
    if let Some(d) = &m.dedup_id
        && want("MessageDeduplicationId")
    {
        attributes.push(("MessageDeduplicationId", d.clone()));
    }
    if m.dedup_id.is_some() && want("SequenceNumber") {
        attributes.push(("SequenceNumber", format!("{:020}", m.seq)));
    }
    if let Some(t) = &m.trace_header
        && want("AWSTraceHeader")
    {
        attributes.push(("AWSTraceHeader", t.clone()));
    }
    if let Some(s) = &m.dlq_source_arn
        && want("DeadLetterQueueSourceArn")
    {
        attributes.push(("DeadLetterQueueSourceArn", s.clone()));
    }
    // (Collecting even an empty iterator into a map sorts a buffer first: skipped when the
    // message has no attributes, as most have none.)
    let message_attributes: BTreeMap<String, MessageAttributeValue> = if m.attributes.is_empty() {
        BTreeMap::new()
    } else {
        m.attributes
            .iter()
            .filter(|(k, _)| attribute_selected(k, &req.message_attribute_names))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    ReceivedMessage {
        message_id: m.message_id,
        receipt_handle: receipt_handle(queue_id, m.seq, m.token),
        body: m.body.clone(),
        md5_body,
        attributes,
        message_attributes,
        md5_attributes: None,
    }
}

#[cfg(test)]
mod tests;

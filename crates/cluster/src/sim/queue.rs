//! The modelled SQS queue: visible, in flight, returning (after a visibility timeout or a
//! give-back), FIFO message groups (one in-flight batch per group), and a DLQ after
//! `maxReceiveCount` receives.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A message as the simulator tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Msg {
    /// When the producer's send was acknowledged (virtual ms).
    pub sent: u64,
    /// Receives so far (`ApproximateReceiveCount`).
    pub receives: u16,
    /// FIFO message group (0 on a standard queue).
    pub group: u32,
}

/// The queue's state.
#[derive(Debug)]
pub struct Queue {
    fifo: bool,
    max_receive_count: u16,
    /// Standard queue: oldest first.
    visible: VecDeque<Msg>,
    /// FIFO: each group's visible messages in order, its in-flight count, and the groups that
    /// can deliver (visible messages, nothing in flight), round robin.
    groups: Vec<VecDeque<Msg>>,
    group_inflight: Vec<u32>,
    ready: VecDeque<u32>,
    in_ready: Vec<bool>,
    /// Messages that become visible again at a time (visibility timeout of a killed consumer).
    returning: BinaryHeap<Reverse<(u64, Msg)>>,
    pub visible_count: u64,
    pub in_flight: u64,
    pub dead_lettered: u64,
    pub redelivered: u64,
}

impl Queue {
    pub fn new(fifo: bool, groups: u32, max_receive_count: u32) -> Queue {
        let g = if fifo { groups.max(1) as usize } else { 0 };
        Queue {
            fifo,
            max_receive_count: max_receive_count.min(u32::from(u16::MAX)) as u16,
            visible: VecDeque::new(),
            groups: vec![VecDeque::new(); g],
            group_inflight: vec![0; g],
            ready: VecDeque::new(),
            in_ready: vec![false; g],
            returning: BinaryHeap::new(),
            visible_count: 0,
            in_flight: 0,
            dead_lettered: 0,
            redelivered: 0,
        }
    }

    /// Messages waiting to be received (visible now or returning later).
    pub fn waiting(&self) -> u64 {
        self.visible_count + self.returning.len() as u64
    }

    /// `ApproximateNumberOfMessagesDelayed`-like: messages not visible and not held.
    pub fn returning(&self) -> u64 {
        self.returning.len() as u64
    }

    pub fn groups(&self) -> u32 {
        self.groups.len() as u32
    }

    /// A message arrives (or comes back at the head of its line when `front`).
    pub fn push(&mut self, m: Msg, front: bool) {
        self.visible_count += 1;
        if !self.fifo {
            if front {
                self.visible.push_front(m);
            } else {
                self.visible.push_back(m);
            }
            return;
        }
        let g = m.group as usize % self.groups.len();
        if front {
            self.groups[g].push_front(m);
        } else {
            self.groups[g].push_back(m);
        }
        self.mark_ready(g);
    }

    fn mark_ready(&mut self, g: usize) {
        if !self.in_ready[g] && self.group_inflight[g] == 0 && !self.groups[g].is_empty() {
            self.in_ready[g] = true;
            self.ready.push_back(g as u32);
        }
    }

    /// Can a receive get anything now?
    pub fn deliverable(&self) -> bool {
        if self.fifo {
            !self.ready.is_empty()
        } else {
            !self.visible.is_empty()
        }
    }

    /// A receive of up to `max` messages (one FIFO group at a time, as SQS hands out a group's
    /// messages in order). Messages past `maxReceiveCount` go to the DLQ instead.
    pub fn receive(&mut self, max: usize, out: &mut Vec<Msg>) {
        out.clear();
        if self.fifo {
            while let Some(g) = self.ready.pop_front() {
                let g = g as usize;
                self.in_ready[g] = false;
                while out.len() < max {
                    let Some(mut m) = self.groups[g].pop_front() else {
                        break;
                    };
                    self.visible_count -= 1;
                    if m.receives >= self.max_receive_count {
                        self.dead_lettered += 1;
                        continue;
                    }
                    m.receives += 1;
                    if m.receives > 1 {
                        self.redelivered += 1;
                    }
                    out.push(m);
                }
                if !out.is_empty() {
                    self.group_inflight[g] += out.len() as u32;
                    self.in_flight += out.len() as u64;
                    return;
                }
                // Every message of the group went to the DLQ; try the next group.
            }
            return;
        }
        while out.len() < max {
            let Some(mut m) = self.visible.pop_front() else {
                break;
            };
            self.visible_count -= 1;
            if m.receives >= self.max_receive_count {
                self.dead_lettered += 1;
                continue;
            }
            m.receives += 1;
            if m.receives > 1 {
                self.redelivered += 1;
            }
            out.push(m);
        }
        self.in_flight += out.len() as u64;
    }

    /// A received message is deleted (done).
    pub fn delete(&mut self, m: &Msg) {
        self.release(m);
    }

    fn release(&mut self, m: &Msg) {
        self.in_flight -= 1;
        if self.fifo {
            let g = m.group as usize % self.groups.len();
            self.group_inflight[g] -= 1;
            self.mark_ready(g);
        }
    }

    /// Given back by its consumer (`ChangeMessageVisibility` to 0 after the grace period):
    /// visible again at once, first in line.
    pub fn give_back(&mut self, m: Msg) {
        self.release(&m);
        self.push(m, true);
    }

    /// Its consumer died: visible again at `at` (the visibility timeout).
    pub fn abandon(&mut self, m: Msg, at: u64) {
        self.release(&m);
        self.returning.push(Reverse((at, m)));
    }

    /// When the next abandoned message becomes visible.
    pub fn next_return(&self) -> Option<u64> {
        self.returning.peek().map(|Reverse((t, _))| *t)
    }

    /// Make every message due by `now` visible again.
    pub fn release_due(&mut self, now: u64) {
        while let Some(Reverse((t, _))) = self.returning.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, m))) = self.returning.pop() else {
                break;
            };
            self.push(m, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sent: u64, group: u32) -> Msg {
        Msg {
            sent,
            receives: 0,
            group,
        }
    }

    #[test]
    fn fifo_groups_hold_one_batch_in_flight_each() {
        let mut q = Queue::new(true, 2, 5);
        for i in 0..4 {
            q.push(m(i, (i % 2) as u32), false);
        }
        let mut out = Vec::new();
        q.receive(10, &mut out);
        assert_eq!(out.iter().map(|m| m.sent).collect::<Vec<_>>(), [0, 2]);
        let mut second = Vec::new();
        q.receive(1, &mut second);
        assert_eq!(second[0].sent, 1);
        let mut none = Vec::new();
        q.receive(10, &mut none);
        assert!(none.is_empty(), "both groups have messages in flight");
        q.delete(&out[0]);
        q.delete(&out[1]);
        assert!(
            !q.deliverable(),
            "group 1's next message waits for its first"
        );
        q.delete(&second[0]);
        assert!(q.deliverable());
        assert_eq!((q.visible_count, q.in_flight), (1, 0));
    }

    #[test]
    fn redelivery_counts_and_the_dlq_takes_what_was_received_too_often() {
        let mut q = Queue::new(false, 0, 2);
        q.push(m(0, 0), false);
        let mut out = Vec::new();
        q.receive(1, &mut out);
        q.abandon(out[0], 30_000);
        assert!(!q.deliverable());
        q.release_due(29_999);
        assert!(!q.deliverable());
        q.release_due(30_000);
        q.receive(1, &mut out);
        assert_eq!(out[0].receives, 2);
        assert_eq!(q.redelivered, 1);
        q.give_back(out[0]);
        q.receive(1, &mut out);
        assert!(out.is_empty());
        assert_eq!(q.dead_lettered, 1);
        assert_eq!((q.visible_count, q.in_flight), (0, 0));
    }
}

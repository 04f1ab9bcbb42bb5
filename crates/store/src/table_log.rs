//! The item log: how the table engine's items are kept on disk.
//!
//! Items used to be rows of a B-tree keyed by table and key (`ddb_items`). A commit then
//! rewrote one 4 KiB page for every item it changed whenever the keys were spread out (a
//! ~200-byte item for a page of WAL and, at the next checkpoint, a page of the database):
//! PutItem with random keys ran at half the rate of PutItem with clustered keys, its commits
//! almost all page writes. Here every change is appended to `ddb_log` in journal order, so a
//! commit writes the few pages at the log's end whatever its keys; recovery replays the log,
//! the last entry of each key winning.
//!
//! Entries that no longer count (an item written again or deleted since, a table dropped) are
//! collected from the front of the log: once they outweigh the entries that do count and
//! [`MIN_DEAD_BYTES`], each commit also reads the oldest rows, appends again those still the
//! latest of their key, and deletes them ([`ItemLog::collect`]). The log then stays within
//! about twice what it holds (or that floor), and an item is written about twice over its
//! life in the log instead of a page per change. The journal thread keeps, for every key,
//! where its latest entry is ([`ItemLog`]: its key and position, some 90 bytes an item by
//! their layout, beside the engine's own copy).
//!
//! # On-disk format
//! `ddb_log(id, tbl, pk, item)`: `id` orders the changes; `tbl` the table (or backup, or
//! point-in-time history) the row belongs to; `pk` the key's stable text form
//! ([`crate::table::engine::key_string`]); `item` the item in DynamoDB's JSON wire form, or
//! NULL where the item was deleted. A row with a NULL `pk` records that `tbl` was dropped:
//! every earlier row of `tbl` is void.
//!
//! Databases written before the log kept items in `ddb_items(tbl, pk, item)`; opening one
//! moves its rows into the log once ([`ItemLog::load`]).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{CachedStatement, Connection, Transaction};

use crate::queue::persist::prepared;

/// Dead entries are collected only once they exceed this many bytes (and the live ones), so
/// a small table written over and over does not spend its commits collecting.
pub const MIN_DEAD_BYTES: u64 = 16 << 20;

/// Rows a commit collects at least, once collecting (and four per row it appended): enough
/// for the front to move faster than the end.
const MIN_COLLECT_ROWS: usize = 256;

/// A row's bytes beyond its text: the row id, the record header, the cell pointer.
const ROW_OVERHEAD: usize = 16;

fn row_bytes(tbl: &str, pk: Option<&str>, item: Option<&str>) -> u64 {
    (tbl.len() + pk.map_or(0, str::len) + item.map_or(0, str::len) + ROW_OVERHEAD) as u64
}

/// A `ddb_log` row's table, key and item (the last two NULL where the row says so).
fn texts<'r>(
    r: &'r rusqlite::Row<'_>,
) -> rusqlite::Result<(&'r str, Option<&'r str>, Option<&'r str>)> {
    Ok((
        r.get_ref(1)?.as_str()?,
        r.get_ref(2)?.as_str_or_null()?,
        r.get_ref(3)?.as_str_or_null()?,
    ))
}

/// A row that cannot be read back, named so that whoever opens the database can find it.
fn damaged(id: i64, e: rusqlite::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("ddb_log row {id} is damaged: {e}").into(),
    )
}

/// Where a key's latest entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    id: i64,
    bytes: u64,
    deleted: bool,
}

/// The journal thread's index of the log: every key's latest entry, and what the log holds.
/// `ItemLog::default()` is the index of an empty log; a server loads it ([`ItemLog::load`]).
#[derive(Debug)]
pub struct ItemLog {
    latest: HashMap<Arc<str>, HashMap<Box<str>, Latest>>,
    /// Bytes of the rows that must be kept: every key's latest entry (a deletion too, while an
    /// older entry of its key may remain) and the drop records.
    live: u64,
    /// Bytes of every row in the log.
    total: u64,
    next_id: i64,
    /// The lowest id that may still be in the log: collection resumes here.
    front: i64,
    /// Rows appended since the last collection.
    appended: usize,
}

impl Default for ItemLog {
    fn default() -> Self {
        // SQLite's row ids start at 1.
        ItemLog {
            latest: HashMap::new(),
            live: 0,
            total: 0,
            next_id: 1,
            front: 1,
            appended: 0,
        }
    }
}

/// The statements a commit's item changes use, prepared once per commit.
#[derive(Default)]
pub struct Statements<'c> {
    insert: Option<CachedStatement<'c>>,
}

impl ItemLog {
    /// Read the log's index from `conn`, first moving a database's `ddb_items` rows (written
    /// before the log) into it.
    pub fn load(conn: &Connection) -> rusqlite::Result<ItemLog> {
        let legacy: i64 = conn.query_row("SELECT count(*) FROM ddb_items", [], |r| r.get(0))?;
        if legacy > 0 {
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO ddb_log (tbl, pk, item) SELECT tbl, pk, item FROM ddb_items ORDER BY tbl, pk",
                [],
            )?;
            tx.execute("DELETE FROM ddb_items", [])?;
            tx.commit()?;
        }
        let mut log = ItemLog::default();
        let mut first = None;
        let mut st = conn.prepare("SELECT id, tbl, pk, item FROM ddb_log ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let (tbl, pk, item) = texts(r).map_err(|e| damaged(id, e))?;
            first.get_or_insert(id);
            log.next_id = id + 1;
            log.logged(tbl, pk, item.is_some(), id, row_bytes(tbl, pk, item));
        }
        log.front = first.unwrap_or(log.next_id);
        Ok(log)
    }

    /// Call `f` with the table and JSON of every live item, in log order.
    pub fn for_each_live(
        &self,
        conn: &Connection,
        mut f: impl FnMut(&str, &str) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut st = conn
            .prepare("SELECT id, tbl, pk, item FROM ddb_log WHERE item IS NOT NULL ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let (tbl, Some(pk), Some(item)) = texts(r).map_err(|e| damaged(id, e))? else {
                continue;
            };
            if self.latest_of(tbl, pk).is_some_and(|l| l.id == id) {
                f(tbl, item).map_err(|e| damaged(id, e))?;
            }
        }
        Ok(())
    }

    /// Log that `item` (JSON) is now the item at `pk` in `tbl`, or that there is none (`None`).
    pub fn write<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        st: &mut Statements<'c>,
        tbl: &str,
        pk: &str,
        item: Option<&str>,
    ) -> rusqlite::Result<()> {
        let id = self.append(tx, st, tbl, Some(pk), item)?;
        self.logged(
            tbl,
            Some(pk),
            item.is_some(),
            id,
            row_bytes(tbl, Some(pk), item),
        );
        Ok(())
    }

    /// Log that `tbl` was dropped with all its items.
    pub fn drop_table<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        st: &mut Statements<'c>,
        tbl: &str,
    ) -> rusqlite::Result<()> {
        let id = self.append(tx, st, tbl, None, None)?;
        self.logged(tbl, None, false, id, row_bytes(tbl, None, None));
        Ok(())
    }

    fn append<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        st: &mut Statements<'c>,
        tbl: &str,
        pk: Option<&str>,
        item: Option<&str>,
    ) -> rusqlite::Result<i64> {
        let id = self.next_id;
        prepared(
            &mut st.insert,
            tx,
            "INSERT INTO ddb_log (id, tbl, pk, item) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute((id, tbl, pk, item))?;
        self.next_id += 1;
        self.appended += 1;
        Ok(id)
    }

    /// Account for row `id` (of `bytes`), just appended or read at recovery.
    fn logged(&mut self, tbl: &str, pk: Option<&str>, present: bool, id: i64, bytes: u64) {
        self.total += bytes;
        self.live += bytes;
        let Some(pk) = pk else {
            // A drop: every entry of the table before it is dead; the drop itself stays live
            // until it reaches the front (entries of the table may be older).
            if let Some(keys) = self.latest.remove(tbl) {
                let gone: u64 = keys.values().map(|l| l.bytes).sum();
                self.live = self.live.saturating_sub(gone);
            }
            return;
        };
        let at = Latest {
            id,
            bytes,
            deleted: !present,
        };
        let keys = match self.latest.get_mut(tbl) {
            Some(keys) => keys,
            None => self.latest.entry(Arc::from(tbl)).or_default(),
        };
        match keys.get_mut(pk) {
            Some(old) => {
                self.live = self.live.saturating_sub(old.bytes);
                *old = at;
            }
            None => {
                keys.insert(pk.into(), at);
            }
        }
    }

    fn latest_of(&self, tbl: &str, pk: &str) -> Option<&Latest> {
        self.latest.get(tbl)?.get(pk)
    }

    /// Bytes of the rows no longer needed.
    pub fn dead_bytes(&self) -> u64 {
        self.total.saturating_sub(self.live)
    }

    /// Collect the front of the log, in `tx`, when dead rows outweigh live ones and
    /// [`MIN_DEAD_BYTES`]; at most a few times the rows appended since the last call.
    pub fn collect<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        st: &mut Statements<'c>,
    ) -> rusqlite::Result<()> {
        let budget = (self.appended * 4).max(MIN_COLLECT_ROWS);
        self.appended = 0;
        if self.dead_bytes() <= self.live.max(MIN_DEAD_BYTES) {
            return Ok(());
        }
        self.collect_rows(tx, st, budget)
    }

    /// Collect the oldest `budget` rows: a row still the latest of its key is appended again,
    /// a deletion or drop at the front has nothing older left to void and goes; then all of
    /// them are deleted.
    fn collect_rows<'c>(
        &mut self,
        tx: &'c Transaction<'_>,
        st: &mut Statements<'c>,
        budget: usize,
    ) -> rusqlite::Result<()> {
        type Row = (i64, String, Option<String>, Option<String>);
        let oldest: Vec<Row> = tx
            .prepare_cached(
                "SELECT id, tbl, pk, item FROM ddb_log WHERE id >= ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map((self.front, budget as i64), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = oldest.last().map(|r| r.0) else {
            return Ok(());
        };
        for (id, tbl, pk, item) in &oldest {
            let bytes = row_bytes(tbl, pk.as_deref(), item.as_deref());
            self.total = self.total.saturating_sub(bytes);
            let Some(pk) = pk else {
                self.live = self.live.saturating_sub(bytes);
                continue;
            };
            let Some(latest) = self.latest_of(tbl, pk).copied().filter(|l| l.id == *id) else {
                continue;
            };
            if latest.deleted {
                if let Some(keys) = self.latest.get_mut(tbl.as_str()) {
                    keys.remove(pk.as_str());
                }
                self.live = self.live.saturating_sub(bytes);
            } else {
                // Its bytes move from the front to the end (`write` counts the new row and
                // uncounts this one, its key's latest until now): live is unchanged.
                self.write(tx, st, tbl, pk, item.as_deref())?;
            }
        }
        tx.prepare_cached("DELETE FROM ddb_log WHERE id >= ?1 AND id <= ?2")?
            .execute((self.front, last))?;
        self.front = last + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::table_record::SCHEMA).unwrap();
        conn
    }

    /// What a fresh load of `conn` finds: (table, item) of every live item.
    fn stored(conn: &Connection) -> BTreeMap<String, Vec<String>> {
        let log = ItemLog::load(conn).unwrap();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        log.for_each_live(conn, |t, i| {
            out.entry(t.into()).or_default().push(i.into());
            Ok(())
        })
        .unwrap();
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM ddb_log", [], |r| r.get(0))
            .unwrap()
    }

    /// One step of a history: a write (`Some(item)`), a delete (`None`), or a table drop.
    enum Step {
        Put(&'static str, String, String),
        Delete(&'static str, String),
        Drop(&'static str),
    }

    fn apply(conn: &mut Connection, log: &mut ItemLog, steps: &[Step], collect: bool) {
        let tx = conn.transaction().unwrap();
        {
            let mut st = Statements::default();
            for s in steps {
                match s {
                    Step::Put(t, k, i) => log.write(&tx, &mut st, t, k, Some(i)).unwrap(),
                    Step::Delete(t, k) => log.write(&tx, &mut st, t, k, None).unwrap(),
                    Step::Drop(t) => log.drop_table(&tx, &mut st, t).unwrap(),
                }
            }
            if collect {
                log.collect(&tx, &mut st).unwrap();
            }
        }
        tx.commit().unwrap();
    }

    /// A reference model: the map a history leaves.
    fn model(history: &[Step]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<(String, String), String> = BTreeMap::new();
        for s in history {
            match s {
                Step::Put(t, k, i) => {
                    m.insert((t.to_string(), k.clone()), i.clone());
                }
                Step::Delete(t, k) => {
                    m.remove(&(t.to_string(), k.clone()));
                }
                Step::Drop(t) => m.retain(|(tt, _), _| tt != t),
            }
        }
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((t, _), i) in m {
            out.entry(t).or_default().push(i);
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// A deterministic history over two tables: writes, rewrites, deletes and drops.
    fn history(n: usize, seed: u64) -> Vec<Step> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| {
                let r = next();
                let t = if r % 2 == 0 { "a" } else { "b" };
                let k = format!("k{}", (r >> 8) % 40);
                match (r >> 20) % 100 {
                    0 => Step::Drop(t),
                    1..=24 => Step::Delete(t, k),
                    _ => Step::Put(t, k.clone(), format!("{{\"{k}\":{i}}}")),
                }
            })
            .collect()
    }

    #[test]
    fn a_reload_finds_the_last_write_of_every_key_through_rewrites_deletes_and_drops() {
        for seed in [1, 7, 99] {
            let steps = history(3_000, seed);
            let mut conn = db();
            let mut log = ItemLog::load(&conn).unwrap();
            for chunk in steps.chunks(37) {
                apply(&mut conn, &mut log, chunk, false);
                // Collect far more often than the thresholds would.
                let tx = conn.transaction().unwrap();
                log.collect_rows(&tx, &mut Statements::default(), 80)
                    .unwrap();
                tx.commit().unwrap();
            }
            assert_eq!(stored(&conn), model(&steps), "seed {seed}");
            // Collection kept the log bounded: it holds about the live rows, not the history.
            assert!(rows(&conn) < 400, "{} rows left", rows(&conn));
            // A reloaded index accounts for the rows as the running one did.
            let again = ItemLog::load(&conn).unwrap();
            assert_eq!((again.total, again.live), (log.total, log.live));
            assert_eq!(again.next_id, log.next_id);
        }
    }

    #[test]
    fn collection_starts_only_once_dead_rows_outweigh_live_ones_and_the_floor() {
        let mut conn = db();
        let mut log = ItemLog::load(&conn).unwrap();
        let big = "x".repeat(64 << 10);
        // 300 writes of one key: ~19 MiB, of which only the last counts.
        for _ in 0..300 {
            apply(
                &mut conn,
                &mut log,
                &[Step::Put("a", "k".into(), big.clone())],
                true,
            );
        }
        // Collected as soon as the dead rows passed 16 MiB: far fewer than 300 rows remain.
        assert!(rows(&conn) < 300 - 200, "{} rows", rows(&conn));
        assert!(log.dead_bytes() <= MIN_DEAD_BYTES + (64 << 10) * 8);
        assert_eq!(stored(&conn), model(&[Step::Put("a", "k".into(), big)]));
        // Live rows alone are never collected, however many.
        let mut conn = db();
        let mut log = ItemLog::load(&conn).unwrap();
        for i in 0..300 {
            apply(
                &mut conn,
                &mut log,
                &[Step::Put("a", format!("k{i}"), "x".repeat(64 << 10))],
                true,
            );
        }
        assert_eq!(rows(&conn), 300);
        assert_eq!(log.dead_bytes(), 0);
    }

    #[test]
    fn a_drop_voids_the_tables_earlier_rows_and_not_its_later_ones() {
        let mut conn = db();
        let mut log = ItemLog::load(&conn).unwrap();
        let steps = [
            Step::Put("t", "k1".into(), "old1".into()),
            Step::Put("t", "k2".into(), "old2".into()),
            Step::Put("u", "k1".into(), "other".into()),
            Step::Drop("t"),
            Step::Put("t", "k2".into(), "new2".into()),
        ];
        apply(&mut conn, &mut log, &steps, false);
        assert_eq!(stored(&conn), model(&steps));
        // Collected one row at a time, the drop included: the answer never changes.
        for _ in 0..6 {
            let tx = conn.transaction().unwrap();
            log.collect_rows(&tx, &mut Statements::default(), 1)
                .unwrap();
            tx.commit().unwrap();
            assert_eq!(stored(&conn), model(&steps));
        }
        assert_eq!(rows(&conn), 2);
    }

    #[test]
    fn a_database_from_before_the_log_is_moved_into_it_once() {
        let mut conn = db();
        conn.execute(
            "INSERT INTO ddb_items (tbl, pk, item) VALUES ('t', 'k1', 'i1'), ('t', 'k2', 'i2')",
            [],
        )
        .unwrap();
        let mut log = ItemLog::load(&conn).unwrap();
        let legacy: i64 = conn
            .query_row("SELECT count(*) FROM ddb_items", [], |r| r.get(0))
            .unwrap();
        assert_eq!((legacy, rows(&conn)), (0, 2));
        apply(
            &mut conn,
            &mut log,
            &[Step::Delete("t", "k1".into())],
            false,
        );
        let mut want = BTreeMap::new();
        want.insert("t".to_string(), vec!["i2".to_string()]);
        assert_eq!(stored(&conn), want);
    }

    #[test]
    fn a_damaged_row_is_named_by_its_id() {
        let conn = db();
        conn.execute(
            "INSERT INTO ddb_log (id, tbl, pk, item) VALUES (1, 't', 'k1', 'i1'), (2, 't', 'k2', 'i2'), (3, 't', 'k3', x'00ff')",
            [],
        )
        .unwrap();
        let e = ItemLog::load(&conn).unwrap_err().to_string();
        assert!(e.contains("ddb_log row 3 is damaged"), "{e}");
        conn.execute("UPDATE ddb_log SET item = 'i3' WHERE id = 3", [])
            .unwrap();
        // What the reader of an item refuses is named by the row too.
        let log = ItemLog::load(&conn).unwrap();
        let e = log
            .for_each_live(&conn, |_, item| {
                if item == "i2" {
                    Err(rusqlite::Error::InvalidQuery)
                } else {
                    Ok(())
                }
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("ddb_log row 2 is damaged"), "{e}");
    }
}

//! The checkpoint keys each stream by its URL without credentials
//! ([`tonbo_core::url::without_credentials`]), so the file never holds a password or a token,
//! and a stream reached with a new password or a renewed token is the same stream. Builds before
//! this one keyed streams by the URL as given: `strip_stored_credentials` upgrades such a file
//! on every open. It is no schema step (the version is left as it is): it only rewrites values,
//! and finds nothing to do in a file it upgraded before.

use std::path::Path;

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};
use tonbo_core::url::without_credentials;

/// Set in `meta` with the rewrite, removed once the file is scrubbed: a scrub that failed (a
/// reader held the file) is tried again on the next open.
const SCRUB_KEY: &str = "scrub_credentials";

/// Re-keys every stream whose stored URL holds credentials (merging two rows that turn out to
/// be the same stream), then rewrites the file so that the old text is gone from its free space
/// and its WAL too. Costs one query over the streams whose URL holds `@`, `?` or `#` when there
/// is nothing to do.
pub(crate) fn strip_stored_credentials(
    conn: &Connection,
    path: &Path,
    inflight: &Path,
) -> Result<()> {
    let rows: Vec<(i64, String)> = conn
        .prepare(
            "SELECT id, url FROM stream
             WHERE instr(url, '@') > 0 OR instr(url, '?') > 0 OR instr(url, '#') > 0
             ORDER BY id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let changed: Vec<(i64, String)> = rows
        .into_iter()
        .filter_map(|(id, url)| {
            let key = without_credentials(&url);
            (key != url).then_some((id, key))
        })
        .collect();
    if !changed.is_empty() {
        let tx = conn.unchecked_transaction()?;
        let mut dropped = Vec::new();
        for (id, key) in changed {
            let same: Option<i64> = tx
                .query_row("SELECT id FROM stream WHERE url = ?1", [&key], |r| r.get(0))
                .optional()?;
            match same {
                None => {
                    tx.execute("UPDATE stream SET url = ?2 WHERE id = ?1", params![id, key])?;
                }
                Some(keep) => dropped.extend(merge(&tx, keep, id)?),
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, 1)",
            [SCRUB_KEY],
        )?;
        tx.commit()?;
        for jid in dropped {
            // Named as `Checkpoint::body_file` names a journal row's body.
            let _ = std::fs::remove_file(inflight.join(format!("{jid}.json")));
        }
    }
    let pending: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [SCRUB_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    if pending.is_some() {
        // An UPDATE leaves the old text in the page's free space (and older copies of it where
        // rows grew), and the WAL keeps old pages: VACUUM copies only what is live, and the
        // truncating checkpoint empties the WAL.
        let scrubbed = conn.execute_batch("VACUUM").and_then(|()| {
            conn.execute("DELETE FROM meta WHERE key = ?1", [SCRUB_KEY])?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        });
        if let Err(e) = scrubbed {
            tonbo_core::note!(
                "tonbo-post: {}: could not yet erase the credentials an older build stored with its stream URLs ({e}); trying again on the next run",
                path.display()
            );
        }
    }
    Ok(())
}

/// Two rows for one stream (posted to with two passwords, or with and without one): the one
/// kept takes the other's acknowledged keys and journaled batches, and the later of the two
/// producer states (both are this checkpoint's producer). A batch journaled by both under the
/// same (epoch, seq) is dropped from the other, its events unacknowledged and so sent again from
/// the input, as after a damaged body. Returns the journal rows dropped.
fn merge(tx: &Connection, keep: i64, gone: i64) -> Result<Vec<i64>> {
    tx.execute(
        "INSERT OR IGNORE INTO acked (stream, source_key, run)
         SELECT ?1, source_key, run FROM acked WHERE stream = ?2",
        params![keep, gone],
    )?;
    tx.execute("DELETE FROM acked WHERE stream = ?1", [gone])?;
    tx.execute(
        "UPDATE OR IGNORE journal3 SET stream = ?1 WHERE stream = ?2",
        params![keep, gone],
    )?;
    let dropped: Vec<i64> = tx
        .prepare("SELECT id FROM journal3 WHERE stream = ?1")?
        .query_map([gone], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute("DELETE FROM journal3 WHERE stream = ?1", [gone])?;
    struct RowState {
        epoch: i64,
        next_seq: i64,
        claimed: bool,
    }
    let state = |id: i64| {
        tx.query_row(
            "SELECT epoch, next_seq, claimed FROM stream WHERE id = ?1",
            [id],
            |r| {
                Ok(RowState {
                    epoch: r.get(0)?,
                    next_seq: r.get(1)?,
                    claimed: r.get(2)?,
                })
            },
        )
    };
    let (a, b) = (state(keep)?, state(gone)?);
    let (epoch, next_seq) = (a.epoch, a.next_seq).max((b.epoch, b.next_seq));
    tx.execute(
        "UPDATE stream SET epoch = ?2, next_seq = ?3, claimed = ?4 WHERE id = ?1",
        params![keep, epoch, next_seq, a.claimed || b.claimed],
    )?;
    tx.execute("DELETE FROM stream WHERE id = ?1", [gone])?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use crate::checkpoint::{Checkpoint, KeyState, Pending};
    use rusqlite::{params, Connection};
    use std::path::{Path, PathBuf};

    const FULL: &str = "http://alice:s3cretpw@h:1/v1/sessions/s/events?token=tok-9z";
    const BARE: &str = "http://h:1/v1/sessions/s/events?token=***";

    fn tmp() -> PathBuf {
        crate::checkpoint::tests::tmp_state("urls")
    }

    /// A checkpoint as the builds before wrote it: streams keyed by the URL as given.
    fn old_file(path: &Path, rows: &[(i64, &str, i64, i64, &[&str])]) {
        drop(Checkpoint::open(path).unwrap());
        let conn = Connection::open(path).unwrap();
        for (id, url, epoch, next_seq, keys) in rows {
            conn.execute(
                "INSERT INTO stream (id, url, epoch, next_seq, claimed) VALUES (?1, ?2, ?3, ?4, 1)",
                params![id, url, epoch, next_seq],
            )
            .unwrap();
            for k in *keys {
                conn.execute(
                    "INSERT INTO acked (stream, source_key, run) VALUES (?1, ?2, 1)",
                    params![id, k],
                )
                .unwrap();
            }
            // Grown and shrunk, as acknowledgements do: copies of the row in free space.
            conn.execute("UPDATE stream SET next_seq = 1 << 40 WHERE id = ?1", [id])
                .unwrap();
            conn.execute(
                "UPDATE stream SET next_seq = ?2 WHERE id = ?1",
                params![id, next_seq],
            )
            .unwrap();
        }
    }

    fn holds_secret(path: &Path) -> bool {
        ["", "-wal"].iter().any(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::read(PathBuf::from(p)).is_ok_and(|b| {
                b.windows(8).any(|w| w == b"s3cretpw") || b.windows(6).any(|w| w == b"tok-9z")
            })
        })
    }

    #[test]
    fn an_old_file_is_rekeyed_and_scrubbed_and_keeps_its_state() {
        let path = tmp();
        old_file(&path, &[(1, FULL, 2, 7, &["a", "b"])]);
        let mut cp = Checkpoint::open(&path).unwrap();
        let mut p = Pending {
            jid: 0,
            epoch: 2,
            seq: 7,
            run: cp.run,
            keys: vec!["c".into()],
            body: crate::checkpoint::tests::body_of(&["c"]),
        };
        cp.journal(1, &mut p).unwrap();
        assert!(!holds_secret(&path));
        for url in [
            FULL,
            BARE,
            "http://bob:other@h:1/v1/sessions/s/events?token=new",
        ] {
            let st = cp.stream(url).unwrap().unwrap();
            assert_eq!((st.id, st.epoch, st.next_seq, st.claimed), (1, 2, 7, true));
        }
        assert_eq!(cp.key_state(1, "a").unwrap(), KeyState::Present);
        let read = cp
            .add_server_keys::<anyhow::Error>(FULL, None, |add| {
                add("d");
                Ok(1)
            })
            .unwrap();
        assert_eq!(read.state.id, 1);
        drop(cp);
        // Opened again: nothing left to do, nothing changes.
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(cp.pending(1).unwrap(), vec![p]);
        assert_eq!(cp.key_state(1, "d").unwrap(), KeyState::Present);
        let count: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM stream", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
        drop(cp);
        assert!(!holds_secret(&path));
    }

    #[test]
    fn new_streams_are_stored_without_credentials() {
        let path = tmp();
        let mut cp = Checkpoint::open(&path).unwrap();
        let st = cp.add_stream(FULL, 0).unwrap();
        assert_eq!(cp.stream(BARE).unwrap().unwrap().id, st.id);
        drop(cp);
        assert!(!holds_secret(&path));
    }

    #[test]
    fn two_rows_of_one_stream_are_merged() {
        let path = tmp();
        let other = "http://bob:pw2@h:1/v1/sessions/s/events?token=tok-9z";
        old_file(
            &path,
            &[
                (1, BARE, 1, 3, &["a", "b"]),
                (2, FULL, 2, 1, &["b", "c"]),
                (3, other, 0, 9, &["e"]),
            ],
        );
        {
            let conn = Connection::open(&path).unwrap();
            let inflight = PathBuf::from(format!("{}.inflight", path.display()));
            std::fs::create_dir_all(&inflight).unwrap();
            // Stream 2's batch moves over; stream 3's clashes with stream 1's and goes.
            for (jid, stream, epoch, seq) in [(10, 1, 1, 3), (11, 2, 2, 1), (12, 3, 1, 3)] {
                conn.execute(
                    "INSERT INTO journal3 VALUES (?1, ?2, ?3, ?4, 1, '[\"k\"]', 3, ?5)",
                    params![jid, stream, epoch, seq, crc32fast::hash(b"[1]") as i64],
                )
                .unwrap();
                std::fs::write(inflight.join(format!("{jid}.json")), b"[1]").unwrap();
            }
        }
        let cp = Checkpoint::open(&path).unwrap();
        let st = cp.stream(BARE).unwrap().unwrap();
        assert_eq!((st.id, st.epoch, st.next_seq, st.claimed), (1, 2, 1, true));
        assert_eq!(
            cp.key_states(1, ["a", "b", "c", "e", "f"]).unwrap(),
            [
                KeyState::Present,
                KeyState::Present,
                KeyState::Present,
                KeyState::Present,
                KeyState::New
            ]
        );
        let jids: Vec<i64> = cp.pending(1).unwrap().iter().map(|p| p.jid).collect();
        assert_eq!(jids, [10, 11]);
        assert!(!PathBuf::from(format!("{}.inflight/12.json", path.display())).exists());
        drop(cp);
        assert!(!holds_secret(&path));
    }

    #[test]
    fn dry_run_finds_the_streams_of_a_file_not_yet_upgraded() {
        let path = tmp();
        old_file(&path, &[(1, FULL, 0, 4, &["a"])]);
        let cp = Checkpoint::open_read_only(&path).unwrap().unwrap();
        let st = cp.stream(FULL).unwrap().unwrap();
        assert_eq!((st.id, st.next_seq), (1, 4));
        assert_eq!(cp.key_state(1, "a").unwrap(), KeyState::Present);
    }
}

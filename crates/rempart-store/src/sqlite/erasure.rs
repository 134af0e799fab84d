//! [`ErasureStore`] on SQLite: a `LIKE` prefilter per table, page by page in one write
//! transaction each, then a WAL checkpoint that truncates the log (with `secure_delete` on,
//! the old row images are then overwritten on disk, not merely unlinked).

use sqlx::Row;

use super::SqliteStore;
use crate::erasure::{Cell, ErasureStore, Sweep, SweepReport, Value, like_patterns, rewrite_cell};
use crate::{BoxFuture, Result, StoreError};

/// Rows read, rewritten and written back per transaction.
const PAGE: i64 = 256;

struct Table {
    name: &'static str,
    /// The column reported as the row's id.
    id: &'static str,
    columns: &'static [(&'static str, Cell)],
}

/// Everything that may hold telemetry in clear. Not swept: the ledger (its payloads are sealed
/// and erased by key), the vault (likewise), tokens and indicators (no telemetry).
const TABLES: &[Table] = &[
    Table {
        name: "events",
        id: "id",
        columns: &[
            ("source", Cell::Text),
            ("location", Cell::Text),
            ("normalized", Cell::Json),
            ("fields", Cell::Json),
        ],
    },
    Table {
        name: "quarantine",
        id: "id",
        columns: &[
            ("source", Cell::Text),
            ("location", Cell::Text),
            ("reason", Cell::Text),
            ("raw", Cell::Blob),
        ],
    },
    Table {
        name: "alerts",
        id: "id",
        columns: &[("matched", Cell::Json), ("host", Cell::Text), ("user", Cell::Text)],
    },
    Table {
        name: "incidents",
        id: "id",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "verdicts",
        id: "id",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "verdict_feedback",
        id: "verdict",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "playbook_runs",
        id: "id",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "approvals",
        id: "id",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "response_actions",
        id: "key",
        columns: &[("key", Cell::Text), ("outcome", Cell::Text)],
    },
    Table {
        name: "regulatory_assessments",
        id: "incident",
        columns: &[("body", Cell::Json)],
    },
    Table {
        name: "detector_state",
        id: "name",
        columns: &[("body", Cell::Json)],
    },
];

fn select(table: &Table, patterns: usize) -> String {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let mut cond = Vec::with_capacity(columns.len() * patterns);
    for (c, cell) in table.columns {
        let expr = if *cell == Cell::Blob {
            format!("CAST({c} AS TEXT)")
        } else {
            (*c).to_owned()
        };
        for p in 0..patterns {
            cond.push(format!("{expr} LIKE ?{} ESCAPE '\\'", p + 2));
        }
    }
    format!(
        "SELECT rowid, {id}, {cols} FROM {name} WHERE rowid > ?1 AND ({cond}) ORDER BY rowid LIMIT {PAGE}",
        id = table.id,
        cols = columns.join(", "),
        name = table.name,
        cond = cond.join(" OR "),
    )
}

fn update(table: &Table) -> String {
    let sets: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ?{}", i + 1))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE rowid = ?{}",
        table.name,
        sets.join(", "),
        table.columns.len() + 1
    )
}

impl SqliteStore {
    async fn sweep_table(
        &self,
        table: &Table,
        sweep: &Sweep<'_>,
        patterns: &[String],
        report: &mut SweepReport,
    ) -> Result<()> {
        let select = select(table, patterns.len());
        let update = update(table);
        let mut after: i64 = 0;
        loop {
            // A dry run only reads: it does not hold the one writer up.
            let mut tx = if sweep.dry_run {
                self.reader.begin().await?
            } else {
                self.writer.begin().await?
            };
            let mut q = sqlx::query(&select).bind(after);
            for p in patterns {
                q = q.bind(p);
            }
            let rows = q.fetch_all(&mut *tx).await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get(0)?;
            for row in &rows {
                let rowid: i64 = row.try_get(0)?;
                let id: String = row.try_get::<Option<String>, _>(1)?.unwrap_or_default();
                let mut found = 0;
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, (column, cell)) in table.columns.iter().enumerate() {
                    let at = i + 2;
                    let stored = match cell {
                        Cell::Blob => Value::Blob(row.try_get(at)?),
                        Cell::Text | Cell::Json => Value::Text(row.try_get(at)?),
                    };
                    let (value, n) = rewrite_cell(*cell, stored, sweep, || format!("{} {column}", table.name), &id)?;
                    found += n;
                    values.push(value);
                }
                if found == 0 {
                    continue;
                }
                let id = match table.columns.iter().position(|(c, _)| *c == table.id) {
                    Some(i) => match &values[i] {
                        Value::Text(Some(s)) => s.clone(),
                        _ => id,
                    },
                    None => id,
                };
                report.count(table.name, id, found);
                if sweep.dry_run {
                    continue;
                }
                let mut u = sqlx::query(&update);
                for v in values {
                    u = match v {
                        Value::Text(t) => u.bind(t),
                        Value::Blob(b) => u.bind(b),
                    };
                }
                u.bind(rowid).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        Ok(())
    }

    /// Checkpoints the WAL into the database and truncates it; `false` if a reader kept part
    /// of it alive after a few tries.
    async fn purge_wal(&self) -> Result<bool> {
        for _ in 0..20 {
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await?;
            let busy: i64 = row.try_get(0)?;
            if busy == 0 {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(false)
    }
}

impl ErasureStore for SqliteStore {
    fn erasure_advance(&self) -> BoxFuture<'_, Result<crate::Epoch>> {
        Box::pin(async move {
            // The one writer connection, held: no save slips between the read and the write.
            let mut tx = self.writer.begin().await?;
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = ?")
                .bind(crate::EPOCH_STATE)
                .fetch_optional(&mut *tx)
                .await?;
            let now = jiff::Timestamp::now();
            let next = crate::codec::epoch_of(body)?.next(now);
            sqlx::query("INSERT OR REPLACE INTO detector_state (name, updated, body) VALUES (?, ?, ?)")
                .bind(crate::EPOCH_STATE)
                .bind(crate::codec::nanos(now))
                .bind(crate::codec::epoch_body(next))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(next)
        })
    }

    fn sweep<'a>(&'a self, sweep: &'a Sweep<'a>) -> BoxFuture<'a, Result<SweepReport>> {
        Box::pin(async move {
            if sweep.needles.is_empty() || sweep.needles.iter().any(String::is_empty) {
                return Err(StoreError::InvalidQuery("a sweep needs non-empty needles".to_owned()));
            }
            let patterns = like_patterns(sweep.needles);
            let mut report = SweepReport::default();
            for table in TABLES {
                self.sweep_table(table, sweep, &patterns, &mut report).await?;
            }
            report.purged = sweep.dry_run || self.purge_wal().await?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_every_column() {
        let t = &TABLES[0];
        assert_eq!(
            update(t),
            "UPDATE events SET source = ?1, location = ?2, normalized = ?3, fields = ?4 WHERE rowid = ?5"
        );
        assert!(select(t, 2).contains("fields LIKE ?3 ESCAPE"));
    }
}

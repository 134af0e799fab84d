//! [`ErasureStore`] on PostgreSQL: an `ILIKE` prefilter per table, page by page by key in one
//! transaction each, then `VACUUM` of the tables that changed so the old row versions' space is
//! reused. PostgreSQL keeps old row images in its write-ahead log (and the operator's base
//! backups and WAL archive) beyond any client's reach, so a sweep here never reports the old
//! copies purged: `docs/deployment.md` tells what the operator's retention must cover.

use sqlx::Row;

use super::PgStore;
use crate::erasure::{Cell, ErasureStore, Sweep, SweepReport, Value, like_patterns, rewrite_cell};
use crate::{BoxFuture, Result, StoreError};

/// Rows read, rewritten and written back per transaction.
const PAGE: i64 = 256;

struct Table {
    name: &'static str,
    /// The text key rows are paged and written back by.
    key: &'static str,
    /// The column reported as the row's id.
    id: &'static str,
    /// Column, how it is rewritten, and its SQL type (for writing it back).
    columns: &'static [(&'static str, Cell, &'static str)],
}

/// Everything that may hold telemetry in clear; as the SQLite store's list, table for table.
const TABLES: &[Table] = &[
    Table {
        name: "events",
        key: "id",
        id: "id",
        columns: &[
            ("source", Cell::Text, "text"),
            ("location", Cell::Text, "text"),
            ("normalized", Cell::Json, "json"),
            ("fields", Cell::Json, "json"),
        ],
    },
    Table {
        name: "quarantine",
        key: "id",
        id: "id",
        columns: &[
            ("source", Cell::Text, "text"),
            ("location", Cell::Text, "text"),
            ("reason", Cell::Text, "text"),
            ("raw", Cell::Blob, "bytea"),
        ],
    },
    Table {
        name: "alerts",
        key: "id",
        id: "id",
        columns: &[
            ("matched", Cell::Json, "text"),
            ("host", Cell::Text, "text"),
            ("\"user\"", Cell::Text, "text"),
        ],
    },
    Table {
        name: "incidents",
        key: "id",
        id: "id",
        columns: &[("body", Cell::Json, "json")],
    },
    Table {
        name: "verdicts",
        key: "id",
        id: "id",
        columns: &[("body", Cell::Json, "text")],
    },
    Table {
        name: "verdict_feedback",
        key: "id",
        id: "verdict",
        columns: &[("body", Cell::Json, "text")],
    },
    Table {
        name: "playbook_runs",
        key: "id",
        id: "id",
        columns: &[("body", Cell::Json, "text")],
    },
    Table {
        name: "approvals",
        key: "id",
        id: "id",
        columns: &[("body", Cell::Json, "text")],
    },
    Table {
        name: "response_actions",
        key: "key",
        id: "key",
        columns: &[("key", Cell::Text, "text"), ("outcome", Cell::Text, "text")],
    },
    Table {
        name: "regulatory_assessments",
        key: "incident",
        id: "incident",
        columns: &[("body", Cell::Json, "text")],
    },
    Table {
        name: "detector_state",
        key: "name",
        id: "name",
        columns: &[("body", Cell::Json, "text")],
    },
];

fn select(table: &Table) -> String {
    let mut cond = Vec::new();
    let mut read = Vec::new();
    for (c, cell, _) in table.columns {
        if *cell == Cell::Blob {
            // Raw bytes need not be UTF-8, so no text pattern applies to them: every row is
            // read, and the rewrite (which reads them as text) decides.
            cond.push("TRUE".to_owned());
            read.push((*c).to_owned());
        } else {
            // `\` is `LIKE`'s escape character unless told otherwise, as the patterns expect.
            cond.push(format!("{c}::text ILIKE ANY($2)"));
            read.push(format!("{c}::text"));
        }
    }
    format!(
        "SELECT {key}, {id}, {cols} FROM {name} WHERE {key} > $1 AND ({cond}) ORDER BY {key} LIMIT {PAGE}",
        key = table.key,
        id = table.id,
        cols = read.join(", "),
        name = table.name,
        cond = cond.join(" OR "),
    )
}

fn update(table: &Table) -> String {
    let sets: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (c, _, ty))| format!("{c} = ${}::{ty}", i + 1))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE {} = ${}",
        table.name,
        sets.join(", "),
        table.key,
        table.columns.len() + 1
    )
}

impl PgStore {
    /// Sweeps one table; whether any row changed.
    async fn sweep_table(
        &self,
        table: &Table,
        sweep: &Sweep<'_>,
        patterns: &[String],
        report: &mut SweepReport,
    ) -> Result<bool> {
        let select = select(table);
        let update = update(table);
        let mut after = String::new();
        let mut changed = false;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query(&select)
                .bind(&after)
                .bind(patterns)
                .fetch_all(&mut *tx)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get(0)?;
            for row in &rows {
                let key: String = row.try_get(0)?;
                let id: String = row.try_get::<Option<String>, _>(1)?.unwrap_or_default();
                let mut found = 0;
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, (column, cell, _)) in table.columns.iter().enumerate() {
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
                let id = match table.columns.iter().position(|(c, _, _)| *c == table.id) {
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
                u.bind(key).execute(&mut *tx).await?;
                changed = true;
            }
            tx.commit().await?;
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        Ok(changed)
    }
}

impl ErasureStore for PgStore {
    fn erasure_advance(&self) -> BoxFuture<'_, Result<crate::Epoch>> {
        Box::pin(async move {
            self.epoch_row().await?;
            let mut tx = self.pool.begin().await?;
            // Waits for the saves holding the row shared (`state_put_at`) to commit.
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = $1 FOR UPDATE")
                .bind(crate::EPOCH_STATE)
                .fetch_optional(&mut *tx)
                .await?;
            let now = jiff::Timestamp::now();
            let next = crate::codec::epoch_of(body)?.next(now);
            sqlx::query("UPDATE detector_state SET updated = $2, body = $3 WHERE name = $1")
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
                if self.sweep_table(table, sweep, &patterns, &mut report).await? {
                    // `VACUUM` runs outside any transaction, so through the simple protocol.
                    sqlx::raw_sql(&format!("VACUUM {}", table.name))
                        .execute(&self.pool)
                        .await?;
                }
            }
            report.purged = sweep.dry_run;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_every_column_and_cast_it_back() {
        let t = &TABLES[0];
        assert_eq!(
            update(t),
            "UPDATE events SET source = $1::text, location = $2::text, normalized = $3::json, fields = $4::json \
             WHERE id = $5"
        );
        assert!(select(t).contains("fields::text ILIKE ANY($2)"));
        assert!(select(&TABLES[1]).contains("OR TRUE"), "raw bytes are read whole");
    }
}

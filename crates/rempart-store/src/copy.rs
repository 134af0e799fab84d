//! An embedded store copied into an empty PostgreSQL one, table by table, row for row: the
//! move from one machine to a cluster (`rempart store copy`).
//!
//! The two schemas keep the same tables and columns (PostgreSQL adds `json`, `bytea`, `boolean`
//! types and a few columns of its own, which take their defaults), so each table is copied
//! through the columns both have, in pages, each value read as the type the target column
//! holds. Nothing is decoded or re-encoded: the ledger's records, hashes and sealed payloads
//! arrive as they were, so the copy verifies with the same keys.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row};

use crate::{PgStore, Result, SqliteStore, StoreError};

/// Every table that holds something, in the order copied.
pub const TABLES: &[&str] = &[
    "tokens",
    "events",
    "quarantine",
    "alerts",
    "incidents",
    "incident_alerts",
    "verdicts",
    "verdict_feedback",
    "intel_indicators",
    "privacy_vault",
    "ledger_keys",
    "ledger",
    "ledger_checkpoints",
    "playbook_runs",
    "approvals",
    "response_actions",
    "regulatory_assessments",
    "detector_state",
];

/// Rows read and written at once.
const PAGE: i64 = 2_000;

/// How many rows a table had, and how many the copy holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// Copies every table of `from` into `to`, which must hold nothing yet; `progress` is told
/// each table and the rows copied so far. Returns each table's counts on both sides, read
/// after the copy.
pub async fn copy(from: &SqliteStore, to: &PgStore, mut progress: impl FnMut(&str, u64)) -> Result<Vec<Copied>> {
    for table in TABLES {
        let held: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
            .fetch_one(to.pool())
            .await?;
        if held {
            return Err(StoreError::Conflict(format!(
                "the target already holds rows in `{table}`: copy into an empty store (a new database or schema)"
            )));
        }
    }
    let mut report = Vec::new();
    for table in TABLES {
        let columns = shared_columns(from, to, table).await?;
        let mut after = i64::MIN;
        let mut copied = 0u64;
        loop {
            let select = format!(
                "SELECT rowid AS rempart_rowid, {} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                columns
                    .iter()
                    .map(|(c, _)| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let rows = sqlx::query(&select)
                .bind(after)
                .bind(PAGE)
                .fetch_all(from.reader())
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("rempart_rowid")?;
            if *table == "events" {
                let mut days: Vec<i64> = Vec::with_capacity(rows.len());
                for r in &rows {
                    days.push(r.try_get::<i64, _>("ingested")?.div_euclid(crate::postgres::DAY_NANOS));
                }
                days.sort_unstable();
                days.dedup();
                to.ensure_partitions(&days).await?;
            }
            let mut insert = QueryBuilder::new(format!(
                "INSERT INTO {table} ({}) ",
                columns
                    .iter()
                    .map(|(c, _)| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let mut failed = None;
            insert.push_values(&rows, |mut b, row| {
                for (column, kind) in &columns {
                    let bound = match kind.as_str() {
                        "bigint" | "integer" => row.try_get::<Option<i64>, _>(column.as_str()).map(|v| {
                            b.push_bind(v);
                        }),
                        "boolean" => row.try_get::<Option<i64>, _>(column.as_str()).map(|v| {
                            b.push_bind(v.map(|v| v != 0));
                        }),
                        "bytea" => row.try_get::<Option<Vec<u8>>, _>(column.as_str()).map(|v| {
                            b.push_bind(v);
                        }),
                        "json" | "jsonb" => row.try_get::<Option<String>, _>(column.as_str()).map(|v| {
                            b.push_bind(v);
                            b.push_unseparated(format!("::{kind}"));
                        }),
                        _ => row.try_get::<Option<String>, _>(column.as_str()).map(|v| {
                            b.push_bind(v);
                        }),
                    };
                    if let Err(e) = bound {
                        failed.get_or_insert_with(|| format!("`{table}.{column}`: {e}"));
                        b.push_bind(None::<String>);
                    }
                }
            });
            if let Some(reason) = failed {
                return Err(StoreError::Corrupt {
                    id: table.to_string(),
                    reason,
                });
            }
            insert.build().execute(to.pool()).await?;
            copied += rows.len() as u64;
            progress(table, copied);
        }
        report.push(Copied {
            table,
            source: count(from.reader(), table).await?,
            target: {
                let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                    .fetch_one(to.pool())
                    .await?;
                u64::try_from(n).unwrap_or(0)
            },
        });
    }
    Ok(report)
}

async fn count(pool: &sqlx::SqlitePool, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The columns of `table` both stores have, with the target's type, in the target's order.
async fn shared_columns(from: &SqliteStore, to: &PgStore, table: &str) -> Result<Vec<(String, String)>> {
    let source: HashSet<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
        .fetch_all(from.reader())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<std::result::Result<_, _>>()?;
    let target: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(to.pool())
    .await?;
    if target.is_empty() || source.is_empty() {
        return Err(StoreError::Corrupt {
            id: table.to_owned(),
            reason: "the table is missing on one side: are both stores of this version?".into(),
        });
    }
    Ok(target.into_iter().filter(|(c, _)| source.contains(c)).collect())
}

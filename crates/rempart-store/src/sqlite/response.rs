//! [`ResponseStore`] on SQLite.

use jiff::Timestamp;
use rempart_model::EventId;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, corrupt, from_nanos, nanos};
use crate::{ActionRow, ApprovalRow, BoxFuture, ResponseStore, Result, RunQuery, RunRow};

fn id_of(row: &SqliteRow, col: &str) -> Result<EventId> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(&s, col, e))
}

fn body_of(row: &SqliteRow) -> Result<Value> {
    let b: String = row.try_get("body")?;
    serde_json::from_str(&b).map_err(|e| corrupt("body", "json", e))
}

fn run_of(row: &SqliteRow) -> Result<RunRow> {
    let id = id_of(row, "id")?;
    Ok(RunRow {
        id,
        incident: id_of(row, "incident")?,
        playbook: row.try_get("playbook")?,
        status: row.try_get("status")?,
        created: from_nanos(&id.to_string(), row.try_get("created")?)?,
        updated: from_nanos(&id.to_string(), row.try_get("updated")?)?,
        body: body_of(row)?,
    })
}

fn approval_of(row: &SqliteRow) -> Result<ApprovalRow> {
    let id = id_of(row, "id")?;
    Ok(ApprovalRow {
        id,
        run: id_of(row, "run")?,
        status: row.try_get("status")?,
        created: from_nanos(&id.to_string(), row.try_get("created")?)?,
        deadline: from_nanos(&id.to_string(), row.try_get("deadline")?)?,
        body: body_of(row)?,
    })
}

impl ResponseStore for SqliteStore {
    fn response_write<'a>(&'a self, runs: &'a [RunRow], approvals: &'a [ApprovalRow]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            for r in runs {
                sqlx::query(
                    "INSERT OR REPLACE INTO playbook_runs (id, incident, playbook, status, created, updated, body) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(r.id.to_string())
                .bind(r.incident.to_string())
                .bind(&r.playbook)
                .bind(&r.status)
                .bind(nanos(r.created))
                .bind(nanos(r.updated))
                .bind(r.body.to_string())
                .execute(&mut *tx)
                .await?;
            }
            for a in approvals {
                sqlx::query(
                    "INSERT OR REPLACE INTO approvals (id, run, status, created, deadline, body) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(a.id.to_string())
                .bind(a.run.to_string())
                .bind(&a.status)
                .bind(nanos(a.created))
                .bind(nanos(a.deadline))
                .bind(a.body.to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn run_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<RunRow>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM playbook_runs WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(run_of).transpose()
        })
    }

    fn runs_list<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM playbook_runs WHERE 1 = 1");
            if let Some(i) = query.incident {
                qb.push(" AND incident = ").push_bind(i.to_string());
            }
            if !query.status.is_empty() {
                qb.push(" AND status IN (");
                let mut sep = qb.separated(", ");
                for s in &query.status {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
            }
            crate::codec::push_past(&mut qb, "created", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY created DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.limit.clamp(1, 10_000)));
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter().map(run_of).collect()
        })
    }

    fn approval_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<ApprovalRow>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(approval_of).transpose()
        })
    }

    fn approvals_list<'a>(
        &'a self,
        status: Option<&'a str>,
        after: Option<crate::Position>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<ApprovalRow>>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM approvals WHERE 1 = 1");
            if let Some(s) = status {
                qb.push(" AND status = ").push_bind(s);
            }
            crate::codec::push_past(&mut qb, "created", crate::codec::Past::Newer, after);
            qb.push(" ORDER BY created, id LIMIT ")
                .push_bind(i64::from(limit.clamp(1, 10_000)));
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter().map(approval_of).collect()
        })
    }

    fn action_begin<'a>(&'a self, a: &'a ActionRow) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            // A failed action may be tried again under its key; anything else may not.
            let done = sqlx::query(
                "INSERT INTO response_actions (key, run, playbook, action, time, outcome) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET time = excluded.time, outcome = excluded.outcome \
                 WHERE response_actions.outcome = 'failed'",
            )
            .bind(&a.key)
            .bind(a.run.to_string())
            .bind(&a.playbook)
            .bind(&a.action)
            .bind(nanos(a.time))
            .bind(&a.outcome)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn action_end<'a>(&'a self, key: &'a str, outcome: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE response_actions SET outcome = ? WHERE key = ?")
                .bind(outcome)
                .bind(key)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn actions_count<'a>(&'a self, playbook: &'a str, action: &'a str, since: Timestamp) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM response_actions WHERE playbook = ? AND action = ? AND time >= ? \
                 AND outcome IN ('started', 'succeeded')",
            )
            .bind(playbook)
            .bind(action)
            .bind(nanos(since))
            .fetch_one(&self.reader)
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn assessment_put<'a>(
        &'a self,
        incident: EventId,
        body: &'a Value,
        updated: Timestamp,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT OR REPLACE INTO regulatory_assessments (incident, updated, body) VALUES (?, ?, ?)")
                .bind(incident.to_string())
                .bind(nanos(updated))
                .bind(body.to_string())
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn assessment_get(&self, incident: EventId) -> BoxFuture<'_, Result<Option<Value>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT body FROM regulatory_assessments WHERE incident = ?")
                .bind(incident.to_string())
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(body_of).transpose()
        })
    }

    fn assessments_all(&self) -> BoxFuture<'_, Result<Vec<(EventId, Value)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT incident, body FROM regulatory_assessments ORDER BY updated DESC")
                .fetch_all(&self.reader)
                .await?;
            rows.iter().map(|r| Ok((id_of(r, "incident")?, body_of(r)?))).collect()
        })
    }
}

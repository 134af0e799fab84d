//! [`ResponseStore`] on PostgreSQL. An action's key is claimed by an insert that only one
//! process can win (`ON CONFLICT … WHERE outcome = 'failed'`), so two `respond` processes never
//! run one action twice; counting against an hourly limit and recording what it admits happen
//! under an advisory lock ([`ResponseStore::exclusive`]), so that together they never overshoot.

use jiff::Timestamp;
use rempart_model::EventId;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::codec::{corrupt, event_id, from_nanos, nanos};
use crate::{ActionRow, ApprovalRow, BoxFuture, ResponseStore, Result, RunQuery, RunRow};

fn id_of(row: &PgRow, col: &str) -> Result<EventId> {
    let s: String = row.try_get(col)?;
    event_id(&s, col)
}

fn body_of(row: &PgRow) -> Result<Value> {
    let b: String = row.try_get("body")?;
    serde_json::from_str(&b).map_err(|e| corrupt("body", "json", e))
}

fn run_of(row: &PgRow) -> Result<RunRow> {
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

fn approval_of(row: &PgRow) -> Result<ApprovalRow> {
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

const RUN_COLUMNS: &str = "id, incident, playbook, status, created, updated, body";
const APPROVAL_COLUMNS: &str = "id, run, status, created, deadline, body";

impl ResponseStore for PgStore {
    fn response_write<'a>(&'a self, runs: &'a [RunRow], approvals: &'a [ApprovalRow]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for r in runs {
                sqlx::query(&format!(
                    "INSERT INTO playbook_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET incident = EXCLUDED.incident, playbook = EXCLUDED.playbook, \
                     status = EXCLUDED.status, created = EXCLUDED.created, updated = EXCLUDED.updated, \
                     body = EXCLUDED.body"
                ))
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
                sqlx::query(&format!(
                    "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (id) DO UPDATE SET run = EXCLUDED.run, status = EXCLUDED.status, \
                     created = EXCLUDED.created, deadline = EXCLUDED.deadline, body = EXCLUDED.body"
                ))
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
            let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM playbook_runs WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(run_of).transpose()
        })
    }

    fn runs_list<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>> {
        Box::pin(async move {
            let mut qb = sqlx::QueryBuilder::new(format!("SELECT {RUN_COLUMNS} FROM playbook_runs WHERE TRUE"));
            if let Some(i) = query.incident {
                qb.push(" AND incident = ").push_bind(i.to_string());
            }
            if !query.status.is_empty() {
                qb.push(" AND status = ANY(").push_bind(query.status.clone()).push(")");
            }
            crate::codec::push_past(&mut qb, "created", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY created DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.limit.clamp(1, 10_000)));
            let rows = qb.build().fetch_all(&self.pool).await?;
            rows.iter().map(run_of).collect()
        })
    }

    fn approval_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<ApprovalRow>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
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
            let mut qb = sqlx::QueryBuilder::new(format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE TRUE"));
            if let Some(s) = status {
                qb.push(" AND status = ").push_bind(s);
            }
            crate::codec::push_past(&mut qb, "created", crate::codec::Past::Newer, after);
            qb.push(" ORDER BY created, id LIMIT ")
                .push_bind(i64::from(limit.clamp(1, 10_000)));
            let rows = qb.build().fetch_all(&self.pool).await?;
            rows.iter().map(approval_of).collect()
        })
    }

    fn action_begin<'a>(&'a self, a: &'a ActionRow) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            // A failed action may be tried again under its key; anything else may not.
            let done = sqlx::query(
                "INSERT INTO response_actions (key, run, playbook, action, time, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key) DO UPDATE SET time = EXCLUDED.time, outcome = EXCLUDED.outcome \
                 WHERE response_actions.outcome = 'failed'",
            )
            .bind(&a.key)
            .bind(a.run.to_string())
            .bind(&a.playbook)
            .bind(&a.action)
            .bind(nanos(a.time))
            .bind(&a.outcome)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn exclusive<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<crate::Exclusive>> {
        Box::pin(async move {
            // A transaction-level lock: released when the transaction ends, which dropping it
            // does (rolled back: it wrote nothing), and with the session if the process dies.
            let turn = self.exclusive_turn().await;
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(self.lease_key(name))
                .execute(&mut *tx)
                .await?;
            Ok(Box::new((tx, turn)) as crate::Exclusive)
        })
    }

    fn action_end<'a>(&'a self, key: &'a str, outcome: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE response_actions SET outcome = $1 WHERE key = $2")
                .bind(outcome)
                .bind(key)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn actions_count<'a>(&'a self, playbook: &'a str, action: &'a str, since: Timestamp) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM response_actions WHERE playbook = $1 AND action = $2 AND time >= $3 \
                 AND outcome IN ('started', 'succeeded')",
            )
            .bind(playbook)
            .bind(action)
            .bind(nanos(since))
            .fetch_one(&self.pool)
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
            sqlx::query(
                "INSERT INTO regulatory_assessments (incident, updated, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (incident) DO UPDATE SET updated = EXCLUDED.updated, body = EXCLUDED.body",
            )
            .bind(incident.to_string())
            .bind(nanos(updated))
            .bind(body.to_string())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn assessment_get(&self, incident: EventId) -> BoxFuture<'_, Result<Option<Value>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT body FROM regulatory_assessments WHERE incident = $1")
                .bind(incident.to_string())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(body_of).transpose()
        })
    }

    fn assessments_all(&self) -> BoxFuture<'_, Result<Vec<(EventId, Value)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT incident, body FROM regulatory_assessments ORDER BY updated DESC")
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(|r| Ok((id_of(r, "incident")?, body_of(r)?))).collect()
        })
    }
}

//! [`IncidentStore`] on SQLite.

use rempart_model::{Alert, EventId, Feedback, Incident, IncidentSeverity, IncidentStatus, Verdict};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{ALERT_COLUMNS, ROWS_PER_STATEMENT, SqliteStore, alert_from_row, corrupt, nanos};
use crate::codec::{decode, json};
use crate::{BoxFuture, IncidentQuery, IncidentStore, IncidentWrite, Result};

impl IncidentStore for SqliteStore {
    fn incidents_write<'a>(&'a self, write: IncidentWrite<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let bodies = write.incidents.iter().map(json).collect::<Result<Vec<String>>>()?;
            let mut tx = self.writer.begin().await?;
            for (chunk, bodies) in write
                .incidents
                .chunks(ROWS_PER_STATEMENT)
                .zip(bodies.chunks(ROWS_PER_STATEMENT))
            {
                let mut qb = QueryBuilder::new(
                    "INSERT OR REPLACE INTO incidents (id, status, severity, score, first_seen, last_seen, updated, body) ",
                );
                qb.push_values(chunk.iter().zip(bodies), |mut b, (i, body)| {
                    b.push_bind(i.id.to_string())
                        .push_bind(i.status.as_str())
                        .push_bind(i.severity.as_str())
                        .push_bind(i64::from(i.score))
                        .push_bind(nanos(i.first_seen))
                        .push_bind(nanos(i.last_seen))
                        .push_bind(nanos(i.updated))
                        .push_bind(body.as_str());
                });
                qb.build().execute(&mut *tx).await?;
            }
            for (from, to) in write.moves {
                sqlx::query("UPDATE incident_alerts SET incident = ? WHERE incident = ?")
                    .bind(to.to_string())
                    .bind(from.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in write.links.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new("INSERT OR REPLACE INTO incident_alerts (alert, incident) ");
                qb.push_values(chunk, |mut b, (alert, incident)| {
                    b.push_bind(alert.to_string()).push_bind(incident.to_string());
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn incident_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Incident>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM incidents WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
            body.map(|b| decode(&id.to_string(), "incident", &b)).transpose()
        })
    }

    fn incidents_list<'a>(&'a self, query: &'a IncidentQuery) -> BoxFuture<'a, Result<Vec<Incident>>> {
        Box::pin(async move {
            let statuses: Vec<IncidentStatus> = if query.status.is_empty() {
                IncidentStatus::ALL
                    .into_iter()
                    .filter(|s| *s != IncidentStatus::Merged)
                    .collect()
            } else {
                query.status.clone()
            };
            let mut qb = QueryBuilder::new("SELECT id, body FROM incidents WHERE status IN (");
            let mut sep = qb.separated(", ");
            for s in &statuses {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
            if let Some(since) = query.since {
                qb.push(" AND last_seen >= ").push_bind(nanos(since));
            }
            if let Some(until) = query.until {
                qb.push(" AND first_seen < ").push_bind(nanos(until));
            }
            if let Some(min) = query.min_severity {
                qb.push(" AND severity IN (");
                let mut sep = qb.separated(", ");
                for s in IncidentSeverity::ALL.into_iter().filter(|s| *s >= min) {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
            }
            // Substrings, ASCII letters in any case (SQLite's `lower()`), as `IncidentQuery::admits`.
            let needle = |s: &str| s.to_ascii_lowercase();
            match query.owner.as_deref() {
                Some("-") => {
                    qb.push(" AND json_extract(body, '$.owner') IS NULL");
                }
                Some(o) => {
                    qb.push(" AND instr(lower(json_extract(body, '$.owner')), ")
                        .push_bind(needle(o))
                        .push(") > 0");
                }
                None => {}
            }
            for (path, value, wanted) in [
                ("$.rules", "value", &query.rule),
                ("$.entities", "json_extract(value, '$.value')", &query.entity),
                ("$.tactics", "value", &query.tactic),
            ] {
                if let Some(w) = wanted {
                    qb.push(format!(
                        " AND EXISTS (SELECT 1 FROM json_each(incidents.body, '{path}') WHERE instr(lower({value}), "
                    ))
                    .push_bind(needle(w))
                    .push(") > 0)");
                }
            }
            crate::codec::push_past(&mut qb, "last_seen", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.effective_limit()));
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get("id")?;
                    let body: String = row.try_get("body")?;
                    decode(&id, "incident", &body)
                })
                .collect()
        })
    }

    fn incident_alerts(&self, id: EventId, limit: u32) -> BoxFuture<'_, Result<Vec<Alert>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {} FROM alerts a JOIN incident_alerts l ON l.alert = a.id WHERE l.incident = ? ORDER BY a.time, a.id LIMIT ?",
                ALERT_COLUMNS
                    .split(", ")
                    .map(|c| format!("a.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let rows = sqlx::query(&sql)
                .bind(id.to_string())
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
            rows.iter().map(alert_from_row).collect()
        })
    }

    fn incident_of_alert(&self, alert: EventId) -> BoxFuture<'_, Result<Option<EventId>>> {
        Box::pin(async move {
            let id: Option<String> = sqlx::query_scalar("SELECT incident FROM incident_alerts WHERE alert = ?")
                .bind(alert.to_string())
                .fetch_optional(&self.reader)
                .await?;
            id.map(|i| {
                Uuid::parse_str(&i)
                    .map(EventId)
                    .map_err(|e| corrupt(&alert.to_string(), "incident", e))
            })
            .transpose()
        })
    }

    fn verdict_put<'a>(&'a self, verdict: &'a Verdict) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT OR REPLACE INTO verdicts (id, incident, created, body) VALUES (?, ?, ?, ?)")
                .bind(verdict.id.to_string())
                .bind(verdict.incident.to_string())
                .bind(nanos(verdict.created))
                .bind(json(verdict)?)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn verdict_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Verdict>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM verdicts WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
            body.map(|b| decode(&id.to_string(), "verdict", &b)).transpose()
        })
    }

    fn verdicts_of(&self, incident: EventId) -> BoxFuture<'_, Result<Vec<Verdict>>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, body FROM verdicts WHERE incident = ? ORDER BY created DESC, id DESC")
                    .bind(incident.to_string())
                    .fetch_all(&self.reader)
                    .await?;
            rows.iter().map(|(id, body)| decode(id, "verdict", body)).collect()
        })
    }

    fn feedback_put<'a>(&'a self, feedback: &'a Feedback) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO verdict_feedback (verdict, incident, time, body) VALUES (?, ?, ?, ?)")
                .bind(feedback.verdict.to_string())
                .bind(feedback.incident.to_string())
                .bind(nanos(feedback.time))
                .bind(json(feedback)?)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn feedback_all(&self) -> BoxFuture<'_, Result<Vec<(Feedback, Verdict)>>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT f.verdict, f.body, v.body FROM verdict_feedback f JOIN verdicts v ON v.id = f.verdict ORDER BY f.time",
            )
            .fetch_all(&self.reader)
            .await?;
            rows.iter()
                .map(|(id, f, v)| Ok((decode(id, "feedback", f)?, decode(id, "verdict", v)?)))
                .collect()
        })
    }
}

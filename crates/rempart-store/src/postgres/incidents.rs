//! [`IncidentStore`] on PostgreSQL.

use std::collections::HashMap;

use rempart_model::{Alert, EventId, Feedback, Incident, IncidentSeverity, IncidentStatus, Verdict};
use sqlx::{QueryBuilder, Row};

use super::{ALERT_COLUMNS, PgStore, alert_from_row};
use crate::codec::{decode, event_id, json, nanos};
use crate::{BoxFuture, IncidentQuery, IncidentStore, IncidentWrite, Result};

/// The last of `items` for each key, in first-seen order: an upsert of many rows may touch each
/// row once only, and a later write of the same row replaces an earlier one.
fn last_per_key<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<&T> = Vec::new();
    for item in items {
        match at.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                at.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

impl IncidentStore for PgStore {
    fn incidents_write<'a>(&'a self, write: IncidentWrite<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let incidents = last_per_key(write.incidents, |i| i.id);
            let bodies = incidents.iter().map(|i| json(*i)).collect::<Result<Vec<String>>>()?;
            let mut tx = self.pool.begin().await?;
            if !incidents.is_empty() {
                sqlx::query(
                    "INSERT INTO incidents (id, status, severity, score, first_seen, last_seen, updated, body) \
                     SELECT id, status, severity, score, first_seen, last_seen, updated, body::json \
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], \
                     $7::bigint[], $8::text[]) AS t(id, status, severity, score, first_seen, last_seen, updated, body) \
                     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, severity = EXCLUDED.severity, \
                     score = EXCLUDED.score, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, \
                     updated = EXCLUDED.updated, body = EXCLUDED.body",
                )
                .bind(incidents.iter().map(|i| i.id.to_string()).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| i.status.as_str()).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| i.severity.as_str()).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| i64::from(i.score)).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| nanos(i.first_seen)).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| nanos(i.last_seen)).collect::<Vec<_>>())
                .bind(incidents.iter().map(|i| nanos(i.updated)).collect::<Vec<_>>())
                .bind(&bodies)
                .execute(&mut *tx)
                .await?;
            }
            for (from, to) in write.moves {
                sqlx::query("UPDATE incident_alerts SET incident = $1 WHERE incident = $2")
                    .bind(to.to_string())
                    .bind(from.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let links = last_per_key(write.links, |(alert, _)| *alert);
            if !links.is_empty() {
                sqlx::query(
                    "INSERT INTO incident_alerts (alert, incident) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                     ON CONFLICT (alert) DO UPDATE SET incident = EXCLUDED.incident",
                )
                .bind(links.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>())
                .bind(links.iter().map(|(_, i)| i.to_string()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn incident_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Incident>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body::text FROM incidents WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            body.map(|b| decode(&id.to_string(), "incident", &b)).transpose()
        })
    }

    fn incidents_list<'a>(&'a self, query: &'a IncidentQuery) -> BoxFuture<'a, Result<Vec<Incident>>> {
        Box::pin(async move {
            let statuses: Vec<String> = if query.status.is_empty() {
                IncidentStatus::ALL
                    .into_iter()
                    .filter(|s| *s != IncidentStatus::Merged)
                    .map(|s| s.as_str().to_owned())
                    .collect()
            } else {
                query.status.iter().map(|s| s.as_str().to_owned()).collect()
            };
            let mut qb = QueryBuilder::new("SELECT id, body::text AS body FROM incidents WHERE status = ANY(");
            qb.push_bind(statuses).push(")");
            if let Some(since) = query.since {
                qb.push(" AND last_seen >= ").push_bind(nanos(since));
            }
            if let Some(until) = query.until {
                qb.push(" AND first_seen < ").push_bind(nanos(until));
            }
            if let Some(min) = query.min_severity {
                let severities: Vec<String> = IncidentSeverity::ALL
                    .into_iter()
                    .filter(|s| *s >= min)
                    .map(|s| s.as_str().to_owned())
                    .collect();
                qb.push(" AND severity = ANY(").push_bind(severities).push(")");
            }
            // Substrings, ASCII letters in any case (`lower()` under the "C" collation), as
            // `IncidentQuery::admits`.
            let needle = |s: &str| s.to_ascii_lowercase();
            match query.owner.as_deref() {
                Some("-") => {
                    qb.push(" AND body->>'owner' IS NULL");
                }
                Some(o) => {
                    qb.push(r#" AND strpos(lower((body->>'owner') COLLATE "C"), "#)
                        .push_bind(needle(o))
                        .push(") > 0");
                }
                None => {}
            }
            for (elements, value, wanted) in [
                ("json_array_elements_text(incidents.body->'rules')", "x", &query.rule),
                (
                    "json_array_elements(incidents.body->'entities')",
                    "x->>'value'",
                    &query.entity,
                ),
                (
                    "json_array_elements_text(incidents.body->'tactics')",
                    "x",
                    &query.tactic,
                ),
            ] {
                if let Some(w) = wanted {
                    qb.push(format!(
                        r#" AND EXISTS (SELECT 1 FROM {elements} AS x WHERE strpos(lower(({value}) COLLATE "C"), "#
                    ))
                    .push_bind(needle(w))
                    .push(") > 0)");
                }
            }
            crate::codec::push_past(&mut qb, "last_seen", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.effective_limit()));
            let rows = qb.build().fetch_all(&self.pool).await?;
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
            let columns: Vec<String> = ALERT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
            let rows = sqlx::query(&format!(
                "SELECT {} FROM alerts a JOIN incident_alerts l ON l.alert = a.id WHERE l.incident = $1 \
                 ORDER BY a.time, a.id LIMIT $2",
                columns.join(", ")
            ))
            .bind(id.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(alert_from_row).collect()
        })
    }

    fn incident_of_alert(&self, alert: EventId) -> BoxFuture<'_, Result<Option<EventId>>> {
        Box::pin(async move {
            let id: Option<String> = sqlx::query_scalar("SELECT incident FROM incident_alerts WHERE alert = $1")
                .bind(alert.to_string())
                .fetch_optional(&self.pool)
                .await?;
            id.map(|i| event_id(&i, "incident")).transpose()
        })
    }

    fn verdict_put<'a>(&'a self, verdict: &'a Verdict) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO verdicts (id, incident, created, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET incident = EXCLUDED.incident, created = EXCLUDED.created, \
                 body = EXCLUDED.body",
            )
            .bind(verdict.id.to_string())
            .bind(verdict.incident.to_string())
            .bind(nanos(verdict.created))
            .bind(json(verdict)?)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn verdict_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Verdict>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM verdicts WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            body.map(|b| decode(&id.to_string(), "verdict", &b)).transpose()
        })
    }

    fn verdicts_of(&self, incident: EventId) -> BoxFuture<'_, Result<Vec<Verdict>>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, body FROM verdicts WHERE incident = $1 ORDER BY created DESC, id DESC")
                    .bind(incident.to_string())
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter().map(|(id, body)| decode(id, "verdict", body)).collect()
        })
    }

    fn feedback_put<'a>(&'a self, feedback: &'a Feedback) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO verdict_feedback (verdict, incident, time, body) VALUES ($1, $2, $3, $4)")
                .bind(feedback.verdict.to_string())
                .bind(feedback.incident.to_string())
                .bind(nanos(feedback.time))
                .bind(json(feedback)?)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn feedback_all(&self) -> BoxFuture<'_, Result<Vec<(Feedback, Verdict)>>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT f.verdict, f.body, v.body FROM verdict_feedback f JOIN verdicts v ON v.id = f.verdict \
                 ORDER BY f.time, f.id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|(id, f, v)| Ok((decode(id, "feedback", f)?, decode(id, "verdict", v)?)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::last_per_key;

    #[test]
    fn the_last_write_of_a_key_wins_in_first_seen_order() {
        let items = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")];
        let got: Vec<&(i32, &str)> = last_per_key(&items, |(k, _)| *k);
        assert_eq!(got, [&(1, "c"), &(2, "e"), &(3, "d")]);
    }
}

//! Approvals: the people who must agree before a step runs.
//!
//! Four eyes: the person who asked (the requester of a manual run) cannot approve, nobody
//! votes twice, and each approver holds at least the role the step names (`approver` <
//! `admin`). One rejection rejects; the step's `approvers` approvals approve;
//! the deadline passing times the approval out.

use jiff::Timestamp;
use rempart_model::{ActionKind, EventId};
use serde::{Deserialize, Serialize};

use crate::playbook::ApprovalRule;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    TimedOut,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::TimedOut => "timed_out",
        }
    }
}

impl ApprovalStatus {
    /// A queue filter as people write it: a status, or `all` (`None`).
    pub fn filter(s: &str) -> Result<Option<ApprovalStatus>, String> {
        match s {
            "all" => Ok(None),
            "pending" => Ok(Some(ApprovalStatus::Pending)),
            "approved" => Ok(Some(ApprovalStatus::Approved)),
            "rejected" => Ok(Some(ApprovalStatus::Rejected)),
            "timed_out" => Ok(Some(ApprovalStatus::TimedOut)),
            other => Err(format!(
                "`{other}` is not pending, approved, rejected, timed_out or all"
            )),
        }
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One action the approval covers, as it would be carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    pub action: ActionKind,
    pub target: Option<String>,
    pub connector: Option<String>,
    /// Exactly what would be sent.
    pub prepared: String,
}

/// One person's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub actor: String,
    pub approve: bool,
    pub comment: String,
    pub time: Timestamp,
}

/// An approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: EventId,
    pub run: EventId,
    pub incident: EventId,
    pub playbook: String,
    pub step: String,
    pub actions: Vec<Proposed>,
    pub rule: ApprovalRule,
    /// Why it waits (the step asks, or a target is a critical asset).
    pub reason: String,
    pub requested_by: String,
    pub created: Timestamp,
    pub deadline: Timestamp,
    pub status: ApprovalStatus,
    pub votes: Vec<Vote>,
}

/// Why a vote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval {0} is already {1}")]
    Closed(EventId, ApprovalStatus),
    #[error("`{0}` asked for this run and cannot approve it (four eyes)")]
    OwnRequest(String),
    #[error("`{0}` has already voted")]
    AlreadyVoted(String),
    #[error(
        "`{actor}` is a token `{creator}` created after this approval was requested, and `{creator}` asked for it or voted on it: a token made for the occasion is not a second person (four eyes)"
    )]
    TokenAfterRequest { actor: String, creator: String },
    #[error("this approval needs the `{needed}` role or higher; `{actor}` holds `{held}`")]
    Role {
        actor: String,
        needed: String,
        held: String,
    },
    #[error("approval {0} passed its deadline")]
    Expired(EventId),
}

fn rank(role: &str) -> u8 {
    match role {
        "approver" => 1,
        "admin" => 2,
        _ => 0,
    }
}

impl Approval {
    /// Records a vote by `actor`, who holds `role` (`approver` or `admin`).
    pub fn vote(
        &mut self,
        actor: &str,
        role: &str,
        approve: bool,
        comment: &str,
        now: Timestamp,
    ) -> Result<ApprovalStatus, ApprovalError> {
        if self.status != ApprovalStatus::Pending {
            return Err(ApprovalError::Closed(self.id, self.status));
        }
        if now > self.deadline {
            return Err(ApprovalError::Expired(self.id));
        }
        if actor == self.requested_by {
            return Err(ApprovalError::OwnRequest(actor.to_owned()));
        }
        if self.votes.iter().any(|v| v.actor == actor) {
            return Err(ApprovalError::AlreadyVoted(actor.to_owned()));
        }
        if rank(role) < rank(&self.rule.role) {
            return Err(ApprovalError::Role {
                actor: actor.to_owned(),
                needed: self.rule.role.clone(),
                held: role.to_owned(),
            });
        }
        self.votes.push(Vote {
            actor: actor.to_owned(),
            approve,
            comment: comment.to_owned(),
            time: now,
        });
        let yes = self.votes.iter().filter(|v| v.approve).count();
        self.status = if !approve {
            ApprovalStatus::Rejected
        } else if yes >= self.rule.approvers as usize {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Pending
        };
        Ok(self.status)
    }

    /// Times the approval out if its deadline has passed; true if it did.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        if self.status == ApprovalStatus::Pending && now > self.deadline {
            self.status = ApprovalStatus::TimedOut;
            true
        } else {
            false
        }
    }

    /// How many more approvals it needs.
    pub fn missing(&self) -> usize {
        (self.rule.approvers as usize).saturating_sub(self.votes.iter().filter(|v| v.approve).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::OnTimeout;

    fn approval(approvers: u32) -> Approval {
        let t0 = Timestamp::UNIX_EPOCH;
        Approval {
            id: EventId::generate(),
            run: EventId::generate(),
            incident: EventId::generate(),
            playbook: "contain".into(),
            step: "block".into(),
            actions: Vec::new(),
            rule: ApprovalRule {
                role: "approver".into(),
                approvers,
                timeout_secs: 60,
                on_timeout: OnTimeout::Reject,
            },
            reason: String::new(),
            requested_by: "alice".into(),
            created: t0,
            deadline: Timestamp::from_second(60).unwrap_or(t0),
            status: ApprovalStatus::Pending,
            votes: Vec::new(),
        }
    }

    #[test]
    fn four_eyes_and_roles() {
        let now = Timestamp::from_second(10).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut a = approval(2);
        assert_eq!(
            a.vote("alice", "admin", true, "", now),
            Err(ApprovalError::OwnRequest("alice".into()))
        );
        assert!(matches!(
            a.vote("eve", "analyst", true, "", now),
            Err(ApprovalError::Role { .. })
        ));
        assert_eq!(a.vote("bob", "approver", true, "", now), Ok(ApprovalStatus::Pending));
        assert_eq!(a.missing(), 1);
        assert_eq!(
            a.vote("bob", "approver", true, "", now),
            Err(ApprovalError::AlreadyVoted("bob".into()))
        );
        assert_eq!(a.vote("carol", "admin", true, "", now), Ok(ApprovalStatus::Approved));
        assert!(matches!(
            a.vote("dan", "admin", false, "", now),
            Err(ApprovalError::Closed(..))
        ));
    }

    #[test]
    fn one_rejection_rejects_and_the_deadline_expires() {
        let now = Timestamp::from_second(10).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut a = approval(2);
        assert_eq!(
            a.vote("bob", "approver", false, "not this one", now),
            Ok(ApprovalStatus::Rejected)
        );
        let mut b = approval(1);
        let late = Timestamp::from_second(61).unwrap_or(now);
        assert!(matches!(
            b.vote("bob", "approver", true, "", late),
            Err(ApprovalError::Expired(_))
        ));
        assert!(!b.expire(now));
        assert!(b.expire(late));
        assert_eq!(b.status, ApprovalStatus::TimedOut);
    }
}

//! `rempart playbooks` and `rempart approvals`: checking and running playbooks, and the
//! approval queue.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use rempart_model::EventId;
use rempart_respond::approval::{Approval, ApprovalStatus};
use rempart_respond::run::Run;
use rempart_server::respond::{Response, Voter};
use rempart_store::Role;
use serde_json::json;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum PlaybooksCommand {
    /// Check playbook files or folders against the configured connectors; every problem is
    /// printed with its file, line and key
    Check {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// The playbooks of `[respond] playbooks`
    List,
    /// Run a playbook on an incident now (--dry-run: show exactly what would be done, do
    /// nothing)
    Run {
        playbook: String,
        #[arg(long)]
        incident: EventId,
        #[arg(long)]
        dry_run: bool,
    },
    /// Playbook runs, newest first
    Runs {
        /// Only runs on this incident
        #[arg(long)]
        incident: Option<EventId>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One run: every action, its target, outcome and what the connector answered
    Show { run: EventId },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals waiting for a decision (--status for others)
    List {
        /// pending, approved, rejected, timed_out or all
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Approve: the step runs once enough people approved (never the one who asked)
    Approve {
        id: EventId,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject: the step does not run
    Reject {
        id: EventId,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

/// `rempart playbooks check`: works without an instance.
pub fn check(config: &rempart_config::Config, paths: &[PathBuf], json_out: bool) -> anyhow::Result<()> {
    let (good, errors) = rempart_respond::playbook::load_all(
        paths,
        rempart_respond::CheckContext {
            connectors: &config.connectors,
            default_approval_timeout_secs: config.respond.approval_timeout_secs,
        },
    );
    let mut out = crate::out::stdout();
    if json_out {
        for p in &good {
            writeln!(
                out,
                "{}",
                json!({"file": p.source, "id": p.id, "status": "ok", "steps": p.steps.len()})
            )?;
        }
        for e in &errors {
            let problems: Vec<_> = e
                .problems
                .iter()
                .map(|p| json!({"path": p.path, "line": p.line, "message": p.message}))
                .collect();
            writeln!(
                out,
                "{}",
                json!({"file": e.file, "status": "rejected", "problems": problems})
            )?;
        }
    } else {
        for p in &good {
            writeln!(
                out,
                "ok        {}  {} ({} steps)",
                p.source.display(),
                p.id,
                p.steps.len()
            )?;
        }
        for e in &errors {
            for p in &e.problems {
                writeln!(out, "rejected  {}: {p}", e.file.display())?;
            }
        }
        writeln!(out, "{} playbook(s) ok, {} rejected", good.len(), errors.len())?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} playbook file(s) do not check", errors.len())
    }
}

async fn wire(data_dir: &Path, config: &rempart_config::Config) -> anyhow::Result<(Response, rempart_audit::Ledger)> {
    let sqlite = instance::open_store(data_dir, config).await?;
    let ledger = instance::open_ledger(data_dir, config, sqlite.clone()).await?;
    let incidents = instance::incidents(config, &ledger, sqlite.clone()).await?;
    let response = instance::response(config, &ledger, sqlite, incidents, Default::default())?;
    Ok((response, ledger))
}

pub async fn playbooks(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: PlaybooksCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    if let PlaybooksCommand::Check { paths } = &command {
        return check(config, paths, json_out);
    }
    let (response, ledger) = wire(data_dir, config).await?;
    let result = playbooks_dispatch(&response, command, json_out).await;
    ledger.close().await;
    result
}

async fn playbooks_dispatch(response: &Response, command: PlaybooksCommand, json_out: bool) -> anyhow::Result<()> {
    let mut out = crate::out::stdout();
    match command {
        PlaybooksCommand::Check { .. } => {}
        PlaybooksCommand::List => {
            for p in response.playbooks() {
                if json_out {
                    writeln!(out, "{}", p.summary())?;
                } else {
                    let steps: Vec<String> = p
                        .steps
                        .iter()
                        .map(|s| format!("{}{}", s.action, if s.approval.is_some() { " (approval)" } else { "" }))
                        .collect();
                    writeln!(
                        out,
                        "{:<24} on {:<18} {}{}",
                        p.id,
                        p.trigger.on.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
                        steps.join(" → "),
                        if p.enabled { "" } else { "  [disabled]" }
                    )?;
                }
            }
            if !json_out && response.playbooks().is_empty() {
                writeln!(out, "no playbooks: list files or folders in `[respond] playbooks`")?;
            }
        }
        PlaybooksCommand::Run {
            playbook,
            incident,
            dry_run,
        } => {
            let run = response
                .run_playbook(
                    &playbook,
                    incident,
                    &Voter::person(&instance::cli_actor(), Role::Admin),
                    dry_run,
                )
                .await?;
            print_run(&mut out, &run, json_out)?;
        }
        PlaybooksCommand::Runs { incident, limit } => {
            for r in response.runs(incident, None, limit).await? {
                if json_out {
                    writeln!(out, "{}", serde_json::to_string(&r)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<12} {:<20} incident {}  {} action(s){}",
                        r.id,
                        r.status.as_str(),
                        r.playbook,
                        r.incident,
                        r.actions.len(),
                        if r.dry_run { "  [dry run]" } else { "" }
                    )?;
                }
            }
        }
        PlaybooksCommand::Show { run } => {
            let r = response.run(run).await?;
            print_run(&mut out, &r, json_out)?;
        }
    }
    Ok(())
}

/// Prints a run: its steps' actions with outcome and detail, then its notes.
pub fn print_run(out: &mut impl Write, r: &Run, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "run {}  playbook {}  incident {}  {}{}",
        r.id,
        r.playbook,
        r.incident,
        r.status.as_str(),
        if r.dry_run { "  [dry run]" } else { "" }
    )?;
    for a in &r.actions {
        writeln!(
            out,
            "  {:<10} {:<16} {:<22} {:<18} {}",
            a.step,
            a.action.as_str(),
            a.target.as_deref().unwrap_or("-"),
            a.state.as_str(),
            a.detail
        )?;
        if let (Some(g), Some(id)) = (&a.gate, a.approval) {
            writeln!(
                out,
                "  {:<10} waits for approval {id}: {} × {} within {}s ({})",
                "", g.rule.approvers, g.rule.role, g.rule.timeout_secs, g.reason
            )?;
        } else if let (Some(g), true) = (&a.gate, r.dry_run) {
            writeln!(
                out,
                "  {:<10} would wait for approval: {} × {} within {}s ({})",
                "", g.rule.approvers, g.rule.role, g.rule.timeout_secs, g.reason
            )?;
        }
    }
    for n in &r.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

fn print_approval(out: &mut impl Write, a: &Approval) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}  {:<9} playbook {} step {}  incident {}  needs {} × {} (has {})  until {:.0}",
        a.id,
        a.status.as_str(),
        a.playbook,
        a.step,
        a.incident,
        a.rule.approvers,
        a.rule.role,
        a.votes.iter().filter(|v| v.approve).count(),
        a.deadline
    )?;
    writeln!(out, "    why: {}", a.reason)?;
    for p in &a.actions {
        writeln!(out, "    {}", p.prepared)?;
    }
    for v in &a.votes {
        writeln!(
            out,
            "    {} by {} at {:.0}{}",
            if v.approve { "approved" } else { "rejected" },
            v.actor,
            v.time,
            if v.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", v.comment)
            }
        )?;
    }
    Ok(())
}

pub async fn approvals(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: ApprovalsCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    let (response, ledger) = wire(data_dir, config).await?;
    let result = approvals_dispatch(&response, command, json_out).await;
    ledger.close().await;
    result
}

async fn approvals_dispatch(response: &Response, command: ApprovalsCommand, json_out: bool) -> anyhow::Result<()> {
    let mut out = crate::out::stdout();
    match command {
        ApprovalsCommand::List { status, limit } => {
            let status = ApprovalStatus::filter(&status).map_err(anyhow::Error::msg)?;
            let list = response.approvals(status, None, limit).await?;
            for a in &list {
                if json_out {
                    writeln!(out, "{}", serde_json::to_string(a)?)?;
                } else {
                    print_approval(&mut out, a)?;
                }
            }
            if list.is_empty() && !json_out {
                writeln!(out, "no approvals")?;
            }
        }
        ApprovalsCommand::Approve { id, comment } => vote(response, &mut out, id, true, &comment, json_out).await?,
        ApprovalsCommand::Reject { id, comment } => vote(response, &mut out, id, false, &comment, json_out).await?,
    }
    Ok(())
}

/// A vote from the command line: the local user, with the full authority of the instance's
/// owner (`admin`); four eyes still hold (the user who started a run cannot approve it).
async fn vote(
    response: &Response,
    out: &mut impl Write,
    id: EventId,
    approve: bool,
    comment: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let (approval, run) = response
        .vote(
            id,
            &Voter::person(&instance::cli_actor(), Role::Admin),
            approve,
            comment,
        )
        .await
        .with_context(|| format!("approval {id}"))?;
    if json_out {
        writeln!(out, "{}", json!({"approval": approval, "run": run}))?;
    } else {
        print_approval(out, &approval)?;
        print_run(out, &run, false)?;
    }
    Ok(())
}

//! `rempart gateway`: the sovereignty gateway's policy, read from the configuration.

use std::io::Write;

use clap::Subcommand;
use rempart_config::Config;
use rempart_gateway::policy;
use rempart_model::DataClass;

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Which providers may receive a request of each data class on each route, and why not:
    /// the policy of `[gateway]`, decided without sending anything
    Policy {
        /// Only this class (a TLP label such as `TLP:AMBER`, or one of `gateway.levels`)
        #[arg(long)]
        class: Option<String>,
        /// Only this route (`triage` or `rempart/triage`)
        #[arg(long)]
        route: Option<String>,
    },
}

pub fn gateway(config: &Config, command: GatewayCommand, json: bool) -> anyhow::Result<()> {
    match command {
        GatewayCommand::Policy { class, route } => policy_table(config, class, route, json),
    }
}

fn policy_table(config: &Config, class: Option<String>, route: Option<String>, json: bool) -> anyhow::Result<()> {
    let g = &config.gateway;
    let classes: Vec<DataClass> = match &class {
        Some(label) => vec![
            g.class(label)
                .ok_or_else(|| anyhow::anyhow!("`{label}` is neither a TLP label nor a level of `gateway.levels`"))?,
        ],
        None => DataClass::ALL.to_vec(),
    };
    let wanted = route.as_deref().map(|r| r.strip_prefix("rempart/").unwrap_or(r));
    let routes: Vec<_> = g.routes.iter().filter(|r| wanted.is_none_or(|w| w == r.name)).collect();
    if routes.is_empty() {
        anyhow::bail!(match wanted {
            Some(w) => format!("no route is named `{w}`"),
            None => "no `[[gateway.routes]]` are configured".to_owned(),
        });
    }
    let mut out = crate::out::stdout();
    for r in routes {
        for &c in &classes {
            let verdicts: Vec<policy::Verdict> = r
                .chain
                .iter()
                .filter_map(|name| g.providers.iter().find(|p| &p.name == name))
                .map(|p| policy::decide(g, p, c, &r.purpose, p.revoked))
                .collect();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"route": format!("rempart/{}", r.name), "class": c.tlp_label(), "verdicts": verdicts})
                )?;
            } else {
                writeln!(out, "rempart/{} at {}:", r.name, c.tlp_label())?;
                for v in &verdicts {
                    let mark = if v.allowed { "allowed" } else { "refused" };
                    writeln!(out, "  {:<20} {mark:<8} {}", v.provider, v.reason)?;
                }
                if !verdicts.iter().any(|v| v.allowed) {
                    writeln!(out, "  → refused: nothing is sent")?;
                }
            }
        }
    }
    Ok(())
}

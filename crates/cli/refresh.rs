//! `--refresh` (`plan show`, `plan diff`) and `plan drift`: what the targets hold, read
//! through JOB with `plan_executor::refresh`, and how it is printed (text, Markdown, the
//! `refresh` object of the JSON documents).

use plan_executor::{Convergence, PushRefresh, Refresh, RefreshSettings, RefreshedPush};
use plan_parser::Plan;
use serde::Serialize;

use crate::args::ResolveArgs;
use crate::render::printable;

/// A refresh and where it was read: the `refresh` object of `plan show --refresh` and `plan
/// diff --refresh` JSON (`plan schema --output show|diff` describes it from this type).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Refreshed {
    /// The endpoint's URL, or `sandbox DIR`.
    pub(crate) source: String,
    /// Per push, and the jobs it took.
    #[serde(flatten)]
    pub(crate) refresh: Refresh,
}

/// Reads what the targets of `plan` hold, at the sandbox or endpoint of `args`. `Err` is a
/// target that cannot be opened or reached, or a refresh JOB refused (exit 4).
pub(crate) fn refresh(args: &ResolveArgs, plan: &Plan) -> anyhow::Result<Refreshed> {
    anyhow::ensure!(
        args.sandbox.is_some()
            || args.endpoint.is_some()
            || std::env::var_os("BK_JOB_ENDPOINT").is_some(),
        "a refresh reads the targets through JOB: pass `--sandbox DIR`, or `--endpoint URL` (or set BK_JOB_ENDPOINT)"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, source, sim) = crate::resolve::connect(args).await?;
        let refreshed = async {
            client
                .probe()
                .await
                .map_err(|e| anyhow::anyhow!("{source} is unreachable: {e}"))?;
            // The error's text already quotes its cause: as a chain, `{:#}` would say it twice.
            let refresh = plan_executor::refresh(&client, plan, RefreshSettings::default())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Refreshed {
                source: source.clone(),
                refresh,
            })
        }
        .await;
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        refreshed
    })
}

/// The hosts that differ, and how many were read: `3 of 6 hosts differ`.
fn verdict_line(verdict: &PushRefresh) -> String {
    match verdict {
        PushRefresh::UpToDate { hosts } => format!("up to date ({hosts} {})", plural(*hosts)),
        PushRefresh::Differs {
            hosts, differing, ..
        } => {
            format!("{} of {hosts} {} differ", differing.len(), plural(*hosts))
        }
        PushRefresh::CannotTell { reason, .. } => {
            format!("cannot tell, always pushed: {}", printable(reason))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "host" } else { "hosts" }
}

/// One differing host: `0:10.0.0.3: missing /data/app.tgz; different content /data/b`.
fn host_line(host: &plan_executor::HostDifference) -> String {
    let what = match &host.unreadable {
        Some(why) => format!(
            "could not be read, counted as differing ({})",
            printable(why)
        ),
        None => host
            .files
            .iter()
            .map(|f| format!("{} {}", f.found, printable(&f.path)))
            .collect::<Vec<_>>()
            .join("; "),
    };
    format!("{}: {what}", host.host)
}

/// Differing hosts listed per push, at most this many (the JSON lists every one).
const LISTED_HOSTS: usize = 50;

/// The refresh as text, after `plan show`'s.
pub(crate) fn text(refreshed: &Refreshed) -> String {
    let mut out = format!(
        "\nRefresh ({}, {} JOB script {}):\n",
        refreshed.source,
        refreshed.refresh.jobs.len(),
        if refreshed.refresh.jobs.len() == 1 {
            "job"
        } else {
            "jobs"
        }
    );
    for RefreshedPush {
        push: name,
        verdict,
    } in &refreshed.refresh.pushes
    {
        out.push_str(&format!("  {name}: {}\n", verdict_line(verdict)));
        for line in differing_lines(verdict) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

fn differing_lines(verdict: &PushRefresh) -> Vec<String> {
    let PushRefresh::Differs { differing, .. } = verdict else {
        return Vec::new();
    };
    let mut lines: Vec<String> = differing.iter().take(LISTED_HOSTS).map(host_line).collect();
    if differing.len() > LISTED_HOSTS {
        lines.push(format!("... and {} more", differing.len() - LISTED_HOSTS));
    }
    lines
}

/// The refresh as a section of the pull-request comment.
pub(crate) fn markdown(refreshed: &Refreshed) -> String {
    let mut out = format!(
        "\n### What a merge would move\n\nRefreshed at {} ({} JOB script jobs).\n\n| push | on the targets |\n|---|---|\n",
        escape_md(&refreshed.source),
        refreshed.refresh.jobs.len()
    );
    for RefreshedPush {
        push: name,
        verdict,
    } in &refreshed.refresh.pushes
    {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            escape_md(name),
            escape_md(&verdict_line(verdict))
        ));
    }
    for RefreshedPush {
        push: name,
        verdict,
    } in &refreshed.refresh.pushes
    {
        let lines = differing_lines(verdict);
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n<details><summary><code>{}</code>: hosts that differ</summary>\n\n",
            escape_md(name)
        ));
        for line in lines {
            out.push_str(&format!("- {}\n", escape_md(&line)));
        }
        out.push_str("\n</details>\n");
    }
    out
}

fn escape_md(text: &str) -> String {
    printable(text)
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What `--converge` does with each push, for the run's output.
pub(crate) fn convergence_lines(pushes: &[(String, Convergence)]) -> Vec<String> {
    pushes
        .iter()
        .map(|(name, c)| match c {
            Convergence::UpToDate => format!("{name}: up to date, not pushed"),
            Convergence::Narrowed { hosts, skipped } => format!(
                "{name}: {} {} differ{}, pushed to {} only{}",
                hosts.len(),
                plural(hosts.len()),
                if hosts.len() == 1 { "s" } else { "" },
                if hosts.len() == 1 { "it" } else { "them" },
                skipped_part(skipped)
            ),
            Convergence::Whole(why) => {
                format!("{name}: pushed to every target: {}", printable(why))
            }
        })
        .collect()
}

/// `; not pushed, up to date at the refresh: 0:10.0.2.1, 0:10.0.2.2`: the targets
/// `--converge` leaves alone, even if one changed since the refresh read it.
fn skipped_part(skipped: &[String]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut listed = skipped
        .iter()
        .take(LISTED_HOSTS)
        .map(|h| printable(h))
        .collect::<Vec<_>>()
        .join(", ");
    if skipped.len() > LISTED_HOSTS {
        listed.push_str(&format!(" and {} more", skipped.len() - LISTED_HOSTS));
    }
    format!("; not pushed, up to date at the refresh: {listed}")
}

/// The refresh the last unfinished `--converge` run of `plan` recorded in its journal (its
/// `refresh` lines): `--resume --converge` narrows the plan the same way with it.
pub(crate) fn journaled(state_dir: &std::path::Path, plan: &Plan) -> anyhow::Result<Refresh> {
    let history = plan_executor::latest_run(state_dir, &plan.name.value)?
        .filter(|h| !h.is_complete())
        .ok_or_else(|| anyhow::anyhow!("plan `{}` has no unfinished run", plan.name.value))?;
    anyhow::ensure!(
        !history.refresh.is_empty(),
        "its journal `{}` records no refresh (it was not a `--converge` run)",
        history.path.display()
    );
    Ok(Refresh {
        pushes: history.refresh,
        jobs: Vec::new(),
    })
}

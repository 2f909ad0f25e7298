//! `plan import`: BK-JOB job plans (`get_job_plan_detail`) turned into one plan file, or,
//! without `--job-plan`, the business's job plans listed (`get_job_plan_list`).
//!
//! The conversion (`import/convert.rs`) is pure; this file reads JOB, keeps JOB's step order
//! where the file flow does not already imply it, checks the result as `plan check` would,
//! writes it and says on stderr what was and was not carried over.

mod convert;
mod write;

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use plan_bkjob::job_plan::{JobPlanDetail, plan_step_type};
use plan_bkjob::{Client, code};
use plan_graph::PlanGraph;
use plan_parser::ParseOptions;

use crate::args::{ImportArgs, ResolveArgs};
use crate::diagnostics::print_problems;
use crate::exit::ExitStatus;
use crate::printer::{Printer, write_stdout};

use convert::{Import, Item, Note};

/// The name the imported text goes by in its own diagnostics before it is written.
const CHECKED_AS: &str = "imported.toml";

/// The most steps of one job plan that are converted: JOB's own editor keeps plans far below
/// it, and the ordering check's cost grows with the square of the pushes.
const MAX_STEPS: usize = 1_000;

pub(crate) fn run(args: &ImportArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::ensure!(
        args.sandbox.is_some() || args.endpoint.is_some(),
        "plan import reads JOB: pass `--sandbox DIR`, or `--endpoint URL` (or set BK_JOB_ENDPOINT)"
    );
    let target = ResolveArgs {
        sandbox: args.sandbox.clone(),
        endpoint: args.endpoint.clone(),
        gateway: args.gateway,
        ..ResolveArgs::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let read = runtime.block_on(async {
        let (client, source, sim) = crate::resolve::connect(&target).await?;
        let read = async {
            client
                .probe()
                .await
                .map_err(|e| anyhow::anyhow!("{source} is unreachable: {e}"))?;
            if args.job_plans.is_empty() {
                list(&client, args.bk_biz_id).await.map(Read::Listing)
            } else {
                details(&client, args.bk_biz_id, &args.job_plans)
                    .await
                    .map(Read::Plans)
            }
        }
        .await;
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        read
    })?;
    match read {
        Read::Listing(text) => {
            write_stdout(&text)?;
            Ok(ExitStatus::Success)
        }
        Read::Plans(plans) => import(args, &plans, printer),
    }
}

enum Read {
    Listing(String),
    Plans(Vec<JobPlanDetail>),
}

/// The business's job plans as a table: id, name, steps (file steps), last change.
async fn list(client: &Client, bk_biz_id: i64) -> anyhow::Result<String> {
    let listing = client.job_plans(bk_biz_id).await.map_err(|e| {
        read_error(
            e,
            format!("cannot list the job plans of business {bk_biz_id}"),
        )
    })?;
    let mut rows = vec![[
        "ID".to_owned(),
        "NAME".to_owned(),
        "STEPS".to_owned(),
        "LAST MODIFIED".to_owned(),
    ]];
    let ids: Vec<i64> = listing.plans.iter().map(|plan| plan.id).collect();
    let steps = step_counts(client, bk_biz_id, &ids).await?;
    for (plan, (all, files)) in listing.plans.iter().zip(steps) {
        let modified = match (plan.last_modify_time, &plan.last_modify_user) {
            (Some(at), Some(user)) => format!("{} by {}", time(at), convert::printable(user)),
            (Some(at), None) => time(at),
            (None, _) => "-".to_owned(),
        };
        rows.push([
            plan.id.to_string(),
            convert::printable(&plan.name),
            format!("{all} ({files} file)"),
            modified,
        ]);
    }
    let mut text = table(&rows);
    if listing.plans.is_empty() {
        text = format!("business {bk_biz_id} has no job plans\n");
    } else if (listing.plans.len() as i64) < listing.total {
        text.push_str(&format!(
            "({} of {} job plans listed: plan import reads at most {})\n",
            listing.plans.len(),
            listing.total,
            plan_bkjob::JOB_PLANS_MAX
        ));
    }
    Ok(text)
}

/// How many job plans' details a listing reads at once: JOB answers each on its own, and a
/// business with thousands of plans is listed in a fraction of the time one by one takes.
const LIST_CONCURRENCY: usize = 8;

/// Each plan's number of steps and of file steps, in `ids`' order.
async fn step_counts(
    client: &Client,
    bk_biz_id: i64,
    ids: &[i64],
) -> anyhow::Result<Vec<(usize, usize)>> {
    let mut counts = vec![(0, 0); ids.len()];
    let mut reading = tokio::task::JoinSet::new();
    let mut next = 0;
    loop {
        while reading.len() < LIST_CONCURRENCY && next < ids.len() {
            let (client, id, index) = (client.clone(), ids[next], next);
            reading.spawn(async move { (index, id, client.job_plan_detail(bk_biz_id, id).await) });
            next += 1;
        }
        let Some(read) = reading.join_next().await else {
            return Ok(counts);
        };
        let (index, id, detail) = read?;
        let detail = detail.with_context(|| format!("cannot read job plan {id}"))?;
        let files = detail
            .step_list
            .iter()
            .filter(|step| step.step_type == plan_step_type::FILE)
            .count();
        counts[index] = (detail.step_list.len(), files);
    }
}

fn time(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).map_or_else(
        || epoch_ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Columns padded to their widest cell.
fn table(rows: &[[String; 4]]) -> String {
    // Padded by terminal columns, not characters: a CJK character takes two.
    let columns = |cell: &str| unicode_width::UnicodeWidthStr::width(cell);
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| columns(&r[c])).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - columns(cell))))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// A failed read of JOB, with the fix when the endpoint is not JOB at all (most often a
/// gateway URL without its `/api/bk-job/<stage>` path, which `--gateway` does not add).
fn read_error(e: plan_bkjob::ApiError, what: String) -> anyhow::Error {
    if e.is_not_bk_job() {
        anyhow::anyhow!(
            "{what}: {e}\n  help: the endpoint does not answer as BK-JOB's ESB or API gateway: check the URL: ESB's base URL (`https://paas.example.com`), or the gateway's ending in `/api/bk-job/<stage>` (`--gateway` alone does not add that path)"
        )
    } else {
        anyhow::Error::from(e).context(what)
    }
}

/// Each asked plan's detail, once each; an unknown plan stops the import.
async fn details(
    client: &Client,
    bk_biz_id: i64,
    ids: &[i64],
) -> anyhow::Result<Vec<JobPlanDetail>> {
    let mut seen = std::collections::HashSet::new();
    let mut plans = Vec::new();
    for &id in ids.iter().filter(|id| seen.insert(**id)) {
        match client.job_plan_detail(bk_biz_id, id).await {
            Ok(plan) if plan.step_list.len() > MAX_STEPS => anyhow::bail!(
                "job plan {id} has {} steps; plan import converts at most {MAX_STEPS} per job plan",
                plan.step_list.len()
            ),
            Ok(plan) => plans.push(plan),
            Err(e) if e.code() == Some(code::TASK_PLAN_NOT_EXIST) => anyhow::bail!(
                "job plan {id} does not exist in business {bk_biz_id} (JOB code {}); `plan import --bk-biz-id {bk_biz_id}` lists its job plans",
                code::TASK_PLAN_NOT_EXIST
            ),
            Err(e) => return Err(read_error(e, format!("cannot read job plan {id}"))),
        }
    }
    Ok(plans)
}

/// Converts, orders, checks and writes; the summary goes to stderr.
fn import(
    args: &ImportArgs,
    plans: &[JobPlanDetail],
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let mut imported = convert::import(plans);
    let (name, description) = naming(plans);
    let header = write::Header {
        name: &name,
        description: &description,
        bk_biz_id: args.bk_biz_id,
    };
    let unordered = write::plan_file(&header, &imported);
    match checked(&unordered, &imported) {
        Ok(graph) => keep_jobs_order(&mut imported, &graph),
        // Unordered, the pushes may not even pass (two steps writing the same file is what
        // JOB's order settles): each then waits for the one JOB runs before it.
        Err(_) => follow_jobs_order(&mut imported),
    }
    let text = write::plan_file(&header, &imported);
    let verdict = checked(&text, &imported);
    match &args.output {
        // Beside FILE, then renamed: a reader (or an interrupted import) never leaves half a
        // plan in place of the one that was there.
        Some(path) => {
            let mut temporary = path.as_os_str().to_owned();
            temporary.push(".tmp");
            fs_err::write(&temporary, &text)?;
            fs_err::rename(&temporary, path)?;
        }
        None => write_stdout(&text)?,
    }
    summary(&imported, args.output.as_deref(), printer.quiet)?;
    match verdict {
        Ok(_) => Ok(ExitStatus::Success),
        Err(rejected) => {
            print_problems(printer, &rejected.sources, &rejected.problems);
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "plan import: the imported plan does not pass plan check (above); it was written as it is, to be fixed by hand"
            )?;
            Ok(ExitStatus::Invalid)
        }
    }
}

/// The plan's name and description: one job plan's own name, or every id.
fn naming(plans: &[JobPlanDetail]) -> (String, String) {
    let described: Vec<String> = plans
        .iter()
        .map(|p| format!("{} `{}`", p.summary.id, convert::printable(&p.summary.name)))
        .collect();
    let description = format!("Imported from BK-JOB job plan {}", described.join(", "));
    let name = match plans {
        [one] => convert::plan_slug(one),
        many => {
            let ids: Vec<String> = many.iter().map(|p| p.summary.id.to_string()).collect();
            convert::slug(&format!("job-plans-{}", ids.join("-")))
        }
    };
    (name, description)
}

/// The text as `plan check` reads it: the ordered graph, or every problem. A variable JOB
/// requires and the job plan leaves empty is written undefined; it is checked as
/// `--var NAME=` would give it, so what is checked is the rest of the plan.
fn checked(text: &str, imported: &Import) -> Result<PlanGraph, crate::load::Rejected> {
    let options = ParseOptions {
        vars: imported
            .vars
            .iter()
            .filter(|(_, var)| var.needs_value)
            .map(|(name, _)| (name.clone(), String::new()))
            .collect(),
        api: None,
    };
    let parsed = plan_parser::parse_str(CHECKED_AS, text, &options).map_err(|errors| {
        crate::load::Rejected {
            sources: errors.sources().clone(),
            problems: errors.problems().to_vec(),
        }
    })?;
    plan_graph::build(&parsed.plan).map_err(|errors| crate::load::Rejected {
        sources: errors.sources().clone(),
        problems: errors.problems().to_vec(),
    })
}

/// JOB runs a job plan's steps one after another. Each push waits for the push JOB runs
/// before it: already so when the file flow orders them (the second reads what the first
/// delivers), by an explicit `after` otherwise.
fn keep_jobs_order(imported: &mut Import, graph: &PlanGraph) {
    let mut notes = Vec::new();
    for item in &mut imported.items {
        let Item::Push(push) = item else { continue };
        let Some(previous) = push.previous.clone() else {
            continue;
        };
        if graph.has_path(&previous, &push.name) {
            continue;
        }
        if graph.has_path(&push.name, &previous) {
            notes.push(Note {
                carried: false,
                text: format!(
                    "JOB runs push `{previous}` before `{}`, but `{previous}` reads what `{}` delivers, so plan runs `{}` first",
                    push.name, push.name, push.name
                ),
            });
            continue;
        }
        push.after = Some(previous);
    }
    imported.notes.extend(notes);
}

/// Every push after the push JOB runs before it, for when the file flow cannot be read.
fn follow_jobs_order(imported: &mut Import) {
    for item in &mut imported.items {
        if let Item::Push(push) = item {
            push.after = push.previous.clone();
        }
    }
}

/// What was carried over and what was not (with `--quiet`, only what was not), then the
/// count.
fn summary(imported: &Import, output: Option<&Path>, quiet: bool) -> anyhow::Result<()> {
    let pushes = imported
        .items
        .iter()
        .filter(|item| matches!(item, Item::Push(_)))
        .count();
    let mut text = String::new();
    for note in imported.notes.iter().filter(|n| !(quiet && n.carried)) {
        let mark = if note.carried {
            "carried"
        } else {
            "NOT carried"
        };
        text.push_str(&format!("  {mark}: {}\n", note.text));
    }
    let left = imported.notes.iter().filter(|n| !n.carried).count();
    let whither = output.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let pushes = format!(
        "plan import: {pushes} push{} written to {whither}",
        if pushes == 1 { "" } else { "es" }
    );
    text.push_str(&match left {
        0 => format!("{pushes}; everything was carried over\n"),
        1 => format!(
            "{pushes}; 1 item not carried over (listed above, and as a comment in the file)\n"
        ),
        n => format!(
            "{pushes}; {n} items not carried over (listed above, and as comments in the file)\n"
        ),
    });
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn listing_columns_line_up_under_cjk_names() {
        let row = |id: &str, name: &str| {
            [
                id.to_owned(),
                name.to_owned(),
                "1 (1 file)".to_owned(),
                "-".to_owned(),
            ]
        };
        let text = table(&[row("ID", "NAME"), row("1", "发布文件"), row("2", "web")]);
        let steps_at: Vec<usize> = text
            .lines()
            .skip(1)
            .map(|line| {
                let before = &line[..line.find("1 (1 file)").expect("steps column")];
                unicode_width::UnicodeWidthStr::width(before)
            })
            .collect();
        assert_eq!(steps_at, [14, 14], "{text}");
    }
}

//! A JOB job plan turned into what a plan file says: one push per file step, host groups,
//! variables, and every step or variable that cannot be carried over with the reason why.
//! Pure: no I/O, so every rule is unit-tested on hand-written job plans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use plan_bkjob::job_plan::{
    FileStep, GlobalVar, JobPlanDetail, JobPlanStep, PlanAccount, PlanFileSource, PlanServer,
    global_var_type, plan_step_type,
};

pub(crate) use crate::render::printable;

/// The longest name plan accepts for a plan or a push.
const MAX_NAME: usize = 64;

/// JOB's timeout range, which plan shares.
const TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 1..=259_200;

/// The speed limits plan accepts (MB/s).
const SPEED_RANGE: std::ops::RangeInclusive<i64> = 1..=2_097_151;

/// Everything imported from one or more job plans, in file order.
#[derive(Debug, Default)]
pub(crate) struct Import {
    /// `[vars]`: the string variables file steps use, with their value.
    pub(crate) vars: BTreeMap<String, VarValue>,
    /// `[hosts.NAME]`, in first-use order.
    pub(crate) groups: Vec<(String, Group)>,
    /// Pushes and the comments standing for steps that are not pushes, in JOB's order.
    pub(crate) items: Vec<Item>,
    /// What was and was not carried over, for the summary.
    pub(crate) notes: Vec<Note>,
    /// The global variables not imported, with why: comments of the file.
    pub(crate) dropped_vars: Vec<String>,
}

/// A `[vars]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarValue {
    pub(crate) value: String,
    /// JOB requires a value and the plan gives none: the user must pass `--var`.
    pub(crate) needs_value: bool,
}

/// A host group's static hosts (all by address or all by id) and CMDB selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Group {
    pub(crate) ips: Vec<String>,
    pub(crate) host_ids: Vec<i64>,
    pub(crate) dynamic_groups: Vec<String>,
    pub(crate) topo_nodes: Vec<String>,
}

/// One entry of the plan file's body.
#[derive(Debug)]
pub(crate) enum Item {
    /// The header comment of a job plan's steps.
    PlanHeader { id: i64, name: String },
    /// A file step as a push.
    Push(Push),
    /// A step that is not a push: its comment lines.
    Comment(Vec<String>),
}

/// A `[[push]]`.
#[derive(Debug, Clone)]
pub(crate) struct Push {
    pub(crate) name: String,
    /// The push JOB runs just before this one in the same job plan.
    pub(crate) previous: Option<String>,
    /// Set once the ordering pass decides `after` is needed.
    pub(crate) after: Option<String>,
    pub(crate) sources: Vec<Source>,
    pub(crate) target_group: String,
    pub(crate) target_path: String,
    pub(crate) target_account: Account,
    pub(crate) timeout: Option<i64>,
    pub(crate) upload_speed_limit: Option<i64>,
    pub(crate) download_speed_limit: Option<i64>,
    pub(crate) transfer_mode: Option<&'static str>,
}

/// A `from` entry.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Hosts {
        group: String,
        files: Vec<String>,
        account: Account,
    },
    FileSource {
        id: i64,
        files: Vec<String>,
    },
}

/// An execution account: by alias (what plan writes by default) or by JOB id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Account {
    Alias(String),
    Id(i64),
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) carried: bool,
    pub(crate) text: String,
}

/// Imports `plans` (each keeps its own step order; several get their plan's name as a push
/// name prefix).
pub(crate) fn import(plans: &[JobPlanDetail]) -> Import {
    let mut import = Import::default();
    let mut names = Names::default();
    let prefix_names = plans.len() > 1;
    for plan in plans {
        import.items.push(Item::PlanHeader {
            id: plan.summary.id,
            name: printable(&plan.summary.name),
        });
        let prefix = prefix_names.then(|| plan_slug(plan));
        let mut vars = HashMap::new();
        for var in &plan.global_var_list {
            vars.entry(var.name.as_str()).or_insert(var);
        }
        PlanImport {
            plan,
            vars,
            import: &mut import,
            names: &mut names,
            prefix,
        }
        .run();
    }
    import
}

/// The plan's name in plan's alphabet, or `job-plan-ID`.
pub(crate) fn plan_slug(plan: &JobPlanDetail) -> String {
    let slug = slug(&plan.summary.name);
    if slug.is_empty() {
        format!("job-plan-{}", plan.summary.id)
    } else {
        slug
    }
}

/// Names handed out so far: pushes and groups each unique.
#[derive(Debug, Default)]
struct Names {
    pushes: HashSet<String>,
    groups: HashSet<String>,
}

fn unique(taken: &mut HashSet<String>, wanted: &str) -> String {
    let mut name = wanted.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("-{n}");
        let stem: String = wanted.chars().take(MAX_NAME - suffix.len()).collect();
        name = format!("{stem}{suffix}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

struct PlanImport<'a> {
    plan: &'a JobPlanDetail,
    /// The plan's global variables by name (the first of a name, should JOB repeat one).
    vars: HashMap<&'a str, &'a GlobalVar>,
    import: &'a mut Import,
    names: &'a mut Names,
    prefix: Option<String>,
}

impl<'a> PlanImport<'a> {
    fn run(mut self) {
        let mut previous: Option<String> = None;
        let mut used_vars: HashSet<String> = HashSet::new();
        for (index, step) in self.plan.step_list.iter().enumerate() {
            let label = step_label(index, step);
            let (groups_before, notes_before) = (self.import.groups.len(), self.import.notes.len());
            match self.step(index, step, &mut used_vars) {
                Ok(mut push) => {
                    push.previous = previous.replace(push.name.clone());
                    self.note(true, format!("{label} -> push `{}`", push.name));
                    self.import.items.push(Item::Push(push));
                }
                Err(reasons) => {
                    // The groups a step that is not imported would have used go with it.
                    for (name, _) in self.import.groups.drain(groups_before..) {
                        self.names.groups.remove(&name);
                    }
                    self.import.notes.truncate(notes_before);
                    let mut lines = vec![format!("{label}: not imported:")];
                    lines.extend(reasons.iter().map(|r| format!("  {r}")));
                    self.note(false, format!("{label}: {}", reasons.join("; ")));
                    self.import.items.push(Item::Comment(lines));
                }
            }
        }
        self.note_unused_vars(&used_vars);
    }

    fn note(&mut self, carried: bool, text: String) {
        let plan = &self.plan.summary;
        self.import.notes.push(Note {
            carried,
            text: format!("job plan {} `{}`: {text}", plan.id, printable(&plan.name)),
        });
    }

    /// A step as a push, or every reason it cannot be one.
    fn step(
        &mut self,
        index: usize,
        step: &JobPlanStep,
        used_vars: &mut HashSet<String>,
    ) -> Result<Push, Vec<String>> {
        match (step.step_type, &step.file_info) {
            (plan_step_type::FILE, Some(file)) => self.file_step(index, step, file, used_vars),
            (plan_step_type::FILE, None) => Err(vec!["a file step without its file settings".into()]),
            (plan_step_type::SCRIPT, _) => Err(vec![format!(
                "a {} step: plan distributes files and runs no scripts; run it yourself at this point",
                script_kind(step)
            )]),
            (plan_step_type::APPROVAL, _) => Err(vec![
                "a manual confirmation: plan has no pause for a person; a `gate` or `rolling` with mode \"manual\" may stand for it"
                    .into(),
            ]),
            (other, _) => Err(vec![format!("a step of type {other}, which plan does not know")]),
        }
    }

    fn file_step(
        &mut self,
        index: usize,
        step: &JobPlanStep,
        file: &FileStep,
        used_vars: &mut HashSet<String>,
    ) -> Result<Push, Vec<String>> {
        let mut reasons = Vec::new();
        let mut uses = BTreeSet::new();
        let name = self.push_name(index, step);
        let mut sources = Vec::new();
        if file.file_source_list.is_empty() {
            reasons.push("it has no file source".to_owned());
        }
        for (n, source) in file.file_source_list.iter().enumerate() {
            let group_name = if file.file_source_list.len() == 1 {
                format!("{name}-sources")
            } else {
                format!("{name}-sources-{}", n + 1)
            };
            match self.source(source, &group_name, &mut uses) {
                Ok(source) => sources.push(source),
                Err(reason) => reasons.push(format!("source {}: {reason}", n + 1)),
            }
        }
        let destination = &file.file_destination;
        let target_path = self.text(&destination.path, "the target path", &mut uses);
        let target_account = account(destination.account.as_ref());
        let target_group = destination
            .server
            .as_ref()
            .ok_or_else(|| "no target hosts".to_owned())
            .and_then(|server| self.hosts(server, &format!("{name}-targets")));
        let settings = settings(file);
        let (target_path, target_account, target_group, settings) =
            match (target_path, target_account, target_group, settings) {
                (Ok(path), Ok(account), Ok(group), Ok(settings)) if reasons.is_empty() => {
                    (path, account, group, settings)
                }
                (path, account, group, settings) => {
                    reasons.extend(path.err().map(|r| format!("target: {r}")));
                    reasons.extend(account.err().map(|r| format!("target: {r}")));
                    reasons.extend(group.err().map(|r| format!("target: {r}")));
                    reasons.extend(settings.err());
                    return Err(reasons);
                }
            };
        if target_path.is_empty() {
            return Err(vec!["target: no target path".into()]);
        }
        let mut vars = HashSet::new();
        for reference in uses {
            match reference {
                Reference::Var(name) => {
                    vars.insert(name);
                }
                Reference::Unknown(name) => self.note(
                    true,
                    format!(
                        "{}: `${{{name}}}` names no variable of the job plan: written as `$${{{name}}}`, the text JOB sends",
                        step_label(index, step)
                    ),
                ),
            }
        }
        used_vars.extend(vars.iter().cloned());
        self.carry_vars(&vars);
        Ok(Push {
            name: unique(&mut self.names.pushes, &name),
            previous: None,
            after: None,
            sources,
            target_group,
            target_path,
            target_account,
            timeout: settings.timeout,
            upload_speed_limit: settings.upload,
            download_speed_limit: settings.download,
            transfer_mode: settings.transfer_mode,
        })
    }

    fn push_name(&self, index: usize, step: &JobPlanStep) -> String {
        let own = slug(&step.name);
        let own = if own.is_empty() {
            format!("step-{}", index + 1)
        } else {
            own
        };
        let name = match &self.prefix {
            Some(prefix) => format!("{prefix}.{own}"),
            None => own,
        };
        name.chars().take(MAX_NAME).collect()
    }

    fn source(
        &mut self,
        source: &PlanFileSource,
        group_name: &str,
        uses: &mut BTreeSet<Reference>,
    ) -> Result<Source, String> {
        if source.file_list.is_empty() {
            return Err("no files".into());
        }
        let files = source
            .file_list
            .iter()
            .map(|file| self.text(file, "a file", uses))
            .collect::<Result<Vec<_>, _>>()?;
        match source.file_type.unwrap_or(plan_bkjob::file_type::SERVER) {
            plan_bkjob::file_type::SERVER => {
                let account = account(source.account.as_ref())?;
                let server = source.server.as_ref().ok_or("no source hosts")?;
                let group = self.hosts(server, group_name)?;
                Ok(Source::Hosts {
                    group,
                    files,
                    account,
                })
            }
            plan_bkjob::file_type::FILE_SOURCE => match source.file_source_id {
                Some(id) if id >= 1 => Ok(Source::FileSource { id, files }),
                _ => Err("a third-party file source without its id".into()),
            },
            2 => Err("a file uploaded to JOB from a browser (file_type 2): plan reads files from hosts or a file source; put the file on a host or in a file source and name it there".into()),
            other => Err(format!("file_type {other}, which plan does not know")),
        }
    }

    /// A step's text with JOB's `${name}`: a string variable stays a reference (and goes to
    /// `[vars]`); a reference to nothing JOB knows is kept literally (`$${`), as JOB leaves
    /// it; any other variable kind makes the step impossible to carry.
    fn text(
        &self,
        text: &str,
        what: &str,
        uses: &mut BTreeSet<Reference>,
    ) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                out.push_str("$${");
                rest = after;
                continue;
            };
            let name = &after[..end];
            match self.var(name) {
                Some(var)
                    if var.var_type == global_var_type::STRING
                        && is_var_name(name)
                        && !plan_parser::looks_like_credential(name) =>
                {
                    uses.insert(Reference::Var(name.to_owned()));
                    out.push_str(&rest[at..at + 2 + end + 1]);
                }
                Some(var) if var.var_type == global_var_type::STRING => {
                    return Err(format!(
                        "{what} uses `${{{}}}`, a name plan refuses for a variable (it reads as a credential, and credentials stay out of plan files)",
                        printable(name)
                    ));
                }
                Some(var) => {
                    return Err(format!(
                        "{what} uses `${{{}}}`, {} variable, which plan has no form for",
                        printable(name),
                        a_var_kind(var.var_type)
                    ));
                }
                None => {
                    uses.insert(Reference::Unknown(printable(name)));
                    out.push_str("$${");
                    out.push_str(&after[..=end]);
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn var(&self, name: &str) -> Option<&'a GlobalVar> {
        self.vars.get(name).copied()
    }

    /// A server as a group name: a host variable's hosts under the variable's name, others
    /// under `wanted`; the same hosts twice share the first group.
    fn hosts(&mut self, server: &PlanServer, wanted: &str) -> Result<String, String> {
        if let Some(variable) = server.variable.as_deref().filter(|v| !v.is_empty()) {
            let var = self.var(variable).ok_or_else(|| {
                format!(
                    "host variable `{}` is not in the job plan",
                    printable(variable)
                )
            })?;
            if var.var_type != global_var_type::HOST_LIST {
                return Err(format!(
                    "`{}` names {} variable where hosts go",
                    printable(variable),
                    a_var_kind(var.var_type)
                ));
            }
            let hosts = var
                .server
                .as_ref()
                .ok_or_else(|| format!("host variable `{}` holds no hosts", printable(variable)))?;
            let group = group_of(hosts)?;
            let wanted = match slug(variable) {
                slug if slug.is_empty() || is_numeric_name(&slug) => wanted.to_owned(),
                slug => slug,
            };
            let name = self.group(group, &wanted);
            self.carry_host_var(variable, &name);
            return Ok(name);
        }
        let group = group_of(server)?;
        Ok(self.group(group, wanted))
    }

    fn group(&mut self, group: Group, wanted: &str) -> String {
        if let Some((name, _)) = self.import.groups.iter().find(|(_, g)| *g == group) {
            return name.clone();
        }
        let name = unique(&mut self.names.groups, wanted);
        if !group.host_ids.is_empty() {
            self.note(
                true,
                format!(
                    "hosts JOB names by CMDB id -> [hosts.{name}] host_ids (v3's host_id_list; `plan show --resolve` names their addresses)"
                ),
            );
        }
        self.import.groups.push((name.clone(), group));
        name
    }

    fn carry_host_var(&mut self, variable: &str, group: &str) {
        let text = format!("host variable `{}` -> [hosts.{group}]", printable(variable));
        if !self.import.notes.iter().any(|n| n.text.ends_with(&text)) {
            self.note(true, text);
        }
    }

    fn carry_vars(&mut self, uses: &HashSet<String>) {
        let mut names: Vec<&String> = uses.iter().collect();
        names.sort();
        for name in names {
            if self.import.vars.contains_key(name) {
                continue;
            }
            let Some(var) = self.var(name) else { continue };
            let value = var.value.clone().unwrap_or_default();
            let needs_value = value.is_empty() && var.required == Some(1);
            let text = if needs_value {
                format!(
                    "string variable `{name}` left undefined (commented out in [vars]): JOB requires a value at run time; pass --var {name}=VALUE to check, show and apply"
                )
            } else {
                format!("string variable `{name}` -> [vars]")
            };
            self.import
                .vars
                .insert(name.clone(), VarValue { value, needs_value });
            self.note(true, text);
        }
    }

    /// Every variable no push carries over, with why.
    fn note_unused_vars(&mut self, used: &HashSet<String>) {
        let host_vars: HashSet<String> = self
            .plan
            .step_list
            .iter()
            .filter_map(|step| step.file_info.as_ref())
            .flat_map(|file| {
                file.file_source_list
                    .iter()
                    .filter_map(|s| s.server.as_ref())
                    .chain(file.file_destination.server.as_ref())
            })
            .filter_map(|server| server.variable.clone())
            .collect();
        for var in &self.plan.global_var_list {
            if used.contains(&var.name) || host_vars.contains(&var.name) {
                continue;
            }
            let name = printable(&var.name);
            let kind = var_kind(var.var_type);
            let text = match var.var_type {
                global_var_type::CIPHER
                | global_var_type::NAMESPACE
                | global_var_type::ASSOCIATIVE_ARRAY
                | global_var_type::INDEX_ARRAY => format!(
                    "{kind} variable `{name}`: not imported: plan has no form for it (no imported push uses it)"
                ),
                _ => format!("{kind} variable `{name}`: not imported: no imported push uses it"),
            };
            self.import
                .dropped_vars
                .push(format!("job plan {}: {text}", self.plan.summary.id));
            self.note(false, text);
        }
    }
}

/// A `${name}` in a step's text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Reference {
    /// A string variable, kept as a reference.
    Var(String),
    /// A name the job plan has no variable for, kept as text.
    Unknown(String),
}

/// Timeouts, speed limits and transfer mode, or why one cannot be carried.
struct Settings {
    timeout: Option<i64>,
    upload: Option<i64>,
    download: Option<i64>,
    transfer_mode: Option<&'static str>,
}

fn settings(file: &FileStep) -> Result<Settings, String> {
    let timeout = match file.timeout {
        Some(t) if !TIMEOUT_RANGE.contains(&t) => {
            return Err(format!("timeout {t} is outside JOB's 1..=259200 seconds"));
        }
        other => other,
    };
    // JOB reads a limit of 0 or less as no limit, as plan reads an absent one.
    let limit = |value: Option<i64>, what: &str| match value {
        Some(v) if v > *SPEED_RANGE.end() => Err(format!("{what} {v} MB/s is above 2097151")),
        Some(v) if v >= 1 => Ok(Some(v)),
        _ => Ok(None),
    };
    let transfer_mode = match file.transfer_mode {
        None => None,
        Some(1) => Some("strict"),
        Some(2) => Some("force"),
        Some(other) => return Err(format!("transfer mode {other}, which plan does not know")),
    };
    Ok(Settings {
        timeout,
        upload: limit(file.source_speed_limit, "source speed limit")?,
        download: limit(file.destination_speed_limit, "target speed limit")?,
        transfer_mode,
    })
}

/// An account as plan names it: the alias JOB's `fast_transfer_file` accepts, else the id.
fn account(account: Option<&PlanAccount>) -> Result<Account, String> {
    let account = account.ok_or("no account")?;
    if let Some(alias) = account.alias.as_deref().filter(|a| !a.is_empty()) {
        return Ok(Account::Alias(alias.to_owned()));
    }
    match account.id {
        Some(id) if id >= 1 => Ok(Account::Id(id)),
        _ => Err("an account with neither alias nor id".into()),
    }
}

/// A server's hosts as one group: static hosts all by address or all by id, as JOB ignores
/// `ip_list` when `host_id_list` is set.
fn group_of(server: &PlanServer) -> Result<Group, String> {
    let hosts = &server.hosts;
    let mut addresses = Vec::new();
    let mut ids: Vec<i64> = hosts.host_id_list.clone();
    let mut id_of_address = Vec::new();
    for host in &hosts.ip_list {
        match host.ip.parse::<Ipv4Addr>() {
            Ok(_) if host.bk_cloud_id >= 0 => {
                addresses.push(format!("{}:{}", host.bk_cloud_id, host.ip));
                id_of_address.push(host.bk_host_id);
            }
            _ => match host.bk_host_id {
                Some(id) => ids.push(id),
                None => {
                    return Err(format!(
                        "host `{}:{}` is neither an IPv4 address nor a host id",
                        host.bk_cloud_id,
                        printable(&host.ip)
                    ));
                }
            },
        }
    }
    if !ids.is_empty() && !addresses.is_empty() {
        // Every addressed host has its id too: name them all by id.
        match id_of_address.into_iter().collect::<Option<Vec<i64>>>() {
            Some(more) => {
                ids.extend(more);
                addresses.clear();
            }
            None => {
                return Err(
                    "names some hosts only by id and others only by address; plan sends one or the other".into(),
                );
            }
        }
    }
    if let Some(bad) = ids.iter().find(|id| **id < 1) {
        return Err(format!("host id {bad} is not a CMDB host id"));
    }
    let group = Group {
        ips: dedup(addresses),
        host_ids: dedup(ids),
        dynamic_groups: dedup(
            hosts
                .dynamic_group_list
                .iter()
                .map(|g| g.id.clone())
                .collect(),
        ),
        topo_nodes: dedup(
            hosts
                .topo_node_list
                .iter()
                .map(|n| format!("{}:{}", n.node_type, n.id))
                .collect(),
        ),
    };
    if group == Group::default() {
        return Err("no hosts".into());
    }
    Ok(group)
}

fn dedup<T: Clone + Eq + std::hash::Hash>(items: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

fn step_label(index: usize, step: &JobPlanStep) -> String {
    format!("step {} `{}`", index + 1, printable(&step.name))
}

fn script_kind(step: &JobPlanStep) -> &'static str {
    let language = step.script_info.as_ref().and_then(|info| {
        info.get("script_language")
            .or_else(|| info.get("script_type"))
            .and_then(serde_json::Value::as_i64)
    });
    // JOB's script language 6 is SQL.
    if language == Some(6) { "SQL" } else { "script" }
}

/// The kind with its article, as a sentence reads it: "an indexed array", "a string".
fn a_var_kind(var_type: i32) -> String {
    let kind = var_kind(var_type);
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn var_kind(var_type: i32) -> &'static str {
    match var_type {
        global_var_type::STRING => "string",
        global_var_type::NAMESPACE => "namespace",
        global_var_type::HOST_LIST => "host list",
        global_var_type::CIPHER => "ciphertext",
        global_var_type::ASSOCIATIVE_ARRAY => "associative array",
        global_var_type::INDEX_ARRAY => "indexed array",
        _ => "unknown",
    }
}

/// A variable name plan accepts: `[A-Za-z_][A-Za-z0-9_-]*`.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A group name made only of digits and dots would read as an address.
fn is_numeric_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `name` in plan's name alphabet (`[A-Za-z0-9_.-]`): other characters become `-`, runs of
/// `-` collapse, at most 64 characters; empty when nothing of it is left.
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(MAX_NAME).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if is_numeric_name(&trimmed) && !trimmed.is_empty() {
        format!("n{}", &trimmed[..trimmed.len().min(MAX_NAME - 1)])
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(value: serde_json::Value) -> JobPlanDetail {
        serde_json::from_value(value).expect("a job plan")
    }

    fn pushes(import: &Import) -> Vec<&Push> {
        import
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Push(push) => Some(push),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn variable_kinds_read_with_their_article() {
        assert_eq!(
            a_var_kind(global_var_type::ASSOCIATIVE_ARRAY),
            "an associative array"
        );
        assert_eq!(a_var_kind(global_var_type::INDEX_ARRAY), "an indexed array");
        assert_eq!(a_var_kind(global_var_type::CIPHER), "a ciphertext");
        assert_eq!(a_var_kind(99), "an unknown");
    }

    #[test]
    fn names_fit_plans_alphabet() {
        assert_eq!(slug("Deploy web (prod)"), "Deploy-web-prod");
        assert_eq!(slug("分发文件"), "");
        assert_eq!(slug("1.2.3"), "n1.2.3");
        assert_eq!(slug(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn a_file_step_is_a_push_with_its_settings() {
        let import = import(&[plan(serde_json::json!({
            "id": 1, "bk_biz_id": 2, "name": "release",
            "global_var_list": [
                {"type": 1, "name": "version", "value": "1.0"},
                {"type": 4, "name": "pw"},
                {"type": 3, "name": "build", "server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]}}
            ],
            "step_list": [{"type": 2, "name": "push app", "file_info": {
                "file_source_list": [{"file_list": ["/data/app-${version}.tgz", "/x/${nope}"],
                    "file_type": 1, "server": {"variable": "build"}, "account": {"id": 3, "alias": "root"}}],
                "file_destination": {"path": "/opt/", "account": {"id": 4},
                    "server": {"host_id_list": [7, 8]}},
                "timeout": 600, "source_speed_limit": 0, "destination_speed_limit": 20, "transfer_mode": 1
            }}]
        }))]);
        let push = pushes(&import)[0];
        assert_eq!(push.name, "push-app");
        assert_eq!(push.target_account, Account::Id(4));
        assert_eq!(push.target_group, "push-app-targets");
        assert_eq!(
            (
                push.timeout,
                push.upload_speed_limit,
                push.download_speed_limit,
                push.transfer_mode
            ),
            (Some(600), None, Some(20), Some("strict"))
        );
        let Source::Hosts {
            group,
            files,
            account,
        } = &push.sources[0]
        else {
            panic!("hosts")
        };
        assert_eq!(group, "build");
        assert_eq!(files, &["/data/app-${version}.tgz", "/x/$${nope}"]);
        assert_eq!(account, &Account::Alias("root".into()));
        assert_eq!(import.vars["version"].value, "1.0");
        assert_eq!(import.groups[1].1.host_ids, [7, 8]);
        let unused: Vec<_> = import.notes.iter().filter(|n| !n.carried).collect();
        assert_eq!(unused.len(), 1, "{unused:?}");
        assert!(
            unused[0].text.contains("ciphertext variable `pw`"),
            "{unused:?}"
        );
        assert!(
            import.notes.iter().any(|n| n.carried
                && n.text
                    .contains("`${nope}` names no variable of the job plan")),
            "{:?}",
            import.notes
        );
    }

    #[test]
    fn what_cannot_be_carried_is_a_comment_with_its_reasons() {
        let import = import(&[plan(serde_json::json!({
            "id": 1, "bk_biz_id": 2, "name": "p",
            "global_var_list": [{"type": 4, "name": "pw"}],
            "step_list": [
                {"type": 1, "name": "stop", "script_info": {"script_language": 6}},
                {"type": 3, "name": "ok?"},
                {"type": 2, "name": "upload", "file_info": {
                    "file_source_list": [{"file_list": ["a.txt"], "file_type": 2}],
                    "file_destination": {"path": "/opt/${pw}/", "account": {"alias": "root"},
                        "server": {"ip_list": [{"bk_cloud_id": 0, "ip": "fd00::1"}]}}}}
            ]
        }))]);
        assert!(pushes(&import).is_empty());
        let comments: Vec<String> = import
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Comment(lines) => Some(lines.join("\n")),
                _ => None,
            })
            .collect();
        assert!(comments[0].contains("a SQL step"), "{comments:?}");
        assert!(comments[1].contains("manual confirmation"), "{comments:?}");
        assert!(comments[2].contains("browser"), "{comments:?}");
        assert!(comments[2].contains("ciphertext"), "{comments:?}");
        assert!(
            comments[2].contains("neither an IPv4 address nor a host id"),
            "{comments:?}"
        );
        // The three steps and the ciphertext variable no push uses.
        assert_eq!(import.notes.iter().filter(|n| !n.carried).count(), 4);
    }

    #[test]
    fn a_variable_named_like_a_credential_is_not_written() {
        let import = import(&[plan(serde_json::json!({
            "id": 1, "bk_biz_id": 2, "name": "p",
            "global_var_list": [{"type": 1, "name": "db_password", "value": "hunter2"}],
            "step_list": [{"type": 2, "name": "push", "file_info": {
                "file_source_list": [{"file_list": ["/data/${db_password}"],
                    "account": {"alias": "root"}, "server": {"host_id_list": [1]}}],
                "file_destination": {"path": "/opt/", "account": {"alias": "root"},
                    "server": {"host_id_list": [2]}}}}]
        }))]);
        assert!(pushes(&import).is_empty());
        assert!(import.vars.is_empty());
        let text = format!("{:?}", import.items);
        assert!(text.contains("reads as a credential"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn hosts_by_id_and_address_mix_only_when_every_address_has_its_id() {
        let server = |ips: serde_json::Value| -> PlanServer {
            serde_json::from_value(serde_json::json!({"host_id_list": [5], "ip_list": ips}))
                .unwrap()
        };
        let by_id = group_of(&server(
            serde_json::json!([{"bk_cloud_id": 0, "ip": "10.0.0.1", "bk_host_id": 6}]),
        ));
        assert_eq!(by_id.unwrap().host_ids, [5, 6]);
        let mixed = group_of(&server(
            serde_json::json!([{"bk_cloud_id": 0, "ip": "10.0.0.1"}]),
        ));
        assert!(mixed.unwrap_err().contains("one or the other"));
    }
}

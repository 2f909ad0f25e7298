//! The plan file's text: `[plan]`, `[vars]`, `[hosts.*]`, then the pushes and the comments
//! standing for steps that are not pushes, in JOB's order. Every string goes through one
//! TOML quoting function; comments are single lines of printable text.

use std::fmt::Write as _;

use super::convert::{Account, Group, Import, Item, Push, Source};

/// What the `[plan]` table says.
pub(crate) struct Header<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) bk_biz_id: i64,
}

/// The whole plan file.
pub(crate) fn plan_file(header: &Header<'_>, import: &Import) -> String {
    let mut out = String::new();
    out.push_str(
        "# Imported from BlueKing JOB by `plan import`. Steps plan cannot carry out are\n",
    );
    out.push_str(
        "# kept as comments at their place; `plan import` printed what it did on stderr.\n",
    );
    out.push_str("version = 1\n\n[plan]\n");
    line(&mut out, "name", &quote(header.name));
    line(&mut out, "description", &quote(header.description));
    line(&mut out, "bk_biz_id", &header.bk_biz_id.to_string());
    // Job plans name hosts by id, third-party file sources and transfer modes: v3 only.
    line(&mut out, "api", &quote("v3"));
    if !import.vars.is_empty() {
        out.push_str("\n[vars]\n");
        for (name, var) in &import.vars {
            if var.needs_value {
                // Left undefined, not empty: an empty value would quietly turn
                // `${dest}/cache/` into `/cache/`. JOB refuses to run without one; so does
                // the plan, at each use (`undefined_var`), until `--var` gives it.
                let _ = writeln!(out, "# JOB requires a value: pass --var {name}=VALUE");
                let _ = writeln!(out, "# {} = {}", key(name), quote(&var.value));
                continue;
            }
            line(&mut out, name, &quote(&var.value));
        }
    }
    if !import.dropped_vars.is_empty() {
        out.push_str("\n# JOB global variables not imported:\n");
        for text in &import.dropped_vars {
            let _ = writeln!(out, "#   {text}");
        }
    }
    for (name, group) in &import.groups {
        let _ = writeln!(out, "\n[hosts.{}]", key(name));
        write_group(&mut out, group);
    }
    for item in &import.items {
        match item {
            Item::PlanHeader { id, name } => {
                let _ = writeln!(out, "\n# JOB job plan {id} `{name}`, its steps in order.");
            }
            Item::Comment(lines) => {
                out.push('\n');
                for text in lines {
                    let _ = writeln!(out, "# {text}");
                }
            }
            Item::Push(push) => write_push(&mut out, push),
        }
    }
    out
}

fn write_group(out: &mut String, group: &Group) {
    if !group.ips.is_empty() {
        line(out, "ips", &strings(&group.ips));
    }
    if !group.host_ids.is_empty() {
        let ids: Vec<String> = group.host_ids.iter().map(i64::to_string).collect();
        line(out, "host_ids", &format!("[{}]", ids.join(", ")));
    }
    if !group.dynamic_groups.is_empty() {
        line(out, "dynamic_groups", &strings(&group.dynamic_groups));
    }
    if !group.topo_nodes.is_empty() {
        line(out, "topo_nodes", &strings(&group.topo_nodes));
    }
}

fn write_push(out: &mut String, push: &Push) {
    out.push_str("\n[[push]]\n");
    line(out, "name", &quote(&push.name));
    if let Some(after) = &push.after {
        line(out, "after", &strings(std::slice::from_ref(after)));
    }
    let sources: Vec<String> = push.sources.iter().map(source).collect();
    match sources.as_slice() {
        [one] => line(out, "from", one),
        many => line(out, "from", &format!("[\n  {},\n]", many.join(",\n  "))),
    }
    let target = format!(
        "{{ hosts = {}, path = {}, {} }}",
        quote(&push.target_group),
        quote(&push.target_path),
        account(&push.target_account)
    );
    line(out, "to", &target);
    let numbers = [
        ("timeout", push.timeout),
        ("upload_speed_limit", push.upload_speed_limit),
        ("download_speed_limit", push.download_speed_limit),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            line(out, key, &value.to_string());
        }
    }
    if let Some(mode) = push.transfer_mode {
        line(out, "transfer_mode", &quote(mode));
    }
}

fn source(source: &Source) -> String {
    match source {
        Source::Hosts {
            group,
            files,
            account: who,
        } => format!(
            "{{ hosts = {}, files = {}, {} }}",
            quote(group),
            strings(files),
            account(who)
        ),
        Source::FileSource { id, files } => {
            format!("{{ file_source_id = {id}, files = {} }}", strings(files))
        }
    }
}

fn account(account: &Account) -> String {
    match account {
        Account::Alias(alias) => format!("account = {}", quote(alias)),
        Account::Id(id) => format!("account_id = {id}"),
    }
}

/// A table key: bare when TOML allows it, quoted otherwise (a dot would nest tables).
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { name.to_owned() } else { quote(name) }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string. JSON's escapes are TOML's, except that TOML also wants DEL escaped.
pub(crate) fn quote(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    json.replace('\u{7f}', "\\u007F")
}

#[cfg(test)]
mod tests {
    use plan_parser::ParseOptions;

    use super::*;

    /// Names, values and paths from JOB are data: whatever they hold, the file is TOML with
    /// only the tables the writer means, and a step's name cannot end its comment.
    #[test]
    fn hostile_text_from_job_stays_inside_its_strings_and_comments() {
        let evil = "x\n[plan]\nname = \"evil\" # \u{7f}\r\"\"\"";
        let plan: plan_bkjob::job_plan::JobPlanDetail = serde_json::from_value(serde_json::json!({
            "id": 1, "bk_biz_id": 2, "name": evil,
            "global_var_list": [{"type": 1, "name": "v", "value": evil}],
            "step_list": [
                {"type": 1, "name": evil},
                {"type": 2, "name": evil, "file_info": {
                    "file_source_list": [{"file_list": [format!("/data/${{v}}/{evil}")],
                        "account": {"alias": evil}, "server": {"variable": "v"}}],
                    "file_destination": {"path": "/opt/", "account": {"alias": "root"},
                        "server": {"host_id_list": [1]}}}},
                {"type": 2, "name": "ok", "file_info": {
                    "file_source_list": [{"file_list": [format!("/data/${{v}}/{evil}")],
                        "account": {"alias": evil}, "server": {"host_id_list": [1]}}],
                    "file_destination": {"path": "/opt/", "account": {"alias": "root"},
                        "server": {"host_id_list": [2]}}}}
            ]
        }))
        .expect("a job plan");
        let import = super::super::convert::import(std::slice::from_ref(&plan));
        let header = Header {
            name: "p",
            description: evil,
            bk_biz_id: 2,
        };
        let text = plan_file(&header, &import);
        let doc: toml::Table = toml::from_str(&text).expect("TOML");
        let mut keys: Vec<&str> = doc.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["hosts", "plan", "push", "vars", "version"], "{text}");
        assert_eq!(doc["plan"]["name"].as_str(), Some("p"));
        assert_eq!(doc["vars"]["v"].as_str(), Some(evil));
        assert_eq!(doc["push"].as_array().map(Vec::len), Some(1), "{text}");
        let source = &doc["push"][0]["from"];
        assert_eq!(source["account"].as_str(), Some(evil));
    }

    /// A variable JOB requires and the job plan leaves empty is not written as `""`: the
    /// plan would then deliver to `/cache/` instead of `${dest}/cache/`. It is left undefined,
    /// so every use of it is an error until `--var dest=...` gives it.
    #[test]
    fn a_required_variable_without_a_value_is_left_undefined() {
        let plan: plan_bkjob::job_plan::JobPlanDetail = serde_json::from_value(serde_json::json!({
            "id": 1, "bk_biz_id": 2, "name": "p",
            "global_var_list": [{"type": 1, "name": "dest", "value": "", "required": 1}],
            "step_list": [
                {"type": 2, "name": "s", "file_info": {
                    "file_source_list": [{"file_list": ["/data/a.txt"],
                        "account": {"alias": "root"}, "server": {"host_id_list": [1]}}],
                    "file_destination": {"path": "${dest}/cache/", "account": {"alias": "root"},
                        "server": {"host_id_list": [2]}}}}
            ]
        }))
        .expect("a job plan");
        let import = super::super::convert::import(std::slice::from_ref(&plan));
        let header = Header {
            name: "p",
            description: "d",
            bk_biz_id: 2,
        };
        let text = plan_file(&header, &import);
        let doc: toml::Table = toml::from_str(&text).expect("TOML");
        assert!(
            doc.get("vars").and_then(|v| v.get("dest")).is_none(),
            "{text}"
        );
        assert!(text.contains("pass --var dest=VALUE"), "{text}");
        let unset = plan_parser::parse_str("p.toml", &text, &ParseOptions::default());
        let problems = unset.expect_err("undefined without --var");
        let codes: Vec<&str> = problems.problems().iter().map(|p| p.code()).collect();
        assert!(codes.contains(&"plan::parser::undefined_var"), "{codes:?}");
        let given = ParseOptions {
            vars: vec![("dest".to_owned(), "/srv".to_owned())],
            api: None,
        };
        let parsed = plan_parser::parse_str("p.toml", &text, &given).expect("valid with --var");
        assert_eq!(parsed.plan.pushes[0].target.path.value, "/srv/cache/");
    }

    /// Odd shapes JOB could send: nothing panics, every step is a push or a comment, and the
    /// file is still TOML.
    #[test]
    fn odd_steps_become_comments_and_the_file_stays_toml() {
        let odd = [
            serde_json::json!({"type": 2, "name": "no file info"}),
            serde_json::json!({"type": 2, "name": "empty", "file_info": {}}),
            serde_json::json!({"type": 2, "name": "", "file_info": {
                "file_source_list": [{"file_list": [], "server": {}}],
                "file_destination": {"path": "", "server": {"host_id_list": [-1]}},
                "timeout": -5, "source_speed_limit": i64::MAX, "transfer_mode": 9}}),
            serde_json::json!({"type": 2, "name": "unknown var kind", "file_info": {
                "file_source_list": [{"file_list": ["/a/${x"], "account": {"id": 0},
                    "server": {"variable": "missing"}}],
                "file_destination": {"path": "/b/${}", "account": {"alias": ""},
                    "server": {"ip_list": [{"bk_cloud_id": -1, "ip": "10.0.0.1"}]}}}}),
            serde_json::json!({"type": 7, "name": "future step"}),
            serde_json::json!({"type": 2, "name": "third party", "file_info": {
                "file_source_list": [{"file_list": ["a"], "file_type": 3}],
                "file_destination": {"path": "/b/", "account": {"id": 1},
                    "server": {"dynamic_group_list": [{"id": "g"}]}}}}),
        ];
        let plan: plan_bkjob::job_plan::JobPlanDetail = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "odd", "step_list": odd,
            "global_var_list": [{"type": 99, "name": "x"}]
        }))
        .expect("a job plan");
        let import = super::super::convert::import(std::slice::from_ref(&plan));
        let comments = import
            .items
            .iter()
            .filter(|item| matches!(item, Item::Comment(_)))
            .count();
        assert_eq!(comments, odd.len(), "{:?}", import.items);
        let header = Header {
            name: "odd",
            description: "",
            bk_biz_id: 2,
        };
        let text = plan_file(&header, &import);
        toml::from_str::<toml::Table>(&text).expect("TOML");
    }

    #[test]
    fn quoted_strings_read_back_as_toml() {
        for text in [
            "plain",
            "quote \" back\\slash",
            "tab\tnew\nline",
            "del\u{7f}",
            "分发",
        ] {
            let doc = format!("x = {}", quote(text));
            let value: toml::Value = toml::from_str(&doc).expect("valid TOML");
            assert_eq!(value["x"].as_str(), Some(text), "{doc}");
        }
    }
}

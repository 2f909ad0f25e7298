//! `plan import` (issue 18) against the sandbox's simulator, whose world the test writes: two
//! job plans of business 2 with file steps of every kind of source and target, variables of
//! several kinds, a script step, a manual confirmation and steps plan cannot express, and a
//! job plan of another business. The plan file written passes `plan check`, and the request
//! body `plan show --format json` gives for each imported step equals the body built here,
//! independently, from the job plan's own fields, as JOB builds it from the step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

const WORLD: &str = r#"
[[business]]
id = 2

[[business]]
id = 3

[[job_plan]]
bk_biz_id = 2
id = 1001
name = "release web"
last_modify_user = "bob"
last_modify_time = 1700000000000

[[job_plan.global_var_list]]
type = 1
name = "version"
value = "1.4.2"

[[job_plan.global_var_list]]
type = 3
name = "build"
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }] }

[[job_plan.global_var_list]]
type = 4
name = "db_pass"

[[job_plan.global_var_list]]
type = 2
name = "per_host"

[[job_plan.step_list]]
id = 1
type = 1
name = "stop service"
script_info = { script_language = 1 }

[[job_plan.step_list]]
id = 2
type = 2
name = "push app"
[job_plan.step_list.file_info]
timeout = 600
source_speed_limit = 10
destination_speed_limit = 20
transfer_mode = 1
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/data/release/app-${version}.tgz"]
file_type = 1
account = { id = 1, name = "root", alias = "root" }
server = { variable = "build" }
[job_plan.step_list.file_info.file_destination]
path = "/opt/app/"
account = { alias = "root" }
server = { host_id_list = [7, 8] }

[[job_plan.step_list]]
id = 3
type = 3
name = "confirm with ops"

[[job_plan.step_list]]
id = 4
type = 2
name = "push conf"
[job_plan.step_list.file_info]
transfer_mode = 2
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/etc/app/app.conf", "/etc/app/extra/"]
account = { id = 3 }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }, { bk_cloud_id = 0, ip = "10.0.0.2" }] }
[job_plan.step_list.file_info.file_destination]
path = "/opt/app/conf-${version}/"
account = { alias = "app" }
server = { ip_list = [{ bk_cloud_id = 1, ip = "10.1.0.5" }] }

[[job_plan.step_list]]
id = 5
type = 2
name = "fetch artifact"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["release/app.tgz"]
file_type = 3
file_source_id = 4
[job_plan.step_list.file_info.file_destination]
path = "/data/stage/"
account = { id = 9 }
server = { dynamic_group_list = [{ id = "dg-web" }], topo_node_list = [{ id = 1000, node_type = "module" }] }

[[job_plan]]
bk_biz_id = 2
id = 1002
name = "hotfix"

[[job_plan.global_var_list]]
type = 4
name = "token_value"

[[job_plan.step_list]]
type = 2
name = "to relay"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/data/fix.tgz"]
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }] }
[job_plan.step_list.file_info.file_destination]
path = "/stage/"
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.3" }] }

[[job_plan.step_list]]
type = 2
name = "upload from browser"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["notes.txt"]
file_type = 2
[job_plan.step_list.file_info.file_destination]
path = "/stage/"
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.3" }] }

[[job_plan.step_list]]
type = 2
name = "secret path"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/data/${token_value}.txt"]
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }] }
[job_plan.step_list.file_info.file_destination]
path = "/stage/"
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.3" }] }

[[job_plan.step_list]]
type = 2
name = "relay to web"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["/stage/fix.tgz"]
account = { alias = "root" }
server = { ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.3" }] }
[job_plan.step_list.file_info.file_destination]
path = "/opt/app/"
account = { alias = "root" }
server = { host_id_list = [7] }

[[job_plan]]
bk_biz_id = 3
id = 2001
name = "another business"
"#;

/// Each step expected to become a push: (job plan id, step name, push name).
const IMPORTED: [(i64, &str, &str); 5] = [
    (1001, "push app", "release-web.push-app"),
    (1001, "push conf", "release-web.push-conf"),
    (1001, "fetch artifact", "release-web.fetch-artifact"),
    (1002, "to relay", "hotfix.to-relay"),
    (1002, "relay to web", "hotfix.relay-to-web"),
];

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir_all(sandbox.join("hosts/0/10.0.0.1")).expect("sandbox");
        std::fs::write(sandbox.join("jobsim.toml"), WORLD).expect("jobsim.toml");
        World { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn plan(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plan"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("BK_JOB_ENDPOINT")
            .env("NO_COLOR", "1")
            .output()
            .expect("run plan")
    }

    fn import(&self, extra: &[&str]) -> Output {
        let sandbox = self.path("sandbox");
        let mut args = vec!["import", "--bk-biz-id", "2", "--sandbox"];
        args.push(sandbox.to_str().expect("utf-8"));
        args.extend(extra);
        self.plan(&args)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn lists_the_business_job_plans() {
    let world = World::new();
    let out = world.import(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{stdout}");
    assert!(
        lines[1].starts_with("1001")
            && lines[1].contains("release web")
            && lines[1].contains("5 (3 file)")
            && lines[1].contains("2023-11-14 22:13 UTC by bob"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("1002") && lines[2].contains("4 (4 file)"),
        "{stdout}"
    );
    assert_eq!(
        lines.len(),
        3,
        "another business's plan is not listed: {stdout}"
    );
}

#[test]
fn imported_plans_check_and_send_what_job_would() {
    let world = World::new();
    let out = world.import(&[
        "--job-plan",
        "1001",
        "--job-plan",
        "1002",
        "-o",
        "imported.toml",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let file = std::fs::read_to_string(world.path("imported.toml")).expect("written");

    // What was not carried over is said on stderr and kept as a comment at its place.
    for said in [
        "NOT carried: job plan 1001 `release web`: step 1 `stop service`: a script step",
        "NOT carried: job plan 1001 `release web`: step 3 `confirm with ops`: a manual confirmation",
        "NOT carried: job plan 1001 `release web`: ciphertext variable `db_pass`",
        "NOT carried: job plan 1001 `release web`: namespace variable `per_host`",
        "NOT carried: job plan 1002 `hotfix`: step 2 `upload from browser`",
        "NOT carried: job plan 1002 `hotfix`: step 3 `secret path`: source 1: a file uses `${token_value}`, a ciphertext variable",
        "carried: job plan 1001 `release web`: host variable `build` -> [hosts.build]",
        "carried: job plan 1001 `release web`: string variable `version` -> [vars]",
        "NOT carried: job plan 1002 `hotfix`: ciphertext variable `token_value`",
        "5 pushes written to imported.toml; 7 items not carried over",
    ] {
        assert!(stderr.contains(said), "`{said}` missing from:\n{stderr}");
    }
    for comment in [
        "# step 1 `stop service`: not imported:",
        "# step 3 `confirm with ops`: not imported:",
        "# step 2 `upload from browser`: not imported:",
        "# step 3 `secret path`: not imported:",
        "#   job plan 1001: ciphertext variable `db_pass`: not imported",
        "#   job plan 1002: ciphertext variable `token_value`: not imported",
    ] {
        assert!(file.contains(comment), "`{comment}` missing from:\n{file}");
    }
    // Comments stand at their step's place: the script before the first push.
    let script = file.find("`stop service`").expect("script comment");
    let first = file
        .find("name = \"release-web.push-app\"")
        .expect("first push");
    assert!(script < first, "{file}");

    let check = world.plan(&["check", "imported.toml"]);
    assert!(check.status.success(), "{}\n{file}", text(&check.stderr));

    let show = world.plan(&["show", "imported.toml", "--format", "json"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown: Value = serde_json::from_slice(&show.stdout).expect("show JSON");
    let pushes: BTreeMap<String, &Value> = shown["pushes"]
        .as_array()
        .expect("pushes")
        .iter()
        .map(|p| (p["name"].as_str().expect("name").to_owned(), p))
        .collect();
    assert_eq!(pushes.len(), IMPORTED.len(), "{file}");
    let world_toml: toml::Value = toml::from_str(WORLD).expect("world");
    for (plan_id, step, push) in IMPORTED {
        let expected = job_body(&world_toml, plan_id, step);
        let mut sent = pushes[push]["request"].clone();
        let sent_map = sent.as_object_mut().expect("request");
        // Plan's own additions, not part of the step: its task name and two-phase start.
        sent_map.remove("task_name");
        sent_map.remove("start_task");
        assert_eq!(sent, expected, "{push}");
    }

    // JOB's order is kept: an explicit `after` where the file flow says nothing, none where
    // the second push reads what the first delivers (`hotfix.relay-to-web` reads
    // /stage/fix.tgz on 10.0.0.3, which `hotfix.to-relay` delivers).
    let after = |name: &str| pushes[name]["after"].clone();
    assert_eq!(after("release-web.push-app"), json!([]));
    assert_eq!(
        after("release-web.push-conf"),
        json!(["release-web.push-app"])
    );
    assert_eq!(
        after("release-web.fetch-artifact"),
        json!(["release-web.push-conf"])
    );
    assert_eq!(after("hotfix.to-relay"), json!([]), "plans are independent");
    assert_eq!(after("hotfix.relay-to-web"), json!([]));
    assert_eq!(
        pushes["hotfix.relay-to-web"]["depends_on"],
        json!(["hotfix.to-relay"]),
        "the file flow orders them"
    );
}

#[test]
fn the_gateway_front_door_gives_the_same_file() {
    let world = World::new();
    let esb = world.import(&["--job-plan", "1001"]);
    let gateway = world.import(&["--job-plan", "1001", "--gateway"]);
    assert!(
        esb.status.success() && gateway.status.success(),
        "{}",
        text(&gateway.stderr)
    );
    assert!(text(&esb.stdout).contains("[[push]]"));
    assert_eq!(text(&esb.stdout), text(&gateway.stdout));
}

#[test]
fn an_unknown_or_foreign_plan_is_an_error_that_writes_nothing() {
    let world = World::new();
    for id in ["9999", "2001"] {
        let out = world.import(&["--job-plan", id, "-o", "imported.toml"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains(&format!("job plan {id} does not exist in business 2")),
            "{stderr}"
        );
        assert!(stderr.contains("1243009"), "{stderr}");
        assert!(!world.path("imported.toml").exists());
    }
    let none = world.plan(&["import", "--bk-biz-id", "2", "--job-plan", "1001"]);
    assert_eq!(none.status.code(), Some(4));
    assert!(
        text(&none.stderr).contains("--sandbox DIR"),
        "{}",
        text(&none.stderr)
    );
}

/// The body JOB builds from a file step: `fast_transfer_file`'s fields from the step's, its
/// host variables replaced by their hosts and its string variables by their values.
fn job_body(world: &toml::Value, plan_id: i64, step_name: &str) -> Value {
    let plan = world["job_plan"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["id"].as_integer() == Some(plan_id))
        .expect("plan");
    let vars: Vec<Value> = plan
        .get("global_var_list")
        .map(|v| serde_json::to_value(v).expect("json"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let step = plan["step_list"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"].as_str() == Some(step_name))
        .expect("step");
    let file = serde_json::to_value(&step["file_info"]).expect("json");
    let substitute = |text: &str| -> String {
        vars.iter()
            .filter(|v| v["type"] == 1)
            .fold(text.to_owned(), |text, v| {
                let name = v["name"].as_str().expect("name");
                text.replace(&format!("${{{name}}}"), v["value"].as_str().unwrap_or(""))
            })
    };
    let server = |server: &Value| -> Value {
        match server.get("variable").and_then(Value::as_str) {
            Some(name) => vars
                .iter()
                .find(|v| v["name"] == name)
                .map(|v| v["server"].clone())
                .expect("host variable"),
            None => server.clone(),
        }
    };
    let account = |account: &Value| -> Value {
        match account.get("alias") {
            Some(alias) => json!({ "alias": alias }),
            None => json!({ "id": account["id"] }),
        }
    };
    let sources: Vec<Value> = file["file_source_list"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|source| {
            let files: Vec<String> = source["file_list"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| substitute(f.as_str().expect("file")))
                .collect();
            if source.get("file_type") == Some(&json!(3)) {
                json!({"file_list": files, "file_type": 3, "file_source_id": source["file_source_id"]})
            } else {
                json!({"file_list": files, "account": account(&source["account"]), "server": server(&source["server"])})
            }
        })
        .collect();
    let destination = &file["file_destination"];
    let mut body = json!({
        "bk_scope_type": "biz",
        "bk_scope_id": plan["bk_biz_id"].as_integer().expect("biz").to_string(),
        "file_target_path": substitute(destination["path"].as_str().expect("path")),
        "file_source_list": sources,
        "target_server": server(&destination["server"]),
    });
    let target_account = account(&destination["account"]);
    match target_account.get("alias") {
        Some(alias) => body["account_alias"] = alias.clone(),
        None => body["account_id"] = target_account["id"].clone(),
    }
    for (from, to) in [
        ("timeout", "timeout"),
        ("source_speed_limit", "upload_speed_limit"),
        ("destination_speed_limit", "download_speed_limit"),
        ("transfer_mode", "transfer_mode"),
    ] {
        if let Some(value) = file.get(from) {
            body[to] = value.clone();
        }
    }
    body
}

const SECRET: &str = "CANARY-import-secret-5c1e";

/// Through a real endpoint (a simulator the test starts on 127.0.0.1:0) with credentials from
/// the environment: a 503 on a detail is retried, only the two read APIs are called, and the
/// secret appears in no output.
#[test]
fn through_an_endpoint_reads_only_and_says_no_secret() {
    let world = World::new();
    let sandbox = world.path("sandbox");
    let app = format!("[[app]]\ncode = \"plan-app\"\nsecret = \"{SECRET}\"\n\n");
    // A job plan whose name, variable and path echo the secret, as a hostile JOB could.
    let echo = format!(
        "[[job_plan]]\nbk_biz_id = 2\nid = 1009\nname = \"{SECRET}\"\n\
         [[job_plan.global_var_list]]\ntype = 1\nname = \"v\"\nvalue = \"{SECRET}\"\n\
         [[job_plan.step_list]]\ntype = 2\nname = \"{SECRET}\"\n\
         [job_plan.step_list.file_info]\n\
         [[job_plan.step_list.file_info.file_source_list]]\nfile_list = [\"/data/${{v}}/{SECRET}\"]\n\
         account = {{ alias = \"root\" }}\nserver = {{ host_id_list = [1] }}\n\
         [job_plan.step_list.file_info.file_destination]\npath = \"/opt/\"\n\
         account = {{ alias = \"root\" }}\nserver = {{ host_id_list = [2] }}\n"
    );
    std::fs::write(sandbox.join("jobsim.toml"), app + WORLD + &echo).expect("jobsim.toml");
    let server = crate::server::SimServer::start(&sandbox);
    server.inject("get_job_plan_detail", "http_503", 1);
    let run = |url: &str, extra: &[&str]| {
        let mut args = vec!["import", "--bk-biz-id", "2", "--endpoint", url];
        args.extend(extra);
        Command::new(env!("CARGO_BIN_EXE_plan"))
            .args(&args)
            .current_dir(world.dir.path())
            .env("BK_APP_CODE", "plan-app")
            .env("BK_APP_SECRET", SECRET)
            .env("BK_USERNAME", "admin")
            .env("NO_COLOR", "1")
            .output()
            .expect("run plan")
    };
    let esb = run(&server.url, &["--job-plan", "1001"]);
    assert!(esb.status.success(), "{}", text(&esb.stderr));
    let gateway = run(&server.gateway(), &["--job-plan", "1001"]);
    assert_eq!(text(&esb.stdout), text(&gateway.stdout));
    let listed = run(&server.url, &[]);
    assert!(text(&listed.stdout).contains("release web"));
    let echoed = run(&server.url, &["--job-plan", "1009"]);
    assert!(echoed.status.success(), "{}", text(&echoed.stderr));
    for out in [&esb, &gateway, &listed, &echoed] {
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(!all.contains(SECRET), "{all}");
    }
    let apis: std::collections::BTreeSet<String> =
        server.requests().iter().map(|r| r.api.clone()).collect();
    assert_eq!(
        apis.into_iter().collect::<Vec<_>>(),
        ["get_job_plan_detail", "get_job_plan_list"],
        "nothing but the two reads"
    );
    let details = server
        .requests()
        .iter()
        .filter(|r| r.api == "get_job_plan_detail")
        .count();
    // ESB (the 503, then its retry), the gateway, the listing's one detail per plan, the echo.
    assert_eq!(details, 2 + 1 + 3 + 1);
}

/// `--gateway` with the simulator's base URL, not the gateway's `/api/bk-job/<stage>`: JOB's
/// APIs are not found there, and the error says to check the URL, as apply's does.
#[test]
fn a_gateway_url_without_its_stage_says_to_check_the_url() {
    let world = World::new();
    let server = crate::server::SimServer::start(&world.path("sandbox"));
    for extra in [&["--job-plan", "1001"][..], &[]] {
        let mut args = vec!["import", "--bk-biz-id", "2", "--endpoint", &server.url];
        args.extend(["--gateway"].iter().chain(extra));
        let out = Command::new(env!("CARGO_BIN_EXE_plan"))
            .args(&args)
            .env("BK_APP_CODE", "plan-app")
            .env("BK_APP_SECRET", "app-secret")
            .env("BK_USERNAME", "admin")
            .env("NO_COLOR", "1")
            .output()
            .expect("run plan");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("HTTP 404"), "{stderr}");
        assert!(
            stderr.contains("help: the endpoint does not answer as BK-JOB's ESB or API gateway")
                && stderr.contains("/api/bk-job/<stage>"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn quiet_lists_only_what_was_not_carried() {
    let world = World::new();
    let out = world.import(&["--job-plan", "1001", "-q"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("  carried:"), "{stderr}");
    assert!(stderr.contains("  NOT carried: job plan 1001"), "{stderr}");
    assert!(stderr.contains("3 pushes written to stdout"), "{stderr}");
}

#[test]
fn a_job_plan_past_the_step_bound_is_refused() {
    let world = World::new();
    let mut huge = String::from(WORLD);
    huge.push_str("\n[[job_plan]]\nbk_biz_id = 2\nid = 1003\nname = \"huge\"\n");
    for i in 0..1_001 {
        huge.push_str(&format!(
            "[[job_plan.step_list]]\ntype = 3\nname = \"s{i}\"\n"
        ));
    }
    std::fs::write(world.path("sandbox/jobsim.toml"), huge).expect("jobsim.toml");
    let out = world.import(&["--job-plan", "1003"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("job plan 1003 has 1001 steps; plan import converts at most 1000"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// Two steps delivering the same file to the same host (a default, then its override) are
/// ordered only by JOB's step order: the import writes that order as `after`, so the file
/// checks instead of reporting the two writes as a conflict.
#[test]
fn steps_writing_the_same_file_keep_jobs_order() {
    let world = World::new();
    let mut plans = String::from(WORLD);
    let step = |name: &str, file: &str| {
        format!(
            r#"
[[job_plan.step_list]]
type = 2
name = "{name}"
[job_plan.step_list.file_info]
[[job_plan.step_list.file_info.file_source_list]]
file_list = ["{file}"]
account = {{ alias = "root" }}
server = {{ ip_list = [{{ bk_cloud_id = 0, ip = "10.0.0.1" }}] }}
[job_plan.step_list.file_info.file_destination]
path = "/etc/app/"
account = {{ alias = "root" }}
server = {{ ip_list = [{{ bk_cloud_id = 0, ip = "10.0.0.2" }}] }}
"#
        )
    };
    plans.push_str("\n[[job_plan]]\nbk_biz_id = 2\nid = 1004\nname = \"layered\"\n");
    plans.push_str(&step("defaults", "/build/defaults/app.conf"));
    plans.push_str(&step("override", "/build/site/app.conf"));
    plans.push_str(&step("again", "/build/site/app.conf"));
    std::fs::write(world.path("sandbox/jobsim.toml"), plans).expect("jobsim.toml");

    let out = world.import(&["--job-plan", "1004", "-o", "layered.toml"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let show = world.plan(&["show", "layered.toml", "--format", "json"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown: Value = serde_json::from_slice(&show.stdout).expect("json");
    let after: Vec<Value> = shown["pushes"]
        .as_array()
        .expect("pushes")
        .iter()
        .map(|push| push["after"].clone())
        .collect();
    assert_eq!(after, [json!([]), json!(["defaults"]), json!(["override"])]);
}

/// The example world of `plan import --help` and docs/import.md imports into a plan that
/// checks and, applied to that world, delivers what the job plan's steps do (copied first:
/// the simulator writes its state beside its world).
#[test]
fn the_example_job_plan_imports_into_a_plan_that_checks_and_runs() {
    let world = World::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import/sandbox");
    std::fs::copy(
        example.join("jobsim.toml"),
        world.path("sandbox/jobsim.toml"),
    )
    .expect("copy");
    let out = world.import(&["--job-plan", "1001", "-o", "imported.toml"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 pushes written to imported.toml; 4 items not carried over"),
        "{stderr}"
    );
    let check = world.plan(&["check", "imported.toml"]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    // And it runs: applied to the same world, every target holds what JOB's steps deliver.
    let host = |ip: &str| world.path("sandbox/hosts/0").join(ip);
    for (path, body) in [
        ("data/release/app-1.0.0.tar.gz", "app 1.0.0"),
        ("data/release/app.conf", "conf"),
    ] {
        let file = host("10.0.0.1").join(path);
        std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
        std::fs::write(file, body).expect("write");
    }
    let targets = ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2", "10.0.2.3"];
    for ip in targets {
        std::fs::create_dir_all(host(ip)).expect("host");
    }
    let sandbox = world.path("sandbox");
    let apply = world.plan(&[
        "apply",
        "imported.toml",
        "--sandbox",
        sandbox.to_str().expect("utf-8"),
        "--no-progress",
    ]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    let read = |ip: &str, path: &str| std::fs::read_to_string(host(ip).join(path)).ok();
    for ip in &targets[..2] {
        assert_eq!(
            read(ip, "data/stage/app-1.0.0.tar.gz").as_deref(),
            Some("app 1.0.0")
        );
    }
    for ip in &targets[2..] {
        assert_eq!(read(ip, "opt/app/conf/app.conf").as_deref(), Some("conf"));
        assert_eq!(
            read(ip, "opt/app/releases/app-1.0.0.tar.gz").as_deref(),
            Some("app 1.0.0")
        );
    }
}

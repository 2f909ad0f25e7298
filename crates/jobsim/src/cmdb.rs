//! The CMDB APIs a review resolves hosts with (`plan_bkjob::cmdb`), served from the world:
//! `execute_dynamic_group`, `find_host_by_topo` and `list_biz_hosts`, behind ESB
//! (`/api/c/compapi/v2/cc/<api>/`) and the CMDB gateway (`/api/bk-cmdb/<stage>/api/v3/...`),
//! in CMDB's envelope (`result`, `code`, `message`, `permission`, `request_id`, `data`) with
//! CMDB's error codes. They answer the hosts a job submitted now would resolve the same
//! selector to (`World::dynamic_group`, `World::topo_node`), minus host strings with no host
//! directory (no host in CMDB), ordered by `bk_host_id`.

use axum::http::StatusCode;
use plan_bkjob::cmdb::{CmdbApi, CmdbCall, cc_code};
use serde_json::{Value, json};

use crate::coerce::{Params, string_list};
use crate::front::{Answer, Front, hex_id};
use crate::world::{HostRef, Scope, World};

/// CMDB's answer before its envelope: a page of hosts, or a code and message.
type CmdbReply = Result<Value, (i64, String)>;

/// Answers one CMDB call whose caller has been authenticated.
pub(crate) fn run(world: &World, call: &CmdbCall, p: &Params) -> Answer {
    envelope(call.door, answer(world, call, p))
}

fn answer(world: &World, call: &CmdbCall, p: &Params) -> CmdbReply {
    let biz = biz_id(call, p)?;
    let scope = Scope::from_biz_id(biz);
    let page = page(p, call.api)?;
    let fields = string_list(p, "fields").ok().flatten().unwrap_or_default();
    if !world.scope_exists(&scope) {
        return Err((cc_code::NOT_FOUND, format!("business {biz} does not exist")));
    }
    let hosts = match call.api {
        CmdbApi::ExecuteDynamicGroup => {
            let id = group_id(call, p)?;
            if !world.dynamic_group_exists(&scope, &id) {
                return Err((
                    cc_code::NOT_FOUND,
                    format!("dynamic group {id} does not exist"),
                ));
            }
            known_hosts(world, world.dynamic_group(&scope, &id))
        }
        CmdbApi::FindHostByTopo => {
            let obj = required_string(p, "bk_obj_id")?;
            if obj == "biz" {
                return Err((cc_code::PARAMS_INVALID, "bk_obj_id is invalid".into()));
            }
            let inst = required_i64(p, "bk_inst_id")?;
            known_hosts(world, world.topo_node(&scope, &obj, inst))
        }
        CmdbApi::ListBizHosts => world.business_hosts(&scope),
    };
    let count = hosts.len();
    let info: Vec<Value> = hosts
        .iter()
        .skip(page.0)
        .take(page.1)
        .map(|h| host_json(h, &fields))
        .collect();
    Ok(json!({"count": count, "info": info}))
}

/// The gateway names the business in its path; ESB in the body.
fn biz_id(call: &CmdbCall, p: &Params) -> Result<u64, (i64, String)> {
    let id = match &call.path_biz_id {
        Some(text) => text.parse::<i64>().ok(),
        None => required_i64(p, "bk_biz_id").map(Some)?,
    };
    id.and_then(|id| u64::try_from(id).ok())
        .filter(|id| *id >= 1)
        .ok_or_else(|| (cc_code::PARAMS_INVALID, "bk_biz_id is invalid".into()))
}

fn group_id(call: &CmdbCall, p: &Params) -> Result<String, (i64, String)> {
    match &call.path_group_id {
        Some(id) => Ok(id.clone()),
        None => required_string(p, "id"),
    }
}

/// `(start, limit)`: required, `limit` within the API's maximum.
fn page(p: &Params, api: CmdbApi) -> Result<(usize, usize), (i64, String)> {
    let Some(page) = p.object("page").ok().flatten() else {
        return Err(need("page"));
    };
    let start = page.i64("start").ok().flatten().unwrap_or(0);
    let limit = page.i64("limit").ok().flatten().unwrap_or(0);
    if start < 0 || limit <= 0 {
        return Err((cc_code::PARAMS_INVALID, "page is invalid".into()));
    }
    let max = api.max_page();
    if limit.unsigned_abs() > max {
        return Err((
            cc_code::PAGE_LIMIT_EXCEEDED,
            format!("page.limit exceeds the maximum {max}"),
        ));
    }
    let as_usize = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok((as_usize(start), as_usize(limit)))
}

fn need(field: &str) -> (i64, String) {
    (cc_code::PARAMS_NEED_SET, format!("{field} must be set"))
}

fn required_string(p: &Params, key: &str) -> Result<String, (i64, String)> {
    match p.string(key) {
        Ok(Some(s)) if !s.trim().is_empty() => Ok(s),
        Ok(_) => Err(need(key)),
        Err(_) => Err((cc_code::PARAMS_INVALID, format!("{key} is invalid"))),
    }
}

fn required_i64(p: &Params, key: &str) -> Result<i64, (i64, String)> {
    match p.i64(key) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(need(key)),
        Err(_) => Err((cc_code::PARAMS_INVALID, format!("{key} is invalid"))),
    }
}

/// The hosts of these host strings that exist, by `bk_host_id`, each once.
fn known_hosts(world: &World, pairs: Vec<(u64, String)>) -> Vec<HostRef> {
    let mut hosts: Vec<HostRef> = pairs
        .into_iter()
        .filter_map(|(cloud, ip)| world.host_by_ip(cloud, &ip))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// A host with the asked fields of the four CMDB keeps for it (all four when none asked).
fn host_json(h: &HostRef, fields: &[String]) -> Value {
    let all = json!({
        "bk_host_id": h.id, "bk_cloud_id": h.cloud,
        "bk_host_innerip": h.ipv4(), "bk_host_innerip_v6": h.ipv6(),
    });
    if fields.is_empty() {
        return all;
    }
    let Value::Object(all) = all else {
        return Value::Null;
    };
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| fields.iter().any(|f| f == k))
            .collect(),
    )
}

/// CMDB's envelope: ESB adds `request_id` to the body, the gateway passes CMDB's body and
/// sets `X-Bkapi-Request-Id`.
fn envelope(door: Front, reply: CmdbReply) -> Answer {
    let (code, message, data) = match reply {
        Ok(data) => (0, "success".to_owned(), data),
        Err((code, message)) => (code, message, Value::Null),
    };
    let request_id = hex_id();
    let body = json!({
        "result": code == 0, "code": code, "message": message, "permission": null,
        "request_id": request_id, "data": data,
    });
    let headers = match door {
        Front::Esb => vec![],
        Front::Gateway => vec![("x-bkapi-request-id", request_id)],
    };
    Answer {
        status: StatusCode::OK,
        body: Some(body),
        headers,
    }
}

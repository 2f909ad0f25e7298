//! CMDB reads through the same front door and credentials as JOB: the hosts of a dynamic
//! group or a topology node, every page of them, for a review that names the real hosts.

use serde::Serialize;

use super::{ApiError, Client, Flavor};
use crate::cmdb::{
    CmdbApi, CmdbHost, ExecuteDynamicGroupRequest, FindHostByTopoRequest, HOST_FIELDS, HostPage,
    ListBizHostsRequest, Page,
};
use crate::routes::FrontDoor;

/// The most hosts one group or node may resolve to; past it the answer is refused rather
/// than held (a node that large is not reviewed host by host).
pub(crate) const MAX_RESOLVED_HOSTS: u64 = 100_000;

impl Client {
    /// Every host of a CMDB dynamic group, in CMDB's order.
    pub async fn dynamic_group_hosts(
        &self,
        bk_biz_id: i64,
        group_id: &str,
    ) -> Result<Vec<CmdbHost>, ApiError> {
        let api = CmdbApi::ExecuteDynamicGroup;
        self.every_page(api, bk_biz_id, group_id, |page| {
            ExecuteDynamicGroupRequest {
                bk_biz_id,
                id: group_id.to_owned(),
                fields: fields(),
                page,
            }
        })
        .await
    }

    /// Every host below a topology node (`biz`, `set`, `module` or a custom mainline
    /// object), in CMDB's order: `list_biz_hosts` for the business itself, `find_host_by_topo`
    /// for any node below it.
    pub async fn topo_node_hosts(
        &self,
        bk_biz_id: i64,
        node_type: &str,
        node_id: i64,
    ) -> Result<Vec<CmdbHost>, ApiError> {
        if node_type == "biz" {
            let api = CmdbApi::ListBizHosts;
            return self
                .every_page(api, bk_biz_id, "", |page| ListBizHostsRequest {
                    bk_biz_id,
                    fields: fields(),
                    page,
                })
                .await;
        }
        let api = CmdbApi::FindHostByTopo;
        self.every_page(api, bk_biz_id, "", |page| FindHostByTopoRequest {
            bk_biz_id,
            bk_obj_id: node_type.to_owned(),
            bk_inst_id: node_id,
            fields: fields(),
            page,
        })
        .await
    }

    /// Pages through an API until it has answered every host it counted.
    async fn every_page<R: Serialize>(
        &self,
        api: CmdbApi,
        bk_biz_id: i64,
        group_id: &str,
        request: impl Fn(Page) -> R,
    ) -> Result<Vec<CmdbHost>, ApiError> {
        let limit = api.max_page();
        let mut hosts: Vec<CmdbHost> = Vec::new();
        loop {
            let page = Page {
                start: hosts.len() as u64,
                limit,
            };
            let body = super::to_body(&request(page))?;
            let answer: HostPage = self.cmdb_call(api, bk_biz_id, group_id, &body).await?;
            if answer.count > MAX_RESOLVED_HOSTS {
                return Err(too_many(api, answer.count));
            }
            let got = answer.info.len() as u64;
            hosts.extend(answer.info);
            if hosts.len() as u64 > MAX_RESOLVED_HOSTS {
                return Err(too_many(api, hosts.len() as u64));
            }
            // A short page is the last: CMDB fills every page but the last, and a server that
            // does not cannot make this loop go on for ever.
            if got < limit || hosts.len() as u64 >= answer.count {
                return Ok(hosts);
            }
        }
    }

    /// One CMDB read, repeated after a failure that may pass as JOB's reads are.
    async fn cmdb_call(
        &self,
        api: CmdbApi,
        bk_biz_id: i64,
        group_id: &str,
        body: &serde_json::Value,
    ) -> Result<HostPage, ApiError> {
        let url = self.cmdb_url(api, bk_biz_id, group_id);
        let started = tokio::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let request = self.http.post(&url).json(body);
            let error = match self.exchange(api.name(), &url, request).await {
                Ok(page) => return Ok(page),
                Err(error) => self.scrubber.error(error),
            };
            attempt += 1;
            let delay = self.config.retry.delay(attempt - 1, error.retry_after());
            let retry = error.is_retryable() || error.class() == crate::ErrorClass::Internal;
            if !retry
                || attempt >= self.config.retry.max_attempts
                || started.elapsed() + delay > self.config.retry.max_total
            {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// The API's URL: ESB serves CMDB beside JOB; on the gateway CMDB has its own API,
    /// `.../api/bk-cmdb/<stage>` beside JOB's `.../api/bk-job/<stage>`.
    fn cmdb_url(&self, api: CmdbApi, bk_biz_id: i64, group_id: &str) -> String {
        let base = self.endpoint.as_str().trim_end_matches('/');
        match self.endpoint.flavor() {
            Flavor::Esb => format!("{base}{}", api.path(FrontDoor::Esb, bk_biz_id, group_id)),
            Flavor::Gateway => {
                let base = base.replacen("/api/bk-job/", "/api/bk-cmdb/", 1);
                let group =
                    url::form_urlencoded::byte_serialize(group_id.as_bytes()).collect::<String>();
                format!("{base}{}", api.path(FrontDoor::Gateway, bk_biz_id, &group))
            }
        }
    }
}

fn too_many(api: CmdbApi, count: u64) -> ApiError {
    ApiError::Decode {
        api: api.name().to_owned(),
        message: format!(
            "CMDB answers {count} hosts, more than the {MAX_RESOLVED_HOSTS} a review resolves"
        ),
    }
}

fn fields() -> Vec<String> {
    HOST_FIELDS.iter().map(|f| (*f).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{body_partial_json, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::client::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};

    fn client(base: &str) -> Client {
        let config = ClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                max_attempts: 2,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_total: Duration::from_secs(5),
            },
        };
        let creds = Credentials::new("app", "secret", UserAuth::Username("admin".into()));
        Client::new(Endpoint::parse(base, false).expect("url"), creds, config).expect("client")
    }

    fn page(count: u64, ids: std::ops::Range<i64>) -> ResponseTemplate {
        let info: Vec<serde_json::Value> = ids
            .map(|id| json!({"bk_host_id": id, "bk_cloud_id": 0, "bk_host_innerip": format!("10.0.0.{id}")}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "result": true, "code": 0, "message": "success", "permission": null,
            "request_id": "r", "data": {"count": count, "info": info}
        }))
    }

    #[tokio::test]
    async fn a_dynamic_group_is_read_page_by_page_through_esb() {
        let server = MockServer::start().await;
        let esb = "/api/c/compapi/v2/cc/execute_dynamic_group/";
        Mock::given(path(esb))
            .and(body_partial_json(
                json!({"id": "g1", "page": {"start": 0, "limit": 200}}),
            ))
            .respond_with(page(201, 1..201))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path(esb))
            .and(body_partial_json(json!({"page": {"start": 200}})))
            .respond_with(page(201, 201..202))
            .expect(1)
            .mount(&server)
            .await;
        let hosts = client(&server.uri())
            .dynamic_group_hosts(2, "g1")
            .await
            .expect("hosts");
        assert_eq!(hosts.len(), 201);
        assert_eq!(hosts[200].bk_host_id, 201);
    }

    #[tokio::test]
    async fn topology_nodes_go_to_the_cmdb_gateway_beside_jobs() {
        let server = MockServer::start().await;
        Mock::given(path(
            "/api/bk-cmdb/prod/api/v3/findmany/hosts/by_topo/biz/2",
        ))
        .and(body_partial_json(
            json!({"bk_obj_id": "module", "bk_inst_id": 10}),
        ))
        .respond_with(page(1, 1..2))
        .expect(1)
        .mount(&server)
        .await;
        Mock::given(path("/api/bk-cmdb/prod/api/v3/hosts/app/2/list_hosts"))
            .respond_with(page(2, 1..3))
            .expect(1)
            .mount(&server)
            .await;
        let api = client(&format!("{}/api/bk-job/prod", server.uri()));
        let module = api.topo_node_hosts(2, "module", 10).await.expect("module");
        assert_eq!(module.len(), 1);
        let biz = api.topo_node_hosts(2, "biz", 2).await.expect("biz");
        assert_eq!(biz.len(), 2);
    }

    #[tokio::test]
    async fn a_short_page_ends_the_listing_whatever_the_count_says() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/cc/execute_dynamic_group/"))
            .respond_with(page(90_000, 1..3))
            .expect(1)
            .mount(&server)
            .await;
        let hosts = client(&server.uri())
            .dynamic_group_hosts(2, "g1")
            .await
            .expect("hosts");
        assert_eq!(hosts.len(), 2);
    }

    #[tokio::test]
    async fn cmdbs_refusal_is_its_code_and_message() {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/cc/execute_dynamic_group/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "result": false, "code": 1_199_019, "message": "dynamic group not found",
                "data": null, "request_id": "r"
            })))
            .mount(&server)
            .await;
        let error = client(&server.uri())
            .dynamic_group_hosts(2, "nope")
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Some(1_199_019), "{error}");
        assert!(
            error.to_string().contains("dynamic group not found"),
            "{error}"
        );
    }
}

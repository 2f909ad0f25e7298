//! `operate_step_instance` (v2 and v3): retry a step's failed or all hosts inside the same job,
//! ignore its error, or start the next rolling batch of a step waiting for a user; and v3
//! `get_step_instance_status`, a rolling batch's hosts.

use super::{ApiError, Client, Kind, to_body};
use crate::ApiVersion;
use crate::routes::Route;
use crate::step_operation::OperateStepInstanceRequest;
use crate::step_status::{StepInstanceStatusDetailV3, StepInstanceStatusRequest};
use crate::v2::JobExecuteData;

impl Client {
    /// `operate_step_instance` on the `api` family's path. A lost answer is re-sent like any
    /// operation: JOB refuses the repeat with `1241003` "Unsupported operation" (the step has
    /// moved on), which the caller reads by checking the job's status.
    pub async fn operate_step(
        &self,
        api: ApiVersion,
        request: &OperateStepInstanceRequest,
    ) -> Result<JobExecuteData, ApiError> {
        let route = match api {
            ApiVersion::V2 => Route::OperateStepV2,
            ApiVersion::V3 => Route::OperateStepV3,
        };
        self.call(route, Kind::Idempotent, to_body(request)?).await
    }

    /// v3 `get_step_instance_status`: the step's hosts by status for one rolling batch (GET
    /// with a query through the gateway, POST through ESB).
    pub async fn step_status_v3(
        &self,
        request: &StepInstanceStatusRequest,
    ) -> Result<StepInstanceStatusDetailV3, ApiError> {
        self.call(Route::StepStatusV3, Kind::Idempotent, to_body(request)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::{body_json, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::client::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};
    use crate::step_operation::StepOperation;

    #[tokio::test]
    async fn continue_goes_to_each_familys_path() {
        let server = MockServer::start().await;
        let request = OperateStepInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: Some("biz".into()),
            bk_scope_id: Some("2".into()),
            job_instance_id: 7,
            step_instance_id: 8,
            operation_code: StepOperation::RollingContinue,
        };
        Mock::given(path("/api/c/compapi/v2/jobv3/operate_step_instance/"))
            .and(body_json(
                serde_json::json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                "job_instance_id": 7, "step_instance_id": 8, "operation_code": 13}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "result": true, "code": 0,
                "data": {"job_instance_id": 7, "job_instance_name": null, "step_instance_id": 8}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let endpoint = Endpoint::parse(&server.uri(), false).expect("endpoint");
        let config = ClientConfig {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
        };
        let creds = Credentials::new("app", "secret", UserAuth::Username("admin".into()));
        let client = Client::new(endpoint, creds, config).expect("client");
        let answer = client
            .operate_step(ApiVersion::V3, &request)
            .await
            .expect("continued");
        assert_eq!(
            (answer.job_instance_id, answer.step_instance_id),
            (7, Some(8))
        );
    }
}

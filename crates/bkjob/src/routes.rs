//! Where JOB serves each file-distribution API: the API names and their paths behind the two
//! front doors, ESB (`/api/c/compapi/v2/job/<api>/`, `/api/c/compapi/v2/jobv3/<api>/`) and the
//! API gateway (`/api/bk-job/<stage>/api/v3/<api>`), with the HTTP method the gateway
//! publishes each one under (bk-job-api.md §1). The client builds its URLs from here and the
//! simulator routes requests by it, so both always agree.

use std::fmt;

use crate::ApiVersion;

/// The front door a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrontDoor {
    /// ESB (`/api/c/compapi/...`): every API, v2 and v3, by POST (or GET with a query).
    Esb,
    /// The API gateway (`/api/bk-job/<stage>/...`): the v3 APIs only.
    Gateway,
}

impl FrontDoor {
    /// `"esb"` or `"gateway"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FrontDoor::Esb => "esb",
            FrontDoor::Gateway => "gateway",
        }
    }
}

/// An HTTP method an API is published under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// Parameters in the query string.
    Get,
    /// Parameters in a JSON body.
    Post,
}

impl HttpMethod {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// One file-distribution API of one family: v2 (`job/`) or v3 (`jobv3/`, the gateway's
/// `api/v3/`). Two families share some names (`get_job_instance_status`,
/// `operate_job_instance`) but not their bodies, so each pair is its own route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// v2 `fast_push_file`: submits a transfer.
    FastPushFile,
    /// v2 `get_job_instance_status`.
    StatusV2,
    /// v2 `get_job_instance_log`: every host's log, grouped by status.
    LogV2,
    /// v2 `operate_job_instance`.
    OperateV2,
    /// v2 `operate_step_instance`: retry a step's hosts, ignore its error, continue rolling.
    OperateStepV2,
    /// v2 `fast_execute_script`: submits a script job.
    FastExecuteScriptV2,
    /// v3 `fast_transfer_file`: submits a transfer.
    FastTransferFile,
    /// v3 `get_job_instance_status`.
    StatusV3,
    /// v3 `get_job_instance_ip_log`: one host's file logs.
    IpLogV3,
    /// v3 `batch_get_job_instance_ip_log`: many hosts' file logs.
    BatchIpLogV3,
    /// v3 `operate_job_instance`.
    OperateV3,
    /// v3 `operate_step_instance`: retry a step's hosts, ignore its error, continue rolling.
    OperateStepV3,
    /// v3 `get_step_instance_status`: one step's hosts by status, per rolling batch.
    StepStatusV3,
    /// v3 `fast_execute_script`: submits a script job.
    FastExecuteScriptV3,
    /// v3 `get_job_instance_list`: the business's jobs created in a time window (JOB's
    /// execution history), filtered and paged.
    JobInstanceListV3,
    /// v3 `get_job_plan_list`: the business's saved job plans (执行方案), paged.
    JobPlanListV3,
    /// v3 `get_job_plan_detail`: one job plan's steps and global variables.
    JobPlanDetailV3,
}

/// ESB's components path, before `job/` or `jobv3/`.
const ESB_COMPONENTS: &str = "/api/c/compapi/v2";

impl Route {
    /// Every route: the v2 family, then the v3 family.
    pub const ALL: [Route; 17] = [
        Route::FastPushFile,
        Route::StatusV2,
        Route::LogV2,
        Route::OperateV2,
        Route::OperateStepV2,
        Route::FastExecuteScriptV2,
        Route::FastTransferFile,
        Route::StatusV3,
        Route::IpLogV3,
        Route::BatchIpLogV3,
        Route::OperateV3,
        Route::OperateStepV3,
        Route::StepStatusV3,
        Route::FastExecuteScriptV3,
        Route::JobInstanceListV3,
        Route::JobPlanListV3,
        Route::JobPlanDetailV3,
    ];

    /// The API's name, the last segment of its path.
    pub fn name(self) -> &'static str {
        match self {
            Route::FastPushFile => "fast_push_file",
            Route::StatusV2 | Route::StatusV3 => "get_job_instance_status",
            Route::LogV2 => "get_job_instance_log",
            Route::OperateV2 | Route::OperateV3 => "operate_job_instance",
            Route::OperateStepV2 | Route::OperateStepV3 => "operate_step_instance",
            Route::StepStatusV3 => "get_step_instance_status",
            Route::FastTransferFile => "fast_transfer_file",
            Route::FastExecuteScriptV2 | Route::FastExecuteScriptV3 => "fast_execute_script",
            Route::IpLogV3 => "get_job_instance_ip_log",
            Route::BatchIpLogV3 => "batch_get_job_instance_ip_log",
            Route::JobInstanceListV3 => "get_job_instance_list",
            Route::JobPlanListV3 => "get_job_plan_list",
            Route::JobPlanDetailV3 => "get_job_plan_detail",
        }
    }

    /// The API family the route belongs to.
    pub fn version(self) -> ApiVersion {
        match self {
            Route::OperateStepV2 => ApiVersion::V2,
            Route::OperateStepV3 | Route::StepStatusV3 => ApiVersion::V3,
            Route::FastPushFile
            | Route::StatusV2
            | Route::LogV2
            | Route::OperateV2
            | Route::FastExecuteScriptV2 => ApiVersion::V2,
            Route::FastTransferFile
            | Route::StatusV3
            | Route::IpLogV3
            | Route::BatchIpLogV3
            | Route::OperateV3
            | Route::FastExecuteScriptV3
            | Route::JobInstanceListV3
            | Route::JobPlanListV3
            | Route::JobPlanDetailV3 => ApiVersion::V3,
        }
    }

    /// ESB's group of the family: `job` or `jobv3`.
    fn esb_group(self) -> &'static str {
        match self.version() {
            ApiVersion::V2 => "job",
            ApiVersion::V3 => "jobv3",
        }
    }

    /// The path behind a front door, relative to its base URL (an ESB host, or the gateway's
    /// `.../api/bk-job/<stage>`): `/api/c/compapi/v2/job/<api>/` on ESB, `/api/v3/<api>` on
    /// the gateway. The gateway publishes no v2 API, so a v2 route always takes ESB's path.
    pub fn path(self, door: FrontDoor) -> String {
        match door {
            FrontDoor::Gateway if self.version() == ApiVersion::V3 => {
                format!("/api/v3/{}", self.name())
            }
            _ => format!("{ESB_COMPONENTS}/{}/{}/", self.esb_group(), self.name()),
        }
    }

    /// The method the gateway publishes the API under: GET for the single-job reads
    /// (`get_job_instance_status`, `get_job_instance_ip_log`), the job list
    /// (`get_job_instance_list`) and the job plan reads (`get_job_plan_list`,
    /// `get_job_plan_detail`: bk-job's `EsbPlanV3Resource` maps both to GET, its POST twins
    /// are ESB's), POST otherwise. ESB accepts both for every API.
    pub fn gateway_method(self) -> HttpMethod {
        match self {
            Route::StatusV3
            | Route::IpLogV3
            | Route::StepStatusV3
            | Route::JobInstanceListV3
            | Route::JobPlanListV3
            | Route::JobPlanDetailV3 => HttpMethod::Get,
            _ => HttpMethod::Post,
        }
    }

    /// The route of a family's API name.
    pub fn find(version: ApiVersion, name: &str) -> Option<Route> {
        Route::ALL
            .into_iter()
            .find(|route| route.version() == version && route.name() == name)
    }

    /// The route a request path names, as both front doors read it: ESB's
    /// `/api/c/compapi[/v2]/{job,jobv3}/<api>[/]`, the gateway's
    /// `/api/bk-job/<stage>/api/v3/<api>[/]`. An unknown path is an error carrying the front
    /// door whose prefix it has, if any, to answer with that door's "not found".
    pub fn parse(path: &str) -> Result<(FrontDoor, Route), UnknownRoute> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match parts.as_slice() {
            ["", "api", "c", "compapi", rest @ ..] => {
                let rest = rest.strip_prefix(&["v2"]).unwrap_or(rest);
                let route = match rest {
                    ["job", name] => Route::find(ApiVersion::V2, name),
                    ["jobv3", name] => Route::find(ApiVersion::V3, name),
                    _ => None,
                };
                route
                    .map(|route| (FrontDoor::Esb, route))
                    .ok_or(UnknownRoute(Some(FrontDoor::Esb)))
            }
            ["", "api", "bk-job", rest @ ..] => match rest {
                [_stage, "api", "v3", name] => Route::find(ApiVersion::V3, name)
                    .map(|route| (FrontDoor::Gateway, route))
                    .ok_or(UnknownRoute(Some(FrontDoor::Gateway))),
                _ => Err(UnknownRoute(Some(FrontDoor::Gateway))),
            },
            _ => Err(UnknownRoute(None)),
        }
    }
}

impl fmt::Display for Route {
    /// `job/<api>` or `jobv3/<api>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.esb_group(), self.name())
    }
}

/// A path that names no route; it holds the front door whose prefix the path has, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownRoute(pub Option<FrontDoor>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_parses_back_to_its_route() {
        for route in Route::ALL {
            assert_eq!(
                Route::parse(&route.path(FrontDoor::Esb)),
                Ok((FrontDoor::Esb, route))
            );
        }
        for route in Route::ALL
            .into_iter()
            .filter(|r| r.version() == ApiVersion::V3)
        {
            let gateway = format!("/api/bk-job/prod{}", route.path(FrontDoor::Gateway));
            assert_eq!(
                Route::parse(&gateway),
                Ok((FrontDoor::Gateway, route)),
                "{gateway}"
            );
        }
    }

    #[test]
    fn paths_are_jobs() {
        assert_eq!(
            Route::FastPushFile.path(FrontDoor::Gateway),
            "/api/c/compapi/v2/job/fast_push_file/"
        );
        assert_eq!(
            Route::StatusV3.path(FrontDoor::Esb),
            "/api/c/compapi/v2/jobv3/get_job_instance_status/"
        );
        assert_eq!(
            Route::BatchIpLogV3.path(FrontDoor::Gateway),
            "/api/v3/batch_get_job_instance_ip_log"
        );
        assert_eq!(
            Route::parse("/api/c/compapi/jobv3/operate_job_instance"),
            Ok((FrontDoor::Esb, Route::OperateV3))
        );
        let gets: Vec<Route> = Route::ALL
            .into_iter()
            .filter(|r| r.gateway_method() == HttpMethod::Get)
            .collect();
        assert_eq!(
            gets,
            [
                Route::StatusV3,
                Route::IpLogV3,
                Route::StepStatusV3,
                Route::JobInstanceListV3,
                Route::JobPlanListV3,
                Route::JobPlanDetailV3,
            ]
        );
        assert_eq!(
            Route::JobPlanDetailV3.path(FrontDoor::Esb),
            "/api/c/compapi/v2/jobv3/get_job_plan_detail/"
        );
        assert_eq!(
            Route::JobPlanListV3.path(FrontDoor::Gateway),
            "/api/v3/get_job_plan_list"
        );
    }

    #[test]
    fn unknown_paths_name_their_front_door() {
        for (path, door) in [
            (
                "/api/c/compapi/v2/job/fast_transfer_file/",
                Some(FrontDoor::Esb),
            ),
            (
                "/api/c/compapi/v2/jobv3/get_job_instance_log/",
                Some(FrontDoor::Esb),
            ),
            ("/api/c/compapi", Some(FrontDoor::Esb)),
            (
                "/api/bk-job/prod/api/v2/fast_push_file",
                Some(FrontDoor::Gateway),
            ),
            (
                "/api/bk-job/prod/api/v3/fast_push_file",
                Some(FrontDoor::Gateway),
            ),
            ("/api/bk-job", Some(FrontDoor::Gateway)),
            ("/", None),
            ("/api/v3/fast_transfer_file", None),
        ] {
            assert_eq!(Route::parse(path), Err(UnknownRoute(door)), "{path}");
        }
    }
}

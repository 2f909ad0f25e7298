//! A `jobsim` on loopback for the tests that run `plan apply --endpoint`: it has its own
//! runtime, so it outlives single `plan` processes, and it shuts down when dropped.

use std::path::Path;

use plan_jobsim::{FaultRule, RecordedRequest, RunningSim};

pub(crate) struct SimServer {
    runtime: tokio::runtime::Runtime,
    sim: Option<RunningSim>,
    /// The base URL (`http://127.0.0.1:PORT`): ESB's paths hang below it.
    pub(crate) url: String,
}

impl SimServer {
    /// Serves the sandbox at `root` (its `jobsim.toml`, if any, shapes the world).
    pub(crate) fn start(root: &Path) -> SimServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = runtime
            .block_on(plan_jobsim::JobSim::start(
                root,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("jobsim");
        let url = sim.base_url();
        SimServer {
            runtime,
            sim: Some(sim),
            url,
        }
    }

    /// The API gateway's base URL for the `prod` stage.
    pub(crate) fn gateway(&self) -> String {
        format!("{}/api/bk-job/prod", self.url)
    }

    pub(crate) fn running(&self) -> &RunningSim {
        self.sim.as_ref().expect("running until dropped")
    }

    /// The runtime the simulator runs on, for servers a test puts in front of it.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Every call the simulator has answered (or dropped), oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.running().requests()
    }

    /// Makes the next `count` calls of `api` meet the fault `kind` (as `jobsim.toml` names it).
    pub(crate) fn inject(&self, api: &str, kind: &str, count: u64) {
        let kind = kind.parse().expect("a fault kind jobsim knows");
        self.running()
            .state()
            .inject(FaultRule::next(api, kind, count));
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

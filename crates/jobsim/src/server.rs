//! The simulator's life cycle: its shared state, the router, and a server on a socket
//! (started, refusing connections for a while, shut down). What happens to one request is in
//! `dispatch`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;

use crate::config::{App, Config, FaultRule};
use crate::dispatch::dispatch;
use crate::engine::{Engine, Timings};
use crate::error::Error;
use crate::faults::Faults;
use crate::persist::STORE_DIR;
use crate::reqlog::{RecordedRequest, RequestLog};
use crate::world::World;

/// Programmatic settings on top of (or instead of) `ROOT/jobsim.toml`.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Use this configuration instead of reading `ROOT/jobsim.toml`.
    pub config: Option<Config>,
    /// Do not write `ROOT/.jobsim/requests.jsonl` (calls are still kept in memory).
    pub no_request_file: bool,
    /// Keep jobs in memory only: no job store under `ROOT/.jobsim/jobs`, so a simulator
    /// started again on the root knows none of them.
    pub no_job_store: bool,
    /// Refuse new jobs with `1244032` once this many are running.
    pub max_running_jobs: Option<usize>,
    /// Accept calls that carry no credentials at all (as user `admin`); calls that do carry
    /// credentials are still checked. For embedding where no credentials exist.
    pub allow_anonymous: bool,
    /// Apps registered on top of `jobsim.toml`'s `[[app]]` tables.
    pub apps: Vec<App>,
    /// Accept only credentials the simulator can verify: a registered app's code and secret.
    /// Tokens, signatures and anonymous calls are refused. Always on when the simulator
    /// listens on a non-loopback address.
    pub verified_credentials_only: bool,
}

/// Shared state behind the router.
#[derive(Debug)]
pub struct SimState {
    pub(crate) engine: Arc<Engine>,
    faults: Mutex<Faults>,
    pub(crate) log: RequestLog,
    pub(crate) max_running_jobs: Option<usize>,
    pub(crate) allow_anonymous: bool,
    pub(crate) verified_only: bool,
    pub(crate) max_body: usize,
    /// Bodies parsed at once: a parsed body takes tens of times its size in memory.
    pub(crate) parse_gate: tokio::sync::Semaphore,
}

impl SimState {
    /// Builds the state for a sandbox root: reads `ROOT/jobsim.toml` unless
    /// `options.config` is given, and creates `ROOT/hosts` and `ROOT/.jobsim`.
    pub fn new(root: impl Into<PathBuf>, options: SimOptions) -> Result<Arc<Self>, Error> {
        let root = root.into();
        let mut config = match options.config {
            Some(c) => c,
            None => Config::load(&root)?,
        };
        config.apps.extend(options.apps);
        std::fs::create_dir_all(root.join("hosts"))
            .map_err(|e| Error::Io(format!("{}: {e}", root.display())))?;
        let log_file = if options.no_request_file {
            None
        } else {
            let dir = root.join(".jobsim");
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
            Some(dir.join("requests.jsonl"))
        };
        let sim = &config.sim;
        let timings = Timings {
            start_delay: Duration::from_millis(sim.start_delay_ms),
            host_wait: Duration::from_millis(sim.host_wait_ms),
            stop_delay: Duration::from_millis(sim.stop_delay_ms),
            speed_mb: (sim.speed_mb > 0).then_some(sim.speed_mb),
            form_callback: sim.callback_mode == "form",
            ignore_start_task: sim.ignore_start_task,
            keep_jobs: sim.keep_jobs,
        };
        let faults = Faults::new(&config.faults, sim.seed);
        let sim_quota = sim.max_running_jobs;
        let log = RequestLog::new(sim.request_log_bytes, log_file);
        let max_body = sim.max_body_bytes;
        let store = if options.no_job_store {
            None
        } else {
            let store = crate::persist::Store::open(&root)
                .map_err(|e| Error::Io(format!("{}: {e}", root.join(STORE_DIR).display())))?;
            Some(Arc::new(store))
        };
        let world = Arc::new(World::new(root, config));
        let engine = Arc::new(Engine::new(world, timings));
        if let Some(store) = store {
            let _ = engine.store.set(store.clone());
            crate::persist::restore(&engine, &store);
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::spawn(crate::persist::write_changes(
                    Arc::downgrade(&engine),
                    store,
                ));
            }
        }
        Ok(Arc::new(Self {
            engine,
            faults: Mutex::new(faults),
            log,
            max_running_jobs: options
                .max_running_jobs
                .or((sim_quota > 0).then_some(sim_quota)),
            allow_anonymous: options.allow_anonymous && !options.verified_credentials_only,
            verified_only: options.verified_credentials_only,
            max_body,
            parse_gate: tokio::sync::Semaphore::new(PARSE_PERMITS),
        }))
    }

    /// Adds a fault rule at run time (same meaning as a `[[fault]]` table).
    pub fn inject(&self, rule: FaultRule) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.add(rule);
        }
    }

    /// The fault that fires on this call to `api`, if any.
    pub(crate) fn take_fault(&self, api: &str) -> Option<FaultRule> {
        self.faults.lock().ok().and_then(|mut f| f.take(api))
    }

    /// The calls answered so far that the log still keeps (`[sim] request_log_bytes` of the
    /// newest), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.requests()
    }

    /// How many of the oldest calls the in-memory log has let go to stay within its budget.
    pub fn requests_dropped(&self) -> u64 {
        self.log.dropped()
    }
}

/// Request bodies parsed at the same time.
const PARSE_PERMITS: usize = 4;

/// The simulator's router (both front doors), for serving or in-process tests.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// Entry point for starting a simulator on a socket.
#[derive(Debug)]
pub struct JobSim;

impl JobSim {
    /// Serves the sandbox at `root` on `listen` (`127.0.0.1:0` picks a free port), reading
    /// `ROOT/jobsim.toml` if present.
    pub async fn start(root: impl Into<PathBuf>, listen: SocketAddr) -> Result<RunningSim, Error> {
        Self::start_with(root, listen, SimOptions::default()).await
    }

    /// Like [`JobSim::start`], with programmatic options.
    ///
    /// On a non-loopback address (`0.0.0.0` included) other machines can call the simulator,
    /// so it starts only with registered apps and accepts only their code and secret
    /// ([`SimOptions::verified_credentials_only`]); with no `[[app]]` it refuses to start
    /// ([`Error::Exposed`]).
    pub async fn start_with(
        root: impl Into<PathBuf>,
        listen: SocketAddr,
        mut options: SimOptions,
    ) -> Result<RunningSim, Error> {
        let exposed = !listen.ip().is_loopback();
        options.verified_credentials_only |= exposed;
        let state = SimState::new(root, options)?;
        if exposed && state.engine.world.config().apps.is_empty() {
            return Err(Error::Exposed { addr: listen });
        }
        let listener = bind(listen).map_err(|e| Error::Bind {
            addr: listen,
            message: e.to_string(),
        })?;
        let addr = listener.local_addr().map_err(|e| Error::Bind {
            addr: listen,
            message: e.to_string(),
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (refuse_tx, refuse_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
        let task = tokio::spawn(serve(listener, addr, state.clone(), rx, refuse_rx));
        Ok(RunningSim {
            addr,
            state,
            shutdown: Some(tx),
            refuse: refuse_tx,
            task,
        })
    }
}

impl JobSim {
    /// A simulator for one caller on this machine: on `127.0.0.1` (a free port), with a fresh
    /// app of random code and secret registered (on top of `jobsim.toml`'s), and only
    /// verified credentials accepted. Other local processes can reach the port but hold no
    /// credentials it accepts. Returns the app to call it with.
    pub async fn start_private(root: impl Into<PathBuf>) -> Result<(RunningSim, App), Error> {
        let app = App {
            code: format!("jobsim-{:08x}", rand::random::<u32>()),
            secret: format!("{:032x}", rand::random::<u128>()),
            allow_username: true,
            gateway_apis: None,
        };
        let options = SimOptions {
            apps: vec![app.clone()],
            verified_credentials_only: true,
            ..SimOptions::default()
        };
        let sim = Self::start_with(root, SocketAddr::from(([127, 0, 0, 1], 0)), options).await?;
        Ok((sim, app))
    }
}

/// Binds the simulator's listener. On a port the system picks, with `SO_REUSEPORT`: a
/// refusal can then hold the port while nothing listens on it ([`reserve`]). The system
/// never hands a port in a `SO_REUSEPORT` group to another `bind(0)`, and a fixed port keeps
/// the default, so two simulators started on the same fixed port still clash.
fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted simulator gets its port back at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if listen.port() == 0 {
        socket.set_reuseport(true)?;
    }
    socket.bind(listen)?;
    socket.listen(1024)
}

/// A socket bound to `addr` (beside the listener, in its `SO_REUSEPORT` group) that does not
/// listen: once the listener closes, connections are refused, and the port stays this
/// simulator's. Without it, another server starting meanwhile (a test running in parallel)
/// could be given the port, and calls meant for this simulator would reach a stranger that
/// knows none of its jobs. None when the listener is not in such a group (a fixed port).
fn reserve(addr: SocketAddr) -> Option<tokio::net::TcpSocket> {
    #[cfg(unix)]
    {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4().ok()?
        } else {
            tokio::net::TcpSocket::new_v6().ok()?
        };
        socket.set_reuseport(true).ok()?;
        socket.bind(addr).ok()?;
        Some(socket)
    }
    #[cfg(not(unix))]
    {
        let _ = addr;
        None
    }
}

/// Serves until shut down; a refusal closes the listener (and, gracefully, every
/// connection), leaves the port closed for its duration (held by [`reserve`] where it can
/// be), then listens on the same address again with the same state.
async fn serve(
    mut listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<SimState>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
    mut refusals: tokio::sync::mpsc::UnboundedReceiver<Duration>,
) {
    loop {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future();
        let mut server = std::pin::pin!(server);
        let pause = tokio::select! {
            _ = &mut server => return,
            _ = &mut shutdown => None,
            Some(pause) = refusals.recv() => Some(pause),
        };
        let reserved = pause.and_then(|_| reserve(addr));
        let _ = stop_tx.send(());
        let _ = server.await;
        let Some(pause) = pause else { return };
        // Nothing listens now: connection attempts are refused.
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = &mut shutdown => return,
        }
        if let Some(Ok(again)) = reserved.map(|socket| socket.listen(1024)) {
            listener = again;
            continue;
        }
        listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                // The port is free again within moments (SO_REUSEADDR); keep trying.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
    }
}

/// A simulator serving on a socket. Dropping it leaves the server running until the
/// runtime ends; call [`RunningSim::shutdown`] to stop it cleanly.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    refuse: tokio::sync::mpsc::UnboundedSender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// The bound address (with the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The calls answered so far that the log keeps (see [`SimState::requests`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }
    /// The shared state (for [`SimState::inject`]).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }
    /// Connection refused for `pause`: the listener is closed (open connections end once
    /// their request in flight is answered), nothing listens on the port, then the same state
    /// is served again on the same address. Jobs keep running meanwhile. Returns at once.
    pub fn refuse_for(&self, pause: Duration) {
        let _ = self.refuse.send(pause);
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

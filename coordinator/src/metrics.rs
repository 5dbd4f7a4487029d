//! `GET /metrics`: the coordinator's Prometheus metrics, in the text format (0.0.4) that
//! Prometheus scrapes and `promtool check metrics` reads. The route is behind the login like
//! every other (a scraper sends `Authorization: Bearer <token>`, see the README).
//!
//! Two kinds of values. What the coordinator already knows as state (sessions by state, agents
//! up or down, each link's round-trip time, the bytes the hubs hold for browsers) is read at
//! scrape time from the registry and the agents, so nothing on the hot paths or in the session
//! actor keeps a second copy. What happens (events relayed to browsers, replays, resyncs,
//! agent links coming up, speech jobs, HTTP requests) is counted where it happens, through the
//! handles here; each is an atomic add.
//!
//! What it is not: traces (`telemetry.rs`) or the access log (`access.rs`). Label values are
//! bounded sets (modes, reasons, HTTP methods and statuses, enrolled agents' names), never ids
//! or paths.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::{App, Routes};

/// The metrics of one coordinator (one [`App`]), in a registry of its own so that in-process
/// tests with several apps count apart.
pub struct Metrics {
    registry: Registry,
    /// One scrape at a time: a scrape resets and refills the scrape-time gauges.
    scrape: Mutex<()>,
    /// Agents whose link came up at least once since start (to tell reconnects).
    seen_agents: Mutex<HashSet<String>>,

    sessions: IntGaugeVec,
    agents: IntGaugeVec,
    agent_up: IntGaugeVec,
    link_rtt: GaugeVec,
    hub_bytes: IntGauge,
    hub_clients: IntGauge,

    relayed_frames: IntCounterVec,
    relayed_bytes: IntCounterVec,
    agent_events: IntCounter,
    replays: IntCounter,
    resyncs: IntCounterVec,
    link_connects: IntCounterVec,
    link_reconnects: IntCounterVec,
    speech_jobs: HistogramVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
}

/// Why a browser's frames were replaced by a fresh history.
#[derive(Debug, Clone, Copy)]
pub enum Resync {
    /// The browser read too slowly and its unread frames were dropped.
    Lagged,
    /// Events from the agent were lost (a hole in the sequence numbers).
    Gap,
}

/// A speech job's kind, for [`Metrics::speech_job`].
#[derive(Debug, Clone, Copy)]
pub enum Job {
    /// Speech-to-text (`/transcribe`).
    Transcribe,
    /// Text-to-speech (`/tts`), synthesised by an agent (cache hits are not jobs).
    Synthesize,
}

/// Counters of one browser socket's writer, resolved once per socket.
#[derive(Clone)]
pub struct Relay {
    frames: IntCounter,
    bytes: IntCounter,
}

impl Relay {
    /// `frames` frames of `bytes` bytes in all were written to the browser.
    pub fn written(&self, frames: u64, bytes: u64) {
        self.frames.inc_by(frames);
        self.bytes.inc_by(bytes);
    }
}

/// Buckets from 10 ms to about 5 min: an HTTP answer, a transcription and a synthesis all fit.
fn duration_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.01, 2.0, 15).expect("valid buckets")
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let r = &registry;
        let sessions = reg(
            r,
            IntGaugeVec::new(
                Opts::new("piface_sessions", "Sessions by state: starting (pi not up yet), live, closed."),
                &["state"],
            )
            .unwrap(),
        );
        let agents = reg(
            r,
            IntGaugeVec::new(Opts::new("piface_agents", "Agents known, by status (up, down)."), &["status"]).unwrap(),
        );
        let agent_up = reg(
            r,
            IntGaugeVec::new(Opts::new("piface_agent_up", "1 while the agent is connected, else 0."), &["agent"])
                .unwrap(),
        );
        let link_rtt = reg(
            r,
            GaugeVec::new(
                Opts::new(
                    "piface_agent_link_rtt_seconds",
                    "Round-trip time of each connected remote agent's QUIC link (quinn's estimate).",
                ),
                &["agent"],
            )
            .unwrap(),
        );
        let hub_bytes = reg(
            r,
            IntGauge::new(
                "piface_hub_buffered_bytes",
                "Bytes of frames the coordinator's session journals (hubs) hold for browsers that have not read them.",
            )
            .unwrap(),
        );
        let hub_clients =
            reg(r, IntGauge::new("piface_browser_clients", "Browser sockets attached to sessions.").unwrap());
        let relayed_frames = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "piface_relayed_frames_total",
                    "Frames (pi's events and Piface's own) written to browsers, by socket mode (full, compact).",
                ),
                &["mode"],
            )
            .unwrap(),
        );
        let relayed_bytes = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "piface_relayed_bytes_total",
                    "Bytes of frames written to browsers, by socket mode (full, compact).",
                ),
                &["mode"],
            )
            .unwrap(),
        );
        let agent_events = reg(
            r,
            IntCounter::new("piface_agent_events_total", "pi events received from agents (resent ones included).")
                .unwrap(),
        );
        let replays = reg(
            r,
            IntCounter::new(
                "piface_replays_total",
                "History replays asked of pi for a browser (piface_get_history, or a resync).",
            )
            .unwrap(),
        );
        let resyncs = reg(
            r,
            IntCounterVec::new(
                Opts::new("piface_resyncs_total", "Browsers resynchronised with a fresh history, by reason (lagged: read too slowly; gap: events were lost)."),
                &["reason"],
            )
            .unwrap(),
        );
        let link_connects = reg(
            r,
            IntCounterVec::new(Opts::new("piface_agent_connects_total", "Agent links that came up."), &["agent"])
                .unwrap(),
        );
        let link_reconnects = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "piface_agent_reconnects_total",
                    "Agent links that came up again after an earlier link of the same agent.",
                ),
                &["agent"],
            )
            .unwrap(),
        );
        let speech_jobs = reg(
            r,
            HistogramVec::new(
                HistogramOpts::new("piface_speech_job_duration_seconds", "Speech jobs sent to agents, from request to answer, by kind (transcribe, synthesize) and outcome (ok, error).")
                    .buckets(duration_buckets()),
                &["kind", "outcome"],
            )
            .unwrap(),
        );
        let http_requests = reg(
            r,
            IntCounterVec::new(
                Opts::new("piface_http_requests_total", "HTTP requests answered, by method and status."),
                &["method", "status"],
            )
            .unwrap(),
        );
        let http_duration = reg(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "piface_http_request_duration_seconds",
                    "Time to answer an HTTP request (a WebSocket: until the upgrade), by method.",
                )
                .buckets(duration_buckets()),
                &["method"],
            )
            .unwrap(),
        );
        Metrics {
            registry,
            scrape: Mutex::default(),
            seen_agents: Mutex::default(),
            sessions,
            agents,
            agent_up,
            link_rtt,
            hub_bytes,
            hub_clients,
            relayed_frames,
            relayed_bytes,
            agent_events,
            replays,
            resyncs,
            link_connects,
            link_reconnects,
            speech_jobs,
            http_requests,
            http_duration,
        }
    }

    /// The counters of a browser socket in compact or full mode.
    pub fn relay(&self, compact: bool) -> Relay {
        let mode = if compact { "compact" } else { "full" };
        Relay {
            frames: self.relayed_frames.with_label_values(&[mode]),
            bytes: self.relayed_bytes.with_label_values(&[mode]),
        }
    }

    /// `n` pi events arrived from an agent.
    pub fn agent_events(&self, n: u64) {
        self.agent_events.inc_by(n);
    }

    /// A history replay was asked of pi for a browser.
    pub fn replay(&self) {
        self.replays.inc();
    }

    /// Browsers were resynchronised.
    pub fn resync(&self, why: Resync) {
        let reason = match why {
            Resync::Lagged => "lagged",
            Resync::Gap => "gap",
        };
        self.resyncs.with_label_values(&[reason]).inc();
    }

    /// `agent`'s link came up.
    pub fn link_up(&self, agent: &str) {
        self.link_connects.with_label_values(&[agent]).inc();
        if !self.seen_agents.lock().unwrap().insert(agent.to_string()) {
            self.link_reconnects.with_label_values(&[agent]).inc();
        }
    }

    /// A speech job took `took` and succeeded or not.
    pub fn speech_job(&self, job: Job, ok: bool, took: Duration) {
        let kind = match job {
            Job::Transcribe => "transcribe",
            Job::Synthesize => "synthesize",
        };
        self.speech_jobs.with_label_values(&[kind, if ok { "ok" } else { "error" }]).observe(took.as_secs_f64());
    }

    /// An HTTP request was answered.
    pub fn http_request(&self, method: &axum::http::Method, status: StatusCode, took: Duration) {
        // Methods outside the standard set are one label value, so a client cannot mint series.
        let method = match method.as_str() {
            m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
            _ => "other",
        };
        self.http_requests.with_label_values(&[method, status.as_str()]).inc();
        self.http_duration.with_label_values(&[method]).observe(took.as_secs_f64());
    }

    /// The text exposition of everything, with the scrape-time values read from `app` now.
    pub fn render(&self, app: &App) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap();
        let stats = app.registry.stats();
        self.sessions.with_label_values(&["starting"]).set(stats.starting as i64);
        self.sessions.with_label_values(&["live"]).set(stats.live as i64);
        self.sessions.with_label_values(&["closed"]).set(stats.closed as i64);
        self.hub_bytes.set(stats.hub_bytes as i64);
        self.hub_clients.set(stats.clients as i64);
        // Agents removed since the last scrape leave no stale series.
        self.agent_up.reset();
        self.link_rtt.reset();
        let (mut up, mut down) = (0, 0);
        for agent in app.agents.list() {
            let is_up = agent.status == "up";
            if is_up {
                up += 1;
            } else {
                down += 1;
            }
            self.agent_up.with_label_values(&[&agent.name]).set(i64::from(is_up));
        }
        self.agents.with_label_values(&["up"]).set(up);
        self.agents.with_label_values(&["down"]).set(down);
        for (agent, rtt) in app.agents.link_rtts() {
            self.link_rtt.with_label_values(&[&agent]).set(rtt.as_secs_f64());
        }
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!("encoding the metrics: {e}");
        }
        out
    }
}

/// The route of this module.
pub fn routes() -> Routes {
    vec![("/metrics", get(scrape))]
}

/// `GET /metrics`.
async fn scrape(State(app): State<Arc<App>>) -> Response {
    let body = app.metrics.render(&app);
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

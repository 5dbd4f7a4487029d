//! Models an agent serves to the cluster — speech-to-text and text-to-speech: where each one
//! stands (what the agent advertises in its hello), the jobs it runs, and fetching a model from
//! the Hugging Face hub into the local cache with progress (bytes, rate, ETA) in the log and in
//! the hello, hence in the coordinator's `GET /api/agents`.
//!
//! Fetching goes through `piface-hub` (`hf-hub`'s client), so the cache it fills is the one the
//! Python tools use (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`) and
//! `HF_ENDPOINT` points it at a mirror. `HF_HUB_OFFLINE=1` never touches the network. Which
//! files of a repo make a model is the worker's ([`Source::pick`]); the repo id's rule is
//! `piface-hub`'s ([`piface_hub::ModelRef`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use piface_hub::{HubCache, Location, ModelRef, Remote};
use piface_shared::protocol::{ModelService, ModelState};
use tracing::info;

/// The kinds of model service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Speech-to-text.
    Stt,
    /// Text-to-speech.
    Tts,
}

impl Kind {
    fn slot(self) -> &'static Slot {
        match self {
            Kind::Stt => &STT,
            Kind::Tts => &TTS,
        }
    }

    /// For log lines.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Stt => "speech-to-text",
            Kind::Tts => "text-to-speech",
        }
    }
}

struct Slot {
    status: Mutex<Option<(String, String, ModelState)>>,
    busy: AtomicU32,
    done: AtomicU64,
}

static STT: Slot = Slot { status: Mutex::new(None), busy: AtomicU32::new(0), done: AtomicU64::new(0) };
static TTS: Slot = Slot { status: Mutex::new(None), busy: AtomicU32::new(0), done: AtomicU64::new(0) };

/// Woken whenever a status changes, so the agent can say hello again.
pub static CHANGED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Records where `kind`'s model stands (`model` as asked for, `device` where it runs).
pub fn set(kind: Kind, model: &str, device: &str, state: ModelState) {
    *kind.slot().status.lock().unwrap() = Some((model.to_string(), device.to_string(), state));
    CHANGED.notify_one();
}

/// What the agent advertises of `kind`.
pub fn snapshot(kind: Kind) -> Option<ModelService> {
    let slot = kind.slot();
    let status = slot.status.lock().unwrap();
    let (model, device, state) = status.as_ref()?;
    Some(ModelService {
        model: model.clone(),
        device: device.clone(),
        state: state.clone(),
        busy: slot.busy.load(Ordering::Relaxed),
        done: slot.done.load(Ordering::Relaxed),
    })
}

/// One job on a model service, counted as busy while it lives.
pub struct Job(Kind);

impl Job {
    /// Counts a job in.
    pub fn start(kind: Kind) -> Job {
        kind.slot().busy.fetch_add(1, Ordering::Relaxed);
        CHANGED.notify_one();
        Job(kind)
    }

    /// The job produced its result.
    pub fn finished(self) {
        self.0.slot().done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.0.slot().busy.fetch_sub(1, Ordering::Relaxed);
        CHANGED.notify_one();
    }
}

/// Where a kind of model comes from: its crate's local lookup, and which files of a repo it
/// needs.
pub struct Source {
    /// Finds `spec` on disk (a path, or a repo id in the hub cache).
    pub resolve: fn(&str) -> Result<std::path::PathBuf, String>,
    /// The files of a repo the model needs, given its file list.
    pub pick: fn(&str, &[String]) -> Vec<String>,
}

/// Loads `kind`'s model `spec` for `service`: finds it on disk, fetching it first when it is a
/// repo missing from the cache and fetching is allowed, then runs `load` off the async threads
/// on the service's device. `kind`'s status follows along (loading, downloading, failed); the
/// caller marks it ready once the model serves.
pub async fn load<M: Send + 'static>(
    kind: Kind,
    service: &crate::ServiceConfig,
    spec: &str,
    source: Source,
    load: impl FnOnce(&std::path::Path, candle_core::Device) -> Result<M, String> + Send + 'static,
) -> Result<M, String> {
    let device_label = service.device_label();
    let fail = |e: String| {
        set(kind, &service.model, &device_label, ModelState::Failed { error: e.clone() });
        e
    };
    set(kind, &service.model, &device_label, ModelState::Loading);
    let path = match (source.resolve)(spec) {
        Ok(path) => path,
        Err(e) => match repo(spec).filter(|_| service.download && !piface_hub::offline()) {
            Some(model) => {
                info!(model = spec, "not in the local Hugging Face cache ({e}); downloading");
                fetch(kind, &model, &device_label, HubCache::from_env(), source.pick).await.map_err(fail)?;
                set(kind, &service.model, &device_label, ModelState::Loading);
                (source.resolve)(spec).map_err(fail)?
            }
            None => return Err(fail(e)),
        },
    };
    let device = crate::speech::device(service.gpu.as_ref()).map_err(fail)?;
    let started = Instant::now();
    let shown = path.display().to_string();
    let model = tokio::task::spawn_blocking(move || load(&path, device))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(fail)?;
    info!(
        model = service.model,
        path = shown,
        device = device_label,
        secs = format!("{:.2}", started.elapsed().as_secs_f32()),
        "{} model loaded",
        kind.label()
    );
    Ok(model)
}

/// The Hugging Face repo `spec` names (`owner/name[@revision]`, under `piface-hub`'s rule), unless
/// it is a local path.
pub fn repo(spec: &str) -> Option<ModelRef> {
    match Location::of(spec) {
        Ok(Location::Repo(model)) => Some(model),
        Ok(Location::Path(_)) | Err(_) => None,
    }
}

/// Fetches into `cache` the files of `model` that `pick` chooses from the repo's file list
/// (files already cached are kept), reporting progress to `kind`'s status.
pub async fn fetch(
    kind: Kind,
    model: &ModelRef,
    device: &str,
    cache: HubCache,
    pick: fn(&str, &[String]) -> Vec<String>,
) -> Result<(), String> {
    let spec = model.to_string();
    let remote = Remote::new(&cache, model).map_err(|e| e.to_string())?;
    let names = remote.files().await.map_err(|e| e.to_string())?;
    let files = pick(model.repo(), &names);
    if files.is_empty() {
        return Err(format!("{spec} on the Hugging Face hub has no model files this agent can load"));
    }
    let tracker = Tracker::new(kind, &spec, device);
    for file in files {
        if remote.is_cached(&file) {
            continue;
        }
        info!(model = spec, file, "downloading {} model", kind.label());
        remote.download(&file, tracker.clone()).await.map_err(|e| e.to_string())?;
    }
    tracker.log(true);
    Ok(())
}

/// Download progress of all the files of one model, shared by hf-hub's parallel chunk tasks.
#[derive(Clone)]
struct Tracker(Arc<Mutex<Progressed>>);

struct Progressed {
    kind: Kind,
    model: String,
    device: String,
    file: String,
    /// Bytes of finished files plus the current file's size.
    total: u64,
    done: u64,
    /// (when, done) over the last few seconds, for the rate.
    samples: VecDeque<(Instant, u64)>,
    last_report: Option<Instant>,
    last_log: Instant,
}

/// How often the status (and so a hello) is refreshed while downloading.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the log says how far it got.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// The window the rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(5);

impl Tracker {
    fn new(kind: Kind, model: &str, device: &str) -> Tracker {
        Tracker(Arc::new(Mutex::new(Progressed {
            kind,
            model: model.to_string(),
            device: device.to_string(),
            file: String::new(),
            total: 0,
            done: 0,
            samples: VecDeque::new(),
            last_report: None,
            last_log: Instant::now(),
        })))
    }

    fn log(&self, finished: bool) {
        let p = self.0.lock().unwrap();
        let state = p.state();
        if let ModelState::Downloading { done_bytes, total_bytes, bytes_per_s, eta_s, .. } = state {
            info!(
                model = p.model,
                file = p.file,
                done_mib = done_bytes >> 20,
                total_mib = total_bytes >> 20,
                mib_per_s = format!("{:.1}", bytes_per_s as f64 / (1 << 20) as f64),
                eta_s,
                "{} model {}",
                p.kind.label(),
                if finished { "downloaded" } else { "downloading" }
            );
        }
    }
}

impl Progressed {
    fn rate(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, d0)), Some(&(t1, d1))) if t1 > t0 => {
                ((d1 - d0) as f64 / (t1 - t0).as_secs_f64()).round() as u64
            }
            _ => 0,
        }
    }

    fn state(&self) -> ModelState {
        let rate = self.rate();
        let left = self.total.saturating_sub(self.done);
        ModelState::Downloading {
            file: self.file.clone(),
            done_bytes: self.done,
            total_bytes: self.total,
            bytes_per_s: rate,
            eta_s: (rate > 0).then(|| left.div_ceil(rate)),
        }
    }

    fn report(&mut self, force: bool) {
        let now = Instant::now();
        self.samples.push_back((now, self.done));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|(t, _)| now - *t > RATE_WINDOW) {
            self.samples.pop_front();
        }
        if force || self.last_report.is_none_or(|t| now - t >= REPORT_EVERY) {
            self.last_report = Some(now);
            set(self.kind, &self.model, &self.device, self.state());
        }
    }
}

impl piface_hub::Progress for Tracker {
    fn start(&mut self, file: &str, size: u64) {
        {
            let mut p = self.0.lock().unwrap();
            p.file = file.to_string();
            p.total += size;
            p.report(true);
        }
        self.log(false);
    }

    fn advance(&mut self, bytes: u64) {
        let log = {
            let mut p = self.0.lock().unwrap();
            p.done += bytes;
            p.report(false);
            let due = p.last_log.elapsed() >= LOG_EVERY;
            if due {
                p.last_log = Instant::now();
            }
            due
        };
        if log {
            self.log(false);
        }
    }

    fn finish(&mut self) {
        self.0.lock().unwrap().report(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_fetched_and_paths_are_not() {
        assert_eq!(repo("kakao-enterprise/vits-ljs@v1").map(|m| m.revision().to_string()), Some("v1".into()));
        assert!(repo("nvidia/parakeet-tdt-0.6b-v3").is_some());
        for local in ["/models/x.nemo", "./x/y", "../x", "a/b/c", "~/m", "org/m@../../x"] {
            assert!(repo(local).is_none(), "{local}");
        }
        // Something on disk is a path, whatever its name looks like.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org");
        std::fs::create_dir_all(path.join("name")).unwrap();
        assert!(repo(&path.join("name").display().to_string()).is_none());
    }

    #[test]
    fn progress_gives_rate_and_eta() {
        let t = Tracker::new(Kind::Tts, "org/m", "cpu");
        let mut p = t.0.lock().unwrap();
        p.total = 1000;
        let t0 = Instant::now();
        p.samples.push_back((t0, 0));
        p.samples.push_back((t0 + Duration::from_secs(2), 200));
        p.done = 200;
        let ModelState::Downloading { bytes_per_s, eta_s, done_bytes, total_bytes, .. } = p.state() else {
            panic!("not downloading")
        };
        assert_eq!((bytes_per_s, eta_s, done_bytes, total_bytes), (100, Some(8), 200, 1000));
    }
}

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
use std::sync::{Arc, Mutex, OnceLock};
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
    /// For log lines.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Stt => "speech-to-text",
            Kind::Tts => "text-to-speech",
        }
    }
}

/// The model services of one agent: where each stands, its job counts, and the loaded models.
///
/// [`crate::spawn`] makes one per agent (two agents in one process, as in tests, share nothing) and
/// hands it out as an `Arc`: to the loading tasks, the request handlers, the hello
/// ([`crate::agent_hello`]) and the link ([`crate::AgentLink::models`]).
#[derive(Default)]
pub struct Models {
    stt: Slot,
    tts: Slot,
    /// The speech model, once loaded (set once: a service loads at start-up, in the background).
    speech: OnceLock<Arc<crate::speech::Worker>>,
    /// The voice, once loaded.
    voice: OnceLock<Arc<crate::tts::Worker>>,
    /// Woken whenever a status changes, so the agent can say hello again.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Slot {
    /// (model as asked for, device label, state); `None` while the service is off.
    status: Mutex<Option<(String, String, ModelState)>>,
    busy: AtomicU32,
    done: AtomicU64,
}

impl Models {
    /// No service yet.
    pub fn new() -> Arc<Models> {
        Arc::default()
    }

    fn slot(&self, kind: Kind) -> &Slot {
        match kind {
            Kind::Stt => &self.stt,
            Kind::Tts => &self.tts,
        }
    }

    /// Records where `kind`'s model stands (`model` as asked for, `device` where it runs).
    pub fn set(&self, kind: Kind, model: &str, device: &str, state: ModelState) {
        *self.slot(kind).status.lock().unwrap() = Some((model.to_string(), device.to_string(), state));
        self.changed.notify_one();
    }

    /// What the agent advertises of `kind`.
    pub fn snapshot(&self, kind: Kind) -> Option<ModelService> {
        let slot = self.slot(kind);
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

    /// Waits until a status or a job count changes (a change while nobody waited counts once).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Counts a job on `kind` in, until the [`Job`] is dropped.
    pub fn job(self: &Arc<Self>, kind: Kind) -> Job {
        self.slot(kind).busy.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
        Job { models: self.clone(), kind }
    }

    /// The speech model, once it is loaded.
    pub fn speech(&self) -> Option<Arc<crate::speech::Worker>> {
        self.speech.get().cloned()
    }

    /// The voice, once it is loaded.
    pub fn voice(&self) -> Option<Arc<crate::tts::Worker>> {
        self.voice.get().cloned()
    }

    /// Keeps the loaded speech model (the first one: a service loads once).
    pub(crate) fn set_speech(&self, worker: Arc<crate::speech::Worker>) {
        let _ = self.speech.set(worker);
    }

    /// Keeps the loaded voice (the first one).
    pub(crate) fn set_voice(&self, worker: Arc<crate::tts::Worker>) {
        let _ = self.voice.set(worker);
    }
}

/// One job on a model service, counted as busy while it lives.
pub struct Job {
    models: Arc<Models>,
    kind: Kind,
}

impl Job {
    /// The job produced its result.
    pub fn finished(self) {
        self.models.slot(self.kind).done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.models.slot(self.kind).busy.fetch_sub(1, Ordering::Relaxed);
        self.models.changed.notify_one();
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

impl Models {
    /// Loads `kind`'s model `spec` for `service`: finds it on disk, fetching it first when it is a
    /// repo missing from the cache and fetching is allowed, then runs `load` off the async threads
    /// on the service's device. `kind`'s status follows along (loading, downloading, failed); the
    /// caller marks it ready once the model serves.
    pub async fn load<M: Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        service: &crate::ServiceConfig,
        spec: &str,
        source: Source,
        load: impl FnOnce(&std::path::Path, candle_core::Device) -> Result<M, String> + Send + 'static,
    ) -> Result<M, String> {
        let device_label = service.device_label();
        let fail = |e: String| {
            self.set(kind, &service.model, &device_label, ModelState::Failed { error: e.clone() });
            e
        };
        self.set(kind, &service.model, &device_label, ModelState::Loading);
        let path = match (source.resolve)(spec) {
            Ok(path) => path,
            Err(e) => match repo(spec).filter(|_| service.download && !piface_hub::offline()) {
                Some(model) => {
                    info!(model = spec, "not in the local Hugging Face cache ({e}); downloading");
                    let remote = Remote::new(&HubCache::from_env(), &model).map_err(|e| fail(e.to_string()))?;
                    self.fetch(kind, &remote, &device_label, source.pick).await.map_err(fail)?;
                    self.set(kind, &service.model, &device_label, ModelState::Loading);
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

    /// Fetches the files of `remote`'s repo that `pick` chooses from its file list (files already
    /// cached are kept), reporting progress to `kind`'s status.
    pub async fn fetch(
        self: &Arc<Self>,
        kind: Kind,
        remote: &Remote,
        device: &str,
        pick: fn(&str, &[String]) -> Vec<String>,
    ) -> Result<(), String> {
        let spec = remote.model().to_string();
        let names = remote.files().await.map_err(|e| e.to_string())?;
        let files = pick(remote.model().repo(), &names);
        if files.is_empty() {
            return Err(format!("{spec} on the Hugging Face hub has no model files this agent can load"));
        }
        let tracker = Tracker::new(self.clone(), kind, &spec, device);
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
}

/// The Hugging Face repo `spec` names (`owner/name[@revision]`, under `piface-hub`'s rule), unless
/// it is a local path.
pub fn repo(spec: &str) -> Option<ModelRef> {
    match Location::of(spec) {
        Ok(Location::Repo(model)) => Some(model),
        Ok(Location::Path(_)) | Err(_) => None,
    }
}

/// Download progress of all the files of one model, shared by hf-hub's parallel chunk tasks.
#[derive(Clone)]
struct Tracker(Arc<Mutex<Progressed>>);

struct Progressed {
    models: Arc<Models>,
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
    fn new(models: Arc<Models>, kind: Kind, model: &str, device: &str) -> Tracker {
        Tracker(Arc::new(Mutex::new(Progressed {
            models,
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
            self.models.set(self.kind, &self.model, &self.device, self.state());
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
    fn two_agents_models_share_nothing() {
        let (a, b) = (Models::new(), Models::new());
        a.set(Kind::Stt, "org/m", "cpu", ModelState::Loading);
        let job = a.job(Kind::Stt);
        assert_eq!(a.snapshot(Kind::Stt).map(|s| (s.model, s.busy)), Some(("org/m".to_string(), 1)));
        assert!(b.snapshot(Kind::Stt).is_none(), "the other agent has no service");
        assert!(a.snapshot(Kind::Tts).is_none(), "nor has the other kind");
        job.finished();
        let s = a.snapshot(Kind::Stt).unwrap();
        assert_eq!((s.busy, s.done), (0, 1));
        let _dropped = a.job(Kind::Stt);
        drop(_dropped);
        assert_eq!(a.snapshot(Kind::Stt).map(|s| (s.busy, s.done)), Some((0, 1)), "a job that fails is not done");
        assert!(a.speech().is_none() && b.voice().is_none(), "nothing loaded");
    }

    #[tokio::test]
    async fn a_change_wakes_the_hello_of_its_own_agent_only() {
        let (a, b) = (Models::new(), Models::new());
        a.set(Kind::Tts, "org/v", "cpu", ModelState::Ready);
        tokio::time::timeout(Duration::from_secs(5), a.changed()).await.expect("a's change is seen");
        let quiet = tokio::time::timeout(Duration::from_millis(50), b.changed()).await;
        assert!(quiet.is_err(), "b saw no change");
    }

    #[tokio::test]
    async fn a_repo_is_fetched_into_the_cache_with_progress_in_its_agents_status() {
        use piface_hub::HubCache;
        let data = bytes::Bytes::from(vec![7u8; 40_000]);
        let repo = vec![
            ("README.md".to_string(), bytes::Bytes::from_static(b"tiny")),
            ("voice.bin".to_string(), data.clone()),
        ];
        let hub = piface_test_support::fake_hub::FakeHub::start([("org/voice".to_string(), repo)].into(), 100_000)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = HubCache::new(dir.path());
        let model = ModelRef::parse("org/voice").unwrap();
        let remote = Remote::at(Some(&hub.endpoint), &cache, &model).unwrap();
        let (models, other) = (Models::new(), Models::new());
        let pick = |_: &str, files: &[String]| files.iter().filter(|f| f.ends_with(".bin")).cloned().collect();
        models.fetch(Kind::Tts, &remote, "cpu", pick).await.unwrap();
        let file = cache.get(&model, "voice.bin").expect("in the cache, laid out as the Python tools do");
        assert_eq!(std::fs::read(file).unwrap(), data);
        assert!(cache.get(&model, "README.md").is_none(), "only the picked files");
        let Some(ModelState::Downloading { file, done_bytes, total_bytes, .. }) =
            models.snapshot(Kind::Tts).map(|s| s.state)
        else {
            panic!("no progress: {:?}", models.snapshot(Kind::Tts).map(|s| s.state))
        };
        assert_eq!((file.as_str(), done_bytes, total_bytes), ("voice.bin", 40_000, 40_000));
        assert!(other.snapshot(Kind::Tts).is_none(), "another agent's status is untouched");
        // Fetched once: a second fetch finds the file cached and asks the hub for the list only.
        let served = hub.served();
        models.fetch(Kind::Tts, &remote, "cpu", pick).await.unwrap();
        assert_eq!(hub.served(), served);
        let err = models.fetch(Kind::Tts, &remote, "cpu", |_, _| Vec::new()).await.unwrap_err();
        assert!(err.contains("no model files"), "{err}");
    }

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
        let t = Tracker::new(Models::new(), Kind::Tts, "org/m", "cpu");
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

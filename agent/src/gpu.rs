//! GPU discovery with NVML: what this agent can offer the cluster for speech work.
//!
//! NVML (`libnvidia-ml.so`) is loaded at run time, so an agent without an NVIDIA driver builds
//! and runs the same and simply reports no GPU. Devices are numbered as CUDA numbers them under
//! `CUDA_DEVICE_ORDER=PCI_BUS_ID` (the `piface` binary sets it), and `CUDA_VISIBLE_DEVICES` is
//! honoured as CUDA honours it (ordinals or `GPU-…` UUID prefixes), so pinning an agent to one
//! card — the original's `make serve-audio-1080` — also pins what it advertises.

use piface_shared::protocol::GpuInfo;

/// The GPUs this process may use; empty without NVML or without a device.
pub fn discover() -> Vec<GpuInfo> {
    let nvml = match nvml_wrapper::Nvml::init() {
        Ok(nvml) => nvml,
        Err(e) => {
            tracing::debug!("no NVML, so no GPU: {e}");
            return Vec::new();
        }
    };
    let count = nvml.device_count().unwrap_or(0);
    let mut all = Vec::new();
    for index in 0..count {
        let Ok(device) = nvml.device_by_index(index) else { continue };
        let compute = device.cuda_compute_capability().ok();
        let memory = device.memory_info().ok();
        all.push(GpuInfo {
            index,
            name: device.name().unwrap_or_default(),
            uuid: device.uuid().unwrap_or_default(),
            memory_mib: memory.as_ref().map(|m| m.total >> 20).unwrap_or(0),
            memory_free_mib: memory.as_ref().map(|m| m.free >> 20).unwrap_or(0),
            compute_capability: compute.map(|c| format!("{}.{}", c.major, c.minor)),
            pci_bus_id: device.pci_info().map(|p| p.bus_id).unwrap_or_default(),
        });
    }
    visible(cuda_order(all), std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref())
}

/// The devices in CUDA's PCI-bus-id order, numbered as CUDA numbers them before
/// `CUDA_VISIBLE_DEVICES` applies. (NVML's own order is usually the same; this does not rely
/// on it.) Bus ids compare case-insensitively, with the domain's width normalised.
pub fn cuda_order(mut all: Vec<GpuInfo>) -> Vec<GpuInfo> {
    let key = |g: &GpuInfo| {
        let id = g.pci_bus_id.to_ascii_lowercase();
        match id.split_once(':') {
            // `0000:65:00.0` and `00000000:65:00.0` name the same device.
            Some((domain, rest)) => format!("{:0>8}:{rest}", domain.trim_start_matches('0')),
            None => id,
        }
    };
    all.sort_by_key(key);
    for (i, g) in all.iter_mut().enumerate() {
        g.index = i as u32;
    }
    all
}

/// The devices of `all` that `cuda_visible_devices` lets CUDA see, in its order, re-indexed as
/// CUDA numbers them. Unset: all. CUDA stops at the first entry it cannot resolve.
pub fn visible(all: Vec<GpuInfo>, cuda_visible_devices: Option<&str>) -> Vec<GpuInfo> {
    let Some(spec) = cuda_visible_devices else { return all };
    let mut out = Vec::new();
    for entry in spec.split(',').map(str::trim) {
        let found = if let Ok(i) = entry.parse::<u32>() {
            all.iter().find(|g| g.index == i)
        } else if entry.len() > 4 && entry.starts_with("GPU-") {
            let mut matches = all.iter().filter(|g| g.uuid.starts_with(entry));
            match (matches.next(), matches.next()) {
                (Some(g), None) => Some(g),
                _ => None, // unknown or ambiguous prefix
            }
        } else {
            None
        };
        let Some(g) = found else { break };
        if out.iter().any(|o: &GpuInfo| o.uuid == g.uuid) {
            break; // CUDA refuses duplicates
        }
        out.push(g.clone());
    }
    for (i, g) in out.iter_mut().enumerate() {
        g.index = i as u32;
    }
    out
}

/// The GPU a service should run on: the one whose name contains `name` (case-insensitive) or
/// whose UUID starts with `uuid`, else the first one; `Ok(None)` without any GPU and nothing
/// asked for. Asking for a GPU that is not there is an error that lists what there is.
pub fn choose(all: &[GpuInfo], name: Option<&str>, uuid: Option<&str>) -> Result<Option<GpuInfo>, String> {
    let found: Vec<&GpuInfo> = match (name, uuid) {
        (_, Some(u)) => all.iter().filter(|g| g.uuid.starts_with(u.trim())).collect(),
        (Some(n), None) => {
            let n = n.trim().to_lowercase();
            all.iter().filter(|g| g.name.to_lowercase().contains(&n)).collect()
        }
        (None, None) => return Ok(all.first().cloned()),
    };
    match found.first() {
        Some(g) if found.len() == 1 || uuid.is_none() => Ok(Some((*g).clone())),
        Some(_) => Err(format!("GPU UUID prefix {:?} is ambiguous: {}", uuid.unwrap_or_default(), list(all))),
        None => Err(format!(
            "no GPU matches {}: {}",
            uuid.map(|u| format!("UUID {u:?}")).or(name.map(|n| format!("name {n:?}"))).unwrap_or_default(),
            if all.is_empty() {
                "NVML reports none (is the NVIDIA driver installed and the GPU visible to this process, \
                 CUDA_VISIBLE_DEVICES included?)"
                    .to_string()
            } else {
                list(all)
            }
        )),
    }
}

fn list(all: &[GpuInfo]) -> String {
    let each: Vec<String> = all.iter().map(|g| format!("{}: {} ({})", g.index, g.name, g.uuid)).collect();
    format!("found {}", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, uuid: &str, name: &str) -> GpuInfo {
        GpuInfo {
            index,
            name: name.into(),
            uuid: uuid.into(),
            memory_mib: 11264,
            memory_free_mib: 11000,
            compute_capability: Some("6.1".into()),
            pci_bus_id: format!("00000000:{:02X}:00.0", index + 1),
        }
    }

    #[test]
    fn choosing_by_name_or_uuid() {
        let all = cards();
        assert_eq!(choose(&all, None, None).unwrap().unwrap().index, 0);
        assert_eq!(choose(&[], None, None).unwrap(), None);
        assert_eq!(choose(&all, Some("gtx 1080 ti"), None).unwrap().unwrap().uuid, "GPU-bbbb-2222");
        assert_eq!(choose(&all, None, Some("GPU-aaaa")).unwrap().unwrap().index, 0);
        let err = choose(&all, Some("GTX 1080"), Some("GPU-cccc")).unwrap_err();
        assert!(err.contains("GPU-cccc") && err.contains("GTX 1080 Ti (GPU-bbbb-2222)"), "{err}");
        assert!(choose(&all, None, Some("GPU-")).unwrap_err().contains("ambiguous"));
        assert!(choose(&[], Some("GTX 1080 Ti"), None).unwrap_err().contains("NVML reports none"));
    }

    #[test]
    fn cuda_ordinals_follow_the_pci_bus_ids() {
        // NVML listed the 1080 Ti (bus 0x65) before the 3090 (bus 0x17): CUDA's order is by bus.
        let mut ti = gpu(0, "GPU-bbbb-2222", "NVIDIA GeForce GTX 1080 Ti");
        ti.pci_bus_id = "00000000:65:00.0".into();
        let mut rtx = gpu(1, "GPU-aaaa-1111", "NVIDIA GeForce RTX 3090");
        rtx.pci_bus_id = "0000:17:00.0".into(); // a shorter domain, as some tools print it
        let ordered = cuda_order(vec![ti, rtx]);
        assert_eq!(names(&ordered), [(0, "NVIDIA GeForce RTX 3090"), (1, "NVIDIA GeForce GTX 1080 Ti")]);
        // CUDA_VISIBLE_DEVICES=1 is then the 1080 Ti, as CUDA itself would pick.
        assert_eq!(names(&visible(ordered, Some("1"))), [(0, "NVIDIA GeForce GTX 1080 Ti")]);
    }

    fn cards() -> Vec<GpuInfo> {
        vec![gpu(0, "GPU-aaaa-1111", "NVIDIA GeForce RTX 3090"), gpu(1, "GPU-bbbb-2222", "NVIDIA GeForce GTX 1080 Ti")]
    }

    fn names(v: &[GpuInfo]) -> Vec<(u32, &str)> {
        v.iter().map(|g| (g.index, g.name.as_str())).collect()
    }

    #[test]
    fn cuda_visible_devices_selects_reorders_and_renumbers() {
        assert_eq!(visible(cards(), None).len(), 2);
        assert!(visible(cards(), Some("")).is_empty(), "empty hides every device");
        assert_eq!(names(&visible(cards(), Some("1"))), [(0, "NVIDIA GeForce GTX 1080 Ti")]);
        assert_eq!(names(&visible(cards(), Some("GPU-bbbb"))), [(0, "NVIDIA GeForce GTX 1080 Ti")]);
        assert_eq!(
            names(&visible(cards(), Some("1,0"))),
            [(0, "NVIDIA GeForce GTX 1080 Ti"), (1, "NVIDIA GeForce RTX 3090")]
        );
        // Resolution stops at the first bad entry; an ambiguous UUID prefix is bad.
        assert_eq!(names(&visible(cards(), Some("0,7,1"))), [(0, "NVIDIA GeForce RTX 3090")]);
        assert!(visible(cards(), Some("GPU-")).is_empty());
        assert_eq!(visible(cards(), Some("0,0")).len(), 1);
    }

    #[test]
    fn without_a_driver_discovery_is_empty_not_an_error() {
        // This machine has no NVIDIA driver (CI neither); with one, the list is whatever it has.
        if std::path::Path::new("/proc/driver/nvidia").exists() {
            return;
        }
        assert!(discover().is_empty());
    }
}

//! The GTX 1080 Ti targets of the Makefile (`make serve-audio-1080` and its kin) refuse early and
//! say why, in the order a new user meets the problems: no nvcc, a CUDA that cannot build for
//! the card (13.x dropped Pascal), no such card. Run with stand-in `nvcc`/`nvidia-smi` scripts
//! first on PATH and an empty home (no cached toolkit); none of these runs gets to cargo.

use std::path::Path;
use std::process::Command;

use piface_test_support::pi_env::workspace_root;

/// `make -s <target>` in the repository with only `bin` and the system on PATH.
fn make(target: &str, bin: &Path, home: &Path) -> (i32, String) {
    let out = Command::new("make")
        .arg("-s")
        .arg(target)
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", home)
        .output()
        .expect("make runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const TARGETS: [&str; 6] = [
    "serve-audio-1080",
    "dev-audio-1080",
    "background-dev-audio-1080",
    "serve-speech-1080",
    "dev-speech-1080",
    "background-dev-speech-1080",
];

#[test]
fn the_1080_targets_need_cuda_12_then_the_card() {
    if Command::new("make").arg("--version").output().is_err() {
        panic!("make is needed for this test (Debian package make)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (bin, home) = (tmp.path().join("bin"), tmp.path().join("home"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    assert!(
        !Path::new("/usr/bin/nvcc").exists() && !Path::new("/bin/nvcc").exists(),
        "this test needs a machine without a system nvcc"
    );

    for target in TARGETS {
        // No nvcc anywhere: what to install, and the script that unpacks one.
        let (code, text) = make(target, &bin, &home);
        assert_ne!(code, 0, "{target}: {text}");
        assert!(text.contains("nvcc not found"), "{target}: {text}");
        assert!(text.contains("Install CUDA 12.x") && text.contains("scripts/cuda-toolkit.sh"), "{target}: {text}");
        assert!(!text.contains("GTX 1080 Ti not detected"), "nvcc is checked first: {text}");
    }

    // CUDA 13: it cannot build for compute capability 6.1.
    script(&bin, "nvcc", "echo 'Cuda compilation tools, release 13.0, V13.0.48'");
    let (code, text) = make("serve-audio-1080", &bin, &home);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("CUDA 13.0, which cannot build for compute capability 61"), "{text}");
    assert!(text.contains("Install CUDA 12.x"), "{text}");

    // CUDA 11 is too old for candle.
    script(&bin, "nvcc", "echo 'Cuda compilation tools, release 11.8, V11.8.89'");
    let (code, text) = make("serve-audio-1080", &bin, &home);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("needs CUDA 12"), "{text}");

    // CUDA 12.4 but no 1080 Ti (an nvidia-smi that lists another card): the original's message.
    script(&bin, "nvcc", "echo 'Cuda compilation tools, release 12.4, V12.4.131'");
    script(&bin, "nvidia-smi", "echo 'GPU-0a1b2c3d-0000-0000-0000-000000000000, NVIDIA H200'");
    for target in TARGETS {
        let (code, text) = make(target, &bin, &home);
        assert_ne!(code, 0, "{target}: {text}");
        assert!(text.contains("GTX 1080 Ti not detected via nvidia-smi."), "{target}: {text}");
        assert!(text.contains("for compute capability 61"), "the build is for the 1080 Ti: {text}");
    }
}

#[test]
fn cuda_env_forces_the_compatibility_header_only_below_compute_capability_7() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("cuda/bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(&bin, "nvcc", "echo 'Cuda compilation tools, release 12.4, V12.4.131'");
    let root = workspace_root();
    let env_of = |cap: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source scripts/cuda-env.sh {cap} 2>/dev/null && echo \"$CUDA_COMPUTE_CAP|$CUDA_HOME|${{NVCC_PREPEND_FLAGS:-}}\""
            ))
            .current_dir(&root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", tmp.path())
            .env("CUDA_HOME", tmp.path().join("cuda"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let header = root.join("scripts/cuda/pascal-compat.cuh");
    assert!(header.is_file());
    let cuda_home = std::fs::canonicalize(tmp.path().join("cuda")).unwrap();
    assert_eq!(env_of("61"), format!("61|{}|-include {}", cuda_home.display(), header.display()));
    assert_eq!(env_of("90"), format!("90|{}|", cuda_home.display()));
    assert_eq!(env_of("70"), format!("70|{}|", cuda_home.display()));
}

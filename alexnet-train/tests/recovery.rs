//! The `alexnet-train` binary when things are missing or damaged: a damaged newest
//! checkpoint on `--resume` (falls back to the newest that loads), and a GPU backend without
//! a device (one line, no panic, no run folder).

mod common;

use std::path::Path;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Trains run `name` (3 epochs) in `tmp` up to `--stop-after stop`, keeping every checkpoint.
fn stopped_run(tmp: &Path, name: &str, stop: &str) {
    let mut args = vec![
        "--data-dir",
        "cifar",
        "--run-name",
        name,
        "--stop-after",
        stop,
        "--keep-checkpoints",
        "0",
    ];
    args.extend(TINY);
    args.push("3");
    let out = alexnet_train(&args, tmp);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn resume_skips_a_damaged_newest_checkpoint() {
    let _lock = train_lock();
    let tmp = temp_dir("recovery-resume");
    cifar_folder(&tmp.join("cifar"), 48, 15);
    stopped_run(&tmp, "r", "2");
    let ckpt = tmp.join("artifacts/r/checkpoints");
    // Written under temporary names and renamed: none is left behind.
    let names: Vec<String> = std::fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("epoch-")),
        "left over: {names:?}"
    );
    assert!(names.contains(&"epoch-0002-model.mpk".to_string()));

    // Cut the newest model checkpoint in half, as a copy stopped short would.
    let newest = ckpt.join("epoch-0002-model.mpk");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();

    let out = alexnet_train(&["--resume", "artifacts/r", "--quiet"], &tmp);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line expected:\n{err}");
    for needle in [
        "warning: skipping the checkpoint of epoch 2",
        "epoch-0002-model.mpk",
        "cannot load the model checkpoint",
        "trying epoch 1",
    ] {
        assert!(lines[0].contains(needle), "`{needle}` not in: {err}");
    }
    // Continued after epoch 1: epochs 2 and 3 trained again, and the run finished.
    let run = tmp.join("artifacts/r");
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"epochs\": 3"), "{summary}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    assert!(ckpt.join("epoch-0003-state.json").is_file());
    // The newest checkpoint of epoch 2 was rewritten whole.
    assert!(std::fs::metadata(&newest).unwrap().len() as usize >= bytes.len() / 2 * 2);

    // Garbage in the only checkpoint's state: nothing loads, one line.
    stopped_run(&tmp, "g", "1");
    std::fs::write(
        tmp.join("artifacts/g/checkpoints/epoch-0001-state.json"),
        b"\x00garbage",
    )
    .unwrap();
    let out = alexnet_train(&["--resume", "artifacts/g", "--quiet"], &tmp);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    for needle in [
        "error: ",
        "no checkpoint loads",
        "epoch-0001-state.json",
        "not a training state",
    ] {
        assert!(last.contains(needle), "`{needle}` not in: {err}");
    }
    assert!(
        err.contains("warning: skipping the checkpoint of epoch 1"),
        "{err}"
    );
    assert!(err.contains("no older checkpoint is left"), "{err}");
    let _ = std::fs::remove_dir_all(tmp);
}

/// A wgpu run where Vulkan finds no driver: one line naming the backend and what to install,
/// no panic, and no run folder left behind.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_an_adapter_is_one_line() {
    use std::process::Command;
    let tmp = temp_dir("recovery-no-adapter");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alexnet-train"))
            .args(args)
            .current_dir(&tmp)
            // The Vulkan loader reads its drivers from here only: none.
            .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("WGPU_BACKEND", "vulkan")
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run alexnet-train")
    };
    for args in [
        &["--backend", "wgpu", "--epochs", "1", "--quiet"][..],
        &["--backend", "wgpu", "--devices", "0,1", "--epochs", "1"][..],
    ] {
        let out = run(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        for needle in [
            "error: --backend wgpu",
            "no usable device",
            "mesa-vulkan-drivers",
        ] {
            assert!(err.contains(needle), "{args:?}: `{needle}` not in {err}");
        }
        assert!(
            !tmp.join("artifacts").exists(),
            "{args:?}: a run folder was made"
        );
    }
    let _ = std::fs::remove_dir_all(tmp);
}

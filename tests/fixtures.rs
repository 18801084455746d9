//! The PyTorch reference values (tests/golden, copied from the project's shared/golden) pass
//! through the library's fixture runner, and the `check-fixtures` command reports them with the
//! right exit codes.

use std::path::Path;
use std::process::Command;

fn golden() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

#[test]
fn every_golden_case_passes() {
    let gpu = wgpu_nas::Gpu::new().expect("adapter");
    let reports = wgpu_nas::fixtures::run_dir(&gpu, golden(), |_| {}).expect("fixtures load");
    let failed: Vec<String> = reports.iter().filter(|r| !r.passed()).map(|r| r.to_string()).collect();
    assert!(reports.len() >= 47, "expected every shipped case, got {}", reports.len());
    assert!(failed.is_empty(), "{} failing cases:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn check_fixtures_command_summarises_and_fails_on_bad_values() {
    let bin = env!("CARGO_BIN_EXE_wgpu-nas");
    let dir = std::env::temp_dir().join(format!("wgpu-nas-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // A shipped file passes.
    std::fs::copy(golden().join("relu.json"), dir.join("relu.json")).unwrap();
    let out = Command::new(bin).arg("check-fixtures").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().any(|l| l == "1 passed, 0 failed"), "{text}");

    // The same file with one output value changed fails, and says which tensor.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden().join("relu.json")).unwrap()).unwrap();
    let v = &mut json["cases"][0]["outputs"]["y"]["data"][5];
    *v = serde_json::json!(v.as_f64().unwrap() + 0.01);
    std::fs::write(dir.join("relu.json"), json.to_string()).unwrap();
    let out = Command::new(bin).arg("check-fixtures").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAIL") && text.contains("output y"), "{text}");
    assert!(text.lines().any(|l| l == "0 passed, 1 failed"), "{text}");

    // A directory without fixtures is a clear error with exit code 2.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(bin).arg("check-fixtures").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no *.json fixture files"));
    std::fs::remove_dir_all(&dir).ok();
}

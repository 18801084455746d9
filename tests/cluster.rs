//! An experiment's runs as cluster tasks: `experiment --plan-only` writes plan.jsonl, `task`
//! runs one line (75 while its search is unfinished; bad plans exit 2 touching nothing), a task
//! killed with SIGKILL resumes to the same result, `leaderboard` merges copies of an experiment
//! directory into the one-process numbers, the Kubernetes Indexed Job's indices run by hand
//! reproduce them, and the Slurm job arrays do on a real one-node Slurm cluster.

#[path = "support/commands.rs"]
mod commands;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use commands::{scratch, snapshot, text, wgpu_nas, wgpu_nas_env, TINY_EXPERIMENT as TINY};
use serde_json::Value;

/// The tiny experiment in `dir` (darts and gdas, one seed, `random` random genotypes), `extra`
/// options after it.
fn experiment(dir: &Path, random: &str, extra: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    let mut a = vec!["experiment", "--out", d, "--methods", "darts,gdas", "--seeds", "1", "--random", random];
    a.extend(TINY);
    a.extend(extra);
    a.push("--quiet");
    wgpu_nas(&a)
}

fn read_json(file: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))).unwrap()
}

/// Each retraining's numbers in a results.json: run -> (test accuracy, parameters).
fn numbers(results: &Value) -> BTreeMap<String, (f64, f64)> {
    let mut m = BTreeMap::new();
    for row in results["rows"].as_array().unwrap() {
        for r in row["runs"].as_array().unwrap() {
            m.insert(
                r["run"].as_str().unwrap().to_string(),
                (r["test_acc"].as_f64().unwrap(), r["param_size_mb"].as_f64().unwrap()),
            );
        }
    }
    m
}

/// The table rows of a results.md, without the time columns (wall-clock, different per run).
fn table(md: &str) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| method"))
        .map(|l| l.split('|').take(6).collect::<Vec<_>>().join("|"))
        .collect()
}

/// One-process results of the tiny experiment with `random` random genotypes, made once per
/// test that needs them.
fn one_process(root: &Path, random: &str) -> (Value, String) {
    let dir = root.join("one-process");
    let out = experiment(&dir, random, &[]);
    assert!(out.status.success(), "{}", text(&out));
    (read_json(&dir.join("results.json")), std::fs::read_to_string(dir.join("results.md")).unwrap())
}

fn task(plan: &Path, index: &str) -> Output {
    wgpu_nas(&["task", "--plan", plan.to_str().unwrap(), "--index", index, "--quiet"])
}

/// Every file under `dir`, recursively: path -> bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

fn one_line_exit_2(out: &Output, needle: &str, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {}", text(out));
    assert!(err.contains(needle), "{what}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
}

#[test]
fn plan_only_writes_a_line_per_run_and_task_refuses_bad_input_touching_nothing() {
    let root = scratch("cluster-plan");
    let dir = root.join("exp");
    let out = experiment(&dir, "1", &["--plan-only"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = dir.join("plan.jsonl");
    let lines: Vec<Value> =
        std::fs::read_to_string(&plan).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = [
        ("search", "darts", "search-darts-s0", vec![]),
        ("search", "gdas", "search-gdas-s0", vec![]),
        ("train", "darts", "train-darts-s0", vec![0]),
        ("train", "gdas", "train-gdas-s0", vec![1]),
        ("train", "random", "train-random-0", vec![]),
    ];
    assert_eq!(lines.len(), expected.len());
    for (i, (l, (kind, method, run_dir, waits))) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(l["version"], 1, "{l}");
        assert_eq!(l["index"], i, "{l}");
        assert_eq!(l["runs"], 5, "{l}");
        assert_eq!(l["kind"], *kind, "{l}");
        assert_eq!(l["method"], *method, "{l}");
        assert_eq!(l["seed"], 0, "{l}");
        assert_eq!(l["run_dir"], *run_dir, "{l}");
        let w: Vec<u64> = l["waits_for"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(w, waits.iter().map(|&x| x as u64).collect::<Vec<_>>(), "{l}");
        let argv: Vec<&str> = l["argv"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(argv[..2], if *kind == "search" { ["search", method] } else { ["train", "--out"] }, "{l}");
        let at = argv.iter().position(|a| *a == "--out").unwrap();
        assert_eq!(argv[at + 1], *run_dir, "{l}");
        assert!(!dir.join(run_dir).exists(), "plan-only started {run_dir}");
    }
    let argv =
        |i: usize| -> Vec<&str> { lines[i]["argv"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect() };
    assert!(argv(2).windows(2).any(|w| w == ["--genotype", "search-darts-s0/genotype.json"]), "{:?}", argv(2));
    assert!(argv(4).windows(2).any(|w| w == ["--genotype", "random-0.genotype.json"]), "{:?}", argv(4));
    assert!(argv(0).windows(2).any(|w| w == ["--epochs", "1"]), "{:?}", argv(0));
    assert!(dir.join("random-0.genotype.json").is_file());

    // A retraining whose search has not run: exit code 75, nothing written.
    let before = tree(&dir);
    let out = task(&plan, "2");
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("search-darts-s0"), "{}", text(&out));
    assert!(tree(&dir) == before, "a waiting task wrote");

    // --adapter N: the N-th adapter of `wgpu-nas devices`; one that is not there is refused.
    let devices = wgpu_nas(&["devices"]);
    let first = String::from_utf8_lossy(&devices.stdout).lines().next().unwrap().to_string();
    let first = first.strip_prefix("0: ").unwrap_or_else(|| panic!("devices numbers its adapters: {first}"));
    one_line_exit_2(
        &wgpu_nas(&["task", "--plan", plan.to_str().unwrap(), "--index", "0", "--adapter", "99"]),
        "not the number of an adapter",
        "--adapter 99",
    );
    assert!(!dir.join("search-darts-s0").exists());
    let out = wgpu_nas(&["task", "--plan", plan.to_str().unwrap(), "--index", "0", "--adapter", "0", "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let config = read_json(&dir.join("search-darts-s0/config.json"));
    let a = &config["adapter"];
    let driver = a["driver"].as_str().unwrap();
    assert_eq!(
        format!(
            "{} ({}, {}{})",
            a["name"].as_str().unwrap(),
            a["backend"].as_str().unwrap(),
            a["device_type"].as_str().unwrap(),
            if driver.is_empty() { String::new() } else { format!("; {driver}") }
        ),
        first,
        "{config}"
    );

    // Bad input: one line, exit code 2, nothing touched (the finished search included).
    let before = tree(&dir);
    one_line_exit_2(&task(&plan, "5"), "out of range", "--index 5");
    let original = std::fs::read_to_string(&plan).unwrap();
    let bad = root.join("bad");
    copy_dir(&dir, &bad);
    let bad_plan = bad.join("plan.jsonl");
    let cut = original.len() - 40;
    for (what, content, needle) in [
        ("truncated mid-line", original[..cut].to_string(), "truncated"),
        ("a line short", original.lines().take(4).map(|l| format!("{l}\n")).collect(), "truncated"),
        ("another version", original.replace("\"version\":1", "\"version\":2"), "plan version 2"),
        ("edited", original.replace("\"--epochs\",\"1\"", "\"--epochs\",\"9\""), "not what"),
    ] {
        std::fs::write(&bad_plan, content).unwrap();
        let before_bad = tree(&bad);
        one_line_exit_2(&task(&bad_plan, "1"), needle, what);
        assert!(tree(&bad) == before_bad, "{what}: touched");
    }
    std::fs::remove_file(bad.join("experiment.json")).unwrap();
    std::fs::write(&bad_plan, &original).unwrap();
    one_line_exit_2(&task(&bad_plan, "1"), "not an experiment directory", "no experiment.json");
    one_line_exit_2(
        &wgpu_nas(&["leaderboard", bad.to_str().unwrap()]),
        "not an experiment directory",
        "leaderboard of no experiment",
    );
    // A finished run's task is skipped: nothing written.
    let out = task(&plan, "0");
    assert!(out.status.success(), "{}", text(&out));
    assert!(tree(&dir) == before, "bad input or a finished task touched the experiment");
    std::fs::remove_dir_all(&root).ok();
}

/// The tasks run one by one (through the Kubernetes manifest's command, with
/// JOB_COMPLETION_INDEX set), and `leaderboard` over two copied halves of the result, give the
/// one-process numbers.
#[test]
fn tasks_of_the_kubernetes_job_and_leaderboard_of_two_halves_reproduce_one_process() {
    let root = scratch("cluster-tasks");
    let (reference, reference_md) = one_process(&root, "1");
    let dir = root.join("exp");
    let out = experiment(&dir, "1", &["--kubernetes", "--gpus-per-task", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let job = read_json(&dir.join("kubernetes-job.json"));
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(completions, 5);
    let command: Vec<String> = job["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], "wgpu-nas");
    // The index from JOB_COMPLETION_INDEX, as the Job's pods get it; the retrainings of the
    // searches first, to see them wait (75), as a pod started early would.
    for index in [2, 0, 1, 2, 3, 4] {
        let i = index.to_string();
        let args: Vec<&str> = command[1..].iter().map(String::as_str).chain(["--quiet"]).collect();
        let out = wgpu_nas_env(&args, &[("JOB_COMPLETION_INDEX", &i)]);
        if index == 2 && !dir.join("search-darts-s0/checkpoint.bin").exists() {
            assert_eq!(out.status.code(), Some(75), "{}", text(&out));
        } else {
            assert!(out.status.success(), "index {index}: {}", text(&out));
        }
    }
    let out = wgpu_nas(&["leaderboard", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let merged = read_json(&dir.join("results.json"));
    assert_eq!(numbers(&merged), numbers(&reference));
    assert_eq!(numbers(&merged).len(), 3);
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert_eq!(table(&md), table(&reference_md), "{md}\n{reference_md}");

    // Two machines' halves: one holds the searches and the DARTS retraining, the other the rest.
    let (a, b) = (root.join("half-a"), root.join("half-b"));
    for (half, runs) in [
        (&a, &["search-darts-s0", "search-gdas-s0", "train-darts-s0"][..]),
        (&b, &["train-gdas-s0", "train-random-0", "random-0.genotype.json"][..]),
    ] {
        std::fs::create_dir_all(half).unwrap();
        std::fs::copy(dir.join("experiment.json"), half.join("experiment.json")).unwrap();
        for r in runs {
            if dir.join(r).is_dir() {
                copy_dir(&dir.join(r), &half.join(r));
            } else {
                std::fs::copy(dir.join(r), half.join(r)).unwrap();
            }
        }
    }
    // One half alone: its runs, the others listed as missing, exit code 1.
    let alone = root.join("alone");
    let out = wgpu_nas(&["leaderboard", b.to_str().unwrap(), "--out", alone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for r in ["search-darts-s0: missing", "search-gdas-s0: missing", "train-darts-s0: missing"] {
        assert!(err.contains(r), "{err}");
    }
    assert_eq!(read_json(&alone.join("results.json"))["missing"].as_array().unwrap().len(), 3);
    // Both: the whole table, the same numbers (and times: the same runs) as the one directory.
    let board = root.join("board");
    let out = wgpu_nas(&["leaderboard", a.to_str().unwrap(), b.to_str().unwrap(), "--out", board.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let both = read_json(&board.join("results.json"));
    assert_eq!(both, merged);
    assert_eq!(std::fs::read_to_string(board.join("results.md")).unwrap(), md);
    assert_eq!(&std::fs::read(board.join("results.png")).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&root).ok();
}

/// A retraining's task killed with SIGKILL after its first checkpoint, started again, resumes
/// and ends with the numbers of an uninterrupted run.
#[test]
fn a_task_killed_with_sigkill_resumes_to_the_uninterrupted_result() {
    let root = scratch("cluster-kill");
    let (uninterrupted, _) = one_process(&root, "1");
    let dir = root.join("exp");
    let out = experiment(&dir, "1", &["--plan-only"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = dir.join("plan.jsonl");
    for index in ["0", "4"] {
        let out = task(&plan, index);
        assert!(out.status.success(), "{}", text(&out));
    }
    let marker = root.join("marker");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"))
        .args(["task", "--plan", plan.to_str().unwrap(), "--index", "2"])
        .env("WGPU_NAS_TEST_HOOK", format!("committed:1:{}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the task ended before its first checkpoint");
        assert!(started.elapsed() < Duration::from_secs(300), "first checkpoint not reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let out = wgpu_nas(&["task", "--plan", plan.to_str().unwrap(), "--index", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("train-darts-s0: resuming from its last checkpoint"));
    let times = std::fs::read_to_string(dir.join("train-darts-s0/times.jsonl")).unwrap();
    assert_eq!(times.lines().count(), 2, "one line per epoch kept: {times}");
    let out = task(&plan, "1");
    assert!(out.status.success(), "{}", text(&out));
    let out = task(&plan, "3");
    assert!(out.status.success(), "{}", text(&out));
    let out = wgpu_nas(&["leaderboard", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(numbers(&read_json(&dir.join("results.json"))), numbers(&uninterrupted));
    let kept = snapshot(&dir.join("train-darts-s0"));
    assert!(!kept.keys().any(|k| k.ends_with(".tmp")), "{:?}", kept.keys());
    std::fs::remove_dir_all(&root).ok();
}

/// The daemons a test started, stopped (by their pid files) when it ends, failed or not.
struct Daemons {
    pid_files: Vec<PathBuf>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for f in self.pid_files.iter().rev() {
            if let Some(pid) = std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                let gone = Instant::now();
                while Path::new(&format!("/proc/{pid}")).exists() && gone.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
    }
}

fn sh(cmd: &str, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("sh");
    c.args(["-c", cmd]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("sh -c {cmd:?}: {e}"))
}

fn tail(file: &Path) -> String {
    let t = std::fs::read_to_string(file).unwrap_or_else(|e| format!("({}: {e})", file.display()));
    t.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A one-node Slurm cluster on this machine (munge, slurmctld, slurmd as root, all files in a
/// temporary directory), the tiny experiment's submit.sbatch submitted to it: the two job arrays
/// run, and `leaderboard` gives the one-process numbers. Needs root and Debian's slurmctld,
/// slurmd, munge and slurm-client (.ci/run installs them); without them it fails, saying why.
#[test]
fn slurm_job_arrays_on_a_one_node_cluster_reproduce_one_process() {
    for bin in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"] {
        let found = sh(&format!("command -v {bin} || test -x /usr/sbin/{bin}"), &[]).status.success();
        assert!(found, "{bin} not found: apt-get install slurmctld slurmd munge slurm-client (as .ci/run does)");
    }
    let uid = String::from_utf8_lossy(&sh("id -u", &[]).stdout).trim().to_string();
    assert_eq!(uid, "0", "the Slurm test runs slurmd and slurmctld as root (SlurmUser=root); run it as root");
    let root = scratch("cluster-slurm");
    let d = root.join("slurm");
    std::fs::create_dir_all(d.join("state")).unwrap();
    std::fs::create_dir_all(d.join("spool")).unwrap();
    let mut daemons = Daemons { pid_files: vec![] };

    // munge: Debian's package made the key; start the daemon unless one answers already.
    if !sh("munge -n | unmunge", &[]).status.success() {
        let out = sh("mkdir -p /run/munge && chown munge:munge /run/munge && munged --force", &[]);
        assert!(out.status.success(), "munged did not start: {}", text(&out));
        daemons.pid_files.push("/run/munge/munged.pid".into());
        let out = sh("sleep 1; munge -n | unmunge", &[]);
        assert!(out.status.success(), "munge does not answer: {}", text(&out));
    }

    let host = String::from_utf8_lossy(&sh("hostname", &[]).stdout).trim().to_string();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let p = |f: &str| d.join(f).display().to_string();
    let conf = format!(
        "ClusterName=wgpunas\nSlurmctldHost={host}\nAuthType=auth/munge\nProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\nSlurmUser=root\nSlurmdUser=root\nStateSaveLocation={}\nSlurmdSpoolDir={}\n\
         SlurmctldPidFile={}\nSlurmdPidFile={}\nSlurmctldLogFile={}\nSlurmdLogFile={}\nSelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\nSchedulerType=sched/backfill\nReturnToService=2\nMpiDefault=none\n\
         NodeName={host} CPUs={cpus} RealMemory={} State=UNKNOWN\n\
         PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        p("state"),
        p("spool"),
        p("slurmctld.pid"),
        p("slurmd.pid"),
        p("slurmctld.log"),
        p("slurmd.log"),
        kib / 1024 * 9 / 10,
    );
    std::fs::write(d.join("slurm.conf"), conf).unwrap();
    let conf = p("slurm.conf");
    let env = [("SLURM_CONF", conf.as_str())];
    daemons.pid_files.push(d.join("slurmctld.pid"));
    let out = sh("slurmctld -c", &env);
    assert!(out.status.success(), "slurmctld did not start: {}\n{}", text(&out), tail(&d.join("slurmctld.log")));
    daemons.pid_files.push(d.join("slurmd.pid"));
    let out = sh("slurmd", &env);
    assert!(out.status.success(), "slurmd did not start: {}\n{}", text(&out), tail(&d.join("slurmd.log")));
    let started = Instant::now();
    loop {
        let state = String::from_utf8_lossy(&sh("sinfo -h -o %t", &env).stdout).trim().to_string();
        if state == "idle" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the node is {state:?}, not idle, after 60 s:\n{}\n{}",
            tail(&d.join("slurmctld.log")),
            tail(&d.join("slurmd.log"))
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // 2 searches and their 2 retrainings.
    let (reference, reference_md) = one_process(&root, "0");
    let dir = root.join("exp");
    let out = experiment(&dir, "0", &["--slurm", "--gpus-per-task", "0", "--max-parallel", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let script = std::fs::read_to_string(dir.join("submit.sbatch")).unwrap();
    assert!(script.contains("--array=0-1%2") && script.contains("--array=2-3%2 --dependency=afterok:"), "{script}");
    assert!(!script.contains("--gres"), "{script}");
    let out = sh(&format!("bash {}", dir.join("submit.sbatch").display()), &env);
    assert!(out.status.success(), "submitting: {}", text(&out));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(ids.len(), 2, "{}", text(&out));
    let started = Instant::now();
    loop {
        let q = sh(&format!("squeue -h -o '%i %T %r' -j {}", ids.join(",")), &env);
        let queue = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if q.status.success() && queue.is_empty() {
            break;
        }
        assert!(
            !queue.contains("DependencyNeverSatisfied"),
            "the retrainings' dependency failed:\n{queue}\n{}",
            tail(&d.join("slurmctld.log"))
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the arrays did not end in 10 minutes:\n{queue}\n{}",
            tail(&d.join("slurmctld.log"))
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let logs: String = std::fs::read_dir(dir.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| format!("{}:\n{}\n", p.display(), tail(&p)))
        .collect();
    assert_eq!(std::fs::read_dir(dir.join("slurm")).unwrap().count(), 4, "one log per task:\n{logs}");
    let out = wgpu_nas(&["leaderboard", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{logs}", text(&out));
    let board = read_json(&dir.join("results.json"));
    // All 4 runs finished (none listed missing), the 2 retrainings in the table.
    assert!(board.get("missing").is_none(), "{board}");
    for run in ["search-darts-s0", "search-gdas-s0", "train-darts-s0", "train-gdas-s0"] {
        assert!(dir.join(run).join("checkpoint.bin").is_file(), "{run}\n{logs}");
    }
    assert_eq!(numbers(&board).len(), 2);
    assert_eq!(numbers(&board), numbers(&reference));
    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert_eq!(table(&md), table(&reference_md));
    drop(daemons);
    std::fs::remove_dir_all(&root).ok();
}

/// The errors of `v` against `schema` (a subset of JSON Schema draft 7: $ref to #/definitions,
/// type, enum, required, properties, additionalProperties, items, minItems, minimum, minLength,
/// maxLength), each with its JSON pointer.
fn schema_errors(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let def = r.strip_prefix("#/definitions/").unwrap_or_else(|| panic!("unsupported $ref {r}"));
        return schema_errors(root, &root["definitions"][def], v, at, errors);
    }
    for key in schema.as_object().unwrap().keys() {
        let known = [
            "$comment",
            "type",
            "enum",
            "required",
            "properties",
            "additionalProperties",
            "items",
            "minItems",
            "minimum",
            "minLength",
            "maxLength",
            "definitions",
        ];
        assert!(known.contains(&key.as_str()), "the test's validator does not know the keyword {key}");
    }
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            t => vec![t.as_str().unwrap()],
        };
        if !allowed.contains(&type_of(v)) {
            errors.push(format!("{at}: {} where {allowed:?} is wanted", type_of(v)));
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} is not one of {e:?}"));
        }
    }
    if let Some(n) = schema["minimum"].as_f64() {
        if v.as_f64().is_some_and(|x| x < n) {
            errors.push(format!("{at}: {v} below {n}"));
        }
    }
    if let Some(s) = v.as_str() {
        if schema["minLength"].as_u64().is_some_and(|n| (s.chars().count() as u64) < n) {
            errors.push(format!("{at}: {s:?} too short"));
        }
        if schema["maxLength"].as_u64().is_some_and(|n| (s.chars().count() as u64) > n) {
            errors.push(format!("{at}: {s:?} too long"));
        }
    }
    if let Some(items) = v.as_array() {
        if schema["minItems"].as_u64().is_some_and(|n| (items.len() as u64) < n) {
            errors.push(format!("{at}: fewer than {} items", schema["minItems"]));
        }
        if let Some(item) = schema.get("items") {
            for (i, x) in items.iter().enumerate() {
                schema_errors(root, item, x, &format!("{at}/{i}"), errors);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{at}: required {r} missing"));
            }
        }
        for (k, x) in obj {
            match (schema["properties"].get(k), schema.get("additionalProperties")) {
                (Some(s), _) => schema_errors(root, s, x, &format!("{at}/{k}"), errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{at}: field {k:?} not allowed")),
                (None, Some(s @ Value::Object(_))) => schema_errors(root, s, x, &format!("{at}/{k}"), errors),
                _ => {}
            }
        }
    }
}

/// The Kubernetes manifest validates against the batch/v1 Job schema kept in
/// tests/kubernetes/job-batch-v1.schema.json (trimmed from the Kubernetes API reference, closed
/// objects as kubeconform -strict has them), with and without GPUs; a broken one does not.
#[test]
fn the_kubernetes_manifest_is_a_valid_batch_v1_indexed_job() {
    let schema: Value =
        serde_json::from_str(include_str!("kubernetes/job-batch-v1.schema.json")).expect("the schema is JSON");
    let root = scratch("cluster-k8s");
    for (name, extra) in [
        ("gpu", &["--kubernetes", "--image", "registry.example/wgpu-nas:0.1", "--max-parallel", "3"][..]),
        ("Cpu_Only", &["--kubernetes", "--gpus-per-task", "0", "--volume-claim", "nas"][..]),
    ] {
        let dir = root.join(name);
        let out = experiment(&dir, "2", extra);
        assert!(out.status.success(), "{}", text(&out));
        let job = read_json(&dir.join("kubernetes-job.json"));
        let mut errors = Vec::new();
        schema_errors(&schema, &schema, &job, "", &mut errors);
        assert!(errors.is_empty(), "{name}: {errors:#?}\n{job:#}");
        // What the API server checks beyond the schema: an Indexed Job's pods restart Never or
        // OnFailure, its name is a DNS-1123 label (lower case, digits, '-'), completions given.
        let spec = &job["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 6, "2 searches, 2 retrainings, 2 random");
        assert!(["Never", "OnFailure"].contains(&spec["template"]["spec"]["restartPolicy"].as_str().unwrap()));
        let n = job["metadata"]["name"].as_str().unwrap();
        assert!(
            n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !n.starts_with('-')
                && !n.ends_with('-'),
            "{n}"
        );
        let container = &spec["template"]["spec"]["containers"][0];
        let gpus = &container["resources"]["limits"]["nvidia.com/gpu"];
        assert_eq!(*gpus, if name == "gpu" { Value::from(1) } else { Value::Null }, "{container}");
        let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
        assert_eq!(Path::new(mount), std::fs::canonicalize(&dir).unwrap());

        // The validator rejects what the schema forbids.
        let mut broken = job.clone();
        broken["spec"]["completionMode"] = "indexed".into();
        broken["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = Value::Array(vec![]);
        broken["spec"]["template"]["spec"]["volumes"][0].as_object_mut().unwrap().remove("name");
        let mut errors = Vec::new();
        schema_errors(&schema, &schema, &broken, "", &mut errors);
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }
    std::fs::remove_dir_all(&root).ok();
}

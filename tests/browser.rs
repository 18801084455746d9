#![cfg(not(target_arch = "wasm32"))]
//! The page in `web/` in headless Chromium (WebGPU; SwiftShader on a machine without a GPU),
//! checked from the real DOM, and a seeded search compared step by step with the same search
//! run natively by `wgpu_nas::demo::Demo`. Needs `web/build.sh` and Chromium; set
//! `WGPU_NAS_SKIP_BROWSER=1` to skip.

mod browser_support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use browser_support::{browser_tests_enabled, serve, web_dir, Browser};
use serde_json::Value;
use wgpu_nas::demo::{Demo, DemoConfig, Snapshot};
use wgpu_nas::Gpu;

/// A tiny seeded DARTS search (URL parameters are DemoConfig keys, plus `steps` in total). Four
/// of the eight operations keep a step at a few seconds on SwiftShader.
const DARTS_STEPS: u64 = 3;
const DARTS_OPS: [&str; 4] = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"];
const DARTS_QUERY: &str = "algorithm=darts&steps=3&ops=none,max_pool_3x3,skip_connect,sep_conv_3x3\
                           &channels=2&layers=3&batch_size=4&image_size=7&seed=1";
/// The same tiny search as GDAS: one sampled op per edge in each step.
const GDAS_QUERY: &str = "algorithm=gdas&steps=2&ops=none,max_pool_3x3,skip_connect,sep_conv_3x3\
                          &channels=2&layers=3&batch_size=4&image_size=7&seed=1";
const ENAS_QUERY: &str =
    "algorithm=enas&epochs=1&steps_per_epoch=1&channels=2&layers=1&batch_size=4&image_size=7&seed=1";

/// Realistic desktop viewport for the screenshot.
const VIEWPORT: (u32, u32) = (1400, 1000);
const PAGE_TIMEOUT: Duration = Duration::from_secs(150);

/// What a finished page run left: `#result`, facts read from the DOM, the time it took.
struct PageRun {
    result: Value,
    dom: Value,
    seconds: f64,
}

/// The DOM facts the tests check: the cell diagrams' nodes and edges, counters, the error box.
const DOM_FACTS: &str = r#"(() => {
  const cell = (id) => {
    const svg = document.querySelector(`#${id} svg`);
    if (!svg) return null;
    return {
      nodes: [...svg.querySelectorAll('.node')].map((n) => n.dataset.node),
      edges: [...svg.querySelectorAll('.edge:not(.concat)')].map((e) => ({ op: e.dataset.op, from: e.dataset.from, to: e.dataset.to })),
      labels: [...svg.querySelectorAll('.edge-label')].map((t) => t.textContent),
      concat: [...svg.querySelectorAll('.edge.concat')].map((e) => e.dataset.from),
    };
  };
  const error = document.getElementById('error');
  return {
    normal: cell('cell-normal'),
    reduce: cell('cell-reduce'),
    step: document.getElementById('stat-step').textContent,
    speed: document.getElementById('stat-speed').textContent,
    adapter: document.getElementById('stat-adapter').textContent,
    error_shown: !error.hidden || error.textContent !== '',
    alpha_charts: document.querySelectorAll('#alphas-normal figure, #alphas-reduce figure').length,
    reward_points: document.querySelectorAll('#enas-charts figure:first-child :is(polyline, circle)').length,
    sampled: document.querySelectorAll('#enas-recent figure').length,
  };
})()"#;

/// One Chromium at a time: two SwiftShader searches on the same cores only slow each other.
static BROWSER: Mutex<()> = Mutex::new(());

/// Opens the page with `query` and `autostart=1`, waits for `done` (panics on `error`, with the
/// page's message), takes a screenshot if asked, and reads `#result` and the DOM facts.
fn run_page(query: &str, screenshot: Option<&Path>) -> PageRun {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("{}index.html?autostart=1&{query}", serve(web_dir()));
    let start = Instant::now();
    let mut browser = Browser::launch(VIEWPORT.0, VIEWPORT.1, PAGE_TIMEOUT + Duration::from_secs(30));
    browser.navigate(&url);
    let status = browser.wait_for_status(&["done", "error"], PAGE_TIMEOUT);
    let seconds = start.elapsed().as_secs_f64();
    let error = browser.text("error").unwrap_or_default();
    assert_eq!(
        status, "done",
        "{url}: the page ended `{status}` after {seconds:.1} s; #error: {error:?}; page errors: {:?}",
        browser.page_errors
    );
    assert!(browser.page_errors.is_empty(), "errors in the page's console: {:?}", browser.page_errors);
    if let Some(path) = screenshot {
        browser.screenshot(path);
    }
    let result = serde_json::from_str(&browser.text("result").unwrap_or_default()).expect("#result holds JSON");
    let dom = browser.eval(DOM_FACTS);
    PageRun { result, dom, seconds }
}

/// `target/browser-screenshot{suffix}.png`.
fn screenshot_path(suffix: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/browser-screenshot{suffix}.png"))
}

/// The DARTS page run both DARTS tests read: the search is seconds per step in the browser.
fn darts_page_run() -> &'static PageRun {
    static RUN: OnceLock<PageRun> = OnceLock::new();
    RUN.get_or_init(|| run_page(DARTS_QUERY, Some(&screenshot_path(""))))
}

/// The numbers of a JSON matrix, row after row.
fn matrix(v: &Value) -> Vec<f64> {
    let rows = v.as_array().expect("rows");
    rows.iter().flat_map(|row| row.as_array().expect("a row")).map(|x| x.as_f64().expect("a number")).collect()
}

/// Every softmax(alpha) of both cells, flattened: [normal edges x ops, reduce edges x ops].
fn alphas_flat(alphas: &Value) -> Vec<f64> {
    [matrix(&alphas["normal"]), matrix(&alphas["reduce"])].concat()
}

/// Checks one cell diagram against the genotype the page reported and the operation set.
fn check_diagram(name: &str, diagram: &Value, genotype: &Value, steps: usize, ops: &[&str]) {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap_or_else(|| panic!("{x} is not a string")).to_string())
            .collect()
    };
    let state = |j: usize| match j {
        0 => "c_{k-2}".to_string(),
        1 => "c_{k-1}".to_string(),
        j => (j - 2).to_string(),
    };
    let mut want_nodes: Vec<String> = (0..steps + 2).map(state).collect();
    want_nodes.push("c_{k}".into());
    assert_eq!(strings(&diagram["nodes"]), want_nodes, "{name} cell: nodes of the diagram");

    let edges = diagram["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2 * steps, "{name} cell: two edges per intermediate node: {edges:?}");
    let entries = genotype[name].as_array().unwrap();
    for (k, (edge, entry)) in edges.iter().zip(entries).enumerate() {
        let (op, from, to) =
            (edge["op"].as_str().unwrap(), edge["from"].as_str().unwrap(), edge["to"].as_str().unwrap());
        let node = k / 2;
        assert_eq!(to, node.to_string(), "{name} cell: edge {k} enters node {node}");
        assert!(ops.contains(&op) && op != "none", "{name} cell: edge {k} has operation {op}, not one of {ops:?}");
        let input = entry[1].as_u64().unwrap() as usize;
        assert!(input < node + 2, "{name} cell: node {node} reads state {input}, which comes after it");
        assert_eq!(
            (op, from),
            (entry[0].as_str().unwrap(), state(input).as_str()),
            "{name} cell: edge {k} vs genotype"
        );
    }
    let ops_drawn: Vec<&str> = edges.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(strings(&diagram["labels"]), ops_drawn, "{name} cell: every edge is labelled with its operation");
    let concat: Vec<String> = genotype[format!("{name}_concat")]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| state(j.as_u64().unwrap() as usize))
        .collect();
    assert_eq!(strings(&diagram["concat"]), concat, "{name} cell: the output concatenates the concat nodes");
}

#[test]
fn a_short_darts_search_runs_in_the_browser() {
    if !browser_tests_enabled("a_short_darts_search_runs_in_the_browser") {
        return;
    }
    let run = darts_page_run();
    let (result, dom) = (&run.result, &run.dom);
    let info = &result["info"];
    eprintln!(
        "page: {DARTS_STEPS} DARTS steps in {:.1} s; adapter {}; {}",
        run.seconds,
        dom["adapter"].as_str().unwrap(),
        dom["speed"].as_str().unwrap()
    );

    // The steps ran: the counter, the snapshots, one metrics row per step.
    assert_eq!(dom["step"], format!("{DARTS_STEPS} / {DARTS_STEPS}"), "step counter");
    let snapshots = result["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.last().unwrap()["step"], DARTS_STEPS, "steps done");
    let steps: Vec<u64> =
        snapshots.iter().flat_map(|s| s["metrics"].as_array().unwrap()).map(|m| m["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (0..DARTS_STEPS).collect::<Vec<_>>(), "one metrics row per step");
    assert_eq!(info["ops"], serde_json::json!(DARTS_OPS), "the operation set chosen in the URL");

    // The alphas moved.
    let (first, last) = (alphas_flat(&result["alphas_initial"]), alphas_flat(&snapshots.last().unwrap()["alphas"]));
    let moved = first.iter().zip(&last).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    eprintln!("largest change of a softmax(alpha) weight since step 0: {moved:.2e}");
    assert!(moved > 1e-5, "the alphas did not change: largest change {moved:e}");

    // The cell diagrams show the genotype: nodes, two labelled edges per node, the concat.
    let steps_per_cell = info["steps"].as_u64().unwrap() as usize;
    for cell in ["normal", "reduce"] {
        check_diagram(cell, &dom[cell], &result["genotype"], steps_per_cell, &DARTS_OPS);
    }
    let edges = info["edges"].as_u64().unwrap();
    assert_eq!(dom["alpha_charts"], 2 * edges, "one alpha chart per edge of both cells");
    assert_eq!(dom["error_shown"], false, "the error box is shown");
    eprintln!("screenshot: {}", screenshot_path("").display());
}

/// |a - b| <= TOLERANCE * max(1, |b|). Both sides run the same WGSL in f32, compiled by
/// different compilers (SwiftShader's and lavapipe's LLVM): every reduction keeps its order, but
/// exp/log and fused multiply-adds may round differently, a few ulp (1e-7 relative) per
/// operation, compounding over the thousands of dependent operations of a few steps (measured
/// here: about 4e-7). A wrong kernel moves losses by 1e-2 and more.
const TOLERANCE: f64 = 1e-4;

/// Steps per second of the first call to run() (it builds the pipelines) and of the later ones;
/// `calls`: (steps, seconds) per call.
fn rates(calls: &[(u64, f64)]) -> (f64, f64) {
    let (steps, seconds) = calls[1..].iter().fold((0, 0.0), |a, c| (a.0 + c.0, a.1 + c.1));
    (calls[0].0 as f64 / calls[0].1, steps as f64 / seconds)
}

/// The page's search run natively as the page runs it: step 0, then one step per call, timed.
fn run_natively(gpu: &Gpu, config: DemoConfig, steps: u64) -> (Vec<Snapshot>, Vec<(u64, f64)>) {
    let mut demo = Demo::new(gpu, config).expect("native demo");
    let mut snapshots = vec![pollster::block_on(demo.run(0)).expect("native step 0")];
    let mut calls = vec![];
    while snapshots.last().unwrap().step < steps {
        let start = Instant::now();
        snapshots.push(pollster::block_on(demo.run(1)).expect("native step"));
        calls.push((1, start.elapsed().as_secs_f64()));
    }
    (snapshots, calls)
}

#[test]
fn browser_and_native_give_the_same_numbers() {
    if !browser_tests_enabled("browser_and_native_give_the_same_numbers") {
        return;
    }
    let run = darts_page_run();
    let config = DemoConfig::from_json(&run.result["info"]["config"].to_string()).expect("the page's DemoConfig");
    let gpu = Gpu::new().expect("a native wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)");
    let (native, native_calls) = run_natively(&gpu, config, DARTS_STEPS);

    let page_calls: Vec<(u64, f64)> = run.result["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["steps"].as_u64().unwrap(), c["seconds"].as_f64().unwrap()))
        .collect();
    let ((page_first, page_later), (native_first, native_later)) = (rates(&page_calls), rates(&native_calls));
    eprintln!(
        "steps/s, first call / later calls: browser ({}) {page_first:.2} / {page_later:.2}; native ({}) \
         {native_first:.2} / {native_later:.2}",
        run.dom["adapter"].as_str().unwrap(),
        gpu.adapter().name,
    );

    let native = serde_json::to_value(&native).unwrap();
    let (page, native) = (run.result["snapshots"].as_array().unwrap(), native.as_array().unwrap());
    let rows = |snapshots: &[Value]| -> Vec<Value> {
        snapshots.iter().flat_map(|s| s["metrics"].as_array().unwrap().clone()).collect()
    };
    let (page_rows, native_rows) = (rows(page), rows(native));
    assert_eq!(page_rows.len(), native_rows.len(), "metrics rows");

    let mut worst = (0.0f64, String::new());
    let mut compare = |what: String, got: f64, want: f64| {
        let diff = (got - want).abs();
        assert!(diff <= TOLERANCE * want.abs().max(1.0), "{what}: browser {got}, native {want}");
        if diff > worst.0 {
            worst = (diff, what);
        }
    };
    for (p, n) in page_rows.iter().zip(&native_rows) {
        for key in ["train_loss", "train_acc", "val_loss", "val_acc", "lr"] {
            compare(format!("step {} {key}", n["step"]), p[key].as_f64().unwrap(), n[key].as_f64().unwrap());
        }
    }
    let (page_last, native_last) = (page.last().unwrap(), native.last().unwrap());
    let (page_alphas, native_alphas) = (alphas_flat(&page_last["alphas"]), alphas_flat(&native_last["alphas"]));
    assert_eq!(page_alphas.len(), native_alphas.len(), "alphas");
    for (i, (p, n)) in page_alphas.iter().zip(&native_alphas).enumerate() {
        compare(format!("final softmax(alpha) #{i}"), *p, *n);
    }
    eprintln!("largest browser-native difference: {:.2e} ({})", worst.0, worst.1);
    eprintln!("same derived genotype: {}", page_last["genotype"] == native_last["genotype"]);
}

#[test]
fn a_gdas_search_runs_in_the_browser() {
    if !browser_tests_enabled("a_gdas_search_runs_in_the_browser") {
        return;
    }
    let run = run_page(GDAS_QUERY, None);
    let (result, dom) = (&run.result, &run.dom);
    eprintln!("page: 2 GDAS steps in {:.1} s; {}", run.seconds, dom["speed"].as_str().unwrap());
    assert_eq!(result["info"]["algorithm"], "gdas");
    let last = result["snapshots"].as_array().unwrap().last().unwrap();
    assert_eq!(last["step"], 2, "steps run");
    assert!(dom["step"].as_str().unwrap().starts_with("2 / 2"), "step counter: {}", dom["step"]);
    // The supernet's views: one small chart per edge and op group, as DARTS.
    assert!(dom["alpha_charts"].as_u64().unwrap() > 0, "no alpha charts");
    let ops: Vec<&str> = result["info"]["ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert_eq!(ops, DARTS_OPS);
    for cell in ["normal", "reduce"] {
        check_diagram(cell, &dom[cell], &result["genotype"], 4, &ops);
    }
    assert_eq!(dom["error_shown"], false, "the error box is shown");

    // The page's numbers are the native demo's (same seed, same Gumbel draws).
    let gpu = Gpu::new().unwrap();
    let config = DemoConfig::from_json(&result["info"]["config"].to_string()).unwrap();
    let mut native = Demo::new(&gpu, config).unwrap();
    let native = pollster::block_on(native.run(2)).unwrap();
    let native = serde_json::to_value(&native).unwrap();
    let (page_alphas, native_alphas) = (alphas_flat(&last["alphas"]), alphas_flat(&native["alphas"]));
    assert_eq!(page_alphas.len(), native_alphas.len(), "alphas");
    for (i, (p, n)) in page_alphas.iter().zip(&native_alphas).enumerate() {
        assert!((p - n).abs() <= TOLERANCE * n.abs().max(1.0), "softmax(alpha) #{i}: browser {p}, native {n}");
    }
}

#[test]
fn an_enas_search_runs_in_the_browser() {
    if !browser_tests_enabled("an_enas_search_runs_in_the_browser") {
        return;
    }
    let run = run_page(ENAS_QUERY, Some(&screenshot_path("-enas")));
    let (result, dom) = (&run.result, &run.dom);
    eprintln!("page: 1 ENAS epoch in {:.1} s; {}", run.seconds, dom["speed"].as_str().unwrap());
    let snapshots = result["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.last().unwrap()["epoch"], 1, "epochs finished");
    // run(0), then one call per shared-weight step and per controller update (2 per epoch).
    assert_eq!(snapshots.len(), 4, "the page did not redraw within the epoch");
    let updates: usize = snapshots.iter().map(|s| s["enas"]["updates"].as_array().unwrap().len()).sum();
    assert!(updates > 0, "no controller update reached the page");
    assert!(dom["reward_points"].as_u64().unwrap() > 0, "the reward chart is empty");
    assert!(dom["sampled"].as_u64().unwrap() > 0, "no sampled architecture shown");
    let ops: Vec<&str> = result["info"]["ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    let steps = result["info"]["steps"].as_u64().unwrap() as usize;
    for cell in ["normal", "reduce"] {
        check_diagram(cell, &dom[cell], &result["genotype"], steps, &ops);
    }
    assert_eq!(dom["error_shown"], false, "the error box is shown");
    eprintln!("screenshot: {}", screenshot_path("-enas").display());
}

#[test]
fn without_webgpu_the_page_says_what_to_enable() {
    if !browser_tests_enabled("without_webgpu_the_page_says_what_to_enable") {
        return;
    }
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("{}index.html?autostart=1", serve(web_dir()));
    // Linux Chromium without --enable-unsafe-webgpu: navigator.gpu exists, no adapter.
    let mut browser = Browser::launch_with(VIEWPORT.0, VIEWPORT.1, Duration::from_secs(60), false);
    browser.navigate(&url);
    let status = browser.wait_for_status(&["error", "done"], Duration::from_secs(30));
    assert_eq!(status, "error", "{url}: the page should stop at once without WebGPU");
    let banner = browser.eval(
        "(() => { const b = document.getElementById('webgpu-missing'); return { shown: !b.hidden, text: b.innerText }; })()",
    );
    assert_eq!(banner["shown"], true, "the no-WebGPU message is hidden");
    let text = banner["text"].as_str().unwrap();
    for hint in ["WebGPU is not available", "enable-unsafe-webgpu", "Firefox", "Safari"] {
        assert!(text.contains(hint), "the message lacks {hint:?}: {text}");
    }
}

/// The steps done, from the counter "3 / 50"; None before the page shows one.
fn steps_done(browser: &mut Browser) -> Option<u64> {
    browser.text("stat-step")?.split(' ').next()?.parse().ok()
}

/// Pause stops after the step in flight and Resume goes on; Reset during a step discards the
/// search once that step returns, and the page is ready for a new one.
#[test]
fn pause_resume_and_reset_mid_run() {
    if !browser_tests_enabled("pause_resume_and_reset_mid_run") {
        return;
    }
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("{}index.html?autostart=1&{}", serve(web_dir()), DARTS_QUERY.replace("steps=3", "steps=50"));
    let mut browser = Browser::launch(VIEWPORT.0, VIEWPORT.1, PAGE_TIMEOUT + Duration::from_secs(30));
    browser.navigate(&url);
    let wait_for_step = |browser: &mut Browser, above: u64| {
        let start = Instant::now();
        while steps_done(browser).is_none_or(|s| s <= above) {
            assert!(
                start.elapsed() < PAGE_TIMEOUT,
                "{url}: no step after {above}; status {:?}",
                browser.text("status")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let click = |browser: &mut Browser, id: &str| browser.eval(&format!("document.getElementById('{id}').click()"));

    wait_for_step(&mut browser, 0);
    click(&mut browser, "pause");
    assert_eq!(browser.wait_for_status(&["paused", "error"], PAGE_TIMEOUT), "paused");
    assert_eq!(browser.text("start").as_deref(), Some("Resume"));
    let paused_at = steps_done(&mut browser).unwrap();
    click(&mut browser, "start");
    wait_for_step(&mut browser, paused_at);
    click(&mut browser, "reset");
    assert_eq!(browser.wait_for_status(&["idle", "error"], PAGE_TIMEOUT), "idle", "Reset during a step");
    let page = browser.eval(
        "(() => ({ start: !document.getElementById('start').disabled, unlocked: !document.querySelector('#settings input').disabled, \
         charts: document.querySelectorAll('#alphas-normal figure, #curves figure').length, step: document.getElementById('stat-step').textContent }))()",
    );
    assert_eq!(
        page,
        serde_json::json!({"start": true, "unlocked": true, "charts": 0, "step": "–"}),
        "the page after Reset"
    );
    assert!(browser.page_errors.is_empty(), "errors in the page's console: {:?}", browser.page_errors);
}

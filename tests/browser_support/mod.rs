//! Headless Chromium for the page tests, std only: a static file server for `web/` on
//! 127.0.0.1, and the DevTools protocol (CDP) over `--remote-debugging-pipe`: Chromium reads
//! NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where the page lives, relative to the crate.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Whether the page tests should run: they need the built page and Chromium, and fail with what
/// to do when either is missing, unless `WGPU_NAS_SKIP_BROWSER=1` says to skip them.
pub fn browser_tests_enabled(test: &str) -> bool {
    if std::env::var("WGPU_NAS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("{test}: skipped (WGPU_NAS_SKIP_BROWSER=1)");
        return false;
    }
    let wasm = web_dir().join("pkg/wgpu_nas_bg.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build the page with web/build.sh (or set WGPU_NAS_SKIP_BROWSER=1 to skip the browser tests)",
        wasm.display()
    );
    assert!(
        chromium().is_some(),
        "no Chromium found (tried $CHROMIUM, chromium, chromium-browser, google-chrome): install it, e.g. \
         apt-get install chromium (or set WGPU_NAS_SKIP_BROWSER=1 to skip the browser tests)"
    );
    true
}

fn chromium() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    if let Ok(path) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    names.iter().flat_map(|name| dirs.iter().map(move |dir| dir.join(name))).find(|path| path.is_file())
}

/// Serves the files under `root` on 127.0.0.1 (a free port) until the test process ends; returns
/// the base URL, e.g. `http://127.0.0.1:40123/`.
pub fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let _ = respond(stream, &root);
            });
        }
    });
    url
}

fn respond(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/").trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = root.join(path);
    let safe = !path.split('/').any(|part| part == "..");
    let (status, body, content_type) = match std::fs::read(&file) {
        Ok(body) if safe => ("200 OK", body, content_type(&file)),
        _ => ("404 Not Found", format!("not found: {path}").into_bytes(), "text/plain"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

extern "C" {
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn dup2(old: i32, new: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const F_DUPFD_CLOEXEC: i32 = 1030;
const SIGKILL: i32 = 9;

/// One headless Chromium with one page, driven over CDP. Dropping it closes the browser.
pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    replies: BufReader<std::io::PipeReader>,
    next_id: u64,
    session: String,
    /// Console errors, uncaught exceptions and Chromium's warnings about the page (WebGPU
    /// validation among them).
    pub page_errors: Vec<String>,
    watchdog: Option<mpsc::Sender<()>>,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium with WebGPU enabled and opens a blank page of `width` x `height` CSS
    /// pixels. A watchdog kills the browser after `limit`, so a hung page cannot block the test.
    pub fn launch(width: u32, height: u32, limit: Duration) -> Browser {
        Browser::launch_with(width, height, limit, true)
    }

    /// [`Browser::launch`], with WebGPU on or off (off: Linux Chromium's default, where
    /// `requestAdapter()` gives null).
    pub fn launch_with(width: u32, height: u32, limit: Duration, webgpu: bool) -> Browser {
        let profile = TempDir::new("wgpu-nas-chromium");
        let (command_reader, commands) = std::io::pipe().expect("pipe");
        let (replies, reply_writer) = std::io::pipe().expect("pipe");
        let (cr, rw): (RawFd, RawFd) = (command_reader.as_raw_fd(), reply_writer.as_raw_fd());
        let mut cmd = Command::new(chromium().expect("chromium"));
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu-sandbox",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
        ])
        .args(webgpu.then_some("--enable-unsafe-webgpu"))
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec. The pipe ends are first
        // copied above fd 10, so that dup2 onto 3 and 4 cannot clobber one with the other.
        unsafe {
            cmd.pre_exec(move || {
                let (a, b) = (fcntl(cr, F_DUPFD_CLOEXEC, 10), fcntl(rw, F_DUPFD_CLOEXEC, 10));
                if a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop((command_reader, reply_writer));

        let (watchdog, cancelled) = mpsc::channel::<()>();
        let pid = child.id() as i32;
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                eprintln!("watchdog: chromium still running after {limit:?}; killing it");
                // SAFETY: plain syscall on the child's pid.
                unsafe { kill(pid, SIGKILL) };
            }
        });

        let mut browser = Browser {
            child,
            commands,
            replies: BufReader::new(replies),
            next_id: 0,
            session: String::new(),
            page_errors: vec![],
            watchdog: Some(watchdog),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("sessionId").to_string();
        browser.call("Runtime.enable", json!({}));
        browser.call("Log.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends a command (to the page once attached) and returns its result; panics on a protocol
    /// error. Events that arrive meanwhile are scanned for page errors.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap_or_else(|e| panic!("{method}: chromium's pipe closed: {e}"));
        loop {
            let mut buf = vec![];
            let n = self.replies.read_until(0, &mut buf).expect("read chromium's pipe");
            assert!(n > 0, "{method}: chromium exited (crashed, or killed by the watchdog)");
            buf.pop();
            let reply: Value = serde_json::from_slice(&buf).expect("CDP JSON");
            if reply["id"] == json!(self.next_id) {
                assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
            self.note_event(&reply);
        }
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"].as_str().or(details["text"].as_str());
                self.page_errors.push(format!("uncaught: {}", text.unwrap_or("?")));
            }
            // Chromium's own messages: WebGPU validation errors arrive here as warnings, and
            // wgpu does not see them, so a broken shader would otherwise only compute zeros.
            Some("Log.entryAdded")
                if ["error", "warning"].contains(&params["entry"]["level"].as_str().unwrap_or("")) =>
            {
                let field = |key: &str| params["entry"][key].as_str().unwrap_or("?").to_string();
                self.page_errors.push(format!("{} {}: {}", field("source"), field("level"), field("text")));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].as_str().or(a["description"].as_str()).unwrap_or("?").to_string())
                    .collect();
                self.page_errors.push(format!("console.error: {}", args.join(" ")));
            }
            _ => {}
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of a JavaScript expression (JSON-serialisable), evaluated in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Text of the element with this id, or None when there is none.
    pub fn text(&mut self, id: &str) -> Option<String> {
        self.eval(&format!("document.getElementById('{id}')?.textContent ?? null")).as_str().map(str::to_string)
    }

    /// Polls `#status` until it is one of `states` or `timeout` passes; returns the last status.
    pub fn wait_for_status(&mut self, states: &[&str], timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let status = self.text("status").unwrap_or_default();
            if states.contains(&status.as_str()) || start.elapsed() > timeout {
                return status;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the whole page (beyond the viewport) at the current width.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Stop the watchdog first: once the child is reaped its pid may be reused.
        self.watchdog.take();
        self.session.clear();
        self.next_id += 1;
        let close = format!("{{\"id\":{},\"method\":\"Browser.close\"}}\0", self.next_id);
        let closed = self.commands.write_all(close.as_bytes()).is_ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while closed && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop (Chromium's profile).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

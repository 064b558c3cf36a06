//! A real browser for the tests of the summary's what-if panel: Debian's
//! headless Chromium, driven over the Chrome DevTools Protocol (CDP).
//!
//! Why CDP over a websocket and not WebDriver: the browser speaks CDP
//! itself, so the tests need no chromedriver (another package, another
//! process, a version to keep in step) and no downloaded browser; CDP also
//! reports every request a page makes and takes screenshots, which the
//! tests use. The client is `tungstenite`, synchronous and small, so
//! there is no async runtime in the test either. Every wait has a
//! deadline: a browser that hangs fails the test, it does not hang CI.
//! Dropping a [`Browser`] closes it, kills it if it does not close, and
//! removes its profile.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The longest any one step may take: launch, a command, a page load.
const DEADLINE: Duration = Duration::from_secs(30);

/// The browser binary: `CHROMIUM`, else `chromium` or `chromium-browser`
/// on `PATH`. None is a failure, not a skip: the panel is untested without it.
pub(crate) fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "no Chromium for the browser tests: neither `chromium` nor `chromium-browser` is on PATH and CHROMIUM is not set\n\
         hint: install it (Debian: `apt-get install chromium`; `.ci/run` does when it is missing) or set CHROMIUM to the browser's binary"
    );
}

/// One headless Chromium with one page (a CDP session on it).
pub(crate) struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events read while waiting for something else, oldest first.
    events: VecDeque<Value>,
    /// The page's requests since the last [`Browser::open`].
    requests: Vec<String>,
    /// Exceptions thrown and console errors on the page.
    errors: Vec<String>,
    /// The last lines the browser wrote to stderr, for failure messages.
    stderr: Arc<Mutex<VecDeque<String>>>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts the browser on a fresh profile and attaches to a blank page.
    pub(crate) fn launch() -> Browser {
        let bin = chromium();
        let profile = tempfile::tempdir().expect("browser profile dir");
        let mut child = Command::new(&bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-extensions",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1000,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{}`: {e}", bin.display()));

        // The browser says where it listens on stderr; the rest of stderr is
        // read to the end (a full pipe would stall it) and its tail kept.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut tail = tail.lock().unwrap();
                tail.push_back(line);
                if tail.len() > 20 {
                    tail.pop_front();
                }
            }
        });
        let Ok(url) = rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{}` did not say where it listens within {DEADLINE:?}; its stderr ended:\n{}",
                bin.display(),
                stderr
                    .lock()
                    .unwrap()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        };

        let addr = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("not a websocket URL: {url}"));
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("websocket handshake with {url}: {e}"));
        // From here on reads return every 100 ms so each wait checks its deadline.
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();

        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            requests: Vec::new(),
            errors: Vec::new(),
            stderr,
            _profile: profile,
        };
        let target = b.send(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.send(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Page.enable", "Runtime.enable", "Network.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    /// Loads `file` (as a `file://` URL) and waits for its load event.
    pub(crate) fn open(&mut self, file: &Path) {
        let url = url::Url::from_file_path(file)
            .unwrap_or_else(|()| panic!("not an absolute path: {}", file.display()))
            .to_string();
        self.events.clear();
        self.requests.clear();
        self.errors.clear();
        let nav = self.call("Page.navigate", json!({ "url": url }));
        assert!(nav.get("errorText").is_none(), "opening {url}: {nav}");
        self.wait_event("Page.loadEventFired");
    }

    /// The value of a JavaScript expression on the page (JSON-able).
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expression}` threw on the page: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Emulates a media type (`print`, `screen`) for the page's CSS.
    pub(crate) fn media(&mut self, media: &str) {
        self.call("Emulation.setEmulatedMedia", json!({ "media": media }));
    }

    /// Every URL the page requested since it was opened, the page's own first.
    pub(crate) fn requests(&mut self) -> Vec<String> {
        self.drain();
        self.requests.clone()
    }

    /// Uncaught exceptions and console errors of the page so far.
    pub(crate) fn errors(&mut self) -> Vec<String> {
        self.drain();
        self.errors.clone()
    }

    /// A PNG of the element `selector` with `margin` CSS pixels around it.
    pub(crate) fn screenshot(&mut self, selector: &str, margin: u32) -> Vec<u8> {
        // The page measures its element (no float arithmetic in the tests).
        let clip = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(), m = {margin}; \
             return {{ x: Math.max(0, r.left + scrollX - m), y: Math.max(0, r.top + scrollY - m), \
             width: r.width + 2 * m, height: r.height + 2 * m, scale: 1 }}; }})()",
            json!(selector)
        ));
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "clip": clip, "captureBeyondViewport": true }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64 image")
    }

    /// A command on the page's session; its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("sending `{method}` to the browser: {e}"));
        let deadline = Instant::now() + DEADLINE;
        loop {
            let m = self.read(deadline, method);
            if m["id"] == id {
                if let Some(e) = m.get("error") {
                    panic!("the browser refused `{method}`: {e}");
                }
                return m["result"].clone();
            }
            self.note(m);
        }
    }

    /// Waits for the next event `method` of the page.
    fn wait_event(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(i).expect("found");
            }
            let m = self.read(deadline, method);
            self.note(m);
        }
    }

    /// Reads what the browser has sent without waiting for more.
    fn drain(&mut self) {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m = serde_json::from_str(&t).expect("CDP message");
                    self.note(m);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return,
                Err(e) => panic!("reading from the browser: {e}"),
            }
        }
    }

    /// Keeps an event: requests and errors in their lists, all in `events`.
    fn note(&mut self, m: Value) {
        match m["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                self.requests.push(
                    m["params"]["request"]["url"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                );
            }
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(m["params"]["exceptionDetails"].to_string());
            }
            Some("Runtime.consoleAPICalled") if m["params"]["type"] == "error" => {
                self.errors.push(m["params"]["args"].to_string());
            }
            _ => {}
        }
        if m.get("method").is_some() {
            self.events.push_back(m);
        }
    }

    /// The next message, or a failure naming `what` once `deadline` passes.
    fn read(&mut self, deadline: Instant, what: &str) -> Value {
        loop {
            if Instant::now() > deadline {
                panic!(
                    "the browser did not answer `{what}` within {DEADLINE:?}; its stderr ended:\n{}",
                    self.stderr
                        .lock()
                        .unwrap()
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(&t).expect("CDP message"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(e) => panic!("reading from the browser (waiting for `{what}`): {e}"),
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

impl Drop for Browser {
    /// Asks the browser to close, then kills it if it has not within 5 s.
    fn drop(&mut self) {
        self.next_id += 1;
        let close = json!({ "id": self.next_id, "method": "Browser.close" });
        let _ = self.ws.send(Message::text(close.to_string()));
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

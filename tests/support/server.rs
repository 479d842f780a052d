//! The real `waystation` binary as a server: started on a free port over a data directory,
//! stopped with SIGTERM or SIGKILL, restarted over the same files.

use crate::waystation_bin;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The admin token every test server starts with (`WAYSTATION_BOOTSTRAP_TOKEN`).
pub const ADMIN: &str = "ws_test_admin_token";

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    data: PathBuf,
    env: Vec<(String, String)>,
    /// A program the server runs under (e.g. `strace` and its flags), or none.
    wrapper: Vec<String>,
    // Keeps the temporary data directory alive (and removes it at the end).
    _dir: Option<tempfile_dir::TempDir>,
}

mod tempfile_dir {
    /// A directory removed when dropped.
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    /// A server over a fresh data directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server over a fresh data directory, with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_under(&[], env)
    }

    /// A server run by `wrapper` (a program and its arguments, the server's command line
    /// appended: e.g. `strace -f -o FILE`), over a fresh data directory, with extra
    /// environment variables. The wrapper must run the server as its only child and exit
    /// when it does.
    pub fn start_under(wrapper: &[&str], env: &[(&str, &str)]) -> Server {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = std::env::temp_dir().join(format!("waystation-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut server = Server {
            child: None,
            addr: String::new(),
            data: data.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            wrapper: wrapper.iter().map(|w| (*w).to_owned()).collect(),
            _dir: Some(tempfile_dir::TempDir(data)),
        };
        server.spawn();
        server
    }

    /// A server over the existing data directory `data` (kept when the server is dropped),
    /// with extra environment variables.
    pub fn start_in(data: &Path, env: &[(&str, &str)]) -> Server {
        let mut server = Server {
            child: None,
            addr: String::new(),
            data: data.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            wrapper: Vec::new(),
            _dir: None,
        };
        server.spawn();
        server
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    fn spawn(&mut self) {
        // A restart listens where the first start did, so existing clients keep working.
        let listen = if self.addr.is_empty() {
            "127.0.0.1:0".to_owned()
        } else {
            self.addr.clone()
        };
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(waystation_bin()),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(waystation_bin());
                cmd
            }
        };
        cmd.args(["serve", "--listen", &listen, "--data"])
            .arg(&self.data)
            .env("WAYSTATION_BOOTSTRAP_TOKEN", ADMIN)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The reference workflows' business calendars, unless the test brings a configuration.
        cmd.env("WAYSTATION_CONFIG", crate::calendars_file());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start waystation");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the log on a thread for the server's whole life, so it never blocks on a
        // full pipe; the first `address=` line tells where it listens.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("address=").nth(1) {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .trim_matches('"')
                            .to_owned();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server says where it listens");
        self.addr = addr;
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = self.client(None);
        while Instant::now() < deadline {
            if client.get("/readyz").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server at {} never became ready", self.addr);
    }

    /// A client with `token` (or none).
    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.addr, token)
    }

    /// A client with the admin token.
    pub fn admin(&self) -> Client {
        self.client(Some(ADMIN))
    }

    /// Creates a token with `roles`; returns a client using it.
    pub fn token(&self, name: &str, roles: &[&str]) -> Client {
        let (status, body) = self.admin().post(
            "/v1/tokens",
            &serde_json::json!({"name": name, "roles": roles}),
        );
        assert_eq!(status, 201, "{body}");
        self.client(Some(body["token"].as_str().expect("token")))
    }

    /// The actor a history records for the live token called `name`: `{token_id, name}`.
    pub fn actor(&self, name: &str) -> serde_json::Value {
        let (status, tokens) = self.admin().get("/v1/tokens");
        assert_eq!(status, 200, "{tokens}");
        let id = tokens["items"]
            .as_array()
            .expect("a token list")
            .iter()
            .find(|t| t["name"] == serde_json::json!(name))
            .unwrap_or_else(|| panic!("no token called {name}: {tokens}"))["id"]
            .clone();
        serde_json::json!({"token_id": id, "name": name})
    }

    /// The server's process id: the child, or the wrapper's child.
    fn server_pid(&self, child: &Child) -> String {
        if self.wrapper.is_empty() {
            return child.id().to_string();
        }
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        std::fs::read_to_string(&children)
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .map_or_else(|| child.id().to_string(), str::to_owned)
    }

    /// SIGKILL: no chance to flush or drain.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !self.wrapper.is_empty() {
                let pid = self.server_pid(&child);
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit (of the wrapper, which follows the server).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = self.server_pid(&child);
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        child.wait().expect("wait for exit")
    }

    /// Starts again over the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A blocking HTTP client for one server and token.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// A response: status, headers of interest, body (JSON or a string).
pub type Answer = (u16, Value);

impl Client {
    /// A client for `addr`.
    pub fn new(addr: &str, token: Option<&str>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Generous: uploading a plugin compiles it, which for the 18 MB Python example
            // takes seconds on a quiet machine and much longer on a busy 2-core one.
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Client {
            agent,
            base: format!("http://{addr}"),
            token: token.map(str::to_owned),
        }
    }

    /// The bearer token it sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    fn read(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        match result {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string().unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Answer {
        Self::read(
            self.auth(self.agent.get(&format!("{}{path}", self.base)))
                .call(),
        )
    }

    /// GET with extra headers: status, content type and the body as text.
    pub fn get_text(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let mut req = self.auth(self.agent.get(&format!("{}{path}", self.base)));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.call() {
            Ok(mut r) => {
                let kind = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let text = r.body_mut().read_to_string().unwrap_or_default();
                (r.status().as_u16(), kind, text)
            }
            Err(e) => (0, String::new(), e.to_string()),
        }
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Answer {
        Self::read(
            self.auth(self.agent.delete(&format!("{}{path}", self.base)))
                .call(),
        )
    }

    /// POST JSON.
    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
    }

    /// POST JSON with an `Idempotency-Key`.
    pub fn post_once(&self, path: &str, body: &Value, key: &str) -> Answer {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
            &[("Idempotency-Key", key)],
        )
    }

    /// PUT JSON.
    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "PUT",
            path,
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
    }

    /// Any method with a raw body and content type.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            other => panic!("send does not do {other}"),
        };
        req = self.auth(req).header("Content-Type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send(&body[..]))
    }

    /// Uploads the built example plugin `name`; asserts it is accepted.
    pub fn upload_plugin(&self, name: &str) -> Value {
        let (status, body) = self.send(
            "PUT",
            &format!("/v1/plugins/{name}"),
            "application/wasm",
            crate::example_plugin(name),
            &[],
        );
        assert!(status == 201 || status == 200, "{name}: {status} {body}");
        body
    }

    /// Uploads `workflows/<id>.json`; asserts it is accepted.
    pub fn upload_workflow(&self, id: &str) {
        let text =
            std::fs::read_to_string(crate::root().join("workflows").join(format!("{id}.json")))
                .unwrap();
        let (status, body) = self.put(
            &format!("/v1/workflows/{id}"),
            &serde_json::from_str(&text).unwrap(),
        );
        assert!(status == 201 || status == 200, "{id}: {status} {body}");
    }
}

